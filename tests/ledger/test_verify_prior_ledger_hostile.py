"""``--prior-ledger`` read as a hostile auditor would (review of 2026-12-05).

The prior ledger is a second input an operator hands the auditor, so every way it can
be wrong must fail, naming the file that is wrong: not a ledger at all (the failure
blamed the ledger being verified), the ledger itself again (a same-file mistake read
as "round 1 goes back from round 6"), an archive that overlaps the tail (read "rows
between them are in neither"; since the review's item 6 its rows shared byte for byte
are read once, and a shared row that differs fails), a prior row that fails (named
no file), and the earlier rounds of another federation signed by the same key
(verified).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("a", "d")]
SPLIT = 3


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _pub(tmp_path: Path, key: LedgerKey) -> str:
    return str(export_public_key(key.public_key, tmp_path / "ledger.pub"))


def _rows() -> list[dict]:
    return central_client_rows(COHORTS, Z, DELTA)[0]


def _pruned(tmp_path: Path, archived_after: int, deleted_upto: int) -> tuple[Path, Path, LedgerKey]:
    """One ledger of six rounds, a copy of it kept after ``archived_after`` rounds and
    rows 1..``deleted_upto`` then deleted from the live file."""
    rows = _rows()
    live, key = write_ledger(tmp_path / "live.ledger", rows[:archived_after])
    archive = tmp_path / "archive.ledger"
    shutil.copyfile(live, archive)
    ledger = Ledger(live, key)
    try:
        for row in rows[archived_after:]:
            ledger.append(row)
    finally:
        ledger.close()
    shutil.copyfile(live, tmp_path / "whole.ledger")  # the six rows before the pruning
    db = sqlite3.connect(live)
    db.execute("DELETE FROM ledger WHERE seq <= ?", (deleted_upto,))
    db.commit()
    db.close()
    return archive, live, key


def _damaged_prior(tmp_path: Path) -> Path:
    """A ledger cut to its first 300 bytes: SQLite's header, no readable table."""
    whole, _ = write_ledger(tmp_path / "whole-prior.ledger", _rows()[:1])
    prior = tmp_path / "prior.ledger"
    prior.write_bytes(whole.read_bytes()[:300])
    return prior


def test_a_damaged_prior_ledger_is_named_not_the_ledger(tmp_path: Path) -> None:
    """It read ``FAILED: L cannot be read as a ledger: P is not a readable ledger``: the
    ledger verified fine, the prior was the file at fault."""
    tail, key = write_ledger(tmp_path / "tail.ledger", _rows()[:2])
    prior = _damaged_prior(tmp_path)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    assert str(result.first_failure).startswith(f"the prior ledger {prior} cannot be read")
    status, out, err = _cli(
        "audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key), "--prior-ledger", str(prior)
    )
    assert status == 1 and out == "" and err.count("\n") == 1
    assert f"cannot be read as a ledger: {tail}" not in err
    assert f"{tail} cannot be read" not in err
    assert f"the prior ledger {prior} cannot be read as a ledger" in err


@pytest.mark.parametrize(
    "junk",
    [b"hello, not a ledger\n" * 64, None],  # None: an SQLite file without ledger tables
)
def test_a_prior_ledger_that_is_no_ledger_is_a_usage_error_naming_it(
    tmp_path: Path, junk: bytes | None
) -> None:
    """The wrong file given as the prior: a usage mistake (exit 2) since 2026-12-06, as
    for the ledger itself (tests/apps/test_audit_not_a_ledger.py); it once read ``FAILED:
    L cannot be read as a ledger``, blaming the ledger, then FAILED naming the prior."""
    tail, key = write_ledger(tmp_path / "tail.ledger", _rows()[:2])
    prior = tmp_path / "prior.ledger"
    if junk is None:
        db = sqlite3.connect(prior)
        db.execute("CREATE TABLE other (x)")
        db.commit()
        db.close()
    else:
        prior.write_bytes(junk)
    with pytest.raises(ConfigurationError, match=f"^--prior-ledger {prior} is not a privacy"):
        verify_ledger(tail, key.public_key, prior_ledger=prior)
    status, out, err = _cli(
        "audit", "verify", str(tail), "--pubkey", _pub(tmp_path, key), "--prior-ledger", str(prior)
    )
    assert status == 2 and out == "" and err.count("\n") == 1
    said = f"Error: Invalid value for '--prior-ledger': {prior} is not a privacy ledger: it is "
    assert err.startswith(said), err
    assert str(tail) not in err


