"""A party's own policy file with a misspelt table or key: one line with the likely
spelling, as the federation config gives it (review, 2026-12-05: ``[brnach]`` was only
"unknown sections ['brnach']; expected [branch]", ``max_clp`` only "unknown keys")."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main


def _client(policy: Path) -> Result:
    # nothing listens on port 9: the policy is read (and refused) before any dial
    args = ["client", "--server", "127.0.0.1:9", "--name", "branch-a", "--dimension", "4"]
    return CliRunner().invoke(main, [*args, "--policy", str(policy)])


def _line(result: Result, party: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(party), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "[brnach]\nmax_clip = 1.0\n",
            "unknown sections ['brnach']; expected [branch] (did you mean [branch]?)",
        ),
        (
            "[branch]\nmax_clp = 1.0\n",
            "unknown keys in [branch]: ['max_clp'] (did you mean 'max_clip'?)",
        ),
        ("[federation]\nname = 'x'\n", "unknown sections ['federation']; expected [branch]"),
    ],
)
def test_a_branch_policy_file_gets_the_likely_spelling(
    tmp_path: Path, text: str, said: str
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    line = _line(_client(policy), "secagg client: branch-a:")
    assert line.endswith(said), line


def test_a_key_holder_policy_file_gets_the_likely_spelling(tmp_path: Path) -> None:
    policy = tmp_path / "holder.toml"
    policy.write_text("[keyholder]\nnoise_stddev = 0.0\n")
    args = ["keyholder", "--server", "127.0.0.1:9", "--name", "holder"]
    result = CliRunner().invoke(main, [*args, "--policy", str(policy)])
    line = _line(result, "secagg keyholder: holder:")
    assert line.endswith(
        "unknown sections ['keyholder']; expected [key_holder] (did you mean [key_holder]?)"
    ), line


def test_a_misspelt_key_holder_key_gets_the_likely_spelling(tmp_path: Path) -> None:
    """One line naming the key and its likely spelling, not the list of every key
    (review, 2026-12-05); refused before anything is dialled (nothing on port 9)."""
    policy = tmp_path / "holder.toml"
    policy.write_text("[key_holder]\nnoise_stddev = 0.5\nmax_decrypts = 40\n")
    args = ["keyholder", "--server", "127.0.0.1:9", "--name", "holder"]
    result = CliRunner().invoke(main, [*args, "--policy", str(policy)])
    line = _line(result, "secagg keyholder: holder:")
    assert line.endswith(
        "unknown key 'max_decrypts' in [key_holder]; did you mean 'max_decryptions'?"
    ), line


def test_several_misspelt_tables_each_get_theirs(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[brnach]\n[branches]\n[weather]\n")
    line = _line(_client(policy), "secagg client: branch-a:")
    assert line.endswith(
        "unknown sections ['branches', 'brnach', 'weather']; expected [branch] "
        "([branches]: did you mean [branch]?; [brnach]: did you mean [branch]?)"
    ), line
