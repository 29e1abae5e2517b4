"""``secagg client --state`` and a database under a party: a failure of the machine (a
full disk, an I/O error, a file it may not write, another process holding the state's
lock, a database error) is the party's one line with exit 1, as ``secagg server`` says
the same failure of its own state; a state file that is the mistake (another branch's,
not a branch's state at all) stays exit 2.

Before (review, 2026-12-07): every ``--state`` failure was exit 2, "a mistake in its
options or files", a full disk while the branch recorded a round included; a database
error under ``client`` or ``keyholder`` was the top-level group's ``Error: database
error: ...``, naming neither the command nor the party. The failure is put in by
replacing the call that meets it: in-process, nothing dialled.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.durable import LockTimeout
from secagg.runtime import branch_state
from secagg.runtime.branch_state import RoundMark

NAME = "branch-a"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "ca"
    devca.init_ca(folder)
    devca.issue_client(folder, NAME)
    return folder


def _client(certs: Path, state: Path) -> Result:
    """``secagg client --state state``, its run replaced (:func:`_run_as`): nothing dialled."""
    return CliRunner().invoke(
        main,
        [
            "client", "--server", "127.0.0.1:1", "--name", NAME, "--certs", str(certs),
            "--dimension", "4", "--quiet", "--state", str(state),
        ],
    )  # fmt: skip


def _line(result: Result, status: int) -> str:
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    (line,) = [text for text in result.output.splitlines() if text.strip()]
    return line


def _run_as(monkeypatch: pytest.MonkeyPatch, branch: Callable[[Path], Any], state: Path) -> None:
    monkeypatch.setattr("secagg.runtime.launch.run_branch", lambda *a, **k: branch(state))


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EIO, errno.EROFS, errno.EACCES], ids=errno.errorcode.get
)
def test_a_state_the_machine_cannot_write_is_exit_1_naming_the_file(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    state = tmp_path / "branch.state"

    def failing(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(branch_state, "write_json_atomically", failing)
    _run_as(monkeypatch, lambda path: RoundMark(path, NAME), state)
    line = _line(_client(certs, state), 1)  # was exit 2
    assert line == (
        f"secagg client: {NAME}: --state {state}: cannot create this branch's state "
        f"({os.strerror(code)})"
    )


def test_a_state_another_process_holds_locked_is_exit_1(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "branch.state"

    def held(*args: object, **kwargs: object) -> Any:
        raise LockTimeout(f"{state}.lock is held by another process")

    def branch(path: Path) -> None:
        mark = RoundMark(path, NAME)
        monkeypatch.setattr(branch_state, "exclusive_lock", held)
        mark.advance(1, "fed")

    _run_as(monkeypatch, branch, state)
    line = _line(_client(certs, state), 1)  # was exit 2
    assert (
        line.startswith(f"secagg client: {NAME}: --state {state}: ") and "another process" in line
    )


def test_another_branchs_state_stays_a_usage_error(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard: the file is the mistake, not the machine."""
    state = tmp_path / "branch.state"
    state.write_text(
        json.dumps({"version": 2, "branch": "branch-b", "federation": None, "last_started": None})
    )
    _run_as(monkeypatch, lambda path: RoundMark(path, NAME), state)
    line = _line(_client(certs, state), 2)
    assert line.startswith(f"secagg client: {NAME}: --state {state} is the state of branch")


@pytest.mark.parametrize("party", ["client", "keyholder"])
def test_a_database_error_under_a_party_is_its_own_line(
    certs: Path, monkeypatch: pytest.MonkeyPatch, party: str
) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    runner = "run_branch" if party == "client" else "run_key_holder"
    monkeypatch.setattr(f"secagg.runtime.launch.{runner}", failing)
    options = ["--dimension", "4"] if party == "client" else []
    result = CliRunner().invoke(
        main,
        [
            party, "--server", "127.0.0.1:1", "--name", NAME, "--certs", str(certs),
            *options, "--quiet",
        ],
    )  # fmt: skip
    # was: "Error: database error: database is locked"
    assert _line(result, 1) == f"secagg {party}: {NAME}: database error: database is locked"


@pytest.mark.parametrize("in_the_way", [False, True], ids=["folder missing", "a file for a folder"])
def test_a_state_path_that_names_no_file_stays_a_usage_error(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_the_way: bool
) -> None:
    """The operator's typo in ``--state``'s folder is the flag's mistake (exit 2, as before
    the state's machine failures became exit 1), not the machine's: it was exit 1 since
    every OSError under the state read as the machine's."""
    folder = tmp_path / "brnach"
    if in_the_way:
        folder.write_text("not a folder")
    state = folder / "branch.state"
    _run_as(monkeypatch, lambda path: RoundMark(path, NAME), state)
    line = _line(_client(certs, state), 2)  # was exit 1
    assert line.startswith(f"secagg client: {NAME}: --state {state}: cannot create")
