"""Shared set-up for the record-level (DP-SGD) replay tests: a branch's report, the
record-level federation's config, its branches' threads, a first round on a ledger,
and the injected accountant (:func:`secagg.dp.release._replayed_epsilon`) wrapped to
cost time or to record where and when each replay ran.

Why here: the record-level replay tests of 2026-12-07 (tests/runtime/test_record_*.py,
tests/dp/test_release_record_*.py) each built these the same way, so a change to the
report's fields or the config's sections had to be made in every copy alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _threads import BOUND, free_port

import secagg.dp.release as release_module
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordReport
from secagg.ledger import Ledger, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

#: the record-level delta every one of these tests uses
DELTA = 1e-5

History = list[tuple[float, float, int]]


def dpsgd_report(
    history: History,
    *,
    epsilon: float | None = None,
    accountant: str = "rdp",
    delta: float = DELTA,
) -> dict[str, Any]:
    """A branch's DP-SGD report as it sends it: ``epsilon`` states the figure (the
    history's own RDP replay when None: an honest branch's)."""
    if epsilon is None:
        epsilon = RecordLevelAccountant(accountant, delta, history).epsilon()
    return {
        "unit": "customer",
        "mechanism": "dpsgd",
        "accountant": accountant,
        "delta": delta,
        "history": [list(run) for run in history],
        "epsilon": epsilon,
        "max_grad_norm": 1.0,
    }


def record_report(steps: int) -> RecordReport:
    """An honest report of one run of ``steps`` steps (z 1.0, q 0.01), parsed."""
    return RecordReport.from_dict(dpsgd_report([(1.0, 0.01, steps)]))


def record_config(
    clients: Sequence[str],
    *,
    name: str,
    rounds: int,
    dimension: int = 4,
    phase_seconds: float = 30.0,
    round_seconds: float | None = None,
    delta: float = DELTA,
    server: dict[str, Any] | None = None,
) -> FederationConfig:
    """A SecAgg+ federation of ``clients`` under record-level DP-SGD, every client
    sampled each round; ``server`` its ``[server]`` section (one that ``serve`` runs)."""
    deadlines: dict[str, float] = {"phase_seconds": phase_seconds}
    if round_seconds is not None:
        deadlines["round_seconds"] = round_seconds
    sections: dict[str, Any] = {
        "federation": {
            "name": name,
            "clients": list(clients),
            "dimension": dimension,
            "rounds": rounds,
        },
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 1.0},
        "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": delta},
        "deadlines": deadlines,
    }
    if server is not None:
        sections["server"] = server
    return FederationConfig.from_dict(sections)


@dataclass(frozen=True)
class RecordBranches:
    """The branches of a record-level replay test, each reporting one DP-SGD run (z 1.0,
    q 0.01) of 100 steps times its place (b0 100, b1 200, ...): every branch's figure
    differs, so the worst is one branch's and a claim that left a report out shows.

    Why one object: these tests each defined the same ``NAMES``, ``_history``,
    ``_report``, ``_config`` and ``_worst_replay``, differing only in the names."""

    names: tuple[str, ...]

    @classmethod
    def numbered(cls, count: int) -> RecordBranches:
        """``count`` branches named b0, b1, ..."""
        return cls(tuple(f"b{i}" for i in range(count)))

    def history(self, name: str) -> History:
        """Branch ``name``'s DP-SGD history: one run of 100 steps times its place."""
        return [(1.0, 0.01, 100 * (self.names.index(name) + 1))]

    def report(self, name: str) -> dict[str, Any]:
        """Branch ``name``'s honest report (its figure its history's RDP replay)."""
        return dpsgd_report(self.history(name))

    def config(self, rounds: int, *, server: dict[str, Any] | None = None) -> FederationConfig:
        """The federation "records" of these branches (:func:`record_config`)."""
        return record_config(self.names, name="records", rounds=rounds, server=server)

    def served_config(self, folder: Path, rounds: int, **server: Any) -> FederationConfig:
        """:meth:`config` as ``serve`` runs it: a dev CA in ``folder``/certs (made on
        the first call, a certificate per branch), a free loopback port and the state
        ``folder``/fed.sqlite; ``server`` adds to the ``[server]`` section."""
        from secagg.apps import devca  # the CA's tooling, only for the tests that serve

        ca = folder / "certs"
        if not ca.exists():
            devca.init_ca(ca)
            for name in self.names:
                devca.issue_client(ca, name)
        return self.config(
            rounds,
            server={
                "bind": f"127.0.0.1:{free_port()}",
                "certificates": str(ca),
                "state": str(folder / "fed.sqlite"),
                **server,
            },
        )

    def worst_replay(self) -> float:
        """The worst branch's figure, replayed as the server replays it (RDP)."""
        return max(
            RecordLevelAccountant("rdp", DELTA, self.history(name)).epsilon() for name in self.names
        )


