"""What the audit tells an auditor to copy, for a ledger named through a link, names the
files SQLite reads: beside the link's target, under the target's name.

Why: a ledger named through a symbolic link is read with the side files beside the
link's target (tests/ledger/test_ledger_through_a_link.py), but the failure of a file in
WAL mode read without its log said "copy <link's name>-wal with it", and the note on an
empty log named "<link's name>-wal": a log copied beside the link, as told, is never
read (SQLite looks beside the target), and the same failure came back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from _ledgers import central_client_rows

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger

ROWS, _EPSILON = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)
KEY = LedgerKey.generate()


def _copied_without_its_log(folder: Path) -> Path:
    """A running writer's file (WAL mode) copied alone to ``folder/evidence``."""
    live = folder / "fed.ledger"
    ledger = Ledger(live, KEY)
    try:
        for row in ROWS:
            ledger.append(row)
        (folder / "evidence").mkdir()
        return Path(shutil.copyfile(live, folder / "evidence" / "state.sqlite.ledger"))
    finally:
        ledger.close()


def _linked(target: Path, folder: Path) -> Path:
    (folder / "audit").mkdir()
    link = folder / "audit" / "ledger"
    os.symlink(os.path.relpath(target, link.parent), link)  # relative, as `ln -sr` makes
    return link


def test_the_missing_log_is_named_beside_the_links_target(tmp_path: Path) -> None:
    link = _linked(_copied_without_its_log(tmp_path), tmp_path)
    result = verify_ledger(link, KEY.public_key)
    assert not result.ok and result.chain.without_log
    assert "state.sqlite.ledger-wal" in result.failure, result.failure
    assert str(tmp_path / "evidence") in result.failure, result.failure  # where it goes
    assert "ledger-wal with it" not in result.failure.replace("state.sqlite.ledger-wal", "")


def test_the_empty_log_note_names_the_log_read(tmp_path: Path) -> None:
    target = _copied_without_its_log(tmp_path)
    target.with_name(target.name + "-wal").write_bytes(b"")  # an empty log beside it
    link = _linked(target, tmp_path)
    result = verify_ledger(link, KEY.public_key)
    assert result.chain.empty_log
    (note,) = [n for n in result.notes if "empty" in n and "-wal" in n]
    assert str(target) + "-wal" in note, note
