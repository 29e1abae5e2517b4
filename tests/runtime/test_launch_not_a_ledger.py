"""A file at the server's ledger path that is no ledger is named for what it is.

Before (review, 2026-12-06) :func:`~secagg.runtime.launch.open_server_state` said
"``<state>.ledger`` is not a readable ledger: no such table: ledger" for the state
database copied over the ledger (a restore gone wrong), and "...: file is not a database"
for a file that is not SQLite: both read as a damaged ledger. The ledger layer's
:class:`~secagg.ledger.chain.NotALedger` now says what the file is, in one line naming
the state it belongs to; a damaged ledger still fails as one, and the refused start
leaves the files as it found them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from secagg.errors import ConfigurationError
from secagg.ledger.chain import LedgerError, NotALedger
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state

NAMES = ["branch-a", "branch-b", "branch-c"]


def _config(tmp_path: Path) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "ledgers", "clients": NAMES, "dimension": 4, "rounds": 1},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )


def _a_federation(tmp_path: Path) -> tuple[FederationConfig, Path, Path]:
    """A state and its ledger as a server leaves them (opened with --init, closed)."""
    config = _config(tmp_path)
    open_server_state(config, init=True).close()
    state = Path(config.server.state)
    return config, state, Path(f"{state}.ledger")


def _files(folder: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in sorted(folder.iterdir())}


def test_the_state_database_at_the_ledgers_path_is_named(tmp_path: Path) -> None:
    config, state, ledger = _a_federation(tmp_path)
    shutil.copy(state, ledger)  # a restore that put the state where its ledger belongs
    before = _files(tmp_path)
    with pytest.raises(NotALedger) as caught:
        open_server_state(config)
    assert str(caught.value) == (
        f"{ledger} is not a privacy ledger: it is the secagg server's state database (its "
        f"rounds and checkpoints); the ledger of server.state {state} belongs at that "
        "path: move the file away (and put the federation's ledger back, if it has one)"
    )
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)  # secagg server: one line, exit 2
    assert _files(tmp_path) == before  # nothing written, the lock released


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"round,epsilon\n1,0.5\n", "not an SQLite database at all"),
        (b"\x00" * 4096, "not an SQLite database at all"),
    ],
    ids=["csv", "zeros"],
)
def test_a_file_that_is_not_sqlite_at_the_ledgers_path_is_named(
    tmp_path: Path, content: bytes, what: str
) -> None:
    config, _, ledger = _a_federation(tmp_path)
    ledger.write_bytes(content)
    with pytest.raises(NotALedger, match=f"^{ledger} is not a privacy ledger: it is {what}; "):
        open_server_state(config)


def test_another_sqlite_file_at_the_ledgers_path_is_named(tmp_path: Path) -> None:
    config, _, ledger = _a_federation(tmp_path)
    ledger.unlink()
    with sqlite3.connect(ledger) as db:
        db.execute("CREATE TABLE metrics (round INTEGER, auc REAL)")
    db.close()
    with pytest.raises(NotALedger, match="an SQLite database without the ledger's tables"):
        open_server_state(config)


def test_a_damaged_ledger_still_fails_as_a_ledger(tmp_path: Path) -> None:
    """Part of a ledger (its rows' table dropped): damaged, not the wrong file."""
    config, _, ledger = _a_federation(tmp_path)
    with sqlite3.connect(ledger) as db:
        db.execute("DROP TABLE ledger")
    db.close()
    with pytest.raises(LedgerError, match="is not a readable ledger: no such table: ledger") as e:
        open_server_state(config)
    assert not isinstance(e.value, NotALedger)
