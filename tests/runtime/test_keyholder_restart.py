"""A key holder restarted mid-round, and a key-holder link that fails on send.

Between a round's key request and its decryption request the branches train and encrypt;
a key holder *process* restarted in that window (a crash, a deploy) forgot the round it had
opened, so it refused the decryption and the round aborted, every branch's work lost. The
opened round is now part of its durable state, written before the key leaves, so the
restarted process decrypts that round (once: the decryption record is what refuses a
second time). And a send to the key holder that fails aborts the round at once with that
reason, where it waited out the phase's deadline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import key_holder_service, make_key_holder_key
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.base import NotConnected, TransportError
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 40
#: the phase deadline a round would wait out: generous, so that an end well under it can
#: only be the fix's
PHASE_SECONDS = 60.0
#: how long the restarted key holder takes to answer: above the server's 0.5 s receive
#: tick, so a server that took it for gone (its session changed since the round start)
#: closes the decryption phase before the answer comes
SLOW_DECRYPTION = 2.0


def _config(rounds: int = 1) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": rounds},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "deadlines": {"phase_seconds": PHASE_SECONDS, "training_seconds": PHASE_SECONDS},
        }
    )


def _serve(holder: KeyHolderService) -> threading.Thread:
    """Run ``holder`` in a thread until its session ends (a killed process's does)."""

    def run() -> None:
        try:
            holder.run(idle_timeout=120)
        except NotConnected:
            pass  # the process was "killed": its session ended

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_key_holder_restarted_between_key_request_and_decryption_still_decrypts_once(
    tmp_path: Path,
) -> None:
    """The first branch to train kills the key holder (its session ends) and starts a new
    one from the same key and state files, before any branch uploads; the round then
    completes, decrypted by the new process (which takes 2 s), and its record holds round
    1 once.

    Before: the new process had forgotten round 1 and refused its decryption ("a
    decryption for round 1, which no key request opened"), so the round aborted; and the
    server took the key holder for gone (its session had changed since the round start)
    and closed the decryption phase 0.5 s after sending it ("did not decrypt in time")."""
    config = _config()
    hub = InProcessHub()
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    settings = {"key": str(key)}
    first = key_holder_service(config, hub.connect("compliance"), dict(settings))
    first_thread = _serve(first)
    lock, restarted = threading.Lock(), threading.Event()
    holders: list[KeyHolderService] = []

    def restart_once() -> None:
        with lock:
            if restarted.is_set():
                return
            hub.disconnect("compliance")  # the process dies: its session ends
            first_thread.join(timeout=60)
            assert not first_thread.is_alive()
            second = key_holder_service(config, hub.connect("compliance"), dict(settings))
            handle = second.session.handle

            def slow(payload: bytes, *, round_number: int) -> bytes:
                time.sleep(SLOW_DECRYPTION)  # a large sum's decryption takes its time
                return handle(payload, round_number=round_number)

            second.session.handle = slow  # type: ignore[method-assign]
            holders.append(second)
            _serve(second)
            restarted.set()

    policy = BranchPolicy(key_holder_fingerprint=pin)
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.1 * (i + 1))

        def hook(model: np.ndarray, target: np.ndarray = target) -> np.ndarray:
            restart_once()  # while training: after the key request, before any upload
            return target - model

        client = FederationClient(name, hook, hub.connect(name), policy=policy)
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": 1}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    (result,) = server.run(wait_for_clients=60, max_attempts=1)
    elapsed = time.monotonic() - began
    assert restarted.is_set() and first.decryptions == 0
    assert result.status == "complete", result.reason
    assert elapsed < PHASE_SECONDS / 2, f"the round took {elapsed:.1f} s"
    (second,) = holders
    assert second.decryptions == 1 and second.session.record.rounds == [1]
    # the mean of the three targets, within CKKS's error and the key holder's floor noise
    assert np.max(np.abs(server.model - 0.2)) < 1e-5


