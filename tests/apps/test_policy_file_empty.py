"""A party's policy file without its table is refused, not read as the default policy.

Why: ``secagg client --policy policy.toml`` with an empty ``policy.toml`` (a deploy
that truncated it, a template never filled in, only comments) ran the branch under the
default policy without a word, and so did ``secagg keyholder --policy``: the operator
who named a policy file believed its limits held (review, 2026-12-06). Now it is one
line naming the file and the missing table, exit 2, before any dial. A ``[branch]``
header with no keys still asks for the defaults, on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main

# nothing listens on port 9: the policy is read (and refused) before any dial
CLIENT = ["client", "--server", "127.0.0.1:9", "--name", "branch-a", "--dimension", "4"]
KEY_HOLDER = ["keyholder", "--server", "127.0.0.1:9", "--name", "holder"]

EMPTY_TEXTS = [
    "",
    "\n\n",
    "# the branch's limits, to be filled in\n",
    "\ufeff",  # a BOM alone (an editor's empty UTF-8 file)
    "\r\n# only a comment\r\n",
]


def _line(result: Result, party: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(party), result.output
    return lines[0]


@pytest.mark.parametrize("text", EMPTY_TEXTS)
def test_a_branch_policy_file_without_its_table_is_refused(tmp_path: Path, text: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_bytes(text.encode("utf-8"))
    result = CliRunner().invoke(main, [*CLIENT, "--policy", str(policy)])
    line = _line(result, "secagg client: branch-a:")
    assert f"{policy} has no [branch] table" in line, line


@pytest.mark.parametrize("text", EMPTY_TEXTS[:3])
def test_a_key_holder_policy_file_without_its_table_is_refused(tmp_path: Path, text: str) -> None:
    policy = tmp_path / "holder.toml"
    policy.write_text(text)
    result = CliRunner().invoke(main, [*KEY_HOLDER, "--policy", str(policy)])
    line = _line(result, "secagg keyholder: holder:")
    assert f"{policy} has no [key_holder] table" in line, line


def test_an_empty_branch_table_still_means_the_defaults(tmp_path: Path) -> None:
    """The refusal is of a missing table only: ``[branch]`` with no keys is read, and
    the branch goes on to dial (and fails there, exit 1, nothing listening)."""
    from secagg.apps.commands.parties import _read_table

    policy = tmp_path / "policy.toml"
    policy.write_text("[branch]\n")
    assert _read_table(str(policy), "branch") == {}
