"""The CKKS backend: clients encrypt, the server adds ciphertexts, the key holder decrypts.

Theory of operation
-------------------
Three roles, each a sans-I/O object:

* the **key holder** (:class:`KeyHolderSession`, the round's helper) makes one
  key pair per design point (clients, value bound, precision: the parameters
  follow from :func:`~secagg.he.params.choose_parameters`) and publishes only the
  public context when the server opens a round (the key request names the round's
  dimension and its federation, which the key holder checks against its own there,
  before any branch encrypts); later it decrypts *sums* of the opened round, of its
  federation (the decryption request names it too) and of its length that
  claim at least its own minimum of contributions, at most once per round number
  (increasing) and up to its lifetime cap, clamps the exact sum into what the
  contributions it claims can add up to, adds Gaussian noise of at least its own
  std (the server may ask for more, never less; exact CKKS decryptions can leak the
  secret key, Li and Micciancio 2021) and returns the noised sum with the std it
  added. Its rules are its
  :class:`~secagg.aggregation.keyholder_policy.KeyHolderPolicy`, never the
  server's (security review H3), and a request they refuse is answered with a
  refusal (a reason code and a short text, :func:`refusal_reply`);
* the **server** (:class:`CKKSServer`) asks for the key for the round's dimension
  (phase ``key``), announces the spec with the public context (phase
  ``contribution``), adds the clients' ciphertexts as they arrive into an
  :class:`~secagg.he.vectors.EncryptedSum` built from the round's own parameters
  and the public context as opaque bytes (it holds no key at all, and hands
  nothing it receives, neither the key holder's context nor the clients'
  ciphertexts, to TenSEAL or SEAL), and at the end of the phase asks the key
  holder to decrypt (phase ``decrypt``); the key holder's refusal of either request
  aborts the round at once, with its reason;
* each **client** (:class:`CKKSClient`) checks the public context against its
  pinned fingerprint (without a pin, in memory: only a key a key holder of its own
  process published) before TenSEAL parses it, then refuses a
  context that holds a secret key or has other parameters than the spec's (the
  server, which parses nothing, cannot), and uploads its update's chunks, each a
  checked envelope, framed into one contribution.

A sum that claims fewer than two contributions is never decrypted (it would be
one client's update); the claim is the server's, so against a malicious server
this check is not sound (docs/backends.md says what is). Error: CKKS is
approximate; the report's bound is the parameters' documented ``error_bound``
(encryption noise growing as sqrt(n), plus float rounding) plus
:data:`~secagg.aggregation.keyholder_policy.RANGE_TAIL_Z` (9) times the noise std the
key holder reports (the tail a reply is accepted within: a Box-Muller deviate is at most
8.6 std), which is also
:attr:`~secagg.aggregation.base.AggregationReport.noise_stddev`. Threat model:
the server learns nothing from ciphertexts (IND-CPA under RLWE at 128-bit
security); the key holder can decrypt any single ciphertext it sees, so it must
never receive individual uploads.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import numbers
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np

from secagg.aggregation.base import (
    HELPER,
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    Announce,
    ClientSession,
    HelperSession,
    Outgoing,
    Phase,
    PhasedServerSession,
    RoundIdentity,
    RoundSpec,
    ToParty,
    admit,
    check_bound,
    check_party,
    check_round_size,
    check_update,
    payload_bytes,
    spec_label,
    split_parties,
)
from secagg.aggregation.keyholder_policy import (
    MAX_NOISE_STDDEV,
    MIN_CONTRIBUTIONS_FLOOR,
    RANGE_TAIL_Z,
    DecryptionCapReached,
    DecryptionRecord,
    KeyHolderPolicy,
    KeyHolderRefusal,
    OpeningAllowance,
    RoundAlreadyServed,
    RoundSuperseded,
    WrongDimension,
    WrongFederation,
    check_federation,
    clamp_to_plausible,
    config_path,
    configless_caps,
    opened_path,
    plausible_range,
)
from secagg.aggregation.policy import FEDERATION_NAME_PATTERN, BranchPolicy
from secagg.aggregation.spec import Reader, Writer, encode_spec
from secagg.crypto.stream import KeyedStream
from secagg.durable import read_regular_file, write_json_atomically
from secagg.errors import (
    ConfigurationError,
    InvalidMessage,
    MalformedMessage,
    PolicyRefused,
    RoundAborted,
    SecAggError,
    UnexpectedMessage,
    printable_line,
)
from secagg.he.params import CKKSParameters, choose_parameters

log = logging.getLogger("secagg.keyholder")

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


def framed_size(count: int, chunk_bytes: int) -> int:
    """Exact bytes of a contribution of ``count`` chunk envelopes of ``chunk_bytes`` each."""
    return _FRAME.size + count * (_LENGTH.size + chunk_bytes)


def unframe_chunks(
    data: bytes | memoryview, expected_count: int, *, chunk_bytes: int | None = None
) -> list[memoryview]:
    """The chunk envelopes of a contribution, as read-only views into ``data``;
    MalformedMessage on any framing fault.

    With ``chunk_bytes`` (every envelope's exact size, which the round's parameters
    fix), a contribution of any other total size is refused first, before a byte of it
    is copied: a client sending the right chunk count with oversize chunks cost the
    server a copy of its whole upload before the first chunk's size was checked.

    The chunks are views, not copies: :func:`~secagg.he.chunks.read_vector` reads each
    envelope's header into integers and unpacks its residues into arrays of its own,
    and nothing keeps an envelope, so copying every chunk out of the frame only cost
    the upload's size again at the peak of every add (26.4 MB above the sum at
    d = 10^6 with a 9.8 MB upload, 16.6 MB without the copies). ``data`` must not
    change while they are read: the callers pass bytes, or a copy of a mutable buffer.
    """
    view = memoryview(data).toreadonly()
    if chunk_bytes is not None and view.nbytes != framed_size(expected_count, chunk_bytes):
        raise MalformedMessage(
            f"CKKS contribution of {view.nbytes} bytes; {expected_count} chunks of these "
            f"parameters take exactly {framed_size(expected_count, chunk_bytes)}"
        )
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
        chunks.append(view[offset : offset + length])
        offset += length
    if offset != len(view):
        raise MalformedMessage("trailing bytes after the last CKKS chunk")
    return chunks


# --- the key holder's requests and replies -------------------------------------

_HELPER_MAGIC = b"SAKH"
_HELPER_HEAD = struct.Struct("<4sBB")
#: 2: the decrypted reply carries the noise std the key holder added;
#: 3: the key request carries the round's dimension (the key holder refuses a round of
#: another length when it is opened, before any branch encrypts, and then decrypts only
#: the length the round was opened with). Kind 5, the refusal (a reason code and a short
#: text, so the server aborts at once), was added within version 3: an older peer
#: refuses it as a kind it does not expect and waits out the deadline, as before;
#: 4: the key and decryption requests name the federation (the key holder refuses
#: another's: a splice of federation A's aggregate into B's request), and refusal code 10
_HELPER_VERSION = 4
_KEY_REQUEST, _KEY_PUBLIC, _DECRYPT, _DECRYPTED, _REFUSED = 1, 2, 3, 4, 5
#: the noise std a decrypted reply reports, right after its header
_NOISE_FIELD = struct.Struct("<d")
#: the key holder draws its noise this many coordinates at a time (memory, not privacy:
#: every slice is N(0, std^2) from its own OS-keyed stream)
_NOISE_SLICE = 1 << 16


def _helper_message(kind: int, body: bytes) -> bytes:
    return _HELPER_HEAD.pack(_HELPER_MAGIC, _HELPER_VERSION, kind) + body


def _check_helper_head(data: bytes | memoryview, expected: int) -> None:
    """Refuse a key-holder message of another magic, version or kind (nothing copied)."""
    if len(data) < _HELPER_HEAD.size:
        raise MalformedMessage("key-holder message shorter than its header")
    magic, version, kind = _HELPER_HEAD.unpack_from(data)
    if magic != _HELPER_MAGIC:
        raise MalformedMessage("not a key-holder message")
    if version != _HELPER_VERSION:
        # said, not misparsed: a version-2 key request is a design point without the
        # round's dimension, and its fields would read as another request's
        raise MalformedMessage(
            f"a key-holder message of version {version}; this build speaks version "
            f"{_HELPER_VERSION} only (the server and the key holder must run the same "
            "secagg release)"
        )
    if kind != expected:
        raise UnexpectedMessage(f"key-holder message of kind {kind}, expected {expected}")


def _read_helper_message(data: bytes | memoryview, expected: int) -> Reader:
    _check_helper_head(data, expected)
    return Reader(bytes(data[_HELPER_HEAD.size :]), "key-holder message")


def _check_reply_size(data: bytes, kind: int, *, most: int, least: int = 0) -> None:
    """Refuse a key-holder reply of ``kind`` outside [least, most] bytes, before any copy
    (a reply of another kind is refused as such, by its header)."""
    _check_helper_head(data, kind)
    if not least <= len(data) <= most:
        size = f"exactly {most}" if least == most else f"at most {most}"
        raise MalformedMessage(f"key holder's reply of {len(data)} bytes; it takes {size}")


# --- the key holder's refusal (kind 5) ----------------------------------------------

#: a refusal's reason code, by the class of what the key holder raised (the first match
#: of :data:`_REFUSAL_CLASSES` wins); what the server records in the round's abort reason
REFUSAL_REASONS: dict[int, str] = {
    1: "round already served",
    2: "decryption cap reached",
    3: "wrong dimension",
    #: sent by key holders of releases before 2026-12-06 only, which refused a sum beyond
    #: the plausible range (now clamped into it and released: clamp_to_plausible); read
    #: so that such a refusal still aborts the round at once
    4: "implausible sum",
    5: "key holder policy",
    6: "invalid request",
    7: "unexpected request",
    8: "other refusal",
    9: "internal error",
    10: "wrong federation",
}
_REFUSAL_CLASSES: tuple[tuple[type[BaseException], int], ...] = (
    (RoundAlreadyServed, 1),
    (DecryptionCapReached, 2),
    (WrongDimension, 3),
    (WrongFederation, 10),
    (KeyHolderRefusal, 5),
    (MalformedMessage, 6),
    (InvalidMessage, 6),
    (UnexpectedMessage, 7),
    (SecAggError, 8),
)
#: the most UTF-8 bytes of text a refusal carries: a reason for a log line, never a
#: channel (a hostile key holder's text is cut to it, and cleaned, by the server too)
MAX_REFUSAL_TEXT = 200
_MAX_REFUSAL_BYTES = _HELPER_HEAD.size + 1 + _LENGTH.size + MAX_REFUSAL_TEXT


def printable(text: str, limit: int = MAX_REFUSAL_TEXT) -> str:
    """``text`` as one log-safe line of at most ``limit`` UTF-8 bytes: every control,
    format (bidirectional overrides), surrogate, private-use or unassigned character is
    a space, runs of spaces are one, and the cut falls on a character boundary.

    Why: the key holder's refusal text is another party's, and the server writes it into
    its log and its round's abort reason; a newline or an ANSI escape in it would forge
    log lines, a U+202E reorder what an operator reads."""
    line = printable_line(text)
    return line.encode("utf-8")[:limit].decode("utf-8", errors="ignore").rstrip()


def refusal_reply(error: BaseException) -> bytes:
    """The key holder's reply to a request it refused with ``error``: kind 5, a reason
    code (:data:`REFUSAL_REASONS`) and at most :data:`MAX_REFUSAL_TEXT` bytes of text.

    Why a reply at all: a refused request was answered with silence, so the server waited
    out the phase's deadline ("did not publish a key in time") before aborting a round the
    key holder had already refused; with it the server aborts at once, with the key
    holder's reason. The text of an error that is not a refusal (a bug a request
    provoked) is not sent, only its code: it says nothing the server needs."""
    code = next((c for kind, c in _REFUSAL_CLASSES if isinstance(error, kind)), 9)
    text = printable(str(error)) if isinstance(error, SecAggError) else ""
    body = Writer().u8(code).blob(text.encode("utf-8")).bytes()
    return _helper_message(_REFUSED, body)


def _helper_kind(data: bytes | memoryview) -> int:
    """A key-holder message's kind byte as sent (-1 if shorter than the header); the
    header is checked in full by whoever reads the message."""
    return data[_HELPER_HEAD.size - 1] if len(data) >= _HELPER_HEAD.size else -1


def vouched_noise(data: bytes | memoryview, size: int) -> float | None:
    """The noise std a key-holder message vouches its decrypted sum carries, read from its
    first 14 bytes without reading (or copying) the sum: None for a message whose kind
    byte does not say it is a decrypted sum (a refusal, a key); for one that does, the std
    it reports when the reply is ``size`` bytes (the header, the std and the sum's
    values) and that std a finite number >= 0, else 0.0: it vouches for none (another
    size, NaN, an infinity or a negative number).

    Why one rule for every malformed reply: the key holder has decrypted the round (it
    decrypts once) and its reply may carry the sum whatever else is wrong with it, so a
    report the server cannot take is no noise at all, the safe side. Before, a negative
    report was charged as no noise (epsilon infinite) while NaN or an infinity, refused by
    the reply's reader before the report was kept, left the charge at the planned noise
    (review of 2026-12-06), as did any reply of the wrong size. A malformed reply taking
    the charge to no noise at once also means a stream of them, each reporting a little
    less, cannot make the server write a new charge for each."""
    if len(data) < _HELPER_HEAD.size or _helper_kind(data) != _DECRYPTED:
        return None
    if len(data) != size:
        return 0.0
    (noise,) = _NOISE_FIELD.unpack_from(data, _HELPER_HEAD.size)
    if not math.isfinite(noise) or noise <= 0:
        return 0.0  # -0.0 too: a float the accountant reads as no noise either way
    return float(noise)


#: a key request's body: the design point (clients, value bound, precision), then the
#: round's dimension (version 3), then the federation's name (version 4: see
#: :func:`federation_field`)
_KEY_REQUEST_BODY = struct.Struct("<IddI")
#: a decryption request's fixed fields: dimension, requested noise std, the aggregate's
#: length; the framed aggregate follows them, then the federation's name (version 4)
_DECRYPT_FIELDS = struct.Struct("<IdI")
#: the longest federation name a request carries (the config's name rule)
_MAX_FEDERATION_BYTES = 64


def federation_field(federation: str) -> bytes:
    """A federation's name as the key holder's requests carry it: one length byte, then
    the ASCII name ("" for none: an in-memory run, bound to no federation).

    Why: a request named its round by number only, so a server could send federation A's
    aggregate in federation B's decryption request (the key holder answered round 5 of
    either alike), and one key serving two federations counted both in one sequence."""
    if federation and not (
        isinstance(federation, str) and FEDERATION_NAME_PATTERN.fullmatch(federation)
    ):
        raise ConfigurationError(
            f"a federation's name is 1 to 64 letters, digits, '.', '_' or '-', not "
            f"{federation!r:.80}"
        )
    name = (federation or "").encode("ascii")
    return bytes([len(name)]) + name


def _read_federation(view: bytes | memoryview, offset: int) -> tuple[str, int]:
    """The federation a request names at ``offset`` ("" for none) and the offset after it;
    a MalformedMessage for a field that is no federation's name (nothing copied but it)."""
    if offset >= len(view):
        raise MalformedMessage("key-holder request without its federation's name")
    size = view[offset]
    if size > _MAX_FEDERATION_BYTES or offset + 1 + size > len(view):
        raise MalformedMessage(f"a key-holder request's federation name of {size} bytes")
    raw = bytes(view[offset + 1 : offset + 1 + size])
    name = raw.decode("ascii", errors="replace")
    if size and not FEDERATION_NAME_PATTERN.fullmatch(name):
        raise MalformedMessage("a key-holder request's federation name is no federation's name")
    return name, offset + 1 + size