@contextmanager
def opened_state(folder: Path, key: LedgerKey) -> Iterator[tuple[Ledger, ServerStore]]:
    """The ledger and state a restart opens in ``folder`` (ledger.sqlite under ``key``,
    state.sqlite), closed in that order when the block ends, however it ends: a test
    builds its server on them, and a failed build leaves no file open."""
    ledger = Ledger(folder / "ledger.sqlite", key)
    store = ServerStore(folder / "state.sqlite")
    try:
        yield ledger, store
    finally:
        ledger.close()
        store.close()


def served(config: FederationConfig, **options: Any) -> tuple[FederationServer, list[Any], bool]:
    """``serve(config, **options)``'s server and results, and whether it finished; its
    store and ledger closed (``serve`` leaves them to its caller, and a test's open
    files would outlive it)."""
    from secagg.runtime import launch  # the runtime's entry point, for the tests that serve

    server, results = launch.serve(config, **options)
    try:
        return server, results, server.finished
    finally:
        assert server.ledger is not None
        server.ledger.close()
        server.store.close()


def start_branches(
    hub: InProcessHub,
    names: Sequence[str],
    privacy_report: Callable[[str], dict[str, Any]],
    *,
    idle: float | Callable[[str], float],
    rounds: int | None = 1,
) -> tuple[list[FederationClient], list[threading.Thread]]:
    """Each of ``names`` a branch (a constant 0.1 update) in a daemon thread, started in
    order, that reports ``privacy_report(name)`` each round; ``idle`` its idle timer
    (or each branch's, by name); ``rounds`` None: until the federation ends. The
    branches and their threads."""
    clients, threads = [], []
    for name in names:
        client = FederationClient(
            name,
            lambda model: np.full_like(model, 0.1),
            hub.connect(name),
            privacy_report=lambda name=name: privacy_report(name),
        )
        timer = idle(name) if callable(idle) else idle
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": timer, "rounds": rounds}, daemon=True
        )
        thread.start()
        clients.append(client)
        threads.append(thread)
    return clients, threads


def run_first_round(
    tmp_path: Path,
    key: LedgerKey,
    config: FederationConfig,
    privacy_report: Callable[[str], dict[str, Any]],
    *,
    idle: float,
) -> list[RoundResult]:
    """A one-round federation of ``config``'s clients run to its end on the state and
    ledger in ``tmp_path`` (what a later restart reads back); its results."""
    hub = InProcessHub()
    start_branches(hub, config.clients, privacy_report, idle=idle)
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    store = ServerStore(tmp_path / "state.sqlite")
    try:
        return FederationServer(config, hub, store, ledger=ledger).run(wait_for_clients=idle)
    finally:
        ledger.close()
        store.close()


def crash_mid_round_2(
    folder: Path,
    key: LedgerKey,
    config: FederationConfig,
    privacy_report: Callable[[str], dict[str, Any]],
) -> None:
    """Round 1 of ``config`` (one round) complete in ``folder`` (its row in the ledger,
    each branch's report in it), then round 2 under way in the state when the server
    died: no row of it, which a restart aborts and rebuilds (after the bind, at record
    level: ``FederationServer.backfill_ledger``)."""
    folder.mkdir(parents=True, exist_ok=True)
    results = run_first_round(folder, key, config, privacy_report, idle=BOUND)
    assert [r.status for r in results] == ["complete"], [r.reason for r in results]
    store = ServerStore(folder / "state.sqlite")
    store.begin_round(2, config.clients)  # the crash: round 2 under way, never finished
    store.close()


