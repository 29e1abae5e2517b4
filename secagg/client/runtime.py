"""The federation client: a bank branch's process. Its data never leaves it.

Theory of operation
-------------------
The client holds its data behind a *training hook*: a function from the
global model (a float vector) to this branch's update (a float vector of the
same length). :class:`TorchTrainingHook` adapts a torch model and a local
training function; any numpy function works for non-torch users.

Per round, on ``ROUND_START`` it trains, clips the update to the federation's
clip (client-level DP), checks it against the ring's bound, encodes it to fixed
point with stochastic rounding from a CSPRNG-keyed stream and hands it to a
fresh masking-protocol :class:`~secagg.protocol.Client` (with the ``plain``
baseline backend it sends the clipped update itself, in the clear). Protocol messages
from the server go to that state machine and its replies go back. So only
masked vectors, keys and encrypted shares leave the process: never the data,
never the raw or clipped update. A message the state machine refuses is
logged and dropped, and the round goes on (or ends by the server's deadline).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from secagg.crypto.stream import SEED_BYTES, KeyedStream
from secagg.dp.clipping import clip_l2
from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, MalformedMessage, RoundAborted, SecAggError
from secagg.federation.wire import Envelope, Kind, model_from_bytes
from secagg.protocol import Client, decode, encode
from secagg.transport.inprocess import ClientEndpoint

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
    """One branch: trains locally, then masks its update through the protocol."""

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
        fixed-point encoding, and the distributed-DP noise share, so that a run
        replays bit for bit; by default both draw from the OS CSPRNG. Masks and
        keys are never seeded.
        """
        self._pin = key_fingerprint
        self._replay_seed = replay_seed
        # record-level DP: the local accountant's inputs, sent with our first message
        # of each round for the server's ledger (e.g. DPSGDTrainer.privacy_report)
        self._privacy_report = privacy_report
        self._pending_privacy: dict | None = None
        self.name = name
        self._train = train
        self._transport = transport
        self._round: int | None = None
        self._protocol: Client | None = None
        self.stats = ClientStats()

    def reconnected(self, transport: ClientEndpoint) -> None:
        """Continue on a new session; the round in flight (if any) is lost."""
        self._transport = transport
        self._protocol = None
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
            envelope = Envelope.decode(payload)
            if envelope.kind == Kind.ROUND_START:
                self._start(envelope)
            elif envelope.kind == Kind.PROTOCOL:
                self._protocol_message(envelope)
            else:
                self._end(envelope)
        except (SecAggError, ValueError) as exc:
            self.stats.refused_messages += 1
            log.warning("%s refused a message: %s", self.name, exc)

    def _start(self, envelope: Envelope) -> None:
        h = envelope.header
        try:
            dimension, party = int(h["dimension"]), int(h["party"])
            plain = h.get("backend") in ("plain", "ckks")  # no ring encoding for these
            fixed = FixedPoint(1.0 if plain else float(h["scale"]), 32 if plain else int(h["bits"]))
            bound = float(h["value_bound"])
            clip = None if h.get("clip") is None else float(h["clip"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad round parameters: {exc}") from None
        ckks = h.get("backend") == "ckks"
        body = envelope.body
        if ckks:
            split = int(h.get("model_bytes", -1))
            if not 0 <= split <= len(body):
                raise MalformedMessage("bad model length in a CKKS round start")
            body, public_context = body[:split], body[split:]
        model = model_from_bytes(body, dimension)
        self.stats.rounds_started += 1
        self.stats.last_model = model
        update = np.asarray(self._train(model.copy()), dtype=np.float64)
        self._pending_privacy = None if self._privacy_report is None else self._privacy_report()
        if update.shape != (dimension,) or not np.all(np.isfinite(update)):
            raise ConfigurationError(f"the training hook returned a bad update {update.shape}")
        if clip is not None:
            update = clip_l2(update, clip).vector
        if np.max(np.abs(update), initial=0.0) > bound:
            raise ConfigurationError(
                f"update coordinate beyond the ring's bound {bound:g}: clip it (dp.clip)"
            )
        if ckks:  # encrypt to the key holder's public key; the server only adds
            from secagg.aggregation.ckks import frame_chunks
            from secagg.he.keys import PublicAggregationContext
            from secagg.he.vectors import encrypt_vector
            from secagg.server.keyholder import design_point

            context = PublicAggregationContext.from_bytes(
                public_context,
                design_point(h),
                expected_fingerprint=self._pin or bytes.fromhex(str(h.get("fingerprint", ""))),
            )
            contribution = frame_chunks(encrypt_vector(context, update))
            out = Envelope(Kind.PROTOCOL, envelope.round, self._privacy_header(), contribution)
            self._transport.send(out.encode())
            return
        if h.get("backend") == "plain":  # the baseline: the update goes in the clear
            from secagg.aggregation.plain import PlainRound

            contribution = PlainRound(party + 1, dimension).encoder(party).encode(update)
            out = Envelope(Kind.PROTOCOL, envelope.round, self._privacy_header(), contribution)
            self._transport.send(out.encode())
            return
        if isinstance(h.get("ddg"), dict):  # distributed DP: add our noise share first
            words = self._distributed_words(h, dimension, update, envelope.round)
        else:
            words = fixed.encode(update, self._rounding_stream(envelope.round))
        del update  # only the masked words leave, through the protocol
        self._round = envelope.round
        self._protocol = Client(party, words)

    def _distributed_words(
        self, header: dict, dimension: int, update: np.ndarray, round_number: int
    ) -> np.ndarray:
        """Rotate, clip, scale, round and add this client's discrete Gaussian share.

        The parameters come from the server (honest-but-curious: a server that
        lowered the noise here would also be caught by an auditor re-deriving
        the epsilon from the recorded parameters)."""
        from secagg.dp.distributed import DistributedDiscreteGaussian

        p = header["ddg"]
        try:
            ddg = DistributedDiscreteGaussian(
                dimension=dimension,
                clip=float(p["clip"]),
                noise_multiplier=float(p["noise_multiplier"]),
                expected_clients=int(p["expected_clients"]),
                bits=int(header["bits"]),
                scale=float(p["scale"]),
            )
            rotation_seed = bytes.fromhex(str(p["rotation_seed"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad distributed-DP parameters: {exc}") from None
        return ddg.encode(update, rotation_seed, self._rounding_stream(round_number))

    def _rounding_stream(self, round_number: int) -> KeyedStream:
        if self._replay_seed is None:
            return KeyedStream()
        label = f"secagg/v1/rounding-replay/{self.name}/{round_number}/".encode()
        return KeyedStream(hashlib.sha256(label + self._replay_seed).digest()[:SEED_BYTES])

    def _protocol_message(self, envelope: Envelope) -> None:
        if self._protocol is None or envelope.round != self._round:
            raise MalformedMessage(f"protocol message for round {envelope.round}, not ours")
        try:
            replies = self._protocol.handle(decode(envelope.body))
        except RoundAborted as exc:
            log.info("%s left round %d: %s", self.name, envelope.round, exc)
            self._protocol = None
            return
        for reply in replies:
            out = Envelope(Kind.PROTOCOL, envelope.round, self._privacy_header(), encode(reply))
            self._transport.send(out.encode())

    def _privacy_header(self) -> dict:
        """The privacy report on the round's first message only."""
        if self._pending_privacy is None:
            return {}
        header, self._pending_privacy = {"privacy": self._pending_privacy}, None
        return header

    def _end(self, envelope: Envelope) -> None:
        if envelope.header.get("status") == "complete":
            self.stats.rounds_completed += 1
        else:
            self.stats.rounds_aborted += 1
        self._protocol = None
        self._round = None