def decryption_request_size(params: CKKSParameters, dimension: int, federation: str = "") -> int:
    """Exact bytes of a decryption request for a sum of ``dimension`` values under ``params``
    for ``federation``: the key holder's header, the fixed fields, the framed aggregate
    envelopes and the federation's name."""
    from secagg.he.chunks import chunk_count

    count = chunk_count(dimension, params.values_per_ciphertext)
    named = len(federation_field(federation))
    return (
        _HELPER_HEAD.size + _DECRYPT_FIELDS.size + named + framed_size(count, _chunk_bytes(params))
    )


def decryption_request(
    params: CKKSParameters,
    dimension: int,
    noise_stddev: float,
    chunks: Iterable[bytes],
    *,
    federation: str = "",
) -> bytes:
    """The server's decryption request for an aggregate of ``dimension`` values under
    ``params`` in a round of ``federation`` (:func:`federation_field`; "" for none): the
    key holder's header, the fixed fields (dimension, requested noise std, the aggregate's
    length), the framed ``chunks`` and the federation's name: the bytes
    ``Writer().u32(d).f64(std).blob(frame_chunks(chunks)).bytes() + federation_field(name)``
    wrote.

    Why not that: each step copied the whole aggregate (the list of chunks, the frame,
    the blob, the body, the message), so building the request peaked at 4.0 times its
    size above the running sum (39.1 MB for the 9.8 MB request at d = 10^6). Here the
    request's exact size is allocated once and each chunk is written into it as the
    sum packs it (:meth:`~secagg.he.vectors.EncryptedSum.iter_chunks`); ``getvalue``
    hands that buffer over without a copy on CPython (elsewhere it may copy once, which
    costs memory, never correctness).
    """
    from secagg.he.chunks import chunk_count

    count = chunk_count(dimension, params.values_per_ciphertext)
    named = federation_field(federation)
    size = decryption_request_size(params, dimension, federation)
    fields = _HELPER_HEAD.size + _DECRYPT_FIELDS.size
    each = _chunk_bytes(params)
    out = io.BytesIO()
    out.seek(size - 1)  # one allocation of the exact size, filled from the start
    out.write(b"\0")
    out.seek(0)
    out.write(_HELPER_HEAD.pack(_HELPER_MAGIC, _HELPER_VERSION, _DECRYPT))
    out.write(_DECRYPT_FIELDS.pack(dimension, noise_stddev, size - fields - len(named)))
    out.write(_FRAME.pack(_MAGIC, _VERSION, count))
    written = 0
    for chunk in chunks:
        if len(chunk) != each or written == count:
            raise RoundAborted(
                f"the aggregate's chunk {written} is not one of {count} chunks of {each} "
                "bytes; nothing is sent",
                phase="ckks",
            )
        out.write(_LENGTH.pack(each))
        out.write(chunk)
        written += 1
    out.write(named)
    if written != count or out.tell() != size:
        raise RoundAborted(f"the aggregate has {written} of its {count} chunks", phase="ckks")
    return out.getvalue()


