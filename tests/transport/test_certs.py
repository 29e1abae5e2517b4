"""The development CA and the server's peer check, down to a real mTLS loopback with grpcio."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secagg.apps.devca import (
    CertificateExists,
    ClientRevoked,
    init_ca,
    issue_client,
    issued_clients,
    revoke,
)
from secagg.errors import ConfigurationError, CryptoError
from secagg.transport import certs
from secagg.transport.certs import (
    CertificateStoreError,
    InvalidClientName,
    MissingRevocationList,
    PeerRefused,
    PeerVerifier,
    RevocationList,
    RevocationListError,
    fingerprint,
    identify_peer,
    load_client_credentials,
    load_revocations,
    load_server_credentials,
    signed_part_digest,
)

try:
    import grpc
except ImportError:  # pragma: no cover - grpcio is what the transport runs on
    grpc = None

needs_grpc = pytest.mark.skipif(grpc is None, reason="grpcio not installed")

NOW = dt.datetime.now(dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _sign(
    ca_dir: Path,
    name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    san_name: str | None = None,
    extra: x509.ExtensionType | None = None,
) -> bytes:
    """A client certificate signed with the federation's CA key, built independently of certs."""
    ca_cert, ca_key = _cert(ca_dir / "ca.pem"), _key(ca_dir / "ca.key")
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:secagg:client:{san_name or name}")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if extra is not None:
        builder = builder.add_extension(extra, critical=True)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    init_ca(directory)
    return directory


@pytest.fixture
def other_ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "other-ca"
    init_ca(directory)
    issue_client(directory, "branch-a")
    return directory


# --- init -------------------------------------------------------------------------------


def test_init_creates_ca_server_and_empty_revocation_list(tmp_path: Path) -> None:
    result = init_ca(tmp_path / "ca", server_names=("localhost", "127.0.0.1", "::1", "agg.bank"))
    d = tmp_path / "ca"
    for name in ("ca.key", "server.key"):
        assert _mode(d / name) == 0o600, name
    for name in ("ca.pem", "server.pem", "revoked.json"):
        assert _mode(d / name) == 0o644, name
    assert (d / "clients").is_dir()
    assert load_revocations(d) == RevocationList()

    ca = _cert(d / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert result.ca_fingerprint == fingerprint(ca)

    server = _cert(d / "server.pem")
    server.verify_directly_issued_by(ca)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "agg.bank"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert result.server.fingerprint == fingerprint(server)
    assert b"PRIVATE KEY" in (d / "server.key").read_bytes()


def test_init_refuses_to_overwrite_without_force(ca_dir: Path) -> None:
    issue_client(ca_dir, "branch-a")
    old_ca = (ca_dir / "ca.pem").read_bytes()
    with pytest.raises(CertificateExists):
        init_ca(ca_dir)
    assert (ca_dir / "ca.pem").read_bytes() == old_ca

    init_ca(ca_dir, force=True)
    assert (ca_dir / "ca.pem").read_bytes() != old_ca
    # A new CA is a new federation: the old branch certificates are gone, not left dangling.
    assert issued_clients(ca_dir) == frozenset()


@pytest.mark.parametrize("names", [(), ("bad host!",), ("-leading.dash",)])
def test_init_rejects_bad_server_names(tmp_path: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError):
        init_ca(tmp_path / "ca", server_names=names)
    assert not (tmp_path / "ca" / "ca.key").exists()


# --- issuing ----------------------------------------------------------------------------


def test_issued_client_verifies_against_the_ca(ca_dir: Path) -> None:
    issued = issue_client(ca_dir, "branch_01.north")
    assert issued.certificate == ca_dir / "clients" / "branch_01.north.pem"
    assert _mode(issued.key) == 0o600
    assert _mode(issued.certificate) == 0o644
    cert = _cert(issued.certificate)
    cert.verify_directly_issued_by(_cert(ca_dir / "ca.pem"))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "branch_01.north"
    assert issued.fingerprint == fingerprint(issued.certificate.read_bytes())
    assert len(issued.fingerprint) == 64

    identity = identify_peer(issued.certificate.read_bytes(), (ca_dir / "ca.pem").read_bytes())
    assert identity.name == "branch_01.north"
    assert identity.fingerprint == issued.fingerprint
    assert issued_clients(ca_dir) == {"branch_01.north"}


def test_duplicate_client_refused_and_forced_reissue_bars_the_old_certificate(
    ca_dir: Path,
) -> None:
    first = issue_client(ca_dir, "branch-a")
    old_pem = first.certificate.read_bytes()
    with pytest.raises(CertificateExists):
        issue_client(ca_dir, "branch-a")
    assert first.certificate.read_bytes() == old_pem

    second = issue_client(ca_dir, "branch-a", force=True)
    assert second.fingerprint != first.fingerprint
    verifier = PeerVerifier(ca_dir)
    assert verifier.identify(second.certificate.read_bytes()).name == "branch-a"
    with pytest.raises(PeerRefused, match="revoked"):
        verifier.identify(old_pem)


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-x", "_x", "a/b", "../x", "a b", "é", "a" * 65, "x\n", "a\\b"]
)
def test_bad_names_refused(ca_dir: Path, name: str) -> None:
    with pytest.raises(InvalidClientName):
        issue_client(ca_dir, name)
    with pytest.raises(InvalidClientName):
        revoke(ca_dir, name)
    with pytest.raises(InvalidClientName):
        load_client_credentials(ca_dir, name)
    assert list((ca_dir / "clients").iterdir()) == []
    assert issubclass(InvalidClientName, ConfigurationError)


