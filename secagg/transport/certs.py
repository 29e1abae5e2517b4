"""A development certificate authority for a federation, and the server's check of a peer.

Theory of operation
-------------------
A federation trusts exactly one certificate authority (CA). ``init_ca`` creates it in a
directory, together with the aggregation server's certificate; ``issue_client`` adds one
certificate per bank branch; ``revoke`` bars a branch (or one of its certificates) without
re-keying anybody else. Everything a new user needs to run a secured federation on one
machine is therefore two commands away, and nothing here talks to the network.

The directory layout (the only state there is)::

    <dir>/ca.pem            self-signed CA certificate: give it to every party
    <dir>/ca.key            CA private key (0600): only ``issue_client`` ever reads it
    <dir>/server.pem/.key   server certificate (serverAuth) and key (0600)
    <dir>/revoked.json      revocation list, see below
    <dir>/clients/NAME.pem  one certificate per branch (clientAuth, CN=NAME,
    <dir>/clients/NAME.key  SAN URI ``urn:secagg:client:NAME``) and its key (0600)

Keys are ECDSA over P-256 and every signature is ECDSA-SHA256: it is the key type that every
TLS stack, BoringSSL inside grpcio included, accepts for both server and client certificates
in TLS 1.2 and 1.3 (Ed25519 certificates are not universally accepted in TLS handshakes).
Private keys are written unencrypted (gRPC cannot take a passphrase) with mode 0600, through
a temporary file and an atomic rename, so that a crash never leaves half a key behind. This is
a *development* CA: a production deployment keeps the CA key offline or in an HSM and only
reuses :func:`identify_peer` and the revocation list.

Two layers refuse a peer. The TLS layer (``grpc.ssl_server_credentials`` with
``require_client_auth=True`` and our CA as the only root) refuses a client with no
certificate or with a certificate from another CA before any application code runs. The
servicer then calls :func:`identify_peer` on the certificate gRPC exposes in
``context.auth_context()["x509_pem_cert"]``: it repeats the chain check with the CA's public
key (defence in depth, and the only check when certificates are handed over out of band),
enforces the validity period and the clientAuth extended key usage (so the server's own
certificate cannot pose as a branch), reads the branch name from the certificate, and refuses
revoked or unknown names. Every refusal raises :class:`PeerRefused` and is logged (reason,
name and fingerprint only; never key material).

The revocation list is a small JSON file rather than an X.509 CRL, because the only party
that consults it is our own server (TLS clients never fetch it) and a text file is easy to
audit and diff::

    {"format": "secagg-revocations/1",
     "names": ["branch-07"],           # every certificate bearing this name is refused
     "fingerprints": ["3f1c...e9"]}    # these exact certificates are refused forever

``revoke(dir, name)`` adds the name and the fingerprint of the branch's current certificate.
Re-issuing a revoked name (``issue_client(..., force=True)``) lifts the name bar but keeps the
old fingerprint barred: the branch gets back in with a fresh key, the leaked one stays out. A
missing file means nothing is revoked; a file that does not parse is an error, never "nothing
revoked", because failing open would silently re-admit barred branches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from secagg.errors import ConfigurationError, CryptoError

__all__ = [
    "CA_VALIDITY_DAYS",
    "CLIENT_NAME_PATTERN",
    "LEAF_VALIDITY_DAYS",
    "CaLayout",
    "CertificateExists",
    "CertificateStoreError",
    "ClientCredentials",
    "ClientIdentity",
    "ClientRevoked",
    "InitializedCA",
    "InvalidClientName",
    "IssuedCertificate",
    "MissingCertificate",
    "PeerRefused",
    "PeerVerifier",
    "RevocationList",
    "RevocationListError",
    "ServerCredentials",
    "client_uri",
    "fingerprint",
    "identify_peer",
    "init_ca",
    "issue_client",
    "issued_clients",
    "load_client_credentials",
    "load_revocations",
    "load_server_credentials",
    "revoke",
]

logger = logging.getLogger(__name__)

CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365
# Backdate notBefore so that a peer whose clock is a few minutes behind still accepts a
# certificate issued a moment ago (the classic "certificate not yet valid" on a fresh setup).
_BACKDATE = dt.timedelta(minutes=5)

CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_URI_PREFIX = "urn:secagg:client:"
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_REVOCATION_FORMAT = "secagg-revocations/1"
_AUTH_CONTEXT_CERT_KEY = "x509_pem_cert"


# --- errors -----------------------------------------------------------------------------


class CertificateStoreError(ConfigurationError):
    """The certificate directory is missing, incomplete, inconsistent or would be clobbered."""


class CertificateExists(CertificateStoreError):
    """Refused to overwrite a CA or a client certificate; pass ``force=True`` to replace it.

    Overwriting a CA invalidates every certificate of the federation, so it is never implicit.
    """


class MissingCertificate(CertificateStoreError):
    """A certificate or key file that should exist does not (CA not initialised, not issued)."""


class RevocationListError(CertificateStoreError):
    """The revocation list exists but does not parse; refusing to treat it as empty."""


class ClientRevoked(CertificateStoreError):
    """Refused to issue a certificate to a revoked name without ``force=True``."""


class InvalidClientName(ConfigurationError):
    """A branch name that is not ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``.

    The name becomes a file name, a certificate CN and a URI, so it is kept to characters that
    are safe in all three (no path separators, no leading dot or dash).
    """


class PeerRefused(CryptoError):
    """A TLS peer's certificate does not identify an admitted branch of this federation.

    ``reason`` says why in words a log reader understands; ``name`` and ``fingerprint`` are
    filled in when the certificate got far enough to have them.
    """

    def __init__(
        self, reason: str, *, name: str | None = None, fingerprint: str | None = None
    ) -> None:
        self.reason = reason
        self.name = name
        self.fingerprint = fingerprint
        who = f" (name={name!r}, fingerprint={fingerprint})" if name or fingerprint else ""
        super().__init__(f"peer refused: {reason}{who}")


# --- layout and results -----------------------------------------------------------------


def _check_name(name: str) -> str:
    """Return ``name`` if it is a valid branch name, so that it is safe as a path component."""
    if not isinstance(name, str) or not CLIENT_NAME_PATTERN.fullmatch(name):
        raise InvalidClientName(
            f"invalid client name {name!r}: use 1-64 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class CaLayout:
    """Where each file of a federation's certificate directory lives (one place to change)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def revocations(self) -> Path:
        return self.directory / "revoked.json"

    @property
    def clients_dir(self) -> Path:
        return self.directory / "clients"

    def client_cert(self, name: str) -> Path:
        return self.clients_dir / f"{_check_name(name)}.pem"

    def client_key(self, name: str) -> Path:
        return self.clients_dir / f"{_check_name(name)}.key"


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate just written: where it and its key are, and how to recognise it."""

    name: str
    certificate: Path
    key: Path
    fingerprint: str
    not_valid_after: dt.datetime


@dataclass(frozen=True)
class InitializedCA:
    """What ``init_ca`` created: the layout, the CA's fingerprint and the server certificate."""

    layout: CaLayout
    ca_fingerprint: str
    server: IssuedCertificate


