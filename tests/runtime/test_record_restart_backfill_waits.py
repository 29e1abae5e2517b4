"""A record-level server restarted after a crash mid-round is built, and can bind its
port, before it replays the restored DP-SGD reports; the aborted round's ledger row is
rebuilt once the port is bound.

Second review of the record-level replays (2026-12-07). 5d1b1a1c moved the restored
reports' replays to a background thread so that a restart of hundreds of PRV branches
binds its port at once (tests/runtime/test_record_restart_replays.py). But a crash
mid-round, the usual reason for a restart, leaves a round the restart aborts
(``aborted_on_restart``), and the constructor rebuilt that round's ledger row
(``_backfill_ledger``): the row's block and claim (``ledger_block``, ``ledger_claim``)
read every branch's held figure, so the constructor waited for every restored replay,
in order, before it returned, and the port was bound only after that (as before
5d1b1a1c). The figures must be the replays' (the row is signed), so such rows are now
rebuilt once the port is bound (``FederationServer.backfill_ledger``: at the start of
``run``/``run_round``, and in ``serve``'s finished-federation path), which moves
``refuse_broken_chain``'s and a failed append's errors past the bind: raised to the
session that owns the server, which then runs no rounds (``ServerStopped``).

The rebuilt row is the one the constructor wrote, byte for byte; a restart with no row
to rebuild, or of a federation whose server replays nothing, is built as before.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _record_replays import (
    RecordBranches,
    crash_mid_round_2,
    opened_state,
    run_first_round,
    served,
    start_branches,
    wrap_replays,
)
from _threads import BOUND

from secagg.dp.release import RecordReport
from secagg.ledger import Ledger, LedgerError, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

BRANCHES = RecordBranches.numbered(3)
NAMES = list(BRANCHES.names)


def _crash_mid_round_2(folder: Path, key: LedgerKey) -> None:
    """Round 1 complete (its row in the ledger, each branch's report in it), then round 2
    under way in the state when the server died: no row of it."""
    crash_mid_round_2(folder, key, BRANCHES.config(1), BRANCHES.report)


def _restart(
    folder: Path, key: LedgerKey, then: Callable[[FederationServer], object] = lambda s: None
) -> None:
    """A server built on ``folder``'s state and ledger, ``then(server)``, both closed."""
    with opened_state(folder, key) as (ledger, store):
        then(FederationServer(BRANCHES.config(3), InProcessHub(), store, ledger=ledger))


def _ledger_rows(folder: Path) -> list[tuple[Any, ...]]:
    """The ledger file's rows and signed head, as stored (bytes, hashes, signatures)."""
    with sqlite3.connect(folder / "ledger.sqlite") as db:
        rows = db.execute("SELECT * FROM ledger ORDER BY seq").fetchall()
        head = db.execute("SELECT * FROM ledger_head").fetchall()
    return [*rows, *head]


def test_a_restart_after_a_crash_mid_round_builds_before_the_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = LedgerKey.generate()
    _crash_mid_round_2(tmp_path, key)

    built = threading.Event()
    gave_up = threading.Event()  # a replay's wait for the build ran out: it waited for us
    builder = threading.get_ident()
    during_build: list[bool] = []

    def replay_after_the_build(
        report: RecordReport, real: Callable[[RecordReport], float]
    ) -> float:
        # held until the build returns: at once when it does not wait for the replays;
        # a build that waits for them runs one bounded wait out, then the rest go ahead
        if threading.get_ident() != builder and not gave_up.is_set():
            if not built.wait(BOUND):
                gave_up.set()
        during_build.append(not built.is_set())
        return real(report)

    wrap_replays(monkeypatch, replay_after_the_build)
    with opened_state(tmp_path, key) as (ledger, store):
        try:
            server = FederationServer(BRANCHES.config(3), InProcessHub(), store, ledger=ledger)
            built.set()
            assert not any(during_build), (
                f"{sum(during_build)} restored reports replayed while the server was built"
            )
            assert len(ledger.entries()) == 1, "round 2's row was rebuilt before the bind"
            # the first round run once the port is bound rebuilds round 2's row first
            assert server.run_round().status == "aborted"  # nobody is connected
        finally:
            built.set()
    assert len(during_build) == len(NAMES), "a restored report was replayed twice"
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    rows = [row.entry for row in audit.chain.rows]
    assert [(e["round"], e["status"], e.get("reconstructed")) for e in rows] == [
        (1, "complete", None),
        (2, "aborted", True),
        (3, "aborted", None),
    ]
    rebuilt = rows[1]
    assert "the server stopped during the round" in rebuilt["reconstruction"]["cause"]
    assert rebuilt["privacy"]["epsilon"] == BRANCHES.worst_replay()
    assert rebuilt["dp"]["client_reports"] == {}  # an aborted round holds none


def test_the_rebuilt_row_is_byte_for_byte_the_one_the_build_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same crashed state restarted twice: once with the row rebuilt in the
    constructor (as before the fix), once after the bind; the ledgers are the same
    bytes, hashes and signatures."""
    key = LedgerKey.generate()
    crashed = tmp_path / "crashed"
    _crash_mid_round_2(crashed, key)
    store = ServerStore(crashed / "state.sqlite")
    store.recover()  # the abort's time recorded once: both copies hold the same state
    store.close()
    built, bound = tmp_path / "built", tmp_path / "bound"
    shutil.copytree(crashed, built)
    shutil.copytree(crashed, bound)
    with monkeypatch.context() as patched:
        patched.setattr(FederationServer, "_rebuild_reads_replays", lambda *_: False)
        _restart(built, key)
    assert len(_ledger_rows(built)) == 3  # two rows and the head: rebuilt in the build
    _restart(bound, key, then=lambda server: server.backfill_ledger())
    assert _ledger_rows(bound) == _ledger_rows(built)
    audit = verify_ledger(bound / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    assert audit.chain.rows[-1].entry["privacy"]["epsilon"] == BRANCHES.worst_replay()


def test_a_restart_with_nothing_to_rebuild_is_built_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No crash mid-round: nothing is left for after the bind, and the restored reports'
    replays are still waited for only by the first figure that needs them."""
    key = LedgerKey.generate()
    tmp_path.mkdir(exist_ok=True)
    results = run_first_round(tmp_path, key, BRANCHES.config(1), BRANCHES.report, idle=BOUND)
    assert [r.status for r in results] == ["complete"]
    before = _ledger_rows(tmp_path)
    release = threading.Event()
    builder = threading.get_ident()

    def held(report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        if threading.get_ident() != builder:
            release.wait(BOUND)
        return real(report)

    wrap_replays(monkeypatch, held)

    def nothing_rebuilt(server: FederationServer) -> None:
        try:
            server.backfill_ledger()  # nothing to rebuild: waits for no replay
            assert server.mechanism.replay_backlog() == len(NAMES)
        finally:
            release.set()
        assert server.mechanism.ledger_claim(None) == BRANCHES.worst_replay()

    _restart(tmp_path, key, then=nothing_rebuilt)
    assert _ledger_rows(tmp_path) == before


def test_a_server_that_replays_nothing_still_rebuilds_as_it_is_built(tmp_path: Path) -> None:
    """Client-level (or no) DP: a rebuilt row reads no replay, so the constructor
    rebuilds it as before, and a broken chain is refused there, before any bind."""
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "plain", "clients": NAMES, "dimension": 4, "rounds": 2},
            "backend": {"name": "secagg+", "value_bound": 1.0},
        }
    )
    key = LedgerKey.generate()
    store = ServerStore(tmp_path / "state.sqlite")
    store.begin_round(1, NAMES)  # the crash: round 1 under way
    store.close()
    with opened_state(tmp_path, key) as (ledger, store):
        FederationServer(config, InProcessHub(), store, ledger=ledger)
        assert [(e["round"], e.get("reconstructed")) for e in ledger.entries()] == [(1, True)]


