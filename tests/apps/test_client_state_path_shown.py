"""``secagg client --state F``'s failure line shows ``F`` by ``shown_path``: an escape
(or another character a terminal would not show as typed) in the state file's name no
longer reaches the terminal, and the line stays one line; its exit status is unchanged
(2 for a file that is the mistake, 1 for the machine's refusal).

Helper brief 323 (2026-12-07): the message was folded to one line (a line break in the
name became a space) but the name was put in raw, so ``--state $'b\\x1b[2Jx.state'``
sent the escape to the terminal. The run is replaced by the branch's state alone: in
process, nothing dialled (as tests/apps/test_client_state_file_status.py).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _odd_names import LINE_BREAKER, NAME_CHARACTER
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path
from secagg.runtime import branch_state
from secagg.runtime.branch_state import RoundMark

NAME = "branch-a"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "ca"
    devca.init_ca(folder)
    devca.issue_client(folder, NAME)
    return folder


def _garbage(state: Path) -> None:
    state.write_text("not json {{{")


def _another_branchs(state: Path) -> None:
    state.write_text(
        json.dumps({"version": 2, "branch": "branch-b", "federation": None, "last_started": None})
    )


def _no_room(path: Path, *args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


#: a failure of the state file -> (what is in place before the run, what the run does
#: with it, the exit status)
CASES: dict[str, tuple[Callable[[Path], None], Callable[[Path], Any], int]] = {
    "not a branch's state": (_garbage, lambda path: RoundMark(path, NAME), 2),
    "another branch's state": (_another_branchs, lambda path: RoundMark(path, NAME), 2),
    "a full disk as it is created": (
        lambda state: None,
        lambda path: RoundMark(path, NAME).advance(1, "fed"),
        1,
    ),
}

#: names a terminal would not show as typed
ODD_NAMES = {
    "an ANSI escape": "b\x1b[2Jx.state",
    "a bare escape": "b\x1bx.state",
    "a line break": "b\nx.state",
    "a tab": "b\tx.state",
    "a bidirectional override": "b\u202ex.state",
    "a delete": "b\x7fx.state",
}


def _run(monkeypatch: pytest.MonkeyPatch, certs: Path, case: str, state: Path) -> Result:
    """``secagg client --state state`` whose run is only the case's use of the state."""
    before, branch, _ = CASES[case]
    before(state)
    if case.startswith("a full disk"):
        monkeypatch.setattr(branch_state, "write_json_atomically", _no_room)
    monkeypatch.setattr("secagg.runtime.launch.run_branch", lambda *a, **k: branch(state))
    return CliRunner().invoke(
        main,
        [
            "client", "--server", "127.0.0.1:1", "--name", NAME, "--certs", str(certs),
            "--dimension", "4", "--quiet", "--state", str(state),
        ],
    )  # fmt: skip


def _line(case: str, result: Result) -> str:
    """The one printable line, the case's exit status, no traceback."""
    assert result.exit_code == CASES[case][2], result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = [text for text in result.output.splitlines() if text.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].isprintable(), lines[0]
    assert lines[0].startswith(f"secagg client: {NAME}: --state "), lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_state_file_with_an_odd_name_is_shown_one_printable_line(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, kind: str
) -> None:
    """Before: the escape (or the delete, the override) reached the terminal; a line
    break became a space, naming another file. Now: the name as its ``repr``."""
    state = tmp_path / ODD_NAMES[kind]
    line = _line(case, _run(monkeypatch, certs, case, state))
    assert f"--state {shown_path(str(state))}" in line, line


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_plain_name_is_as_typed(
    certs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    state = tmp_path / "branch.state"
    line = _line(case, _run(monkeypatch, certs, case, state))
    assert f"--state {state}" in line and repr(str(state)) not in line, line


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(sorted(CASES)),
    before=st.text(NAME_CHARACTER, max_size=8),
    odd=LINE_BREAKER,
    after=st.text(NAME_CHARACTER, max_size=8),
)
def test_any_state_name_with_a_control_character_is_one_printable_line(
    certs: Path,
    tmp_path_factory: pytest.TempPathFactory,
    case: str,
    before: str,
    odd: str,
    after: str,
) -> None:
    """Whatever the name holds around a control or separator character."""
    name = before + odd + after
    if len(os.fsencode(name)) > 200:  # past a file system's name length: another mistake
        return
    folder = tmp_path_factory.mktemp("odd")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _line(case, _run(monkeypatch, certs, case, folder / name))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
