"""A ledger entry whose DP block lacks part of ``dp.sampling`` is refused, unless it is
built as a legacy row (``legacy_layout``), which is written as the version-2 row it is.

Ledger review, 2026-12-05: such an entry was written as a version-2 row without a
word (``row_version`` chose the layout from the block), and ``audit verify`` checks a
version-2 row's sampling less; the server always records the sampling, so only a
server that dropped it would write one. Refused entries raise
:class:`~secagg.ledger.entry.SamplingUnrecorded` (one line, naming what is lacking).
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.ledger.entry import (
    ROW_VERSION,
    SAMPLING_FIELDS,
    SAMPLING_RECORDED_SINCE,
    LedgerEntry,
    SamplingUnrecorded,
)

SAMPLING = {"kind": "poisson", "rate": 1.0, "population": 3, "seeded": False}


def _entry(dp: dict[str, Any] | None, **changes: Any) -> LedgerEntry:
    values: dict[str, Any] = {
        "federation": "legacy",
        "round": 4,
        "status": "complete",
        "reason": None,
        "started_at": None,
        "finished_at": 1.0e9,
        "backend": {"name": "secagg+"},
        "participants": ("a", "b", "c"),
        "contributed": 3,
        "dropouts": {},
        "dp": dp,
        "epsilon": 1.0,
        "delta": 1e-3,
        "model_sha256": "0" * 64,
    }
    return LedgerEntry(**(values | changes))


def _block(sampling: object) -> dict[str, Any]:
    block: dict[str, Any] = {"unit": "client", "mechanism": "central", "delta": 1e-3}
    if sampling is not None:
        block["sampling"] = sampling
    return block


@pytest.mark.parametrize(
    ("sampling", "lacking"),
    [(None, ", ".join(SAMPLING_FIELDS)), ([], ", ".join(SAMPLING_FIELDS))]
    + [({k: v for k, v in SAMPLING.items() if k != name}, name) for name in SAMPLING_FIELDS],
    ids=["none", "a-list", *(f"no-{name}" for name in SAMPLING_FIELDS)],
)
def test_an_entry_without_its_whole_sampling_record_is_refused(
    sampling: object, lacking: str
) -> None:
    with pytest.raises(SamplingUnrecorded) as refused:
        _entry(_block(sampling))
    text = str(refused.value)
    assert text.startswith(f"round 4: the DP block's dp.sampling lacks {lacking}: "), text
    assert "\n" not in text


def test_the_named_legacy_path_writes_the_version_2_row_it_is() -> None:
    row = _entry(_block({"kind": "poisson", "rate": 1.0}), legacy_layout=True).row(str)
    assert row["version"] == SAMPLING_RECORDED_SINCE - 1 == 2


@pytest.mark.parametrize("legacy_layout", [False, True])
def test_a_whole_record_or_no_dp_block_is_the_current_version(legacy_layout: bool) -> None:
    assert _entry(_block(SAMPLING), legacy_layout=legacy_layout).row(str)["version"] == ROW_VERSION
    assert _entry(None, legacy_layout=legacy_layout).row(str)["version"] == ROW_VERSION
