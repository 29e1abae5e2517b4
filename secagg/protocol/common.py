"""Definitions both roles must agree on bit for bit: labels, commitments, signed payloads."""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable

import numpy as np

from secagg.crypto import shamir
from secagg.protocol.messages import Accusation

SELF_MASK_SEED_BYTES = 16
MASK_KEY_BYTES = 32
SELF_MASK_SHARE_BYTES = 4 * shamir.limbs_for(SELF_MASK_SEED_BYTES)
MASK_KEY_SHARE_BYTES = 4 * shamir.limbs_for(MASK_KEY_BYTES)
SEALED_PLAINTEXT_BYTES = SELF_MASK_SHARE_BYTES + MASK_KEY_SHARE_BYTES

CHANNEL_PURPOSE = b"channel"
MASK_PURPOSE = b"pair-mask"
SHARE_LABEL = b"share"
MAX_VECTOR_LENGTH = 1 << 32


def word_dtype(bits: int) -> np.dtype:
    return np.dtype(np.uint32) if bits == 32 else np.dtype(np.uint64)


def share_point(party: int) -> int:
    """Shamir x-coordinate of a party (0 is reserved for the secret)."""
    return party + 1


def self_mask_commitment(round_id: bytes, party: int, seed: bytes) -> bytes:
    """Binding commitment to a client's self-mask seed.

    The server checks each reconstructed seed against it, so inconsistent or
    forged shares make the round abort instead of producing a wrong sum. The
    seed has 128 bits of entropy, so the hash reveals nothing useful about it.
    """
    return hashlib.sha256(
        b"secagg/v1/self-mask-commitment" + round_id + struct.pack(">I", party) + seed
    ).digest()


def share_context(
    sender_channel_key: bytes,
    sender_mask_key: bytes,
    recipient_channel_key: bytes,
    recipient_mask_key: bytes,
) -> bytes:
    """Both parties' public keys, bound into the AEAD of every sealed share.

    A share opens only if sender and recipient saw the same four keys. Without
    this, a mask key corrupted in transit (or by a faulty relay) would make two
    neighbours derive different pair seeds whose masks never cancel, and with no
    dropout nobody would ever notice: the sum would be silently wrong.
    """
    return sender_channel_key + sender_mask_key + recipient_channel_key + recipient_mask_key


def advertise_payload(round_id: bytes, party: int, channel_key: bytes, mask_key: bytes) -> bytes:
    """What a client signs when it advertises its keys (active variant)."""
    return b"secagg/v1/advertise" + round_id + struct.pack(">I", party) + channel_key + mask_key


def consistency_payload(round_id: bytes, survivors: Iterable[int]) -> bytes:
    """What every survivor signs in the consistency check (active variant)."""
    ids = tuple(survivors)
    return b"secagg/v1/consistency" + round_id + struct.pack(f">I{len(ids)}I", len(ids), *ids)


def accusation_payload(round_id: bytes, party: int, accusations: Iterable[Accusation]) -> bytes:
    """What a client signs when it accuses neighbours in its masked input (active variant).

    Binds the round, the accuser, and every accused party with the mask key the
    accuser saw for it, so the server can neither invent nor alter an accusation.
    The label changed with message version 3, whose accusations carry no pair seed:
    a version 2 signature never verifies here.
    """
    items = tuple(accusations)
    parts = [b"secagg/v3/accusation", round_id, struct.pack(">II", party, len(items))]
    for item in items:
        parts += [struct.pack(">I", item.party), item.mask_key]
    return b"".join(parts)


def is_strictly_increasing(ids: tuple[int, ...]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))
