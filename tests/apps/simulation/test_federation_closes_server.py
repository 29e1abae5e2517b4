"""The simulation closes its federation server once the rounds end, whatever ends them:
a server left open kept its record-level DP-SGD replays (a report of a round that
aborted) running in a background thread for nobody after the run (second review of
the record-level replays, 2026-12-07)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.runtime.server import FederationServer

TINY = ["--branches", "3", "--local-epochs", "1", "--train-rows", "3000"]
TINY += ["--test-rows", "400", "--batch-size", "64", "--quiet"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--rounds", "1", "--dropout", "0"],  # record-level DP-SGD, the default: replays
        ["--rounds", "2", "--dropout", "0.3"],  # rounds that may abort on dropouts
    ],
)
def test_every_run_closes_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    closed: list[FederationServer] = []
    close = FederationServer.close

    def counted(self: FederationServer) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(FederationServer, "close", counted)
    result = CliRunner().invoke(main, ["simulate", *TINY, *flags, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert len(closed) == 1


def test_a_run_that_fails_closes_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[FederationServer] = []

    def counted(self: FederationServer) -> None:
        closed.append(self)

    def broken(self: FederationServer, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FederationServer, "close", counted)
    monkeypatch.setattr(FederationServer, "run", broken)
    result = CliRunner().invoke(
        main, ["simulate", *TINY, "--rounds", "1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code != 0
    assert len(closed) == 1
