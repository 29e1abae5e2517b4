"""A branch's state file named by a plain word (``--state state``, ``--state file``): the
refusal's reason keeps its own words, only a mention of the file in an OSError's text is
said as "it".

Second review of 98a81d23 (helper brief 326, 2026-12-07): every bare occurrence of the
state file's name in the reason became "it", the reason's own words included, so a
corrupt ``state`` file (typed ``--state state`` in the branch's folder) said ``cannot
read this branch's state (not a branch it of version 1, 2 or 3)``, a ``branch`` file
``not a it state of ...``, and a ``file`` in a read-only folder ``(Read-only it
system)``. The texts this module writes itself (and json's) never name the file; the
OS's words name no file either; an OSError's own text may, by its quoted ``repr`` or as
a path that is no plain word.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.runtime import branch_state
from secagg.runtime.branch_state import BranchStateError, RoundMark

NAME = "branch-a"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("state", "not a branch state of version 1, 2 or 3"),
        ("branch", "not a branch state of version 1, 2 or 3"),
        ("version", "not a branch state of version 1, 2 or 3"),
    ],
)
def test_a_corrupt_file_named_by_a_word_keeps_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, said: str
) -> None:
    """Before: ``state: cannot read this branch's state (not a branch it of ...)``."""
    (tmp_path / name).write_text('{"version": 9}')
    monkeypatch.chdir(tmp_path)  # the file typed relative, as --state state
    with pytest.raises(BranchStateError) as info:
        RoundMark(Path(name), NAME)
    assert f"{name}: cannot read this branch's state ({said}); refusing" in str(info.value)


def test_the_oss_words_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``file: cannot create this branch's state (Read-only it system)``."""

    def fail(*_: object, **__: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "file")

    monkeypatch.setattr(branch_state, "write_json_atomically", fail)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BranchStateError) as info:
        RoundMark(Path("file"), NAME)
    assert (
        str(info.value) == f"file: cannot create this branch's state ({os.strerror(errno.EROFS)})"
    )


@pytest.mark.parametrize("text", ["cannot write 'state' now", "cannot write 'b.state' now"])
def test_a_quoted_mention_in_an_oserrors_text_is_still_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """As 98a81d23 made it: the file named in an OSError's own text is said as "it"."""
    name = text.split("'")[1]

    def fail(*_: object, **__: object) -> None:
        raise OSError(text)

    monkeypatch.setattr(branch_state, "write_json_atomically", fail)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BranchStateError) as info:
        RoundMark(Path(name), NAME)
    assert str(info.value) == f"{name}: cannot create this branch's state (cannot write it now)"


_WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=10)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=_WORD)
@example(name="state")
@example(name="a")
def test_a_word_named_file_never_rewrites_the_reason(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """Whatever word names the file, a corrupt one's reason is the module's own words."""
    folder = tmp_path_factory.mktemp("b")
    (folder / name).write_text('{"version": 9}')
    with pytest.MonkeyPatch.context() as monkeypatch, pytest.raises(BranchStateError) as info:
        monkeypatch.chdir(folder)
        RoundMark(Path(name), NAME)
    assert "(not a branch state of version 1, 2 or 3)" in str(info.value), str(info.value)


def test_a_file_too_large_is_still_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reason that names the file (the reader's, past its bound) says it as "it" when
    its name is no plain word, as 98a81d23 made it (passes before and after)."""
    (tmp_path / "b.state").write_bytes(b" " * (branch_state.MAX_STATE_BYTES + 1))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BranchStateError) as info:
        RoundMark(Path("b.state"), NAME)
    assert "cannot read this branch's state (it is larger than " in str(info.value), info.value


@pytest.mark.parametrize("step", ["created", "locked"])
def test_an_oserror_of_errno_0_is_no_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """An OSError of errno 0 with no strerror (some libraries raise one) has no words of
    its errno to give: ``os.strerror(0)`` is "Success", so the refusal said ``cannot
    create this branch's state (Success)``; its own text is said instead."""
    path = tmp_path / "b.state"
    if step == "locked":
        RoundMark(path, NAME)
    target = "write_json_atomically" if step == "created" else "exclusive_lock"

    def fail(*_: object, **__: object) -> None:
        raise OSError(0, "")

    monkeypatch.setattr(branch_state, target, fail)
    with pytest.raises(BranchStateError) as info:
        RoundMark(path, NAME).advance(1, "fed") if step == "locked" else RoundMark(path, NAME)
    message = str(info.value)
    assert "Success" not in message, message
    assert message.endswith("branch's state ([Errno 0])"), message
