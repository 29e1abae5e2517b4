"""Hostile ledgers: signed rows no writer could have written fail, naming the row, and
nothing crashes.

Every row here is signed with the ledger's own key (the operator's forgery, or a
stranger's ledger checked without ``--pubkey``): the chain holds, so only the reading
of the rows can object. Before: a row that was not a JSON object, whose ``privacy`` or
``dp`` was a list or whose epsilon an integer too large for a float ended ``audit
verify`` in "cannot be read as a ledger: 'list' object has no attribute 'get'" (no
row named) and ``audit report`` in a traceback; a row whose round number was a string
or missing, a repeated or reordered round, a missing model digest, a participant count
that was a string or ``dp.sampling`` that was a list verified; ``report`` crashed on a
finish time of 1e300, a reason that was a number, a missing ``model_sha256``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _any_json import ANY_JSON, HUGE
from _ledgers import central_client_rows, ledger_row
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
KEY = LedgerKey.generate()


def _good_rows(count: int = 3) -> list[dict[str, Any]]:
    cohorts = [("a", "b") if number % 2 else ("a", "c") for number in range(1, count + 1)]
    return central_client_rows(cohorts, Z, DELTA)[0]


GOOD = _good_rows()


def _write(path: Path, rows: list[Any]) -> Path:
    """Sign and append ``rows`` as given (any JSON), with :data:`KEY`."""
    ledger = Ledger(path, KEY)
    try:
        for row in rows:
            ledger.append(row)
    finally:
        ledger.close()
    return path


def _with(changes: dict[str, Any], *, drop: tuple[str, ...] = ()) -> list[Any]:
    """The good rows with row 2 changed."""
    rows = copy.deepcopy(GOOD)
    rows[1] = {k: v for k, v in rows[1].items() if k not in drop} | changes
    return rows


def _dp_with(**changes: Any) -> dict[str, Any]:
    return {"dp": GOOD[1]["dp"] | changes}


HOSTILE: dict[str, tuple[list[Any], str]] = {
    "a list, not an object": ([*GOOD[:1], [1, 2]], "is not a JSON object but list"),
    "null, not an object": ([*GOOD[:1], None], "is not a JSON object but NoneType"),
    "privacy a list": (_with({"privacy": [1]}), "privacy must be a JSON object"),
    "epsilon a string": (
        _with({"privacy": {"epsilon": "abc", "delta": DELTA}}),
        "privacy.epsilon must be a number",
    ),
    "epsilon a boolean": (
        _with({"privacy": {"epsilon": True, "delta": DELTA}}),
        "privacy.epsilon must be a number",
    ),
    "epsilon too large for a float": (
        _with({"privacy": {"epsilon": HUGE, "delta": DELTA}}),
        "privacy.epsilon must be a number",
    ),
    "epsilon 'nan'": (
        _with({"privacy": {"epsilon": "nan", "delta": DELTA}}),
        "privacy.epsilon must be a number",
    ),
    "epsilon negative": (
        _with({"privacy": {"epsilon": -1.0, "delta": DELTA}}),
        "privacy.epsilon must be a number >= 0",
    ),
    "epsilon lowered": (
        _with({"privacy": {"epsilon": GOOD[1]["privacy"]["epsilon"] / 2, "delta": DELTA}}),
        "the claim is below the mechanism's",
    ),
    "round a string": (_with({"round": "two"}), "round must be a round number"),
    "round missing": (_with({}, drop=("round",)), "round must be a round number"),
    "round repeated": (_with({"round": 1}), "round 1 repeats round 1"),
    "round skipped": (_with({"round": 3}), "round 3 skips rounds after round 1"),
    "status a number": (_with({"status": 3}), "status must be 'complete' or 'aborted'"),
    "reason a number": (_with({"reason": 5}), "reason must be a string"),
    "participants missing": (
        _with({}, drop=("participants",)),
        "participants must be a JSON object",
    ),
    "count a string": (
        _with({"participants": GOOD[1]["participants"] | {"count": "2"}}),
        "participants.count must be a count",
    ),
    "more contributions than participants": (
        _with({"contributed": 3}),
        "counts 3 contributions from 2 participants",
    ),
    "contributed too large for a float": (_with({"contributed": HUGE}), "contributed must be"),
    "dropouts a list": (_with({"dropouts": [1]}), "dropouts must be a JSON object"),
    "backend a string": (_with({"backend": "x"}), "backend must be a JSON object"),
    "model digest missing": (_with({}, drop=("model_sha256",)), "records no model_sha256"),
    "model digest a number": (_with({"model_sha256": 5}), "model_sha256 must be a string"),
    "finish time infinite": (_with({"finished_at": "inf"}), "finished_at must be a time"),
    "dp a list": (_with({"dp": [1]}), "dp must be a JSON object or null"),
    "dp.sampling a list": (_with(_dp_with(sampling=[1])), "dp.sampling must be a JSON object"),
    "dp.sample_rate too large for a float": (
        _with(_dp_with(sample_rate=HUGE)),
        "dp.sample_rate must be a finite number",
    ),
    "dp.noise_multiplier infinite": (
        _with(_dp_with(noise_multiplier="inf", noise_std="inf")),
        "dp.noise_multiplier must be a finite number",
    ),
    "client_reports a list": (
        _with(_dp_with(client_reports=[1])),
        "dp.client_reports must be a JSON object",
    ),
    "a client report's history not triples": (
        _with(_dp_with(client_reports={"a": {"history": 5, "epsilon": 1.0}})),
        "must be a report with a history",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_row_fails_naming_it_and_nothing_crashes(tmp_path: Path, case: str) -> None:
    rows, said = HOSTILE[case]
    path = _write(tmp_path / "l.sqlite", rows)
    result = verify_ledger(path, KEY.public_key)
    assert result.chain.ok  # signed: only the reading of the rows objects
    assert not result.ok
    failure = str(result.first_failure)
    assert failure.startswith("row 2 (round "), failure
    assert said in failure
    # the row before the bad one was still replayed
    assert [seq for seq, _ in result.epsilons][:1] == [1]
    pem = export_public_key(KEY.public_key, tmp_path / "k.pub")
    runner = CliRunner()
    verified = runner.invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    assert verified.exit_code == 1
    assert verified.output.startswith(f"FAILED: {path}: row 2 (round ")
    assert len(verified.output.strip().splitlines()) == 1
    # the report the CLI wrote is build_report's text: read it rather than build it a
    # second time (drawing its plot is most of this test's time)
    report = runner.invoke(
        main, ["audit", "report", str(path), "--pubkey", str(pem), "--out", str(tmp_path / "o")]
    )
    assert report.exit_code == 0, report.output
    assert "verdict: FAILED" in report.output
    assert "**FAILED**: row 2 (round " in (tmp_path / "o" / "ledger-report.md").read_text()


def test_good_rows_verify(tmp_path: Path) -> None:
    """The fixture the hostile cases change is itself a good ledger."""
    result = verify_ledger(_write(tmp_path / "l.sqlite", GOOD), KEY.public_key)
    assert result.ok, result.first_failure


def test_reordered_rows_fail(tmp_path: Path) -> None:
    """Rows 2 and 3 swapped and re-signed: the chain holds, the round order does not."""
    rows = copy.deepcopy(GOOD)
    rows[1], rows[2] = rows[2], rows[1]
    result = verify_ledger(_write(tmp_path / "l.sqlite", rows), KEY.public_key)
    assert not result.ok
    assert str(result.first_failure).startswith("row 2 (round 3): round 3 skips rounds after")


def test_a_duplicated_last_row_fails(tmp_path: Path) -> None:
    rows = [*copy.deepcopy(GOOD), copy.deepcopy(GOOD[-1])]
    result = verify_ledger(_write(tmp_path / "l.sqlite", rows), KEY.public_key)
    assert not result.ok
    assert str(result.first_failure).startswith("row 4 (round 3): round 3 repeats round 3")


def test_a_finish_time_no_calendar_holds_is_shown_as_unknown(tmp_path: Path) -> None:
    """A finite time past year 9999 is a number, so the row verifies; the report showed
    it through ``datetime`` and ended in an OverflowError."""
    path = _write(tmp_path / "l.sqlite", _with({"finished_at": 1e300}))
    assert verify_ledger(path, KEY.public_key).ok
    text, _ = build_report(path, KEY.public_key)
    assert "| 2 | complete | - |" in text


def test_a_table_cell_cannot_split_the_reports_table(tmp_path: Path) -> None:
    """A reason holding ``|`` and a line break (an aborted round's, as recorded) stays
    in its cell: the row keeps its column count."""
    row = ledger_row(1, None, None, status="aborted", reason="a | b\n| c")
    path = _write(tmp_path / "l.sqlite", [row])
    text, _ = build_report(path, KEY.public_key)
    line = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    header = next(line for line in text.splitlines() if line.startswith("| round |"))
    unescaped = line.replace("\\|", "")
    assert unescaped.count("|") == header.count("|")


# --- any JSON in any field -------------------------------------------------------------

_JSON = ANY_JSON
_FIELDS = sorted(set(GOOD[1]) | {"reconstruction", "reconstructed"})
_DP_FIELDS = sorted(set(GOOD[1]["dp"]) | {"client_reports", "ddg", "adaptive_clipping"})


_ANY_JSON = given(
    field=st.sampled_from(_FIELDS),
    dp_field=st.sampled_from(_DP_FIELDS),
    value=_JSON,
    in_dp=st.booleans(),
)
_FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def _hostile_ledger(tmp_path: Path, field: str, dp_field: str, value: Any, in_dp: bool) -> Path:
    """The good rows with ``value`` in row 2's ``field`` (or its dp block's
    ``dp_field``), signed with :data:`KEY` into a fresh file."""
    rows = copy.deepcopy(GOOD)
    if in_dp:
        rows[1]["dp"][dp_field] = value
    else:
        rows[1][field] = value
    path = tmp_path / "h.sqlite"
    for leftover in tmp_path.glob("h.sqlite*"):
        leftover.unlink()
    return _write(path, rows)


@settings(max_examples=60, deadline=None, suppress_health_check=_FUNCTION_SCOPED)
@_ANY_JSON
def test_any_json_in_any_field_fails_or_verifies_and_never_crashes(
    tmp_path: Path, field: str, dp_field: str, value: Any, in_dp: bool
) -> None:
    path = _hostile_ledger(tmp_path, field, dp_field, value, in_dp)
    result = verify_ledger(path, KEY.public_key)  # never raises
    if not result.ok:
        assert str(result.first_failure).startswith("row 2 (round ")
    json.dumps(result.rebuilt_json())


# the report of such a ledger, at half the examples: each draws the report's plot, most of
# the time here (the named hostile values are each reported in the test of HOSTILE)
@settings(max_examples=30, deadline=None, suppress_health_check=_FUNCTION_SCOPED)
@_ANY_JSON
def test_any_json_in_any_field_is_reported_and_never_crashes(
    tmp_path: Path, field: str, dp_field: str, value: Any, in_dp: bool
) -> None:
    path = _hostile_ledger(tmp_path, field, dp_field, value, in_dp)
    result = verify_ledger(path, KEY.public_key)
    text, _ = build_report(path, KEY.public_key)  # never raises either
    assert ("**FAILED**" in text) == (not result.ok)


def test_the_backend_cell_reads_as_before(tmp_path: Path) -> None:
    """Escaping the cells keeps an honest row's text: ``secagg+ (k=4, t=3, 32 bits)``."""
    row = ledger_row(1, None, None, backend={"name": "secagg+", "k": 4, "t": 3, "bits": 32})
    text, _ = build_report(_write(tmp_path / "l.sqlite", [row]), KEY.public_key)
    assert "| secagg+ (k=4, t=3, 32 bits) |" in text