def _byte_view(payload: object) -> memoryview:
    """A payload as a flat view of its bytes, without copying it; MalformedMessage if it
    is not bytes-like."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise MalformedMessage(f"a payload is bytes, not {type(payload).__name__}")
    view = memoryview(payload)
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


@dataclass(frozen=True)
class DesignPoint:
    """What the CKKS parameters are chosen for; every party derives the same ones."""

    num_clients: int
    value_bound: float
    precision: float

    def parameters(self) -> CKKSParameters:
        try:
            return choose_parameters(self.num_clients, self.value_bound, self.precision)
        except ConfigurationError as exc:
            raise MalformedMessage(f"bad CKKS design point: {exc}") from None

    def write(self, w: Writer) -> Writer:
        return w.u32(self.num_clients).f64(self.value_bound).f64(self.precision)

    @classmethod
    def read(cls, r: Reader) -> DesignPoint:
        return cls(r.u32(), r.f64(positive=True), r.f64(positive=True))


@dataclass(frozen=True)
class CKKSSpec(RoundSpec):
    """A CKKS round: the design point and the key holder's public context."""

    backend = "ckks"
    design: DesignPoint = DesignPoint(2, 1.0, 1e-6)
    fingerprint: bytes = b""
    public_context: bytes = b""

    def __post_init__(self) -> None:
        """A round of no more clients than its design point sums.

        Why: the parameters (and the key) are made for ``design.num_clients`` summands,
        and the server's encrypted sum refuses every upload past them. A spec of 6
        clients on a design point of 2 was announced and approved (each branch checks
        ``num_clients`` against its own limits), every branch encrypted and uploaded,
        and four of the six uploads were then refused (TooManyContributions) after the
        branches had spent their work on them."""
        design = self.design
        if not isinstance(design, DesignPoint):
            raise ConfigurationError(f"a CKKS round's design is a DesignPoint, not {design!r}")
        if (
            isinstance(design.num_clients, numbers.Integral)
            and not isinstance(design.num_clients, bool)
            and isinstance(self.num_clients, numbers.Integral)
            and self.num_clients > design.num_clients
        ):
            raise ConfigurationError(
                f"a CKKS round of {self.num_clients} clients on a design point of "
                f"{design.num_clients}: its parameters sum at most {design.num_clients} uploads"
            )

    @property
    def input_bound(self) -> float:
        return self.design.value_bound

    def encode_body(self) -> bytes:
        w = self.design.write(Writer().u32(self.num_clients).u32(self.dimension))
        return w.blob(self.fingerprint).blob(self.public_context).bytes()

    @classmethod
    def decode_body(cls, body: bytes, name: str) -> CKKSSpec:
        r = Reader(body, "CKKS round spec")
        n, d, design = r.u32(), r.u32(), DesignPoint.read(r)
        fingerprint, public = r.blob(64), r.blob()
        r.end()
        try:
            check_round_size(n, d)
            return cls(n, d, design, fingerprint, public)
        except ConfigurationError as exc:
            raise MalformedMessage(f"bad CKKS round spec: {exc}") from None

    def check_policy(self, policy: BranchPolicy) -> None:
        """CKKS only with the pinned key holder: a key the server made would let it
        decrypt each upload. The noise is the key holder's (its own policy).

        A round of fewer than :data:`~secagg.aggregation.keyholder_policy.
        MIN_CONTRIBUTIONS_FLOOR` clients is refused here, before anything is trained or
        encrypted (setting ``round_spec``: no key of the branch's admits it). Why: the
        "sum" of a round of one is this branch's update; a CKKS spec of 1 client was
        approved, the branch trained, encrypted and uploaded, and only an honest key
        holder's floor of contributions stood between that upload and its decryption
        (hostile policy review, 2026-12-07). The branch cannot check how many uploads the
        server really adds (docs/backends.md), but it need not join a round whose own
        announcement says it is alone."""
        super().check_policy(policy)  # with the noise: a CKKS round carries no share
        policy.check_key_holder(self.fingerprint)
        if self.num_clients < MIN_CONTRIBUTIONS_FLOOR:
            raise PolicyRefused(
                "round_spec",
                f"a CKKS round of {self.num_clients} client: the sum the key holder "
                "decrypts would be this branch's update alone (a round needs at least "
                f"{MIN_CONTRIBUTIONS_FLOOR} clients)",
            )


# --- the key holder's opened round, durable ----------------------------------------

#: the version of the opened round's file (:func:`opened_path`); 2: it names the
#: federation the round is of (a version-1 file, which named none, is read as this key
#: holder's federation's: the same key wrote it, and its record serves that federation)
_OPENED_VERSION = 2
#: the largest ``<state>.opened`` read: its JSON (a round, a dimension, a federation, a
#: fingerprint) is under 300 bytes; past this it is no opened round, and is set aside
_MAX_OPENED_BYTES = 64 * 1024


# --- the keys this process published: the in-memory runs' trust ---------------------

#: the fingerprints of the public contexts the key holders of *this process* published
#: (:meth:`KeyHolderSession._publish`): the only contexts a client without a pinned
#: fingerprint lets TenSEAL parse (:func:`_unpinned_trust`)
_PUBLISHED_HERE: set[bytes] = set()
_PUBLISHED_LOCK = threading.Lock()


def _published_here(fingerprint: bytes) -> None:
    with _PUBLISHED_LOCK:
        _PUBLISHED_HERE.add(bytes(fingerprint))


def _unpinned_trust(fingerprint: bytes) -> bytes:
    """The fingerprint a client with no pinned key holder compares the context with:
    the spec's, only if a key holder of this process published it.

    Why: with no pin (``policy=None``: the in-memory driver, the simulator, benchmarks)
    the client compared the context with the fingerprint sent beside it, which proves
    nothing, and handed the relayed bytes to TenSEAL's parser (C++) as they came. The
    runtime always pins (a branch's policy refuses CKKS without a pin); in memory, the
    key holder is an object of the same process, whose fingerprints are recorded here
    when it publishes. Any other context is refused before it is parsed, naming the pin
    that would let it through."""
    with _PUBLISHED_LOCK:
        known = bytes(fingerprint) in _PUBLISHED_HERE
    if not known:
        raise PolicyRefused(
            "branch.key_holder_fingerprint",
            "no key holder fingerprint is pinned and no key holder of this process published "
            "this round's key: its context is not parsed (pin the key holder's fingerprint)",
        )
    return bytes(fingerprint)


# --- the three roles ---------------------------------------------------------------