def test_longest_valid_name_accepted(ca_dir: Path) -> None:
    assert issue_client(ca_dir, "A" + "z" * 63).name == "A" + "z" * 63


def test_issue_without_ca_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(certs.MissingCertificate):
        issue_client(tmp_path, "branch-a")


# --- identify_peer refusals -------------------------------------------------------------
# Issuer, validity period, end-entity and clientAuth usage are left to cryptography's RFC 5280
# verifier, so those refusals say "path validation" (its own detail follows). Each test also
# shows the certificate is accepted once the one thing it gets wrong is put right.


def test_certificate_from_another_ca_refused(ca_dir: Path, other_ca_dir: Path) -> None:
    foreign = (other_ca_dir / "clients" / "branch-a.pem").read_bytes()
    with pytest.raises(PeerRefused, match="path validation") as info:
        identify_peer(foreign, (ca_dir / "ca.pem").read_bytes())
    assert info.value.fingerprint == fingerprint(foreign)
    assert isinstance(info.value, CryptoError)
    assert identify_peer(foreign, (other_ca_dir / "ca.pem").read_bytes()).name == "branch-a"


def test_expired_certificate_refused(ca_dir: Path) -> None:
    now = dt.datetime.now(dt.UTC)  # after the CA's notBefore, which is backdated 5 minutes
    expired = _sign(
        ca_dir,
        "branch-a",
        not_before=now - dt.timedelta(minutes=4),
        not_after=now - dt.timedelta(minutes=1),
    )
    ca = (ca_dir / "ca.pem").read_bytes()
    with pytest.raises(PeerRefused, match="path validation"):
        identify_peer(expired, ca, now=now)
    assert identify_peer(expired, ca, now=now - dt.timedelta(minutes=2)).name == "branch-a"


def test_not_yet_valid_and_later_expired_by_clock(ca_dir: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = (ca_dir / "ca.pem").read_bytes()
    early = _sign(
        ca_dir,
        "branch-a",
        not_before=now + dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=1),
    )
    with pytest.raises(PeerRefused, match="path validation"):  # not yet valid
        identify_peer(early, ca, now=now)
    assert identify_peer(early, ca, now=now + dt.timedelta(hours=2)).name == "branch-a"

    pem = issue_client(ca_dir, "branch-b", validity_days=2).certificate.read_bytes()
    assert identify_peer(pem, ca, now=now).name == "branch-b"
    with pytest.raises(PeerRefused, match="path validation"):  # expired
        identify_peer(pem, ca, now=now + dt.timedelta(days=3))