def _break_the_chain(folder: Path) -> None:
    """Round 1's row rewritten under its signature (its hash no longer matches)."""
    with sqlite3.connect(folder / "ledger.sqlite") as db:
        db.execute("UPDATE ledger SET entry = replace(entry, '\"records\"', '\"recordz\"')")


def test_a_broken_chain_is_still_refused_to_the_session_that_owns_the_server(
    tmp_path: Path,
) -> None:
    key = LedgerKey.generate()
    _crash_mid_round_2(tmp_path, key)
    _break_the_chain(tmp_path)
    before = _ledger_rows(tmp_path)
    with opened_state(tmp_path, key) as (ledger, store):
        server = FederationServer(BRANCHES.config(3), InProcessHub(), store, ledger=ledger)
        with pytest.raises(LedgerError, match="fails its chain check"):
            server.run(wait_for_clients=0.0)
        assert server.stop_reason is not None
        assert "could not rebuild its ledger's missing rows" in server.stop_reason
        for again in (server.run_round, lambda: server.run(wait_for_clients=0.0)):
            with pytest.raises(ServerStopped, match=r"could not rebuild .*LedgerError"):
                again()
    assert _ledger_rows(tmp_path) == before, "a row was appended to a damaged chain"


def test_a_failed_append_of_the_rebuilt_row_is_raised_and_a_restart_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = LedgerKey.generate()
    _crash_mid_round_2(tmp_path, key)
    append = Ledger.append

    def full_disk(ledger: Ledger, entry: dict[str, object]) -> int:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(Ledger, "append", full_disk)
        with opened_state(tmp_path, key) as (ledger, store):
            server = FederationServer(BRANCHES.config(3), InProcessHub(), store, ledger=ledger)
            with pytest.raises(OSError, match="No space left"):
                server.run_round()
            with pytest.raises(ServerStopped, match="OSError"):
                server.run_round()
    assert Ledger.append is append
    _restart(tmp_path, key, then=lambda server: server.backfill_ledger())
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    assert [(row.entry["round"], row.entry.get("reconstructed")) for row in audit.chain.rows] == [
        (1, None),
        (2, True),
    ]