class KeyHolderSession(HelperSession):
    """The only party that can decrypt, and only noised sums, under its own policy.

    Every rule is the key holder's :class:`~secagg.aggregation.keyholder_policy.
    KeyHolderPolicy`, never the server's request: the noise is at least the
    policy's and the floor's (and a request for more than its cap is refused before any
    decryption), each round number is decrypted once and in
    increasing order, there is a lifetime cap (required with its own noise), a round of
    another length than its own ``dimension`` is refused when it is opened (the key
    request) and a sum of another length than its round was opened with before any
    work (the round opened outlives a restart when the key does: :meth:`_save_opened`),
    and a sum is clamped, before the noise, into what an honest aggregate of the
    contributions it claims can decrypt to (see that module for why each rule).
    """

    def __init__(
        self,
        policy: KeyHolderPolicy | None = None,
        *,
        key: Any = None,
        design: DesignPoint | None = None,
    ) -> None:
        """``key``: a persistent :class:`~secagg.he.keys.KeyHolder` (its fingerprint is
        what the branches pin); then a request for any other design point is refused
        instead of answered with a fresh key. Without it a key is made on first request
        (in-memory runs, whose unpinned clients trust only the keys this process's key
        holders published: :func:`_unpinned_trust`), for the design point the request
        carries, and kept: a request for another is refused (:meth:`_refuse_another_design`);
        with ``design`` (the federation's, when the key holder holds its config
        and no key file) only for one no weaker than it (:meth:`_check_design`)."""
        from secagg.he.keys import KeyHolder

        self.policy = policy or KeyHolderPolicy()
        self._make = KeyHolder
        self._holder: Any = key
        self._fixed = key is not None
        #: the federation's own design point, which a key made here may not exceed
        #: (None: the server's design point is taken, as without a config)
        self._design = design
        # fails closed on a bad file, or on another federation's record
        self.record = DecryptionRecord(self.policy.state_path, self.policy.federation)
        #: (round number, dimension) of the round the last key request opened: the only
        #: round, and the only length, a decryption request is then taken for. Durable
        #: beside the record (:func:`opened_path`) when the key is: a restarted process
        #: still decrypts the round it opened
        self.opened: tuple[int, int] | None = self._load_opened()
        #: how many new rounds may be opened (written to disk) now: a few beyond the last
        #: decryption, then one a second (:class:`~secagg.aggregation.keyholder_policy.
        #: OpeningAllowance`)
        self.openings = OpeningAllowance()
        #: a key holder of no federation whose record dies with it (no state file: the
        #: config-less ``secagg keyholder``, in-memory runs) serves the federation its
        #: first opened round names, as a branch without a pin joins the federation its
        #: server names, and refuses any other from then on
        self._joins = self.policy.federation is None and self.policy.state_path is None
        #: what each decryption since the last :meth:`after_reply` clamped (kept for every
        #: decryption, said in the key holder's log once its reply has left, if any was)
        self._clamp_notices: list[tuple[int, int, int, float, int, float]] = []

    def _check_federation(self, named: str, round_number: int, *, what: str) -> None:
        """Refuse a request of another federation than the one this key holder serves
        (its record's; one it has yet to join takes the request's)."""
        serves = (named or None) if self._joins else self.record.federation
        check_federation(named, serves, round_number, what=what)

    @property
    def decryptions(self) -> int:
        """Decryptions served over the key holder's lifetime (the state file's count)."""
        return self.record.decryptions

    @property
    def fingerprint(self) -> bytes | None:
        return None if self._holder is None else self._holder.fingerprint

    def refusal(self, error: BaseException) -> bytes:
        """The refusal reply (kind 5) for a request :meth:`handle` refused with ``error``:
        its reason code and text, so the server aborts the round at once
        (:func:`refusal_reply`)."""
        return refusal_reply(error)

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        # the round number is what the decryption record is keyed on and persisted:
        # None was served and written as null, and the key holder then refused to
        # start again on its "inconsistent" state file; "5" failed in a comparison
        if (
            isinstance(round_number, bool)
            or not isinstance(round_number, numbers.Integral)
            or round_number < 0
        ):
            raise ConfigurationError(
                f"a round number is a non-negative integer, not {round_number!r}"
            )
        round_number = int(round_number)
        # sizes first, on a view: a request is copied or parsed only once its size is
        # the one its kind (and, for a decryption, its dimension) takes exactly
        view = _byte_view(payload)
        kind = _helper_kind(view)
        if kind == _KEY_REQUEST:
            _check_helper_head(view, _KEY_REQUEST)
            body_end = _HELPER_HEAD.size + _KEY_REQUEST_BODY.size
            federation, end = _read_federation(view, body_end)
            if len(view) != end:
                raise MalformedMessage(
                    f"key request of {len(view)} bytes; a design point, a dimension and a "
                    f"federation's name take exactly {end}"
                )
            body = _read_helper_message(view[:body_end], _KEY_REQUEST)
            return self._publish(body, round_number, federation)
        if kind == _DECRYPT:
            return self._decrypt(view, round_number, copy=not isinstance(payload, bytes))
        raise MalformedMessage("a key holder answers key and decryption requests only")

    def _publish(self, r: Reader, round_number: int, federation: str) -> bytes:
        """Open ``round_number`` of ``federation``: check the federation, the design point
        and the dimension against this key holder's policy and key, then publish the
        public context.

        The federation first: a key request of another federation than this key holder's
        (:func:`~secagg.aggregation.keyholder_policy.check_federation`) is
        refused before anything is checked, opened or made.

        The dimension is checked here, when the round is opened: before the key request
        carried it, a round of another length than the key holder's ``dimension`` was
        refused only at decryption, after every branch had encrypted and uploaded. The
        round opened is remembered (only the last one: rounds run one at a time), and a
        decryption request is then taken only for it and for its length.

        The decryption record is checked here too (the round number once, in increasing
        order, and the lifetime cap): before, a key request for a round number already
        decrypted, not above the last one decrypted, or past ``max_decryptions`` was
        answered, so every branch trained and encrypted for a round whose decryption the
        key holder was bound to refuse. Refused now, before any key work, with the typed
        refusal the decryption would have raised (nothing spent, nothing opened).

        Rounds are opened in increasing order, and a round is written to disk
        (:meth:`_save_opened`: two fsyncs) only when it is new: a request for the round
        already opened, at its length, is answered from what is on disk, and one for an
        older round is refused (:class:`~secagg.aggregation.keyholder_policy.
        RoundSuperseded`) before any key work. Before, every key request wrote the file,
        so a server repeating one request (or alternating two rounds) made the key holder
        fsync twice per request without bound (88 requests/s, 2.00 fsyncs each).

        New rounds are paced (:attr:`openings`): eight beyond the last decryption, then
        one a second, refused beyond that (:class:`~secagg.aggregation.keyholder_policy.
        OpeningsOutpaceDecryptions`) before any write. Before, a server raising the round
        number on every key request made every request a new round, and so two fsyncs."""
        design = DesignPoint.read(r)
        dimension = r.u32()
        r.end()
        if dimension < 1:
            raise MalformedMessage("a key request for a round of 0 values")
        self._check_federation(federation, round_number, what="a key request")
        self.policy.check_dimension(dimension, what="a round")  # before any key work
        self.record.check(round_number, self.policy.max_decryptions)  # never decryptable
        if self.opened is not None and round_number < self.opened[0]:
            raise RoundSuperseded(
                f"a key request of round {round_number} refused: this key holder opened "
                f"round {self.opened[0]} already and opens rounds in increasing order"
            )
        self._check_design(design)  # before any key work: the federation's, not the server's
        params = design.parameters()
        least = self.policy.min_contributions
        if params.num_clients < least:
            raise KeyHolderRefusal(
                f"a design point of {params.num_clients} client(s) can never reach this key "
                f"holder's minimum of {least} contributions"
            )
        if self._holder is not None and self._holder.params != params:
            self._refuse_another_design(design)
        if self._holder is None:  # the first key request: the only key made here
            self._holder = self._make(params, min_contributions=least)
        body = Writer().blob(self._holder.fingerprint).blob(self._holder.public_context_bytes)
        if self.opened != (round_number, dimension):  # the round opened is on disk already
            if self._opened_file() is not None:  # a write: paced (OpeningsOutpaceDecryptions)
                self.openings.take(round_number)
            self._save_opened(round_number, dimension)  # on disk before the key leaves
            self.opened = (round_number, dimension)
        if self._joins:  # the first round opened names the federation served from now on
            self._joins, self.record.federation = False, federation or None
            if federation:
                log.info("key holder: serves federation %r (its server's)", federation)
        _published_here(self._holder.fingerprint)  # what this process's clients trust
        return _helper_message(_KEY_PUBLIC, body.bytes())

    def after_reply(self) -> None:
        """Log, in the key holder's own log only, each sum clamped since the last call:
        how many of its coordinates the exact sum had beyond the plausible range (the
        server is told nothing of it: its reply is the noised sum, as any other).

        Why after the reply: the warning was written inside the decryption, only when the
        clamp moved a coordinate, so the reply left later (about 0.1 ms, a log line to
        stderr; more behind a slow journal) exactly when the exact sum crossed the box,
        the un-noised bit the clamp replaced the refusal to remove and whose passes run
        the same whatever the values (:func:`~secagg.aggregation.keyholder_policy.
        clamp_to_plausible`). The key holder's service calls this once it has sent the
        reply (:class:`~secagg.runtime.keyholder.KeyHolderService`), the in-memory
        driver once it has the reply; a caller of :meth:`handle` that never calls it
        keeps the notices here, unsaid."""
        notices, self._clamp_notices = self._clamp_notices, []
        for round_number, clamped, dimension, reach, summands, bound in notices:
            if not clamped:
                continue
            log.warning(
                "key holder: round %d: %d of %d coordinates of the exact sum were beyond "
                "%.6g, what %d values bounded by %g add up to (with the CKKS error); "
                "released clamped to it, noised as planned: a branch sent an out-of-range "
                "upload, or the server claimed fewer contributions than it summed",
                round_number,
                clamped,
                dimension,
                reach,
                summands,
                bound,
            )

    def _refuse_another_design(self, asked: DesignPoint) -> NoReturn:
        """Refuse a key request of other CKKS parameters than the key this key holder
        holds: a pinned key's, or the one it made at its first key request.

        Why the made key is kept too: a key holder without a pinned key made a fresh key
        whenever the design point changed, so a server alternating two design points
        had a key pair generated (and a new context published, for the branches to
        trust) on every key request, at the server's pace: work the server chose for
        it. A key cannot follow a design point (its ring and modulus chain are the
        design point's), so the key holder keeps its first and refuses any other, with
        nothing made or opened; another design point is its operator's restart."""
        if self._fixed:
            raise KeyHolderRefusal(
                "the server asked for a key of other CKKS parameters than this key holder's "
                "pinned key was made for"
            )
        made = self._holder.params
        raise KeyHolderRefusal(
            f"a key request for {asked.num_clients} clients, value bound "
            f"{asked.value_bound:g} and precision {asked.precision:g} refused: this key "
            f"holder made its key for {made.num_clients} clients, value bound "
            f"{made.value_bound:g} and precision {made.precision:g} at its first key "
            "request and keeps it (restart it for another design point)"
        )

    def _check_design(self, asked: DesignPoint) -> None:
        """Refuse a key request whose design point is weaker than the federation's: more
        clients, a larger value bound or a finer precision than this key holder's own
        (``_design``, from the federation's config) allow.

        Why: a key holder started with the federation's config but without a key file made
        its key for whatever design point the server's first key request carried. The
        value bound and the clients are what the plausible-sum clamp holds a decryption to
        (``c·B`` before the noise), the one bound on what a crafted query learns of the key
        under the key holder's own noise (½·log2(1 + (c·B/sigma)²) bits a coordinate): a
        server asking for B = 10⁶ and 1 000 clients in a federation of 3 branches with
        B = 1 had a key made whose range was 3·10⁸ times the federation's (at sigma = 1,
        30 bits a coordinate instead of 1.7), and its precision set the floor. The
        federation's own design point, or one summing fewer, smaller values to a coarser
        precision, is answered as before.

        The key holder's own caps (``[key_holder] max_clients`` / ``max_value_bound`` /
        ``min_precision``:
        :meth:`~secagg.aggregation.keyholder_policy.KeyHolderPolicy.check_design`) hold
        with or without the config: without one they are all that bounds the design
        point (the config-less ``secagg keyholder`` has defaults of them)."""
        self.policy.check_design(asked.num_clients, asked.value_bound, asked.precision)
        own = self._design
        if own is None:
            return
        if (
            asked.num_clients > own.num_clients
            or asked.value_bound > own.value_bound
            or asked.precision < own.precision
        ):
            raise KeyHolderRefusal(
                f"a key request for {asked.num_clients} clients, value bound "
                f"{asked.value_bound:g} and precision {asked.precision:g} refused: this key "
                f"holder makes keys for at most the federation's {own.num_clients} clients, "
                f"value bound {own.value_bound:g} and precision {own.precision:g}"
            )

    def _opened_file(self) -> Path | None:
        """Where the opened round is kept: beside the record, when both the record and
        the key outlive the process (a key made in memory dies with it, and with it every
        round it opened)."""
        state = self.policy.state_path
        return None if state is None or not self._fixed else opened_path(state)

    def _save_opened(self, round_number: int, dimension: int) -> None:
        """Write the round a key request opens (its number, its dimension, the key's
        fingerprint) atomically (temporary file, fsync, rename) before its key is sent.

        Why: the branches train and encrypt between the key request and the decryption
        request; a key holder process restarted in that window had only kept the round in
        memory, refused the decryption ("which no key request opened") and the round was
        lost. What keeps a round from being decrypted twice is the decryption record, on
        disk before a sum leaves; this file only says which round may be decrypted next,
        at which length and under which key, as the memory of it did. The record is
        created first if it does not exist yet (the first round opened): an ``.opened``
        beside no record is what a removed record looks like at start
        (:meth:`~secagg.aggregation.keyholder_policy.DecryptionRecord.create`)."""
        path = self._opened_file()
        if path is None:
            return
        self.record.create(round_number)  # the record first: .opened without it is a removal
        data = {
            "version": _OPENED_VERSION,
            "federation": self.record.federation,
            "round": round_number,
            "dimension": dimension,
            "fingerprint": self._holder.fingerprint.hex(),
        }
        try:
            write_json_atomically(path, data)
        except OSError as exc:
            # refused before the key leaves: a round the key holder may forget is not opened
            raise KeyHolderRefusal(
                f"round {round_number} not opened: the key holder cannot record the round it "
                f"opens ({exc.strerror or type(exc).__name__})",
                local_detail=f"{path}: {exc}",  # its own log's, not the server's
            ) from None

    def _load_opened(self) -> tuple[int, int] | None:
        """The round the last key request opened before a restart, if this key holder's
        durable state holds one for its key; None otherwise.

        A file that cannot be read, or that names another key, is set aside with a
        warning rather than refusing to start: forgetting an opened round costs that
        round (its decryption is refused), never a second decryption, which the record
        alone prevents."""
        path = self._opened_file()
        if path is None or not path.exists():
            return None
        try:
            # one open, bounded: a file swapped for a named pipe blocked the key holder's
            # start forever (a read by path); refused (a ValueError), it is set aside
            raw = read_regular_file(path, _MAX_OPENED_BYTES, "a key holder's opened round")
            data = json.loads(raw.decode("utf-8"))
            version = data.get("version") if isinstance(data, dict) else None
            if isinstance(version, bool) or version not in (1, _OPENED_VERSION):
                raise ValueError("unknown version")
            # version 1 named no federation: its round was opened under this key (checked
            # below) for the federation the record now serves
            federation = data["federation"] if version >= 2 else self.policy.federation
            if federation != self.policy.federation:
                raise ValueError(
                    f"it opened a round of federation {federation!r}, not of this key "
                    f"holder's {self.policy.federation!r}"
                )
            number, dimension = data["round"], data["dimension"]
            if any(isinstance(v, bool) or not isinstance(v, int) for v in (number, dimension)):
                raise ValueError("a round number and a dimension are integers")
            if number < 0 or dimension < 1:
                raise ValueError("a round number is >= 0 and a dimension >= 1")
            if data["fingerprint"] != self._holder.fingerprint.hex():
                raise ValueError("it names another key than this key holder's")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("key holder: %s set aside (%s): no round is open", path, exc)
            return None
        return number, dimension

    def _decrypt(self, view: memoryview, round_number: int, *, copy: bool) -> bytes:
        """Read the fixed fields in place, check the record, then the request's size
        against what its dimension takes under this key holder's own parameters, and
        only then copy (a mutable payload, once), unframe (views) and decrypt.

        Before, the whole request was copied into a Reader and its aggregate read under a
        2 GiB limit, then each chunk copied out, before the first exact-size check: a
        hostile server made the key holder hold twice what it sent (refusing 15 MB peaked
        at 30 MB) for a request no parameters of its could take.
        """
        from secagg.dp.noise import gaussian
        from secagg.he.chunks import chunk_count, decrypt_counted

        _check_helper_head(view, _DECRYPT)
        fields = _HELPER_HEAD.size + _DECRYPT_FIELDS.size
        if len(view) < fields:
            raise MalformedMessage("decryption request shorter than its fields")
        dimension, requested, length = _DECRYPT_FIELDS.unpack_from(view, _HELPER_HEAD.size)
        if fields + length >= len(view):
            raise MalformedMessage(
                f"decryption request of {len(view)} bytes (aggregate field {length}): no "
                "federation's name after its aggregate"
            )
        federation, _ = _read_federation(view, fields + length)  # read in place
        if dimension < 1 or not math.isfinite(requested) or requested < 0:
            raise MalformedMessage("bad decryption request")
        # another federation's aggregate (a splice) is refused before anything else
        self._check_federation(federation, round_number, what="a decryption")
        self.policy.check_dimension(dimension)  # the agreed length: the server's word is not
        self.record.check(round_number, self.policy.max_decryptions)  # before any work
        if self._holder is None:
            raise UnexpectedMessage("no key has been made yet")
        # the round's length was stated (and checked) when it was opened: a decryption of
        # another round, or of another length, is not the round the branches encrypted for
        if self.opened is None or self.opened[0] != round_number:
            raise UnexpectedMessage(
                f"a decryption for round {round_number}, which no key request opened "
                f"(the last opened: {'none' if self.opened is None else self.opened[0]})"
            )
        if dimension != self.opened[1]:
            raise WrongDimension(
                f"a decryption of {dimension} values refused: round {round_number} was "
                f"opened for {self.opened[1]} values"
            )
        params = self._holder.params
        exact = decryption_request_size(params, dimension, federation)
        named = len(federation_field(federation))
        if len(view) != exact or length != exact - fields - named:
            raise MalformedMessage(
                f"decryption request of {len(view)} bytes (aggregate field {length}) for "
                f"{dimension} values; this key holder's parameters take exactly {exact}"
            )
        # a request buried in noise, or one whose noised sum overflows, is refused before
        # any decryption (nothing spent)
        self.policy.check_noise_request(params, requested)
        std = self.policy.noise_for(params, requested)  # the server can raise it, never lower
        count = chunk_count(dimension, params.values_per_ciphertext)
        # a caller's mutable buffer is copied once, now that its size is right, so the
        # bytes checked are the bytes decrypted; bytes are read in place
        framed = bytes(view[fields : fields + length]) if copy else view[fields : fields + length]
        chunks = unframe_chunks(framed, count, chunk_bytes=_chunk_bytes(params))
        # the claimed contributions are checked (at least the minimum, at most the
        # parameters' clients) and bound what the sum may decrypt to
        noised, summands = decrypt_counted(
            self._holder,
            chunks,
            dimension=dimension,
            min_contributions=self.policy.min_contributions,  # the policy's, whatever the key's
        )
        # the exact sum clamped into what its claimed contributions can add up to, before
        # the noise (clamp_to_plausible says why the planned charge covers it): a sum
        # beyond it was refused until 2026-12-06, one un-noised bit of the exact sum
        # (tests/aggregation/test_ckks_implausible_refusal_bit.py); on the noised sum the
        # range needed 9 noise deviations of slack, which a server asking for more noise
        # widened (before 2026-12-05)
        reach = plausible_range(params, 0.0, summands)
        clamped = 0
        # clamped and noised in place, slice by slice: the exact sum is overwritten, never
        # kept, and the noise of a whole vector (with its Box-Muller temporaries) is
        # never held
        for start in range(0, dimension, _NOISE_SLICE):
            part = noised[start : start + _NOISE_SLICE]
            clamped += clamp_to_plausible(part, reach)
            part += gaussian(std, len(part))
        self.record.commit(round_number)  # on disk before anything leaves
        self.openings.renew()  # a decryption spent: new rounds may be opened again
        # kept, not logged: what the key holder does before its reply leaves must not
        # depend on whether the sum was clamped (after_reply says it, once it has left)
        self._clamp_notices.append(
            (round_number, clamped, dimension, reach, summands, params.value_bound)
        )
        # one copy of the sum into the reply (the header, the std, then float64 values)
        head = _HELPER_HEAD.pack(_HELPER_MAGIC, _HELPER_VERSION, _DECRYPTED)
        return b"".join((head, struct.pack("<d", std), np.asarray(noised, "<f8").data))


