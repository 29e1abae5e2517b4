"""A ledger is born with a signed genesis head (reliability review D9).

A server stopped before its first round leaves a ledger with no rows; it must verify
as "0 rows", not fail as "truncated or rebuilt". Emptying a ledger that had rows is
still caught, and the genesis head is an anchor like any other. The writer also
notices its file deleted or replaced under it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.ledger import Ledger, LedgerError, LedgerKey, export_public_key, verify_ledger
from secagg.ledger.chain import (
    check_expected_head,
    format_head,
    genesis_hash,
    parse_head,
    public_key_path,
    read_chain,
)


def _row(number: int) -> dict:
    return {"version": 1, "round": number, "status": "aborted", "reason": "test"}


def _edit(path: Path, statement: str) -> None:
    db = sqlite3.connect(path)
    db.execute(statement)
    db.commit()
    db.close()


def test_an_empty_ledger_verifies_as_0_rows(tmp_path: Path) -> None:
    key_path = tmp_path / "state.sqlite.ledger-key"
    key = LedgerKey.load_or_create(key_path)  # exactly what the server does at start
    Ledger(tmp_path / "state.sqlite.ledger", key).close()  # ... and stops before round 1
    chain = read_chain(tmp_path / "state.sqlite.ledger", key.public_key)
    assert chain.ok, chain.failure
    assert chain.rows == [] and chain.head == format_head(0, genesis_hash(key.public_key))
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "verify",
            str(tmp_path / "state.sqlite.ledger"),
            "--pubkey",
            str(public_key_path(key_path)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "VERIFIED: 0 rows" in result.output
    assert "truncated" not in result.output


def test_the_genesis_head_anchors_the_ledger_that_grows_from_it(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    born = ledger.anchor()
    assert parse_head(born) == (0, genesis_hash(key.public_key))
    for number in (1, 2):
        ledger.append(_row(number))
    ledger.close()
    chain = read_chain(path, key.public_key)
    assert chain.ok, chain.failure
    anchored = check_expected_head(chain, born)
    assert anchored.ok and anchored.grown_by == 2
    # a genesis hash with a row count other than 0 is a wrong token, not a pass
    assert not check_expected_head(chain, format_head(1, genesis_hash(key.public_key))).ok
    # a 0-row head is this key's genesis or a mistyped token (another key's genesis)
    with pytest.raises(ConfigurationError, match="genesis"):
        check_expected_head(chain, format_head(0, genesis_hash(b"\x01" * 32)))


def test_emptying_a_ledger_with_rows_is_still_caught(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    for number in (1, 2):
        ledger.append(_row(number))
    ledger.close()
    _edit(path, "DELETE FROM ledger")  # every row gone, the head of row 2 kept
    failure = read_chain(path, key.public_key).failure
    assert failure is not None and "says 2 rows" in failure
    _edit(path, "DELETE FROM ledger_head")  # and the head too
    failure = read_chain(path, key.public_key).failure
    assert failure is not None and "no rows and no signed head" in failure


def test_a_genesis_head_with_rows_after_it_is_refused(tmp_path: Path) -> None:
    """Rows appended without the key behind an old genesis head: the head no longer
    matches the file."""
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    Ledger(path, key).close()
    db = sqlite3.connect(path)
    (head,) = db.execute("SELECT seq, hash, signature FROM ledger_head").fetchall()
    db.close()
    ledger = Ledger(path, key)
    ledger.append(_row(1))
    ledger.close()
    db = sqlite3.connect(path)
    db.execute("INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?, ?)", head)
    db.commit()
    db.close()
    failure = read_chain(path, key.public_key).failure
    assert failure is not None and "the file has 1" in failure


def test_an_older_empty_ledger_gets_its_genesis_head_from_its_writer(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    Ledger(path, key).close()
    _edit(path, "DELETE FROM ledger_head")  # as versions before genesis heads left it
    assert not read_chain(path, key.public_key).ok
    Ledger(path, key).close()  # the server restarts: its writer signs the genesis head
    assert read_chain(path, key.public_key).ok
    assert verify_ledger(path, key.public_key).ok


def test_an_empty_ledger_verifies_against_its_exported_key(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    Ledger(path, key).close()
    pem = export_public_key(key.public_key, tmp_path / "ledger.pub")
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    assert result.exit_code == 0, result.output
    other = LedgerKey.generate()
    wrong = export_public_key(other.public_key, tmp_path / "other.pub")
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(wrong)])
    assert result.exit_code != 0 and "another public key" in result.output


@pytest.mark.parametrize("damage", ["deleted", "replaced"])
def test_a_ledger_deleted_or_replaced_under_its_writer_refuses_to_append(
    tmp_path: Path, damage: str
) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    ledger.append(_row(1))
    if damage == "deleted":
        path.unlink()
    else:
        other = tmp_path / "other.sqlite"
        Ledger(other, key).close()
        os.replace(other, path)
    with pytest.raises(LedgerError, match=f"was {damage}"):
        ledger.append(_row(2))
    ledger.close()
