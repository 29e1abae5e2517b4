"""The dial diagnosis (``cli._probe_tls``) trusts exactly the CA the transport trusts.

Review of the CA rule (2026-12-05): the transport trusts the one CA certificate of
``ca.pem`` (a bundle is refused), but the probe that explains a failed dial handed
``ca.pem`` to ``ssl`` as a ``cafile``, which trusts every certificate in the file. With
a bundle there, the probe completed a handshake with a server of the second CA, one the
connection itself never trusts, and explained the failure from that. The probe now
reads ``ca.pem`` by the same rule: a bundle gives no probe (the transport's own line
names the file) and no connection is made.

A plain ``ssl`` server on loopback plays the federation server; every wait has a
generous bound and ends on the event.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from secagg.apps import devca
from secagg.apps.cli import _probe_tls

BOUND = 30.0  # the upper bound of every wait: each handshake takes milliseconds


class _TlsServer:
    """Accepts TLS connections with the server pair of ``ca_dir``, asks for a client
    certificate from the same CA, and sends one byte to each party it accepts."""

    def __init__(self, ca_dir: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(ca_dir / "server.pem"), str(ca_dir / "server.key"))
        self.context.load_verify_locations(cafile=str(ca_dir / "ca.pem"))
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(BOUND)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:  # closed by stop(), or the bound passed
                return
            self.connections += 1
            with raw:
                raw.settimeout(BOUND)
                try:
                    with self.context.wrap_socket(raw, server_side=True) as tls:
                        tls.sendall(b"x")
                except (ssl.SSLError, OSError):
                    continue  # the client's certificate refused: the alert is sent

    def stop(self) -> None:
        self._stop.set()
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        self.listener.close()
        self._thread.join(BOUND)


@pytest.fixture
def own_ca(tmp_path: Path) -> Path:
    directory = tmp_path / "own"
    devca.init_ca(directory)
    devca.issue_client(directory, "branch-001")
    return directory


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    directory = tmp_path / "other"
    devca.init_ca(directory)
    return directory


def _probe(server: _TlsServer, certificates: Path) -> str | None:
    try:
        return _probe_tls(f"127.0.0.1:{server.port}", str(certificates), "branch-001")
    finally:
        server.stop()


@pytest.mark.parametrize("order", ["own-first", "other-first"])
def test_a_bundle_gives_no_probe_and_no_connection(
    own_ca: Path, other_ca: Path, order: str
) -> None:
    own, other = (own_ca / "ca.pem").read_bytes(), (other_ca / "ca.pem").read_bytes()
    (own_ca / "ca.pem").write_bytes(own + other if order == "own-first" else other + own)
    server = _TlsServer(other_ca)  # a server of the bundle's other CA

    assert _probe(server, own_ca) is None  # the transport's own line names ca.pem
    assert server.connections == 0  # nothing was trusted, so nothing was dialled


def test_a_server_of_another_ca_is_still_named_untrusted(own_ca: Path, other_ca: Path) -> None:
    server = _TlsServer(other_ca)

    cause = _probe(server, own_ca)
    assert cause is not None
    assert "the server's certificate is not signed by the CA in this party's ca.pem" in cause
    assert str(own_ca / "ca.pem") in cause


def test_a_server_of_the_one_ca_passes_the_probe(own_ca: Path) -> None:
    server = _TlsServer(own_ca)

    assert _probe(server, own_ca) is None
    assert server.connections == 1  # it did dial, and the handshake worked
