"""``secagg client | keyholder --policy F``: a mistake in the party's policy file names
the file, as ``secagg server --config F: ...`` names its own; a flag's mistake names the
flag.

Why: ``secagg client --policy F`` with ``max_clip = -1.0`` said ``secagg client: b:
branch.max_clip must be positive and finite`` and the key holder ``[key_holder]
noise_stddev: must be >= 0``, naming a key but not the file; a file that is not TOML
was named without its flag (as ``secagg simulate --config``, newcomer walk-through,
2026-12-07). One line, exit 2, before anything is dialled (nothing listens on port 9).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main

CLIENT = ["client", "--server", "127.0.0.1:9", "--name", "branch-a", "--dimension", "4"]
KEY_HOLDER = ["keyholder", "--server", "127.0.0.1:9", "--name", "holder"]


def _line(result: Result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    return line


#: a [branch] file's mistake -> its text and the words after ``--policy F``
BRANCH_MISTAKES = {
    "a bad value": ("[branch]\nmax_clip = -1.0\n", ": branch.max_clip must be positive"),
    "a value of the wrong type": ("[branch]\nmax_clip = 'x'\n", ": branch.max_clip must be a"),
    "a misspelt key": (
        "[branch]\nmax_clp = 1.0\n",
        ": unknown keys in [branch]: ['max_clp'] (did you mean 'max_clip'?)",
    ),
    "a misspelt table": ("[brnach]\nmax_clip = 1.0\n", ": unknown sections ['brnach']"),
    "not TOML": ("max_clip = = 1\n", " is not valid TOML"),
    "an empty file": ("", " has no [branch] table (is it empty?)"),
}

#: a [key_holder] file's mistake -> its text and the words after ``--policy F``
HOLDER_MISTAKES = {
    "a bad value": ("[key_holder]\nnoise_stddev = -1.0\n", ": [key_holder] noise_stddev: must"),
    "a value of the wrong type": (
        "[key_holder]\nnoise_stddev = 'x'\n",
        ": [key_holder] noise_stddev: must be a finite number",
    ),
    "a misspelt key": (
        "[key_holder]\nnoise_stdev = 1.0\n",
        ": unknown key 'noise_stdev' in [key_holder]; did you mean 'noise_stddev'?",
    ),
    "a misspelt table": ("[keyholder]\nnoise_stddev = 0.0\n", ": unknown sections ['keyholder']"),
    "not TOML": ("noise_stddev = = 1\n", " is not valid TOML"),
    "an empty file": ("", " has no [key_holder] table (is it empty?)"),
}


@pytest.mark.parametrize("kind", sorted(BRANCH_MISTAKES))
def test_a_branch_policy_files_mistake_names_the_file(tmp_path: Path, kind: str) -> None:
    text, said = BRANCH_MISTAKES[kind]
    policy = tmp_path / "branch-a.toml"
    policy.write_text(text)
    line = _line(CliRunner().invoke(main, [*CLIENT, "--policy", str(policy)]))
    assert line.startswith(f"secagg client: branch-a: --policy {policy}{said}"), line
    assert line.count(str(policy)) == 1, line


@pytest.mark.parametrize("kind", sorted(HOLDER_MISTAKES))
def test_a_key_holder_policy_files_mistake_names_the_file(tmp_path: Path, kind: str) -> None:
    text, said = HOLDER_MISTAKES[kind]
    policy = tmp_path / "holder.toml"
    policy.write_text(text)
    line = _line(CliRunner().invoke(main, [*KEY_HOLDER, "--policy", str(policy)]))
    assert line.startswith(f"secagg keyholder: holder: --policy {policy}{said}"), line
    assert line.count(str(policy)) == 1, line


def test_a_flag_against_a_policy_key_names_the_flag_and_the_file(tmp_path: Path) -> None:
    """``--allow-plain`` beside the file's ``require_active = true``: either may go."""
    policy = tmp_path / "branch-a.toml"
    policy.write_text("[branch]\nrequire_active = true\n")
    result = CliRunner().invoke(main, [*CLIENT, "--policy", str(policy), "--allow-plain"])
    line = _line(result)
    assert f"--allow-plain with branch.require_active (--policy {policy}):" in line, line


def test_a_flags_mistake_over_a_policy_file_names_the_flag_alone(tmp_path: Path) -> None:
    """``--epsilon-budget`` typed without a delta anywhere: the flag's, not the file's."""
    policy = tmp_path / "branch-a.toml"
    policy.write_text("[branch]\nmax_clip = 1.0\n")
    args = [*CLIENT, "--policy", str(policy), "--epsilon-budget", "1"]
    line = _line(CliRunner().invoke(main, args))
    assert "--epsilon-budget" in line and str(policy) not in line, line


def test_a_policy_key_that_needs_a_flag_names_the_file(tmp_path: Path) -> None:
    """The file's ``key`` without ``--config``: the key, and the file it is in."""
    policy = tmp_path / "holder.toml"
    policy.write_text(f'[key_holder]\nkey = "{tmp_path / "holder.key"}"\n')
    line = _line(CliRunner().invoke(main, [*KEY_HOLDER, "--policy", str(policy)]))
    assert f"[key_holder] key (--policy {policy}) needs --config" in line, line
