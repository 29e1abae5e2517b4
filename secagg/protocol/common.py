"""Definitions both roles must agree on bit for bit: labels, commitments, signed payloads."""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable

import numpy as np

from secagg.crypto import shamir
from secagg.protocol.messages import Accusation, RoundSetup

SELF_MASK_SEED_BYTES = 16
MASK_KEY_BYTES = 32
SELF_MASK_SHARE_BYTES = 4 * shamir.limbs_for(SELF_MASK_SEED_BYTES)
MASK_KEY_SHARE_BYTES = 4 * shamir.limbs_for(MASK_KEY_BYTES)
SEALED_PLAINTEXT_BYTES = SELF_MASK_SHARE_BYTES + MASK_KEY_SHARE_BYTES

CHANNEL_PURPOSE = b"channel"
MASK_PURPOSE = b"pair-mask"
#: the AEAD label of a sealed share; v2 since the setup digest is bound with it
#: (:func:`share_context`): a v1 share (keys only) never opens as a v2 one
SHARE_LABEL = b"secagg/v2/share"
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
    setup: bytes,
) -> bytes:
    """Both parties' public keys and the digest of the setup each was shown, bound into
    the AEAD of every sealed share.

    A share opens only if sender and recipient saw the same four keys. Without
    this, a mask key corrupted in transit (or by a faulty relay) would make two
    neighbours derive different pair seeds whose masks never cancel, and with no
    dropout nobody would ever notice: the sum would be silently wrong.

    ``setup`` is the :func:`setup_digest` of the setup the sealing (or opening) party
    received, so a share opens only between two clients shown the same setup. This is
    the passive variant's binding (the active one signs the digest with the keys,
    :func:`advertise_payload`): a server that gave each client its own graph seed split
    the survivors into groups that masked and shared only within themselves while each
    client's own graph showed them connected (n = 20 defaults: two groups of 4, both
    sums recovered). Now every such share fails to open, its sender is accused, and no
    holder keeps a share to reveal. The label went to v2 with it (:data:`SHARE_LABEL`).
    """
    return sender_channel_key + sender_mask_key + recipient_channel_key + recipient_mask_key + setup


def setup_digest(setup: RoundSetup) -> bytes:
    """SHA-256 of every field of a ``RoundSetup`` but its recipient: the round a party
    was shown, in 32 bytes that two parties compare by signing it.

    Why: the setup comes from the server, one copy per client, and nothing made the
    copies agree. A server that gave each client its own graph seed chose every
    client's neighbourhood separately: in the active variant at the n = 20 defaults
    (k = 8, t = 6) it split the survivors into two groups of 6 that masked only among
    themselves while each client's own graph showed them connected, so the unmasking
    gave it each group's sum (two partial sums of 6 inputs) with every check passing.
    Every signed key advertisement carries this digest (:func:`advertise_payload`),
    so a client accepts keys only from neighbours shown the very same setup; its
    pair masks then run within one graph, in which its connectivity check holds.
    The population (v2 of the label) too: the colluders each client counts follow from it.
    """
    fields = struct.pack(
        ">IQBIBIBI",
        setup.num_clients,
        setup.vector_length,
        setup.bits,
        setup.threshold,
        int(setup.graph),
        setup.degree,
        int(setup.active),
        setup.population,
    )
    return hashlib.sha256(
        b"secagg/v2/round-setup"
        + setup.round_id
        + fields
        + struct.pack(">I", len(setup.graph_seed))
        + setup.graph_seed
    ).digest()


def advertise_payload(
    round_id: bytes, party: int, channel_key: bytes, mask_key: bytes, setup: bytes
) -> bytes:
    """What a client signs when it advertises its keys (active variant).

    ``setup`` is the :func:`setup_digest` of the setup the client received, so the
    signature verifies only for a party (a neighbour or the server) holding the same
    setup. The label changed (v1 to v2) when the digest was added: a signature made
    without it never verifies here."""
    return (
        b"secagg/v2/advertise"
        + round_id
        + struct.pack(">I", party)
        + channel_key
        + mask_key
        + setup
    )


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
