"""Any JSON anywhere in a distributed, a record-level or an aborted row: ``verify`` and
``report`` fail the row, naming it, or verify, and never crash nor verify a smaller
epsilon than the honest ledger's.

Why: the any-JSON fuzz (tests/ledger/test_verify_hostile_rows.py) changed one top-level
field, or one field of the DP block, of a completed central row only. The checks that
read a distributed row's ``ddg`` block and honest shares, a record-level row's branch
reports and their DP-SGD histories, and an aborted row's carried claim and model were
never given a hostile value. Here any field at any depth of a row of each kind (its
nested blocks, each branch report, each history triple) is replaced by any JSON value,
or deleted, and every row is signed with the ledger's own key (the operator's forgery):
only the reading of the rows can object.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from _any_json import ANY_JSON
from _ledgers import (
    branch_report,
    central_client_dp,
    central_client_rows,
    distributed_rows,
    ledger_row,
    record_dpsgd_row,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.report import build_report
from secagg.ledger.verify import AuditResult, verify_ledger

DELTA = 1e-5
KEY = LedgerKey.generate()


def _distributed() -> list[dict[str, Any]]:
    """Three rounds of the distributed discrete Gaussian among 4 branches, as the server
    writes them (round 2 with one branch short)."""
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
    return distributed_rows(mechanism, [4, 3, 4], [f"branch-{i}" for i in range(4)], DELTA)


def _record_level() -> list[dict[str, Any]]:
    """Three record-level DP-SGD rounds of 3 branches, each reporting its history."""
    branches = ["h-a", "h-b", "h-c"]

    def report(steps: int) -> dict[str, Any]:
        history = [(1.0, 0.02, steps)]
        epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
        return branch_report(history, epsilon, delta=DELTA)

    return [
        record_dpsgd_row(number, branches, {h: report(100 * number) for h in branches},
                         delta=DELTA, population=3)
        for number in (1, 2, 3)
    ]  # fmt: skip


def _with_an_aborted_round() -> list[dict[str, Any]]:
    """Per-client central rounds 1 and 3 around an aborted round 2, which carries round
    1's claim and model (it released nothing), as the server writes it."""
    (first, last), _ = central_client_rows([("a", "b"), ("a", "c")], 1.5, DELTA)
    aborted = ledger_row(
        2,
        central_client_dp(1.5, DELTA),
        first["privacy"]["epsilon"],
        status="aborted",
        reason="fewer than 2 clients sampled or connected",
        participants=("a",),
        contributed=0,
        publish_participants=True,
        model_sha256=first["model_sha256"],
    )
    return [first, aborted, last | {"round": 3}]


KINDS: dict[str, list[dict[str, Any]]] = {
    "distributed": _distributed(),
    "record-level": _record_level(),
    "aborted": _with_an_aborted_round(),
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path into ``value``: each field, at any depth."""
    found: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        found.append((*prefix, key))
        found.extend(_paths(inner, (*prefix, key)))
    return found


def _write(path: Path, rows: list[Any]) -> Path:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    ledger = Ledger(path, KEY)
    try:
        for row in rows:
            ledger.append(row)
    finally:
        ledger.close()
    return path


def _final_epsilon(result: AuditResult) -> float | None:
    """The epsilon ``verify`` prints: the larger of the last row's claim and replay."""
    if not result.epsilons:
        return None
    seq, _ = result.epsilons[-1]
    entry = next(row.entry for row in result.chain.rows if row.seq == seq)
    claim = (entry.get("privacy") or {}).get("epsilon")
    claimed = (
        float(claim) if isinstance(claim, int | float) and not isinstance(claim, bool) else None
    )
    return result.shown_epsilon(seq, claimed)


def _honest(kind: str, folder: Path) -> AuditResult:
    return verify_ledger(_write(folder / f"{kind}.ledger", KINDS[kind]), KEY.public_key)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_honest_ledgers_verify(tmp_path: Path, kind: str) -> None:
    """The fixtures the fuzz changes are themselves good ledgers."""
    result = _honest(kind, tmp_path)
    assert result.ok, result.first_failure
    assert not result.not_private_reasons()


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[str, int, tuple[Any, ...], bool, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    index = draw(st.integers(0, len(KINDS[kind]) - 1))
    path = draw(st.sampled_from(_paths(KINDS[kind][index])))
    return kind, index, path, draw(st.booleans()), draw(ANY_JSON)


def _mutated(kind: str, index: int, path: tuple[Any, ...], drop: bool, value: Any) -> list[Any]:
    rows = copy.deepcopy(KINDS[kind])
    parent: Any = rows[index]
    for key in path[:-1]:
        parent = parent[key]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return rows


_FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=50, deadline=None, suppress_health_check=_FUNCTION_SCOPED)
@given(mutation=_mutations())
def test_any_json_at_any_depth_fails_naming_the_row_or_verifies_no_lower(
    tmp_path: Path, mutation: tuple[str, int, tuple[Any, ...], bool, Any]
) -> None:
    kind, index, path, drop, value = mutation
    rows = _mutated(kind, index, path, drop, value)
    result = verify_ledger(_write(tmp_path / "h.ledger", rows), KEY.public_key)  # never raises
    json.dumps(result.rebuilt_json())
    if not result.ok:
        # the changed row or a later one (whose claim no longer follows): never an earlier
        failed = str(result.first_failure)
        assert failed.startswith("row "), failed
        assert int(failed.split()[1]) >= index + 1, failed
        return
    honest = _final_epsilon(_honest(kind, tmp_path))
    verified = _final_epsilon(result)
    private = not result.not_private_reasons()
    if private and honest is not None and math.isfinite(honest):
        # one changed field never buys a smaller epsilon that verifies as private
        assert verified is not None and verified >= honest * (1 - 1e-9), (path, value, verified)


# few examples: each draws the report's plot (about a second), and the central rows' report
# is fuzzed at 30 in tests/ledger/test_verify_hostile_rows.py
@settings(max_examples=6, deadline=None, suppress_health_check=_FUNCTION_SCOPED)
@given(mutation=_mutations())
def test_any_json_at_any_depth_is_reported_and_never_crashes(
    tmp_path: Path, mutation: tuple[str, int, tuple[Any, ...], bool, Any]
) -> None:
    rows = _mutated(*mutation)
    path = _write(tmp_path / "h.ledger", rows)
    result = verify_ledger(path, KEY.public_key)
    text, _ = build_report(path, KEY.public_key)  # never raises either
    assert ("**FAILED**" in text) == (not result.ok)
