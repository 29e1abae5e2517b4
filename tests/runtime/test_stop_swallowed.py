"""A Ctrl-C or SIGTERM whose ``KeyboardInterrupt`` a library swallowed still stops the
party: the server, the branch and the key holder look at the process's stop record
(:mod:`secagg.transport.waiting`) at every turn of their long-running loops.

Left open by the stop handling of 2026-12-07: the CLI's handlers raise the stop in the
main thread wherever it is, and when that is inside C code's caller (grpcio's core,
sqlite3, torch) or a library's own ``except BaseException`` that drops it, nothing is
left of it, not even in an exception's chain. The party served on (a branch even sent
the update its stop line says never leaves) or waited out its timers, and a service
manager's SIGTERM waited for its SIGKILL.

Each test forces the swallow in-process: a "C call" that records the stop as the CLI's
handler does (:func:`~secagg.transport.waiting.ask_stop`), takes the
``KeyboardInterrupt`` and returns as if nothing came.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.runtime import redial
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, RoundStart, encode_message
from secagg.transport.base import NotConnected
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop, stop_asked

D = 8
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(autouse=True)
def _no_stop_left() -> Iterator[None]:
    """Every test starts without a stop recorded and leaves none (the record is the
    process's: one left would stop the next test's parties in this worker)."""
    assert forget_stop() is None, "a stop was left recorded before this test"
    yield
    forget_stop()


def _swallowed_in_c(signum: int) -> None:
    """A library's call during which ``signum`` came: the CLI's handler recorded the
    stop and raised it, and the library's catch-all took it and returned."""
    try:
        ask_stop(signum)  # what the CLI's handler does before it raises
        raise KeyboardInterrupt
    except BaseException:  # the library's, which this test stands for
        return


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_the_training_hook_swallowed_sends_nothing_and_stops_the_branch(
    signum: int,
) -> None:
    def hook(model: np.ndarray) -> np.ndarray:
        _swallowed_in_c(signum)  # torch's, say, under the operator's hook
        return model + 0.1

    outbox = SentMessages()
    client = FederationClient("branch-00", hook, outbox)
    start = RoundStart(1, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
    with pytest.raises(StopAsked) as raised:
        client.handle(encode_message(start))
    assert raised.value.signum == signum  # said as the signal that came
    assert client._session is None  # the round's session never took the update
    assert outbox.sent == []  # the stop line says nothing more of the update leaves


class _SwallowingEndpoint:
    """A party's session whose receive is a C call that swallowed the stop; the wait
    then ran out (None), as a real receive does at its timeout."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.receives = 0

    def receive(self, timeout: float | None) -> bytes | None:
        self.receives += 1
        _swallowed_in_c(self.signum)
        return None

    def send(self, payload: bytes) -> None:
        raise AssertionError("nothing is sent after a stop")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_the_branchs_receive_stops_it_not_its_idle_timer(
    signum: int,
) -> None:
    """Without the record the branch took the receive's None as the server's silence
    and gave up on its idle timer (exit 1, "the server was silent"), or, inside a
    round, waited on."""
    endpoint = _SwallowingEndpoint(signum)
    client = FederationClient("branch-00", lambda model: model, endpoint)
    with pytest.raises(StopAsked) as raised:
        client.run(idle_timeout=60.0)
    assert raised.value.signum == signum
    assert endpoint.receives == 1


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_the_key_holders_receive_stops_it(signum: int) -> None:
    endpoint = _SwallowingEndpoint(signum)
    service = KeyHolderService("key-holder", endpoint, object())  # type: ignore[arg-type]
    with pytest.raises(StopAsked) as raised:
        service.run(idle_timeout=60.0)
    assert raised.value.signum == signum
    assert endpoint.receives == 1


class _DecryptionSwallowing:
    """A key holder's session whose decryption (CKKS's C calls) swallowed the stop and
    then returned the decrypted sum, as the call it stands for goes on to."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        del payload, round_number
        self.decryptions += 1  # counted (on disk, in a real one) before anything leaves
        _swallowed_in_c(self.signum)
        return b"the decrypted sum"


class _OneRequest:
    """The key holder's session with the server: one decryption request, then silence."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.receives = 0

    def receive(self, timeout: float | None) -> bytes | None:
        self.receives += 1
        return encode_message(Relay(1, b"decrypt this")) if self.receives == 1 else None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_the_key_holders_decryption_sends_no_reply(signum: int) -> None:
    """Second review of the stop record: the key holder looked at the record only around
    its receive, so a stop swallowed in the decryption (the longest C call it makes)
    still sent the decrypted sum, and the round the stop's line says aborts could
    complete. As the branch sends nothing of its update after a stop, the key holder
    releases nothing after one (the decryption stays counted, as for a lost reply)."""
    endpoint = _OneRequest()
    session = _DecryptionSwallowing(signum)
    service = KeyHolderService("key-holder", endpoint, session)  # type: ignore[arg-type]
    with pytest.raises(StopAsked) as raised:
        service.run(idle_timeout=60.0)
    assert raised.value.signum == signum
    assert session.decryptions == 1
    assert endpoint.sent == []  # no release after the stop


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_a_dial_ends_the_redials(signum: int) -> None:
    """grpcio's dial runs in its C core: a stop swallowed there failed the dial, and
    the party paused and dialled again until its window ran out (here 2 s; a branch's
    default --connect-timeout is 30 s, a lost session's window 600 s)."""
    dials: list[float] = []

    def dial(timeout: float) -> object:
        dials.append(timeout)
        _swallowed_in_c(signum)
        raise NotConnected("the dial failed (its stop swallowed)")

    with pytest.raises(StopAsked) as raised:
        redial.serve_sessions(
            logging.getLogger("test.stop.swallowed"),
            "branch-00",
            dial,  # type: ignore[arg-type]
            lambda session: "served",
            opened=lambda: 1,
            gave_up=lambda message, cause: NotConnected(message),
            connect_timeout=2.0,
            give_up_after=600.0,
            reconnect=True,
        )
    assert raised.value.signum == signum
    assert len(dials) == 1  # no dial more


def _config(**server: object) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "fed",
                "clients": ["branch-0", "branch-1", "branch-2"],
                "dimension": D,
                "rounds": 3,
            },
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {"phase_seconds": 3.0, "round_seconds": 6.0},
            **({"server": server} if server else {}),
        }
    )


