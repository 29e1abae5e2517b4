"""A signed row whose JSON nests past the interpreter's recursion limit fails, naming it.

No writer can produce such a row (``canonical`` would recurse too), but whoever holds
the ledger key (the operator) can sign any bytes. Before: ``audit verify`` printed
"cannot be read as a ledger: maximum recursion depth exceeded" naming no row, and
``audit report`` ended in a RecursionError traceback of thousands of lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger, LedgerKey, export_public_key
from secagg.ledger.chain import canonical, head_message, row_hash
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

KEY = LedgerKey.generate()


def _signed(path: Path, bodies: list[bytes]) -> Path:
    """A ledger of ``bodies`` as given, each chained and signed with :data:`KEY` (with
    its signed head), as a forger holding the key writes it."""
    ledger = Ledger(path, KEY)
    seq, prev = ledger.head()
    db = ledger._db
    for body in bodies:
        seq += 1
        digest = row_hash(seq, prev, body)
        signature = KEY.signing.sign(bytes.fromhex(digest)).hex()
        head = KEY.signing.sign(head_message(seq, digest)).hex()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, ?)",
            (seq, body.decode(), prev, digest, signature),
        )
        db.execute("INSERT OR REPLACE INTO ledger_head VALUES (1, ?, ?, ?)", (seq, digest, head))
        db.execute("COMMIT")
        prev = digest
    ledger.close()
    return path


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_json_nested_past_the_recursion_limit_fails_naming_the_row(
    tmp_path: Path, depth: int
) -> None:
    good = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)[0]
    nested = canonical(good[1] | {"backend": "HERE"}).replace(
        b'"HERE"', b"[" * depth + b"]" * depth
    )
    path = _signed(tmp_path / "deep.ledger", [canonical(good[0]), nested])
    result = verify_ledger(path, KEY.public_key)
    assert not result.ok and len(result.chain.rows) == 1  # row 1 is good, row 2 is not
    assert result.first_failure == (
        "row 2 (seq 2): the entry is nested too deeply to be read (no writer nests its rows "
        "so): edited or forged"
    )
    pub = str(export_public_key(KEY.public_key, tmp_path / "k.pub"))
    run = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub])
    assert run.exit_code == 1 and run.stderr.count("\n") == 1
    assert "row 2 (seq 2): the entry is nested too deeply" in run.stderr
    text, _ = build_report(path, KEY.public_key)
    assert "**FAILED**: row 2 (seq 2): the entry is nested too deeply" in text
    out = tmp_path / "report"
    run = CliRunner().invoke(
        main, ["audit", "report", str(path), "--pubkey", pub, "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output and run.exception is None
    assert "verdict: FAILED: row 2 (seq 2)" in run.stderr