def test_serve_rebuilds_the_row_of_a_finished_federation_it_does_not_bind_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` on a record-level federation whose last round's row was lost (its
    append failed after the state completed it): every round is complete, so nothing is
    bound and no round runs, and the row is rebuilt there, with the round's reports."""
    from secagg.runtime import launch

    config = BRANCHES.served_config(tmp_path, 1)
    state = launch.open_server_state(config, init=True)
    with monkeypatch.context() as patched:

        def full_disk(ledger: Ledger, entry: dict[str, object]) -> int:
            raise OSError(28, "No space left on device")

        patched.setattr(Ledger, "append", full_disk)
        hub = InProcessHub()
        start_branches(hub, NAMES, BRANCHES.report, idle=BOUND)
        try:
            server = FederationServer(config, hub, state.store, ledger=state.ledger)
            with pytest.raises(OSError, match="No space left"):
                server.run(wait_for_clients=BOUND)
        finally:
            state.close()
    _, results, finished = served(config)
    assert results == [] and finished
    public = LedgerKey.load(Path(config.server.state + ".ledger-key")).public_key
    audit = verify_ledger(Path(config.server.state + ".ledger"), public)
    assert audit.ok, audit.first_failure
    (row,) = [row.entry for row in audit.chain.rows]
    assert (row["round"], row["status"], row["reconstructed"]) == (1, "complete", True)
    assert len(row["dp"]["client_reports"]) == len(NAMES)  # by identity hash
    assert row["privacy"]["epsilon"] == BRANCHES.worst_replay()
