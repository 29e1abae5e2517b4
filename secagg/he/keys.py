"""Who holds which CKKS key: the key holder, the clients and the server.

Theory of operation
-------------------
A CKKS key pair is generated once, by whoever the deployment names as the
:class:`KeyHolder`, from a :class:`~secagg.he.params.CKKSParameters`. Everything
that leaves the key holder by default is the *public context*: the encryption
parameters, the scale and the public key, serialized by TenSEAL with no secret
key and no evaluation keys (addition needs none). Its SHA-256 is the context
*fingerprint*. Every ciphertext envelope carries it, and parties pin it out of
band (in the round configuration and the ledger), so a ciphertext made under
any other key is refused by name instead of decrypting to garbage.

Two modes, chosen explicitly with :class:`KeyMode`:

``KeyMode.KEY_HOLDER`` (default)
    One party that is *not* the server holds the secret key. Clients get only
    the public context, so they can encrypt but cannot decrypt, not even their
    own ciphertexts. The server gets the same public context and can only add.
    The key holder decrypts only aggregate envelopes, and refuses any that claim
    fewer than ``min_contributions`` summands. That refusal is a guard against
    honest mistakes, not against a malicious server: the server holds the public
    key, so it can wrap a single client's ciphertext as an "aggregate of 100".
    Privacy therefore assumes the server and the key holder do not collude, and
    that the key holder never sees an individual client's ciphertext.

``KeyMode.EVERY_CLIENT`` (NVIDIA FLARE's provisioning)
    Every client receives the same secret key
    (:meth:`KeyHolder.export_client_secret_context`), and the server still gets
    only the public context. This is **weaker**. Any client that sees another
    client's ciphertext can decrypt it, for example by colluding with the server
    or by reading a shared transport. The only thing kept from the server is the
    plaintext. It exists for parity with FLARE deployments and must be named in
    the config and the ledger.

The server-side object is :class:`PublicAggregationContext`. It refuses to be
built from bytes that contain a secret key (:class:`SecretKeyPresent`), because a
server that was handed the key has already broken the privacy of the round.
:meth:`PublicAggregationContext.decrypt` always raises
:class:`SecretKeyUnavailable`, and the TenSEAL context inside it reports
``is_private() == False``.

Decrypted values of CKKS leak information about the secret key: an adversary
who holds a ciphertext and its exact decryption can solve for the key
(Li and Micciancio, 2021; IND-CPA^D). The decrypted sum must therefore leave
the key holder only after differential-privacy noise, which is far larger than
the CKKS error and so floods it, or at least after rounding to the precision
the round needs. That is the caller's job: this module hands back the raw sum.

No method logs, and no ``repr`` prints, anything but the fingerprint. Secret key
bytes exist only in :meth:`KeyHolder.export_client_secret_context`, which is
refused outside ``EVERY_CLIENT`` mode.
"""

from __future__ import annotations

import enum
import hashlib
import math
from typing import TYPE_CHECKING

try:
    import tenseal as ts
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.errors import ConfigurationError
from secagg.he.errors import (
    ContextMismatch,
    HEParameterError,
    SecretKeyPresent,
    SecretKeyUnavailable,
)
from secagg.he.params import CKKSParameters

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

FINGERPRINT_BYTES = 32


class KeyMode(enum.Enum):
    """Who holds the secret key; recorded in the config and the ledger."""

    KEY_HOLDER = "key-holder"
    EVERY_CLIENT = "every-client"


def context_fingerprint(public_context: bytes) -> bytes:
    """SHA-256 of the serialized public context: what every envelope must name."""
    return hashlib.sha256(public_context).digest()


def _serialize_public(context: ts.Context) -> bytes:
    return context.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )


def _check_matches(context: ts.Context, params: CKKSParameters) -> None:
    """Refuse a context whose ring, chain or scale differs from the announced parameters."""
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
    if key.total_coeff_modulus_bit_count() > params.total_bits:
        problems.append("total modulus size")
    if not math.isclose(context.global_scale, params.scale, rel_tol=0.0):
        problems.append("scale")
    if problems:
        raise HEParameterError(
            "TenSEAL context does not match the announced parameters: " + ", ".join(problems)
        )


class _BoundContext:
    """A TenSEAL context together with its parameters and public fingerprint."""

    __slots__ = ("_fingerprint", "_params", "_public_bytes", "_ts")

    def __init__(self, ts_context: ts.Context, params: CKKSParameters, public: bytes) -> None:
        self._ts = ts_context
        self._params = params
        self._public_bytes = public
        self._fingerprint = context_fingerprint(public)

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

    def is_private(self) -> bool:
        """Whether this object can decrypt (asks TenSEAL, not a flag of ours)."""
        return bool(self._ts.is_private())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fingerprint={self._fingerprint.hex()[:16]}...)"


