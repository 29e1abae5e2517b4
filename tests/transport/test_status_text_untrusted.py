"""The status text that ends a client's session is one bounded printable line.

Transport review (2026-12-05): the text of the gRPC status a server ends a session
with went into the client's :class:`TransportClosed` as it came, and from there into
the branch's log lines and the CLI's one-line error. Only the authenticated server can
send one, but like the names of a served certificate (77af038) it is the other party's
text: a newline forged a log line, an ANSI escape painted the operator's terminal, a
U+202E reordered what they read, and nothing bounded its length.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from _threads import BOUND

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport import grpc_transport as gt
from secagg.transport.grpc_transport import (
    THROTTLE_DETAIL,
    GrpcClientTransport,
    GrpcServerTransport,
    IdentityRefused,
    SessionThrottled,
    TransportClosed,
)

HOSTILE = (
    "server is stopping\nERROR branch-002: run \x1b[2Jsecagg certs init --force"
    "\u202etxt.exe\u0000" + "x" * 12_000  # gRPC refuses status metadata over 16 KiB
)


def _assert_one_clean_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text
    assert "\x1b" not in text and "\u202e" not in text and "\x00" not in text
    assert len(text) <= gt.MAX_STATUS_TEXT + 40  # the "session closed (CODE): " prefix


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, TransportClosed),
        (grpc.StatusCode.PERMISSION_DENIED, IdentityRefused),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, SessionThrottled),
    ],
)
def test_a_hostile_status_text_becomes_one_bounded_line(
    code: grpc.StatusCode, kind: type[TransportClosed]
) -> None:
    details = f"{THROTTLE_DETAIL}; {HOSTILE}" if kind is SessionThrottled else HOSTILE
    error = gt._closed(code, details)
    assert type(error) is kind
    _assert_one_clean_line(error.details)
    _assert_one_clean_line(str(error))
    assert error.details.removeprefix(f"{THROTTLE_DETAIL}; ").startswith(
        "server is stopping ERROR branch-002: run [2Jsecagg"
    )


def test_the_servers_own_texts_pass_unchanged() -> None:
    for details in ("client identity not accepted", f"{THROTTLE_DETAIL}; retry in 1.5 s"):
        assert gt._closed(grpc.StatusCode.UNAUTHENTICATED, details).details == details
    superseded = gt._closed(grpc.StatusCode.ABORTED, gt.SUPERSEDED_DETAIL)
    assert isinstance(superseded, gt.Superseded)
    assert superseded.details == gt.SUPERSEDED_DETAIL


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("status-text") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-a")
    return directory


def test_a_session_ended_with_a_hostile_status_says_one_line(ca: Path) -> None:
    verifier = certs.PeerVerifier(ca, allowed=["branch-a"])
    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca).to_grpc(),
        max_message_bytes=1 << 20,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    server.start()
    client = GrpcClientTransport(
        f"127.0.0.1:{server.port}",
        channel_credentials=certs.load_client_credentials(ca, "branch-a").to_grpc(),
        max_message_bytes=1 << 20,
    )
    try:
        assert client.connect(timeout=BOUND) == "branch-a"
        with server._lock:
            session = server._sessions["branch-a"]
        # below gRPC's 8 KiB soft limit on metadata: between it and the 16 KiB hard
        # limit gRPC may end the stream RESOURCE_EXHAUSTED instead (about half the runs)
        on_the_wire = HOSTILE[:4_000]
        assert len(on_the_wire) > 10 * gt.MAX_STATUS_TEXT  # still far past the bound
        server._end_for_cause(session, "test", grpc.StatusCode.UNAVAILABLE, on_the_wire)
        with pytest.raises(TransportClosed) as caught:
            while client.receive(timeout=BOUND) is not None:  # nothing is sent: it ends
                pass
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        _assert_one_clean_line(str(caught.value))
        assert str(caught.value).startswith("session closed (UNAVAILABLE): server is stopping")
    finally:
        client.close()
        server.stop(grace=0)