def test_independently_built_valid_certificate_is_accepted(ca_dir: Path) -> None:
    """Guards the refusal tests above: a certificate built by _sign passes when it should."""
    pem = _sign(
        ca_dir, "branch-a", not_before=NOW - dt.timedelta(hours=1), not_after=NOW + dt.timedelta(1)
    )
    assert identify_peer(pem, (ca_dir / "ca.pem").read_bytes()).name == "branch-a"


def test_unknown_critical_extension_refused_by_path_validation(ca_dir: Path) -> None:
    """A critical extension nobody understands: the certificate must not be trusted."""
    pem = _sign(
        ca_dir,
        "branch-a",
        not_before=NOW - dt.timedelta(hours=1),
        not_after=NOW + dt.timedelta(days=1),
        extra=x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"),
    )
    with pytest.raises(PeerRefused, match="path validation"):
        identify_peer(pem, (ca_dir / "ca.pem").read_bytes())


def test_server_certificate_cannot_pose_as_client(ca_dir: Path) -> None:
    """Issued by our CA and valid, but for serverAuth only: no clientAuth usage."""
    with pytest.raises(PeerRefused, match="path validation"):
        identify_peer((ca_dir / "server.pem").read_bytes(), (ca_dir / "ca.pem").read_bytes())


def test_ca_certificate_cannot_pose_as_client(ca_dir: Path) -> None:
    ca = (ca_dir / "ca.pem").read_bytes()
    with pytest.raises(PeerRefused, match="path validation"):
        identify_peer(ca, ca)


def test_san_must_match_common_name(ca_dir: Path) -> None:
    pem = _sign(
        ca_dir,
        "branch-a",
        not_before=NOW - dt.timedelta(hours=1),
        not_after=NOW + dt.timedelta(days=1),
        san_name="branch-b",
    )
    with pytest.raises(PeerRefused, match="SAN"):
        identify_peer(pem, (ca_dir / "ca.pem").read_bytes())


def test_revoked_name_refused_and_verifier_sees_it_without_restart(ca_dir: Path) -> None:
    pem = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    issue_client(ca_dir, "branch-b")
    verifier = PeerVerifier(ca_dir)
    assert verifier.identify(pem).name == "branch-a"

    revoked = revoke(ca_dir, "branch-a")
    assert revoked.names == {"branch-a"}
    assert revoked.fingerprints == {fingerprint(pem)}
    assert revoke(ca_dir, "branch-a") == revoked  # idempotent
    with pytest.raises(PeerRefused, match="revoked") as info:
        verifier.identify(pem)
    assert info.value.name == "branch-a"
    with pytest.raises(PeerRefused, match="revoked"):
        identify_peer(pem, (ca_dir / "ca.pem").read_bytes(), load_revocations(ca_dir))
    # Others are unaffected.
    b = (ca_dir / "clients" / "branch-b.pem").read_bytes()
    assert verifier.identify(b).name == "branch-b"


def test_revoked_name_needs_force_to_be_readmitted(ca_dir: Path) -> None:
    old = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    revoke(ca_dir, "branch-a")
    with pytest.raises(ClientRevoked):
        issue_client(ca_dir, "branch-a")
    new = issue_client(ca_dir, "branch-a", force=True).certificate.read_bytes()
    verifier = PeerVerifier(ca_dir)
    assert verifier.identify(new).name == "branch-a"
    with pytest.raises(PeerRefused, match="revoked"):
        verifier.identify(old)


def test_unknown_name_refused_when_a_roster_is_given(ca_dir: Path) -> None:
    issue_client(ca_dir, "branch-a")
    stray = issue_client(ca_dir, "branch-z").certificate.read_bytes()
    roster = {"branch-a", "branch-b"}
    with pytest.raises(PeerRefused, match="unknown client name"):
        identify_peer(stray, (ca_dir / "ca.pem").read_bytes(), allowed=roster)
    assert PeerVerifier(ca_dir, allowed=issued_clients(ca_dir)).identify(stray).name == "branch-z"


