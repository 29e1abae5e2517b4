"""``secagg server`` on a finished federation, stopped after its start rebuilt a lost
ledger row and before it printed the row and the ledger's new head: the stop's line says
which row was rebuilt and gives the head, which ``secagg audit verify --expect-head``
takes.

Reviewer's leftover (2026-12-07): the start rebuilds the row (in the server's
constructor, or, where the row reads DP-SGD replays, in ``backfill_ledger``) and the
command then prints the row and the head (tests/apps/test_server_finished_rebuilt_head.py).
A Ctrl-C or SIGTERM in between (the rebuild's return, serve's closing, the printout's
start) said only "stopped by ...: completed rounds are kept; no round was in flight":
the ledger had a new head, and it reached no one. Decided: the stop's line carries it.
A stop can land anywhere in that stretch, and deferring it would need the signal
handlers to stop raising there; the stop's line is the one output sure to come (it is
said with further stops ignored). The same holds for any start that wrote rows before
a stop (a run stopped after its rounds): checked here for a start that wrote none too.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _finished_federation import federation_toml, finished_with_the_row_lost
from click.testing import CliRunner

import secagg.apps.commands.server as server_command
from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated
from secagg.ledger import LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.transport.waiting import ask_stop


def _ctrl_c() -> BaseException:
    ask_stop(signal.SIGINT)  # as the command's SIGINT handler does before it raises
    return KeyboardInterrupt()


def _sigterm() -> BaseException:
    ask_stop(signal.SIGTERM)  # as the command's SIGTERM handler does before it raises
    return _Terminated(signal.SIGTERM)


#: the stop, its exit status and how the line names it
STOPS: dict[str, tuple[Callable[[], BaseException], int, str]] = {
    "ctrl-c": (_ctrl_c, 130, "Ctrl-C (SIGINT)"),
    "sigterm": (_sigterm, 143, "SIGTERM"),
}


def _stop_after_the_rebuild(patched: pytest.MonkeyPatch, stop: Callable[[], BaseException]) -> None:
    """The stop lands as ``backfill_ledger`` returns (the rebuild done: in it, or in the
    constructor before it), inside ``serve``."""
    real = FederationServer.backfill_ledger

    def backfill(server: FederationServer) -> None:
        real(server)
        raise stop()

    patched.setattr(FederationServer, "backfill_ledger", backfill)


def _stop_before_the_printout(
    patched: pytest.MonkeyPatch, stop: Callable[[], BaseException]
) -> None:
    """The stop lands as the command begins its printout, ``serve`` returned."""

    def say(*_args: Any) -> None:
        raise stop()

    patched.setattr(server_command, "_say_outcome", say)


#: where the stop lands
WHERE = {"in-serve": _stop_after_the_rebuild, "before-the-printout": _stop_before_the_printout}


def _head(state: str) -> tuple[str, list[tuple[int, bool]]]:
    """The verified ledger's head and its rows (round, rebuilt)."""
    key = LedgerKey.load(Path(state + ".ledger-key"))
    audit = verify_ledger(Path(state + ".ledger"), key.public_key)
    assert audit.ok, audit.first_failure
    assert audit.chain.head is not None
    rows = [(row.entry["round"], bool(row.entry.get("reconstructed"))) for row in audit.chain.rows]
    return audit.chain.head, rows


@pytest.mark.parametrize("where", sorted(WHERE))
@pytest.mark.parametrize("stop", sorted(STOPS))
@pytest.mark.parametrize("record_level", [False, True], ids=["no-dp", "record-level"])
def test_a_stop_after_the_rebuild_says_the_rebuilt_row_and_the_new_head(
    tmp_path: Path, record_level: bool, stop: str, where: str
) -> None:
    """Before: "stopped by ...: completed rounds are kept; no round was in flight", no
    head anywhere. Now the line names round 1's rebuilt row and the head, the head the
    ledger verifies to, which ``audit verify --expect-head`` then finds."""
    make, status, how = STOPS[stop]
    with finished_with_the_row_lost(tmp_path, record_level) as toml:
        config = FederationConfig.load(toml)
        with pytest.MonkeyPatch.context() as patched:
            WHERE[where](patched, make)
            result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
        assert result.exit_code == status, result.output
        assert "Traceback" not in result.output
        state = config.server.state
        head, rows = _head(state)
        assert rows == [(1, True)], "the rebuild did not happen before the stop: not the case"
        said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
        assert said == [
            f"secagg server: stopped by {how}: completed rounds are kept; no round was in "
            "flight; this start rebuilt the ledger's row of round 1 from the state: ledger "
            f"head {head} (publish it: auditors pass it to secagg audit verify "
            "--expect-head, which then detects a ledger cut back)"
        ], result.stderr
        audit = CliRunner().invoke(
            main,
            [
                "audit",
                "verify",
                state + ".ledger",
                "--pubkey",
                state + ".ledger-key.pub",
                "--expect-head",
                said[0].split("ledger head ")[1].split()[0],  # as an auditor copies it
                "--config",
                str(toml),
            ],
        )
        # 3 for the federation without DP: verified, and said to be not private
        assert audit.exit_code == (0 if record_level else 3), audit.output
        assert f"expected head {head} is in the ledger" in audit.stdout, audit.stdout


def test_a_stop_after_a_start_that_wrote_no_row_says_no_head(tmp_path: Path) -> None:
    """A second start (the row rebuilt by the first) stopped at the same place wrote
    nothing: its line is as before, with no head (none changed)."""
    with finished_with_the_row_lost(tmp_path, record_level=False) as toml:
        first = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
        assert first.exit_code == 0, first.output
        with pytest.MonkeyPatch.context() as patched:
            _stop_after_the_rebuild(patched, _sigterm)
            result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert result.exit_code == 143, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert said == [
        "secagg server: stopped by SIGTERM: completed rounds are kept; no round was in flight"
    ], result.stderr


def test_a_run_stopped_after_its_rounds_wrote_rows_says_them_and_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a run (not a finished federation): a stop after round 1's row was
    appended, before any line printed the head, names round 1's row and the head."""
    import secagg.runtime.launch
    from secagg.runtime.launch import open_server_state

    toml = federation_toml(tmp_path, 1, record_level=False)
    heads: list[str] = []

    def interrupted(config: FederationConfig, **_kwargs: object) -> None:
        state = open_server_state(config, init=True)
        try:
            state.ledger.append({"round": 1, "status": "complete"})  # round 1's row
            heads.append(state.ledger.anchor())
        finally:
            state.close()
        raise _sigterm()

    monkeypatch.setattr(secagg.runtime.launch, "serve", interrupted)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init", "--quiet"])
    assert result.exit_code == 143, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert said == [
        "secagg server: stopped by SIGTERM: completed rounds are kept; no round was in flight; "
        f"this start wrote the ledger's row of round 1: ledger head {heads[0]} (publish it: "
        "auditors pass it to secagg audit verify --expect-head, which then detects a ledger "
        "cut back)"
    ], result.stderr
