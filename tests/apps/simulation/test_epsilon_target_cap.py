"""``secagg simulate``'s epsilon target is bounded above, as its prior's cost is.

Upper-bounds review (2026-12-05): ``--epsilon 1e308`` (or ``privacy.epsilon = 1e308``)
reached the accountants, ran, and reported the run "within the target epsilon =
1e+308", a figure no reader can use. A target past :data:`MAX_EPSILON` is now refused at
config load, in one line naming the flag or key and saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.config import MAX_EPSILON, MAX_PRIOR_EPSILON, SimulationConfig
from secagg.errors import ConfigurationError


@pytest.mark.parametrize("target", [1e308, MAX_EPSILON * 1.01])
def test_a_target_past_the_cap_is_refused_naming_the_key(target: float) -> None:
    with pytest.raises(ConfigurationError) as refused:
        SimulationConfig(epsilon=target)
    message = str(refused.value)
    assert message.startswith("privacy.epsilon must be at most 1e+06"), message
    assert "protects nothing" in message and "\n" not in message


def test_the_cap_itself_loads_and_is_the_priors() -> None:
    assert SimulationConfig(epsilon=MAX_EPSILON).epsilon == MAX_EPSILON
    assert MAX_PRIOR_EPSILON == MAX_EPSILON  # one bound for every epsilon of a run


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(
    ("args", "file", "named"),
    [
        (["--epsilon", "1e308"], "", "--epsilon must be at most 1e+06, not 1e+308"),
        ([], "[privacy]\nepsilon = 1e308\n", "privacy.epsilon must be at most 1e+06"),
    ],
)
def test_simulate_refuses_it_in_one_line_exit_2(
    tmp_path: Path, args: list[str], file: str, named: str
) -> None:
    if file:
        config = tmp_path / "sim.toml"
        config.write_text(file)
        args = [*args, "--config", str(config)]
    result = CliRunner().invoke(main, ["simulate", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.output
