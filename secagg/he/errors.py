"""Errors specific to the homomorphic (CKKS) backend.

Each one subclasses the engine-wide type that callers already catch
(:mod:`secagg.errors`), so a transport that refuses :class:`ProtocolError`
refuses a garbled ciphertext too, and an auditor's tooling that treats
:class:`CryptoError` as evidence sees an attempt to decrypt without a key.
They live here, beside the only code that raises them, and need no TenSEAL, so
``import secagg.he`` works without the optional ``he`` extra.
"""

from __future__ import annotations

from secagg.errors import ConfigurationError, CryptoError, InvalidMessage, MalformedMessage


class HEParameterError(ConfigurationError):
    """No CKKS parameter set gives the requested precision at the required security.

    Also raised when a context does not match the parameters it is announced
    with, so that a misconfigured deployment fails at start-up, not at decryption.
    """


class InvalidContext(InvalidMessage):
    """A TenSEAL context parsed from a peer's bytes that this party cannot use: not a
    TenSEAL context, without the key its role needs, or of other parameters (ring,
    primes, scale) than the round's.

    The key holder's public context reaches each client through the server, so its
    bytes are a message, untrusted however well they hash: a bad one is refused as that
    message (which the branch refuses and carries on from), never as the branch's own
    mistake. It was an :class:`HEParameterError`, a ConfigurationError, which callers
    treat as a misconfiguration at start-up. A context this party made or loaded itself
    (its key file) that does not match its parameters stays an HEParameterError.
    """


class SecretKeyPresent(InvalidContext):
    """A context offered to a public role (server or key-holder-mode client) holds a secret key.

    Refused rather than silently stripped: whoever handed it over has already
    leaked the key, and that must be noticed. An :class:`InvalidContext` (a message
    refused), since the context came from a peer; it was an HEParameterError.
    """


class BoundExceeded(ConfigurationError):
    """A value of the caller's own vector beyond what the parameters were chosen for.

    CKKS wraps silently on overflow and its noise grows with every addition, so
    a sum outside the design point would decrypt to a wrong answer without any
    error; refusing the input is the only place to catch it.
    """


class SecretKeyUnavailable(CryptoError):
    """Decryption was attempted by a party that holds no secret key."""


class MalformedCiphertext(MalformedMessage):
    """Bytes that are not a well-formed envelope or TenSEAL ciphertext for these parameters."""


class ContextMismatch(InvalidMessage):
    """A ciphertext encrypted under another context (other keys or parameters), or a
    public context whose bytes do not hash to the pinned fingerprint.

    Adding such a ciphertext would not fail inside TenSEAL (which compares only the
    scale of two contexts) but would decrypt to garbage, so it is refused by
    fingerprint; such a context is refused before TenSEAL parses it.
    """


class UnpinnedContext(ContextMismatch):
    """A public context offered for parsing with no pinned fingerprint to check it by.

    A public context comes from a peer (the key holder's, relayed by the server), and
    TenSEAL's parser is C++: bytes that are not first checked against a fingerprint
    the caller trusts (the branch's pin, or the key the caller made itself) are never
    parsed. :meth:`~secagg.he.context.PublicAggregationContext.from_bytes` took
    ``expected_fingerprint=None`` as "do not check", so a new caller could parse an
    unpinned context by leaving it out; now it is required, and None (or anything that
    is not a 32-byte SHA-256 fingerprint) is this error, before any parsing.
    """


class InconsistentUpload(InvalidMessage):
    """One party's chunks do not form exactly one vector of the expected length."""


class TooFewContributions(InconsistentUpload):
    """An aggregate claims fewer summands than the decrypting party's minimum.

    The claim is the server's (it adds the ciphertexts), so this refusal catches
    an honest server's mistake; a malicious one can claim any count.
    """


class TooManyContributions(InconsistentUpload):
    """An aggregate claims, or a running sum would take, more summands than the
    parameters were chosen for (beyond them CKKS may wrap or exceed its error bound).

    An :class:`~secagg.errors.InvalidMessage`, not a :class:`BoundExceeded`: the count
    arrives in a peer's bytes (an aggregate's header, one upload too many), so the
    refusal is of that message, which a transport refuses and carries on from. It was a
    BoundExceeded, a ConfigurationError, which callers treat as their own mistake at
    start-up rather than a hostile or faulty message.
    """
