"""Property: a privacy field the key holder rewrites, with every claim recomputed and the
ledger re-signed, either fails ``audit verify`` naming the row, or verifies with an
epsilon no smaller than the honest ledger's.

Why: tests/ledger/test_chain_properties.py draws tamperings made *without* the key
(sqlite3 edits), which the chain catches at their row. The server keeps the ledger and
its key, so the checks that matter against it are the replay's and the consistency
checks': here hypothesis draws a real small ledger (per-client central DP, adaptive
clipping, or the distributed discrete Gaussian, as the server writes them), a row, a
privacy field of it (epsilon, delta, noise, clip, sampling, the cohort's counts and
identity hashes, the composition, the mechanism's parameters) and a change (scaled up
or down, deleted, replaced, a hash dropped or repeated); or a row deleted, repeated or
moved. The forger then recomputes every claim the way verify replays it (the strongest
forger: the claims follow from the forged parameters), signs with the ledger key, and
verifies against the federation's config.

Left out, each a limit docs/audit.md states: the status of a round (a completed round
rewritten as aborted reads as no release: only the models' digests kept outside show
it), who took part (a client's rounds spread over other identity hashes: verify prints
the every-client figure for that), and the last row cut (a truncation: only
``--expect-head`` shows it).
"""

from __future__ import annotations

import copy
import functools
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from _ledgers import adaptive_client_rows, central_client_rows, distributed_rows, write_ledger
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.ledger import LedgerKey
from secagg.ledger.row_checks import FLOAT_NOISE
from secagg.ledger.verify import AuditResult, ExpectedPrivacy, verify_ledger

DELTA = 1e-5
NAMES = ("a", "b", "c", "d")
COHORTS = [("a", "b"), ("a", "c"), ("b", "d")]
KEY = LedgerKey.generate()
#: what a forger may rewrite in a row (paths into it); "status" and the identity
#: hashes' *names* are left out (module docstring)
FIELDS = (
    ("privacy", "epsilon"),
    ("privacy", "delta"),
    ("dp", "delta"),
    ("dp", "noise_multiplier"),
    ("dp", "noise_std"),
    ("dp", "clip"),
    ("dp", "sample_rate"),
    ("dp", "accountant"),
    ("dp", "composition"),
    ("dp", "charged_rate"),
    ("dp", "sum_revealed"),
    ("dp", "sampling", "kind"),
    ("dp", "sampling", "rate"),
    ("dp", "sampling", "population"),
    ("dp", "sampling", "seeded"),
    ("dp", "adaptive_clipping", "update_noise_multiplier"),
    ("dp", "adaptive_clipping", "count_noise_stddev"),
    ("dp", "noise_contributors"),
    ("dp", "corrupt_fraction"),
    ("dp", "assumed_colluders"),
    ("dp", "ddg", "scale"),
    ("dp", "ddg", "expected_clients"),
    ("dp", "ddg", "local_sigma"),
    ("participants", "count"),
    ("participants", "identity_hashes"),
    ("contributed",),
    ("noise_seeded",),
)
#: a replacement for any value: scaled numbers, another word, a flag flipped, gone
CHANGES = (0.5, 0.9, 1.1, 2.0, 10.0, "delete", "flip", "word", "drop one", "repeat one")
WORDS = {"accountant": "rdp", "composition": "everyone", "kind": "fixed"}
#: "verify's own words": the claim its replay gives, which the forger then writes
_REPLAYED = re.compile(
    r"^row (\d+) \(round \d+\): claims epsilon \S+ but its recorded mechanism gives (\S+)"
)


@functools.cache
def _honest(mechanism: str) -> tuple[tuple[dict[str, Any], ...], ExpectedPrivacy]:
    """The rows the server writes for the mechanism, and the config an auditor holds."""
    central = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=0.5,
        population=len(NAMES),
        noise_multiplier=1.0,
        clip=1.0,
    )
    if mechanism == "per client":
        rows, _ = central_client_rows(COHORTS, 1.0, DELTA)
        return tuple(rows), central
    if mechanism == "adaptive":
        rows = adaptive_client_rows(COHORTS, 1.0, 2.0, DELTA)
        return tuple(rows), ExpectedPrivacy(**{**central.__dict__, "clip": 0.5})
    from secagg.dp.config import DPSettings
    from secagg.dp.release import mechanism_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        release = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(len(NAMES)),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=len(NAMES),
        )
        rows = distributed_rows(release, [4, 3, 4], NAMES, DELTA)
    config = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="distributed",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=len(NAMES),
        noise_multiplier=2.0,
        clip=rows[0]["dp"]["clip"],
        dimension=16,
        bits=32,
        expected_clients=float(len(NAMES)),
        corrupt_fraction=0.25,
    )
    return tuple(rows), config


