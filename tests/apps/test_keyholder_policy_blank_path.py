"""``secagg keyholder --policy F`` whose ``[key_holder] key`` or ``state`` is empty or
blank is refused as such, in one line naming the key and the file (``in_file``), exit
2, with or without ``--config``, before the key holder runs.

Helper brief 323 (2026-12-07): ``key = "  "`` without ``--config`` was said only as
"needs --config" (not as a blank value), and with ``--config`` as "cannot read the key
file D/  : No such file or directory", naming neither the key nor the file; ``state =
"  "`` was taken with or without ``--config``, the key holder then keeping its count of
decryptions in a file called "  " beside the policy. An empty ``key`` without
``--config`` was "needs --config" too.
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main

#: what each path key of the policy names, as the refusal says it
WHAT = {
    "key": "the key holder's secret key file",
    "state": "the key holder's state file (its count of decryptions)",
}
BLANKS = {
    "empty": "",
    "two spaces": "  ",
    "a tab": "\t",
    "a line break": " \n ",
    "an ideographic space": "\u3000",
}


class _Ran(Exception):
    """The key holder would have run: the blank value was taken."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Certificates' folder (empty: nothing is dialled) and a CKKS federation whose key
    holder is ``kh``."""
    (tmp_path / "ckks.toml").write_text(
        '[federation]\nname = "kh"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nkey_holder = "kh"\nvalue_bound = 1.0\n'
        '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
        f'[server]\nstate = "{tmp_path / "s.sqlite"}"\ncertificates = "{tmp_path}"\n'
    )
    return tmp_path


def _keyholder(folder: Path, key: str, value: str, *extra: str) -> tuple[Result, Path]:
    """``secagg keyholder --policy F`` whose ``[key_holder] key`` is ``value``."""
    policy = folder / "policy.toml"
    policy.write_text(f"[key_holder]\n{key} = {json.dumps(value)}\n")
    args = ["keyholder", "--server", "127.0.0.1:9", "--name", "kh", "--certs", str(folder)]
    with mock.patch("secagg.runtime.launch.run_key_holder", side_effect=_Ran):
        result = CliRunner().invoke(main, [*args, "--policy", str(policy), "--quiet", *extra])
    return result, policy


def _refused(result: Result, policy: Path, key: str, value: str) -> None:
    assert not isinstance(result.exception, _Ran), f"{key} = {value!r} was taken"
    assert result.exit_code == 2, (result.output, result.exception)
    how = "empty" if value == "" else "blank"
    assert result.output == (
        f"secagg keyholder: kh: --policy {policy}: [key_holder] {key} is {how}: "
        f"it must name {WHAT[key]}\n"
    ), result.output


@pytest.mark.parametrize("with_config", [False, True], ids=["no --config", "--config"])
@pytest.mark.parametrize("blank", sorted(BLANKS))
@pytest.mark.parametrize("key", sorted(WHAT))
def test_a_blank_path_in_the_policy_is_refused_as_blank_naming_the_key_and_file(
    folder: Path, key: str, blank: str, with_config: bool
) -> None:
    """Before: key said "needs --config" (no --config) or "cannot read the key file D/ "
    (--config; "must be a file path" when empty); a blank state was taken either way.
    Now: one line, the key and the file named, exit 2."""
    extra = ["--config", str(folder / "ckks.toml")] if with_config else []
    result, policy = _keyholder(folder, key, BLANKS[blank], *extra)
    _refused(result, policy, key, BLANKS[blank])


def test_a_blank_key_that_key_overrides_is_not_read(folder: Path) -> None:
    """Guard: ``--key`` overrides the file's ``key``, which is then not refused."""
    (folder / "kh.key").write_bytes(b"x" * 32)
    extra = ["--config", str(folder / "ckks.toml"), "--key", str(folder / "kh.key")]
    result, _ = _keyholder(folder, "key", "  ", *extra)
    assert isinstance(result.exception, _Ran), result.output


def test_a_named_key_still_needs_config(folder: Path) -> None:
    """Guard: a key that is not blank is still said as needing ``--config``."""
    result, _ = _keyholder(folder, "key", "kh.key")
    assert result.exit_code == 2, result.output
    assert "needs --config" in result.output and "blank" not in result.output


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(sorted(WHAT)),
    value=st.text(
        st.characters(whitelist_categories=("Zs",), whitelist_characters="\t\n\r\x0b\x0c"),
        max_size=6,
    ),
    with_config=st.booleans(),
)
def test_any_whitespace_only_path_is_refused(
    folder: Path, key: str, value: str, with_config: bool
) -> None:
    """Any run of whitespace (Unicode's spaces included) or none at all."""
    assert not value.strip()
    extra = ["--config", str(folder / "ckks.toml")] if with_config else []
    result, policy = _keyholder(folder, key, value, *extra)
    _refused(result, policy, key, value)
