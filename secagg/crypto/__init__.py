"""Cryptographic primitives, built on pyca/cryptography only.

This layer knows nothing of rounds or messages: it offers hard-to-misuse entry
points (key agreement with mandatory domain separation, AEAD with mandatory
associated data, a counter-addressable PRG, Shamir sharing, signatures). The
protocol layer composes them; nothing here invents a primitive.
"""

from secagg.crypto.aead import open_sealed, seal
from secagg.crypto.kx import KeyPair, derive_key, generate_keypair, load_public_key
from secagg.crypto.prg import SEED_BYTES, accumulate_masks, expand_into
from secagg.crypto.shamir import PRIME, Share, reconstruct, split
from secagg.crypto.signing import SigningKey, VerifyKey

__all__ = [
    "PRIME",
    "SEED_BYTES",
    "KeyPair",
    "Share",
    "SigningKey",
    "VerifyKey",
    "accumulate_masks",
    "derive_key",
    "expand_into",
    "generate_keypair",
    "load_public_key",
    "open_sealed",
    "reconstruct",
    "seal",
    "split",
]
