"""What a redialling party says, and when (operator pass of 2026-12-04).

A branch dialling a dead port said nothing for up to 20 s per attempt: one dial had
:data:`~secagg.runtime.redial.MAX_DIAL_SECONDS` from the first attempt, and a gRPC dial
retries inside its budget, so its failure (and its line) came only at the end. The
first dial of a window now has :data:`~secagg.runtime.redial.FIRST_DIAL_SECONDS`,
doubling per failed attempt, one line per attempt as before.

After a lost session the loss itself was logged as ``dial attempt 1 failed (session
closed ...)``, though no dial had failed, and the real attempts were numbered from 2.
It is now one ``session lost (...)`` line, then the attempts from 1.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from secagg.runtime import redial
from secagg.runtime.redial import serve_sessions
from secagg.transport.base import NotConnected
from secagg.transport.grpc_transport import GrpcClientTransport

LOG = "test.redial"


def _serve(
    dial: object,
    *,
    connect_timeout: float = 600.0,
    give_up_after: float | None = 600.0,
    reconnect: bool = True,
) -> str:
    """serve_sessions with sessions that are strs: "lost" is lost, any other is served."""

    def serve(session: object) -> str:
        if session == "lost":
            raise NotConnected("session closed (UNAVAILABLE): the server restarted")
        return str(session)

    def gave_up(message: str, cause: NotConnected) -> NotConnected:
        return NotConnected(message)

    return serve_sessions(
        logging.getLogger(LOG),
        "branch-a",
        dial,  # type: ignore[arg-type]
        serve,  # type: ignore[arg-type]
        opened=lambda: 1,
        gave_up=gave_up,
        connect_timeout=connect_timeout,
        give_up_after=give_up_after,
        reconnect=reconnect,
    )


class _Script:
    """A dial that plays a list (a session, or an error raised) and notes its budgets."""

    def __init__(self, steps: list[object]) -> None:
        self.steps = iter(steps)
        self.budgets: list[float] = []

    def __call__(self, timeout: float) -> object:
        self.budgets.append(timeout)
        step = next(self.steps)
        if isinstance(step, BaseException):
            raise step
        return step


def test_the_dial_budget_starts_short_and_doubles_to_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    refused = NotConnected("cannot reach 127.0.0.1:1: connection refused")
    dial = _Script([refused] * 6 + ["served"])
    assert _serve(dial) == "served"
    assert redial.FIRST_DIAL_SECONDS == 2.0
    assert dial.budgets == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    # a lost session starts a new window: short again
    dial = _Script([refused, refused, "lost", refused, "served"])
    assert _serve(dial) == "served"
    assert dial.budgets == [2.0, 4.0, 8.0, 2.0, 4.0]
    # never more than the window has left (nor below half a second)
    assert redial.dial_budget(time.monotonic() + 1.0, 3) <= 1.0
    assert redial.dial_budget(time.monotonic() - 5.0, 0) == 0.5


def test_a_lost_session_is_logged_as_lost_and_the_redials_count_from_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    refused = NotConnected("cannot reach 127.0.0.1:1: connection refused")
    with caplog.at_level(logging.INFO, logger=LOG):
        assert _serve(_Script(["lost", refused, refused, "served"])) == "served"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    lost, first, second, back = lines
    assert back == "branch-a: reconnected (session 1)"
    assert lost.startswith(
        "branch-a: session lost (session closed (UNAVAILABLE): the server restarted); "
        "redialling for up to 600 s, first dial in "
    )
    assert first.startswith("branch-a: dial attempt 1 failed (cannot reach 127.0.0.1:1: ")
    assert second.startswith("branch-a: dial attempt 2 failed (cannot reach 127.0.0.1:1: ")
    assert not any("session closed" in line for line in (first, second))
    assert caplog.records[0].levelno == logging.WARNING  # a loss is shown with --quiet too
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOG):
        assert _serve(_Script(["lost", "served"]), give_up_after=None) == "served"
    line, back = [r.getMessage() for r in caplog.records]
    assert back == "branch-a: reconnected (session 1)"
    assert "redialling until the federation's end, first dial in " in line


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_port_is_named_within_seconds_not_after_the_whole_dial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real gRPC dial to a port nobody listens on: the first line (naming the address
    and the next dial) comes after about FIRST_DIAL_SECONDS; before, the 6 s window was
    one silent dial and the party gave up without a line."""
    target = f"127.0.0.1:{_dead_port()}"

    def dial(timeout: float) -> object:
        transport = GrpcClientTransport(
            target, channel_credentials=None, allow_insecure=True, max_message_bytes=1 << 20
        )
        transport.connect(timeout)
        return transport

    began = time.time()
    with caplog.at_level(logging.INFO, logger=LOG):
        with pytest.raises(NotConnected, match="cannot open a session with the server within 6"):
            _serve(dial, connect_timeout=6.0)
    attempts = [r for r in caplog.records if "dial attempt" in r.getMessage()]
    assert attempts, "no line while dialling a dead port"
    first = attempts[0]
    assert first.created - began < redial.FIRST_DIAL_SECONDS + 2.0  # generous on 2 cores
    assert first.getMessage().startswith(f"branch-a: dial attempt 1 failed (cannot reach {target}")
    assert "; next in " in first.getMessage()
    numbers = [int(r.getMessage().split("dial attempt ")[1].split()[0]) for r in attempts]
    assert numbers == list(range(1, len(attempts) + 1))  # one line per attempt


def test_without_reconnect_the_first_session_is_still_dialled_for_its_whole_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``reconnect=False`` means a lost session is not redialled; the first session is
    still dialled for up to connect_timeout (it gave up after one 2 s dial)."""
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    refused = NotConnected("cannot reach 127.0.0.1:1: connection refused")
    dial = _Script([refused, refused, "served"])
    assert _serve(dial, reconnect=False) == "served"
    assert len(dial.budgets) == 3


def test_without_reconnect_a_lost_session_says_so_not_a_window_it_never_waited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("secagg.runtime.redial.time.sleep", lambda seconds: None)
    dial = _Script(["lost", "served"])
    with pytest.raises(NotConnected) as raised:
        _serve(dial, give_up_after=600.0, reconnect=False)
    message = str(raised.value)
    assert "lost and reconnecting is off" in message, message
    assert "600 s" not in message, message
    assert len(dial.budgets) == 1  # no redial
