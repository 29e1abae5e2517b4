"""``secagg server`` on a finished federation whose lost ledger row cannot be rebuilt
(a full disk) or whose rebuild is stopped (Ctrl-C, SIGTERM): one line and the right
exit status (1; 130, 143), no traceback, no claim of a row that is not there, and one
log record that names the rebuild; the next start rebuilds the row.

Second review of the deferred rebuild (2026-12-07, after 52774065). The federation's
rows read no DP-SGD replays (no DP) are rebuilt in the server's constructor, which
logged nothing when the rebuild ended early: on a full disk the command said only
``secagg server: [Errno 28] No space left on device``, naming neither the ledger nor
its rebuild, and a stop there left no line of what it cut short, where a record-level
federation (rebuilt by ``FederationServer.backfill_ledger``) said "the server could not
rebuild its ledger's missing rows: ..." or "stopped by SIGTERM while it rebuilt ...".
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from _finished_federation import finished_with_the_row_lost
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.transport.waiting import ask_stop


def _full_disk() -> BaseException:
    return OSError(28, "No space left on device")


def _ctrl_c() -> BaseException:
    ask_stop(signal.SIGINT)  # as the command's SIGINT handler does before it raises
    return KeyboardInterrupt()


def _sigterm() -> BaseException:
    ask_stop(signal.SIGTERM)  # as the command's SIGTERM handler does before it raises
    return _Terminated(signal.SIGTERM)


#: what ends the rebuild, the command's exit status, its line, and the log record's
CASES = {
    "full-disk": (
        _full_disk,
        1,
        "secagg server: [Errno 28] No space left on device",
        (logging.ERROR, "the server could not rebuild its ledger's missing rows: [Errno 28]"),
    ),
    "ctrl-c": (
        _ctrl_c,
        130,
        "secagg server: stopped by Ctrl-C (SIGINT): completed rounds are kept; no round "
        "was in flight",
        (logging.WARNING, "stopped by Ctrl-C (SIGINT) while it rebuilt its ledger's missing"),
    ),
    "sigterm": (
        _sigterm,
        143,
        "secagg server: stopped by SIGTERM: completed rounds are kept; no round was in flight",
        (logging.WARNING, "stopped by SIGTERM while it rebuilt its ledger's missing rows"),
    ),
}


def _rounds_in_the_ledger(state: str) -> list[int]:
    key = LedgerKey.load(Path(state + ".ledger-key"))
    audit = verify_ledger(Path(state + ".ledger"), key.public_key)
    assert audit.ok, audit.first_failure
    return [row.entry["round"] for row in audit.chain.rows]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("record_level", [False, True], ids=["no-dp", "record-level"])
def test_a_finished_federation_whose_rebuild_ends_early_says_one_line_and_claims_no_row(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    record_level: bool,
    case: str,
) -> None:
    ending, status, said, (level, logged) = CASES[case]
    make: Callable[[], BaseException] = ending

    def append_ends(ledger: Ledger, entry: dict[str, object]) -> int:
        raise make()

    mine = threading.get_ident()
    with finished_with_the_row_lost(tmp_path, record_level) as toml:
        config = FederationConfig.load(toml)
        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="secagg")
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(Ledger, "append", append_ends)
            result = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
        assert result.exit_code == status, result.output
        assert "Traceback" not in result.output
        assert result.stdout == "", "the command claimed what it did not do"
        verdicts = [
            line for line in result.stderr.splitlines() if line.startswith("secagg server:")
        ]
        assert verdicts == [said], result.stderr
        records = [
            (r.levelno, r.getMessage(), r.exc_info)
            for r in caplog.records
            if r.thread == mine and "its ledger's missing rows" in r.getMessage()
        ]
        assert len(records) == 1, records  # one line says what the rebuild ended on
        ((seen, message, trace),) = records
        assert (seen, logged in message) == (level, True), records
        assert trace is None, "the line carries no traceback"
        assert _rounds_in_the_ledger(config.server.state) == []  # nothing half written
        # the next start rebuilds the row, and says so
        again = CliRunner().invoke(main, ["server", "--config", str(toml), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "its ledger lacked the row of round 1, rebuilt now" in again.stdout
    assert _rounds_in_the_ledger(config.server.state) == [1]
