"""A server certificate that does not carry the name a branch checks is refused at the
first handshake, in one line naming the names it does carry and the ways out.

Newcomer audit (2026-12-05): ``secagg certs init --server-name fl.bank.internal``, then
``secagg client --server 127.0.0.1:PORT``: the branch redialled for its whole
``--connect-timeout`` (30 s) and then said "cannot reach 127.0.0.1:PORT within 30 s:
... Hostname Verification Check failed.", although no redial can fix a certificate.
Real gRPC throughout; the dials here get 60 s or more, so an error well before that is
the first handshake's, not the timeout's (a bound, not a race, on a busy machine).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from _threads import BOUND, Party, free_port

from secagg.apps import devca
from secagg.transport import certs
from secagg.transport import grpc_transport as gt
from secagg.transport.base import NotAccepted, NotConnected
from secagg.transport.grpc_transport import (
    GrpcClientTransport,
    GrpcServerTransport,
    HandshakeFailed,
)

#: the dial's timeout: an error that arrives before half of it did not wait it out
LONG = 60.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A federation whose server certificate names fl.bank.internal and 10.0.0.5 only."""
    directory = tmp_path_factory.mktemp("server-name") / "certs"
    devca.init_ca(directory, server_names=["fl.bank.internal", "10.0.0.5"])
    devca.issue_client(directory, "branch-a")
    return directory


def _server(ca: Path, address: str = "127.0.0.1:0") -> GrpcServerTransport:
    verifier = certs.PeerVerifier(ca, allowed=["branch-a"])
    server = GrpcServerTransport(
        address,
        server_credentials=certs.load_server_credentials(ca).to_grpc(),
        max_message_bytes=1 << 20,
        identify=lambda context: verifier.identify(context.auth_context()).name,
    )
    server.start()
    return server


def _client(ca: Path, target: str, name_override: str | None = None) -> GrpcClientTransport:
    return GrpcClientTransport(
        target,
        channel_credentials=certs.load_client_credentials(ca, "branch-a").to_grpc(),
        name_override=name_override,
        max_message_bytes=1 << 20,
    )


def test_dialling_an_address_the_certificate_lacks_is_refused_at_once(ca: Path) -> None:
    """Before: NotConnected "cannot reach ... within 60 s: ... Hostname Verification
    Check failed." after the whole 60 s."""
    server = _server(ca)
    target = f"127.0.0.1:{server.port}"
    client = _client(ca, target)
    try:
        began = time.monotonic()
        with pytest.raises(HandshakeFailed) as caught:
            client.connect(timeout=LONG)
        elapsed = time.monotonic() - began
    finally:
        client.close()
        server.stop(grace=0)
    assert elapsed < LONG / 2, elapsed  # the first handshake's verdict (measured: 0.2 s)
    error = caught.value
    assert isinstance(error, gt.ServerNameMismatch)
    assert isinstance(error, NotAccepted) and not error.inferred  # a branch does not redial
    message = str(error)
    assert "\n" not in message
    assert target in message  # the address dialled
    assert "names fl.bank.internal, 10.0.0.5, not 127.0.0.1, the name dialled" in message
    assert f"--server fl.bank.internal:{server.port}" in message  # fix 1: dial its name
    assert "name_override='fl.bank.internal'" in message  # ... or keep the address
    assert "--server-name fl.bank.internal (name_override=" in message  # from the CLI too
    assert (  # fix 2: a certificate that carries the address too
        "secagg certs init --dir DIR --server-name fl.bank.internal --server-name 10.0.0.5 "
        "--server-name 127.0.0.1 --force" in message
    )
    assert "cannot reach" not in message


def test_a_name_override_the_certificate_lacks_is_named_as_such(ca: Path) -> None:
    server = _server(ca)
    target = f"127.0.0.1:{server.port}"
    wrong = _client(ca, target, name_override="fl.bank.example")
    right = _client(ca, target, name_override="fl.bank.internal")
    try:
        began = time.monotonic()
        with pytest.raises(HandshakeFailed) as caught:
            wrong.connect(timeout=LONG)
        assert time.monotonic() - began < LONG / 2
        assert right.connect(timeout=BOUND) == "branch-a"  # the same server, its name
    finally:
        wrong.close()
        right.close()
        server.stop(grace=0)
    message = str(caught.value)
    assert "not fl.bank.example, the name_override checked" in message
    assert isinstance(caught.value, gt.ServerNameMismatch)
    assert "name_override='" not in message  # the caller already overrides


def test_a_branch_stops_at_once_on_the_name(ca: Path) -> None:
    """run_branch does not redial a name mismatch: its first dial ends it."""
    from secagg.runtime.launch import demo_hook, run_branch

    server = _server(ca)
    try:
        began = time.monotonic()
        with pytest.raises(NotAccepted, match="the name dialled") as caught:
            run_branch(
                f"127.0.0.1:{server.port}",
                "branch-a",
                demo_hook("branch-a", 4),
                str(ca),
                connect_timeout=LONG,
                give_up_after=600.0,
            )
        assert time.monotonic() - began < LONG / 2
    finally:
        server.stop(grace=0)
    assert isinstance(caught.value, gt.ServerNameMismatch)


def test_a_server_not_up_yet_is_still_redialled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name check must not make a transient failure permanent: a branch that dials
    before the server listens (connection refused, examined as it happens) finds it
    once it starts, within the same dial."""
    local = tmp_path / "certs"  # names localhost and 127.0.0.1: what this branch dials
    devca.init_ca(local)
    devca.issue_client(local, "branch-a")
    failed = threading.Event()
    probe = GrpcClientTransport._probe

    def watched(channel: object) -> str:
        said = probe(channel)  # type: ignore[arg-type]
        failed.set()
        return said

    monkeypatch.setattr(GrpcClientTransport, "_probe", staticmethod(watched))
    port = free_port()
    client = _client(local, f"127.0.0.1:{port}")
    party = Party(lambda: client.connect(timeout=BOUND))
    server = None
    try:
        assert failed.wait(BOUND), "the dial saw no failed attempt"
        assert not party.done.is_set(), party.error  # a refused connection is not the end
        server = _server(local, f"127.0.0.1:{port}")
        assert party.done.wait(BOUND + 30.0)
        assert party.error is None, party.error
        assert party.value == "branch-a"
    finally:
        client.close()
        if server is not None:
            server.stop(grace=0)


def test_older_grpc_wording_is_a_name_mismatch_too() -> None:
    """gRPC before the custom verifier said "Peer name X is not in peer certificate";
    before, that was a HandshakeFailed telling the branch to check its own CA. Nothing
    listens on the port here, so the names cannot be read, and the message says so."""
    target = f"127.0.0.1:{free_port()}"
    details = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:"
        f"{target}: Peer name 127.0.0.1 is not in peer certificate"
    )
    failure = gt._dial_failure(target, 30.0, details)
    message = str(failure)
    assert "Peer name 127.0.0.1 is not in peer certificate" in message
    assert "the names it does carry could not be read" in message
    assert "--server-name 127.0.0.1 and its other names" in message
    assert isinstance(failure, gt.ServerNameMismatch)
    # and the failures a redial can cure stay what they were
    refused = gt._dial_failure(
        target,
        30.0,
        f"failed to connect to all addresses; last error: UNAVAILABLE: ipv4:"
        f"{target}: Failed to connect to remote host: connect: Connection refused (111)",
    )
    assert type(refused) is NotConnected
