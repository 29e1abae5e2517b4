"""``secagg keyholder-init --key DIR/KEY`` whose folder is missing names that folder.

Why: it said ``--key nodir/kh.key: No such file or directory:
/abs/nodir/.kh.key.isphrqys.tmp``, the name of the temporary file the key is written
through, which the user never typed (review, 2026-12-06). Now: one line naming --key
and the folder, exit 2, and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


def _ckks_config(path: Path) -> Path:
    path.write_text(
        '[federation]\nname = "kh"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nkey_holder = "holder"\nvalue_bound = 1.0\n'
        '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
        f'[server]\nstate = "{path.parent / "s.sqlite"}"\ncertificates = "{path.parent}"\n'
    )
    return path


@pytest.mark.parametrize("blocker", ["missing", "file"])
def test_a_key_in_a_folder_that_is_not_there_names_the_folder(tmp_path: Path, blocker: str) -> None:
    config = _ckks_config(tmp_path / "ckks.toml")
    folder = tmp_path / "keys"
    if blocker == "file":
        folder.write_text("not a folder")
    key = folder / "holder.key"
    result = CliRunner().invoke(
        main, ["keyholder-init", "--config", str(config), "--key", str(key)]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    what = "does not exist" if blocker == "missing" else "is a file, not a folder"
    assert lines == [f"secagg keyholder-init: --key {key}: the folder {folder} {what}"], lines
    assert ".tmp" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ckks.toml", *(["keys"] if blocker == "file" else [])]
    )
