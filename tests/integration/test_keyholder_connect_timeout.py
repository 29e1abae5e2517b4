"""``secagg keyholder --connect-timeout``: how long the key holder dials its first
session, as ``secagg client --connect-timeout`` is the branch's.

Review (2026-12-05): ``secagg keyholder`` had no such flag, so a key holder always
dialled for ``run_key_holder``'s 30 s, whether the server was slow to come up or the
address was wrong. Here the address is one nobody listens on: the key holder gives up
after the seconds given, not after 30 (every wait has a generous bound).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _threads import free_port
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main

#: the default dial (run_key_holder's connect_timeout), which the flag must cut short
DEFAULT_DIAL = 30.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keyholder-connect") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "holder")
    return directory


def test_the_key_holder_gives_up_its_first_dial_after_connect_timeout(ca: Path) -> None:
    """Before: ``no such option: --connect-timeout`` (exit 2). After: exit 1 with one
    line saying the server cannot be reached, well before the 30 s default."""
    target = f"127.0.0.1:{free_port()}"
    args = ["keyholder", "--server", target, "--name", "holder", "--certs", str(ca)]
    began = time.monotonic()
    result = CliRunner().invoke(main, [*args, "--connect-timeout", "2"])
    took = time.monotonic() - began
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("secagg keyholder")]
    assert len(lines) == 1, result.output
    assert target in lines[0], lines[0]
    # the whole 2 s is dialled (a refused connection is redialled inside it), and the
    # dial ends there: far below the default's 30 s even on a loaded machine
    assert 1.5 <= took < DEFAULT_DIAL - 10, (took, result.output)


def test_the_key_holder_help_offers_connect_timeout_as_the_client_does() -> None:
    from secagg.apps.cli import client, keyholder

    def option(command: object, name: str) -> object:
        return next(p for p in command.params if p.name == name)  # type: ignore[attr-defined]

    ours, theirs = option(keyholder, "connect_timeout"), option(client, "connect_timeout")
    assert ours.default == theirs.default == DEFAULT_DIAL  # type: ignore[attr-defined]
    assert ours.help == theirs.help  # type: ignore[attr-defined]
    assert type(ours.type) is type(theirs.type)  # type: ignore[attr-defined]