def test_auth_context_forms(ca_dir: Path) -> None:
    pem = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    ca = (ca_dir / "ca.pem").read_bytes()
    context = {"transport_security_type": [b"ssl"], "x509_pem_cert": [pem]}
    assert identify_peer(context, ca).name == "branch-a"
    with pytest.raises(PeerRefused, match="no client certificate"):
        identify_peer({"transport_security_type": [b"ssl"]}, ca)
    with pytest.raises(PeerRefused, match="not a PEM"):
        identify_peer(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", ca)


def test_refusal_is_logged_without_secrets(ca_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    issued = issue_client(ca_dir, "branch-a")
    revoke(ca_dir, "branch-a")
    with caplog.at_level(logging.WARNING, logger="secagg.transport.certs"):
        with pytest.raises(PeerRefused):
            PeerVerifier(ca_dir).identify(issued.certificate.read_bytes())
    [record] = [r for r in caplog.records if r.name == "secagg.transport.certs"]
    assert record.levelno == logging.WARNING
    assert "revoked" in record.getMessage()
    assert issued.fingerprint in record.getMessage()
    assert "PRIVATE" not in caplog.text


# --- revocation list robustness ---------------------------------------------------------


def test_missing_revocation_list_is_a_server_error_unless_allowed(ca_dir: Path) -> None:
    """M4: a server must not read a missing list as "nothing revoked" (fail open)."""
    pem = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    # no grace: a deleted list is refused after it otherwise (test_revocation_grace.py)
    verifier = PeerVerifier(ca_dir, revocation_grace=0)
    (ca_dir / "revoked.json").unlink()
    assert load_revocations(ca_dir) == RevocationList()  # the CA tooling and branches
    with pytest.raises(MissingRevocationList, match="secagg certs init"):
        load_revocations(ca_dir, missing_ok=False)
    with pytest.raises(MissingRevocationList, match="allow_missing_revocations"):
        PeerVerifier(ca_dir)  # at start-up, not at the first connection
    with pytest.raises(RevocationListError):
        verifier.identify(pem)  # deleted while serving: every peer is refused
    allowed = PeerVerifier(ca_dir, allow_missing_revocations=True)
    assert allowed.identify(pem).name == "branch-a"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"names": [], "fingerprints": []}',
        b'{"format": "secagg-revocations/1", "names": "branch-a"}',
        b'{"format": "secagg-revocations/1", "names": ["../etc"]}',
        b'{"format": "secagg-revocations/1", "fingerprints": ["ABC"]}',
    ],
)
def test_malformed_revocation_list_fails_closed(ca_dir: Path, content: bytes) -> None:
    pem = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    # no grace: a list that does not read is bridged for a while otherwise (a hand edit
    # rewriting it in place), see tests/transport/test_revocation_grace.py
    verifier = PeerVerifier(ca_dir, revocation_grace=0)
    (ca_dir / "revoked.json").write_bytes(content)
    with pytest.raises(RevocationListError):
        load_revocations(ca_dir)
    with pytest.raises(RevocationListError):
        verifier.identify(pem)
    with pytest.raises(RevocationListError):
        revoke(ca_dir, "branch-a")


def test_revocation_file_is_readable_json(ca_dir: Path) -> None:
    pem = issue_client(ca_dir, "branch-a").certificate.read_bytes()
    revoke(ca_dir, "branch-a")
    body = json.loads((ca_dir / "revoked.json").read_text())
    assert body == {
        "format": "secagg-revocations/1",
        "names": ["branch-a"],
        "signed_parts": [signed_part_digest(pem)],
        "fingerprints": [fingerprint(pem)],
    }


# --- credentials ------------------------------------------------------------------------


