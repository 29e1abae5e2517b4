"""``secagg server`` with ``[server] state`` naming a folder: one line naming the key.

Why: ``state = "state"`` (the folder the docs' layout makes, not a file in it) said
``secagg server: the state state cannot be opened: unable to open database file`` and
exited 1, the status of a damaged state, with SQLite's words and no key (review,
2026-12-06). It is a mistake in the config: exit 2, one line naming ``--config``, the
key and a file path in the folder, before the state is locked or the port bound, and
the folder is left as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main

NAMES = ["branch-0", "branch-1", "branch-2"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("state-folder") / "certs"
    devca.init_ca(directory)
    return directory


def _toml(directory: Path, state: str, certs: Path) -> Path:
    path = directory / "federation.toml"
    clients = ", ".join(f'"{name}"' for name in NAMES)
    path.write_text(
        f'[federation]\nname = "pilot"\nclients = [{clients}]\ndimension = 4\nrounds = 1\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{state}"\nbind = "127.0.0.1:0"\ncertificates = "{certs}"\n'
    )
    return path


@pytest.mark.parametrize("init", [True, False])
@pytest.mark.parametrize("relative", [True, False])
def test_a_state_that_is_a_folder_is_one_line_naming_the_key(
    tmp_path: Path,
    certs: Path,
    monkeypatch: pytest.MonkeyPatch,
    init: bool,
    relative: bool,
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "keep.txt").write_text("an operator's file")
    monkeypatch.chdir(tmp_path)
    state = "state" if relative else str(folder)
    config = _toml(tmp_path, state, certs)
    args = ["server", "--config", str(config), *(["--init"] if init else [])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    expected = f"secagg server: --config {config}: [server] state = '{state}' is a folder"
    assert lines[0].startswith(expected), lines[0]
    assert "pilot.sqlite" in lines[0], lines[0]
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]  # nothing made in it