class PublicAggregationContext(_BoundContext):
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
        expected_fingerprint: bytes | None = None,
    ) -> PublicAggregationContext:
        """Load a published public context, checking it before TenSEAL parses it.

        With ``expected_fingerprint`` (the normal case: it comes from the signed
        round configuration), bytes that hash differently are refused with
        :class:`ContextMismatch` *before* TenSEAL parses them, so this never feeds
        unauthenticated bytes to C++. A context that holds a secret key is refused
        with :class:`SecretKeyPresent`.
        """
        if expected_fingerprint is not None and context_fingerprint(data) != expected_fingerprint:
            raise ContextMismatch("public context does not match the pinned fingerprint")
        try:
            context = ts.context_from(data)
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
            raise HEParameterError(f"not a TenSEAL context: {exc}") from None
        if context.is_private() or context.has_secret_key():
            raise SecretKeyPresent(
                "a context with a secret key was offered to a public role; the key is exposed"
            )
        if not context.has_public_key():
            raise HEParameterError("public context lacks the public key clients encrypt with")
        _check_matches(context, params)
        return cls(context, params, data)

    def decrypt(self, *_: object) -> np.ndarray:
        """Always refuses: this object has no secret key, by construction."""
        raise SecretKeyUnavailable("the public (server) context holds no secret key")


class _SecretContext(_BoundContext):
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

    def decrypt_aggregate(self, chunks: Sequence[bytes], *, dimension: int) -> np.ndarray:
        """Decrypt the server's aggregate envelopes into the summed vector (float64).

        Refuses contribution envelopes and aggregates of fewer than
        :attr:`min_contributions` summands; see the module docstring for what
        that does and does not protect.
        """
        from secagg.he.vectors import decrypt_aggregate  # vectors imports this module

        return decrypt_aggregate(self, chunks, dimension=dimension)

    def public_context(self) -> PublicAggregationContext:
        """The public half, as a server or a key-holder-mode client would load it."""
        return PublicAggregationContext.from_bytes(
            self._public_bytes, self._params, expected_fingerprint=self._fingerprint
        )


class KeyHolder(_SecretContext):
    """Generates the key pair and is the only party (in KEY_HOLDER mode) that can decrypt."""

    __slots__ = ("_mode",)

    def __init__(
        self,
        params: CKKSParameters,
        *,
        mode: KeyMode = KeyMode.KEY_HOLDER,
        min_contributions: int | None = None,
    ) -> None:
        """Generate a fresh key pair for ``params``.

        ``min_contributions`` defaults to 2 (or 1 for a one-client design point).
        """
        if not isinstance(mode, KeyMode):
            raise ConfigurationError(f"mode must be a KeyMode, got {mode!r}")
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=params.poly_modulus_degree,
            coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        )
        context.global_scale = params.scale
        _check_matches(context, params)
        super().__init__(context, params, _serialize_public(context), min_contributions)
        self._mode = mode

    @property
    def mode(self) -> KeyMode:
        return self._mode

    def export_client_secret_context(self) -> bytes:
        """The context *with the secret key*, for EVERY_CLIENT mode only.

        The bytes must travel to each client over a confidential, authenticated
        channel and must never be logged. Refused in KEY_HOLDER mode, where
        exporting the key would silently turn the deployment into the weaker mode.
        """
        if self._mode is not KeyMode.EVERY_CLIENT:
            raise ConfigurationError(
                "the secret key leaves the key holder only in KeyMode.EVERY_CLIENT"
            )
        return self._ts.serialize(
            save_public_key=True,
            save_secret_key=True,
            save_galois_keys=False,
            save_relin_keys=False,
        )


class SharedKeyClient(_SecretContext):
    """A client in EVERY_CLIENT mode: encrypts its update and decrypts the aggregate.

    It could equally decrypt any other client's ciphertext it gets hold of; that
    is what makes the mode weaker, and nothing here can prevent it.
    """

    __slots__ = ()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        params: CKKSParameters,
        *,
        expected_fingerprint: bytes,
        min_contributions: int | None = None,
    ) -> SharedKeyClient:
        """Load the exported secret context and check it against the pinned public fingerprint.

        The secret context cannot be checked by hash before parsing (its fingerprint
        is the public half's), so it must arrive over an authenticated channel.
        """
        try:
            context = ts.context_from(data)
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
            raise HEParameterError(f"not a TenSEAL context: {exc}") from None
        if not context.is_private():
            raise HEParameterError("an EVERY_CLIENT context must hold the secret key")
        _check_matches(context, params)
        public = _serialize_public(context)
        if context_fingerprint(public) != expected_fingerprint:
            raise ContextMismatch("secret context does not belong to the pinned public context")
        return cls(context, params, public, min_contributions)
