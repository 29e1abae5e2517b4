"""Protocol messages: small immutable records and their versioned binary codec.

Every message is a frozen dataclass. On the wire it is::

    magic "SA" | version u8 | type u8 | round_id (16 bytes) | party u32 | body

where ``party`` is the sender for client-to-server messages and the recipient
for server-to-client ones. All integers are big-endian except vector payloads,
which are little-endian words (numpy's native order here, so decoding a masked
vector is a zero-copy view). The decoder checks every length against the bytes
actually present, refuses unknown versions, types and enum values, and insists
that the whole buffer is consumed: truncated, padded or garbled input raises
:class:`~secagg.errors.MalformedMessage` and never anything else. Nothing is
ever unpickled.

Version 2 added the accusations, and their signature, to ``MaskedInput``.
Version 3 replaced the pair seed in each accusation by the mask key
the accuser saw for the accused: an accuser now masks with the accused as with
any neighbour, because the seed it used to send was half of the accused's own
pair mask, and a server that garbled relayed shares collected enough of them to
unmask an input. Messages of earlier versions are refused rather than misread (a
version 2 peer would reveal seeds, and leave a pair mask one-sided, that this
version neither wants nor removes).
Version 4 (this one) added ``RoundSetup.population``, the clients the round was drawn
from, whose colluders its k and t are sized for and each client counts: a version 3
client would take a sampled round's setup and count only the round's own colluders
(review of colluders, 2026-12-07), so the versions refuse each other's messages.

Size: about 540 lines: every message class and its exact codec in one place, so a
reviewer compares each layout with its class without a search.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import typing
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np

from secagg.errors import MalformedMessage

MAGIC = b"SA"
VERSION = 4
ROUND_ID_BYTES = 16
KEY_BYTES = 32
SIGNATURE_BYTES = 64
COMMITMENT_BYTES = 32
GRAPH_SEED_BYTES = 32
PAIR_SEED_BYTES = 16
MAX_REASON_BYTES = 1024
_HEADER = struct.Struct(">2sBB16sI")


class MessageType(IntEnum):
    ROUND_SETUP = 1
    ADVERTISE_KEYS = 2
    KEY_DIRECTORY = 3
    SHARE_KEYS = 4
    SHARE_DELIVERY = 5
    MASKED_INPUT = 6
    CONSISTENCY_REQUEST = 7
    CONSISTENCY_SIGNATURE = 8
    UNMASKING_REQUEST = 9
    UNMASKING_SHARES = 10
    ROUND_ABORT = 11


class GraphKind(IntEnum):
    COMPLETE = 0
    HARARY = 1


# --- records nested inside messages -----------------------------------------


@dataclass(frozen=True)
class KeyEntry:
    """A client's advertised public keys, as relayed by the server."""

    party: int
    channel_key: bytes
    mask_key: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class SealedShare:
    """An AEAD-sealed pair of Shamir shares; ``peer`` is the other end of the pair."""

    peer: int
    ciphertext: bytes


@dataclass(frozen=True)
class RevealedShare:
    """A Shamir share revealed at unmasking; ``owner`` is whose secret it shares."""

    owner: int
    share: bytes


@dataclass(frozen=True)
class PartySignature:
    party: int
    signature: bytes


@dataclass(frozen=True)
class Accusation:
    """A neighbour whose sealed shares did not open, named by the recipient.

    It says that the accuser holds none of the neighbour's shares, so the server
    expects none from it at unmasking. The accuser still masks with the accused
    (the pair seed comes from the advertised keys, not from the shares) and
    reveals nothing secret about that pair: the seed of a pair mask is half of the
    *other* party's mask too, and a server that garbles shares in relay could make
    every neighbour of a victim accuse it and hand over all of its seeds.

    ``mask_key`` is the public mask key the accuser saw for the accused. A share
    that does not open may mean that a relay altered a key; the pair seeds then
    differ and the two masks would not cancel. The server compares it with the
    key the accused advertised (a public key: nothing to hide) and refuses a
    masked input whose mask it could not remove.
    """

    party: int
    mask_key: bytes


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    round_id: bytes
    TYPE: ClassVar[MessageType]


@dataclass(frozen=True)
class ServerMessage(Message):
    recipient: int


@dataclass(frozen=True)
class ClientMessage(Message):
    sender: int


