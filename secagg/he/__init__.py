"""Homomorphic (CKKS) aggregation backend on TenSEAL.

Modules, in reading order:

- :mod:`secagg.he.params`: parameters for a sum of n vectors and the chooser
  (pure Python; needs no TenSEAL);
- :mod:`secagg.he.context`: a TenSEAL context bound to its parameters and
  fingerprint, in its public and secret-key forms, and the server's unparsed
  view of a public context (:class:`~secagg.he.context.OpaquePublicContext`);
- :mod:`secagg.he.keys`: roles, meaning who generates, holds and never sees the
  secret key;
- :mod:`secagg.he.envelope`: the checked wire format of one ciphertext chunk;
- :mod:`secagg.he.packing`: a ciphertext's residues bit-packed for the wire, and
  the TenSEAL bytes rebuilt from them;
- :mod:`secagg.he.chunks`: envelopes loaded into TenSEAL vectors, and the
  decryption of aggregates;
- :mod:`secagg.he.vectors`: client encryption and the server's streaming sum
  (it re-exports the decoding and decryption of ``chunks``);
- :mod:`secagg.he.errors`: the typed errors all of the above raise.

The imports form no cycle: ``keys`` and ``vectors`` both build on ``context``
and ``chunks``, and neither imports the other.

Only ``params`` and ``errors`` are imported here, so that choosing parameters
works without the optional ``he`` extra installed.
"""

from secagg.he.errors import (
    BoundExceeded,
    ContextMismatch,
    HEParameterError,
    InconsistentUpload,
    InvalidContext,
    MalformedCiphertext,
    SecretKeyPresent,
    SecretKeyUnavailable,
    TooFewContributions,
    TooManyContributions,
    UnpinnedContext,
)
from secagg.he.params import CKKSParameters, choose_parameters

__all__ = [
    "BoundExceeded",
    "CKKSParameters",
    "ContextMismatch",
    "HEParameterError",
    "InconsistentUpload",
    "InvalidContext",
    "MalformedCiphertext",
    "SecretKeyPresent",
    "SecretKeyUnavailable",
    "TooFewContributions",
    "TooManyContributions",
    "UnpinnedContext",
    "choose_parameters",
]
