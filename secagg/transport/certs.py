"""The server's check of a TLS peer, and the credentials gRPC needs, from a CA directory.

Theory of operation
-------------------
A federation trusts exactly one certificate authority (CA). This module only *reads* what
that CA produced: it loads the server's and a branch's credentials for gRPC, reads the
revocation list, and tells the server who a TLS peer is. Making the CA and issuing or revoking
certificates is left to the development CA of the ``secagg certs`` command, or to a
deployment's own PKI writing the same layout.

The directory layout::

    <dir>/ca.pem            self-signed CA certificate: give it to every party
    <dir>/ca.key            CA private key (0600): only the CA ever reads it
    <dir>/server.pem/.key   server certificate (serverAuth) and key (0600)
    <dir>/revoked.json      revocation list, see below
    <dir>/clients/NAME.pem  one certificate per branch (clientAuth, CN=NAME,
    <dir>/clients/NAME.key  SAN URI ``urn:secagg:client:NAME``) and its key (0600)

A branch machine may instead hold a flat bundle: ``ca.pem``, ``NAME.pem`` and ``NAME.key``.
Every ``.key`` file is refused (:class:`InsecureKeyFile`, saying ``chmod 600 <file>``) if
group or others may read it: a key other local users can read may already be copied, so
it is not loaded with a warning nobody reads. ``secagg certs`` writes keys 0600; an
operator who cannot set the mode passes ``allow_insecure_key_permissions=True``.
Keys are ECDSA over P-256: the key type every TLS stack, BoringSSL inside grpcio included,
accepts for both server and client certificates in TLS 1.2 and 1.3.

Two layers refuse a peer. The TLS layer (``grpc.ssl_server_credentials`` with
``require_client_auth=True`` and our CA as the only root) refuses a client with no
certificate or with a certificate from another CA before any application code runs. The
servicer then calls :func:`identify_peer` on the certificate gRPC exposes in
``context.auth_context()["x509_pem_cert"]``. It runs cryptography's RFC 5280 client verifier
with the CA as the only trust anchor (defence in depth, and the only check when certificates
are handed over out of band): the CA's signature, the validity period, an end-entity
certificate with the clientAuth extended key usage (so the server's own certificate cannot
pose as a branch), no unknown critical extension. It then reads the branch name from the
common name, requires the matching ``urn:secagg:client:`` SAN, and refuses revoked or unknown
names. Every refusal raises :class:`PeerRefused` and is logged (reason, name and fingerprint
only; never key material).

The revocation list is a small JSON file rather than an X.509 CRL, because the only party
that consults it is our own server (TLS clients never fetch it) and a text file is easy to
audit and diff::

    {"format": "secagg-revocations/1",
     "names": ["branch-07"],           # every certificate bearing this name is refused
     "signed_parts": ["9a0b...17"],    # these certificates are refused forever, however encoded
     "fingerprints": ["3f1c...e9"]}    # these exact certificates are refused forever

A certificate is what its CA signed: its signed part (``tbsCertificate``), whose SHA-256
(:func:`signed_part_digest`) is the same however the certificate around it is encoded.
Its fingerprint, the SHA-256 of the whole certificate, is not: anyone holding an ECDSA
certificate can flip its signature (``s`` -> ``n - s``) without the CA's key, and TLS and
the X.509 verifier take the result, whose fingerprint is another. So revocation keys on
the signed part (``secagg certs revoke`` and ``issue --force`` write it); path validation
pins it, since a signed part changed by a byte no longer verifies. ``fingerprints``
stays readable (lists written before ``signed_parts``, an entry pasted from a log line,
a server of an older release, which ignores ``signed_parts``: the commands write both):
a fingerprint bars its certificate in either encoding of an ECDSA signature
(:func:`presented_fingerprints`). Nothing else re-encodes a certificate in a way that
passes: the ECDSA verifier takes only the DER signature (no leading zeros, no long
lengths, no trailing bytes, ``s < n``), an RSA signature is one fixed-size number below
the modulus (and PSS needs the key to re-sign), and the certificate parser refuses
non-minimal lengths (tests/transport/test_revocation_signed_part.py).

``secagg certs init`` writes an empty list, so a CA directory always has one. The server
(:class:`PeerVerifier`) refuses to start without it (:class:`MissingRevocationList`): a
missing list would mean "nothing revoked", failing open, and a deleted or misplaced file
must not silently re-admit barred branches. A deployment that truly revokes nothing may
say so with ``allow_missing_revocations=True``. :func:`load_revocations` itself still reads
a missing file as empty (a branch machine, or the CA tooling, may hold no list). A file that
does not parse is an error everywhere, never "nothing revoked".

The server re-reads the list on every identity check: when a session opens, and for every
open session every 30 s (:class:`~secagg.transport.grpc_transport.GrpcServerTransport`
re-runs its ``identify`` every ``recheck_interval``), so revoking a branch ends its open
session too, within 30 s (the server runtime also re-checks before it samples a round):
until then its messages are still delivered.

Size: about 680 lines: the credential loaders, the revocation list and the peer check
share one directory layout and one set of errors; issuing certificates lives in the
development CA (:mod:`secagg.apps.devca`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from secagg.durable import (
    opened_regular_file,
    read_at_most,
    read_regular_file,
    size_words,
)
from secagg.errors import (
    ConfigurationError,
    CryptoError,
    FileTooLarge,
    NotARegularFile,
)

__all__ = [
    "CLIENT_NAME_PATTERN",
    "REVOCATION_GRACE_SECONDS",
    "CaLayout",
    "CertificateStoreError",
    "ClientCredentials",
    "ClientIdentity",
    "InsecureKeyFile",
    "InvalidClientName",
    "MissingCertificate",
    "MissingRevocationList",
    "PeerRefused",
    "PeerVerifier",
    "RevocationList",
    "RevocationListError",
    "ServerCredentials",
    "UnreadableRevocationList",
    "check_client_name",
    "check_key_pair",
    "client_uri",
    "fingerprint",
    "identify_peer",
    "load_ca_certificate",
    "load_certificate_file",
    "load_client_credentials",
    "load_private_key_file",
    "load_revocations",
    "load_server_credentials",
    "presented_fingerprints",
    "signed_part_digest",
]

logger = logging.getLogger(__name__)

CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_URI_PREFIX = "urn:secagg:client:"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_REVOCATION_FORMAT = "secagg-revocations/1"
_AUTH_CONTEXT_CERT_KEY = "x509_pem_cert"
#: how long :class:`PeerVerifier` goes on with the last good revocation list while the
#: file cannot be read (a hand edit rewriting it in place) before it fails closed: one
#: re-check interval of the server's sessions, so an open session outlives at most one
#: failed re-check, and the second ends it
REVOCATION_GRACE_SECONDS = 30.0


# --- errors -----------------------------------------------------------------------------


class CertificateStoreError(ConfigurationError):
    """The certificate directory is missing, incomplete, inconsistent or would be clobbered."""


class MissingCertificate(CertificateStoreError):
    """A certificate or key file that should exist does not (CA not initialised, not issued)."""


class OwnCertificateUnusable(CertificateStoreError):
    """This party's own certificate would be refused by a server that trusts the CA in
    this party's own bundle: expired or not yet valid, issued by another CA, without the
    client-authentication usage, or naming another party. Found before any dial, from
    the party's own files, so the cause is certain (see :func:`check_own_certificate`)."""