def test_load_credentials(ca_dir: Path, tmp_path: Path) -> None:
    issue_client(ca_dir, "branch-a")
    server = load_server_credentials(ca_dir)
    assert server.root_certificates == (ca_dir / "ca.pem").read_bytes()
    assert server.certificate_chain == (ca_dir / "server.pem").read_bytes()
    assert "PRIVATE" not in repr(server)

    client = load_client_credentials(ca_dir, "branch-a")
    assert client.certificate_chain == (ca_dir / "clients" / "branch-a.pem").read_bytes()
    assert client.private_key == (ca_dir / "clients" / "branch-a.key").read_bytes()
    assert "PRIVATE" not in repr(client)

    # A branch machine gets a flat bundle: ca.pem, NAME.pem, NAME.key.
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for src, dst in [
        (ca_dir / "ca.pem", "ca.pem"),
        (ca_dir / "clients" / "branch-a.pem", "branch-a.pem"),
        (ca_dir / "clients" / "branch-a.key", "branch-a.key"),
    ]:
        (bundle / dst).write_bytes(src.read_bytes())
    (bundle / "branch-a.key").chmod(0o600)  # written under the umask: keys must be owner-only
    assert load_client_credentials(bundle, "branch-a") == client


def test_mismatched_key_and_missing_files_are_typed_errors(ca_dir: Path) -> None:
    issue_client(ca_dir, "branch-a")
    issue_client(ca_dir, "branch-b")
    with pytest.raises(CertificateStoreError, match="does not match"):
        load_client_credentials(ca_dir, "branch-a", key=ca_dir / "clients" / "branch-b.key")
    with pytest.raises(certs.MissingCertificate):
        load_client_credentials(ca_dir, "branch-c")
    (ca_dir / "server.key").write_bytes((ca_dir / "ca.key").read_bytes())
    with pytest.raises(CertificateStoreError, match="does not match"):
        load_server_credentials(ca_dir)


def test_a_file_for_a_folder_or_a_folder_for_a_file_is_a_typed_error(
    ca_dir: Path, tmp_path: Path
) -> None:
    """CLI audit 2026-12-05, 5: a certificate folder given as a file raised ``[Errno 20]
    Not a directory: 'base.toml/clients/b1.pem'``, an OSError, not the module's error."""
    base = tmp_path / "base.toml"
    base.write_text("x = 1\n")
    with pytest.raises(certs.MissingCertificate, match=r"base\.toml/clients/b1\.pem: a part"):
        load_client_credentials(base, "b1")
    issue_client(ca_dir, "branch-a")
    key = ca_dir / "clients" / "branch-a.key"
    key.unlink()
    key.mkdir()  # the key's path is a folder: opens, fails only to read
    with pytest.raises(certs.MissingCertificate, match=r"branch-a\.key: that is a folder"):
        load_client_credentials(ca_dir, "branch-a")
    key.rmdir()
    cert = ca_dir / "clients" / "branch-a.pem"
    cert.unlink()
    cert.mkdir()
    with pytest.raises(certs.MissingCertificate, match=r"branch-a\.pem: that is a folder"):
        load_client_credentials(ca_dir, "branch-a")


