"""``secagg simulate --config F``: a refusal is blamed on the file when it names one of
the file's keys, and a key's words inside a path are not the key.

Why: ``--config F`` (``seed = 7``) beside a typed ``--path runs/simulation.seed/t.csv``
whose CSV has no fraud row read ``Error: --config F: runs/simulation.seed/t.csv: the
label ... has no positive row``, and a typed ``--path`` to a named pipe in that folder
``--config F: --path ... is a named pipe``, blaming a file that set only the seed: the
check took ``simulation.seed`` inside the path for the key (second review of the
in_file change, 2026-12-07). A line that does name the key (``simulation.seed must``,
``[simulation] seed``, ``data.label = 'y':``, at a sentence's end) still names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.simulation.cli import _names_a_file_key
from secagg.apps.simulation.config import SECTION_OF


def _no_fraud_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["amount,velocity,is_fraud"] + [f"{i % 7},{i % 3},0" for i in range(400)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("inside", ["simulation.seed/t.csv", "simulation.seed.csv"])
def test_a_data_refusal_under_a_key_named_folder_is_not_the_files(
    tmp_path: Path, inside: str
) -> None:
    data = _no_fraud_csv(tmp_path / inside)
    config = tmp_path / "team-shared.toml"
    config.write_text("[simulation]\nseed = 7\n")
    args = ["simulate", "--config", str(config), "--data", "csv", "--path", str(data)]
    args += ["--label", "is_fraud", "--out", str(tmp_path / "run"), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: {data}: the label 'is_fraud' has no positive"), line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_typed_path_to_a_pipe_under_a_key_named_folder_is_the_flags(tmp_path: Path) -> None:
    (tmp_path / "simulation.seed").mkdir()
    pipe = tmp_path / "simulation.seed" / "t.csv"
    os.mkfifo(pipe)
    config = tmp_path / "team-shared.toml"
    config.write_text("[simulation]\nseed = 7\n")
    args = ["simulate", "--config", str(config), "--data", "csv", "--path", str(pipe)]
    args += ["--label", "is_fraud", "--out", str(tmp_path / "run"), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: --path {pipe} is a named pipe"), line


_KEYS = st.sampled_from(sorted(SECTION_OF))
_NAME = st.text(st.sampled_from("abcxyz019_"), min_size=1, max_size=8)


@given(name=_KEYS, before=_NAME, after=_NAME, form=st.integers(0, 3))
def test_a_keys_words_inside_a_path_are_not_the_key(
    name: str, before: str, after: str, form: int
) -> None:
    spelt = f"{SECTION_OF[name]}.{name}"
    path = (
        f"/{before}/{spelt}/{after}.csv",
        f"{before}/{spelt}.csv",
        f"C:\\{before}\\{spelt}\\{after}.csv",
        f"./{spelt}-{after}.csv",
    )[form]
    assert not _names_a_file_key(f"{path}: the label 'y' has no positive row", {name: 1})


@given(name=_KEYS, tail=st.sampled_from(["", ".", ",", ":", " must", ")", "'", " = 'y':"]))
def test_a_line_that_names_the_key_still_names_it(name: str, tail: str) -> None:
    section = SECTION_OF[name]
    for spelt in (f"{section}.{name}", f"[{section}] {name}"):
        assert _names_a_file_key(f"refused: {spelt}{tail}", {name: 1}), spelt
        assert _names_a_file_key(f"({spelt}{tail}", {name: 1}), spelt
