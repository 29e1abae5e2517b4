"""``secagg client`` and ``secagg keyholder`` as an operator meets them: each mistake in
their flags and files is one line naming the flag or key, exit 2, before anything dials.

Table-driven, in process: the party's run (``run_branch``, ``run_key_holder``) is
replaced by a sentinel, so a value the command lets through fails the test instead of
dialling. Found by the hostile CLI review (2026-12-06):

* ``--name ''`` said ``secagg client: : invalid client name ''`` and ``--name
  $'b1\\n'`` printed its error on two lines; neither named ``--name``;
* ``--quiet -v`` was refused by ``secagg server`` but taken by the client and the key
  holder, which then logged everything;
* ``client --state ''`` and ``keyholder --key ''`` read the current folder
  (``--state . is a folder``, ``cannot read the key file /home/op: Is a directory``);
* a ``[key_holder] key`` in ``--policy`` without ``--config`` was reported as ``--key
  needs --config``, a flag the operator never passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main


class _Dialled(Exception):
    """The party's run was reached: the command let the mistake through."""


def _dial(*args: Any, **kwargs: Any) -> None:
    raise _Dialled


def _invoke(args: list[str]) -> Result:
    with (
        mock.patch("secagg.runtime.launch.run_branch", _dial),
        mock.patch("secagg.runtime.launch.run_key_holder", _dial),
    ):
        return CliRunner().invoke(main, args)


def _one_line(result: Result, args: list[str]) -> str:
    assert not isinstance(result.exception, _Dialled), f"secagg {' '.join(args)}: dialled"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "kh.key"
    key.write_bytes(b"x" * 32)
    config = tmp_path / "ckks.toml"  # a federation whose key holder is kh
    config.write_text(
        '[federation]\nname = "kh"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nkey_holder = "kh"\nvalue_bound = 1.0\n'
        '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
        f'[server]\nstate = "{tmp_path / "s.sqlite"}"\ncertificates = "{tmp_path}"\n'
    )
    return {"dir": str(tmp_path), "key": str(key), "certs": str(tmp_path), "config": str(config)}


def _client(places: dict[str, str], *extra: str, name: str = "b1") -> list[str]:
    return [
        "client",
        "--server",
        "127.0.0.1:9",
        "--name",
        name,
        "--certs",
        places["certs"],
        "--dimension",
        "4",
        *extra,
    ]


def _keyholder(places: dict[str, str], *extra: str, name: str = "kh") -> list[str]:
    return [
        "keyholder",
        "--server",
        "127.0.0.1:9",
        "--name",
        name,
        "--certs",
        places["certs"],
        *extra,
    ]


#: names no certificate can carry (``secagg certs issue`` refuses each)
BAD_NAMES = ["", " ", "../x", "a/b", "b1\n", "b1\x1b[2J", "é", "a" * 65, ".hidden", "-"]


@pytest.mark.parametrize("party", [_client, _keyholder])
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_name_no_certificate_carries_is_one_line_naming_the_flag(
    places: dict[str, str], party: Any, name: str
) -> None:
    args = party(places, name=name)
    line = _one_line(_invoke(args), args)
    assert "--name" in line and "invalid client name" in line, line


@pytest.mark.parametrize("party", [_client, _keyholder])
def test_a_valid_name_reaches_the_run(places: dict[str, str], party: Any) -> None:
    """The sentinel is reached with good flags: the refusals above are the flags'."""
    result = _invoke(party(places, name="b" * 64))
    assert isinstance(result.exception, _Dialled), (result.output, result.exception)


@pytest.mark.parametrize("party", [_client, _keyholder])
def test_quiet_and_verbose_together_are_refused(places: dict[str, str], party: Any) -> None:
    args = party(places, "--quiet", "-v")
    line = _one_line(_invoke(args), args)
    assert "--quiet and -v/--verbose contradict each other" in line, line


def test_the_server_refuses_them_in_the_same_words(tmp_path: Path) -> None:
    config = tmp_path / "f.toml"
    config.write_text("")
    args = ["server", "--config", str(config), "--quiet", "-v"]
    line = _one_line(CliRunner().invoke(main, args), args)
    assert line == "secagg server: --quiet and -v/--verbose contradict each other: pass one"


#: (the client's extra flags, what the one line names)
CLIENT_MISTAKES = [
    (["--state", ""], "--state"),
    (["--state", " "], "--state"),
    (["--state", "{dir}"], "--state"),
    (["--epsilon-budget", "1"], "--epsilon-budget"),
    (["--delta", "1e-5"], "--delta"),
    (["--epsilon-budget", "1", "--delta", "1e-5"], "--state"),
    (["--federation", "a/b"], "--federation"),
    (["--key-holder-fingerprint", "zz"], "--key-holder-fingerprint"),
    (["--policy", "{dir}"], "--policy"),
    (["--policy", "{dir}/missing.toml"], "--policy"),
    (["--hook", ""], "'--hook'"),
    (["--hook", "dpsgd_hook"], "'--hook'"),
    (["--hook", ":make_hook"], "'--hook'"),
    (["--hook", "os:"], "'--hook'"),
    (["--hook", "no_such_module_204:make_hook"], "'--hook'"),
]