class _FailingLink(InProcessHub):
    """An in-process hub whose sends to ``name`` fail while it stays connected: a link
    that breaks on send (a stream the transport has not yet seen end)."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__()
        self.failing, self.error = name, error
        self.failed = 0

    def send(self, name: str, payload: bytes) -> None:
        if name == self.failing:
            self.failed += 1
            raise self.error
        super().send(name, payload)


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("stream reset"), TransportError("message above the size limit")],
    ids=["connection", "transport"],
)
def test_a_failed_send_to_the_key_holder_aborts_the_round_at_once(
    tmp_path: Path, error: Exception
) -> None:
    """The key request cannot be sent: the round aborts at once, its reason naming the key
    holder and the failure. Before, the failure was logged (at DEBUG for a connection
    error) and the round waited out its phase deadline for an answer to a request the key
    holder never got ("the key holder did not publish a key in time", 60 s)."""
    config = _config()
    hub = _FailingLink("compliance", error)
    hub.connect("compliance")  # connected, but every send to it fails
    for name in NAMES:
        hub.connect(name)  # connected, never asked anything: the round ends at its key
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    (result,) = server.run(wait_for_clients=30, max_attempts=1)
    elapsed = time.monotonic() - began
    assert result.status == "aborted"
    assert hub.failed >= 1
    assert "could not send to the key holder compliance in phase key" in str(result.reason)
    assert str(error) in str(result.reason)
    assert elapsed < PHASE_SECONDS / 4, f"the round took {elapsed:.1f} s to abort"


class _Restarts:
    """Key holder processes that "crash" on a decryption request after it arrived: the
    process's session ends (the request is lost with it) and, ``delay`` seconds later (a
    restart takes its time), a new process starts from the same key and state files.

    The first ``crashes`` decryption requests crash their process; the processes after
    that answer. ``duplicate`` makes every answering process send each reply twice (a
    late duplicate of an answer the round has already taken)."""

    def __init__(
        self,
        hub: InProcessHub,
        config: FederationConfig,
        settings: dict[str, str],
        pin: bytes,
        *,
        crashes: int,
        delay: float = 0.0,
        duplicate: bool = False,
    ) -> None:
        self.hub, self.config, self.settings, self.pin = hub, config, settings, pin
        self.crashes, self.delay, self.duplicate = crashes, delay, duplicate
        self.holders: list[KeyHolderService] = []
        self.crashed = 0
        self._lock = threading.Lock()

    def start(self) -> KeyHolderService:
        """One key holder process: its session, its service, its thread."""
        endpoint = self.hub.connect("compliance")
        if self.duplicate:
            send = endpoint.send

            def twice(payload: bytes) -> None:
                send(payload)
                send(payload)

            endpoint.send = twice  # type: ignore[method-assign]
        holder = key_holder_service(self.config, endpoint, dict(self.settings))
        handle = holder.session.handle

        def crashing(payload: bytes, *, round_number: int) -> bytes:
            if payload[5] == 3:  # a decryption request (kind 3 of the key-holder messages)
                with self._lock:
                    crash = self.crashed < self.crashes
                    self.crashed += crash
                if crash:
                    self.hub.disconnect("compliance")  # the process dies, the request with it
                    threading.Thread(target=self._restart, daemon=True).start()
                    raise NotConnected("killed")
            return handle(payload, round_number=round_number)

        holder.session.handle = crashing  # type: ignore[method-assign]
        self.holders.append(holder)
        _serve(holder)
        return holder

    def _restart(self) -> None:
        if self.delay:
            time.sleep(self.delay)  # the new process takes this long to come up
        self.start()


def _run_federation(
    tmp_path: Path, hub: InProcessHub, config: FederationConfig, restarts: _Restarts
) -> tuple[FederationServer, list[Any], float]:
    """Three branches (pinned to the key holder's key), the server, the key holders of
    ``restarts``; returns the server, its results and the run's seconds."""
    policy = BranchPolicy(key_holder_fingerprint=restarts.pin)
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.1 * (i + 1))

        def hook(model: np.ndarray, target: np.ndarray = target) -> np.ndarray:
            return target - model

        client = FederationClient(name, hook, hub.connect(name), policy=policy)
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": config.rounds}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    results = server.run(wait_for_clients=60, max_attempts=config.rounds)
    return server, results, time.monotonic() - began


