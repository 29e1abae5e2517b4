"""A development certificate authority for a federation (``secagg certs init | issue | revoke``).

``init_ca`` creates the CA in a directory, together with the aggregation server's
certificate; ``issue_client`` adds one certificate per bank branch; ``revoke`` bars a branch
(or one of its certificates) without re-keying anybody else. Everything a new user needs to
run a secured federation on one machine is therefore two commands away, and nothing here
talks to the network. The directory layout and the revocation list format are those the
library reads (:mod:`secagg.transport.certs`).

Keys are ECDSA over P-256 and every signature is ECDSA-SHA256: it is the key type that every
TLS stack, BoringSSL inside grpcio included, accepts for both server and client certificates
in TLS 1.2 and 1.3 (Ed25519 certificates are not universally accepted in TLS handshakes).
Private keys are written unencrypted (gRPC cannot take a passphrase) with mode 0600, through
a temporary file and an atomic rename, so that a crash never leaves half a key behind. This is
a *development* CA: a production deployment keeps the CA key offline or in an HSM (or uses
step-ca, cfssl, Vault) and the library only reads the result.

``revoke(dir, name)`` adds the name and the branch's current certificate (its signed part
and its fingerprint). Re-issuing a revoked name (``issue_client(..., force=True)``) lifts the
name bar but keeps the old certificate barred: the branch gets back in with a fresh key, the
leaked one stays out; an old certificate that cannot be read (deleted, corrupted) cannot be
barred, so that re-issue is refused (:class:`ReplacedCertificateUnknown`).
Both refuse a CA folder whose revocation list is missing (:class:`LostRevocationList`):
``init_ca`` writes one, so a missing list was lost, and a new one would re-admit every
branch it barred.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secagg.durable import write_atomically
from secagg.errors import ConfigurationError
from secagg.transport.certs import (
    CLIENT_NAME_PATTERN,
    CaLayout,
    CertificateStoreError,
    MissingRevocationList,
    RevocationList,
    check_client_name,
    check_key_pair,
    client_uri,
    fingerprint,
    load_ca_certificate,
    load_certificate_file,
    load_private_key_file,
    load_revocations,
)
from secagg.transport.names import BadServerName, certificate_name, ip_name

__all__ = [
    "CA_VALIDITY_DAYS",
    "LEAF_VALIDITY_DAYS",
    "CertificateExists",
    "ClientRevoked",
    "InitializedCA",
    "IssuedCertificate",
    "LostRevocationList",
    "ReplacedCertificateUnknown",
    "UnknownClient",
    "init_ca",
    "issue_client",
    "issued_clients",
    "revoke",
]

logger = logging.getLogger(__name__)

CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365
# Backdate notBefore so that a peer whose clock is a few minutes behind still accepts a
# certificate issued a moment ago (the classic "certificate not yet valid" on a fresh setup).
_BACKDATE = dt.timedelta(minutes=5)


class CertificateExists(CertificateStoreError):
    """Refused to overwrite a CA or a client certificate; ``force=True`` replaces it.

    Messages name the CLI's ``--force`` (what the person reading them typed, or will type).

    Overwriting a CA invalidates every certificate of the federation, so it is never implicit.
    """


class ClientRevoked(CertificateStoreError):
    """Refused to issue a certificate to a revoked name without ``force=True``."""


class UnknownClient(CertificateStoreError):
    """Refused to revoke a name that has no certificate here and is not revoked already.

    A typo in ``secagg certs revoke`` must not report success while the branch it meant
    stays admitted; ``force=True`` (``--force``) records the name anyway, for a
    certificate deleted here that may still be out there."""


class ReplacedCertificateUnknown(CertificateStoreError):
    """``issue --force`` refused: the certificate it would replace cannot be read (its
    file deleted or corrupted), so it could not be barred, and lifting the name's bar
    would re-admit it (see :func:`issue_client`)."""


class UnbarrableCertificate(CertificateStoreError):
    """``revoke`` refused: a file at the name's certificate path that does not read as
    a certificate (no permission, an I/O error, a corrupt file, a folder, a link to
    nothing), so the certificate cannot be barred by itself; ``force=True`` bars the
    name alone. Its cause, when there is one, is the OSError of the read: the CLI says
    a file the machine refused with exit 1, any other with exit 2, naming ``--dir``."""


class LostRevocationList(MissingRevocationList):
    """A CA folder whose revocation list is gone: refused, never started again empty.

    Why: :func:`init_ca` writes the list and the server refuses to start without one ("a
    missing list is an error, never 'nothing revoked'", docs/deployment.md), but
    :func:`revoke` and :func:`issue_client` read a missing list as empty. After the list
    was lost (deleted, a restore without it), ``secagg certs revoke b2`` wrote a new list
    holding b2 alone, and the server, starting again, admitted every branch revoked
    before, a leaked key included; ``certs issue`` re-issued a revoked name without
    ``--force`` (hostile CLI review, 2026-12-06)."""


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


# --- writing files and building certificates --------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` through :func:`secagg.durable.write_atomically`
    (a 0600 temporary file, fsync, rename, fsync of the folder): a key is never readable
    by others, not even for an instant, whatever the umask, and a crash leaves the old
    file or the new one. This copy of the rule did not fsync the folder, so a power cut
    could undo a rename it had reported done."""
    write_atomically(path, data, mode=mode)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


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


def _refusal(raw: str, exc: BadServerName) -> str:
    """``certs init``'s one line for a server name no certificate can carry."""
    if exc.kind == "zone":
        return (
            f"server name {raw!r}: a zone (%{exc.zone}) names this machine's interface, "
            "not an address a certificate carries; give the address without it"
        )
    if exc.kind == "ipv4":
        return (
            f"server name {raw!r} is not an IPv4 address (four numbers 0-255, no leading "
            "zeros), and a host name's last label is never all digits"
        )
    return f"server name {raw!r} is neither an IP address nor a host"


def _server_sans(server_names: Sequence[str]) -> list[x509.GeneralName]:
    """IP literals become IP SANs (what gRPC matches for ``127.0.0.1``), the rest DNS SANs.

    An IPv6 literal may come bracketed (``[::1]``, as in a URL or ``--server HOST:PORT``),
    the spelling ``secagg client --server-name`` also takes; it was refused here as
    "neither an IP address nor a host". A zone (``fe80::1%eth0``) names an interface of
    one machine, not an address a certificate can carry: it is refused, as the client's
    flag refuses it, rather than silently dropped from the SAN.

    A name given twice (``::1`` and ``[0:0:0:0:0:0:0:1]``, ``FL.bank`` and
    ``fl.bank.``) is one SAN, the first: the certificate carried it once per spelling
    (review, 2026-12-05)."""
    if isinstance(server_names, str) or not server_names:
        raise ConfigurationError("server_names must be a non-empty sequence of names")
    sans: list[x509.GeneralName] = []
    for raw in server_names:
        try:
            name = certificate_name(raw)
        except BadServerName as exc:
            raise ConfigurationError(_refusal(raw, exc)) from None
        san: x509.GeneralName = (
            x509.DNSName(name.lower()) if isinstance(name, str) else x509.IPAddress(name)
        )
        if san not in sans:  # GeneralNames compare by value: ::1 is [0:0:0:0:0:0:0:1]
            sans.append(san)
    return sans


#: RFC 5280's upper bound on a common name (ub-common-name), which ``cryptography`` enforces
MAX_COMMON_NAME = 64
#: the server certificate's common name when no name it carries fits in one
FALLBACK_SERVER_COMMON_NAME = "secagg federation server"


def _server_common_name(sans: Sequence[x509.GeneralName]) -> str:
    """The server certificate's common name: the first carried name of at most
    :data:`MAX_COMMON_NAME` characters, an address in gRPC's spelling (inet_ntop's:
    ``::ffff:10.0.0.5``, not Python 3.11's ``::ffff:a00:5``, the one a party's
    ``--server-name`` is compared in), else :data:`FALLBACK_SERVER_COMMON_NAME`.

    Why not always the first name: a host name may have 253 characters, a common name
    64, so ``certs init --server-name`` with a valid 74-character name ended in a
    ``ValueError`` traceback from ``cryptography`` (hostile CLI review, 2026-12-06).
    TLS checks the subject alternative names, which carry every name in full; the
    common name is only what a reader of the certificate sees."""
    for san in sans:
        name = (
            ip_name(str(san.value)) or str(san.value)
            if isinstance(san, x509.IPAddress)
            else str(san.value)
        )
        if len(name) <= MAX_COMMON_NAME:
            return name
    return FALLBACK_SERVER_COMMON_NAME


def server_names_carried(server_names: Sequence[str]) -> list[str]:
    """The names a server certificate for ``server_names`` carries, once each, an address
    in gRPC's spelling (:func:`~secagg.transport.names.ip_name`): what ``secagg certs
    init`` says it made (it listed the names as given, ``::1`` and ``0:0:0:0:0:0:0:1``
    as two)."""
    return [
        ip_name(str(san.value)) or str(san.value)
        if isinstance(san, x509.IPAddress)
        else str(san.value)
        for san in _server_sans(server_names)
    ]


def _load_ca(layout: CaLayout) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA's certificate and key, read by the rule every party reads ``ca.pem`` by
    (:func:`~secagg.transport.certs.load_ca_certificate`: exactly one CA certificate).

    Why the one rule: this read only the first certificate of ``ca.pem``, so after a
    bundle (the old and the new CA) was put there, ``certs issue`` went on signing
    with whichever came first while the server refused the file; now both refuse it
    in the same line naming the file, before anything is written."""
    cert = load_ca_certificate(layout.ca_cert)
    key = load_private_key_file(layout.ca_key, "CA private key")
    check_key_pair(cert, key, "CA")
    return cert, key


# --- creating the CA and issuing certificates -------------------------------------------


def _check_kinds(layout: CaLayout) -> None:
    """Refuse a CA folder whose ``clients`` is not a folder or whose revocation list is
    not a file, before :func:`init_ca` writes or removes anything.

    Why: ``certs init --force`` with a file named ``clients`` wrote the new CA, the
    server's certificate and an empty revocation list and then failed ("File exists:
    .../clients", exit 2): the operator read an error while the old CA and every
    certificate it issued were gone; without ``--force``, a ``revoked.json`` folder was
    kept as the list, which no server reads (hostile CLI review, 2026-12-06)."""
    for path, want in ((layout.clients_dir, "folder"), (layout.revocations, "file")):
        if path.exists() and path.is_dir() != (want == "folder"):
            have = "a folder" if path.is_dir() else "not a folder"
            raise ConfigurationError(
                f"{path} is {have}, where the CA keeps its "
                f"{'client certificates' if want == 'folder' else 'revocation list'} (a "
                f"{want}): move it away, nothing was written"
            )


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

    ``server_names`` are the host names and IP addresses clients will dial; the first one
    of at most 64 characters is also the server certificate's CN (display only: TLS checks
    the subject alternative names, which carry them all). With ``force=True`` an existing
    CA is replaced, and because that makes every old certificate worthless, the old client
    certificates and the revocation list are deleted too (a new CA starts a new federation).
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
            "use --force to replace it and invalidate every certificate it issued"
        )
    _check_kinds(layout)  # before anything is written or removed
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
    cn = _server_common_name(sans)
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
    re-admits the branch while its old certificate stays barred (by its signed part and
    its fingerprint). ``force=True`` is refused (:class:`ReplacedCertificateUnknown`,
    nothing written) when the certificate it replaces cannot be read: its file corrupted,
    or deleted while its key or the name's bar says it existed.
    """
    check_client_name(name)
    if validity_days < 1:
        raise ConfigurationError("validity must be at least one day")
    layout = CaLayout(Path(directory))
    ca_cert, ca_key = _load_ca(layout)
    cert_path, key_path = layout.client_cert(name), layout.client_key(name)
    for path in (cert_path, key_path):
        # else the key was replaced and the certificate's write failed naming its temporary
        # file ("Is a directory: clients/.b7.pem.4fm56ry9.tmp"): a new key beside the old
        # certificate, after an error (hostile CLI review, 2026-12-06)
        if path.is_dir():
            raise ConfigurationError(
                f"{path} is a folder, where {name}'s {'key' if path == key_path else 'certificate'}"
                " goes: move it away, nothing was written"
            )
    revoked = _revocations(layout)
    if not force:
        if name in revoked.names:
            raise ClientRevoked(f"client {name!r} is revoked; use --force to re-admit it")
        if cert_path.exists() or key_path.exists():
            raise CertificateExists(
                f"client {name!r} already has a certificate; use --force to re-issue it"
            )
    if force:
        # The replaced certificate stays valid for the TLS layer until it expires, so bar it.
        revoked = _bar_replaced(layout, name, revoked)

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
        updated = RevocationList(revoked.names - {name}, revoked.fingerprints, revoked.signed_parts)
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


def _bar_replaced(layout: CaLayout, name: str, revoked: RevocationList) -> RevocationList:
    """``revoked`` with the certificate ``issue --force`` replaces for ``name`` barred, or
    :class:`ReplacedCertificateUnknown` if there was one that cannot be read.

    Why: re-issuing lifts the name's bar, and the old certificate, valid for TLS until it
    expires, stays out only by its own entry. That entry was written only if the old
    file read (``contextlib.suppress``): with the file deleted or corrupted, ``--force``
    re-admitted the name and left the old certificate (a leaked key's, once revoked by
    name) admitted with it (certificate review, 2026-12-07). A certificate nobody can
    read cannot be barred by what the list knows (its signed part, its fingerprint), so
    the command refuses, nothing written, unless nothing says there was one: no file,
    no key, and the name not barred (a first issue with ``--force``)."""
    cert_path, key_path = layout.client_cert(name), layout.client_key(name)
    keep = (
        "restore it from a backup, or issue the branch under another name "
        "(a barred name stays barred)"
    )
    if cert_path.exists():
        try:
            old = load_certificate_file(cert_path, "the old certificate")
        except CertificateStoreError as exc:
            raise ReplacedCertificateUnknown(
                f"client {name!r} not re-issued: {exc}, so it cannot be barred, and "
                f"--force would leave it admitted; {keep}"
            ) from exc  # its cause kept: a file the machine refuses is exit 1
        return revoked.barring(old)
    if name in revoked.names:
        raise ReplacedCertificateUnknown(
            f"client {name!r} not re-issued: it is revoked by name and its certificate is "
            f"not at {cert_path}, so --force would lift the name's bar and re-admit that "
            f"certificate, which cannot be barred without it; {keep}"
        )
    if key_path.exists():
        raise ReplacedCertificateUnknown(
            f"client {name!r} not re-issued: its key is at {key_path} but its certificate "
            f"is not at {cert_path}, so the certificate --force replaces cannot be barred "
            f"and would stay admitted; {keep}"
        )
    return revoked


def issued_clients(directory: Path | str) -> frozenset[str]:
    """Names that have a certificate in ``clients/``: the roster ``allowed`` can be set to.

    A ``NAME.pem`` that is a symbolic link to nothing is left out, with a warning naming
    it: counted, it put in the roster a name whose certificate the CA can no longer show
    or bar by fingerprint (a file moved to a disk not mounted), so any CA-signed
    certificate of that name was admitted, and ``revoke`` listed it as issued, all
    without a word (review leftover, 2026-12-07).
    """
    clients_dir = CaLayout(Path(directory)).clients_dir
    if not clients_dir.is_dir():
        return frozenset()
    names = set()
    for path in clients_dir.glob("*.pem"):
        if not CLIENT_NAME_PATTERN.fullmatch(path.stem):
            continue
        dangling = _link_to_nothing(path)
        if dangling is not None:
            logger.warning("%s: %r is not counted as issued", dangling, path.stem)
            continue
        names.add(path.stem)
    return frozenset(names)


# --- revocation -------------------------------------------------------------------------


def _revocations(layout: CaLayout) -> RevocationList:
    """The CA's revocation list, which must be there (:class:`LostRevocationList`)."""
    try:
        return load_revocations(layout.directory, missing_ok=False)
    except MissingRevocationList:
        raise LostRevocationList(
            f"the revocation list {layout.revocations} is missing (certs init wrote it): "
            "restore it from a backup, since a new list would admit every branch it "
            "revoked; a CA that never revoked anything can restore it empty, "
            '{"format": "secagg-revocations/1", "names": [], "fingerprints": []}'
        ) from None


def _link_to_nothing(path: Path) -> str | None:
    """What is at ``path`` when it is a symbolic link that leads to no file (a link to
    a file that is gone, or a loop of links), in words; None otherwise."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except FileNotFoundError:
        return f"{path} is a link to {os.readlink(path)}, which does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror or type(exc).__name__}"
    return None


def _unbarrable(exc: CertificateStoreError, name: str) -> str:
    """``revoke``'s refusal of a certificate file that does not read, with the advice
    that helps: for a file the machine refused (no permission, an I/O error: the
    certificate intact) to let the command read it and revoke again, which bars the
    certificate itself; for any other (corrupt, a folder) ``--force``, the name's bar.

    Why: both read "it cannot be barred by itself; use --force", and for a certificate
    the machine would not let it read, that hid the remedy that bars it by its own
    signed part and fingerprint (certificate review, 2026-12-07)."""
    from secagg.apps.commands.common import os_error_status

    cause: BaseException | None = exc.__cause__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    if isinstance(cause, OSError) and os_error_status(cause) == 1:
        return (
            f"{exc}: the machine refused to read it; let secagg certs read it and revoke "
            "again, which bars the certificate itself, or use --force to bar the name "
            f"{name!r} now (every certificate bearing it, that one included)"
        )
    return (
        f"{exc}: it cannot be barred by itself; use --force to bar the name {name!r} "
        "(every certificate bearing it, that one included)"
    )


def _save_revocations(layout: CaLayout, revocations: RevocationList) -> None:
    _write_atomic(layout.revocations, revocations.to_json().encode(), 0o644)


def revoke(directory: Path | str, name: str, *, force: bool = False) -> RevocationList:
    """Bar ``name`` and its current certificate (signed part, fingerprint); idempotent.

    A name with no certificate on file that is not revoked already is refused
    (:class:`UnknownClient`, naming the names that have one): a typo must not look like a
    revocation. With ``force=True`` it is recorded anyway (the certificate may have been
    deleted here but still be out there); then only the name is barred. So for a
    certificate file that does not read: refused in one line without ``force=True``,
    the name alone barred with it.
    """
    check_client_name(name)
    layout = CaLayout(Path(directory))
    if not layout.ca_cert.exists():
        raise UnknownClient(f"no CA in {layout.directory} (secagg certs init makes one)")
    # the CA is read (not only seen to exist) so that a bundle or a leaf in ca.pem is
    # refused here as the server refuses it, before the list is touched: a revocation
    # written into a folder no server can start from would pass for one in force
    load_ca_certificate(layout.ca_cert)
    current = _revocations(layout)
    cert_path = layout.client_cert(name)
    dangling = _link_to_nothing(cert_path)
    if dangling is not None and not force:
        # a link there that leads to no file read as "NAME has no certificate in clients
        # (issued: NAME)", contradicting itself (certificate review, 2026-12-07)
        raise UnbarrableCertificate(
            f"{dangling}: the certificate cannot be barred by itself; use --force to bar "
            f"the name {name!r} (every certificate bearing it)"
        )
    if not (force or cert_path.exists() or name in current.names):
        issued = sorted(issued_clients(layout.directory))
        raise UnknownClient(
            f"{name!r} has no certificate in {layout.clients_dir} "
            f"(issued: {', '.join(issued) or 'none'}); use --force to bar the name anyway "
            "(a certificate deleted here that may still be out there)"
        )
    updated = RevocationList(current.names | {name}, current.fingerprints, current.signed_parts)
    if dangling is not None:
        logger.warning("revoking %r by name only: %s", name, dangling)
    elif cert_path.exists():
        try:
            updated = updated.barring(load_certificate_file(cert_path, "client certificate"))
        except CertificateStoreError as exc:
            # Why: a corrupted certificate file made revoke fail, --force too, so a
            # leaked key's name could not be barred until the file was moved away, in
            # the middle of an incident (certificate review, 2026-12-07). The name's bar
            # is what still bars that certificate; issue --force will not lift it
            # without the file (_bar_replaced)
            if not force:
                raise UnbarrableCertificate(_unbarrable(exc, name)) from exc  # cause kept
            logger.warning("revoking %r by name only: %s", name, exc)
    _save_revocations(layout, updated)
    logger.info("revoked client %r", name)
    return updated
