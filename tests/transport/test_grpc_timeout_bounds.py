"""The server transport's timeouts are bounded where they are taken, naming the argument.

Review of the connection limits (2026-12-05): ``handshake_timeout`` and
``idle_connection_timeout`` reach gRPC as milliseconds in a C ``int``. The ``[server]``
configuration caps them at a day, but :class:`GrpcServerTransport` built directly took
any finite value, and one of 2**31 ms (about 24.8 days) or more died in ``start()`` with
grpcio's bare ``OverflowError: value too large to convert to int``, naming nothing.
Likewise ``recheck_interval`` and ``partial_idle_timeout`` are waited on by the re-check
timer thread: ``inf`` (or anything above ``threading.TIMEOUT_MAX``) was accepted and
the thread died at its first wait, silently leaving expired certificates and stalled
messages unended. Each is now refused at construction in one line naming it.

The client transport passes no timeout of its caller's to gRPC: its channel arguments
are the module's constants (keepalive, reconnect backoff).
"""

from __future__ import annotations

import threading

import pytest

from secagg.errors import ConfigurationError
from secagg.transport.grpc_transport import (
    GRPC_MAX_MILLISECONDS,
    GrpcServerTransport,
    grpc_milliseconds,
)

_GRPC_TIMEOUTS = ("handshake_timeout", "idle_connection_timeout")
_TIMER_TIMEOUTS = ("recheck_interval", "partial_idle_timeout")
_NOT_POSITIVE = [0, 0.0, -1.0, float("nan"), float("-inf"), float("inf"), True, "10"]


def _transport(**options: object) -> GrpcServerTransport:
    return GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "x",
        **options,  # type: ignore[arg-type]
    )


def _refused(name: str, value: object) -> str:
    with pytest.raises(ConfigurationError) as refused:
        _transport(**{name: value})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{name} must be"), message
    return message


@pytest.mark.parametrize("name", _GRPC_TIMEOUTS)
@pytest.mark.parametrize("value", _NOT_POSITIVE, ids=repr)
def test_a_grpc_timeout_that_is_not_a_positive_number_is_refused(name: str, value: object) -> None:
    _refused(name, value)


@pytest.mark.parametrize("name", _GRPC_TIMEOUTS)
@pytest.mark.parametrize(
    "seconds", [(GRPC_MAX_MILLISECONDS + 1) / 1000, 2**31 / 1000 + 1, 30 * 86400.0, 1e10, 1e300]
)
def test_a_grpc_timeout_over_a_32_bit_millisecond_count_is_refused(
    name: str, seconds: float
) -> None:
    assert "32-bit" in _refused(name, seconds)


@pytest.mark.parametrize("name", _GRPC_TIMEOUTS)
def test_the_longest_grpc_timeout_still_starts(name: str) -> None:
    """2**31 - 1 ms, the most gRPC takes, reaches it and the server starts."""
    transport = _transport(**{name: GRPC_MAX_MILLISECONDS / 1000})
    try:
        assert transport.start() > 0
    finally:
        transport.stop()


def test_milliseconds_at_both_ends() -> None:
    assert grpc_milliseconds("t", GRPC_MAX_MILLISECONDS / 1000) == GRPC_MAX_MILLISECONDS
    assert grpc_milliseconds("t", 2.5) == 2500
    assert grpc_milliseconds("t", 1e-9) == 1  # a limit, never rounded to 0 (no limit)


@pytest.mark.parametrize("name", _TIMER_TIMEOUTS)
@pytest.mark.parametrize("value", [*_NOT_POSITIVE, threading.TIMEOUT_MAX * 2, 1e300], ids=repr)
def test_a_timer_timeout_the_timer_thread_cannot_wait_is_refused(name: str, value: object) -> None:
    _refused(name, value)


@pytest.mark.parametrize("name", _TIMER_TIMEOUTS)
@pytest.mark.parametrize("value", [None, 0.5, 86400.0 * 365])
def test_a_timer_timeout_it_can_wait_is_taken(name: str, value: float | None) -> None:
    _transport(**{name: value})