@dataclass(frozen=True)
class RoundSetup(ServerMessage):
    """Phase 0: the round's public parameters, identical for every recipient.

    Sent in one copy per client, so "identical" is checked, not assumed: in the active
    variant each client signs its keys over :func:`~secagg.protocol.common.setup_digest`
    of its copy, and neighbours and the server verify over theirs."""

    num_clients: int
    vector_length: int
    bits: int
    threshold: int
    graph: GraphKind
    degree: int
    graph_seed: bytes
    active: bool
    #: the clients the round was drawn from, whose colluders (all of which the server
    #: that draws it may put in it) k and t are sized for; 0: the round is its own
    #: population (not sampled). Otherwise at least ``num_clients``.
    population: int = 0
    TYPE: ClassVar[MessageType] = MessageType.ROUND_SETUP


@dataclass(frozen=True)
class AdvertiseKeys(ClientMessage):
    """Phase 1: a client's channel and mask public keys (signed when active)."""

    channel_key: bytes
    mask_key: bytes
    signature: bytes = b""
    TYPE: ClassVar[MessageType] = MessageType.ADVERTISE_KEYS


@dataclass(frozen=True)
class KeyDirectory(ServerMessage):
    """Phase 1 reply: the keys of the recipient's neighbours that advertised."""

    entries: tuple[KeyEntry, ...]
    TYPE: ClassVar[MessageType] = MessageType.KEY_DIRECTORY


@dataclass(frozen=True)
class ShareKeys(ClientMessage):
    """Phase 2: sealed shares for each neighbour, and a commitment to the self-mask seed."""

    self_mask_commitment: bytes
    shares: tuple[SealedShare, ...]
    TYPE: ClassVar[MessageType] = MessageType.SHARE_KEYS


@dataclass(frozen=True)
class ShareDelivery(ServerMessage):
    """Phase 2 reply: the sealed shares addressed to the recipient."""

    shares: tuple[SealedShare, ...]
    TYPE: ClassVar[MessageType] = MessageType.SHARE_DELIVERY


@dataclass(frozen=True, eq=False)
class MaskedInput(ClientMessage):
    """Phase 3: the masked vector y_u, words of ``bits`` bits.

    ``accusations`` name the neighbours whose shares did not open (sorted by
    party); in the active variant a non-empty list carries the sender's
    Ed25519 ``signature`` over it (``common.accusation_payload``).
    """

    bits: int
    vector: np.ndarray = field(repr=False)
    accusations: tuple[Accusation, ...] = ()
    signature: bytes = b""
    TYPE: ClassVar[MessageType] = MessageType.MASKED_INPUT


@dataclass(frozen=True)
class ConsistencyRequest(ServerMessage):
    """Phase 4 (active variant): the survivor set U3 that every client must sign."""

    survivors: tuple[int, ...]
    TYPE: ClassVar[MessageType] = MessageType.CONSISTENCY_REQUEST


@dataclass(frozen=True)
class ConsistencySignature(ClientMessage):
    signature: bytes
    TYPE: ClassVar[MessageType] = MessageType.CONSISTENCY_SIGNATURE


@dataclass(frozen=True)
class UnmaskingRequest(ServerMessage):
    """Phase 5: who survived and who dropped, as the server claims it.

    A client reveals self-mask shares of ``survivors`` and mask-key shares of
    ``dropped``; a party in both lists is a privacy attack and is refused.
    """

    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[PartySignature, ...] = ()
    TYPE: ClassVar[MessageType] = MessageType.UNMASKING_REQUEST


@dataclass(frozen=True)
class UnmaskingShares(ClientMessage):
    self_mask_shares: tuple[RevealedShare, ...]
    mask_key_shares: tuple[RevealedShare, ...]
    TYPE: ClassVar[MessageType] = MessageType.UNMASKING_SHARES


@dataclass(frozen=True)
class RoundAbort(ServerMessage):
    reason: str
    TYPE: ClassVar[MessageType] = MessageType.ROUND_ABORT


# --- field types ----------------------------------------------------------------