def _restarts(tmp_path: Path, hub: InProcessHub, config: FederationConfig, **kw: Any) -> _Restarts:
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    restarts = _Restarts(hub, config, {"key": str(key)}, pin, **kw)  # state: <key>.state
    restarts.start()
    return restarts


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["back-at-once", "back-after-1.5s"])
def test_a_key_holder_restarted_after_the_decryption_request_left_gets_it_again(
    tmp_path: Path, delay: float
) -> None:
    """The key holder's process dies with the decryption request in hand and a new one
    comes up (at once, or 1.5 s later: three of the server's 0.5 s ticks): the server
    sends the request again to the new session, which decrypts the round, once.

    Before: the server took the key holder for gone (its session had ended since the
    request left) and aborted the round 0.5 s later, "the key holder did not decrypt in
    time", every branch's upload lost."""
    config, hub = _config(), InProcessHub()
    restarts = _restarts(tmp_path, hub, config, crashes=1, delay=delay)
    server, (result,), elapsed = _run_federation(tmp_path, hub, config, restarts)
    assert result.status == "complete", result.reason
    assert restarts.crashed == 1 and len(restarts.holders) == 2
    first, second = restarts.holders
    assert first.decryptions == 0
    assert second.decryptions == 1 and second.session.record.rounds == [1]
    assert elapsed < PHASE_SECONDS / 2, f"the round took {elapsed:.1f} s"
    assert np.max(np.abs(server.model - 0.2)) < 1e-5


def test_a_key_holder_restarting_again_after_the_resend_aborts_the_round_at_once(
    tmp_path: Path,
) -> None:
    """A key holder that dies again on the resent request is not chased: one resend a
    round, then the round aborts promptly with a reason naming the key holder and the
    resend, and nothing was decrypted. Before: the first restart aborted the round
    ("did not decrypt in time"); the resend must not turn a key holder that keeps
    restarting into a loop."""
    config, hub = _config(), InProcessHub()
    restarts = _restarts(tmp_path, hub, config, crashes=5)
    _, (result,), elapsed = _run_federation(tmp_path, hub, config, restarts)
    assert result.status == "aborted"
    assert str(result.reason).endswith(
        "the key holder compliance left again (a restart or a lost connection) in phase "
        "decrypt after its request was resent (one resend a round)"
    )
    assert restarts.crashed == 2  # the request, then its one resend: no third send
    assert all(holder.decryptions == 0 for holder in restarts.holders)
    assert elapsed < PHASE_SECONDS / 4, f"the round took {elapsed:.1f} s to abort"
    # no decryption was recorded (the record is made, empty, when round 1 is opened)
    record = json.loads((tmp_path / "compliance.key.state").read_text())
    assert (record["decryptions"], record["rounds"]) == (0, [])


def test_a_duplicate_answer_after_a_resend_is_not_taken_twice(tmp_path: Path) -> None:
    """The restarted key holder answers the resent request twice (a duplicate that
    arrives after the round took the first): round 1 takes one answer, the duplicate is
    refused when round 2 reads it (a payload of another round), and round 2 is
    decrypted by its own request; the key holder's record holds each round once."""
    config, hub = _config(rounds=2), InProcessHub()
    restarts = _restarts(tmp_path, hub, config, crashes=1, duplicate=True)
    server, results, _ = _run_federation(tmp_path, hub, config, restarts)
    assert [r.status for r in results] == ["complete", "complete"], [r.reason for r in results]
    second = restarts.holders[1]
    assert second.decryptions == 2 and second.session.record.rounds == [2]  # the last round served
    assert server.refused_messages >= 1  # the duplicate of round 1's answer
    assert np.max(np.abs(server.model - 0.2)) < 1e-5


