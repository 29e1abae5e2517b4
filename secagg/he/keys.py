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
    key, so it can wrap a single client's ciphertext as an "aggregate of 100", and
    multiply it by an integer k first, which divides the key holder's noise on that
    client's update by k, up to the plausible range (docs/backends.md;
    tests/aggregation/test_ckks_scaled_upload.py).
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

The public-role object is :class:`PublicAggregationContext`, which clients load
(after checking the fingerprint). It refuses to be built from bytes that contain a
secret key (:class:`SecretKeyPresent`), because a party handed the key has already
broken the privacy of the round. :meth:`PublicAggregationContext.decrypt` always
raises :class:`SecretKeyUnavailable`, and the TenSEAL context inside it reports
``is_private() == False``. The server does not load the context at all: it holds an
:class:`~secagg.he.context.OpaquePublicContext`, the key holder's bytes bound to
their fingerprint and never parsed, with the round's own parameters; it holds no key
of any kind, and the clients' load is where a secret key in the blob is refused.

Decrypted values of CKKS leak information about the secret key: an adversary
who holds a ciphertext and its exact decryption can solve for the key
(Li and Micciancio, 2021; IND-CPA^D). The decrypted sum must therefore leave
the key holder only after differential-privacy noise, which is far larger than
the CKKS error and so floods it, or at least after rounding to the precision
the round needs. That is the caller's job: this module hands back the raw sum.

No method logs, and no ``repr`` prints, anything but the fingerprint. Secret key
bytes exist only in :meth:`KeyHolder.export_client_secret_context`, which is
refused outside ``EVERY_CLIENT`` mode.