class _WaitSwallowingHub(InProcessHub):
    """The server's wait for sessions is a C call that swallowed the stop."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum

    def wait_for_sessions(self, seen: int | None, timeout: float | None) -> int:
        if seen is not None:
            _swallowed_in_c(self.signum)
        return super().wait_for_sessions(seen, 0.0)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_while_the_server_waits_for_its_parties_stops_it(
    tmp_path: Path, signum: int
) -> None:
    """Before, the server waited out --wait and its quorum wait and then ended as a
    federation that did not finish (exit 1, "no quorum"), its stop lost."""
    server = FederationServer(
        _config(), _WaitSwallowingHub(signum), ServerStore(tmp_path / "s.sqlite")
    )
    with pytest.raises(StopAsked) as raised:
        server.run(wait_for_clients=2.0, quorum_wait=1.0)
    assert raised.value.signum == signum
    assert server.store.round_numbers() == {}  # no round was begun after the stop


class _ReceiveSwallowingHub(InProcessHub):
    """The server's receive inside a round is a C call that swallowed the stop."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.receives = 0

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        self.receives += 1
        _swallowed_in_c(self.signum)
        return super().receive(0.0)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_the_servers_collect_loop_stops_the_round(
    tmp_path: Path, signum: int
) -> None:
    """The branches are connected and never answer. Before, the collect loop polled on
    until the round's phase deadline, aborted the round and began the next: a stop in
    a round ran the federation's rounds out. Now the round is left running in the
    state, as a Ctrl-C in the loop leaves it (the next start records it aborted)."""
    hub = _ReceiveSwallowingHub(signum)
    for name in ("branch-0", "branch-1", "branch-2"):
        hub.connect(name)  # silent branches: nothing they do ends the round
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"))
    with pytest.raises(StopAsked) as raised:
        server.run(wait_for_clients=0.0, quorum_wait=1.0)
    assert raised.value.signum == signum
    assert hub.receives == 1
    assert [row["status"] for row in server.store.rounds()] == ["running"]


class _OneMessageHub(InProcessHub):
    """The server's receive inside a round: one branch's message, then silence."""

    def __init__(self) -> None:
        super().__init__()
        self.given = False

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        if not self.given:
            self.given = True
            return "branch-0", b"an answer"
        return super().receive(0.0)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_swallowed_in_the_servers_handling_of_a_message_sends_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    """Second review of the stop record: the collect loop looked at the record only at
    the top of each turn, so a stop swallowed while the server handled a message (the
    protocol's checks and sums, numpy's and the crypto's C calls) still sent what that
    message moved the round to (the next phase's requests: with a key holder, the
    request that has it decrypt the sum). Now nothing of it is sent, as for a stop
    raised there, and the round is left running in the state."""
    hub = _OneMessageHub()
    for name in ("branch-0", "branch-1", "branch-2"):
        hub.connect(name)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"))
    next_phase = object()  # what the message moved the round to
    dispatched: list[list[object]] = []
    real_dispatch = server._dispatch

    def dispatch(number: int, participants: list[str], outgoing: list[object]) -> bool:
        dispatched.append(list(outgoing))
        if len(dispatched) == 1:  # the round's start: sent for real
            return real_dispatch(number, participants, outgoing)  # type: ignore[arg-type]
        return False

    def handling(*_args: object) -> list[object]:
        _swallowed_in_c(signum)
        return [next_phase]

    monkeypatch.setattr(server, "_dispatch", dispatch)
    monkeypatch.setattr(server, "_receive", handling)
    with pytest.raises(StopAsked) as raised:
        server.run(wait_for_clients=0.0, quorum_wait=1.0)
    assert raised.value.signum == signum
    assert len(dispatched) == 1  # the start only
    assert not any(next_phase in outgoing for outgoing in dispatched)
    assert [row["status"] for row in server.store.rounds()] == ["running"]
    # resumable: the next start (its stop forgotten, as the command does) aborts it
    server.store.close()
    assert forget_stop() == signum
    again = FederationServer(_config(), InProcessHub(), ServerStore(tmp_path / "s.sqlite"))
    again.run(wait_for_clients=0.0, quorum_wait=0.1)
    assert [row["status"] for row in again.store.rounds()] == ["aborted"]
    again.store.close()


def test_the_record_keeps_the_first_stop_until_it_is_forgotten() -> None:
    _swallowed_in_c(signal.SIGTERM)
    _swallowed_in_c(signal.SIGINT)
    assert stop_asked() == signal.SIGTERM
    assert forget_stop() == signal.SIGTERM
    assert stop_asked() is None
