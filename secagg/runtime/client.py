"""The federation client: a bank branch's process. Its data never leaves it.

Theory of operation
-------------------
The client holds its data behind a *training hook*: a function from the
global model (a float vector) to this branch's update (a float vector of the
same length). :func:`~secagg.runtime.hooks.torch_hook` adapts a torch model;
any numpy function works for non-torch users.

Per round, on :class:`~secagg.runtime.wire.RoundStart` it trains, passes the
update through the DP front door (:meth:`secagg.dp.release.Mechanism.prepare`:
the one clip) and hands it to the client side of the round's backend, built
from the round's spec (:func:`secagg.aggregation.decode_spec`). The session's
payloads go out as :class:`~secagg.runtime.wire.Relay` messages and the
server's payloads come back into it. So only what the backend sends (masked
vectors, keys and encrypted shares; ciphertexts; or, with the ``plain``
baseline, the update itself) leaves the process: never the data. A message the
session refuses is logged and dropped, and the round goes on (or ends by the
server's deadline). This module never names a backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from secagg.aggregation import ClientSession, decode_spec, get_backend
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.release import Mechanism, RecordReport
from secagg.errors import ConfigurationError, MalformedMessage, RoundAborted, SecAggError
from secagg.runtime.wire import Relay, RoundEnd, RoundStart, decode_message, encode_message
from secagg.transport.base import ClientEndpoint

log = logging.getLogger("secagg.client")

#: global model -> this client's update (same length); runs on the client only
TrainingHook = Callable[[np.ndarray], np.ndarray]


@dataclass
class ClientStats:
    rounds_started: int = 0
    rounds_completed: int = 0
    rounds_aborted: int = 0
    refused_messages: int = 0
    last_model: np.ndarray | None = field(default=None, repr=False)


class FederationClient:
    """One branch: trains locally, then contributes through the round's backend."""

    def __init__(
        self,
        name: str,
        train: TrainingHook,
        transport: ClientEndpoint,
        *,
        key_fingerprint: bytes | None = None,
        replay_seed: bytes | None = None,
        privacy_report: Callable[[], dict] | None = None,
    ) -> None:
        """``key_fingerprint`` pins the CKKS key holder's key (a malicious server
        relaying its own key is then refused); without it the round's is trusted.

        ``replay_seed`` (simulations only) keys the stochastic rounding of the
        encoding and the distributed-DP noise share, so that a run replays bit
        for bit; by default both draw from the OS CSPRNG. Masks and keys are
        never seeded.

        ``privacy_report`` (record-level DP, e.g. ``DPSGDTrainer.privacy_report``)
        returns the local accountant's inputs; they go with the round's first
        payload to the server's ledger.
        """
        self._pin = key_fingerprint
        self._replay_seed = replay_seed
        self._privacy_report = privacy_report
        self._pending_privacy: RecordReport | None = None
        self.name = name
        self._train = train
        self._transport = transport
        self._round: int | None = None
        self._session: ClientSession | None = None
        self.stats = ClientStats()

    def reconnected(self, transport: ClientEndpoint) -> None:
        """Continue on a new session; the round in flight (if any) is lost."""
        self._transport = transport
        self._session = None
        self._round = None

    def run(self, *, idle_timeout: float = 30.0, rounds: int | None = None) -> ClientStats:
        """Serve rounds until ``rounds`` have ended or the server is silent for idle_timeout."""
        while rounds is None or self.stats.rounds_completed + self.stats.rounds_aborted < rounds:
            payload = self._transport.receive(timeout=idle_timeout)
            if payload is None:
                break
            self.handle(payload)
        return self.stats

    def handle(self, payload: bytes) -> None:
        """Process one message from the server (refused messages change nothing)."""
        try:
            message = decode_message(payload)
            if isinstance(message, RoundStart):
                self._start(message)
            elif isinstance(message, Relay):
                self._relay(message)
            else:
                self._end(message)
        except (SecAggError, ValueError) as exc:
            self.stats.refused_messages += 1
            log.warning("%s refused a message: %s", self.name, exc)

    def _start(self, start: RoundStart) -> None:
        spec = decode_spec(start.spec)
        session = get_backend(spec.name).client(
            spec, start.party, rounding=self._rounding_stream(start.round), trusted_key=self._pin
        )
        self.stats.rounds_started += 1
        self.stats.last_model = start.model
        update = np.asarray(self._train(start.model.copy()), dtype=np.float64)
        if self._privacy_report is not None:
            self._pending_privacy = RecordReport.from_dict(self._privacy_report())
        if update.shape != start.model.shape or not np.all(np.isfinite(update)):
            raise ConfigurationError(f"the training hook returned a bad update {update.shape}")
        update = Mechanism(start.clip, report_unclipped=start.report_unclipped).prepare(update)
        self._round, self._session = start.round, session
        self._send(start.round, session.set_input(update))

    def _rounding_stream(self, round_number: int) -> KeyedStream:
        if self._replay_seed is None:
            return KeyedStream()
        label = f"secagg/v1/rounding-replay/{self.name}/{round_number}/".encode()
        return KeyedStream(derive(label, self._replay_seed))

    def _relay(self, relay: Relay) -> None:
        if self._session is None or relay.round != self._round:
            raise MalformedMessage(f"a payload for round {relay.round}, not ours")
        try:
            replies = self._session.handle(relay.payload)
        except RoundAborted as exc:
            log.info("%s left round %d: %s", self.name, relay.round, exc)
            self._session = None
            return
        self._send(relay.round, replies)

    def _send(self, round_number: int, payloads: list[bytes]) -> None:
        for payload in payloads:
            privacy, self._pending_privacy = self._pending_privacy, None  # first payload only
            self._transport.send(encode_message(Relay(round_number, payload, privacy)))

    def _end(self, end: RoundEnd) -> None:
        if end.complete:
            self.stats.rounds_completed += 1
        else:
            self.stats.rounds_aborted += 1
        self._session = None
        self._round = None