@functools.cache
def _field_types(cls: type) -> tuple[tuple[str, object], ...]:
    """Each dataclass field of ``cls`` with its declared type, resolved once."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _has_type(value: object, hint: object) -> bool:
    """Whether ``value`` is of type ``hint`` as the codec would build it: an exact
    ``int`` (no ``bool``, float or numpy scalar), ``bytes`` (no str or bytearray), a
    ``tuple`` (not a list) whose items all have their type, a record whose fields do."""
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool or hint is bytes or hint is str or hint is np.ndarray:
        return isinstance(value, hint)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return isinstance(value, hint)
    if typing.get_origin(hint) is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if item is int and set(map(type, value)) <= {int}:
            # fast path for party lists: an unmasking request names every survivor,
            # and each client checks it (n = 1000: 0.47 ms a message item by item,
            # about 0.05 ms so); anything else falls through to the exact rule
            return True
        return all(_has_type(v, item) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, hint) and all(
            _has_type(getattr(value, name), inner) for name, inner in _field_types(hint)
        )
    raise AssertionError(f"no type check for {hint!r}")  # a new field type: add it here


def check_fields(message: Message) -> None:
    """Raise :class:`MalformedMessage` unless every field of ``message`` (and of the
    records it holds) has the type the decoder gives it.

    Why: both roles take message objects, not only bytes (a transport or a test hands
    them in), and trusted every field's type. A ``str`` key or commitment, ``None`` for
    a tuple, ``True`` for a party id failed as a bare TypeError deep in a handler, or
    was accepted and failed later elsewhere (a ``str`` commitment stored at the share
    phase raised from ``compare_digest`` at the unmasking close, leaving the round
    stuck). O(fields + items): a client message holds O(degree) items."""
    for name, hint in _field_types(type(message)):
        if not _has_type(getattr(message, name), hint):
            raise MalformedMessage(
                f"{type(message).__name__}.{name} must be {_type_name(hint)}, not "
                f"{type(getattr(message, name)).__name__}"
            )


@functools.cache
def _scalar_field_types(cls: type) -> tuple[tuple[str, type], ...]:
    """The fields of ``cls`` that are not tuples, with their declared types (each a
    class: int, bool, bytes, str, an array or an IntEnum)."""
    scalars = tuple(
        (name, hint) for name, hint in _field_types(cls) if typing.get_origin(hint) is not tuple
    )
    for name, hint in scalars:  # a new kind of field: give it a check here
        assert isinstance(hint, type), f"{cls.__name__}.{name}: no scalar check for {hint!r}"
    return scalars  # type: ignore[return-value]


def _check_scalar_fields(message: Message) -> None:
    """Raise :class:`MalformedMessage` unless each field of ``message`` that is not a
    tuple has its declared type, by the rule of :func:`check_fields` (an ``int`` is no
    ``bool``).

    Why at encode: the writer turned a field into bytes by whatever conversion it took
    (``int(active)``, a ``u8`` of the graph kind), so ``active=2`` or a graph kind of 7
    went on the wire as a byte the peer refuses, and ``active="1"`` or ``1.0`` as a flag
    nobody set. The tuples are left to the writer, which reads every item anyway and
    checks the party ids as it packs them (``_Writer.party``, ``_Writer.ids``): ``struct``
    packed ``True`` as 1. Here a few isinstance tests per message (about 1 us for a
    round setup's ten fields)."""
    for name, hint in _scalar_field_types(type(message)):
        value = getattr(message, name)
        # an int field takes a plain int: a bool, or an IntEnum such as GraphKind.COMPLETE
        # given for ``degree``, went out as its number and came back as another type
        if not isinstance(value, hint) or (hint is int and type(value) is not int):
            raise MalformedMessage(
                f"cannot encode {type(message).__name__}: {name} must be "
                f"{_type_name(hint)}, not {type(value).__name__} {value!r}"[:300]
            )


def _type_name(hint: object) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("secagg.protocol.messages.", "")


# --- codec --------------------------------------------------------------------


def _is_party_id(value: object) -> bool:
    """An ``int`` as :func:`check_fields` takes one for a party id: no ``bool``, no
    numpy scalar (the decoder gives neither)."""
    return isinstance(value, int) and not isinstance(value, bool)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []

    def u8(self, v: int) -> None:
        self.parts.append(struct.pack(">B", v))

    def u32(self, v: int) -> None:
        self.parts.append(struct.pack(">I", v))

    def u64(self, v: int) -> None:
        self.parts.append(struct.pack(">Q", v))

    def fixed(self, data: bytes, size: int, what: str) -> None:
        if len(data) != size:
            raise MalformedMessage(f"{what} must be {size} bytes, got {len(data)}")
        self.parts.append(data)

    def blob(self, data: bytes) -> None:
        self.u32(len(data))
        self.parts.append(data)

    def signature(self, sig: bytes) -> None:
        if len(sig) not in (0, SIGNATURE_BYTES):
            raise MalformedMessage("a signature is empty or 64 bytes")
        self.u8(1 if sig else 0)
        if sig:
            self.parts.append(sig)

    def party(self, party: int, what: str) -> None:
        """A party id inside a record, of the type the decoder gives it (an ``int``, not
        a ``bool``): ``struct`` packs ``True`` as 1, so a record naming party ``True``
        reached the peer as one naming party 1, a value nobody set."""
        if type(party) is not int and not _is_party_id(party):
            raise MalformedMessage(f"{what} must be int, not {type(party).__name__} {party!r}")
        self.u32(party)

    def ids(self, ids: tuple[int, ...], what: str) -> None:
        """A list of party ids, read once (a survivor list names every survivor): copied
        to a tuple (free for a tuple), its item types checked at C speed, then packed.
        ``True`` and ``np.int64(3)`` went out as 1 and 3, which the peer reads as ints."""
        items = tuple(ids)
        if not set(map(type, items)) <= {int} and not all(map(_is_party_id, items)):
            odd = next(v for v in items if not _is_party_id(v))
            raise MalformedMessage(f"{what} must hold ints, not {type(odd).__name__} {odd!r}"[:300])
        self.u32(len(items))
        self.parts.append(struct.pack(f">{len(items)}I", *items))

    def result(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise MalformedMessage(f"truncated message: {what} needs {n} bytes")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def u64(self, what: str) -> int:
        return int.from_bytes(self.take(8, what), "big")

    def flag(self, what: str) -> bool:
        v = self.u8(what)
        if v > 1:
            raise MalformedMessage(f"{what} must be 0 or 1")
        return bool(v)

    def count(self, what: str, min_item_bytes: int) -> int:
        n = self.u32(what)
        if n * min_item_bytes > self.remaining():
            raise MalformedMessage(f"truncated message: {n} {what} cannot fit")
        return n

    def blob(self, what: str) -> bytes:
        return self.take(self.u32(what), what)

    def signature(self, what: str) -> bytes:
        return self.take(SIGNATURE_BYTES, what) if self.flag(what) else b""

    def ids(self, what: str) -> tuple[int, ...]:
        n = self.count(what, 4)
        return struct.unpack(f">{n}I", self.take(4 * n, what))

    def text(self, what: str) -> str:
        raw = self.blob(what)
        if len(raw) > MAX_REASON_BYTES:
            raise MalformedMessage(f"{what} too long")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"{what} is not UTF-8") from exc

    def finish(self) -> None:
        if self.remaining():
            raise MalformedMessage(f"{self.remaining()} trailing bytes after message")


_VECTOR_DTYPES = {32: np.dtype("<u4"), 64: np.dtype("<u8")}
#: the largest population a setup names: the parameter search's largest cohort
MAX_POPULATION = 1_000_000


def _check_population(num_clients: int, population: int) -> int:
    """``population`` if a setup may carry it: 0 (not sampled), or from ``num_clients``
    to :data:`MAX_POPULATION`; else :class:`MalformedMessage` (at encode and decode).

    Why bounded: a population below the round is no population it was drawn from, and
    one past the search's limit would make every client's parameter check refuse on a
    number no federation has."""
    if population != 0 and not num_clients <= population <= MAX_POPULATION:
        raise MalformedMessage(
            f"a round setup's population is 0 (not sampled) or in [num_clients = "
            f"{num_clients}, {MAX_POPULATION}], got {population}"
        )
    return population


def _vector_dtype(bits: int) -> np.dtype:
    """The wire's word type for ``bits`` (built once: ``np.dtype("<u4")`` costs about
    0.4 us a call, as much as the rest of a round setup's checks)."""
    dtype = _VECTOR_DTYPES.get(bits) if type(bits) is int else None
    if dtype is None:
        raise MalformedMessage(f"unsupported bit width {bits}")
    return dtype


def encode(message: Message) -> bytes:
    """Serialise ``message`` to bytes.

    Raises :class:`MalformedMessage` for a record the format cannot carry (wrong
    key or id sizes, integers out of range, a vector of the wrong word type), so
    a sender can never put bytes on the wire that a receiver would misread; a field
    that is not a tuple must have its declared type exactly (``active`` a bool, the
    graph a :class:`GraphKind`, an id an ``int``), as :func:`check_fields` says.
    """
    if isinstance(message, Message):
        _check_scalar_fields(message)
    try:
        return _encode(message)
    except (struct.error, TypeError, ValueError, AttributeError) as exc:
        # a field of the wrong type (None for bytes, a str for an id): before, TypeError
        # or AttributeError escaped a function that promises MalformedMessage
        raise MalformedMessage(f"cannot encode {type(message).__name__}: {exc}") from exc


def _utf8_prefix(text: str, limit: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``limit`` bytes on a character boundary.

    Why: the reason used to be cut at byte ``limit`` wherever that fell, so a long
    reason with a non-ASCII character across the cut ("ε", "—") encoded to bytes the
    decoder refuses as not UTF-8: every client then refused the abort as malformed
    and never learned that its round had ended. Lone surrogates become "?"."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", "ignore").encode("utf-8")


def _encode(message: Message) -> bytes:
    w = _Writer()
    party = message.recipient if isinstance(message, ServerMessage) else message.sender  # type: ignore[attr-defined]
    if len(message.round_id) != ROUND_ID_BYTES:
        raise MalformedMessage(f"round id must be {ROUND_ID_BYTES} bytes")
    w.parts.append(_HEADER.pack(MAGIC, VERSION, message.TYPE, message.round_id, party))
    match message:
        case RoundSetup():
            if message.bits not in _VECTOR_DTYPES:  # 16 went out, and every peer refused it
                raise MalformedMessage(
                    f"cannot encode RoundSetup: bits must be 32 or 64, not {message.bits}"
                )
            w.u32(message.num_clients)
            w.u64(message.vector_length)
            w.u8(message.bits)
            w.u32(message.threshold)
            w.u8(message.graph)
            w.u32(message.degree)
            w.fixed(message.graph_seed, GRAPH_SEED_BYTES, "graph seed")
            w.u8(int(message.active))
            _check_population(message.num_clients, message.population)
            w.u32(message.population)
        case AdvertiseKeys():
            w.fixed(message.channel_key, KEY_BYTES, "channel key")
            w.fixed(message.mask_key, KEY_BYTES, "mask key")
            w.signature(message.signature)
        case KeyDirectory():
            w.u32(len(message.entries))
            for e in message.entries:
                w.party(e.party, "KeyDirectory.entries[].party")
                w.fixed(e.channel_key, KEY_BYTES, "channel key")
                w.fixed(e.mask_key, KEY_BYTES, "mask key")
                w.signature(e.signature)
        case ShareKeys() | ShareDelivery():
            if isinstance(message, ShareKeys):
                w.fixed(message.self_mask_commitment, COMMITMENT_BYTES, "commitment")
            w.u32(len(message.shares))
            for s in message.shares:
                w.party(s.peer, "SealedShare.peer")
                w.blob(s.ciphertext)
        case MaskedInput():
            dtype = _vector_dtype(message.bits)
            if not isinstance(message.vector, np.ndarray) or message.vector.dtype != dtype:
                raise MalformedMessage(f"{message.bits}-bit masked vector needs dtype {dtype}")
            if message.vector.ndim != 1:
                raise MalformedMessage("masked vector must be 1-D")
            vec = np.ascontiguousarray(message.vector)
            w.u8(message.bits)
            w.u32(len(message.accusations))
            for a in message.accusations:
                w.party(a.party, "Accusation.party")
                w.fixed(a.mask_key, KEY_BYTES, "accused mask key")
            w.signature(message.signature)
            w.u64(len(vec))
            w.parts.append(memoryview(vec).cast("B"))
        case ConsistencyRequest():
            w.ids(message.survivors, "ConsistencyRequest.survivors")
        case ConsistencySignature():
            w.fixed(message.signature, SIGNATURE_BYTES, "signature")
        case UnmaskingRequest():
            w.ids(message.survivors, "UnmaskingRequest.survivors")
            w.ids(message.dropped, "UnmaskingRequest.dropped")
            w.u32(len(message.signatures))
            for ps in message.signatures:
                w.party(ps.party, "PartySignature.party")
                w.fixed(ps.signature, SIGNATURE_BYTES, "signature")
        case UnmaskingShares():
            for group in (message.self_mask_shares, message.mask_key_shares):
                w.u32(len(group))
                for r in group:
                    w.party(r.owner, "RevealedShare.owner")
                    w.blob(r.share)
        case RoundAbort():
            if not isinstance(message.reason, str):
                raise MalformedMessage(
                    f"an abort reason is text, not {type(message.reason).__name__}"
                )
            w.blob(_utf8_prefix(message.reason, MAX_REASON_BYTES))
        case _:
            raise MalformedMessage(f"not a protocol message: {type(message).__name__}")
    return w.result()


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Parse bytes into a message, or raise :class:`MalformedMessage`."""
    r = _Reader(data)
    magic, version, type_code, round_id, party = _HEADER.unpack(r.take(_HEADER.size, "header"))
    if magic != MAGIC:
        raise MalformedMessage("not a secagg message (bad magic)")
    if version != VERSION:
        raise MalformedMessage(
            f"unsupported message version {version} (this build speaks {VERSION})"
        )
    try:
        kind = MessageType(type_code)
    except ValueError as exc:
        raise MalformedMessage(f"unknown message type {type_code}") from exc
    msg: Message
    match kind:
        case MessageType.ROUND_SETUP:
            num_clients = r.u32("num_clients")
            vector_length = r.u64("vector_length")
            bits = r.u8("bits")
            _vector_dtype(bits)
            threshold = r.u32("threshold")
            graph_code = r.u8("graph")
            if graph_code not in (0, 1):
                raise MalformedMessage(f"unknown graph kind {graph_code}")
            msg = RoundSetup(
                round_id,
                party,
                num_clients,
                vector_length,
                bits,
                threshold,
                GraphKind(graph_code),
                r.u32("degree"),
                r.take(GRAPH_SEED_BYTES, "graph seed"),
                r.flag("active"),
                _check_population(num_clients, r.u32("population")),
            )
        case MessageType.ADVERTISE_KEYS:
            msg = AdvertiseKeys(
                round_id,
                party,
                r.take(KEY_BYTES, "channel key"),
                r.take(KEY_BYTES, "mask key"),
                r.signature("signature"),
            )
        case MessageType.KEY_DIRECTORY:
            n = r.count("key entries", 4 + 2 * KEY_BYTES + 1)
            entries = tuple(
                KeyEntry(
                    r.u32("party"),
                    r.take(KEY_BYTES, "channel key"),
                    r.take(KEY_BYTES, "mask key"),
                    r.signature("signature"),
                )
                for _ in range(n)
            )
            msg = KeyDirectory(round_id, party, entries)
        case MessageType.SHARE_KEYS | MessageType.SHARE_DELIVERY:
            commitment = (
                r.take(COMMITMENT_BYTES, "commitment") if kind == MessageType.SHARE_KEYS else b""
            )
            n = r.count("sealed shares", 8)
            shares = tuple(SealedShare(r.u32("peer"), r.blob("ciphertext")) for _ in range(n))
            msg = (
                ShareKeys(round_id, party, commitment, shares)
                if kind == MessageType.SHARE_KEYS
                else ShareDelivery(round_id, party, shares)
            )
        case MessageType.MASKED_INPUT:
            bits = r.u8("bits")
            dtype = _vector_dtype(bits)
            n = r.count("accusations", 4 + KEY_BYTES)
            accusations = tuple(
                Accusation(r.u32("accused"), r.take(KEY_BYTES, "accused mask key"))
                for _ in range(n)
            )
            signature = r.signature("accusation signature")
            length = r.u64("vector length")
            if length * dtype.itemsize != r.remaining():
                raise MalformedMessage(
                    f"masked vector of {length} words needs {length * dtype.itemsize} bytes, "
                    f"{r.remaining()} present"
                )
            vector = np.frombuffer(r.data, dtype=dtype, count=length, offset=r.pos)
            r.pos = len(r.data)
            msg = MaskedInput(round_id, party, bits, vector, accusations, signature)
        case MessageType.CONSISTENCY_REQUEST:
            msg = ConsistencyRequest(round_id, party, r.ids("survivors"))
        case MessageType.CONSISTENCY_SIGNATURE:
            msg = ConsistencySignature(round_id, party, r.take(SIGNATURE_BYTES, "signature"))
        case MessageType.UNMASKING_REQUEST:
            survivors = r.ids("survivors")
            dropped = r.ids("dropped")
            n = r.count("signatures", 4 + SIGNATURE_BYTES)
            sigs = tuple(
                PartySignature(r.u32("party"), r.take(SIGNATURE_BYTES, "signature"))
                for _ in range(n)
            )
            msg = UnmaskingRequest(round_id, party, survivors, dropped, sigs)
        case MessageType.UNMASKING_SHARES:
            groups = []
            for what in ("self-mask shares", "mask-key shares"):
                n = r.count(what, 8)
                groups.append(
                    tuple(RevealedShare(r.u32("owner"), r.blob("share")) for _ in range(n))
                )
            msg = UnmaskingShares(round_id, party, groups[0], groups[1])
        case MessageType.ROUND_ABORT:
            msg = RoundAbort(round_id, party, r.text("reason"))
    r.finish()
    return msg