@dataclass(frozen=True)
class ClientIdentity:
    """Who a verified peer is: the branch name and the exact certificate it presented."""

    name: str
    fingerprint: str
    not_valid_after: dt.datetime


@dataclass(frozen=True)
class RevocationList:
    """Revoked branch names and certificate fingerprints (see the module docstring)."""

    names: frozenset[str] = field(default_factory=frozenset)
    fingerprints: frozenset[str] = field(default_factory=frozenset)

    def refuses(self, name: str, cert_fingerprint: str) -> bool:
        """Whether a certificate with this name and fingerprint is revoked."""
        return name in self.names or cert_fingerprint in self.fingerprints

    def to_json(self) -> str:
        """Serialise deterministically (sorted), so that the file diffs cleanly."""
        body = {
            "format": _REVOCATION_FORMAT,
            "names": sorted(self.names),
            "fingerprints": sorted(self.fingerprints),
        }
        return json.dumps(body, indent=2) + "\n"


@dataclass(frozen=True)
class ServerCredentials:
    """PEM bytes for ``grpc.ssl_server_credentials`` (never printed: holds a private key)."""

    private_key: bytes = field(repr=False)
    certificate_chain: bytes
    root_certificates: bytes

    def to_grpc(self) -> Any:
        """Server credentials that demand a client certificate signed by our CA."""
        import grpc  # imported here: only the transport needs grpcio, the CA does not

        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.root_certificates,
            require_client_auth=True,
        )


