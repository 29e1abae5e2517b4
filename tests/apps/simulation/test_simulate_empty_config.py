"""``secagg simulate --config F`` with a file that sets nothing is refused.

Why: an empty file (a template never filled in, a copy that failed, comments only)
ran the whole default federation, minutes of it, and wrote its run folder as if the
file had asked for it (review, 2026-12-06). It is one line naming ``--config``, exit
2, before any data is made; a file with a section header and no keys still means the
defaults, on purpose.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import SimulationConfig
from secagg.errors import ConfigurationError


class _Started(Exception):
    """The simulation would have run."""


@pytest.mark.parametrize("text", ["", "\n", "# my federation, to be written\n", "\ufeff"])
def test_a_config_that_sets_nothing_is_refused(tmp_path: Path, text: str) -> None:
    config = tmp_path / "federation.toml"
    config.write_bytes(text.encode("utf-8"))
    with pytest.raises(ConfigurationError, match=rf"^--config {config} sets nothing"):
        build_config(str(config), {})
    out = tmp_path / "run"
    with mock.patch("secagg.apps.simulation.runner.run_simulation", side_effect=_Started):
        result = CliRunner().invoke(main, ["simulate", "--config", str(config), "--out", str(out)])
    assert not isinstance(result.exception, _Started), "the simulation started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--config" in lines[0] and "sets nothing" in lines[0], lines
    assert not out.exists()


def test_a_section_header_alone_still_means_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "federation.toml"
    config.write_text("[simulation]\n")
    assert build_config(str(config), {}) == build_config(None, {}) == SimulationConfig()
