"""The gRPC transport's blocking waits (the server's receive and its wait for sessions,
the client's receive and its dial) raise a stop recorded for the process
(:func:`~secagg.transport.waiting.ask_stop`) within ``STOP_LOOK_SECONDS``, whatever
their timeout.

Why: a Ctrl-C or SIGTERM whose ``KeyboardInterrupt`` a library swallowed (grpcio's C
core, a callback's catch-all) just before or inside such a wait left it waiting for as
long as it was asked: the server's --wait (600 s), a branch's receive between rounds
(without end with ``--idle inf``), a dial's budget. The runtime's loops look at the
record only when the wait returns (tests/runtime/test_stop_swallowed.py).

Each wait runs in a thread of its own (a stop raised there is a KeyboardInterrupt the
thread keeps, not the test runner's), and is awaited with a generous bound.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _plaintext_grpc import MAX_MESSAGE_BYTES, plaintext_client, plaintext_server
from _threads import BOUND, Party

from secagg.transport.grpc_transport import GrpcClientTransport
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

#: the waits' own timeouts: without end, and one far longer than the test may take
TIMEOUTS = [None, 60.0]


@pytest.fixture(autouse=True)
def _no_stop_left() -> Iterator[None]:
    assert forget_stop() is None, "a stop was left recorded before this test"
    yield
    forget_stop()


def _stopped(party: Party, signum: int) -> None:
    """The wait ended with the recorded stop, within the bound."""
    assert party.done.wait(BOUND), "the wait did not look at the stop record"
    assert isinstance(party.error, StopAsked), (party.value, party.error)
    assert party.error.signum == signum


def _entered(condition: Any) -> threading.Event:
    """An event set once a thread waits on ``condition`` (its ``wait`` wrapped)."""
    entered = threading.Event()
    real = condition.wait

    def wait(timeout: float | None = None) -> bool:
        entered.set()
        return bool(real(timeout))

    condition.wait = wait
    return entered


@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_servers_receive_raises_a_stop_recorded_while_it_waits(
    timeout: float | None, signum: int
) -> None:
    with plaintext_server(recheck_interval=None) as server:
        entered = _entered(server._changed)
        party = Party(lambda: server.receive(timeout=timeout))
        assert entered.wait(BOUND)
        ask_stop(signum)  # the handler's record; its exception went elsewhere
        _stopped(party, signum)


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_the_servers_wait_for_sessions_raises_a_stop_recorded_while_it_waits(
    timeout: float | None,
) -> None:
    with plaintext_server(recheck_interval=None) as server:
        entered = _entered(server._changed)
        seen = server.wait_for_sessions(None, 0.0)
        party = Party(lambda: server.wait_for_sessions(seen, timeout))
        assert entered.wait(BOUND)
        ask_stop(signal.SIGTERM)
        _stopped(party, signal.SIGTERM)


def test_the_servers_waits_still_end_as_before_without_a_stop() -> None:
    with plaintext_server(recheck_interval=None) as server:
        assert server.receive(timeout=0.3) is None
        seen = server.wait_for_sessions(None, 0.0)
        assert server.wait_for_sessions(seen, 0.3) == seen


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_the_clients_receive_raises_a_stop_recorded_before_it(timeout: float | None) -> None:
    """Recorded just before the wait: swallowed by the library call that came before."""
    with plaintext_server(recheck_interval=None) as server:
        client = plaintext_client(server)
        client.connect(timeout=BOUND)
        try:
            assert client.receive(timeout=0.3) is None  # no stop: the wait ends as before
            ask_stop(signal.SIGINT)
            party = Party(lambda: client.receive(timeout=timeout))
            _stopped(party, signal.SIGINT)
        finally:
            client.close()


def test_a_dial_raises_a_stop_recorded_before_it() -> None:
    """A dial to a port that accepts TCP and never speaks: gRPC's connect waits in its
    C core for the whole budget (20 s a dial at most, a redial's)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        client = GrpcClientTransport(
            f"127.0.0.1:{held.getsockname()[1]}",
            channel_credentials=None,
            allow_insecure=True,
            max_message_bytes=MAX_MESSAGE_BYTES,
        )
        ask_stop(signal.SIGTERM)
        party = Party(lambda: client.connect(timeout=60.0))
        try:
            _stopped(party, signal.SIGTERM)
        finally:
            client.close()