@pytest.mark.parametrize(("extra", "named"), CLIENT_MISTAKES)
def test_a_client_mistake_is_one_line_naming_it(
    places: dict[str, str], extra: list[str], named: str
) -> None:
    args = _client(places, *(arg.format(**places) for arg in extra))
    line = _one_line(_invoke(args), args)
    assert named in line, line


#: (the key holder's extra flags, what the one line names)
KEYHOLDER_MISTAKES = [
    (["--config", "{config}", "--key", ""], "'--key'"),
    (["--config", "{config}", "--key", " "], "'--key'"),
    (["--config", "{config}", "--key", "{dir}"], "'--key'"),
    (["--config", "{config}", "--key", "{dir}/missing.key"], "'--key'"),
    (["--key", "{key}"], "--key needs --config"),
    # refused by --backend itself since 2026-12-06, before --config is compared
    (["--config", "{config}", "--backend", "secagg+"], "'--backend': the secagg+ backend has no"),
    (["--policy", "{dir}"], "'--policy'"),
]


@pytest.mark.parametrize(("extra", "named"), KEYHOLDER_MISTAKES)
def test_a_keyholder_mistake_is_one_line_naming_it(
    places: dict[str, str], extra: list[str], named: str
) -> None:
    args = _keyholder(places, *(arg.format(**places) for arg in extra))
    line = _one_line(_invoke(args), args)
    assert named in line, line


def test_a_policy_key_without_a_config_is_named_as_the_policy_key(
    places: dict[str, str], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[key_holder]\nkey = "{places["key"]}"\n')
    args = _keyholder(places, "--policy", str(policy))
    line = _one_line(_invoke(args), args)
    assert f"[key_holder] key (--policy {policy}) needs --config" in line, line
    assert "--key needs" not in line, line


PIN = "ab" * 32

#: (flags, the [branch] table of --policy, the words naming the two): --allow-plain
#: beside a guard that plain rounds do not have
PLAIN_BESIDE_A_GUARD = [
    (["--allow-plain", "--key-holder-fingerprint", PIN], "", "--allow-plain with --key-holder"),
    (["--allow-plain", "--require-active"], "", "--allow-plain with --require-active"),
    (
        [],
        f'allow_plain = true\nkey_holder_fingerprint = "{PIN}"\n',
        "branch.allow_plain (--policy) with branch.key_holder_fingerprint (--policy)",
    ),
    (
        ["--allow-plain"],
        "require_active = true\n",
        "--allow-plain with branch.require_active (--policy)",
    ),
    (
        ["--require-active"],
        "allow_plain = true\n",
        "branch.allow_plain (--policy) with --require-active",
    ),
]

#: (flags, the [branch] table of --policy, the words naming them): backends under which no
#: round can be taken, refused by the policy itself since 2026-12-06 (the branch dialled
#: and refused every round, exit 3)
NO_BACKEND_SERVES = [
    (
        ["--key-holder-fingerprint", PIN, "--min-noise-multiplier", "1"],
        'backends = ["ckks"]\n',
        "branch.backends (--policy) with --min-noise-multiplier",
    ),
    ([], 'backends = ["ckks"]\n', "branch.key_holder_fingerprint"),
    ([], "backends = []\n", "branch.backends"),
]


@pytest.mark.parametrize(("flags", "table", "words"), PLAIN_BESIDE_A_GUARD)
def test_plain_beside_a_guard_it_defeats_is_refused(
    places: dict[str, str], tmp_path: Path, flags: list[str], table: str, words: str
) -> None:
    """A pinned key holder or the active variant guards the update against the server;
    a plain round has neither, and with plain allowed the server may choose it."""
    extra = list(flags)
    if table:
        policy = tmp_path / "policy.toml"
        policy.write_text(f"[branch]\n{table}")
        extra += ["--policy", str(policy)]
        words = words.replace("(--policy)", f"(--policy {policy})")  # the file named
    args = _client(places, *extra)
    line = _one_line(_invoke(args), args)
    assert words in line and "in clear" in line, line


@pytest.mark.parametrize(("flags", "table", "words"), NO_BACKEND_SERVES)
def test_backends_no_round_can_satisfy_are_one_line_before_dialling(
    places: dict[str, str], tmp_path: Path, flags: list[str], table: str, words: str
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f"[branch]\n{table}")
    args = _client(places, *flags, "--policy", str(policy))
    line = _one_line(_invoke(args), args)
    words = words.replace("(--policy)", f"(--policy {policy})")  # the file named
    assert words in line and "every round would be refused" in line, line


@pytest.mark.parametrize(
    "flags",
    [["--allow-plain"], ["--key-holder-fingerprint", PIN], ["--require-active"]],
    ids=["plain", "pin", "active"],
)
def test_each_alone_reaches_the_run(places: dict[str, str], flags: list[str]) -> None:
    result = _invoke(_client(places, *flags))
    assert isinstance(result.exception, _Dialled), (result.output, result.exception)


@pytest.mark.parametrize("flags", [[], ["--backend", "ckks"]], ids=["default", "the same"])
def test_a_backend_that_agrees_with_the_config_reaches_the_run(
    places: dict[str, str], flags: list[str]
) -> None:
    result = _invoke(_keyholder(places, "--config", places["config"], *flags))
    assert isinstance(result.exception, _Dialled), (result.output, result.exception)
