"""``secagg simulate --config F``: a mistake in the file names the file, as the party
commands do (``--config F: [privacy] epsilon ...``); a flag's mistake names the flag.

Why: ``secagg simulate --config bad.toml`` printed ``Error: privacy.epsilon must be
positive`` without the file, while ``secagg server --config F`` says ``secagg server:
--config F: ...``; a user with several files (a replay of a run folder's config.toml, a
team's shared one) could not tell which was wrong (newcomer walk-through, 2026-12-07).
Each mistake is still one line, exit 2, no traceback, and nothing runs.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.simulation.cli import build_config
from secagg.apps.simulation.config import SECTIONS, SimulationConfig
from secagg.errors import ConfigurationError
from tests._config_fuzz import edit_strategy, edited_text, misspelt, toml_text


class _Started(Exception):
    """The simulation (or an experiment of several seeds) would have run."""


def _simulate(*args: str) -> Result:
    """``secagg simulate ARGS --quiet`` with the federation replaced by :class:`_Started`."""
    with (
        mock.patch("secagg.apps.simulation.runner.run_simulation", side_effect=_Started),
        mock.patch("secagg.apps.simulation.experiment.run_experiment", side_effect=_Started),
    ):
        return CliRunner().invoke(main, ["simulate", *args, "--quiet"])


def _line(result: Result) -> str:
    """The one line of a refusal: exit 2, no traceback, the run never started."""
    assert not isinstance(result.exception, _Started), "the simulation started"
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


#: a mistake of each kind, as a file's text, and words of its message
FILE_MISTAKES = {
    "a bad value": ("[privacy]\nepsilon = -1\n", ": privacy.epsilon must be positive"),
    "a value past its cap": ("[simulation]\nbranches = 100000000\n", ": simulation.branches"),
    "a misspelt key": (
        "[privacy]\nepsilom = 3\n",
        ": unknown key privacy.epsilom (did you mean privacy.epsilon?)",
    ),
    "a misspelt section": (
        "[simulatoin]\nbranches = 3\n",
        ": unknown section [simulatoin] (did you mean [simulation]?)",
    ),
    "a key above every header": ("branches = 3\n", ": key branches at the top level"),
    "a value of the wrong type": (
        '[privacy]\nepsilon = "three"\n',
        ": [privacy] epsilon must be a number",
    ),
    "keys that contradict each other": (
        '[privacy]\nmechanism = "off"\nepsilon = 3\n',
        ": privacy.epsilon is read only with a DP mechanism",
    ),
    "not TOML": ("branches = = 3\n", " is not valid TOML"),
    "not UTF-8": (b"\xff\xfe[simulation]\n", " is not UTF-8 text"),
    "an empty file": ("", " sets nothing (is it empty?)"),
}


@pytest.mark.parametrize("kind", sorted(FILE_MISTAKES))
def test_a_mistake_in_the_file_names_the_file(tmp_path: Path, kind: str) -> None:
    text, said = FILE_MISTAKES[kind]
    config = tmp_path / "team-shared.toml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)
    line = _line(_simulate("--config", str(config), "--out", str(tmp_path / "run")))
    assert line.startswith(f"Error: --config {config}{said}"), line
    assert line.count(str(config)) == 1, line  # named once
    assert not (tmp_path / "run").exists()


def test_a_missing_file_names_the_flag_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "nope.toml"
    line = _line(_simulate("--config", str(config), "--out", str(tmp_path / "run")))
    assert line == f"Error: --config {config}: no such file"


def test_a_flags_mistake_names_the_flag_not_the_file(tmp_path: Path) -> None:
    """``--epsilon -1`` over a file that sets epsilon: the flag is what the user fixes."""
    config = tmp_path / "team-shared.toml"
    config.write_text("[privacy]\nepsilon = 3\n")
    for flags, said in (
        (("--epsilon", "-1"), "Error: --epsilon must be positive"),
        (("--seeds", "0"), "Error: --seeds must lie in [1, "),
    ):
        line = _line(_simulate("--config", str(config), *flags, "--out", str(tmp_path / "run")))
        assert line.startswith(said), line
        assert str(config) not in line, line


def test_a_flag_against_a_files_key_names_both(tmp_path: Path) -> None:
    """``--mechanism off`` over a file's ``epsilon = 3``: either may be changed, and the
    line names the file's key with the file, and the flag."""
    config = tmp_path / "team-shared.toml"
    config.write_text("[privacy]\nepsilon = 3\n")
    line = _line(
        _simulate("--config", str(config), "--mechanism", "off", "--out", str(tmp_path / "run"))
    )
    assert line.startswith(f"Error: --config {config}: privacy.epsilon is read only"), line
    assert "(--mechanism off)" in line, line


def test_a_file_against_a_flag_names_both(tmp_path: Path) -> None:
    """The other way round: the file's ``mechanism = "off"`` beside ``--epsilon 3``."""
    config = tmp_path / "team-shared.toml"
    config.write_text('[privacy]\nmechanism = "off"\n')
    line = _line(
        _simulate("--config", str(config), "--epsilon", "3", "--out", str(tmp_path / "run"))
    )
    assert line.startswith(f"Error: --config {config}: --epsilon is read only"), line
    assert "privacy.mechanism = 'off'" in line, line


