"""A branch's state file that cannot be read, written or locked: the refusal names the
file once, in one line, whatever the OSError's own text holds (the file's path again, a
line break, no strerror at all).

Helper brief 325 (2026-12-07, item 5): the OSError's inner text was folded into the
message as it was, so an OSError naming the file (``[Errno 5] : '/srv/b.state'``, when
its strerror is empty, or a text of its own naming the path) named the file twice, and
its second mention was folded as text: ``secagg client --state $'b\\nx.state'`` then
printed the name once as its ``repr`` and once as ``b x.state``, a file that is not
there.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path
from secagg.runtime import branch_state
from secagg.runtime.branch_state import BranchStateError, RoundMark

NAME = "branch-a"


def _errors(path: Path) -> dict[str, OSError]:
    """OSErrors whose text names ``path``, with a line break or without a strerror."""
    p = str(path)
    return {
        "no strerror": OSError(errno.EIO, "", p),
        "a strerror naming the file": OSError(errno.EIO, f"I/O error writing {p}\n(retry)", p),
        "a text naming the file": OSError(f"cannot write {p}\nnow"),
        "a text naming it quoted": OSError(f"cannot write {p!r}"),
    }


#: where the OSError is met -> (what it replaces, what the branch does)
STEPS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "created": ("write_json_atomically", lambda path: RoundMark(path, NAME)),
    "read": ("read_regular_file", lambda path: RoundMark(path, NAME)),
    "locked": ("exclusive_lock", lambda path: RoundMark(path, NAME).advance(1, "fed")),
}


def _refusal(
    monkeypatch: pytest.MonkeyPatch, path: Path, step: str, error: OSError
) -> BranchStateError:
    target, act = STEPS[step]
    if step != "created":
        RoundMark(path, NAME)  # a file to read, or to lock and write

    def fail(*_: object, **__: object) -> Any:
        raise error

    monkeypatch.setattr(branch_state, target, fail)
    with pytest.raises(BranchStateError) as info:
        act(path)
    return info.value


@pytest.mark.parametrize("kind", sorted(_errors(Path("p"))))
@pytest.mark.parametrize("step", sorted(STEPS))
def test_the_refusal_names_the_file_once_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, kind: str
) -> None:
    path = tmp_path / "b.state"
    message = str(_refusal(monkeypatch, path, step, _errors(path)[kind]))
    assert "\n" not in message, message
    assert message.count(str(path)) == 1, message
    assert message.startswith(f"{path}: cannot "), message


def test_a_plain_strerror_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "b.state"
    error = PermissionError(errno.EACCES, "Permission denied", str(path))
    message = str(_refusal(monkeypatch, path, "created", error))
    assert message == f"{path}: cannot create this branch's state (Permission denied)"
    # an empty strerror: the errno's own words
    message = str(
        _refusal(monkeypatch, tmp_path / "c.state", "created", OSError(errno.EIO, "", "x"))
    )
    assert message.endswith("(Input/output error)"), message


def test_another_file_named_in_the_text_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock beside the file, or a temporary one, is another file: named as it was."""
    path = tmp_path / "b.state"
    lock = f"{path}.lock"
    message = str(_refusal(monkeypatch, path, "locked", OSError(f"cannot open {lock}")))
    assert f"cannot open {lock}" in message, message


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "ca"
    devca.init_ca(folder)
    devca.issue_client(folder, NAME)
    return folder


def _client_line(monkeypatch: pytest.MonkeyPatch, certs: Path, state: Path, error: OSError) -> str:
    """``secagg client --state state`` whose run is only the creation of its state, which
    meets ``error``: the one printable line it prints (exit 1, the machine's refusal)."""

    def fail(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(branch_state, "write_json_atomically", fail)
    monkeypatch.setattr("secagg.runtime.launch.run_branch", lambda *a, **k: RoundMark(state, NAME))
    result = CliRunner().invoke(
        main,
        [
            "client", "--server", "127.0.0.1:1", "--name", NAME, "--certs", str(certs),
            "--dimension", "4", "--quiet", "--state", str(state),
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = [text for text in result.output.splitlines() if text.strip()]
    assert len(lines) == 1 and lines[0].isprintable(), result.output
    return lines[0]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["b.state", "b\nx.state", "b  x.state", "b\x1bx.state", "b\tx.state"]),
    kind=st.sampled_from(sorted(_errors(Path("p")))),
)
def test_secagg_client_names_the_file_once(
    certs: Path, tmp_path_factory: pytest.TempPathFactory, name: str, kind: str
) -> None:
    """Before: ``--state 'b\\nx.state': ... (cannot write /.../b x.state now)``."""
    state = tmp_path_factory.mktemp("state") / name
    with pytest.MonkeyPatch.context() as monkeypatch:
        line = _client_line(monkeypatch, certs, state, _errors(state)[kind])
    shown = shown_path(str(state))
    assert line.count(shown) == 1, line
    assert line.startswith(f"secagg client: {NAME}: --state {shown}: cannot create "), line
    folded = " ".join(str(state).split())
    assert folded == shown or folded not in line, line
