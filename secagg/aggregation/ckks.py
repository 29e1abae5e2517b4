"""The CKKS backend: clients encrypt, the server adds ciphertexts, the key holder decrypts.

Behind the common interface (:mod:`secagg.aggregation.base`) a round is:

* ``start_round``: the *key holder* (:class:`~secagg.he.keys.KeyHolder`)
  generates a key pair for parameters chosen for this round's size, value bound
  and precision (:func:`~secagg.he.params.choose_parameters`); the server
  loads only the public context (it provably holds no secret key); clients get
  the public context (``mode="key_holder"``) or, in the NVIDIA FLARE style
  (``mode="every_client"``), the secret context too;
* ``encoder(p).encode(update)``: the update's chunks of ``slots`` values, each a
  checked envelope, framed into one contribution;
* ``receive``: the server adds the client's ciphertexts into its running
  encrypted sum (:class:`~secagg.he.vectors.EncryptedSum`), refusing malformed,
  foreign-context or duplicate contributions with typed errors;
* ``finish``: the key holder decrypts the sum. A sum of fewer than two
  contributions is never decrypted (it would be one client's update).

Error: CKKS is approximate; the report's bound is the parameters' documented
``error_bound`` (encryption noise growing as sqrt(n), plus float rounding).
Threat model: the server learns nothing from ciphertexts (IND-CPA under RLWE at
128-bit security); whoever holds the secret key can decrypt any single
ciphertext it sees, so the key holder must never receive individual uploads,
and in every-client mode any client that sees another's upload can read it.
"""

from __future__ import annotations

import struct

import numpy as np

from secagg.aggregation.base import (
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    ContributionEncoder,
    RoundAggregator,
    admit,
    check_round_size,
    check_update,
    split_parties,
)
from secagg.errors import (
    ConfigurationError,
    MalformedMessage,
    RoundAborted,
    UnknownParty,
)
from secagg.he.errors import InconsistentUpload
from secagg.he.params import CKKSParameters, choose_parameters

_FRAME = struct.Struct("<4sBI")  # magic, version, chunk count
_LENGTH = struct.Struct("<I")
_MAGIC = b"SACK"
_VERSION = 1
MODES = ("key_holder", "every_client")


def frame_chunks(chunks: list[bytes]) -> bytes:
    """One contribution: a count, then each chunk envelope with its length."""
    parts = [_FRAME.pack(_MAGIC, _VERSION, len(chunks))]
    for chunk in chunks:
        parts += [_LENGTH.pack(len(chunk)), chunk]
    return b"".join(parts)


def unframe_chunks(data: bytes, expected_count: int) -> list[bytes]:
    """The chunk envelopes of a contribution; MalformedMessage on any framing fault."""
    view = memoryview(data)
    if len(view) < _FRAME.size:
        raise MalformedMessage("CKKS contribution shorter than its header")
    magic, version, count = _FRAME.unpack_from(view)
    if magic != _MAGIC or version != _VERSION:
        raise MalformedMessage("not a CKKS contribution of a known version")
    if count != expected_count:
        raise MalformedMessage(f"expected {expected_count} ciphertext chunks, got {count}")
    chunks, offset = [], _FRAME.size
    for _ in range(count):
        if offset + _LENGTH.size > len(view):
            raise MalformedMessage("CKKS contribution truncated")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + length > len(view):
            raise MalformedMessage("CKKS contribution truncated")
        chunks.append(bytes(view[offset : offset + length]))
        offset += length
    if offset != len(view):
        raise MalformedMessage("trailing bytes after the last CKKS chunk")
    return chunks


class _CKKSEncoder(ContributionEncoder):
    def __init__(self, owner: CKKSRound, party: int) -> None:
        self.party = party
        self._owner = owner

    def encode(self, update: np.ndarray) -> bytes:
        from secagg.he.vectors import encrypt_vector

        x = check_update(update, self._owner.dimension)
        return frame_chunks(encrypt_vector(self._owner.client_context, x))


class CKKSRound(RoundAggregator):
    """One round of CKKS aggregation behind the common interface."""

    backend = "ckks"

    def __init__(self, num_clients: int, dimension: int, params: CKKSParameters, mode: str) -> None:
        from secagg.he.keys import KeyHolder, KeyMode, SharedKeyClient
        from secagg.he.vectors import EncryptedSum, chunk_count

        check_round_size(num_clients, dimension)
        self.num_clients = num_clients
        self.dimension = dimension
        self.params = params
        self.mode = mode
        key_mode = KeyMode.EVERY_CLIENT if mode == "every_client" else KeyMode.KEY_HOLDER
        self.key_holder = KeyHolder(params, mode=key_mode, min_contributions=min(2, num_clients))
        self.server_context = self.key_holder.public_context()  # no secret key in it
        if key_mode is KeyMode.EVERY_CLIENT:
            self.client_context = SharedKeyClient.from_bytes(
                self.key_holder.export_client_secret_context(),
                params,
                expected_fingerprint=self.key_holder.fingerprint,
            )
        else:
            self.client_context = self.server_context
        self._sum = EncryptedSum(self.server_context, dimension)
        self._chunks = chunk_count(dimension, params.slots)
        self._received: set[int] = set()

    def encoder(self, party: int) -> ContributionEncoder:
        if not 0 <= party < self.num_clients:
            raise UnknownParty(f"client {party} is not in this round")
        return _CKKSEncoder(self, party)

    def receive(self, party: int, contribution: bytes) -> None:
        admit(party, self.num_clients, self._received)
        self._sum.add(unframe_chunks(bytes(contribution), self._chunks))  # all or nothing
        self._received.add(party)

    def finish(self) -> AggregationResult:
        contributed, dropped = split_parties(self.num_clients, self._received)
        if not contributed:
            raise RoundAborted("no client contributed", phase="he-aggregate")
        try:
            total = self.key_holder.decrypt_aggregate(
                self._sum.to_chunks(), dimension=self.dimension
            )
        except InconsistentUpload as exc:
            raise RoundAborted(str(exc), phase="he-decrypt") from None
        report = AggregationReport(
            backend=self.backend,
            num_clients=self.num_clients,
            dimension=self.dimension,
            contributed=contributed,
            dropped=dropped,
            error_bound=self.params.error_bound(len(contributed)),
            threat_model=(
                "server sees only ciphertexts (RLWE, 128-bit); the secret key is held by "
                + ("every client" if self.mode == "every_client" else "the key holder alone")
            ),
            details={"mode": self.mode, **self.params.describe()},
        )
        return AggregationResult(np.asarray(total, dtype=np.float64), report)


class CKKSBackend(AggregationBackend):
    """CKKS through TenSEAL, parameters chosen per round for ``value_bound`` and precision.

    ``precision`` is the allowed absolute error of the sum per coordinate
    (default ``1e-6 * value_bound``); ``mode`` is ``"key_holder"`` (default:
    one party holds the secret key) or ``"every_client"`` (as NVIDIA FLARE).
    """

    name = "ckks"

    def __init__(
        self,
        *,
        value_bound: float = 1.0,
        precision: float | None = None,
        mode: str = "key_holder",
        security_bits: int = 128,
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError(f"mode must be one of {MODES}, not {mode!r}")
        self.value_bound = float(value_bound)
        self.precision = precision if precision is not None else 1e-6 * self.value_bound
        self.mode = mode
        self.security_bits = security_bits

    def start_round(self, num_clients: int, dimension: int) -> CKKSRound:
        params = choose_parameters(
            num_clients, self.value_bound, self.precision, security_bits=self.security_bits
        )
        return CKKSRound(num_clients, dimension, params, self.mode)
