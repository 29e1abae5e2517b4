"""The runtime's typed messages between a federation server and its parties.

Every transport carries opaque bytes; these are what they mean. Six kinds,
each a frozen dataclass with an exact binary codec::

    magic "SAFD" | version u8 | kind u8 | round u32 | body

* :class:`RoundStart` (server -> client): the federation's name, the client's party
  index, the clip its update goes through, the round's spec (the backend's own bytes,
  see :mod:`secagg.aggregation.spec`) and the global model as little-endian
  **float32** (the precision clients train in; half the bytes of float64);
* :class:`Relay` (both ways): one payload of the round's sessions, and on a
  branch's first payload of a round, its record-level privacy report;
* :class:`RoundEnd` (server -> client): how the round ended;
* :class:`FederationEnd` (server -> every connected party): the server has stopped
  running rounds, finished or not; a branch then exits at once instead of redialling;
* :class:`Leave` (client -> server): the branch left the round on its own (its session
  aborted), so the server counts it as gone without waiting out the phase deadline;
* :class:`NotSampled` (server -> each connected client the round's sampling left out):
  round ``round`` of the named federation runs without this branch, for at most the
  seconds it names. It carries nothing private (the round's number, the federation's
  name, the round's deadline: what every round start carries) and is what keeps an
  unsampled branch's idle timer from running out while rounds go on without it.

:class:`NotSampled` is a kind of version 2, added without changing any other layout: a
branch of an older release reads it as an unknown kind (a
:class:`~secagg.errors.MalformedMessage` it logs as one refused message, never a crash)
and waits as it did before; a branch of this release facing an older server simply
hears none (its idle timer then bounds the silence between rounds, as before).

:class:`RoundStart` may end with one more field, the seconds the round may still last
on the server (its round deadline): inside a round a branch waits that long for the
server, not its own idle timer (reliability review D3). It is optional (absent: the
branch falls back to its idle timer).

:class:`RoundStart` is the one message of version 3 (:data:`ROUND_START_VERSION`): it
begins with the federation's name (``[federation] name``), which both roles bind the
round to (:func:`round_context`). A version-2 start named no federation, so a server
running two federations with the same branch certificates could replay or splice one
federation's round into the other's with every binding agreeing; it is now refused as
:class:`OutdatedMessage`, naming the version and what to upgrade. The other messages
keep version 2 (their layout did not change), so a branch can still leave an older
server's round at once.

No JSON, no pickle: lengths and ranges are checked exactly, and anything else
raises :class:`~secagg.errors.MalformedMessage` before any state changes.

:func:`decode_message` is *total*: whatever bytes a peer sends, it returns a message
or raises :class:`~secagg.errors.MalformedMessage`, never another exception (a
``RecursionError``, ``OverflowError`` or ``struct.error`` escaping a receive loop would
let one peer stop the server; see the security review, H1 and L3). Every size is
bounded before anything is allocated: a length field is checked against the bytes
actually present and against a per-field limit, the record-level history against
:data:`MAX_HISTORY` entries, and a privacy report's numbers are finite (an epsilon of
+inf, "no noise", excepted) with its step counts in u32 range.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from secagg.aggregation.policy import FEDERATION_NAME_PATTERN
from secagg.aggregation.spec import Reader, Writer
from secagg.dp.release import RecordReport
from secagg.errors import ConfigurationError, MalformedMessage

_MAGIC = b"SAFD"
_VERSION = 2
#: a round start's version: 3 names the federation (2 did not, see the module docstring)
ROUND_START_VERSION = 3
_HEAD = struct.Struct("<4sBBI")
ROUND_START, RELAY, ROUND_END, FEDERATION_END, LEAVE, NOT_SAMPLED = 1, 2, 3, 4, 5, 6
MAX_HISTORY = 100_000  # entries of a record-level accounting history
MAX_REASON_BYTES = 4096  # the text of a round's, the federation's or a leave's reason
#: the longest round deadline a RoundStart may announce (a week): a larger number is
#: refused as malformed, so no server can make a branch wait without bound in one round
MAX_DEADLINE_SECONDS = 7 * 24 * 3600.0
_HISTORY_ENTRY_BYTES = 20  # f64 noise multiplier, f64 sample rate, u32 steps


@dataclass(frozen=True)
class RoundStart:
    round: int
    party: int
    spec: bytes
    model: np.ndarray  # float32
    clip: float | None = None
    report_unclipped: bool = False  # adaptive clipping: append 1[norm <= clip] - 1/2
    #: seconds the round may still last on the server (its round deadline), for the
    #: branch's in-round wait; None: not announced (the branch uses its idle timer)
    deadline: float | None = None
    #: the federation's name (``[federation] name``): the round is bound to it
    #: (:func:`round_context`), and a branch checks it against its pin and state file
    federation: str = field(kw_only=True)


@dataclass(frozen=True)
class Relay:
    round: int
    payload: bytes
    privacy: RecordReport | None = None


@dataclass(frozen=True)
class RoundEnd:
    round: int
    complete: bool
    reason: str = ""


@dataclass(frozen=True)
class FederationEnd:
    """The server stopped running rounds: ``finished`` (every configured round is
    complete) or not (``reason`` says why: a budget, no quorum, too many aborts).
    ``round`` is the last round number the server used (0: none)."""

    round: int
    finished: bool
    reason: str = ""


@dataclass(frozen=True)
class Leave:
    """A branch left round ``round`` on its own (its side of the round aborted):
    it will send nothing more in it. ``reason`` is the protocol's, never the data's."""

    round: int
    reason: str = ""


@dataclass(frozen=True)
class NotSampled:
    """Round ``round`` of federation ``federation`` runs without the branch it is sent
    to (the round's sampling left it out), for at most ``deadline`` seconds from now
    (the round's deadline, as its round start says it to the cohort).

    Why: a branch waits for the server between rounds for its idle timer only, and an
    unsampled branch heard nothing while rounds went on without it; with
    ``sampling.rate`` 0.1 and rounds of minutes, a branch left out of a few rounds in a
    row gave up (``BranchGaveUp``) while still eligible, and the federation lost its
    branches one by one. The notice says only what every round start says (its number,
    its federation, its deadline): not who was sampled, nor how many."""

    round: int
    deadline: float
    federation: str = field(kw_only=True)


Message = RoundStart | Relay | RoundEnd | FederationEnd | Leave | NotSampled


class OutdatedMessage(MalformedMessage):
    """A round start of an older wire version (2, which named no federation) than this
    party speaks: the server runs an older secagg. ``kind``, ``round`` and ``version``
    are its header's (a branch leaves that round at once: :attr:`round`)."""

    def __init__(self, kind: int, number: int, version: int, expected: int) -> None:
        self.kind, self.round, self.version = kind, number, version
        super().__init__(
            f"a round start of wire version {version}, which names no federation; this "
            f"party speaks version {expected}: upgrade secagg on the server and every branch"
        )


#: what a round context starts with (:func:`round_context`); v1 named no federation
ROUND_CONTEXT_LABEL = b"secagg/v2/federation-round/"


def round_context(number: int, federation: str) -> bytes:
    """The public facts a federation's round is bound to, as the server and every
    branch derive them: the federation's name (length-prefixed ASCII) and the round
    number (u64, big-endian), under a versioned label.

    Both roles pass it to the round's sessions (``bind_round``), and a masking round's
    protocol id follows from it and the spec: see
    :func:`secagg.aggregation.masking.protocol_round_id`. The round number is the
    fact a branch enforces itself (a start of a round at or below the last one it
    started is refused), and the server's numbers only grow, across its restarts too
    (a round is begun in its store before any start is sent; one a crash left running
    is aborted, and its retry is the next number).

    Why the name: a server running two federations with the same branch certificates
    could otherwise give round 5 of federation A to federation B's round 5 (its
    signed keys, its sealed shares): every binding agreed. The name's length goes
    first, so no two (name, number) pairs give the same bytes."""
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 1 << 64:
        raise ConfigurationError(f"a round number is an unsigned 64-bit integer, not {number!r}")
    name = _checked_federation(federation, ConfigurationError)
    return ROUND_CONTEXT_LABEL + struct.pack(">B", len(name)) + name + struct.pack(">Q", number)


def _checked_federation(name: object, error: type[Exception]) -> bytes:
    """A federation's name as bound and sent (ASCII, the config's name rule), or
    ``error``: a name that could be anything would reach a branch's log verbatim."""
    if not isinstance(name, str) or not FEDERATION_NAME_PATTERN.fullmatch(name):
        raise error(
            f"a federation's name is 1 to 64 letters, digits, '.', '_' or '-', not {name!r:.80}"
        )
    return name.encode("ascii")


def round_start_model(model: np.ndarray) -> bytes:
    """A round start's model as its message carries it (little-endian float32)."""
    return np.ascontiguousarray(model, dtype="<f4").tobytes()


def round_start_parts(message: RoundStart, model: bytes | None = None) -> tuple[bytes, ...]:
    """``message`` encoded (:func:`encode_message`) in consecutive parts: what is the
    branch's own (the header, its party index), the round's spec, the model's length,
    the model's bytes (``model``, when the caller encoded them already:
    :func:`round_start_model` of ``message.model``), and what follows them.

    Why: the round starts of one round differ only in the party index; the spec (a CKKS
    round's carries the key holder's public context, megabytes) and the model are their
    bulk. A server that passes the same spec and ``model`` objects for every branch holds
    them once (with a transport that sends parts unjoined: ``send_parts``), not once per
    branch. A ``model`` of another length than ``message.model`` is refused
    (:class:`~secagg.errors.ConfigurationError`)."""
    data = round_start_model(message.model) if model is None else model
    if len(data) != 4 * message.model.size:
        raise ConfigurationError(
            f"a round start's model bytes are {len(data)}, not 4 x its {message.model.size} "
            "parameters"
        )
    clip = math.nan if message.clip is None else message.clip
    own = Writer().blob(_checked_federation(message.federation, MalformedMessage))
    own.u32(message.party).f64(clip).u8(1 if message.report_unclipped else 0)
    own.u32(len(message.spec))  # the spec's blob: its length, then its bytes
    head = _HEAD.pack(_MAGIC, ROUND_START_VERSION, ROUND_START, message.round)
    tail = (
        b"" if message.deadline is None else struct.pack("<d", _checked_deadline(message.deadline))
    )
    # the model's blob: its length, then its bytes
    return head + own.bytes(), message.spec, struct.pack("<I", len(data)), data, tail


def encode_message(message: Message) -> bytes:
    if isinstance(message, RoundStart):
        return b"".join(round_start_parts(message))
    if isinstance(message, FederationEnd):
        reason = message.reason.encode("utf-8")[:MAX_REASON_BYTES]
        body = Writer().u8(1 if message.finished else 0).blob(reason).bytes()
        return _HEAD.pack(_MAGIC, _VERSION, FEDERATION_END, message.round) + body
    if isinstance(message, Leave):
        body = Writer().blob(message.reason.encode("utf-8")[:MAX_REASON_BYTES]).bytes()
        return _HEAD.pack(_MAGIC, _VERSION, LEAVE, message.round) + body
    if isinstance(message, NotSampled):
        w = Writer().blob(_checked_federation(message.federation, MalformedMessage))
        w.f64(_checked_deadline(message.deadline))
        return _HEAD.pack(_MAGIC, _VERSION, NOT_SAMPLED, message.round) + w.bytes()
    if isinstance(message, Relay):
        w = Writer()
        if message.privacy is None:
            w.u8(0)
        else:
            _write_report(w.u8(1), message.privacy)
        head = _HEAD.pack(_MAGIC, _VERSION, RELAY, message.round)
        return head + w.bytes() + message.payload
    reason = message.reason.encode("utf-8")[:MAX_REASON_BYTES]
    body = Writer().u8(1 if message.complete else 0).blob(reason).bytes()
    return _HEAD.pack(_MAGIC, _VERSION, ROUND_END, message.round) + body


def _checked_deadline(seconds: float) -> float:
    """A round deadline as the decoder accepts it: finite, 0 to MAX_DEADLINE_SECONDS."""
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_DEADLINE_SECONDS):
        raise MalformedMessage(f"a round deadline of {seconds!r} s is out of range")
    return float(seconds)


def decode_message(data: bytes) -> Message:
    """The message ``data`` encodes, or :class:`MalformedMessage` (and nothing else)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"a runtime message is bytes, not {type(data).__name__}")
    try:
        return _decode(bytes(data))
    except MalformedMessage:
        raise
    except Exception as exc:  # totality: a check we missed must still be a refusal
        raise MalformedMessage(f"runtime message does not decode ({type(exc).__name__})") from None


def _decode(view: bytes) -> Message:
    if len(view) < _HEAD.size:
        raise MalformedMessage("runtime message shorter than its header")
    magic, version, kind, number = _HEAD.unpack_from(view)
    expected = ROUND_START_VERSION if kind == ROUND_START else _VERSION
    if magic == _MAGIC and kind == ROUND_START and version == _VERSION:
        raise OutdatedMessage(kind, number, version, expected)
    if magic != _MAGIC or version != expected:
        raise MalformedMessage("not a runtime message of a known version")
    body = view[_HEAD.size :]
    if kind == ROUND_START:
        r = Reader(body, "round start")
        federation = r.text(64)
        _checked_federation(federation, MalformedMessage)
        party, clip, report = r.u32(), r.f64_raw(), r.u8()
        spec, model_bytes = r.blob(), r.blob(1 << 31)
        deadline = _checked_deadline(r.f64_raw()) if r.remaining else None
        r.end()
        if not (math.isnan(clip) or (math.isfinite(clip) and clip > 0)):
            raise MalformedMessage("the round's clip must be positive")
        if report not in (0, 1) or (report and math.isnan(clip)):
            raise MalformedMessage("a count report needs a clip")
        model = model_from_bytes(model_bytes)
        return RoundStart(
            number,
            party,
            spec,
            model,
            None if math.isnan(clip) else clip,
            report == 1,
            deadline,
            federation=federation,
        )
    if kind == RELAY:
        if not body:
            raise MalformedMessage("relay without its flags")
        privacy = None
        if body[0] == 1:
            r = Reader(body[1:], "privacy report")
            privacy = _read_report(r)
            payload = body[1 + r.offset :]
        elif body[0] == 0:
            payload = body[1:]
        else:
            raise MalformedMessage("unknown relay flags")
        return Relay(number, payload, privacy)
    if kind == ROUND_END:
        r = Reader(body, "round end")
        status, reason = r.u8(), r.blob(MAX_REASON_BYTES)
        r.end()
        if status not in (0, 1):
            raise MalformedMessage("unknown round status")
        return RoundEnd(number, status == 1, reason.decode("utf-8", errors="replace"))
    if kind == FEDERATION_END:
        r = Reader(body, "federation end")
        status, reason = r.u8(), r.blob(MAX_REASON_BYTES)
        r.end()
        if status not in (0, 1):
            raise MalformedMessage("unknown federation status")
        return FederationEnd(number, status == 1, reason.decode("utf-8", errors="replace"))
    if kind == LEAVE:
        r = Reader(body, "leave")
        reason = r.blob(MAX_REASON_BYTES)
        r.end()
        return Leave(number, reason.decode("utf-8", errors="replace"))
    if kind == NOT_SAMPLED:
        r = Reader(body, "not-sampled notice")
        federation = r.text(64)
        _checked_federation(federation, MalformedMessage)
        deadline = _checked_deadline(r.f64_raw())
        r.end()
        return NotSampled(number, deadline, federation=federation)
    raise MalformedMessage(
        f"unknown runtime message kind {kind} (a newer secagg's message: upgrade this party "
        "to the sender's release)"
    )


def _write_report(w: Writer, report: RecordReport) -> None:
    norm = math.nan if report.max_grad_norm is None else report.max_grad_norm
    w.text(report.accountant).text(report.unit)
    w.f64(report.delta).f64(report.epsilon).f64(norm)
    w.u32(len(report.history))
    for z, q, steps in report.history:
        w.f64(z).f64(q).u32(steps)


def _read_report(r: Reader) -> RecordReport:
    """A branch's record-level report: every number finite (epsilon may be +inf: no noise)."""
    accountant = r.text(16)
    unit = r.text(16)
    delta = r.f64()
    epsilon = r.f64_raw()  # may be +inf: a branch without noise; NaN and -inf are refused
    if math.isnan(epsilon) or epsilon < 0:
        raise MalformedMessage("record-level epsilon must be a non-negative number")
    norm = r.f64_raw()  # NaN encodes "no clip reported"; infinities are refused
    if math.isinf(norm):
        raise MalformedMessage("record-level max_grad_norm must be finite")
    count = r.u32()
    if count > MAX_HISTORY:
        raise MalformedMessage("record-level history too long")
    if r.remaining < count * _HISTORY_ENTRY_BYTES:  # before building anything
        raise MalformedMessage("privacy report truncated in its history")
    history = tuple((r.f64(), r.f64(), r.u32()) for _ in range(count))
    return RecordReport(
        accountant, delta, epsilon, history, None if math.isnan(norm) else norm, unit
    )


def model_bytes(model: np.ndarray) -> bytes:
    """The server's checkpoint form (float64): what the store and the ledger digest."""
    return np.ascontiguousarray(model, dtype="<f8").tobytes()


def model_from_bytes(body: bytes) -> np.ndarray:
    """A float32 model from the wire, as float64 (finite values only)."""
    if len(body) % 4:
        raise MalformedMessage(f"a float32 model of {len(body)} bytes")
    model = np.frombuffer(body, dtype="<f4").astype(np.float64)
    if not np.all(np.isfinite(model)):
        raise MalformedMessage("model holds NaN or infinite values")
    return model