class _WatchedHub(InProcessHub):
    """An in-process hub that says when a send to ``name`` found it not connected."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.watched = name
        self.missed = threading.Event()

    def send(self, name: str, payload: bytes) -> None:
        try:
            super().send(name, payload)
        except NotConnected:
            if name == self.watched:
                self.missed.set()
            raise


def test_a_key_holder_not_back_when_the_decryption_request_leaves_gets_it_when_it_is(
    tmp_path: Path,
) -> None:
    """The key holder's process dies while the branches train and its new process comes
    up only after the server tried to send the decryption request (which found it not
    connected): the request is sent when it is back, and the round completes.

    Before: the failed send aborted the round at once ("could not send to the key holder
    compliance in phase decrypt: NotConnected ..."), every branch's upload lost."""
    config, hub = _config(), _WatchedHub("compliance")
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    restarts = _Restarts(hub, config, {"key": str(key)}, pin, crashes=0)
    restarts.start()
    lock, died = threading.Lock(), threading.Event()

    def back_after_the_request() -> None:
        assert hub.missed.wait(timeout=60), "the server never tried to send to it"
        restarts.start()

    def die_once() -> None:
        with lock:
            if died.is_set():
                return
            hub.disconnect("compliance")  # the process dies while the branches train
            died.set()
            threading.Thread(target=back_after_the_request, daemon=True).start()

    for i, name in enumerate(NAMES):
        target = np.full(D, 0.1 * (i + 1))

        def hook(model: np.ndarray, target: np.ndarray = target) -> np.ndarray:
            die_once()
            return target - model

        client = FederationClient(
            name, hook, hub.connect(name), policy=BranchPolicy(key_holder_fingerprint=pin)
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": 1}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    began = time.monotonic()
    (result,) = server.run(wait_for_clients=60, max_attempts=1)
    elapsed = time.monotonic() - began
    assert hub.missed.is_set() and died.is_set()
    assert result.status == "complete", result.reason
    assert elapsed < PHASE_SECONDS / 2, f"the round took {elapsed:.1f} s"
    first, second = restarts.holders
    assert first.decryptions == 0 and second.decryptions == 1
    assert second.session.record.rounds == [1]
    assert np.max(np.abs(server.model - 0.2)) < 1e-5


def test_a_session_lost_under_the_decryption_reply_gets_the_same_reply_to_the_resend(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The key holder decrypts round 1, and its session breaks as the reply leaves (the
    reply never reaches the server); the same process redials, the server sends the
    decryption request again to its new session (the one resend of the round), and the
    key holder answers it with the very reply it made: the round completes, decrypted
    once (the record and the lifetime count say 1), and the log says a reply was repeated.

    Before: the key holder's record refused the resend as a round already served, so the
    round aborted, every branch's upload lost, with one decryption of the lifetime cap
    spent on nothing."""
    config, hub = _config(), InProcessHub()
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)
    holder = key_holder_service(config, None, {"key": str(key)})  # type: ignore[arg-type]
    broken: list[int] = []

    def dial(timeout: float) -> Any:
        endpoint = hub.connect("compliance")
        if broken:
            return endpoint  # the redialled session carries what it is given
        send = endpoint.send

        def breaking(payload: bytes) -> None:
            if holder.decryptions == 1 and not broken:  # the reply carrying the sum
                broken.append(len(payload))
                hub.disconnect("compliance")  # the link breaks: the reply is lost with it
                raise NotConnected("the session broke under the reply")
            send(payload)

        endpoint.send = breaking  # type: ignore[method-assign]
        return endpoint

    serving = threading.Thread(
        target=holder.serve,
        args=(dial,),
        kwargs={"idle_timeout": 120, "give_up_after": 60},
        daemon=True,
    )
    serving.start()
    policy = BranchPolicy(key_holder_fingerprint=pin)
    for i, name in enumerate(NAMES):
        target = np.full(D, 0.1 * (i + 1))

        def hook(model: np.ndarray, target: np.ndarray = target) -> np.ndarray:
            return target - model

        client = FederationClient(name, hook, hub.connect(name), policy=policy)
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 60, "rounds": 1}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    with caplog.at_level(logging.INFO, logger="secagg.keyholder"):
        (result,) = server.run(wait_for_clients=60, max_attempts=1)
        serving.join(timeout=60)
    assert broken, "the decryption's reply was never sent"
    assert result.status == "complete", result.reason
    assert holder.decryptions == 1 and holder.session.record.rounds == [1]
    assert json.loads((tmp_path / "compliance.key.state").read_text())["decryptions"] == 1
    assert np.max(np.abs(server.model - 0.2)) < 1e-5
    assert any(
        "sent the same reply again, no new decryption (lifetime count 1)" in r.getMessage()
        for r in caplog.records
    )