class CKKSClient(ClientSession):
    def __init__(self, spec: CKKSSpec, party: int, trusted_key: bytes | None) -> None:
        from secagg.he.keys import PublicAggregationContext

        check_party(party, spec.num_clients)
        self.party = party
        self.spec = spec
        # the pin, or (in memory, no pin) a key a key holder of this process published:
        # never the fingerprint sent beside the context, which any sender can compute
        pin = trusted_key if trusted_key is not None else _unpinned_trust(spec.fingerprint)
        self._context = PublicAggregationContext.from_bytes(
            spec.public_context, spec.design.parameters(), expected_fingerprint=pin
        )
        self._sent = False

    def set_input(self, update: np.ndarray) -> list[bytes]:
        from secagg.he.vectors import encrypt_vector

        if self._sent:
            raise UnexpectedMessage("the contribution has already been sent")
        x = check_update(update, self.spec.dimension)
        check_bound(x, self.spec.design.value_bound, self.party)
        self._sent = True
        return [frame_chunks(encrypt_vector(self._context, x))]

    def handle(self, payload: bytes) -> list[bytes]:
        raise UnexpectedMessage("a CKKS round sends clients nothing after its start")


class CKKSServer(PhasedServerSession):
    """Phases ``key`` -> ``contribution`` -> ``decrypt`` -> ``complete``."""

    PHASES = ("not_started", "key", "contribution", "decrypt", "complete", "aborted")
    #: the phase of a key holder's message, by the kind byte of its header (a refusal
    #: answers either request, so its kind names no phase)
    _HELPER_PHASES: ClassVar[dict[int, str]] = {_KEY_PUBLIC: "key", _DECRYPTED: "decrypt"}

    def __init__(self, spec: CKKSSpec, noise_stddev: float) -> None:
        self.spec = spec
        self.params = spec.design.parameters()
        # requested; the key holder may add more. Checked here, before the round starts
        self.noise_stddev = _requested_noise(noise_stddev)
        self.noise_added: float | None = None  # what the key holder says it added
        #: the noise std the key holder's decryption reply reported, read before any check
        #: refuses the reply (None: no reply read yet): the sum reached the server with it
        self._reported_noise: float | None = None
        #: the key holder's messages in the decrypt phase, and whether one was a refusal
        self._decrypt_replies = 0
        self._decryption_refused = False
        # the key holder's public context once published: an OpaquePublicContext, bytes
        # the server never parses, bound to their fingerprint
        self.context: Any = None
        self._sum: Any = None
        self._received: set[int] = set()
        self._total: np.ndarray | None = None
        self._dropouts: dict[str, int] = {}
        #: the federation whose round this is, named in both requests to the key holder
        #: ("": none, an in-memory round; :meth:`bind_federation`)
        self.federation = ""

    def bind_federation(self, federation: str) -> None:
        """Name ``federation`` in this round's key and decryption requests, before
        :meth:`start`: the key holder refuses a request of another federation than its own.

        Why: the requests carried the round number only, so a key holder could not tell
        federation A's round 5 from B's (review, 2026-12-05)."""
        federation_field(federation)  # a ConfigurationError for no federation's name
        if self._phase != "not_started":
            raise UnexpectedMessage("the round's federation is named before it starts")
        self.federation = federation

    def start(self) -> list[Outgoing]:
        if self._phase != "not_started":
            raise UnexpectedMessage("the round has already started")
        self._phase = "key"
        # the round's length opens the round: a key holder bound to another one refuses
        # here, before any branch encrypts (it was refused only at decryption, after
        # every branch had uploaded), and decrypts only this length afterwards
        request = self.spec.design.write(Writer()).u32(self.spec.dimension).bytes()
        request += federation_field(self.federation)
        return [ToParty(HELPER, _helper_message(_KEY_REQUEST, request))]

    def handle(self, party: int, payload: bytes) -> list[Outgoing]:
        if self._phase in ("key", "decrypt") and party == HELPER:
            data = payload_bytes(payload)
            self._decrypt_replies += self._phase == "decrypt"
            if _helper_kind(data) == _REFUSED:
                return self._on_refused(data)
            return self._on_key(data) if self._phase == "key" else self._on_decrypted(data)
        if self._phase == "contribution" and party != HELPER:
            return self._on_contribution(party, payload_bytes(payload))
        who = "the key holder" if party == HELPER else f"client {party}"
        raise UnexpectedMessage(f"nothing from {who} is accepted in phase {self._phase}")

    def _on_key(self, data: bytes) -> list[Outgoing]:
        """Take the key holder's public context without parsing it (it is a separate party).

        The server adds residues with the round's own parameters; the blob is checked by
        size and bound to its fingerprint (:class:`~secagg.he.context.OpaquePublicContext`)
        and announced as it came. The clients parse it, compare its fingerprint with their
        pin and refuse a secret key in it or other parameters than the spec's (before,
        the server handed it to TenSEAL's ``context_from`` in its own process).
        """
        from secagg.he.context import OpaquePublicContext
        from secagg.he.vectors import EncryptedSum

        # at most a 64-byte fingerprint and a context of the parameters' largest size, each
        # with its length: a longer reply is refused before the Reader copies it
        most = _HELPER_HEAD.size + 2 * _LENGTH.size + 64 + self.params.max_public_context_bytes()
        _check_reply_size(data, _KEY_PUBLIC, most=most)
        r = _read_helper_message(data, _KEY_PUBLIC)
        fingerprint, public = r.blob(64), r.blob(self.params.max_public_context_bytes())
        r.end()
        context = OpaquePublicContext(public, self.params, fingerprint=fingerprint)
        # commit
        self.context = context
        self._sum = EncryptedSum(context, self.spec.dimension)
        self.spec = CKKSSpec(
            self.spec.num_clients, self.spec.dimension, self.spec.design, fingerprint, public
        )
        self._phase = "contribution"
        return [Announce(encode_spec(self.spec))]

    def _on_refused(self, data: bytes) -> list[Outgoing]:
        """The key holder refused the phase's request: abort the round now, its reason in
        the abort reason.

        Before there was no refusal reply: the key holder logged its refusal and sent
        nothing, and the round waited out the phase's deadline (60 s in the runtime test,
        "did not publish a key in time") for a round already refused. The reply is read
        under its own bound (header, code, at most :data:`MAX_REFUSAL_TEXT` bytes) before
        it is copied; an unknown code or a longer one is a MalformedMessage and changes
        nothing. The text is the key holder's, so it is cleaned (:func:`printable`)."""
        _check_reply_size(data, _REFUSED, most=_MAX_REFUSAL_BYTES)
        r = _read_helper_message(data, _REFUSED)
        code, raw = r.u8(), r.blob(MAX_REFUSAL_TEXT)
        r.end()
        if code not in REFUSAL_REASONS:
            raise MalformedMessage(f"a key-holder refusal of unknown reason code {code}")
        text = printable(raw.decode("utf-8", errors="replace")) or "no reason given"
        request = "key request" if self._phase == "key" else "decryption request"
        self._decryption_refused = self._phase == "decrypt"
        self._abort(f"the key holder refused the {request} ({REFUSAL_REASONS[code]}): {text}")
        return []

    def _on_contribution(self, party: int, data: bytes) -> list[Outgoing]:
        from secagg.he.vectors import chunk_count

        admit(party, self.spec.num_clients, self._received)
        chunks = chunk_count(self.spec.dimension, self.params.values_per_ciphertext)
        # the size first (exact, from the parameters), then the chunks: all or nothing
        self._sum.add(unframe_chunks(data, chunks, chunk_bytes=_chunk_bytes(self.params)))
        self._received.add(party)
        if len(self._received) == self.spec.num_clients:
            return self.close_phase()
        return []

    def _on_decrypted(self, data: bytes) -> list[Outgoing]:
        # the reply's sum is in the server's hands, whatever is checked next, so the reveal
        # is charged at the noise it reports (noise_at_reveal), not at the request's: read
        # first, by the rule the runtime charged it by before this reply was read
        # (noise_of_reply): a report that is no std >= 0, or none, vouches for no noise
        exact = self._decrypted_size()
        vouched = vouched_noise(data, exact)
        if vouched is not None:
            seen = self._reported_noise
            self._reported_noise = vouched if seen is None else min(seen, vouched)
        # exactly the noise std and d float64 values: any other size is refused before the
        # reply is copied into a Reader and the sum sliced out of it
        _check_reply_size(data, _DECRYPTED, least=exact, most=exact)
        (noise,) = _NOISE_FIELD.unpack_from(data, _HELPER_HEAD.size)
        body = data[_HELPER_HEAD.size + _NOISE_FIELD.size :]
        if not math.isfinite(noise) or noise < 0:
            raise MalformedMessage(f"the key holder reports no noise std: {noise!r}")
        if len(body) != 8 * self.spec.dimension:
            raise MalformedMessage(
                f"decrypted sum of {len(body)} bytes, expected {8 * self.spec.dimension}"
            )
        total = np.frombuffer(body, dtype="<f8").copy()
        if not np.all(np.isfinite(total)):
            raise MalformedMessage("the decrypted sum holds NaN or infinite values")
        if noise < self.noise_stddev:  # the DP plan counted on this noise: never release less
            self._abort(
                f"the key holder added noise std {noise:g}, below the {self.noise_stddev:g} "
                "this round planned"
            )
            return []
        # what the round's contributions can sum to, with the key holder's CKKS error and
        # the noise it reports (a Box-Muller deviate is at most 8.6 std; the range allows
        # RANGE_TAIL_Z = 9, as the report's error bound does): an honest key holder's sum
        # always lies within it, and one beyond it is no sum of this round
        reach = plausible_range(self.params, noise, len(self._received))
        if not np.all(np.abs(total) <= reach):
            self._abort(
                f"the key holder's sum has a coordinate beyond {reach:.6g}, the most "
                f"{len(self._received)} contributions bounded by {self.params.value_bound:g} "
                f"decrypt to with noise std {noise:g}: not a sum of this round"
            )
            return []
        self._total, self.noise_added, self._phase = total, noise, "complete"
        return []

    def close_phase(self) -> list[Outgoing]:
        if self._phase == "key":
            self._abort("the key holder did not publish a key in time")
            return []
        if self._phase == "decrypt":
            self._abort("the key holder did not decrypt in time")
            return []
        if self._phase != "contribution":
            raise UnexpectedMessage(f"no phase to close in state {self._phase}")
        self._dropouts["contribution"] = self.spec.num_clients - len(self._received)
        if len(self._received) < 2:
            self._abort(f"{len(self._received)} contribution(s): at least 2 are needed to decrypt")
            return []
        # framed into the request as the sum packs each chunk: no copy of the aggregate
        request = decryption_request(
            self.params,
            self.spec.dimension,
            self.noise_stddev,
            self._sum.iter_chunks(),
            federation=self.federation,
        )
        self._phase = "decrypt"
        return [ToParty(HELPER, request)]

    def contributors_before_reveal(self) -> int | None:
        # in the decrypt phase the request is out, or about to leave: its reply reveals
        # the sum of the contributions taken, noised by the key holder
        return len(self._received) if self._phase == "decrypt" else None

    def reveal_refused(self) -> bool:
        """The key holder refused the decryption request and sent nothing else in the
        phase: it decrypts a round once, so none of this round's noised sum reached the
        server, and the runtime aborts the round uncharged.

        A refusal of this release's key holder depends on no value of the sum (its checks
        before decrypting, or its record's write failing): a sum beyond what the claimed
        contributions can add up to is clamped into that range and
        released noised (:func:`~secagg.aggregation.keyholder_policy.clamp_to_plausible`),
        an ordinary release charged as planned. Until 2026-12-06 it was refused after
        decrypting (``implausible sum``, code 4), which told the server one un-noised bit
        of the exact sum, a threshold on the honest branches' values when a malicious
        branch's out-of-range upload was in it, aborted uncharged
        (tests/aggregation/test_ckks_implausible_refusal_bit.py). A key holder of an
        earlier release may still send that refusal; it is read as before.

        Why: the charge noted at the planned noise before the request left was kept, so a
        round the key holder refused was ledgered as a release (review of 2026-12-06). A
        refusal that followed any other reply (a sum refused as malformed, say) is not
        this: that reply may have carried the sum."""
        return self._decryption_refused and self._decrypt_replies == 1

    def phase_of(self, party: int, payload: object) -> Phase | None:
        """A client's payload is a contribution (the one phase a client sends in); the key
        holder's is of the phase its header's kind byte names (its key, its decrypted
        sum), None for a refusal or any other kind. Reads one byte, changes nothing."""
        if party != HELPER:
            return self._ranked("contribution")
        if not isinstance(payload, bytes | bytearray | memoryview):
            return None
        view = memoryview(payload)
        if view.ndim != 1 or view.itemsize != 1 or len(view) < _HELPER_HEAD.size:
            return None
        name = self._HELPER_PHASES.get(_helper_kind(view))
        return None if name is None else self._ranked(name)

    def noise_of_reply(self, party: int, payload: object) -> float | None:
        """The noise std under which ``payload``, not yet handled, would put the round's
        sum in the server's hands: None unless it is the key holder's message in the
        decrypt phase whose kind says it is a decrypted sum; else what
        :func:`vouched_noise` reads of it (0.0: it vouches for none). Reads 14 bytes,
        never the sum, changes nothing, and never raises.

        Why: the runtime makes the charge of that noise durable before :meth:`handle`
        reads the reply, so a server process that dies after its code has seen an
        under-noised sum restarts charged at that noise, not at the plan's (review of
        2026-12-06: the re-noted charge was written only after the reply was handled)."""
        if self._phase != "decrypt" or party != HELPER:
            return None
        if not isinstance(payload, bytes | bytearray | memoryview):
            return None  # refused by handle as no payload at all: it carries no sum
        view = memoryview(payload)
        if not view.c_contiguous or view.itemsize != 1:
            return 0.0  # not the flat bytes a reply is: vouches for nothing
        return vouched_noise(view, self._decrypted_size())

    def _decrypted_size(self) -> int:
        """The exact size of the decrypted reply: the header, the noise std, d float64s."""
        return _HELPER_HEAD.size + _NOISE_FIELD.size + 8 * self.spec.dimension

    def noise_at_reveal(self) -> float:
        """The requested noise std until the key holder's reply is read, then the least
        of it and the std the reply reports.

        Why: the runtime charges the reveal at this noise before the request leaves. A
        reply reporting less is refused (:meth:`_on_decrypted`: the round aborts, no model
        is released), but its sum has reached the server all the same, under the noise
        the key holder added, so that reveal is charged at that noise, not at the plan's
        (review of 2026-12-06: the aborted round was ledgered with the planned epsilon).
        A key holder that reports more than it added cannot be caught here: the report
        is the key holder's word, as its noise is its own policy."""
        if self._reported_noise is None:
            return self.noise_stddev
        return min(self.noise_stddev, self._reported_noise)

    @property
    def waiting_for(self) -> frozenset[int]:
        if self._phase in ("key", "decrypt"):
            return frozenset({HELPER})
        if self._phase == "contribution":
            return frozenset(range(self.spec.num_clients)) - self._received
        return frozenset()

    def dropouts(self) -> dict[str, int]:
        return dict(self._dropouts)

    def finish(self) -> AggregationResult:
        if self._phase != "complete" or self._total is None:
            raise RoundAborted(self._abort_reason or "the round did not complete", phase="ckks")
        contributed, dropped = split_parties(self.spec.num_clients, self._received)
        design = self.spec.design
        noise = float(self.noise_added or 0.0)
        report = AggregationReport(
            backend="ckks",
            num_clients=self.spec.num_clients,
            dimension=self.spec.dimension,
            contributed=contributed,
            dropped=dropped,
            # the key holder's Gaussian noise is part of the error, at the tail the reply
            # was accepted within (_on_decrypted): one constant, so the bound covers every
            # sum the server takes (it counted 7 deviations while 9 were accepted)
            error_bound=self.params.error_bound(len(contributed)) + RANGE_TAIL_Z * noise,
            threat_model=(
                "server sees only ciphertexts (RLWE, 128-bit); the secret key is held by "
                "the key holder alone, which decrypts each round once, adds its own noise "
                "and cannot verify how many uploads the server summed"
            ),
            details={
                "num_clients": design.num_clients,
                "value_bound": design.value_bound,
                "precision": design.precision,
                "parameters": repr(self.params),
                **self.params.describe(),
            },
            dropouts=dict(self._dropouts),
            noise_stddev=noise,  # what the key holder added, not what was asked
        )
        return AggregationResult(self._total.copy(), report)


