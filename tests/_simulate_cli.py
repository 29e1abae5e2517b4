"""Running ``secagg simulate`` in-process for its refusals, and reading the one line it
prints: shared by the tests of the simulator's server-optimizer keys and of a run
folder's replay as a control (two copies before; ``duplicates --change``)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.errors import SecAggError

#: a run small enough that nothing past the config would be slow (a test's
#: ``nothing_runs`` fixture makes sure nothing past it runs at all)
SHORT = ["--branches", "3", "--rounds", "1", "--train-rows", "3000", "--test-rows", "400"]


def simulate(*args: str) -> Result:
    """``secagg simulate args --quiet``, in-process."""
    return CliRunner().invoke(main, ["simulate", *args, "--quiet"])


def one_line_error(result: Result) -> str:
    """The refusal printed: exit 2, one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]
