"""A ledger whose earlier rounds are in another ledger: ``--prior-ledger``.

Every row claims the federation's cumulative epsilon, the earlier rounds included.
``--first-round N`` replays this file only, so an honest split ledger (an archive of
rounds 1-3 beside the live ledger kept from round 4, or a federation that began a new
ledger at round 4) failed: its claims lie above the replay of rounds 4 on. Trusting the
first row's claim for the earlier rounds would let it understate them, so the auditor
passes the earlier ledger and verify replays it first: the epsilon printed is then that
of everything that ran, and a tail whose claim leaves out part of the earlier spend
fails, naming the prior ledger.

Two honest shapes: *begun afresh* (a second ledger of the same key starting at its
genesis, rounds 4 on) and *pruned* (the live ledger's rows 1-3 deleted after an archive
of them was kept: its rows 4 on still link to row 3). Without ``--prior-ledger`` the
pruned ledger is refused for not beginning at its genesis.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("a", "d")]
SPLIT = 3  # rounds 1-3 in the prior ledger, 4-6 in this one


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _pub(tmp_path: Path, key: LedgerKey) -> str:
    return str(export_public_key(key.public_key, tmp_path / "ledger.pub"))


def _afresh(tmp_path: Path, rows: list[dict]) -> tuple[Path, Path, LedgerKey]:
    """Rounds 1-3 in one ledger, 4-6 in a second one begun at its genesis (same key)."""
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:SPLIT])
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", rows[SPLIT:], key)
    return prior, tail, key


def _pruned(tmp_path: Path, rows: list[dict]) -> tuple[Path, Path, LedgerKey]:
    """One ledger of rounds 1-6 whose rows 1-3 were archived (a copy taken after round
    3, with its signed head) and then deleted from the live file."""
    live, key = write_ledger(tmp_path / "live.ledger", rows[:SPLIT])
    archive = tmp_path / "archive-rounds-1-3.ledger"
    shutil.copyfile(live, archive)
    ledger = Ledger(live, key)
    try:
        for row in rows[SPLIT:]:
            ledger.append(row)
    finally:
        ledger.close()
    db = sqlite3.connect(live)
    db.execute(f"DELETE FROM ledger WHERE seq <= {SPLIT}")
    db.commit()
    db.close()
    return archive, live, key


@pytest.fixture
def honest() -> tuple[list[dict], float]:
    return central_client_rows(COHORTS, Z, DELTA)


@pytest.mark.parametrize("split", [_afresh, _pruned])
def test_an_honest_split_ledger_verifies_with_its_prior_ledger(
    tmp_path: Path, honest: tuple[list[dict], float], split
) -> None:
    rows, epsilon = honest
    prior, tail, key = split(tmp_path, rows)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert result.ok and result.private, result.first_failure
    # the epsilon of all six rounds, not of rounds 4-6
    assert result.epsilons[-1][1] == pytest.approx(epsilon, rel=1e-9)
    assert [seq for seq, _ in result.epsilons] == [r.seq for r in result.chain.rows]
    assert result.prior_rows == SPLIT and result.excluded_rounds is None
    assert any("rounds 1-3 replayed from the prior ledger" in n for n in result.notes)
    pub = _pub(tmp_path, key)
    status, out, err = _cli(
        "audit", "verify", str(tail), "--pubkey", pub, "--prior-ledger", str(prior)
    )
    assert status == 0, err
    assert "cumulative epsilon" in out.splitlines()[0]
    status, out, _ = _cli(
        "audit", "verify", str(tail), "--pubkey", pub, "--prior-ledger", str(prior), "--json"
    )
    payload = json.loads(out)
    assert status == 0 and payload["epsilon"] == pytest.approx(epsilon, rel=1e-9)
    assert payload["epsilon"] >= epsilon * (1 - 1e-8)  # never below what ran
    assert payload["prior_ledger"]["rows"] == SPLIT
    assert payload["prior_ledger"]["head"].startswith(f"{SPLIT}:")
    text, _ = build_report(tail, key.public_key, prior_ledger=prior)
    assert "**VERIFIED**" in text


@pytest.mark.parametrize("split", [_afresh, _pruned])
def test_first_round_alone_names_the_prior_ledger_it_needs(
    tmp_path: Path, honest: tuple[list[dict], float], split
) -> None:
    """Its claims count rounds 1-3: replaying 4-6 alone cannot verify them, and the
    failure says what would (it said only "claims epsilon X but ... gives Y")."""
    rows, _ = honest
    _, tail, key = split(tmp_path, rows)
    result = verify_ledger(tail, key.public_key, first_round=SPLIT + 1)
    assert not result.ok
    assert "--prior-ledger" in str(result.first_failure)


def test_a_pruned_ledger_alone_does_not_begin_at_its_genesis(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    rows, _ = honest
    _, tail, key = _pruned(tmp_path, rows)
    result = verify_ledger(tail, key.public_key)
    assert not result.chain.ok
    failure = str(result.first_failure)
    assert "does not begin at its genesis" in failure and "--prior-ledger" in failure


def test_a_tail_that_understates_the_earlier_spend_is_refused(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    """Rounds 4-6 claim the federation's epsilon as if rounds 1-3 had been charged at
    z = 3 (a smaller earlier spend) while the prior ledger records z = 1.5."""
    rows, _ = honest
    cheaper = PerClientAccountant(DELTA, "pld")
    for number, cohort in enumerate(COHORTS, start=1):
        cheaper.step(3.0 if number <= SPLIT else Z, cohort)
        if number > SPLIT:
            rows[number - 1]["privacy"]["epsilon"] = cheaper.epsilon()
    prior, tail, key = _afresh(tmp_path, rows)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    failure = str(result.first_failure)
    assert failure.startswith(f"row 1 (round {SPLIT + 1}): claims epsilon")
    assert "(the claim is below the mechanism's)" in failure
    assert f"rounds 1 to 3 replayed from the prior ledger {prior}" in failure
    status, out, err = _cli(
        "audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key), "--prior-ledger", str(prior)
    )
    assert status == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_a_prior_ledger_signed_by_another_key_is_refused(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    rows, _ = honest
    prior, _ = write_ledger(tmp_path / "other.ledger", rows[:SPLIT])  # a key of its own
    tail, key = write_ledger(tmp_path / "tail.ledger", rows[SPLIT:])
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    assert str(result.first_failure).startswith(f"the prior ledger {prior}: ")
    unkeyed = verify_ledger(tail, None, prior_ledger=prior)  # each against its own key
    assert "signed by another key than this ledger" in str(unkeyed.first_failure)


def test_a_prior_ledger_that_leaves_a_gap_is_refused(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    rows, _ = honest
    prior, key = write_ledger(tmp_path / "rounds-1-2.ledger", rows[:2])
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", rows[SPLIT:], key)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    failure = str(result.first_failure)
    assert "skips rounds after round 2" in failure and "the last round of the prior" in failure


def test_an_archive_of_another_chain_does_not_continue_a_pruned_ledger(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    """Same key, same rounds, but not the rows the live ledger's row 4 links to."""
    rows, _ = honest
    _, tail, key = _pruned(tmp_path, rows)
    other = [dict(row, finished_at=2.0e9 + i) for i, row in enumerate(rows[:SPLIT])]
    impostor, _ = write_ledger(tmp_path / "impostor.ledger", other, key)
    result = verify_ledger(tail, key.public_key, prior_ledger=impostor)
    assert not result.ok
    assert "does not link to the prior ledger's head (row 3)" in str(result.first_failure)


