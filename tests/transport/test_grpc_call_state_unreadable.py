"""A grpcio without the call state a clean close is read from degrades to one warning.

Transport review (2026-12-06): how a session ended (a clean close, or a lost
connection) is read from grpcio's internal ``context._state.client``, as no public
accessor tells the two apart. A grpcio that moved or renamed it made every clean close
a "connection lost" with nothing saying why. Now the first such read logs one warning
naming grpcio and the attribute (once per process, not per session end), and the
answer still errs towards "connection lost", never a crash.

In-process: the contexts are stand-ins shaped as grpcio's would be, no server runs.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from secagg.transport import grpc_server
from secagg.transport.grpc_server import _call_cancelled

LOGGER = "secagg.transport.grpc_transport"


@pytest.fixture(autouse=True)
def _fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a process that has not warned yet."""
    event = getattr(grpc_server, "_call_state_unreadable", None)
    if event is not None:
        monkeypatch.setattr(grpc_server, "_call_state_unreadable", type(event)())


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno == logging.WARNING
    ]


@pytest.mark.parametrize(
    ("context", "kind"),
    [
        (SimpleNamespace(), "missing"),  # no _state at all
        (SimpleNamespace(_state=SimpleNamespace()), "missing"),  # _state without client
        (SimpleNamespace(_state=SimpleNamespace(client=3)), "unknown"),  # an enum, say
        (SimpleNamespace(_state=SimpleNamespace(client="half-open")), "unknown"),
    ],
)
def test_an_unreadable_call_state_is_said_once_and_reads_as_lost(
    context: object, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert _call_cancelled(context) is True  # type: ignore[arg-type]
    assert _call_cancelled(context) is True  # type: ignore[arg-type]
    said = _warnings(caplog)
    assert len(said) == 1, said  # one line per process, not one per session end
    assert "grpcio" in said[0] and "context._state.client" in said[0]
    assert kind in said[0]
    assert "connection lost" in said[0]


@pytest.mark.parametrize(("client", "cancelled"), [("closed", False), ("cancelled", True)])
def test_a_readable_call_state_is_read_without_a_warning(
    client: str, cancelled: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    context = SimpleNamespace(_state=SimpleNamespace(client=client))
    assert _call_cancelled(context) is cancelled  # type: ignore[arg-type]
    assert _warnings(caplog) == []


def test_this_grpcio_keeps_the_call_state_where_it_is_read() -> None:
    """The installed grpcio has the attribute and its values: if an upgrade moves them,
    this fails here, by name, before every clean close turns into a lost connection."""
    from grpc import _server

    assert {_server._OPEN, _server._CLOSED, _server._CANCELLED} == grpc_server._CALL_STATES
    assert _server._RPCState().client == "open"