@pytest.mark.parametrize("linked", [False, True])
def test_the_ledger_itself_as_its_prior_is_a_usage_error(tmp_path: Path, linked: bool) -> None:
    """The same file twice (or through a symlink) is the auditor's mistake: one usage
    line naming the flag, not a claim about round order."""
    path, key = write_ledger(tmp_path / "l.ledger", _rows())
    prior = path
    if linked:
        prior = tmp_path / "link.ledger"
        os.symlink(path, prior)
    with pytest.raises(ConfigurationError, match=r"--prior-ledger .* is the ledger itself"):
        verify_ledger(path, key.public_key, prior_ledger=prior)
    status, _, err = _cli(
        "audit", "verify", str(path), "--pubkey", _pub(tmp_path, key), "--prior-ledger", str(prior)
    )
    assert status == 2 and "--prior-ledger" in err and "Traceback" not in err


@pytest.mark.parametrize(("archived_after", "deleted_upto"), [(4, 3), (3, 2), (5, 1)])
def test_an_archive_that_overlaps_the_tail_is_read_once(
    tmp_path: Path, archived_after: int, deleted_upto: int
) -> None:
    """An archive kept after round 4 beside a live file pruned of rows 1-3 (or kept
    after round 3 while rows 1-2 were pruned) holds rows the tail holds too, byte for
    byte: one chain in two copies. It read "rows between them are in neither", then was
    refused as overlapping; the shared rows are now read once, as the archive's, and
    the epsilon is that of the six rounds, each counted once."""
    archive, live, key = _pruned(tmp_path, archived_after, deleted_upto)
    whole = verify_ledger(live.with_name("whole.ledger"), key.public_key)
    result = verify_ledger(live, key.public_key, prior_ledger=archive)
    assert result.ok and result.private, result.first_failure
    assert [r.seq for r in result.chain.rows] == list(range(archived_after + 1, 7))
    assert result.chain.shared == archived_after - deleted_upto
    assert result.epsilons[-1][1] == pytest.approx(whole.epsilons[-1][1], rel=1e-12)
    first = deleted_upto + 1
    span = f"row {first}" if first == archived_after else f"rows {first}-{archived_after}"
    assert any(f"{span} of this file" in n and "read once" in n for n in result.notes)
    status, out, err = _cli(
        "audit", "verify", str(live), "--pubkey", _pub(tmp_path, key), "--prior-ledger",
        str(archive), "--json",
    )  # fmt: skip
    assert status == 0, err
    payload = json.loads(out)
    assert payload["rounds_accounted"] == 6 and payload["epsilon"] == pytest.approx(
        whole.epsilons[-1][1], rel=1e-12
    )


@pytest.mark.parametrize("archived_after", [4, 5])
def test_an_overlap_row_that_differs_is_refused(tmp_path: Path, archived_after: int) -> None:
    """The archive's row 4 is not the live file's row 4 (rewritten and re-signed in one
    of them, the rest of each chain intact): a row both files hold must be the same."""
    rows = _rows()
    archive, key = write_ledger(tmp_path / "archive.ledger", rows[:3])
    live = tmp_path / "live.ledger"
    shutil.copyfile(archive, live)
    ledger = Ledger(archive, key)
    try:
        for row in rows[3:archived_after]:
            ledger.append(row)
    finally:
        ledger.close()
    ledger = Ledger(live, key)
    try:
        ledger.append(rows[3] | {"finished_at": rows[3]["finished_at"] + 1.0})
        for row in rows[4:]:
            ledger.append(row)
    finally:
        ledger.close()
    db = sqlite3.connect(live)
    db.execute("DELETE FROM ledger WHERE seq <= 3")
    db.commit()
    db.close()
    result = verify_ledger(live, key.public_key, prior_ledger=archive)
    assert not result.ok
    assert "row 4 (seq 4): is in the prior ledger too" in str(result.first_failure)
    assert "differs from the prior ledger's row 4" in str(result.first_failure)


