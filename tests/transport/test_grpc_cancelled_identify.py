"""A call the client cancelled while ``identify`` ran does not replace the live session
of the same name (review leftover, 2026-12-07).

Before: ``_open_session`` registered the new session whatever became of its call, so a
dial abandoned during a slow ``identify`` (a party stopped by Ctrl-C while it dials, a
client that gave up waiting) superseded the live session of the same name, which was
told "superseded by a new session" and ended, and left in its place a session whose call
was already over: the branch was dropped from the round for nothing.

The order is forced with events: ``identify`` of the second call holds until the test
has seen that call end (its termination callback), then lets it proceed.

Real gRPC on loopback, plaintext (the order of the handler's steps is under test).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from _threads import BOUND, Party

from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport


def _client(port: int) -> GrpcClientTransport:
    return GrpcClientTransport(
        f"127.0.0.1:{port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )


def test_a_call_cancelled_during_identify_leaves_the_live_session() -> None:
    calls = 0
    second_entered = threading.Event()
    second_call_ended = threading.Event()
    release_second = threading.Event()
    second_handled = threading.Event()

    def identify(context: grpc.ServicerContext) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second dial: held until its call is seen over
            context.add_callback(second_call_ended.set)
            second_entered.set()
            assert release_second.wait(BOUND)
        return "branch-a"

    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=identify,
        recheck_interval=None,
    )
    open_session = server._open_session

    def watched_open_session(
        request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        try:
            return open_session(request_iterator, context)
        finally:
            if calls == 2:
                second_handled.set()

    server._open_session = watched_open_session  # type: ignore[method-assign]
    server.start()
    live, abandoned = _client(server.port), _client(server.port)
    try:
        assert live.connect(timeout=BOUND) == "branch-a"
        live_id = server.session_id("branch-a")
        dial = Party(lambda: abandoned.connect(timeout=BOUND))
        assert second_entered.wait(BOUND)
        abandoned.close()  # not accepted yet: the call is cancelled at once
        assert second_call_ended.wait(BOUND)
        release_second.set()
        assert second_handled.wait(BOUND)
        assert dial.done.wait(BOUND)
        assert server.connected() == {"branch-a"}
        assert server.session_id("branch-a") == live_id  # the live session was kept
        assert live.receive(timeout=0.2) is None  # and it goes on, not superseded
    finally:
        release_second.set()
        abandoned.close()
        live.close()
        server.stop(grace=0)


def test_a_call_cancelled_after_its_liveness_check_leaves_the_live_session() -> None:
    """The same, for a call that ends just after the handler found it active and before
    the new session replaced the live one (transport review, 2026-12-07: the window left
    between ``is_active()`` and ``add_callback``).

    Before: the handler checked ``is_active()`` and registered its termination callback
    only after the new session had superseded the live one; a call that ended in between
    still superseded it (the live party is told it has a twin and stops), and the dead
    session was dropped at once ('connection lost'). Now the callback is registered under
    the same lock before anything is replaced, and a call already over is refused there.
    The window is forced: the second call's ``is_active`` answers for the call as it is,
    then cancels it and returns only once gRPC has run its termination callbacks."""
    calls = 0
    second_call_ended = threading.Event()

    def identify(context: grpc.ServicerContext) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second dial: its call ends right after the liveness check
            context.add_callback(second_call_ended.set)
            really_active = context.is_active

            def active_then_cancelled() -> bool:
                active = really_active()
                context.cancel()
                assert second_call_ended.wait(BOUND)  # gRPC has taken its callbacks
                return active

            context.is_active = active_then_cancelled  # type: ignore[method-assign]
        return "branch-a"

    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=identify,
        recheck_interval=None,
        max_clients=2,
    )
    server.start()
    live, abandoned = _client(server.port), _client(server.port)
    try:
        assert live.connect(timeout=BOUND) == "branch-a"
        live_id = server.session_id("branch-a")
        dial = Party(lambda: abandoned.connect(timeout=BOUND))
        assert dial.done.wait(BOUND)
        assert dial.error is not None  # its call was cancelled: no session for it
        assert second_call_ended.is_set()
        assert server.connected() == {"branch-a"}
        assert server.session_id("branch-a") == live_id  # the live session was kept
        assert live.receive(timeout=0.2) is None  # and it goes on, not superseded
    finally:
        abandoned.close()
        live.close()
        server.stop(grace=0)
