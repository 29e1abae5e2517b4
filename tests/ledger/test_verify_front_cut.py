"""A ledger cut from the front: what verify catches without an anchor, and what it cannot.

Cutting rounds 1-2 from a ledger drops their epsilon. Without the ledger key the cut
breaks the chain (row 1 must link to the genesis hash), and verify now says where:
the ledger does not begin at its genesis. With the key (the operator), the rest can
be renumbered and re-signed into a chain that begins at the genesis; its rows then
fail if they still say round 3, or still claim the cut rounds' epsilon. A chain whose
rounds and claims were rewritten too is a new, valid ledger: the genesis depends on
the key only, so nothing in the file can show it. What can: the first row's head
(``1:HASH``), which verify now prints (``first row:``, JSON ``first_head``) for the
auditor to compare with the one published when the ledger began, or pass back as
``--expect-head``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("c", "d")]
CUT = 2  # rounds 1-2 cut


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _original(tmp_path: Path) -> tuple[Path, LedgerKey, list[dict]]:
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    path, key = write_ledger(tmp_path / "original.ledger", rows)
    return path, key, rows


def _edit(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_a_front_cut_without_the_key_does_not_begin_at_its_genesis(tmp_path: Path) -> None:
    path, key, _ = _original(tmp_path)
    _edit(path, f"DELETE FROM ledger WHERE seq <= {CUT}")
    failure = str(verify_ledger(path, key.public_key).first_failure)
    assert failure.startswith(f"row 1 (seq {CUT + 1}): the ledger does not begin at its genesis")
    assert "rows deleted from the front" in failure


def test_a_front_cut_renumbered_without_the_key_does_not_link_to_the_genesis(
    tmp_path: Path,
) -> None:
    path, key, _ = _original(tmp_path)
    _edit(
        path,
        f"DELETE FROM ledger WHERE seq <= {CUT}",
        f"UPDATE ledger SET seq = seq - {CUT}",
        f"UPDATE ledger_head SET seq = seq - {CUT}",
    )
    failure = str(verify_ledger(path, key.public_key).first_failure)
    assert failure.startswith("row 1 (seq 1): does not link to the ledger's genesis")
    assert "deleted from its front (the rest renumbered)" in failure


def test_re_signed_with_the_old_round_numbers_fails_at_round_1(tmp_path: Path) -> None:
    _, key, rows = _original(tmp_path)
    forged, _ = write_ledger(tmp_path / "forged.ledger", rows[CUT:], key)
    failure = str(verify_ledger(forged, key.public_key).first_failure)
    assert failure.startswith(f"row 1 is round {CUT + 1}: rounds 1-{CUT} are not in this ledger")


def test_re_signed_and_renumbered_but_still_claiming_the_cut_rounds_fails(
    tmp_path: Path,
) -> None:
    _, key, rows = _original(tmp_path)
    renumbered = [row | {"round": i} for i, row in enumerate(rows[CUT:], start=1)]
    forged, _ = write_ledger(tmp_path / "forged.ledger", renumbered, key)
    result = verify_ledger(forged, key.public_key)
    assert not result.ok and "claims epsilon" in str(result.first_failure)


def test_a_whole_new_chain_is_caught_only_by_the_first_row_kept(tmp_path: Path) -> None:
    """Rounds 3-5 re-signed as rounds 1-3 with their claims recomputed: a valid ledger
    of the key (the honest limit: the key holder can always write one). The first
    row's head the auditor kept from the original (printed by verify) catches it."""
    original, key, _ = _original(tmp_path)
    pub = str(export_public_key(key.public_key, tmp_path / "ledger.pub"))
    status, out, _ = _cli("audit", "verify", str(original), "--pubkey", pub, "--json")
    assert status == 0
    first = json.loads(out)["first_head"]
    assert first is not None and first.startswith("1:")
    status, text, _ = _cli("audit", "verify", str(original), "--pubkey", pub)
    assert f"first row: {first}" in text
    rewritten, _ = central_client_rows(COHORTS[CUT:], Z, DELTA)
    forged, _ = write_ledger(tmp_path / "forged.ledger", rewritten, key)
    assert verify_ledger(forged, key.public_key).ok  # nothing in the file shows it
    status, out, _ = _cli("audit", "verify", str(forged), "--pubkey", pub, "--json")
    payload = json.loads(out)
    assert status == 0 and payload["first_head"] != first  # the line to compare differs
    status, out, err = _cli("audit", "verify", str(forged), "--pubkey", pub, "--expect-head", first)
    assert status == 1 and out == ""
    assert "is not the head you expected" in err and "re-signed with the ledger key" in err
