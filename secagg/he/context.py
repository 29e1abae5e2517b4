"""TenSEAL contexts bound to their parameters and public fingerprint.

The context classes every HE module works with, kept apart from the roles
(:mod:`secagg.he.keys`) and the vector operations (:mod:`secagg.he.vectors`),
so that both can import them and neither imports the other:

- :class:`BoundContext`: a TenSEAL context with its
  :class:`~secagg.he.params.CKKSParameters` and the SHA-256 *fingerprint* of
  its public half;
- :class:`PublicAggregationContext`: the public context, with which clients
  encrypt (key-holder mode) and the server adds; it can never decrypt;
- :class:`SecretContext`: a context that holds the secret key, the base of the
  roles in :mod:`secagg.he.keys` that decrypt;
- :class:`OpaquePublicContext`: the server's view of the key holder's public
  context, bytes it never parses bound to their fingerprint, with the parameters
  the server derives from its own round.

See :mod:`secagg.he.keys` for who holds which context and why.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import numbers
from typing import TYPE_CHECKING

try:
    import tenseal as ts
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.errors import ConfigurationError, MalformedMessage
from secagg.he.errors import (
    ContextMismatch,
    HEParameterError,
    InvalidContext,
    SecretKeyPresent,
    SecretKeyUnavailable,
    UnpinnedContext,
)
from secagg.he.params import coefficient_primes

if TYPE_CHECKING:
    import numpy as np

    from secagg.he.params import CKKSParameters

FINGERPRINT_BYTES = 32


def context_fingerprint(public_context: bytes) -> bytes:
    """SHA-256 of the serialized public context: what every envelope must name."""
    return hashlib.sha256(public_context).digest()


def serialize_public(context: ts.Context) -> bytes:
    """The public context as published: parameters, scale and public key, no other key.

    Raises :class:`HEParameterError` for a context without a public key: TenSEAL 0.3.18
    serializes the missing key by dereferencing it, and the process dies of SIGSEGV
    (tests/he/test_context_without_public_key.py)."""
    if not context.has_public_key():
        raise HEParameterError("the context holds no public key to publish")
    return context.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )


def check_matches(context: ts.Context, params: CKKSParameters) -> None:
    """Refuse a context whose ring, chain, data primes or scale differ from the announced
    parameters (HEParameterError; a caller parsing a peer's bytes re-raises it as the
    message's fault).

    The data primes themselves, not only their total size: a context of another prime
    of the same size passed, and the client failed only when it encrypted (the layout
    check of :func:`~secagg.he.chunks.ciphertext_layout`)."""
    seal = context.seal_context().data
    data, key = seal.first_context_data(), seal.key_context_data()
    data_bits = sum(params.coeff_mod_bit_sizes[:-1])
    problems = []
    if data.parms().poly_modulus_degree() != params.poly_modulus_degree:
        problems.append("ring degree")
    if key.chain_index() != params.data_primes or data.chain_index() != params.data_primes - 1:
        problems.append("number of primes")
    if not data_bits - params.data_primes < data.total_coeff_modulus_bit_count() <= data_bits:
        problems.append("data modulus size")
    built = tuple(m.value() for m in data.parms().coeff_modulus())
    expected = coefficient_primes(params.poly_modulus_degree, params.coeff_mod_bit_sizes)[:-1]
    if built != expected:
        problems.append("data primes")
    if key.total_coeff_modulus_bit_count() > params.total_bits:
        problems.append("total modulus size")
    try:
        scale = context.global_scale
    except ValueError:  # TenSEAL's "no global scale": a context serialized without one
        problems.append("scale (none set)")
    else:
        if not math.isclose(scale, params.scale, rel_tol=0.0):
            problems.append("scale")
    if problems:
        raise HEParameterError(
            "TenSEAL context does not match the announced parameters: " + ", ".join(problems)
        )


def require_pin(expected_fingerprint: object, what: str) -> bytes:
    """``expected_fingerprint`` if it is a 32-byte SHA-256 fingerprint, else
    :class:`UnpinnedContext` naming ``what`` would have been parsed without one.

    Checked before any TenSEAL parsing, by every reader of a peer's context: a caller
    that leaves the pin out (None) or passes something else must not get a C++ parse
    of bytes nobody vouched for."""
    if not isinstance(expected_fingerprint, bytes) or len(expected_fingerprint) != (
        FINGERPRINT_BYTES
    ):
        given = (
            f"{len(expected_fingerprint)} bytes"
            if isinstance(expected_fingerprint, bytes)
            else "none"
            if expected_fingerprint is None
            else type(expected_fingerprint).__name__
        )
        raise UnpinnedContext(
            f"{what} is parsed only against a pinned fingerprint "
            f"({FINGERPRINT_BYTES} bytes of SHA-256), not {given}"
        )
    return expected_fingerprint


def peer_bytes(data: object, what: str) -> bytes:
    """A peer's context blob as bytes, or :class:`InvalidContext` naming its type.

    Why: a str or None failed as hashlib's TypeError before the pin was compared, and a
    memoryview of the pinned bytes (what a framed transport hands on) hashed right and
    was then refused as "not a TenSEAL context" (TenSEAL's parser takes bytes only).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidContext(f"{what} is bytes, not {type(data).__name__}")
    return bytes(data)


class _PublishedContext:
    """What every party's view of a round's public context shares: the round's
    parameters, the context's bytes as published and their fingerprint (SHA-256), and
    the cache slot of the ciphertext layout those parameters give."""

    __slots__ = ("_fingerprint", "_layout", "_params", "_public_bytes")

    def __init__(self, params: CKKSParameters, public: bytes, fingerprint: bytes) -> None:
        self._params = params
        self._public_bytes = public
        self._fingerprint = fingerprint
        self._layout: object = None  # secagg.he.chunks.ciphertext_layout's cache

    @property
    def params(self) -> CKKSParameters:
        return self._params

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of :attr:`public_context_bytes`; pinned by every party of the round."""
        return self._fingerprint

    @property
    def public_context_bytes(self) -> bytes:
        """The public context exactly as published (parameters, scale, public key)."""
        return self._public_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fingerprint={self._fingerprint.hex()[:16]}...)"


class BoundContext(_PublishedContext):
    """A TenSEAL context together with its parameters and public fingerprint."""

    __slots__ = ("_seal", "_ts")

    def __init__(self, ts_context: ts.Context, params: CKKSParameters, public: bytes) -> None:
        super().__init__(params, public, context_fingerprint(public))
        self._ts = ts_context
        self._seal: object = None  # secagg.he.paired.SealTools.of's cache

    def is_private(self) -> bool:
        """Whether this object can decrypt (asks TenSEAL, not a flag of ours)."""
        return bool(self._ts.is_private())


class PublicAggregationContext(BoundContext):
    """The public context: clients encrypt with it (key-holder mode), the server adds with it.

    Holds the public key, because encryption needs it and it is public by
    definition; withholding it from the server would not stop the server from
    forging contributions in any way the threat model cares about.
    """

    __slots__ = ()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        params: CKKSParameters,
        *,
        expected_fingerprint: bytes,
    ) -> PublicAggregationContext:
        """Load a published public context, checking it before TenSEAL parses it.

        ``expected_fingerprint`` is required (keyword only): the fingerprint the caller
        trusts (a branch's pin of its key holder, or the key the caller made itself).
        Bytes that hash differently are refused with :class:`ContextMismatch` *before*
        TenSEAL parses them, so this never feeds unauthenticated bytes to C++. None, or
        anything but a 32-byte fingerprint, is an :class:`UnpinnedContext` (a
        ContextMismatch), before any parsing. Before, it defaulted to None, which
        skipped the check: only tests relied on that, and a future caller could have
        parsed a peer's context unpinned by leaving the argument out.

        ``data`` is a peer's (the key holder's context, relayed by the server), so
        every fault of it is a refused message, an :class:`InvalidContext`: not a
        TenSEAL context, a secret key in it (:class:`SecretKeyPresent`), no public
        key, other parameters than ``params``, down to the data level's primes, which
        are checked here rather than at the first encryption (a context of another
        prime of the same size passed every check and failed when the client
        encrypted its update, as an HEParameterError). Before, each was an
        HEParameterError (a ConfigurationError: the caller's own mistake), and a
        context without a scale a bare ValueError.
        """
        require_pin(expected_fingerprint, "a public context")
        data = peer_bytes(data, "a public context")
        if not hmac.compare_digest(context_fingerprint(data), expected_fingerprint):
            raise ContextMismatch("public context does not match the pinned fingerprint")
        try:
            context = ts.context_from(data)
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
            raise InvalidContext(f"not a TenSEAL context: {exc}") from None
        if context.is_private() or context.has_secret_key():
            raise SecretKeyPresent(
                "a context with a secret key was offered to a public role; the key is exposed"
            )
        if not context.has_public_key():
            raise InvalidContext("public context lacks the public key clients encrypt with")
        try:
            check_matches(context, params)
        except HEParameterError as exc:
            raise InvalidContext(f"the peer's context: {exc}") from None
        return cls(context, params, data)

    def decrypt(self, *_: object) -> np.ndarray:
        """Always refuses: this object has no secret key, by construction."""
        raise SecretKeyUnavailable("the public (server) context holds no secret key")


class SecretContext(BoundContext):
    """A context that holds the secret key (key holder, or a client in EVERY_CLIENT mode)."""

    __slots__ = ("_min_contributions",)

    def __init__(
        self,
        ts_context: ts.Context,
        params: CKKSParameters,
        public: bytes,
        min_contributions: int | None,
    ) -> None:
        if min_contributions is None:
            min_contributions = min(2, params.num_clients)
        # a count, by type: 2.5 passed the range check (a floor of 3 in effect), True
        # passed as 1 (one client's ciphertext decrypted alone) and "2" failed as
        # TypeError in the comparison
        if isinstance(min_contributions, bool) or not isinstance(
            min_contributions, numbers.Integral
        ):
            raise ConfigurationError(
                f"min_contributions must be an integer, got {min_contributions!r}"
            )
        min_contributions = int(min_contributions)
        if not (1 <= min_contributions <= params.num_clients):
            raise ConfigurationError(
                f"min_contributions must lie in [1, {params.num_clients}], got {min_contributions}"
            )
        super().__init__(ts_context, params, public)
        self._min_contributions = min_contributions

    @property
    def min_contributions(self) -> int:
        """Fewest summands an aggregate must claim before this party decrypts it."""
        return self._min_contributions

    def public_context(self) -> PublicAggregationContext:
        """The public half, as a server or a key-holder-mode client would load it."""
        return PublicAggregationContext.from_bytes(
            self._public_bytes, self._params, expected_fingerprint=self._fingerprint
        )


class OpaquePublicContext(_PublishedContext):
    """The key holder's public context as the server holds it: never parsed.

    The key holder is a separate party (docs/backends.md), so its blob is as
    untrusted to the server as a client's ciphertexts: handing it to TenSEAL's or
    SEAL's parser would expose the server process to whatever the key holder wrote.
    The server needs no parsed context: ring, primes and scale follow from the round's
    own :class:`~secagg.he.params.CKKSParameters` (which every party derives from the
    design point), and the fingerprint is an opaque digest that envelopes name and the
    round announces. So the blob is checked by size only (bounds the parameters give)
    and bound to the fingerprint (its SHA-256 must be the fingerprint announced with
    it, so a client that checks the one against its pin has checked the other), and
    forwarded as it came.

    What the server no longer checks, the clients do, because they parse the context
    anyway to encrypt (:meth:`PublicAggregationContext.from_bytes`, after comparing
    the fingerprint with their pin): a secret key in the blob (:class:`SecretKeyPresent`),
    a missing public key, other parameters than the spec's (:class:`InvalidContext`).
    A client that refuses uploads nothing, and the round aborts below two contributions.
    """

    __slots__ = ()

    def __init__(self, data: bytes, params: CKKSParameters, *, fingerprint: bytes) -> None:
        """Check ``data`` (the key holder's blob) by size and against ``fingerprint``.

        Raises :class:`MalformedMessage` for a blob that is not bytes or whose size no
        public context of ``params`` has, and :class:`ContextMismatch` for a fingerprint
        that is not 32 bytes or is not the blob's SHA-256.
        """
        # by type first: bytes(data) made an integer that many zero bytes (10**7 took
        # 10 MB before the size check refused it), and a fingerprint of None or a str
        # failed as TypeError in len() or hmac.compare_digest
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedMessage(f"a public context is bytes, not {type(data).__name__}")
        if not isinstance(fingerprint, bytes | bytearray | memoryview):
            raise ContextMismatch(
                f"a context fingerprint is {FINGERPRINT_BYTES} bytes, not "
                f"{type(fingerprint).__name__}"
            )
        fingerprint = bytes(fingerprint)
        data = bytes(data)
        low, high = params.min_public_context_bytes(), params.max_public_context_bytes()
        if not low <= len(data) <= high:
            raise MalformedMessage(
                f"public context of {len(data)} bytes; a context of these parameters has "
                f"{low} to {high}"
            )
        if len(fingerprint) != FINGERPRINT_BYTES or not hmac.compare_digest(
            context_fingerprint(data), fingerprint
        ):
            raise ContextMismatch("public context does not match the fingerprint sent with it")
        # the parameters are the round's own, not read from the blob; the bytes are
        # forwarded exactly as the key holder sent them
        super().__init__(params, data, fingerprint)

    def is_private(self) -> bool:
        """Never: this object holds no key of any kind, only bytes it does not read."""
        return False

    def decrypt(self, *_: object) -> np.ndarray:
        """Always refuses: the server holds no secret key, by construction."""
        raise SecretKeyUnavailable("the server's view of the public context holds no key")


#: A context the server's checks and its running sum work with: parsed (tests, the key
#: holder's own) or opaque (the server's in a round).
AggregationContext = BoundContext | OpaquePublicContext