def wrap_replays(
    monkeypatch: pytest.MonkeyPatch,
    around: Callable[[RecordReport, Callable[[RecordReport], float]], float],
) -> None:
    """Every replay goes through ``around(report, real)``, ``real`` the accountant's."""
    real = release_module._replayed_epsilon

    def replay(report: RecordReport) -> float:
        return around(report, real)

    monkeypatch.setattr(release_module, "_replayed_epsilon", replay)


@dataclass(frozen=True)
class Replay:
    """One replay: when it began and ended, its thread, and whether ``mark`` was set
    when it began."""

    began: float
    ended: float
    thread: int
    marked: bool


@dataclass
class SlowReplays:
    """The accountant made ``cost`` seconds slower (a sleep before the real, cheap RDP
    replay, as Opacus's PRV takes its time); each replay recorded as it begins
    (``starts``: whether ``mark`` was set, its thread) and once it ends (``calls``)."""

    cost: float
    mark: threading.Event = field(default_factory=threading.Event)
    starts: list[tuple[bool, int]] = field(default_factory=list)
    calls: list[Replay] = field(default_factory=list)
    #: set as the first replay begins (a test's :class:`Phases` may wait on it)
    began: threading.Event = field(default_factory=threading.Event)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> SlowReplays:
        """Patch the accountant; this log, for chaining."""
        wrap_replays(monkeypatch, self._replay)
        return self

    def _replay(self, report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        began, marked = time.monotonic(), self.mark.is_set()
        self.starts.append((marked, threading.get_ident()))
        self.began.set()
        time.sleep(self.cost)
        figure = real(report)
        self.calls.append(Replay(began, time.monotonic(), threading.get_ident(), marked))
        return figure


@dataclass
class Phases:
    """The server's rounds' phases (``FederationServer._drive``): ``during`` is set
    while one runs, and ``spans`` holds each round's start and end."""

    during: threading.Event = field(default_factory=threading.Event)
    spans: dict[int, tuple[float, float]] = field(default_factory=dict)
    #: if given, a round's phases that went well end only once it is set (or after
    #: ``BOUND``): so "a replay began during the phases" is decided by the code, not by
    #: whether a busy machine let the background thread start before the round's end
    hold: threading.Event | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Phases:
        """Patch the server's ``_drive``; this watch, for chaining."""
        drive = FederationServer._drive
        watch = self

        def timed_drive(server: FederationServer, number: int, *args: Any) -> Any:
            began = time.monotonic()
            watch.during.set()
            try:
                driven = drive(server, number, *args)
                if watch.hold is not None:
                    watch.hold.wait(BOUND)
                return driven
            finally:
                watch.during.clear()
                watch.spans[number] = (began, time.monotonic())

        monkeypatch.setattr(FederationServer, "_drive", timed_drive)
        return self


class GatedReplays:
    """Every replay recorded by its thread as it begins (``threads``); the first waits
    for ``gate`` (``first`` set as it begins), so that a test stops the replays while
    one is under way and the others are queued (tests/runtime/test_record_replays_stop.py,
    tests/dp/test_release_record_replays_stop.py)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[int] = []
        self.first = threading.Event()
        self.gate = threading.Event()
        wrap_replays(monkeypatch, self._replay)

    def _replay(self, report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        self.threads.append(threading.get_ident())
        if len(self.threads) == 1:
            self.first.set()
            self.gate.wait(BOUND)
        return real(report)

    def background_ended(self) -> bool:
        """Wait (bounded) for the thread of the first replay to end; whether it did."""
        ident = self.threads[0]
        for thread in threading.enumerate():
            if thread.ident == ident:
                thread.join(BOUND)
                return not thread.is_alive()
        return True
