"""A file beside the ledger that is a symbolic link is refused, never read through.

Why: the lock-free read counts only if the ledger's files are the same after it as
before it (``chain._file_state``), and the log index's first bytes are part of that.
A forged ledger shipped with ``<ledger>-shm`` linked to ``/proc/self/io`` (a file whose
bytes change at every read, on any Linux) made every read look like one a writer
changed, so ``audit verify`` said ``NOT READ`` (exit 5, "read it again", no verdict)
where the forgery fails (exit 1): a script that treats only exit 1 as a failure passed
it. SQLite makes its side files itself, never as links, so a link is refused outright.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import Ledger
from secagg.ledger.chain import LedgerError, LedgerKeptChanging, export_public_key, read_chain

#: a file whose bytes change at every read of it (the reader's own I/O counters)
_EVER_CHANGING = Path("/proc/self/io")

pytestmark = pytest.mark.skipif(
    not _EVER_CHANGING.exists(), reason="needs a file that changes at every read (Linux /proc)"
)


def _forged_ledger(folder: Path) -> tuple[Path, Path]:
    """A ledger of 2 rows whose first row was edited without the key, and its public key."""
    path, key = write_ledger(
        folder / "fed.ledger", [ledger_row(1, None, None), ledger_row(2, None, None)]
    )
    db = sqlite3.connect(path)
    db.execute("UPDATE ledger SET entry = replace(entry, '\"contributed\":3', '\"contributed\":2')")
    db.commit()
    db.close()
    return path, export_public_key(key.public_key, folder / "fed.pub")


@pytest.mark.parametrize("suffix", ["-shm", "-wal", "-journal"])
def test_a_side_file_linked_elsewhere_is_refused(tmp_path: Path, suffix: str) -> None:
    path, _pub = _forged_ledger(tmp_path)
    os.symlink(_EVER_CHANGING, tmp_path / f"fed.ledger{suffix}")
    with pytest.raises(LedgerError, match="is a symbolic link") as caught:
        read_chain(path)
    assert not isinstance(caught.value, LedgerKeptChanging)
    assert "\n" not in str(caught.value)


def test_a_forged_ledger_with_a_changing_log_index_fails_not_unread(tmp_path: Path) -> None:
    path, pub = _forged_ledger(tmp_path)
    os.symlink(_EVER_CHANGING, tmp_path / "fed.ledger-shm")
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub)])
    assert result.exit_code == 1, result.output  # was 5: NOT READ, "read it again"
    assert result.output.startswith("FAILED:") and "symbolic link" in result.output


def test_the_writer_refuses_a_linked_log_too(tmp_path: Path) -> None:
    """SQLite would write the log through the link, wherever it points."""
    path, key = write_ledger(tmp_path / "fed.ledger", [ledger_row(1, None, None)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"")
    os.symlink(elsewhere, tmp_path / "fed.ledger-wal")
    with pytest.raises(LedgerError, match="open the ledger again"):
        Ledger(path, key)
    assert elsewhere.read_bytes() == b""
