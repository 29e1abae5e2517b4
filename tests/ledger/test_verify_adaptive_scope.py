"""``audit verify`` on adaptive clipping recorded where no accountant charges it.

Adaptive clipping (Andrew et al. 2021) releases, beside the update, a noised count of
the clients whose update the clip left unclipped: a second release, which only
client-level central DP runs (the config refuses it elsewhere since it exists,
2cd6ac7) and only its replay charges (the two releases compose to the row's total
noise multiplier). A record-level DP-SGD row is replayed from the branches' reports and
a distributed row from its discrete Gaussian, so a row of either that recorded
``dp.adaptive_clipping`` said a count release ran and verified with it charged nothing:
the claim was not the accountant's for what the row says ran. It now fails, naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from _ledgers import (
    adaptive_client_rows,
    branch_report,
    distributed_rows,
    record_dpsgd_row,
    verify_rows,
)

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.accounting import adaptive_noise_split
from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for

DELTA = 1e-5
BRANCHES = ["h-a", "h-b", "h-c"]
COUNT_STD = 5.0  # the count's noise std (sensitivity 1/2: multiplier 10)


def _adaptive_block(total: float, clip: float) -> dict[str, Any]:
    z_delta = adaptive_noise_split(total, COUNT_STD)
    return {
        "update_noise_multiplier": z_delta,
        "count_noise_stddev": COUNT_STD,
        "target_quantile": 0.5,
        "learning_rate": 0.2,
        "next_clip": clip,
    }


def _record_rows(adaptive: bool) -> list[dict[str, Any]]:
    rows = []
    for number in (1, 2):
        history = [(1.0, 0.02, 100 * number)]
        epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
        reports = {h: branch_report(history, epsilon, delta=DELTA) for h in BRANCHES}
        row = record_dpsgd_row(number, BRANCHES, reports, delta=DELTA, population=3)
        if adaptive:
            row["dp"]["noise_multiplier"] = 2.0
            row["dp"]["adaptive_clipping"] = _adaptive_block(2.0, 1.0)
        rows.append(row)
    return rows


def _distributed_rows(adaptive: bool) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=4.0,
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=4,
        )
    rows = distributed_rows(mechanism, [4, 4], [f"branch-{i}" for i in range(4)], DELTA)
    if adaptive:
        for row in rows:
            block = _adaptive_block(row["dp"]["noise_multiplier"], row["dp"]["clip"])
            row["dp"]["adaptive_clipping"] = block
            row["dp"]["noise_std"] = block["update_noise_multiplier"] * row["dp"]["clip"]
    return rows


_KINDS = {"record-dpsgd": _record_rows, "distributed": _distributed_rows}


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_the_rows_as_written_verify(tmp_path: Path, kind: str) -> None:
    result = verify_rows(tmp_path / "good.sqlite", _KINDS[kind](adaptive=False))
    assert result.ok, result.first_failure


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_adaptive_clipping_where_nothing_charges_its_count_fails(tmp_path: Path, kind: str) -> None:
    result = verify_rows(tmp_path / "adaptive.sqlite", _KINDS[kind](adaptive=True))
    failure = result.first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): records adaptive clipping")
    assert "only client-level central DP" in failure and "charges" in failure


def test_client_level_central_adaptive_rows_still_verify(tmp_path: Path) -> None:
    rows = adaptive_client_rows([["a", "b"], ["b", "c"]], 2.0, COUNT_STD, DELTA)
    result = verify_rows(tmp_path / "central.sqlite", rows)
    assert result.ok, result.first_failure
