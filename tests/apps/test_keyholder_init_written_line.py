"""The lines ``secagg keyholder-init`` and ``secagg certs init`` print on success name
the file or folder typed by ``shown_path``, as their error lines do: one printable line
each, whatever the name holds.

Second review of 6ce36ba9 (helper brief 324, 2026-12-07): the error lines of the typed
path flags were made to show an odd name by ``shown_path``, but the success lines kept
it raw: ``keyholder-init --key $'k\\x1b[2J.key'`` printed ``key written to k<ESC>[2J.key``
(the escape cleared the operator's terminal as the secret key was written) and a line
break in ``--key`` or ``certs init --dir`` split the line. A plain name is as typed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.commands.common import shown_path

#: names a terminal would not show as typed
ODD = {
    "an ANSI escape": "k\x1b[2Jx",
    "a line break": "k\nx",
    "a bidirectional override": "k\u202ex",
}


def _ckks_config(path: Path) -> Path:
    path.write_text(
        '[federation]\nname = "kh"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nkey_holder = "holder"\nvalue_bound = 1.0\n'
        '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
        f'[server]\nstate = "{path.parent / "s.sqlite"}"\ncertificates = "{path.parent}"\n'
    )
    return path


def _printable_lines(output: str) -> list[str]:
    lines = output.splitlines()
    assert all(line.isprintable() for line in lines), output
    return lines


@pytest.mark.parametrize("kind", [*sorted(ODD), "plain"])
def test_keyholder_init_names_the_key_it_wrote_on_one_line(tmp_path: Path, kind: str) -> None:
    """Before: the key's name raw (2 of 3 odd names not printable, the line break two
    lines). Now: ``key written to <shown>``; a plain name as typed."""
    pytest.importorskip("tenseal")
    config = _ckks_config(tmp_path / "ckks.toml")
    key = str(tmp_path / (ODD.get(kind, "kx") + ".key"))
    result = CliRunner().invoke(main, ["keyholder-init", "--config", str(config), "--key", key])
    assert result.exit_code == 0, result.output
    assert Path(key).is_file()
    lines = _printable_lines(result.stdout)
    assert lines[0] == (
        f"key written to {shown_path(key)} (mode 0600: the secret key; keep it here only)"
    ), lines
    assert lines[1].startswith("fingerprint "), lines


@pytest.mark.parametrize("kind", [*sorted(ODD), "plain"])
def test_certs_init_names_its_folder_on_one_line(tmp_path: Path, kind: str) -> None:
    """Before: ``CA in <raw>`` and the server certificate's path raw. Now: shown."""
    folder = str(tmp_path / ODD.get(kind, "kx"))
    result = CliRunner().invoke(main, ["certs", "init", "--dir", folder])
    assert result.exit_code == 0, result.output
    lines = _printable_lines(result.stdout)
    assert lines[0].startswith(f"CA in {shown_path(folder)} (fingerprint "), lines
    assert lines[1].endswith(f": {shown_path(str(Path(folder) / 'server.pem'))}"), lines