def test_a_missing_prior_ledger_is_one_usage_line(tmp_path: Path) -> None:
    rows, _ = central_client_rows(COHORTS[:1], Z, DELTA)
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    status, _, err = _cli(
        "audit",
        "verify",
        str(path),
        "--pubkey",
        _pub(tmp_path, key),
        "--prior-ledger",
        str(tmp_path / "nope.ledger"),
    )
    assert status == 2 and "--prior-ledger" in err and "Traceback" not in err


def test_a_head_kept_before_the_archive_is_found_in_it(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    """A head kept after round 2 is row 2 of the archive now: with --prior-ledger the
    two files are one chain, and the head is in it (4 rows appended since)."""
    rows, _ = honest
    archive, tail, key = _pruned(tmp_path, rows)
    kept = verify_ledger(archive, key.public_key).chain.rows[1]
    result = verify_ledger(tail, key.public_key, f"2:{kept.hash}", prior_ledger=archive)
    assert result.ok, result.first_failure
    assert result.anchor is not None and result.anchor.grown_by == len(COHORTS) - 2
    other = verify_ledger(tail, key.public_key, f"2:{'0' * 64}", prior_ledger=archive)
    assert not other.ok and "is not the head you expected" in str(other.first_failure)


def test_audit_report_takes_the_prior_ledger(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    rows, _ = honest
    prior, tail, key = _afresh(tmp_path, rows)
    out = tmp_path / "out"
    status, _, err = _cli(
        "audit",
        "report",
        str(tail),
        "--pubkey",
        _pub(tmp_path, key),
        "--prior-ledger",
        str(prior),
        "--out",
        str(out),
    )
    assert status == 0 and err.startswith("verdict: VERIFIED"), err
    assert "rounds 1-3 replayed from the prior ledger" in (out / "ledger-report.md").read_text()


def test_a_ledger_begun_afresh_without_rows_prints_the_prior_epsilon(
    tmp_path: Path, honest: tuple[list[dict], float]
) -> None:
    """No round in this file yet: the federation's epsilon is the prior ledger's (it
    printed "cumulative epsilon None")."""
    rows, _ = honest
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:SPLIT])
    empty, _ = write_ledger(tmp_path / "new.ledger", [], key)
    pub = _pub(tmp_path, key)
    status, out, err = _cli(
        "audit", "verify", str(empty), "--pubkey", pub, "--prior-ledger", str(prior)
    )
    assert status == 0, err
    claim = rows[SPLIT - 1]["privacy"]["epsilon"]
    assert "None" not in out.splitlines()[0]
    status, out, _ = _cli(
        "audit", "verify", str(empty), "--pubkey", pub, "--prior-ledger", str(prior), "--json"
    )
    payload = json.loads(out)
    assert payload["epsilon"] >= claim and payload["delta"] == DELTA
