"""Test helpers: a step-by-step round driver and a deep state fingerprint.

The driver exposes every message of every phase so tests can tamper with,
replay or withhold any of them; the fingerprint turns a whole state machine
(nested dicts, numpy buffers, key objects) into a comparable value so a test can
assert that a refused message changed nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from secagg.crypto.signing import SigningKey
from secagg.errors import SecAggError
from secagg.protocol import Client, NeighbourGraph, RoundConfig, Server, ServerPhase, decode, encode
from secagg.protocol.messages import ClientMessage, Message, ServerMessage

_LOCK = type(threading.Lock())


def fingerprint(obj: Any, _seen: set[int] | None = None) -> Any:
    """A hashable-free, deeply comparable image of ``obj`` and everything it owns."""
    seen = _seen if _seen is not None else set()
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    if isinstance(obj, enum.Enum):
        return (type(obj).__name__, obj.value)
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, (X25519PrivateKey, Ed25519PrivateKey)):
        return ("private-key", obj.private_bytes_raw())
    if isinstance(obj, (X25519PublicKey, Ed25519PublicKey)):
        return ("public-key", obj.public_bytes_raw())
    if type(obj).__module__.startswith("tenseal"):  # ciphertexts and contexts: their bytes
        return (type(obj).__name__, obj.serialize())
    if isinstance(obj, _LOCK):  # a KeyedStream's lock: whether it is held, not state
        return ("lock", obj.locked())
    if isinstance(obj, NeighbourGraph):  # its lazily built ring is a cache, not state
        return ("graph", obj.num_clients, obj.kind.value, obj.degree, obj.seed)
    if isinstance(obj, dict):
        return ("dict", sorted((repr(k), fingerprint(v, seen)) for k, v in obj.items()))
    if isinstance(obj, (set, frozenset)):
        return ("set", sorted(repr(fingerprint(v, seen)) for v in obj))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [fingerprint(v, seen) for v in obj])
    if id(obj) in seen:
        return ("cycle", type(obj).__name__)
    seen.add(id(obj))
    if dataclasses.is_dataclass(obj):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return (type(obj).__name__, fingerprint(fields, seen))
    if hasattr(obj, "__dict__"):
        return (type(obj).__name__, fingerprint(vars(obj), seen))
    if hasattr(obj, "__slots__"):
        return (
            type(obj).__name__,
            [fingerprint(getattr(obj, s, None), seen) for s in obj.__slots__],
        )
    raise TypeError(f"cannot fingerprint {type(obj).__name__}")


def refused_call(
    target: Any, error: type[Exception], call: Callable[..., object], *args: object
) -> pytest.ExceptionInfo[Exception]:
    """``call(*args)`` raises ``error`` and leaves ``target`` exactly as it was.

    Why a helper: "a refused call changes no state" is the house rule for every
    state machine, and the check is only worth something if it compares the whole
    object (keys, buffers, streams), which :func:`fingerprint` does."""
    before = fingerprint(target)
    with pytest.raises(error) as caught:
        call(*args)
    assert fingerprint(target) == before
    return caught


def wire(message: Message) -> Message:
    """What the other side sees: the message after the binary codec."""
    return decode(encode(message))


def random_inputs(n: int, d: int, bits: int = 32) -> np.ndarray:
    dtype = np.uint32 if bits == 32 else np.uint64
    return np.frombuffer(os.urandom(n * d * dtype().itemsize), dtype=dtype).reshape(n, d).copy()


class SteppedRound:
    """A round advanced one phase at a time, every message in the open.

    ``to_clients`` holds the server's pending messages; :meth:`clients_reply`
    hands them to the clients and returns the replies, :meth:`server_receives`
    feeds replies to the server and stores its next messages in ``to_clients``.
    """

    def __init__(
        self,
        n: int = 4,
        d: int = 8,
        *,
        bits: int = 32,
        active: bool = False,
        graph: str = "complete",
        k: int | None = None,
        threshold: int | None = None,
        population: int | None = None,
    ) -> None:
        self.config = RoundConfig.create(
            n,
            d,
            bits=bits,
            graph=graph,
            k=k,
            threshold=threshold,
            active=active,  # type: ignore[arg-type]
            population=population,
        )
        self.inputs = random_inputs(n, d, bits)
        identity = {p: SigningKey.generate() for p in range(n)} if active else {}
        self.identity = identity
        public = {p: key.verify_key for p, key in identity.items()} or None
        self.server = Server(self.config, identity_keys=public)
        self.clients = [
            Client(p, self.inputs[p], signing_key=identity.get(p), identity_keys=public)
            for p in range(n)
        ]
        self.to_clients: list[ServerMessage] = self.server.start()

    def clients_reply(
        self, skip: set[int] | frozenset[int] = frozenset(), *, refusal_is_dropout: bool = False
    ) -> list[ClientMessage]:
        """Deliver ``to_clients``; a client that refuses a message raises, or with
        ``refusal_is_dropout`` simply stops answering, as it would in deployment."""
        replies: list[ClientMessage] = []
        for message in self.to_clients:
            if message.recipient in skip:
                continue
            try:
                answers = self.clients[message.recipient].handle(wire(message))
            except SecAggError:
                if not refusal_is_dropout:
                    raise
                continue
            replies.extend(wire(reply) for reply in answers)  # type: ignore[misc]
        return replies

    def server_receives(
        self, replies: list[ClientMessage], *, close: bool = True, refusal_is_dropout: bool = False
    ) -> list[ServerMessage]:
        out: list[ServerMessage] = []
        for reply in replies:
            try:
                out.extend(self.server.handle(reply))
            except SecAggError:
                if not refusal_is_dropout:
                    raise
        if (
            not out
            and close
            and self.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED)
        ):
            out = self.server.close_phase()
        self.to_clients = out
        return out

    def step(
        self, skip: set[int] | frozenset[int] = frozenset(), *, refusal_is_dropout: bool = False
    ) -> None:
        self.server_receives(
            self.clients_reply(skip, refusal_is_dropout=refusal_is_dropout),
            refusal_is_dropout=refusal_is_dropout,
        )

    def message_for(self, party: int) -> ServerMessage:
        (message,) = [m for m in self.to_clients if m.recipient == party]
        return message

    def expected_sum(self) -> np.ndarray:
        included = list(self.server.report.included)
        return self.inputs[included].sum(axis=0, dtype=self.inputs.dtype)