class CKKSBackend(AggregationBackend):
    """CKKS through TenSEAL, parameters chosen for ``value_bound`` and ``precision``.

    ``precision`` is the allowed absolute error of the sum per coordinate
    (default ``1e-6 * value_bound``). ``max_clients`` sizes the parameters (and
    so the key, which the key holder keeps while they hold) for a federation's
    largest round; by default each round is sized for its own clients.
    """

    name = "ckks"

    def __init__(
        self,
        *,
        value_bound: float = 1.0,
        precision: float | None = None,
        max_clients: int | None = None,
    ) -> None:
        """Each option is checked here, by name: before, ``float(value_bound)`` took the
        string ``"1"``, True passed as 1 (``precision=True``: an error of up to 1 per
        coordinate), and ``max_clients`` of ``"4"`` raised a TypeError at planning while
        0 or 1.5 were taken."""
        self.value_bound = _positive_number("value_bound", value_bound)
        self.precision = (
            _positive_number("precision", precision)
            if precision is not None
            else 1e-6 * self.value_bound
        )
        if max_clients is not None and (
            isinstance(max_clients, bool)
            or not isinstance(max_clients, numbers.Integral)
            or max_clients < 1
        ):
            raise ConfigurationError(f"max_clients must be a positive integer, not {max_clients!r}")
        self.max_clients = None if max_clients is None else int(max_clients)

    def plan(self, num_clients: int, dimension: int, **extras: Any) -> CKKSSpec:
        if extras:
            raise ConfigurationError(f"the ckks backend takes no round options: {sorted(extras)}")
        # a round of one: no key holder decrypts it, and no branch joins it (check_policy)
        check_round_size(num_clients, dimension, minimum_clients=MIN_CONTRIBUTIONS_FLOOR)
        size = max(num_clients, self.max_clients or 0)
        design = DesignPoint(size, self.value_bound, self.precision)
        choose_parameters(size, self.value_bound, self.precision)  # refuse early
        return CKKSSpec(num_clients, dimension, design)

    def server(
        self, spec: RoundSpec, *, noise_stddev: float = 0.0, public_seed: bytes | None = None
    ) -> CKKSServer:
        del public_seed  # CKKS rounds draw no public randomness on the server
        return CKKSServer(_own(spec), noise_stddev)

    def open_client(
        self,
        spec: RoundSpec,
        party: int,
        *,
        rounding: KeyedStream | None,
        policy: BranchPolicy | None,
        identity: RoundIdentity | None = None,
    ) -> CKKSClient:
        pinned = policy.key_holder_fingerprint if policy is not None else None
        return CKKSClient(_own(spec), party, pinned)

    def helper(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        policy: KeyHolderPolicy | None = None,
        base_dir: Path | None = None,
    ) -> KeyHolderSession:
        """The key holder, enforcing its own policy: ``policy``, or the ``[key_holder]``
        table ``settings`` (``noise_stddev``, ``min_contributions``, ``max_decryptions``,
        ``dimension``, ``state``, the caps of
        :class:`~secagg.aggregation.keyholder_policy.KeyHolderPolicy` (``max_clients``,
        ``max_value_bound``, ``min_precision``, ``max_noise_stddev``, ``max_dimension``),
        and ``key``: the key file :meth:`make_helper_key` wrote, whose
        fingerprint the branches pin). Default: floor noise, at least 2 contributions,
        no cap (a ``noise_stddev`` above 0 requires ``max_decryptions``), a key made on
        the first request; with ``key``, the state defaults to
        ``<key>.state`` beside it (without a key, nothing outlives the process anyway)."""
        values = dict(settings or {})
        key_file = values.pop("key", None)
        if policy is None:
            policy = KeyHolderPolicy.from_dict(values, base_dir=base_dir)
        elif values:
            raise ConfigurationError("give the key holder's policy or its settings, not both")
        if key_file is not None or self.max_clients is not None:
            # the key's design point (a key file is made for the federation's) or, without
            # one, the federation's: what an honest server asks for, before anything loads
            self._check_caps(policy, "its key's" if key_file is not None else "the federation's")
        key = None
        if key_file is not None:
            from secagg.he.keys import KeyHolder

            key_path = config_path("key", key_file, base_dir)
            if policy.state_path is None:
                # a persistent key keeps a persistent record: with memory only, every
                # restart forgot the rounds already decrypted and the lifetime count, so
                # the once-per-round rule and max_decryptions held per process, not per
                # key (runtime audit 2026-12-04)
                policy = dataclasses.replace(
                    policy, state_path=key_path.with_name(key_path.name + ".state")
                )
            key = KeyHolder.load(
                key_path,
                self.design_point().parameters(),
                min_contributions=policy.min_contributions,
            )
        # a key made here (no key file) is for the federation's design point at most when
        # it is known (max_clients: a federation config sets it), never the server's wish
        design = self.design_point() if key is None and self.max_clients is not None else None
        return KeyHolderSession(policy, key=key, design=design)

    def _check_caps(self, policy: KeyHolderPolicy, whose: str) -> None:
        """Refuse to start a key holder whose own caps never admit the federation's design
        point (:meth:`~secagg.aggregation.keyholder_policy.KeyHolderPolicy.check_own_design`),
        and warn of caps that have no effect beside it.

        Why a warning, not a refusal, for looser caps: they are harmless (the federation's
        design point holds, and is stricter), but an operator who set ``max_value_bound =
        4`` expecting it to admit a federation of B = 4 learns at start that the
        federation's config says 1, not from a refused round."""
        own = self.design_point()
        looser = policy.check_own_design(
            own.num_clients, own.value_bound, own.precision, whose=whose
        )
        if looser:
            log.warning(
                "key holder: [key_holder] %s: looser than %s design point (%d clients, "
                "value bound %g, precision %g), so of no effect: that design point holds",
                ", ".join(looser),
                whose,
                own.num_clients,
                own.value_bound,
                own.precision,
            )

    def design_point(self) -> DesignPoint:
        """The federation's design point (all its rounds): needs ``max_clients``."""
        if self.max_clients is None:
            raise ConfigurationError(
                "a persistent key holder's key is made for the federation's largest round: "
                "set max_clients (a federation config sets it to its number of clients)"
            )
        choose_parameters(self.max_clients, self.value_bound, self.precision)
        return DesignPoint(self.max_clients, self.value_bound, self.precision)

    def configless_helper_settings(
        self, settings: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """A key holder without the federation's config caps the design point it makes a
        key for by its own ``[key_holder]`` table, else by the defaults of
        :func:`~secagg.aggregation.keyholder_policy.configless_caps` (the server's first
        key request would otherwise choose the plausible range every decryption is held
        to)."""
        return configless_caps(settings)

    def make_helper_key(self, path: Path) -> bytes:
        """Make the key holder's key pair for the federation, save it to ``path`` (0600)
        and return its fingerprint: what every branch pins before the first round."""
        from secagg.he.keys import KeyHolder

        holder = KeyHolder(self.design_point().parameters())
        holder.save(path)
        return bytes(holder.fingerprint)

    @property
    def needs_helper(self) -> bool:
        return True


def _positive_number(name: str, value: object) -> float:
    """``value`` as a float if it is a positive finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a positive finite number, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a positive finite number, not {value!r}")
    return float(value)


def _requested_noise(value: object) -> float:
    """The server's requested noise std as a float, if it is a real number (not a bool)
    from 0 to :data:`~secagg.aggregation.keyholder_policy.MAX_NOISE_STDDEV`; else a
    one-line ConfigurationError naming ``noise_stddev``.

    Why here: it was ``float(noise_stddev)``, so -1, NaN and infinity went into the
    decryption request, which the key holder refused only after every branch had
    uploaded (the round lost); ``True`` and ``"0.5"`` passed as numbers; and 1e300 was
    honoured, a decryption of the key holder's cap spent on a sum drowned in noise that
    the server then took as the round's (its range check widens with the noise). The
    ceiling is the most central noise any federation can plan (noise multiplier 10⁴ x
    clip 10⁶), the key holder's own ``noise_stddev`` ceiling too."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"noise_stddev must be a number, not {value!r:.40}")
    std = float(value)
    if not (math.isfinite(std) and 0 <= std <= MAX_NOISE_STDDEV):
        raise ConfigurationError(
            f"noise_stddev must be from 0 to {MAX_NOISE_STDDEV:g} (the most central noise a "
            f"federation can plan), not {value!r}"
        )
    return std


def _chunk_bytes(params: CKKSParameters) -> int:
    """Exact size of one packed chunk envelope of these parameters (header and residues)."""
    from secagg.he.envelope import HEADER_BYTES

    return HEADER_BYTES + params.packed_ciphertext_bytes()


def _own(spec: RoundSpec) -> CKKSSpec:
    if not isinstance(spec, CKKSSpec):
        raise ConfigurationError(f"a {spec_label(spec)} round spec given to the ckks backend")
    return spec
