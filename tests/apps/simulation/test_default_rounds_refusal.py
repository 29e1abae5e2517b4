"""A refusal the noise once's default rounds cause says that the rounds were its default.

Why: ``secagg simulate --unit record --mechanism distributed --seeds 334`` was refused
with "--rounds * --seeds = 10020 federated rounds in all: at most 10000", naming a
``--rounds`` the user never typed and a product the user could not rebuild from the
command line (334 seeds of the 10 rounds every other mechanism runs make 3 340): the
rounds were RECORD_DISTRIBUTED_ROUNDS (30), the default of that mechanism alone (second
review of the noise once's defaults, 2026-12-07). The line now says so; a refusal of
rounds the user gave is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import CAPS, RECORD_DISTRIBUTED_ROUNDS
from secagg.errors import ConfigurationError

NOISE_ONCE = {"unit": "record", "mechanism": "distributed"}
#: the fewest seeds whose runs pass the cap at the noise once's default rounds
TOO_MANY = CAPS["runs"] // RECORD_DISTRIBUTED_ROUNDS + 1


def test_the_refusal_names_the_default_rounds_it_counted() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_config(None, {**NOISE_ONCE, "seeds": TOO_MANY})
    message = str(caught.value)
    assert f"{RECORD_DISTRIBUTED_ROUNDS * TOO_MANY} federated rounds" in message
    assert f"--rounds is {RECORD_DISTRIBUTED_ROUNDS} here" in message
    assert "default" in message and "--unit record with --mechanism distributed" in message


def test_a_file_without_rounds_is_named_as_the_file_spells_it(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        f'[simulation]\nseeds = {TOO_MANY}\n[privacy]\nunit = "record"\nmechanism = "distributed"\n'
    )
    with pytest.raises(ConfigurationError, match=f"is {RECORD_DISTRIBUTED_ROUNDS} here"):
        build_config(str(path), {})


def test_rounds_the_user_gave_are_refused_as_before() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_config(None, {**NOISE_ONCE, "seeds": TOO_MANY, "rounds": 30})
    assert "here" not in str(caught.value) and "default" not in str(caught.value)


def test_the_command_says_it_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--unit",
            "record",
            "--mechanism",
            "distributed",
            "--seeds",
            str(TOO_MANY),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--rounds is {RECORD_DISTRIBUTED_ROUNDS} here" in lines[0]
    assert not (tmp_path / "run").exists()