def test_an_unreadable_certificate_or_key_is_a_typed_error(
    ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied (as root the mode bits do not refuse: the OS call is made to).
    Every file is opened once, by ``os.open`` (:func:`secagg.durable.read_regular_file`),
    so the refusal is made there, for one kind of file at a time."""
    issue_client(ca_dir, "branch-a")
    real_open = os.open

    def refuse(suffix: str) -> Callable[..., int]:
        def opened(path: object, *args: object, **kwargs: object) -> int:
            if str(path).endswith(suffix):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        return opened

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse(".pem"))
        with pytest.raises(CertificateStoreError, match="cannot be read: permission denied"):
            load_client_credentials(ca_dir, "branch-a")
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse(".json"))
        with pytest.raises(RevocationListError, match="cannot be read: Permission denied"):
            load_revocations(ca_dir)
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse(".key"))
        with pytest.raises(CertificateStoreError, match=r"branch-a\.key cannot be read"):
            load_client_credentials(ca_dir, "branch-a")


# --- a real mTLS loopback ---------------------------------------------------------------

_METHOD = "/secagg.test.Echo/Whoami"


class _Server:
    def __init__(self, ca_dir: Path) -> None:
        self.seen: list[str] = []
        verifier = PeerVerifier(ca_dir)

        def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                identity = verifier.identify(context.auth_context())
            except PeerRefused as refusal:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal.reason)
            self.seen.append(identity.name)
            return identity.name.encode() + b":" + request

        handler = grpc.method_handlers_generic_handler(
            "secagg.test.Echo",
            {
                "Whoami": grpc.unary_unary_rpc_method_handler(
                    whoami, request_deserializer=None, response_serializer=None
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((handler,))
        credentials = load_server_credentials(ca_dir).to_grpc()
        self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        assert self.port
        self.server.start()

    def call(self, credentials: grpc.ChannelCredentials, *, override: bool = True) -> bytes:
        """Dial 127.0.0.1; with ``override`` the server name checked is 'localhost' instead."""
        options = [("grpc.ssl_target_name_override", "localhost")] if override else []
        with grpc.secure_channel(f"127.0.0.1:{self.port}", credentials, options=options) as ch:
            stub = ch.unary_unary(_METHOD)
            return stub(b"ping", timeout=60)


@pytest.fixture
def mtls_server(ca_dir: Path) -> Iterator[_Server]:
    issue_client(ca_dir, "branch-a")
    issue_client(ca_dir, "branch-b")
    server = _Server(ca_dir)
    try:
        yield server
    finally:
        server.server.stop(None)


@needs_grpc
def test_mtls_issued_client_is_identified_by_the_servicer(
    ca_dir: Path, mtls_server: _Server
) -> None:
    creds = load_client_credentials(ca_dir, "branch-a").to_grpc()
    assert mtls_server.call(creds, override=False) == b"branch-a:ping"  # IP SAN matches
    assert mtls_server.call(creds) == b"branch-a:ping"  # DNS SAN via name override
    assert mtls_server.seen == ["branch-a", "branch-a"]


@needs_grpc
def test_mtls_client_without_certificate_is_refused(ca_dir: Path, mtls_server: _Server) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=(ca_dir / "ca.pem").read_bytes())
    with pytest.raises(grpc.RpcError) as info:
        mtls_server.call(creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mtls_server.seen == []


@needs_grpc
def test_mtls_client_from_another_ca_is_refused(
    ca_dir: Path, other_ca_dir: Path, mtls_server: _Server
) -> None:
    foreign = load_client_credentials(other_ca_dir, "branch-a")
    # It even trusts our CA, so only its own certificate is wrong.
    creds = grpc.ssl_channel_credentials(
        root_certificates=(ca_dir / "ca.pem").read_bytes(),
        private_key=foreign.private_key,
        certificate_chain=foreign.certificate_chain,
    )
    with pytest.raises(grpc.RpcError) as info:
        mtls_server.call(creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mtls_server.seen == []


@needs_grpc
def test_mtls_revoked_client_passes_tls_but_the_servicer_refuses_it(
    ca_dir: Path, mtls_server: _Server
) -> None:
    creds = load_client_credentials(ca_dir, "branch-b").to_grpc()
    assert mtls_server.call(creds) == b"branch-b:ping"
    revoke(ca_dir, "branch-b")
    with pytest.raises(grpc.RpcError) as info:
        mtls_server.call(creds)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "revoked" in (info.value.details() or "")
    assert mtls_server.seen == ["branch-b"]


@needs_grpc
def test_mtls_client_refuses_a_server_from_another_ca(
    ca_dir: Path, other_ca_dir: Path, mtls_server: _Server
) -> None:
    issue_client(other_ca_dir, "branch-b")
    creds = load_client_credentials(other_ca_dir, "branch-b").to_grpc()
    with pytest.raises(grpc.RpcError) as info:
        mtls_server.call(creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