def _verify(rows: list[dict[str, Any]], expected: ExpectedPrivacy) -> AuditResult:
    with tempfile.TemporaryDirectory(prefix="resigned-") as folder:
        path, _ = write_ledger(Path(folder) / "l.ledger", rows, KEY, models_as_written=True)
        return verify_ledger(path, KEY.public_key, expected=expected)


def _forged(rows: list[dict[str, Any]], expected: ExpectedPrivacy) -> AuditResult:
    """Verify, writing verify's own replayed figure into each claim it objects to (and
    re-signing) until it objects to something else or passes."""
    for _ in range(len(rows) + 1):
        result = _verify(rows, expected)
        replayed = _REPLAYED.match(result.failure or "")
        if replayed is None:
            return result
        figure = replayed.group(2)
        rows[int(replayed.group(1)) - 1]["privacy"]["epsilon"] = (
            None if figure == "None" else float(figure)
        )
    return result


def _changed(value: Any, change: Any) -> Any:
    """``value`` changed by ``change``; the value itself when the change does not apply
    (the example then changes nothing, and verifies as the honest ledger)."""
    if isinstance(change, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        return type(value)(value * change) if isinstance(value, float) else value + 1
    if change == "flip":
        return not value if isinstance(value, bool) else value
    if change == "word":
        return WORDS.get(str(value), "poisson") if isinstance(value, str) else value
    if isinstance(value, list) and value:
        return value[1:] if change == "drop one" else [*value, value[0]]
    return value


def _mutate(row: dict[str, Any], path: tuple[str, ...], change: Any) -> None:
    holder = row
    for key in path[:-1]:
        holder = holder.get(key)
        if not isinstance(holder, dict):
            return
    if path[-1] not in holder and change != "word":
        return
    if change == "delete":
        del holder[path[-1]]
    else:
        holder[path[-1]] = _changed(holder.get(path[-1], "per_client"), change)


@settings(max_examples=50, deadline=None)
@given(
    mechanism=st.sampled_from(("per client", "adaptive", "distributed")),
    index=st.integers(0, 2),
    path=st.sampled_from(FIELDS),
    change=st.sampled_from(CHANGES),
)
def test_a_resigned_field_fails_at_its_row_or_claims_no_less(
    mechanism: str, index: int, path: tuple[str, ...], change: Any
) -> None:
    honest_rows, expected = _honest(mechanism)
    rows = copy.deepcopy(list(honest_rows))
    _mutate(rows[index], path, change)
    _assert_caught_or_no_less(_forged(rows, expected), _honest_epsilon(mechanism))


@settings(max_examples=25, deadline=None)
@given(
    mechanism=st.sampled_from(("per client", "adaptive", "distributed")),
    index=st.integers(0, 2),
    change=st.sampled_from(("delete", "repeat", "move back")),
)
def test_a_resigned_row_deleted_repeated_or_moved_fails_at_its_row(
    mechanism: str, index: int, change: str
) -> None:
    honest_rows, expected = _honest(mechanism)
    rows = copy.deepcopy(list(honest_rows))
    if change == "delete":
        if index == len(rows) - 1:
            index -= 1  # the last row cut is a truncation (module docstring)
        del rows[index]
    elif change == "repeat":
        rows.insert(index, copy.deepcopy(rows[index]))
    else:
        moved = rows.pop(index)
        rows.insert(max(0, index - 1) if index else 1, moved)
    result = _forged(rows, expected)
    assert not result.ok
    assert re.match(r"row \d+ ", str(result.failure)), result.failure


@functools.cache
def _honest_epsilon(mechanism: str) -> float:
    """The honest ledger's verified epsilon (it verifies: the property's baseline)."""
    rows, expected = _honest(mechanism)
    honest = _verify(copy.deepcopy(list(rows)), expected)
    assert honest.ok, honest.first_failure
    epsilon = honest.epsilons[-1][1]
    assert epsilon is not None
    return epsilon


def _assert_caught_or_no_less(result: AuditResult, honest: float) -> None:
    if not result.ok:
        assert re.match(r"row \d+ ", str(result.failure)), result.failure
        return
    spent = result.epsilons[-1][1]
    assert spent is not None and spent >= honest * (1 - FLOAT_NOISE), (spent, honest)