def test_an_experiment_of_several_seeds_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "team-shared.toml"
    config.write_text("[simulation]\nseeds = 3\n[privacy]\nepsilon = -1\n")
    line = _line(_simulate("--config", str(config), "--out", str(tmp_path / "run")))
    assert line.startswith(f"Error: --config {config}: privacy.epsilon must be positive"), line
    line = _line(_simulate("--config", str(config), "--seeds", "2", "--out", str(tmp_path / "run")))
    assert line.startswith(f"Error: --config {config}: privacy.epsilon must be positive"), line


def test_a_replay_of_a_run_folders_config_names_that_file(tmp_path: Path) -> None:
    """A run folder's config.toml, edited by hand and replayed: the line names the run
    folder's file, and with ``--mechanism off`` over its DP keys the flag too."""
    from secagg.apps.simulation import runner
    from secagg.apps.simulation.report import _write_config

    (tmp_path / "run-1").mkdir()
    written = _write_config(
        runner.SimulationResult(SimulationConfig(branches=3), []),
        tmp_path / "run-1" / "config.toml",
    )
    text = written.read_text()
    assert "epsilon = 3" in text, text
    written.write_text(text.replace("epsilon = 3", "epsilon = -3", 1))
    line = _line(_simulate("--config", str(written), "--out", str(tmp_path / "run-2")))
    assert line.startswith(f"Error: --config {written}: privacy.epsilon must be positive"), line
    written.write_text(text)
    line = _line(
        _simulate("--config", str(written), "--mechanism", "off", "--out", str(tmp_path / "r"))
    )
    assert line.startswith(f"Error: --config {written}: privacy.epsilon, "), line
    assert "(--mechanism off)" in line, line


def _tiny_csv(path: Path) -> Path:
    lines = ["amount,velocity,is_fraud"]
    lines += [f"{(i % 7) / 3:.3f},{i % 3},{int(i % 10 == 0)}" for i in range(400)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_files_key_refused_once_the_run_reads_its_data_names_the_file(tmp_path: Path) -> None:
    """``label = "y"`` in the file for a CSV without that column is found as the data is
    read (the run's own refusal): the file is named; ``--label y`` names the flag."""
    data = _tiny_csv(tmp_path / "t.csv")
    config = tmp_path / "team-shared.toml"
    config.write_text(f'[data]\nsource = "csv"\npath = "{data}"\nlabel = "y"\n')
    result = CliRunner().invoke(
        main, ["simulate", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]
    )
    line = _line(result)
    assert line.startswith(f"Error: --config {config}: data.label = 'y': {data} has no"), line
    args = ["simulate", "--config", str(config), "--label", "z", "--quiet"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run")])
    line = _line(result)
    assert line.startswith(f"Error: --label z: {data} has no column 'z'"), line


#: a small valid file the property edits (a client-level federation, every section)
BASE = {
    "simulation": {"branches": 6, "rounds": 2, "backend": "secagg"},
    "privacy": {"unit": "client", "mechanism": "central", "noise_multiplier": 1.0},
    "training": {"local_epochs": 1, "server_momentum": 0.5},
    "data": {"world": "hard"},
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        edit_strategy({section: sorted(keys) for section, keys in SECTIONS.items()}),
        min_size=1,
        max_size=3,
    )
)
def test_any_mistake_in_a_file_alone_names_the_file(edits: list) -> None:
    """Random wrong values, misspelt, moved or unknown keys and sections, and lines that
    are not TOML (tests/_config_fuzz.py) in a file given without flags: a refusal, when
    there is one, begins ``--config F`` and is one line."""
    text, _, _ = edited_text(copy.deepcopy(BASE), edits)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "simulation.toml"
        path.write_text(text, encoding="utf-8")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_config(str(path), {})
        except ConfigurationError as exc:
            message = str(exc)
            assert message.startswith(f"--config {path}"), (edits, message)
            assert "\n" not in message, (edits, message)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(SECTIONS)).flatmap(
        lambda section: st.tuples(st.just(section), st.sampled_from(sorted(SECTIONS[section])))
    ),
    data=st.data(),
)
def test_a_misspelt_key_names_the_file_and_the_key(
    name: tuple[str, str], data: st.DataObject
) -> None:
    section, key = name
    typo = data.draw(misspelt(key).filter(lambda n: n not in SECTIONS[section]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "simulation.toml"
        path.write_text(toml_text({section: {typo: 1}}), encoding="utf-8")
        with pytest.raises(ConfigurationError) as caught:
            build_config(str(path), {})
    assert str(caught.value).startswith(f"--config {path}: unknown key {section}."), caught.value


def test_a_data_refusal_naming_no_key_of_the_file_is_not_blamed_on_it(tmp_path: Path) -> None:
    """``--path F.csv`` without a fraud row, beside a file that sets only the branches:
    the CSV's own line, without ``--config`` (the file is not what the user fixes)."""
    lines = ["amount,velocity,is_fraud"] + [f"{i % 7},{i % 3},0" for i in range(400)]
    data = tmp_path / "no-fraud.csv"
    data.write_text("\n".join(lines) + "\n")
    config = tmp_path / "team-shared.toml"
    config.write_text("[simulation]\nbranches = 3\n")
    args = ["simulate", "--config", str(config), "--data", "csv", "--path", str(data)]
    args += ["--label", "is_fraud", "--out", str(tmp_path / "run"), "--quiet"]
    line = _line(CliRunner().invoke(main, args))
    assert line.startswith(f"Error: {data}: the label 'is_fraud' has no positive"), line
    assert str(config) not in line, line