The context classes themselves live in :mod:`secagg.he.context` (this module
re-exports :class:`PublicAggregationContext`), and the decryption in
:mod:`secagg.he.chunks`, so that neither this module nor
:mod:`secagg.he.vectors` imports the other.
"""

from __future__ import annotations

import enum
import hmac
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import tenseal as ts
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.crypto.signing import write_private_file
from secagg.durable import read_regular_file
from secagg.errors import ConfigurationError
from secagg.he.chunks import decrypt_aggregate
from secagg.he.context import (
    FINGERPRINT_BYTES,
    PublicAggregationContext,
    SecretContext,
    check_matches,
    context_fingerprint,
    peer_bytes,
    require_pin,
    serialize_public,
)
from secagg.he.errors import ContextMismatch, HEParameterError, InvalidContext
from secagg.he.paired import round_trip_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from secagg.he.params import CKKSParameters

__all__ = [
    "FINGERPRINT_BYTES",
    "KeyHolder",
    "KeyMode",
    "PublicAggregationContext",
    "SharedKeyClient",
    "context_fingerprint",
    "key_pair_mismatch",
]


#: the first bytes of a key holder's key file (a TenSEAL context with its secret key follows)
_KEY_FILE_MAGIC = b"SAKH1\n"
#: the largest key file read: a public and a secret key at the largest ring (N = 32768,
#: at most 881 bits of NTT primes of 17 bits or more: 51 of them) are 3 x 32768 x 51
#: words of 8 bytes, 40 MiB before TenSEAL's compression; past this it is not a key file
MAX_KEY_FILE_BYTES = 256 * 1024 * 1024


def key_pair_mismatch(context: SecretContext) -> str | None:
    """Why ``context``'s secret key is not the one its public key was made from, or None
    when it is: a ciphertext of values across the bound, encrypted under the public key,
    must decrypt with the secret key within the parameters' documented ``error_bound(1)``
    (one encryption and one decryption; a wrong key gives noise about the data modulus
    over the scale, far beyond it).

    Why: the fingerprint every branch pins is the public key's, and nothing else tied the
    secret key to it. A key file holding another pair's secret key (damaged, or mixed up)
    loaded, every decryption was noise, and the key holder clamped it into the plausible
    range and released it: a wrong sum every round, no error anywhere
    (tests/he/test_key_pair_matches.py)."""
    error, bound = round_trip_error(context), context.params.error_bound(1)
    if error <= bound:
        return None
    return (
        f"does not decrypt what its own public key encrypts (an error of {error:.3g} where "
        f"its parameters give at most {bound:.3g})"
    )


class KeyMode(enum.Enum):
    """Who holds the secret key; recorded in the config and the ledger."""

    KEY_HOLDER = "key-holder"
    EVERY_CLIENT = "every-client"


class _SecretRole(SecretContext):
    """A party that holds the secret key and decrypts aggregates, and nothing else."""

    __slots__ = ()

    def decrypt_aggregate(self, chunks: Sequence[bytes], *, dimension: int) -> np.ndarray:
        """Decrypt the server's aggregate envelopes into the summed vector (float64).

        Refuses contribution envelopes and aggregates of fewer than
        :attr:`min_contributions` summands; see the module docstring for what
        that does and does not protect.
        """
        return decrypt_aggregate(self, chunks, dimension=dimension)


class KeyHolder(_SecretRole):
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
        check_matches(context, params)
        super().__init__(context, params, serialize_public(context), min_contributions)
        self._mode = mode

    @property
    def mode(self) -> KeyMode:
        return self._mode

    def save(self, path: str | Path) -> Path:
        """Write the key pair to ``path`` (mode 0600, created that way) for restarts.

        The branches pin the key holder's fingerprint before the federation starts,
        so the key must outlive the key holder's process: a new key at every start
        would be refused by every branch. The file holds the secret key: keep it on
        the key holder's machine (or its HSM-backed volume) and nowhere else.
        """
        if self._mode is not KeyMode.KEY_HOLDER:
            raise ConfigurationError("only a KEY_HOLDER-mode key pair is saved to a file")
        data = self._ts.serialize(
            save_public_key=True,
            save_secret_key=True,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        return write_private_file(path, _KEY_FILE_MAGIC + data)

    @classmethod
    def load(
        cls, path: str | Path, params: CKKSParameters, *, min_contributions: int | None = None
    ) -> KeyHolder:
        """Read a key pair :meth:`save` wrote, for ``params`` (refused if made for others,
        if it lacks its public key or its secret key, or if its secret key does not decrypt
        what its public key encrypts: :func:`key_pair_mismatch`)."""
        try:
            # one open, bounded: a named pipe here (or a file swapped for one after the
            # command line's check) blocked the key holder's start forever
            data = read_regular_file(path, MAX_KEY_FILE_BYTES, "a key holder's key file")
        except OSError as exc:  # its cause kept: its errno is the command's exit status
            raise ConfigurationError(f"cannot read the key file {path}: {exc.strerror}") from exc
        if not data.startswith(_KEY_FILE_MAGIC):
            raise ConfigurationError(f"{path} is not a secagg key holder's key file")
        try:
            context = ts.context_from(data[len(_KEY_FILE_MAGIC) :])
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
            raise HEParameterError(f"{path}: not a TenSEAL context: {exc}") from None
        if not context.is_private():
            raise HEParameterError(f"{path} holds no secret key")
        if not context.has_public_key():  # its fingerprint is the public key's
            raise HEParameterError(
                f"{path} holds no public key (the fingerprint the branches pin is the public "
                "key's): save the key pair with KeyHolder.save, which writes both"
            )
        try:
            check_matches(context, params)
        except HEParameterError as exc:
            raise ConfigurationError(
                f"the key in {path} was made for other CKKS parameters than the federation's "
                f"({exc}); make a new key and have the branches pin its fingerprint"
            ) from None
        holder = cls.__new__(cls)
        _SecretRole.__init__(holder, context, params, serialize_public(context), min_contributions)
        holder._mode = KeyMode.KEY_HOLDER
        mismatch = key_pair_mismatch(holder)
        if mismatch is not None:
            raise ConfigurationError(
                f"the key in {path} {mismatch}: its secret key is not the one its public key "
                "(the fingerprint the branches pin) was made from; restore the file as saved, "
                "or make a new key and have the branches pin its fingerprint"
            )
        return holder

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


class SharedKeyClient(_SecretRole):
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
        is the public half's), so it must arrive over an authenticated channel. It is
        still a peer's bytes: each fault of it is an :class:`InvalidContext` (a refused
        message), not an HEParameterError (the caller's own configuration).

        The pin is required before anything is parsed (:class:`UnpinnedContext`, as
        :meth:`PublicAggregationContext.from_bytes` requires it): with None, TenSEAL
        parsed the bytes first and the missing pin surfaced only afterwards, as a
        ContextMismatch. The fingerprints are compared in constant time.
        """
        pin = require_pin(expected_fingerprint, "an every-client secret context")
        data = peer_bytes(data, "an every-client secret context")
        try:
            context = ts.context_from(data)
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError/TypeError alike
            raise InvalidContext(f"not a TenSEAL context: {exc}") from None
        if not context.is_private():
            raise InvalidContext("an EVERY_CLIENT context must hold the secret key")
        if not context.has_public_key():  # its pin is the public key's, compared below
            raise InvalidContext("an EVERY_CLIENT context must hold its public key too")
        try:
            check_matches(context, params)
        except HEParameterError as exc:
            raise InvalidContext(f"the peer's context: {exc}") from None
        public = serialize_public(context)
        if not hmac.compare_digest(context_fingerprint(public), pin):
            raise ContextMismatch("secret context does not belong to the pinned public context")
        client = cls(context, params, public, min_contributions)
        mismatch = key_pair_mismatch(client)  # the pin vouches for the public key only
        if mismatch is not None:
            raise InvalidContext(f"the peer's every-client secret context {mismatch}")
        return client