def test_a_failing_prior_row_names_the_prior_ledger(tmp_path: Path) -> None:
    """The failure of one of the prior ledger's rows named no file ("the prior ledger's
    row 2"), and the CLI line names only the ledger verified."""
    rows = _rows()
    forged = [dict(row) for row in rows[:SPLIT]]
    forged[1] = forged[1] | {"privacy": {"epsilon": 0.5, "delta": DELTA}}
    prior, key = write_ledger(tmp_path / "prior.ledger", forged)
    tail, _ = write_ledger(tmp_path / "tail.ledger", rows[SPLIT:], key)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    assert str(result.first_failure).startswith(f"row 2 (round 2) of the prior ledger {prior}: ")


def test_the_earlier_rounds_of_another_federation_are_refused(tmp_path: Path) -> None:
    """Same key, rounds 1-3, but rows of another federation (an operator whose key
    signs two): its spend is not this federation's, so a ledger begun afresh may not
    continue it. It verified, the other federation's rounds standing for these."""
    rows = _rows()
    other = [row | {"federation": "another"} for row in rows[:SPLIT]]
    prior, key = write_ledger(tmp_path / "another.ledger", other)
    tail, _ = write_ledger(tmp_path / "tail.ledger", rows[SPLIT:], key)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert not result.ok
    failure = str(result.first_failure)
    assert failure.startswith("row 1 (round 4): names federation 'test' but the prior ledger")
    assert str(prior) in failure and "'another'" in failure


def test_the_report_of_a_ledger_begun_afresh_shows_the_prior_epsilon(tmp_path: Path) -> None:
    """No round in this file yet: the report said "No round carries a DP block ...
    released without differential privacy" and gave no epsilon, while the prior ledger
    it verified holds three rounds of DP (verify prints their epsilon)."""
    from secagg.ledger.report import build_report

    rows, epsilon = central_client_rows(COHORTS[:SPLIT], Z, DELTA)
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows)
    empty, _ = write_ledger(tmp_path / "new.ledger", [], key)
    text, _ = build_report(empty, key.public_key, prior_ledger=prior)
    assert "**VERIFIED**" in text
    assert "released without differential privacy" not in text
    from secagg.dp.display import shown

    assert f"budget spent: epsilon = {shown(epsilon, 3)} (the prior ledger's 3 rows" in text
    assert float(shown(epsilon, 3)) >= epsilon  # rounded up, never below what ran


def test_a_prior_ledger_that_is_itself_a_tail_says_one_prior_must_hold_every_round(
    tmp_path: Path,
) -> None:
    """A pruned archive handed over as the prior: the failure told the auditor to "pass
    the archive with --prior-ledger", which they just did; one prior ledger must begin
    at its genesis and hold every earlier round (priors do not chain)."""
    _, live, key = _pruned(tmp_path, SPLIT, SPLIT)  # live holds rows 4-6 only
    tail = tmp_path / "tail.ledger"
    write_ledger(tail, [], key)
    result = verify_ledger(tail, key.public_key, prior_ledger=live)
    failure = str(result.first_failure)
    assert failure.startswith(f"the prior ledger {live}: ")
    assert "does not begin at its genesis" in failure
    assert "pass the archive with --prior-ledger" not in failure
    assert "a prior ledger must itself begin at its genesis" in failure