class RevocationListError(CertificateStoreError):
    """The revocation list exists but does not parse; refusing to treat it as empty."""


class UnreadableRevocationList(RevocationListError):
    """The revocation list cannot be read, is not UTF-8 or is not JSON: what a file being
    written in place looks like for a moment (a hand edit that is not an atomic rename).
    :class:`PeerVerifier` bridges that with the last list it read, for a bounded time."""


class MissingRevocationList(RevocationListError, MissingCertificate):
    """The server's revocation list is missing; refusing to treat it as empty.

    ``secagg certs init`` creates an empty one; a server that revokes nothing on purpose
    passes ``allow_missing_revocations=True`` instead.
    """


class InsecureKeyFile(CertificateStoreError):
    """A private key file that group or others may read (any of the mode bits 0o077).

    Refused rather than loaded with a warning: a key other local users can read may
    already be copied, and a log line is easy to miss. ``path`` is the file; the fix is
    ``chmod 600`` on it, and the message says only that: the ``secagg`` commands offer
    no switch around it. A program embedding the loaders that cannot set the mode (a
    secret mount with fixed permissions) passes ``allow_insecure_key_permissions=True``.
    """

    def __init__(self, what: str, path: Path, mode: int) -> None:
        self.path = path
        self.mode = mode
        super().__init__(
            f"{what} at {path} has mode {mode:04o}: group or others have access to it; "
            f"run 'chmod 600 {path}'"
        )


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


