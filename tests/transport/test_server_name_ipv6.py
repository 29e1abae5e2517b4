"""An IPv6 address as the name checked on the server's certificate, however spelt.

Review (2026-12-05): gRPC compares an IPv6 name with the certificate's IP SANs as
text, so ``name_override="FD00:0:0:0:0:0:0:5"`` (or dialling ``[0:0:0:0:0:0:0:1]``)
against a certificate carrying ``fd00::5`` (``::1``) was a :class:`ServerNameMismatch`
naming one address twice. The transport now hands gRPC the address's one spelling.
Real gRPC with mTLS; every dial gets a generous timeout.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport import grpc_transport as gt
from secagg.transport.grpc_transport import (
    GrpcClientTransport,
    GrpcServerTransport,
    ServerNameMismatch,
)

#: a dial's timeout; a handshake answers in well under a second
LONG = 60.0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server certificate naming two IPv6 addresses only."""
    directory = tmp_path_factory.mktemp("server-name-v6") / "certs"
    devca.init_ca(directory, server_names=["fd00::5", "::1"])
    devca.issue_client(directory, "branch-a")
    return directory


def _server(ca: Path, address: str) -> GrpcServerTransport:
    verifier = certs.PeerVerifier(ca, allowed=["branch-a"])
    server = GrpcServerTransport(
        address,
        server_credentials=certs.load_server_credentials(ca).to_grpc(),
        max_message_bytes=1 << 20,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    server.start()
    return server


def _dial(ca: Path, target: str, name_override: str | None = None) -> str:
    client = GrpcClientTransport(
        target,
        channel_credentials=certs.load_client_credentials(ca, "branch-a").to_grpc(),
        name_override=name_override,
        max_message_bytes=1 << 20,
    )
    try:
        return client.connect(timeout=LONG)
    finally:
        client.close()


@pytest.mark.parametrize("spelling", ["fd00::5", "[fd00::5]", "FD00:0:0:0:0:0:0:5", "fd00:0::5"])
def test_an_ipv6_name_override_matches_the_certificates_ip_san(ca: Path, spelling: str) -> None:
    server = _server(ca, "127.0.0.1:0")
    try:
        assert _dial(ca, f"127.0.0.1:{server.port}", spelling) == "branch-a"
    finally:
        server.stop(grace=0)


def test_an_ipv6_name_the_certificate_lacks_is_still_refused(ca: Path) -> None:
    server = _server(ca, "127.0.0.1:0")
    try:
        with pytest.raises(ServerNameMismatch) as caught:
            _dial(ca, f"127.0.0.1:{server.port}", "[FD00::6]")
    finally:
        server.stop(grace=0)
    said = str(caught.value)
    assert "names fd00::5, ::1, not fd00::6, the name_override checked" in said, said


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_address_dialled_in_a_long_spelling_matches(ca: Path) -> None:
    server = _server(ca, "[::1]:0")
    try:
        assert _dial(ca, f"[0:0:0:0:0:0:0:1]:{server.port}") == "branch-a"
        assert _dial(ca, f"[::1]:{server.port}") == "branch-a"
    finally:
        server.stop(grace=0)


@pytest.mark.parametrize(
    ("target", "override", "checked"),
    [
        ("127.0.0.1:5", None, None),  # gRPC's own check is the host as dialled
        ("fl.bank.internal:5", None, None),
        ("[::1]:5", None, None),
        ("[0:0::1]:5", None, "::1"),
        ("[fe80::1%eth0]:5", None, "fe80::1"),  # a zone is this machine's, not a name
        ("127.0.0.1:5", "fl.bank.internal", "fl.bank.internal"),
        ("127.0.0.1:5", "[::1]", "::1"),
        ("127.0.0.1:5", "10.0.0.5", "10.0.0.5"),
        ("[::ffff:127.0.0.1]:5", None, None),  # inet_ntop's spelling: gRPC's own check
        ("[::ffff:7f00:1]:5", None, "::ffff:127.0.0.1"),
        ("127.0.0.1:5", "::ffff:a00:5", "::ffff:10.0.0.5"),
    ],
)
def test_the_name_handed_to_grpc(target: str, override: str | None, checked: str | None) -> None:
    assert gt._checked_name(target, override) == checked


@pytest.fixture(scope="module")
def mapped_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server certificate naming IPv4-mapped and IPv4-compatible IPv6 addresses only."""
    directory = tmp_path_factory.mktemp("server-name-mapped") / "certs"
    devca.init_ca(directory, server_names=["::ffff:10.0.0.5", "::ffff:127.0.0.1", "::a00:6"])
    devca.issue_client(directory, "branch-a")
    return directory


@pytest.mark.parametrize(
    "spelling", ["::ffff:10.0.0.5", "::ffff:a00:5", "[::FFFF:10.0.0.5]", "::a00:6", "::10.0.0.6"]
)
def test_an_ipv4_mapped_name_override_matches_the_certificates_ip_san(
    mapped_ca: Path, spelling: str
) -> None:
    """gRPC spells an IP SAN as the C library's inet_ntop does (``::ffff:10.0.0.5``,
    ``::10.0.0.6``), not as Python's ``ipaddress`` (``::ffff:a00:5``, ``::a00:6``
    before Python 3.13): the name handed to gRPC must be that spelling."""
    server = _server(mapped_ca, "127.0.0.1:0")
    try:
        assert _dial(mapped_ca, f"127.0.0.1:{server.port}", spelling) == "branch-a"
    finally:
        server.stop(grace=0)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 on this machine")
def test_an_ipv4_mapped_address_dialled_as_such_matches(mapped_ca: Path) -> None:
    """Dialling ``[::ffff:127.0.0.1]`` against a certificate naming it matched in gRPC's
    own check; the transport must not replace that host with another spelling."""
    server = _server(mapped_ca, "[::]:0")
    try:
        assert _dial(mapped_ca, f"[::ffff:127.0.0.1]:{server.port}") == "branch-a"
    finally:
        server.stop(grace=0)


def test_a_mismatch_names_the_ip_sans_as_grpc_compares_them(mapped_ca: Path) -> None:
    """The names the message offers to copy into ``--server-name`` are gRPC's spelling
    (they read ``::ffff:a00:5, ::ffff:7f00:1, ::a00:6``)."""
    server = _server(mapped_ca, "127.0.0.1:0")
    try:
        with pytest.raises(ServerNameMismatch) as caught:
            _dial(mapped_ca, f"127.0.0.1:{server.port}", "::ffff:a00:9")
    finally:
        server.stop(grace=0)
    said = str(caught.value)
    expected = "names ::ffff:10.0.0.5, ::ffff:127.0.0.1, ::10.0.0.6, not ::ffff:10.0.0.9"
    assert expected in said, said
