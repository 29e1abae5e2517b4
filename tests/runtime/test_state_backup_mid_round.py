"""A server state restored from a copy taken while a round ran is refused beside a
ledger that recorded that round's end.

Why: backups of a live federation are taken while a round runs (most of the time one
does). Restored after that round had ended (aborted, and ledgered), such a copy holds the
round as ``running``; the cross-check of state and ledger
(:func:`~secagg.runtime.launch.check_state_against_ledger`) compared only rounds the
ledger calls complete, so it let the copy through. The restart then recorded the round
"aborted: server restarted mid-round" against the ledger's own reason, and a round the
newer state had charged (its sum revealed before the abort: ``revealed``) lost its
charge: the accountant, rebuilt from the state, continued below the epsilon the ledger
had already claimed. A ledger row exists only once the state has finished its round (the
state commits first), so a state still running a round the ledger ended is older than the
ledger, whatever the statuses: refused in one line, nothing written.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.store import StateError
from secagg.transport.inprocess import InProcessHub

NAMES = ["b1", "b2", "b3"]


def _config(tmp_path: Path) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "backup", "clients": NAMES, "dimension": 4, "rounds": 3},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "server": {"state": str(tmp_path / "state.sqlite")},
    }
    return FederationConfig.from_dict(data)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("state.sqlite*"))
        if not p.name.endswith(".lock")
    }


def _run_with_a_backup_mid_round(config: FederationConfig, backup: Path) -> None:
    """Two rounds, each aborted (no branch is connected: fewer than two sampled) and
    ledgered; a copy of the state is taken (SQLite's online backup, as an operator's
    ``.backup`` does) while round 2 is running."""
    state = open_server_state(config)
    try:
        server = build_server(config, InProcessHub(), state.store, ledger=state.ledger)
        begin = state.store.begin_round

        def begin_then_back_up(number: int, participants: list[str]) -> None:
            begin(number, participants)
            if number == 2:
                with sqlite3.connect(backup) as copy:
                    state.store._db.backup(copy)

        state.store.begin_round = begin_then_back_up  # type: ignore[method-assign]
        assert [server.run_round().status for _ in range(2)] == ["aborted", "aborted"]
    finally:
        state.close()


def test_a_state_copied_while_a_ledgered_round_ran_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    backup = tmp_path / "backup.sqlite"
    _run_with_a_backup_mid_round(config, backup)
    for leftover in tmp_path.glob("state.sqlite-*"):  # the restore: the copy alone
        leftover.unlink()
    shutil.copyfile(backup, tmp_path / "state.sqlite")
    before = _digests(tmp_path)
    with pytest.raises(StateError, match="round 2 is aborted in the ledger") as refused:
        open_server_state(config)
    assert "older than the ledger" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert _digests(tmp_path) == before  # nothing written: the operator restores the state


def test_the_state_that_goes_with_the_ledger_still_opens(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _run_with_a_backup_mid_round(config, tmp_path / "backup.sqlite")
    state = open_server_state(config)
    try:
        assert state.store.round_numbers() == {1: "aborted", 2: "aborted"}
    finally:
        state.close()


def test_a_state_finished_otherwise_than_the_ledger_is_refused(tmp_path: Path) -> None:
    """The other contradiction that check let through: the state has a round complete
    that its ledger has aborted (only the reverse was refused)."""
    config = _config(tmp_path)
    _run_with_a_backup_mid_round(config, tmp_path / "backup.sqlite")
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.execute("UPDATE rounds SET status = 'complete' WHERE number = 1")
    with pytest.raises(StateError, match=r"round 1 is aborted in the ledger .* but complete"):
        open_server_state(config)