def check_client_name(name: str) -> str:
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
        return self.clients_dir / f"{check_client_name(name)}.pem"

    def client_key(self, name: str) -> Path:
        return self.clients_dir / f"{check_client_name(name)}.key"


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
    #: SHA-256 of each barred certificate's signed part (:func:`signed_part_digest`)
    signed_parts: frozenset[str] = field(default_factory=frozenset)

    def refuses(self, name: str, cert_fingerprint: str, signed_part: str | None = None) -> bool:
        """Whether a certificate with this name, fingerprint and signed-part digest is
        revoked. The fingerprint is one encoding's: :func:`identify_peer` also asks
        for the other encodings of an ECDSA signature (:func:`presented_fingerprints`)."""
        return (
            name in self.names
            or cert_fingerprint in self.fingerprints
            or (signed_part is not None and signed_part in self.signed_parts)
        )

    def barring(self, certificate: x509.Certificate) -> RevocationList:
        """This list with ``certificate`` barred: its signed part (every encoding of it)
        and its fingerprint (for a server of an older release, which reads only that)."""
        return RevocationList(
            self.names,
            self.fingerprints | {fingerprint(certificate)},
            self.signed_parts | {signed_part_digest(certificate)},
        )

    def to_json(self) -> str:
        """Serialise deterministically (sorted), so that the file diffs cleanly."""
        body = {
            "format": _REVOCATION_FORMAT,
            "names": sorted(self.names),
            "signed_parts": sorted(self.signed_parts),
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
        import grpc  # imported here: only these credentials need grpcio

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
        import grpc  # imported here: only these credentials need grpcio

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
    return _URI_PREFIX + check_client_name(name)


def _as_certificate(cert: bytes | str | x509.Certificate) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode("ascii") if isinstance(cert, str) else bytes(cert)
    return x509.load_pem_x509_certificate(data)


def fingerprint(cert_pem: bytes | str | x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the DER certificate: the name of one exact certificate."""
    return _as_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def signed_part_digest(cert_pem: bytes | str | x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's signed part (``tbsCertificate``): the
    name of one certificate however it is encoded.

    Why not the fingerprint: an ECDSA signature has a twin (``s`` -> ``n - s``) anyone
    holding the certificate can compute, so one certificate has two fingerprints, and a
    certificate revoked by one was admitted again by the other (transport review,
    2026-12-07). The signed part is what the CA's signature covers, byte for byte: no
    holder changes it and still passes path validation."""
    return hashlib.sha256(_as_certificate(cert_pem).tbs_certificate_bytes).hexdigest()


#: the order of the group of each curve an ECDSA CA may sign with (the three that TLS in
#: gRPC and the X.509 verifier take: P-256, P-384, P-521), by cryptography's curve name
_CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "secp521r1": int(
        "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


def _der_element(data: bytes, offset: int) -> tuple[int, int]:
    """Where the DER element at ``offset`` keeps its value and where it ends:
    ``(value start, element end)``. Only for a certificate that parsed as DER."""
    length, start = data[offset + 1], offset + 2
    if length & 0x80:
        size = length & 0x7F
        length, start = int.from_bytes(data[start : start + size], "big"), start + size
    return start, start + length


def _der_header(tag: int, length: int) -> bytes:
    """A DER tag and length (short form under 128 bytes, else the long form)."""
    if length < 0x80:
        return bytes([tag, length])
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")


def _twin_encoding(certificate: x509.Certificate, order: int) -> bytes:
    """``certificate`` with its ECDSA signature ``(r, s)`` replaced by ``(r, order - s)``:
    the other signature the same signer's key verifies over the same signed part."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    body, _ = _der_element(der, 0)  # Certificate ::= SEQUENCE {
    _, signed_end = _der_element(der, body)  #   tbsCertificate,
    _, algorithm_end = _der_element(der, signed_end)  #   signatureAlgorithm, signatureValue }
    r, s = decode_dss_signature(certificate.signature)
    signature = encode_dss_signature(r, order - s)
    value = _der_header(0x03, len(signature) + 1) + b"\x00" + signature  # BIT STRING
    inner = der[body:algorithm_end] + value
    return _der_header(0x30, len(inner)) + inner


def presented_fingerprints(
    certificate: x509.Certificate, issuer: x509.Certificate
) -> frozenset[str]:
    """The fingerprints under which ``certificate``, signed by ``issuer`` (whose signature
    on it has been verified: path validation ran first), can be presented:
    its own, and for an ECDSA signature that of its twin (the same signed part with
    ``s`` replaced by ``n - s``, which the issuer's key verifies as well).

    Why: ECDSA signatures are malleable, and anyone holding a certificate can flip its
    ``s`` without the CA's key; TLS and the X.509 verifier accept the result, which has
    another SHA-256 fingerprint. A certificate revoked by fingerprint (``secagg certs
    issue --force`` bars the replaced one so, and lifts the name's bar) was admitted
    again with its leaked key, flipped (transport review, 2026-12-07). Revocation now
    looks at both. Raises :class:`PeerRefused` for an ECDSA issuer on a curve not
    listed in :data:`_CURVE_ORDERS` (which TLS here does not take anyway): its twin
    cannot be computed, so its revocation cannot be checked (fail closed)."""
    fingerprints = {fingerprint(certificate)}
    issuer_key = issuer.public_key()
    if isinstance(issuer_key, ec.EllipticCurvePublicKey):
        order = _CURVE_ORDERS.get(issuer_key.curve.name)
        if order is None:
            raise PeerRefused(
                f"the CA signs on the curve {issuer_key.curve.name}, on which a revoked "
                "certificate cannot be told from its twin (the same one, its signature flipped)",
                fingerprint=fingerprint(certificate),
            )
        twin = _twin_encoding(certificate, order)
        fingerprints.add(hashlib.sha256(twin).hexdigest())
    return frozenset(fingerprints)


def _unreadable(path: Path, what: str, exc: OSError) -> CertificateStoreError:
    """An OSError reading ``what`` as the module's typed error, naming the path.

    Why: a certificate folder given as a file (``--certs base.toml``) ended in ``[Errno
    20] Not a directory: 'base.toml/clients/b1.pem'``, an OSError the commands report as
    a failure (exit 1) rather than as the mistake in their options it is (CLI audit,
    2026-12-05). Missing, behind a file, or a folder: :class:`MissingCertificate`;
    unreadable (permissions): :class:`CertificateStoreError`.

    The caller raises it ``from exc``: the OSError is its ``__cause__``, by whose errno
    the commands give their exit status (``secagg.apps.commands.common.os_error_status``:
    a file the machine will not read is exit 1, not "a mistake in the options"; the
    cause was dropped, so ``--certs`` said a permission error as exit 2, path-failure
    review, 2026-12-07)."""
    if isinstance(exc, FileNotFoundError):
        return MissingCertificate(f"{what} not found at {path}")
    if isinstance(exc, NotADirectoryError):
        return MissingCertificate(
            f"{what} not found at {path}: a part of that path is a file, not a folder"
        )
    if isinstance(exc, IsADirectoryError):
        return MissingCertificate(f"{what} not found at {path}: that is a folder, not a file")
    if isinstance(exc, PermissionError):
        return CertificateStoreError(f"{what} at {path} cannot be read: permission denied")
    return CertificateStoreError(f"{what} at {path} cannot be read: {exc.strerror or exc}")


#: the largest certificate file read: a PEM certificate is a few KB (a chain, tens); a
#: file past this is not one, and is refused rather than read whole
MAX_CERTIFICATE_BYTES = 1024 * 1024
#: the largest private key file read (a PEM EC or RSA key is a few KB)
MAX_KEY_FILE_BYTES = 1024 * 1024
#: the largest revocation list read: a JSON list of names and fingerprints, about 100
#: bytes a revoked certificate, so some 600 000 of them
MAX_REVOCATION_BYTES = 64 * 1024 * 1024


def _read(path: Path, what: str, max_bytes: int = MAX_CERTIFICATE_BYTES) -> bytes:
    """The bytes of ``what`` at ``path`` through one open
    (:func:`secagg.durable.read_regular_file`): a named pipe, a device or a socket, or a
    file past ``max_bytes``, is :class:`CertificateStoreError` (one line), before a byte
    is read.

    Why one open: the command line checked the certificate files (``--certs``) and this
    reopened them, so a file swapped for a named pipe in between blocked the party's
    start forever (it waits for a writer); checked here, on the descriptor read."""
    try:
        return read_regular_file(path, max_bytes, f"the {what}")
    except OSError as exc:  # its cause kept: the commands' exit status is the errno's
        raise _unreadable(path, what, exc) from exc
    except (NotARegularFile, FileTooLarge) as exc:
        raise CertificateStoreError(str(exc)) from None


def load_certificate_file(path: Path, what: str) -> x509.Certificate:
    """Read a PEM certificate; ``what`` names it in the error if it is missing or garbled."""
    return _certificate_and_bytes(path, what)[0]


def _certificate_and_bytes(path: Path, what: str) -> tuple[x509.Certificate, bytes]:
    """The PEM certificate at ``path`` and the file's bytes, from ONE read.

    Why: a party's credentials checked the certificate read once (against its key, and
    the CA) and handed gRPC the file read again, so a certificate swapped in between was
    served unchecked; the bytes served are now those checked."""
    data = _read(path, what)  # outside the try: MissingCertificate is a ValueError too
    try:
        return x509.load_pem_x509_certificate(data), data
    except ValueError as exc:
        raise CertificateStoreError(f"{what} at {path} is not a PEM certificate") from exc


def load_ca_certificate(path: Path) -> x509.Certificate:
    """Read the federation's CA certificate (``ca.pem``): exactly one PEM certificate.

    A file holding more than one is refused (:class:`CertificateStoreError`, one line),
    not read as a bundle. Why one CA and not a bundle: the CA is the federation's one
    authority on identity (whoever holds its key mints branches, and in the active
    variant protocol identities), and a bundle trusts the union of its CAs for as long
    as the file is left as it is. The usual reason to add a second CA is a rotation,
    often because the old key is suspect: a bundle keeps that key trusted, silently,
    until someone remembers to take it out. Before, only the first certificate was read
    (and handed to gRPC), so a rotation bundle trusted only the old CA, with no word;
    a rotation is instead a cut-over (docs/deployment.md: "Rotating the CA"). The
    certificate must also be a CA certificate (basic constraints ``cA``), so a leaf
    copied over ``ca.pem`` by mistake is named, not refused later as "another CA"."""
    return _one_ca(_read(path, "CA certificate"), f"CA certificate at {path}")


def _one_ca(ca: bytes | str | x509.Certificate, what: str) -> x509.Certificate:
    """The one CA certificate in ``ca`` (PEM, or a certificate already read), refused
    (:class:`CertificateStoreError`, one line starting with ``what``) if it holds
    another number of certificates or one that is not a CA's: the rule of
    :func:`load_ca_certificate`, also for a CA handed over in memory
    (:func:`identify_peer`), which read only the first certificate of a bundle."""
    if isinstance(ca, x509.Certificate):
        found = [ca]
    else:
        data = ca.encode("ascii", "replace") if isinstance(ca, str) else bytes(ca)
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateStoreError(f"{what} is not a PEM certificate") from exc
    if len(found) != 1:
        raise CertificateStoreError(
            f"{what} holds {len(found)} certificates; a federation trusts "
            "exactly one CA: keep only the current one (a CA rotation is a cut-over, see "
            "'Rotating the CA' in docs/deployment.md)"
        )
    only = found[0]
    try:
        is_ca = only.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateStoreError(
            f"{what} is not a CA certificate (no basic constraints cA=true): "
            "a party's own certificate copied over ca.pem?"
        )
    return only


def _read_key_bytes(path: Path, what: str, *, allow_insecure_key_permissions: bool) -> bytes:
    """The key file's bytes, refused (:class:`InsecureKeyFile`) if group or others may
    read it. The mode is taken from the open file (``fstat``), so the bytes returned are
    those of the file that was checked, even if the path is swapped in between."""
    try:
        with opened_regular_file(path, f"the {what}") as fd:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                if not allow_insecure_key_permissions:
                    raise InsecureKeyFile(what, path, mode)
                logger.warning(
                    "%s at %s has mode %04o (group or others may read it), loaded because "
                    "allow_insecure_key_permissions=True; chmod 600 it",
                    what,
                    path,
                    mode,
                )
            data = read_at_most(fd, MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:  # its cause kept (an OSError holds no key bytes)
        raise _unreadable(path, what, exc) from exc
    except NotARegularFile as exc:
        raise CertificateStoreError(str(exc)) from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise CertificateStoreError(
            f"{path} is larger than {size_words(MAX_KEY_FILE_BYTES)}: too large for the "
            f"{what} (is it the right file?)"
        )
    return data


def load_private_key_file(
    path: Path, what: str, *, allow_insecure_key_permissions: bool = False
) -> ec.EllipticCurvePrivateKey:
    """Read an unencrypted PEM ECDSA key from a file only its owner may read.

    A file with any group or other permission bit raises :class:`InsecureKeyFile` (the
    message says ``chmod 600 <file>``) before its content is parsed;
    ``allow_insecure_key_permissions=True`` loads it with a warning instead."""
    return _load_key(path, what, allow_insecure_key_permissions=allow_insecure_key_permissions)[1]


def _load_key(
    path: Path, what: str, *, allow_insecure_key_permissions: bool
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """The key file's PEM bytes and the key, from one read: the credentials hand gRPC
    exactly the bytes whose mode and key pair were checked, not a second read."""
    data = _read_key_bytes(
        path, what, allow_insecure_key_permissions=allow_insecure_key_permissions
    )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The message of the underlying error is dropped on purpose: never echo key bytes.
        raise CertificateStoreError(f"{what} at {path} is not an unencrypted PEM key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateStoreError(f"{what} at {path} is not an ECDSA key")
    return data, key


def check_key_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, what: str) -> None:
    """Refuse a key that does not belong to its certificate; gRPC's own error is cryptic."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        raise CertificateStoreError(f"{what}: the private key does not match the certificate")


# --- revocation -------------------------------------------------------------------------


def _parse_revocations(text: str, where: str) -> RevocationList:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableRevocationList(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != _REVOCATION_FORMAT:
        raise RevocationListError(f"{where} is not a {_REVOCATION_FORMAT} document")
    names, fps = body.get("names", []), body.get("fingerprints", [])
    signed = body.get("signed_parts", [])  # absent from lists written before it
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
    if not isinstance(signed, list) or not all(
        isinstance(f, str) and _FINGERPRINT.fullmatch(f) for f in signed
    ):
        raise RevocationListError(
            f"{where}: 'signed_parts' must be a list of lower-case hex SHA-256 digests"
        )
    return RevocationList(frozenset(names), frozenset(fps), frozenset(signed))


def load_revocations(source: Path | str, *, missing_ok: bool = True) -> RevocationList:
    """Read the revocation list from a CA directory or a JSON file path.

    A missing file means nothing is revoked when ``missing_ok`` (a branch machine, or the CA
    tooling before its first revocation), and raises :class:`MissingRevocationList`
    otherwise (the server: see the module docstring). A file that exists but does not
    parse raises :class:`RevocationListError` rather than failing open.
    """
    path = Path(source)
    if path.is_dir():
        path = CaLayout(path).revocations
    try:
        raw = read_regular_file(path, MAX_REVOCATION_BYTES, "a revocation list")
    except (NotARegularFile, FileTooLarge) as exc:  # a named pipe blocked the read forever
        raise UnreadableRevocationList(f"revocation list: {exc}") from None
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError | NotADirectoryError):  # there, unreadable
            raise UnreadableRevocationList(
                f"revocation list at {path} cannot be read: {exc.strerror or exc}"
            ) from exc
        if not missing_ok:
            raise MissingRevocationList(
                f"revocation list not found at {path}: a server needs one ('secagg certs "
                "init' writes an empty list), or allow_missing_revocations=True to revoke "
                "nothing on purpose"
            ) from None
        return RevocationList()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableRevocationList(f"{path} is not UTF-8") from exc
    return _parse_revocations(text, str(path))


# --- credentials for gRPC ---------------------------------------------------------------


def load_server_credentials(
    directory: Path | str, *, allow_insecure_key_permissions: bool = False
) -> ServerCredentials:
    """The server's key, certificate and the CA root, checked to belong together.

    A key file that group or others may read is refused (:class:`InsecureKeyFile`)
    unless ``allow_insecure_key_permissions`` (see :func:`load_private_key_file`)."""
    layout = CaLayout(Path(directory))
    cert, chain = _certificate_and_bytes(layout.server_cert, "server certificate")
    pem, key = _load_key(
        layout.server_key,
        "server private key",
        allow_insecure_key_permissions=allow_insecure_key_permissions,
    )
    check_key_pair(cert, key, "server")
    ca = load_ca_certificate(layout.ca_cert)
    return ServerCredentials(
        private_key=pem,
        certificate_chain=chain,
        root_certificates=ca.public_bytes(serialization.Encoding.PEM),
    )


def _first_existing(candidates: Iterable[Path], what: str) -> Path:
    """The first of ``candidates`` that exists; none: :class:`MissingCertificate` naming
    every place looked at. Why: a branch's bundle without its key read "not found at
    DIR/clients/NAME.key", the CA directory's layout, not the bundle's own ``NAME.key``;
    and a folder that does not exist was not said to be missing."""
    paths = list(candidates)
    for path in paths:
        if path.exists():
            return path
    folder = paths[0].parent.parent
    if not folder.exists():
        raise MissingCertificate(f"{what}: the folder {folder} does not exist")
    if not folder.is_dir():  # a file given for the folder: its read says so
        return paths[0]
    looked = " nor ".join(str(path) for path in paths)
    raise MissingCertificate(f"{what} not found at {looked}")


def check_own_certificate(
    cert: x509.Certificate,
    ca: x509.Certificate,
    name: str,
    where: Path,
    *,
    now: dt.datetime | None = None,
) -> None:
    """Refuse (:class:`OwnCertificateUnusable`) a party's own certificate that a server
    trusting ``ca`` would refuse: the same RFC 5280 path validation the server runs
    (:func:`identify_peer`: ``ca`` as the only anchor, valid now, end entity, client
    authentication, CN equal to its SAN), and a CN equal to ``name``.

    Why here, before any dial: with TLS 1.3 a server that refuses a client certificate
    hangs up after the client's handshake is done, without a TLS alert, so the client
    hears only "Socket closed" and can only infer the refusal (two such closes in a row,
    see ``grpc_transport.ClosedAfterHandshake``), which a server dying during both
    handshakes imitates. The usual causes (another CA's certificate, an expired one)
    are visible in the party's own files, with certainty: in this federation's layout
    the ``ca.pem`` beside the certificate is the CA the server trusts."""
    moment = now or _now()
    if moment < cert.not_valid_before_utc:
        raise OwnCertificateUnusable(
            f"certificate of client {name!r} at {where} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (this machine's clock reads "
            f"{moment:%Y-%m-%d %H:%M} UTC): check the clock, or wait"
        )
    if moment > cert.not_valid_after_utc:
        raise OwnCertificateUnusable(
            f"certificate of client {name!r} at {where} expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: the server refuses it; issue a "
            "new one (secagg certs issue NAME --force)"
        )
    try:
        identity = _identify(cert, ca, RevocationList(), None, moment)
    except PeerRefused as refusal:
        raise OwnCertificateUnusable(
            f"certificate of client {name!r} at {where} would be refused by a server that "
            f"trusts the ca.pem beside it: {refusal.reason} (issued by another CA?)"
        ) from None
    if identity.name != name:
        raise OwnCertificateUnusable(
            f"certificate at {where} names {identity.name!r}, not {name!r}"
        )


def load_client_credentials(
    directory: Path | str,
    name: str,
    *,
    ca: Path | str | None = None,
    certificate: Path | str | None = None,
    key: Path | str | None = None,
    allow_insecure_key_permissions: bool = False,
    check_self: bool = False,
) -> ClientCredentials:
    """A branch's key, certificate and the CA root, checked to belong together.

    ``directory`` is either the CA directory (files in ``clients/``) or a branch's own bundle
    directory holding ``ca.pem``, ``<name>.pem`` and ``<name>.key``; explicit paths win.
    A key file that group or others may read is refused (:class:`InsecureKeyFile`)
    unless ``allow_insecure_key_permissions`` (see :func:`load_private_key_file`).
    ``check_self`` also refuses a certificate the server would refuse
    (:func:`check_own_certificate`): the parties that dial set it; tests that present
    a refused certificate on purpose leave it off.
    """
    check_client_name(name)
    base = Path(directory)
    layout = CaLayout(base)
    ca_path = Path(ca) if ca is not None else layout.ca_cert
    cert_path = (
        Path(certificate)
        if certificate is not None
        else _first_existing(
            [layout.client_cert(name), base / f"{name}.pem"], f"certificate of client {name!r}"
        )
    )
    cert, chain = _certificate_and_bytes(cert_path, f"certificate of client {name!r}")
    key_path = (
        Path(key)
        if key is not None
        else _first_existing(
            [layout.client_key(name), base / f"{name}.key"], f"private key of client {name!r}"
        )
    )
    pem, private = _load_key(
        key_path,
        f"private key of client {name!r}",
        allow_insecure_key_permissions=allow_insecure_key_permissions,
    )
    check_key_pair(cert, private, f"client {name!r}")
    root = load_ca_certificate(ca_path)
    if check_self:
        check_own_certificate(cert, root, name, cert_path)
    return ClientCredentials(
        name=name,
        root_certificates=root.public_bytes(serialization.Encoding.PEM),
        private_key=pem,
        certificate_chain=chain,
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


#: the most characters of the verifier's reason a refusal keeps (its own sentences are
#: under 100; a SAN it quotes is the peer's and may be as long as the certificate)
_MAX_VALIDATION_DETAIL = 300


def _path_validation_detail(error: Exception) -> str:
    """The verifier's reason, without its prefix and its repr of the certificate, with
    every character that is not printable escaped as in a ``repr`` (``\\n``, ``\\x1b``,
    ``\\u202e``) and cut to :data:`_MAX_VALIDATION_DETAIL` characters.

    Why escaped: the reason can quote the peer's certificate. Under a CA with DNS name
    constraints (a deployment's own PKI), a certificate that CA signed with a SAN that is
    no DNS name is refused with "unsatisfiable DNS name constraint: malformed SAN
    <the SAN as written>", and that went into the server's "refused peer" WARNING as it
    was: a newline in the SAN forged a second log line, an ANSI escape painted the
    operator's terminal (transport review, 2026-12-06). The certificate's repr that the
    verifier appends (its subject, as written) is cut off before that."""
    text = str(error).removeprefix("validation failed: ")
    text = text.split(" (encountered processing", 1)[0]
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(escaped) > _MAX_VALIDATION_DETAIL:
        escaped = escaped[: _MAX_VALIDATION_DETAIL - 3] + "..."
    return escaped


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

    # Full RFC 5280 path validation with our CA as the only trust anchor: the CA's signature,
    # the validity period at ``now``, an end-entity certificate (not a CA), the clientAuth
    # extended key usage, and no critical extension the verifier does not understand.
    verifier = PolicyBuilder().store(Store([ca])).time(now).build_client_verifier()
    try:
        verified = verifier.verify(cert, [])
    except VerificationError as exc:  # malformed extensions end up here too
        reason = f"certificate fails X.509 path validation: {_path_validation_detail(exc)}"
        raise PeerRefused(reason, fingerprint=fp) from exc

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not isinstance(cns[0].value, str):
        raise PeerRefused("certificate must carry exactly one common name", fingerprint=fp)
    name = cns[0].value
    if not CLIENT_NAME_PATTERN.fullmatch(name):
        raise PeerRefused("certificate common name is not a client name", fingerprint=fp)
    if x509.UniformResourceIdentifier(client_uri(name)) not in (verified.subjects or []):
        raise PeerRefused(
            "certificate SAN does not match its common name", name=name, fingerprint=fp
        )

    if _revoked(revoked, name, cert, ca):
        raise PeerRefused("certificate or name revoked", name=name, fingerprint=fp)
    if allowed is not None and name not in allowed:
        raise PeerRefused("unknown client name", name=name, fingerprint=fp)
    return ClientIdentity(name=name, fingerprint=fp, not_valid_after=cert.not_valid_after_utc)


def _revoked(
    revoked: RevocationList, name: str, cert: x509.Certificate, ca: x509.Certificate
) -> bool:
    """Whether ``cert`` (path-validated against ``ca``) is barred by ``revoked``: by its
    name, its signed part, or a fingerprint of any encoding of it. The twin of an ECDSA
    signature is computed only when the list holds fingerprints: a list of signed parts
    needs no knowledge of the CA's curve."""
    if revoked.refuses(name, fingerprint(cert), signed_part_digest(cert)):
        return True
    if not revoked.fingerprints:
        return False
    return not revoked.fingerprints.isdisjoint(presented_fingerprints(cert, ca))


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
    The certificate must pass RFC 5280 path validation with ``ca_pem`` as the only trust
    anchor (signature, validity period at ``now``, end entity, clientAuth usage), carry a CN
    equal to its ``urn:secagg:client:`` SAN, and be neither revoked (by name, signed part
    or fingerprint) nor, when ``allowed`` is given, outside that roster of names.

    ``ca_pem`` is held to the rule of ``ca.pem`` (:func:`load_ca_certificate`): exactly
    one CA certificate. A PEM bundle given here was read as its first certificate, so
    the anchor trusted depended on the order of the bundle, with no word.
    """
    ca = _one_ca(ca_pem, "the CA certificate given")
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
    few hundred bytes), so ``secagg certs revoke`` takes effect without restarting the server
    (and, since the transport re-identifies open sessions, ends a revoked branch's session).
    If the list becomes unreadable, calls raise :class:`RevocationListError`: fail closed,
    but not at once. A list that cannot be read, is missing or is not JSON
    (:class:`UnreadableRevocationList`, :class:`MissingRevocationList`) is what a hand edit
    that rewrites the file in place looks like for a moment; failing closed at once ended
    every open session and the round in flight (transport review, 2026-12-05). So for up
    to ``revocation_grace`` seconds from the first such read the last list that read is
    used (logged at WARNING once; every call reads again, so the first good read ends
    it), and after that every call raises. Nothing is lost by it: that list is the one
    in force until the edit began. A list that parses as JSON but is not a revocation
    list (another document put in its place) raises at once, and forgets the last good
    list, so no grace follows it. At construction there is no last good list: an
    unreadable list at start is fatal.

    The list must exist: construction raises :class:`MissingRevocationList` without it, so a
    server with a misplaced list fails at start-up rather than admitting everyone, and a list
    deleted later refuses every peer. ``allow_missing_revocations=True`` reads a missing list
    as empty instead, for a deployment that revokes nothing on purpose.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        allowed: Collection[str] | None = None,
        allow_missing_revocations: bool = False,
        revocation_grace: float = REVOCATION_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not revocation_grace >= 0:
            raise ConfigurationError("revocation_grace must be zero or more seconds")
        self._layout = CaLayout(Path(directory))
        self._ca = load_ca_certificate(self._layout.ca_cert)
        self._allowed = frozenset(allowed) if allowed is not None else None
        self._missing_ok = allow_missing_revocations
        self._grace = revocation_grace
        self._clock = clock
        self._lock = threading.Lock()
        self._last_good: RevocationList | None = None
        self._unreadable_since: float | None = None  # first failed read of this episode
        self._revocations()  # fail at start-up, not at the first connection

    def _revocations(self) -> RevocationList:
        """The list in force: read now, or the last good one while a read failure is
        younger than the grace (see the class docstring)."""
        path = self._layout.revocations
        try:
            current = load_revocations(path, missing_ok=self._missing_ok)
        except (UnreadableRevocationList, MissingRevocationList) as exc:
            with self._lock:
                if self._last_good is None or self._grace == 0:
                    raise
                now = self._clock()
                first = self._unreadable_since is None
                if first:
                    self._unreadable_since = now
                assert self._unreadable_since is not None
                if now - self._unreadable_since >= self._grace:
                    raise RevocationListError(
                        f"{exc} (for {self._grace:g} s or more: failing closed)"
                    ) from exc
                if first:
                    logger.warning(
                        "%s; using the last list read for less than %g s, then every "
                        "peer is refused",
                        exc,
                        self._grace,
                    )
                return self._last_good
        except RevocationListError:
            with self._lock:
                self._last_good = None  # not a revocation list: no grace follows it
                self._unreadable_since = None
            raise
        with self._lock:
            if self._unreadable_since is not None:
                logger.info("revocation list at %s reads again", path)
            self._last_good = current
            self._unreadable_since = None
        return current

    def identify(self, peer: Mapping[str, Any] | bytes | str | x509.Certificate) -> ClientIdentity:
        """Identify a peer against the CA, the current revocation list and the roster."""
        return identify_peer(peer, self._ca, self._revocations(), allowed=self._allowed)
