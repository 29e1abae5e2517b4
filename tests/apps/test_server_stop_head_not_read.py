"""``secagg server`` whose read of the ledger's head before ``serve`` failed (a
transient "database is locked", an OS error) makes no claim, on a stop, about which
ledger rows the start wrote; it still gives the head it reads after.

Helper brief 321 (2026-12-07), left from the stop-line head's reviews: the head read
before ``serve`` answered None both where there is no ledger (every row is this
start's) and where the read failed. A stop after such a failed read named every row of
the ledger as written by this start, rows of earlier starts among them ("this start
wrote the ledger's row of rounds 1 and 2" where round 1's row was years old): a false
line on the one output an operator keeps from a stopped run.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _finished_federation import NAMES, federation_toml
from _ledgers import ledger_row, write_ledger
from click.testing import CliRunner

import secagg.ledger.chain
import secagg.runtime.launch
from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated
from secagg.ledger import Ledger, LedgerKey
from secagg.runtime.config import FederationConfig
from secagg.transport.waiting import ask_stop

#: what a head read may raise and be over by the next read
FAILURES: dict[str, Callable[[], BaseException]] = {
    "locked": lambda: sqlite3.OperationalError("database is locked"),
    "os-error": lambda: OSError(5, "Input/output error"),
}


def _row(number: int) -> dict[str, Any]:
    """Round ``number``'s ledger row, as the federation of :func:`federation_toml` writes it."""
    return ledger_row(number, None, None, federation="cli", participants=NAMES)


def _round_written(path: Path, key: LedgerKey, number: int) -> str:
    """Round ``number``'s row appended to the ledger at ``path``; the head after."""
    ledger = Ledger(path, key)
    try:
        ledger.append(_row(number))
        return ledger.anchor()
    finally:
        ledger.close()


def _stop_line(result: Any) -> str:
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert len(said) == 1, result.stderr
    return said[0]


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_head_read_that_failed_before_serve_claims_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """An earlier start wrote round 1's row; this one reads the head as it starts, the
    read failing once, and writes round 2's row before a SIGTERM. Before: "this start
    wrote the ledger's row of rounds 1 and 2". Now: the line says it cannot tell which
    rows are this start's, names no round, and gives the head after round 2."""
    toml = federation_toml(tmp_path, 1, record_level=False)
    config = FederationConfig.load(toml)
    path, key = write_ledger(Path(config.server.state + ".ledger"), [_row(1)])  # an earlier start's
    heads: list[str] = []

    real = secagg.ledger.chain.read_without_writing
    failed: list[str] = []

    def read_once_failing(path: Any, query: Any) -> Any:
        if not failed:
            failed.append(str(path))
            raise FAILURES[failure]()
        return real(path, query)

    def interrupted(config: FederationConfig, **_kwargs: object) -> None:
        heads.append(_round_written(path, key, 2))
        ask_stop(signal.SIGTERM)  # as the command's SIGTERM handler does before it raises
        raise _Terminated(signal.SIGTERM)

    monkeypatch.setattr(secagg.ledger.chain, "read_without_writing", read_once_failing)
    monkeypatch.setattr(secagg.runtime.launch, "serve", interrupted)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert "Traceback" not in result.output
    assert result.exit_code == 143, result.output
    assert failed == [config.server.state + ".ledger"], "the head read before serve did not fail"
    line = _stop_line(result)
    assert "round 1" not in line and "rounds 1" not in line, line
    assert "wrote the ledger's row" not in line and "wrote ledger rows" not in line, line
    assert "could not tell which ledger rows it wrote" in line, line
    assert f"ledger head {heads[0]} " in line, line


def test_a_head_read_before_serve_that_worked_still_names_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the failure the same run's line names round 2's row alone, as before."""
    toml = federation_toml(tmp_path, 1, record_level=False)
    config = FederationConfig.load(toml)
    path, key = write_ledger(Path(config.server.state + ".ledger"), [_row(1)])
    heads: list[str] = []

    def interrupted(config: FederationConfig, **_kwargs: object) -> None:
        heads.append(_round_written(path, key, 2))
        ask_stop(signal.SIGTERM)
        raise _Terminated(signal.SIGTERM)

    monkeypatch.setattr(secagg.runtime.launch, "serve", interrupted)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert result.exit_code == 143, result.output
    line = _stop_line(result)
    assert f"this start wrote the ledger's row of round 2: ledger head {heads[0]} " in line, line
