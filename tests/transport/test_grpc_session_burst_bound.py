"""The gRPC server transport refuses a ``session_burst`` its token buckets cannot count,
at construction, in one line.

Upper-bounds review (2026-12-06): ``[server] session_burst`` is capped at 2**53 in the
config, yet a library caller constructing :class:`GrpcServerTransport` with
``session_burst=10**400`` got a transport whose every new session raised OverflowError
(``float(burst)``) at its admission, so no client could open one; past 2**53 the float
count is no longer exact and taking a token can leave it as it was.
"""

from __future__ import annotations

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import MAX_SESSION_BURST as CONFIG_MAX_SESSION_BURST
from secagg.transport.grpc_server import GrpcServerTransport

#: the bound, written out (not imported: the test must run against the transport
#: before it had one)
LARGEST_BURST = 2**53


def _transport(session_burst: object) -> GrpcServerTransport:
    return GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch",
        session_burst=session_burst,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "burst",
    [10**400, 10**5000, LARGEST_BURST + 1, 2**64],
    ids=["10**400", "10**5000", "2**53+1", "2**64"],
)
def test_a_burst_past_the_floats_is_refused_at_construction(burst: int) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _transport(burst)
    message = str(refused.value)
    assert message.startswith("session_burst must be an integer in [1, 2**53]"), message
    assert "\n" not in message, message


@pytest.mark.parametrize("burst", [0, -1, True, 2.0])
def test_the_other_bursts_refused_before_are_still_refused(burst: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^session_burst must be "):
        _transport(burst)


def test_the_largest_burst_is_taken_and_admits_sessions_exactly() -> None:
    """At 2**53 the bucket still counts: two sessions take two tokens."""
    transport = _transport(LARGEST_BURST)
    bucket = transport._session_rate
    assert bucket is not None
    assert bucket.admit("branch-1", now=0.0) == (0.0, 0)
    assert bucket.admit("branch-1", now=0.0) == (0.0, 0)
    assert bucket._buckets["branch-1"][0] == LARGEST_BURST - 2
    assert _transport(None)._session_rate is None  # None still turns the limit off


def test_the_transport_and_the_config_agree_on_the_bound() -> None:
    """``[server] session_burst``'s bound is the transport's: a value the config loads
    is one the transport takes."""
    assert CONFIG_MAX_SESSION_BURST == LARGEST_BURST
    assert _transport(CONFIG_MAX_SESSION_BURST)._session_rate is not None
