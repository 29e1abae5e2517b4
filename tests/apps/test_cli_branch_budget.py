"""``secagg client --epsilon-budget`` and ``--delta``: the branch's own privacy budget at
the command line (the ``[branch]`` keys ``epsilon_budget`` and ``delta``), and the spend
in the exit summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.errors import SecAggError
from secagg.runtime.client import ClientStats


def _client(*args: str) -> Result:
    return CliRunner().invoke(
        main, ["client", "--server", "localhost:1", "--name", "b1", "--dimension", "3", *args]
    )


def _usage_line(result: Result) -> str:
    """The one error line of a usage error (exit 2), checked to carry no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--epsilon-budget", "1"), "'--epsilon-budget': --epsilon-budget needs branch.delta"),
        (("--delta", "1e-5"), "'--delta': --delta is the delta of branch.epsilon_budget"),
        (("--epsilon-budget", "1", "--delta", "1"), "'--delta': 1.0 is not in the range"),
        (("--epsilon-budget", "0", "--delta", "1e-5"), "'--epsilon-budget': 0.0 is not in"),
        (("--epsilon-budget", "nan", "--delta", "1e-5"), "'--epsilon-budget': 'nan' is not a"),
    ],
)
def test_the_budget_flags_are_named_as_typed(args: tuple[str, ...], words: str) -> None:
    error = _usage_line(_client(*args))
    assert "Invalid value for " + words in error, error
    assert "--delta" in error or "--epsilon-budget" in error


def test_a_policy_file_budget_without_delta_names_its_key(tmp_path: Path) -> None:
    policy = tmp_path / "branch.toml"
    policy.write_text("[branch]\nepsilon_budget = 2.0\n")
    result = _client("--policy", str(policy))
    assert result.exit_code == 2, result.output
    assert "branch.epsilon_budget needs branch.delta (secagg client --delta)" in result.output


def test_the_summary_says_the_spend_rounded_up() -> None:
    from secagg.apps.cli import _budget_summary  # new: failed before

    stats = ClientStats(epsilon_spent=1.23451, epsilon_budget=3.0, privacy_delta=1e-6)
    assert _budget_summary(stats) == "; epsilon spent 1.2346 of its budget 3.0000 (delta 1e-06)"
    assert _budget_summary(ClientStats()) == ""
