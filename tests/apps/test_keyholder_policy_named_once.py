"""``secagg keyholder --policy F``: a refusal that names the file where a key was read
(``[key_holder] key (--policy F) needs --config``, a named pipe at ``state``) names it
once, as the file is called, whatever blanks or control characters its name holds; and
``secagg client --policy F`` names its file as it is called.

Helper brief 321 (2026-12-07), the reported "blank run double naming": the refusal's
message was folded to one line (each run of whitespace one space) before
``_policy_mistake`` looked for ``(--policy F)`` in it, so for a file whose name has a run
of blanks (``'p  q.toml'``, shown as its ``repr``) the folded ``(--policy 'p q.toml')``
was not found, and the file was named a second time in front: ``--policy 'D/p  q.toml':
[key_holder] key (--policy 'D/p q.toml') needs --config ...``, the second name one that
is not the file's. ``secagg client`` folded its line the same way: its file named once,
but as ``'D/p q.toml'``, a file that does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.commands.common import folded_naming, shown_path


def _fifo(folder: Path) -> str:
    path = folder / "state.fifo"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


#: a [key_holder] file whose refusal names where its key was read -> its text
NAMING_MISTAKES: dict[str, Callable[[Path], str]] = {
    "a blank key without --config": lambda _d: '[key_holder]\nkey = "  "\n',
    "an empty key without --config": lambda _d: '[key_holder]\nkey = ""\n',
    "a key without --config": lambda _d: '[key_holder]\nkey = "holder.key"\n',
    "a named pipe at state": lambda d: f"[key_holder]\nstate = {_fifo(d)!r}\n".replace("'", '"'),
    "a named pipe at key": lambda d: f"[key_holder]\nkey = {_fifo(d)!r}\n".replace("'", '"'),
}

#: names whose blanks the folding changed (a run, a tab beside a blank, a blank at the end)
NAMES = ["p  q.toml", "p \t q.toml", "policy.toml  ", "a   b  c.toml", "plain.toml"]


def _said(folder: Path, name: str, text: str) -> tuple[Result, str]:
    certs = folder / "certs"
    certs.mkdir(exist_ok=True)
    policy = folder / name
    policy.write_text(text)
    result = CliRunner().invoke(
        main,
        [
            "keyholder",
            "--server",
            "127.0.0.1:9",
            "--name",
            "holder",
            "--certs",
            str(certs),
            "--policy",
            str(policy),
            "--quiet",
        ],
    )
    return result, str(policy)


def _named_once(result: Result, path: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    assert line.count("--policy") == 1, line
    assert f"--policy {shown_path(path)}" in line, line
    return line


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mistake", sorted(NAMING_MISTAKES))
def test_a_refusal_naming_the_policy_file_names_it_once(
    tmp_path: Path, mistake: str, name: str
) -> None:
    """Before: the names with a run of blanks (3 of 5; a tab is shown as ``\\t``) were
    named twice, the second folded."""
    result, path = _said(tmp_path, name, NAMING_MISTAKES[mistake](tmp_path))
    line = _named_once(result, path)
    assert line.startswith("secagg keyholder: holder: "), line


#: a [branch] file's mistake -> its text (the branch folded its line the same way)
BRANCH_MISTAKES = {
    "a bad value": "[branch]\nmax_clip = -1.0\n",
    "a budget without delta": "[branch]\nepsilon_budget = 1.0\n",
    "a misspelt key": "[branch]\nmax_clp = 1.0\n",
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mistake", sorted(BRANCH_MISTAKES))
def test_a_branch_policy_file_is_named_as_it_is_called(
    tmp_path: Path, mistake: str, name: str
) -> None:
    """``secagg client --policy F``: before, the name's blank runs were folded (``--policy
    'D/p q.toml'`` for ``p  q.toml``), a file that does not exist; now it is shown as it
    is called, once."""
    certs = tmp_path / "certs"
    certs.mkdir()
    policy = tmp_path / name
    policy.write_text(BRANCH_MISTAKES[mistake])
    result = CliRunner().invoke(
        main,
        [
            *("client", "--server", "127.0.0.1:9", "--name", "b", "--dimension", "4"),
            *("--certs", str(certs), "--policy", str(policy), "--quiet"),
        ],
    )
    line = _named_once(result, str(policy))
    assert line.startswith("secagg client: b: "), line


def test_a_folded_message_keeps_the_files_shown_name_whole() -> None:
    """The fold that the line's naming goes through keeps a name it shows as its
    ``repr`` (blanks and all), and still folds the rest of the message."""
    path = "/d/p  q.toml"
    message = f"[key_holder] key (--policy {shown_path(path)})  needs\n--config"
    assert folded_naming(message, path) == (
        f"[key_holder] key (--policy {shown_path(path)}) needs --config"
    )


_BLANKS = st.text(alphabet=" \t", min_size=1, max_size=3)
_WORD = st.text(alphabet="abcxyz.-_", min_size=1, max_size=6)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mistake=st.sampled_from(sorted(NAMING_MISTAKES)),
    first=_WORD,
    blanks=_BLANKS,
    last=_WORD,
    trailing=st.sampled_from(["", " ", "  "]),
)
def test_any_name_with_blanks_is_named_once(
    tmp_path_factory: pytest.TempPathFactory,
    mistake: str,
    first: str,
    blanks: str,
    last: str,
    trailing: str,
) -> None:
    """Whatever run of blanks the name holds: the file named once, as it is called."""
    folder = tmp_path_factory.mktemp("policy")
    name = first + blanks + last + trailing
    if name.strip() in {".", ".."}:
        return
    result, path = _said(folder, name, NAMING_MISTAKES[mistake](folder))
    _named_once(result, path)