@dataclass(frozen=True)
class ClientCredentials:
    """PEM bytes for ``grpc.ssl_channel_credentials`` (never printed: holds a private key)."""

    name: str
    root_certificates: bytes
    private_key: bytes = field(repr=False)
    certificate_chain: bytes

    def to_grpc(self) -> Any:
        """Channel credentials that trust only our CA and present the branch certificate."""
        import grpc  # imported here: only the transport needs grpcio, the CA does not

        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


# --- small helpers ----------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def client_uri(name: str) -> str:
    """The SAN URI that names a branch; a URI, not a DNS name, because a branch is no host."""
    return _URI_PREFIX + _check_name(name)


def _as_certificate(cert: bytes | str | x509.Certificate) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode("ascii") if isinstance(cert, str) else bytes(cert)
    return x509.load_pem_x509_certificate(data)


def fingerprint(cert_pem: bytes | str | x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the DER certificate: the name of one exact certificate."""
    return _as_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` via a temp file and a rename.

    The temporary file is created 0600 by ``mkstemp``, so a key is never readable by others,
    not even for an instant, whatever the umask.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MissingCertificate(f"{what} not found at {path}") from None


def _load_cert_file(path: Path, what: str) -> x509.Certificate:
    data = _read(path, what)  # outside the try: MissingCertificate is a ValueError too
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateStoreError(f"{what} at {path} is not a PEM certificate") from exc


def _load_key_file(path: Path, what: str) -> ec.EllipticCurvePrivateKey:
    data = _read(path, what)
    if path.stat().st_mode & 0o077:
        logger.warning("%s at %s is readable by group or others; chmod 600 it", what, path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The message of the underlying error is dropped on purpose: never echo key bytes.
        raise CertificateStoreError(f"{what} at {path} is not an unencrypted PEM key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateStoreError(f"{what} at {path} is not an ECDSA key")
    return key


def _check_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, what: str) -> None:
    """Refuse a key that does not belong to its certificate; gRPC's own error is cryptic."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        raise CertificateStoreError(f"{what}: the private key does not match the certificate")


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ski(key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def _leaf_builder(
    *,
    ca_cert: x509.Certificate,
    subject_cn: str,
    public_key: ec.EllipticCurvePublicKey,
    sans: Sequence[x509.GeneralName],
    eku: x509.ObjectIdentifier,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """An end-entity certificate for exactly one purpose (server or client, never both)."""
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(_ski(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )


def _server_sans(server_names: Sequence[str]) -> list[x509.GeneralName]:
    """IP literals become IP SANs (what gRPC matches for ``127.0.0.1``), the rest DNS SANs."""
    if isinstance(server_names, str) or not server_names:
        raise ConfigurationError("server_names must be a non-empty sequence of names")
    sans: list[x509.GeneralName] = []
    for raw in server_names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(raw)))
            continue
        except ValueError:
            pass
        labels = raw.rstrip(".").split(".")
        if len(raw) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ConfigurationError(f"server name {raw!r} is neither an IP address nor a host")
        sans.append(x509.DNSName(raw.rstrip(".").lower()))
    return sans


def _load_ca(layout: CaLayout) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = _load_cert_file(layout.ca_cert, "CA certificate")
    key = _load_key_file(layout.ca_key, "CA private key")
    _check_pair(cert, key, "CA")
    return cert, key


# --- creating the CA and issuing certificates -------------------------------------------


def init_ca(
    directory: Path | str,
    *,
    server_names: Sequence[str] = ("localhost", "127.0.0.1"),
    validity_days: int = CA_VALIDITY_DAYS,
    server_validity_days: int = LEAF_VALIDITY_DAYS,
    common_name: str = "secagg development CA",
    force: bool = False,
) -> InitializedCA:
    """Create a CA, a server certificate and an empty revocation list in ``directory``.

    ``server_names`` are the host names and IP addresses clients will dial; the first one is
    also the server certificate's CN. With ``force=True`` an existing CA is replaced, and
    because that makes every old certificate worthless, the old client certificates and the
    revocation list are deleted too (a new CA starts a new federation).
    """
    if validity_days < 1 or server_validity_days < 1:
        raise ConfigurationError("validity must be at least one day")
    sans = _server_sans(server_names)
    layout = CaLayout(Path(directory))
    existing = [
        p
        for p in (layout.ca_cert, layout.ca_key, layout.server_cert, layout.server_key)
        if p.exists()
    ]
    if existing and not force:
        raise CertificateExists(
            f"a CA already exists in {layout.directory} ({existing[0].name}); "
            "pass force=True to replace it and invalidate every certificate it issued"
        )
    layout.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if force:
        if layout.clients_dir.is_dir():
            shutil.rmtree(layout.clients_dir)
        layout.revocations.unlink(missing_ok=True)

    now = _now()
    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(layout.ca_key, ca_key)
    _write_cert(layout.ca_cert, ca_cert)

    server_key = _new_key()
    first = sans[0]
    cn = str(first.value) if isinstance(first, x509.IPAddress) else first.value
    server_cert = _leaf_builder(
        ca_cert=ca_cert,
        subject_cn=cn,
        public_key=server_key.public_key(),
        sans=sans,
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=now - _BACKDATE,
        not_after=now + dt.timedelta(days=server_validity_days),
    ).sign(ca_key, hashes.SHA256())
    _write_key(layout.server_key, server_key)
    _write_cert(layout.server_cert, server_cert)

    if not layout.revocations.exists():
        _write_atomic(layout.revocations, RevocationList().to_json().encode(), 0o644)
    layout.clients_dir.mkdir(exist_ok=True, mode=0o700)
    logger.info("initialised CA in %s for server names %s", layout.directory, list(server_names))
    return InitializedCA(
        layout=layout,
        ca_fingerprint=fingerprint(ca_cert),
        server=IssuedCertificate(
            name=cn,
            certificate=layout.server_cert,
            key=layout.server_key,
            fingerprint=fingerprint(server_cert),
            not_valid_after=server_cert.not_valid_after_utc,
        ),
    )


def issue_client(
    directory: Path | str,
    name: str,
    *,
    validity_days: int = LEAF_VALIDITY_DAYS,
    force: bool = False,
) -> IssuedCertificate:
    """Issue a branch certificate ``clients/<name>.pem`` and its key ``clients/<name>.key``.

    Refuses an existing name (two live certificates for one branch make revocation by
    fingerprint leaky) and a revoked name; ``force=True`` does both, and for a revoked name
    re-admits the branch while its old certificate stays barred by fingerprint.
    """
    _check_name(name)
    if validity_days < 1:
        raise ConfigurationError("validity must be at least one day")
    layout = CaLayout(Path(directory))
    ca_cert, ca_key = _load_ca(layout)
    cert_path, key_path = layout.client_cert(name), layout.client_key(name)
    revoked = load_revocations(layout.directory)
    if not force:
        if name in revoked.names:
            raise ClientRevoked(f"client {name!r} is revoked; pass force=True to re-admit it")
        if cert_path.exists() or key_path.exists():
            raise CertificateExists(
                f"client {name!r} already has a certificate; pass force=True to re-issue"
            )
    if force and cert_path.exists():
        # The replaced certificate stays valid for the TLS layer until it expires, so bar it.
        with contextlib.suppress(CertificateStoreError):
            old = fingerprint(_load_cert_file(cert_path, "old client certificate"))
            revoked = RevocationList(revoked.names, revoked.fingerprints | {old})

    now = _now()
    key = _new_key()
    cert = _leaf_builder(
        ca_cert=ca_cert,
        subject_cn=name,
        public_key=key.public_key(),
        sans=[x509.UniformResourceIdentifier(client_uri(name))],
        eku=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=now - _BACKDATE,
        not_after=now + dt.timedelta(days=validity_days),
    ).sign(ca_key, hashes.SHA256())
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    if force:
        updated = RevocationList(revoked.names - {name}, revoked.fingerprints)
        _save_revocations(layout, updated)
    fp = fingerprint(cert)
    logger.info("issued client certificate for %r (fingerprint %s)", name, fp)
    return IssuedCertificate(
        name=name,
        certificate=cert_path,
        key=key_path,
        fingerprint=fp,
        not_valid_after=cert.not_valid_after_utc,
    )


def issued_clients(directory: Path | str) -> frozenset[str]:
    """Names that have a certificate in ``clients/``: the roster ``allowed`` can be set to."""
    clients_dir = CaLayout(Path(directory)).clients_dir
    if not clients_dir.is_dir():
        return frozenset()
    return frozenset(
        p.stem for p in clients_dir.glob("*.pem") if CLIENT_NAME_PATTERN.fullmatch(p.stem)
    )


# --- revocation -------------------------------------------------------------------------


def _parse_revocations(text: str, where: str) -> RevocationList:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RevocationListError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != _REVOCATION_FORMAT:
        raise RevocationListError(f"{where} is not a {_REVOCATION_FORMAT} document")
    names, fps = body.get("names", []), body.get("fingerprints", [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and CLIENT_NAME_PATTERN.fullmatch(n) for n in names
    ):
        raise RevocationListError(f"{where}: 'names' must be a list of client names")
    if not isinstance(fps, list) or not all(
        isinstance(f, str) and _FINGERPRINT.fullmatch(f) for f in fps
    ):
        raise RevocationListError(
            f"{where}: 'fingerprints' must be a list of lower-case hex SHA-256 digests"
        )
    return RevocationList(frozenset(names), frozenset(fps))


def load_revocations(source: Path | str) -> RevocationList:
    """Read the revocation list from a CA directory or a JSON file path.

    A missing file means nothing is revoked (a branch machine may hold no list); a file that
    exists but does not parse raises :class:`RevocationListError` rather than failing open.
    """
    path = Path(source)
    if path.is_dir():
        path = CaLayout(path).revocations
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RevocationList()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RevocationListError(f"{path} is not UTF-8") from exc
    return _parse_revocations(text, str(path))


def _save_revocations(layout: CaLayout, revocations: RevocationList) -> None:
    _write_atomic(layout.revocations, revocations.to_json().encode(), 0o644)


def revoke(directory: Path | str, name: str) -> RevocationList:
    """Bar ``name`` and the fingerprint of its current certificate; idempotent.

    A name with no certificate on file can be revoked too (the certificate may have been
    deleted locally but still be out there); then only the name is recorded.
    """
    _check_name(name)
    layout = CaLayout(Path(directory))
    current = load_revocations(layout.directory)
    fps = set(current.fingerprints)
    cert_path = layout.client_cert(name)
    if cert_path.exists():
        fps.add(fingerprint(_load_cert_file(cert_path, "client certificate")))
    updated = RevocationList(current.names | {name}, frozenset(fps))
    _save_revocations(layout, updated)
    logger.info("revoked client %r", name)
    return updated


# --- credentials for gRPC ---------------------------------------------------------------


def load_server_credentials(directory: Path | str) -> ServerCredentials:
    """The server's key, certificate and the CA root, checked to belong together."""
    layout = CaLayout(Path(directory))
    cert = _load_cert_file(layout.server_cert, "server certificate")
    key = _load_key_file(layout.server_key, "server private key")
    _check_pair(cert, key, "server")
    ca = _load_cert_file(layout.ca_cert, "CA certificate")
    return ServerCredentials(
        private_key=layout.server_key.read_bytes(),
        certificate_chain=layout.server_cert.read_bytes(),
        root_certificates=ca.public_bytes(serialization.Encoding.PEM),
    )


def _first_existing(candidates: Iterable[Path]) -> Path:
    paths = list(candidates)
    for path in paths:
        if path.exists():
            return path
    return paths[0]


def load_client_credentials(
    directory: Path | str,
    name: str,
    *,
    ca: Path | str | None = None,
    certificate: Path | str | None = None,
    key: Path | str | None = None,
) -> ClientCredentials:
    """A branch's key, certificate and the CA root, checked to belong together.

    ``directory`` is either the CA directory (files in ``clients/``) or a branch's own bundle
    directory holding ``ca.pem``, ``<name>.pem`` and ``<name>.key``; explicit paths win.
    """
    _check_name(name)
    base = Path(directory)
    layout = CaLayout(base)
    ca_path = Path(ca) if ca is not None else layout.ca_cert
    cert_path = (
        Path(certificate)
        if certificate is not None
        else _first_existing([layout.client_cert(name), base / f"{name}.pem"])
    )
    key_path = (
        Path(key)
        if key is not None
        else _first_existing([layout.client_key(name), base / f"{name}.key"])
    )
    cert = _load_cert_file(cert_path, f"certificate of client {name!r}")
    private = _load_key_file(key_path, f"private key of client {name!r}")
    _check_pair(cert, private, f"client {name!r}")
    root = _load_cert_file(ca_path, "CA certificate")
    return ClientCredentials(
        name=name,
        root_certificates=root.public_bytes(serialization.Encoding.PEM),
        private_key=key_path.read_bytes(),
        certificate_chain=cert_path.read_bytes(),
    )


# --- identifying a peer -----------------------------------------------------------------


def _peer_pem(peer: Mapping[str, Any] | bytes | str | x509.Certificate) -> bytes | x509.Certificate:
    """Extract the peer certificate from a gRPC auth context (``{key: [bytes, ...]}``)."""
    if isinstance(peer, x509.Certificate | bytes | str):
        return peer.encode("ascii") if isinstance(peer, str) else peer
    values = peer.get(_AUTH_CONTEXT_CERT_KEY) or []
    if isinstance(values, bytes | str):
        values = [values]
    values = list(values)
    if not values:
        raise PeerRefused("no client certificate presented")
    if len(values) != 1:
        raise PeerRefused("more than one peer certificate in the auth context")
    value = values[0]
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _identify(
    peer: Mapping[str, Any] | bytes | str | x509.Certificate,
    ca: x509.Certificate,
    revoked: RevocationList,
    allowed: Collection[str] | None,
    now: dt.datetime,
) -> ClientIdentity:
    source = _peer_pem(peer)
    try:
        cert = _as_certificate(source)
    except (ValueError, UnicodeEncodeError) as exc:
        raise PeerRefused("peer certificate is not a PEM X.509 certificate") from exc
    fp = fingerprint(cert)

    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise PeerRefused("certificate not issued by this federation's CA", fingerprint=fp) from exc
    if now < cert.not_valid_before_utc:
        raise PeerRefused("certificate not yet valid", fingerprint=fp)
    if now > cert.not_valid_after_utc:
        raise PeerRefused("certificate expired", fingerprint=fp)

    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if basic.ca:
            raise PeerRefused("a CA certificate cannot identify a client", fingerprint=fp)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise PeerRefused("certificate lacks a required extension", fingerprint=fp) from exc
    except ValueError as exc:  # a duplicate or malformed extension
        raise PeerRefused("certificate has malformed extensions", fingerprint=fp) from exc
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise PeerRefused("certificate is not for client authentication", fingerprint=fp)

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not isinstance(cns[0].value, str):
        raise PeerRefused("certificate must carry exactly one common name", fingerprint=fp)
    name = cns[0].value
    if not CLIENT_NAME_PATTERN.fullmatch(name):
        raise PeerRefused("certificate common name is not a client name", fingerprint=fp)
    if client_uri(name) not in sans.get_values_for_type(x509.UniformResourceIdentifier):
        raise PeerRefused(
            "certificate SAN does not match its common name", name=name, fingerprint=fp
        )

    # Last, full RFC 5280 path validation by cryptography's verifier: it also rejects unknown
    # critical extensions and CA-profile defects the explicit checks above do not look for.
    verifier = PolicyBuilder().store(Store([ca])).time(now).build_client_verifier()
    try:
        verifier.verify(cert, [])
    except VerificationError as exc:
        raise PeerRefused(
            "certificate fails X.509 path validation", name=name, fingerprint=fp
        ) from exc

    if revoked.refuses(name, fp):
        raise PeerRefused("certificate or name revoked", name=name, fingerprint=fp)
    if allowed is not None and name not in allowed:
        raise PeerRefused("unknown client name", name=name, fingerprint=fp)
    return ClientIdentity(name=name, fingerprint=fp, not_valid_after=cert.not_valid_after_utc)


def identify_peer(
    peer: Mapping[str, Any] | bytes | str | x509.Certificate,
    ca_pem: bytes | str | x509.Certificate,
    revoked: RevocationList | None = None,
    *,
    allowed: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> ClientIdentity:
    """Return who a TLS peer is, or raise (and log) :class:`PeerRefused`.

    ``peer`` is ``context.auth_context()`` from a gRPC servicer, or the peer certificate PEM.
    The certificate must be signed by ``ca_pem``, be within its validity period, carry the
    clientAuth usage and a CN equal to its ``urn:secagg:client:`` SAN, and be neither revoked
    (by name or fingerprint) nor, when ``allowed`` is given, outside that roster of names.
    """
    try:
        ca = _as_certificate(ca_pem)
    except ValueError as exc:
        raise CertificateStoreError("the CA certificate is not a PEM certificate") from exc
    try:
        identity = _identify(peer, ca, revoked or RevocationList(), allowed, now or _now())
    except PeerRefused as refusal:
        logger.warning(
            "refused peer: %s (name=%s, fingerprint=%s)",
            refusal.reason,
            refusal.name,
            refusal.fingerprint,
        )
        raise
    logger.debug("admitted peer %r (fingerprint %s)", identity.name, identity.fingerprint)
    return identity


class PeerVerifier:
    """:func:`identify_peer` bound to a CA directory, for use inside a servicer.

    The CA certificate is read once; the revocation list is re-read on every call (it is a
    few hundred bytes), so ``secagg certs revoke`` takes effect without restarting the server.
    If the list becomes unreadable, calls raise :class:`RevocationListError`: fail closed.
    """

    def __init__(self, directory: Path | str, *, allowed: Collection[str] | None = None) -> None:
        self._layout = CaLayout(Path(directory))
        self._ca = _load_cert_file(self._layout.ca_cert, "CA certificate")
        self._allowed = frozenset(allowed) if allowed is not None else None

    def identify(self, peer: Mapping[str, Any] | bytes | str | x509.Certificate) -> ClientIdentity:
        """Identify a peer against the CA, the current revocation list and the roster."""
        revoked = load_revocations(self._layout.revocations)
        return identify_peer(peer, self._ca, revoked, allowed=self._allowed)
