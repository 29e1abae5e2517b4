"""``secagg server`` says a ledger key it cannot read by the one path-failure rule.

Why: the server reads ``<state>.ledger-key`` (its ledger's signing key) at every start, and
any failure of that read was one line with exit 1 naming no flag, in Python's words
(``secagg server: cannot read the ledger key K: [Errno 21] Is a directory: 'K'``); a loop
of symbolic links at the key read as ``the ledger key K is missing ... restore the key
from a backup``. The rule (``secagg.apps.commands.common.os_error_status``): what the
path names is a mistake in ``--config``'s ``[server] state`` (a folder, a loop of links,
a name too long), exit 2 naming it; what the machine refuses (no permission, an I/O
error) is exit 1, one line naming the flag, the path and the cause. Nothing is bound or
written: the state, its ledger and key are as they were. A key that is missing beside a
ledger with rows stays a lost file to restore (exit 1), as a lost state is.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg import durable
from secagg.apps import devca
from secagg.apps.cli import main
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state


def _federation(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A started-once federation (state, ledger, ledger key) and its config: (config,
    state, ledger key)."""
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    state = tmp_path / "state.sqlite"
    names = json.dumps([f"branch-{i}" for i in range(3)])
    config = tmp_path / "federation.toml"
    config.write_text(
        f'[federation]\nname = "env"\nclients = {names}\ndimension = 4\nrounds = 1\n'
        '[sampling]\nkind = "poisson"\nrate = 1.0\n[backend]\nname = "secagg+"\n'
        f'value_bound = 1.0\n[server]\nstate = "{state}"\nbind = "127.0.0.1:1"\n'
        f'certificates = "{ca}"\n'
    )
    opened = open_server_state(FederationConfig.load(str(config)), init=True)
    assert opened.ledger is not None
    opened.ledger.close()
    opened.store.close()
    return config, state, Path(f"{state}.ledger-key")


def _line(result: Result, status: int) -> str:
    assert result.exit_code == status, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _start(config: Path) -> Result:
    return CliRunner().invoke(main, ["server", "--config", str(config), "--quiet"])


def _files(state: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in state.parent.iterdir()
        if p.is_file() and p.suffix != ".lock"
    }


@pytest.mark.parametrize("what", ["a folder", "a loop of links"])
def test_a_ledger_key_path_that_names_no_file_is_the_configs_mistake(
    tmp_path: Path, what: str
) -> None:
    config, state, key = _federation(tmp_path)
    key.unlink()
    if what == "a folder":
        key.mkdir()
    else:
        key.symlink_to(key.name)
    before = _files(state)
    line = _line(_start(config), 2)  # was 1
    prefix = f"secagg server: --config {config}: [server] state = '{state}': the ledger key "
    assert line.startswith(prefix), line
    why = os.strerror(errno.EISDIR if what == "a folder" else errno.ELOOP)
    assert line == f"{prefix}{key}: {why} (it must be the key file the server wrote there)"
    assert "[Errno" not in line and _files(state) == before


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO], ids=errno.errorcode.get)
def test_a_ledger_key_the_machine_will_not_read_is_exit_1_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    config, state, key = _federation(tmp_path)
    real = durable.opened_regular_file

    def opened(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(key):
            raise OSError(code, os.strerror(code), str(key))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(durable, "opened_regular_file", opened)
    before = _files(state)
    line = _line(_start(config), 1)
    assert line == (
        f"secagg server: --config {config}: [server] state = '{state}': the ledger key "
        f"{key} cannot be read: {os.strerror(code)}: {key}"
    ), line  # was "secagg server: cannot read the ledger key K: [Errno 13] ...: 'K'"
    assert _files(state) == before


def test_a_ledger_key_lost_beside_a_ledger_is_still_a_file_to_restore(tmp_path: Path) -> None:
    """Guard: a key gone beside a ledger with rows stays the start's refusal, a lost file
    to restore (exit 1), as a lost state is."""
    config, _state, key = _federation(tmp_path)
    key.unlink()
    line = _line(_start(config), 1)
    assert f"the ledger key {key} is missing" in line and "restore" in line, line


def test_a_ledger_key_linked_to_nothing_names_the_broken_link(tmp_path: Path) -> None:
    """A key that is a link to a file gone (a disk not mounted, a folder moved) is the
    link's mistake, said as such (exit 2, ``StateLinkBroken``: mount or restore the
    target, or correct the link), not "missing, restore it from a backup": the key may
    be whole where the link should point."""
    config, _state, key = _federation(tmp_path)
    key.unlink()
    key.symlink_to(tmp_path / "gone.key")
    line = _line(_start(config), 2)
    assert f"{key} is a symbolic link to" in line and "does not exist" in line, line
