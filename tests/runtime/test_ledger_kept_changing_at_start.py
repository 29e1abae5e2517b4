"""A server whose ledger keeps changing as it starts says what a server operator does.

Before (review leftover, 2026-12-07): the start read the ledger's rows as the audit
reads them, and a ledger whose files changed during each read ended the start with the
audit's words, "... nothing was judged: read it again (between two rounds, or with the
server stopped)": advice for an auditor, which a server operator cannot follow (the
server is the one starting). At a start under the state's lock, the writer is another
process writing the ledger's files (a second server on this ledger, a copy or sync
tool): the line now says so and to stop it, exit 1 (another process is the machine's
side of common.py's rule, as a held lock is), nothing changed.

The writer is simulated in process: the ledger's file state differs at every look
(``chain._file_state``), as a writer that never stops makes it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.ledger import chain
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state


def _toml(folder: Path) -> Path:
    devca.init_ca(folder / "certs")
    path = folder / "federation.toml"
    path.write_text(
        '[federation]\nname = "busy"\nclients = ["b-0", "b-1", "b-2"]\ndimension = 4\n'
        'rounds = 1\n[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{folder / "state.sqlite"}"\nbind = "127.0.0.1:0"\n'
        f'certificates = "{folder / "certs"}"\n'
    )
    return path


def _a_writer_never_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    looks = itertools.count()
    monkeypatch.setattr(chain, "_file_state", lambda path: (next(looks),))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_start_names_another_writer_and_says_to_stop_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = FederationConfig.load(_toml(tmp_path))
    open_server_state(config, init=True).close()
    before = _files(tmp_path)
    _a_writer_never_stops(monkeypatch)
    with pytest.raises(chain.LedgerKeptChanging) as caught:
        open_server_state(config)
    line = str(caught.value)
    assert "read it again" not in line and "between two rounds" not in line, line
    assert f"{tmp_path / 'state.sqlite'}.ledger" in line, line
    assert "another process" in line and "second server" in line, line
    assert "stop it" in line, line
    monkeypatch.undo()
    assert _files(tmp_path) == before  # nothing changed by the refused start


def test_the_server_command_says_it_in_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = _toml(tmp_path)
    open_server_state(FederationConfig.load(config_path), init=True).close()
    _a_writer_never_stops(monkeypatch)
    result = CliRunner().invoke(main, ["server", "--config", str(config_path)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("secagg server: "), lines[0]
    assert "another process" in lines[0] and "read it again" not in lines[0], lines[0]
