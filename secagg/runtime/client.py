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

**The branch decides, not the server.** Every round is checked against the
branch's own :class:`~secagg.aggregation.policy.BranchPolicy` where its client
side is built from the spec, before the training hook runs: a backend the branch
does not accept (``plain`` unless opted in), a CKKS key that is not the pinned
key holder's, a larger clip or a smaller noise share than the policy allows, or
(in the protocol's setup) a threshold below the one the branch computes itself
raises :class:`~secagg.errors.PolicyRefused`. The branch then sends nothing of
its update and, by default, stops (:class:`BranchRefused`): a server that tries
to weaken a round is an incident for an operator, not a retry loop.

In the active variant the round lists every party's certificate; the branch
checks each against its own CA (:class:`BranchIdentity`) and signs with its
certificate's key, so the server can substitute no party's key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from secagg.aggregation import ClientSession, decode_spec, get_backend
from secagg.aggregation.base import RoundIdentity, RoundSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.signing import CertificateSigningKey, CertificateVerifyKey
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.release import Mechanism, RecordReport
from secagg.errors import (
    ConfigurationError,
    MalformedMessage,
    PolicyRefused,
    RoundAborted,
    SecAggError,
)
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
    rounds_refused: int = 0  # rounds weaker than the branch's policy
    last_model: np.ndarray | None = field(default=None, repr=False)


class BranchRefused(PolicyRefused):
    """The branch refused a round by its policy and stopped (``secagg client`` exits 3)."""

    def __init__(self, round_number: int, refusal: PolicyRefused) -> None:
        self.round = round_number
        self.refusal = refusal
        super().__init__(refusal.setting, f"round {round_number}: {refusal}")
        self.args = (f"round {round_number}: {refusal}",)


@dataclass(frozen=True)
class BranchIdentity:
    """This branch's certificate identity, for the active variant.

    ``certificate`` is its own DER certificate, ``signing_key`` the certificate's
    private key, and ``check(der) -> name`` verifies a party's certificate against
    the branch's CA (chain, validity, client purpose, revocation) and returns its
    name, or raises. The server can then list only certificates the CA issued.
    """

    certificate: bytes
    signing_key: CertificateSigningKey
    check: Callable[[bytes], str]

    def round_identity(self, certificates: tuple[bytes, ...], party: int) -> RoundIdentity:
        """Verify the round's identities; refuse a list that is not one distinct CA-issued
        certificate per party with this branch's own at its index."""
        if not 0 <= party < len(certificates) or certificates[party] != self.certificate:
            raise PolicyRefused(
                "branch.identity", "the round does not list this branch's certificate as its own"
            )
        names = []
        for index, der in enumerate(certificates):
            try:
                names.append(self.check(der))
            except Exception as exc:  # any failure to verify is a refusal
                raise PolicyRefused(
                    "branch.identity", f"party {index}'s certificate does not verify: {exc}"
                ) from None
        if len(set(names)) != len(names):
            raise PolicyRefused(
                "branch.identity", "the round lists one branch's certificate for several parties"
            )
        keys = {p: CertificateVerifyKey.from_certificate(der) for p, der in enumerate(certificates)}
        return RoundIdentity(self.signing_key, keys)


class FederationClient:
    """One branch: trains locally, then contributes through the round's backend."""

    def __init__(
        self,
        name: str,
        train: TrainingHook,
        transport: ClientEndpoint,
        *,
        policy: BranchPolicy | None = None,
        identity: BranchIdentity | None = None,
        stop_on_refusal: bool = True,
        replay_seed: bytes | None = None,
        privacy_report: Callable[[], dict] | None = None,
    ) -> None:
        """``policy`` is the weakest round this branch joins (default: the safe
        :class:`BranchPolicy`: no ``plain``, CKKS only with a pinned key holder, the
        threshold computed locally). With ``stop_on_refusal`` a refused round stops
        :meth:`run` with :class:`BranchRefused`; otherwise the round is skipped.
        ``identity`` (the branch's certificate) is needed for active rounds.

        ``replay_seed`` (simulations only) keys the stochastic rounding of the
        encoding and the distributed-DP noise share, so that a run replays bit
        for bit; by default both draw from the OS CSPRNG. Masks and keys are
        never seeded.

        ``privacy_report`` (record-level DP, e.g. ``DPSGDTrainer.privacy_report``)
        returns the local accountant's inputs; they go with the round's first
        payload to the server's ledger.
        """
        self.policy = policy if policy is not None else BranchPolicy()
        self._identity = identity
        self._stop_on_refusal = stop_on_refusal
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
        """Process one message from the server (refused messages change nothing).

        Raises :class:`BranchRefused` when a round is weaker than the policy (and
        ``stop_on_refusal``); nothing else a server sends escapes."""
        number: int | None = None
        try:
            message = decode_message(payload)
            number = message.round
            if isinstance(message, RoundStart):
                self._start(message)
            elif isinstance(message, Relay):
                self._relay(message)
            else:
                self._end(message)
        except PolicyRefused as exc:
            self._refused(number, exc)
        except SecAggError as exc:
            self.stats.refused_messages += 1
            log.warning("%s refused a message: %s", self.name, exc)
        except Exception as exc:  # no server message may crash a branch
            self.stats.refused_messages += 1
            log.error("%s dropped a message (%s): %s", self.name, type(exc).__name__, exc)

    def _refused(self, number: int | None, exc: PolicyRefused) -> None:
        """A round below the policy: nothing of the update has left; stop or skip it."""
        self.stats.rounds_refused += 1
        self._session, self._round = None, None
        if self._stop_on_refusal:  # the caller reports it (secagg client: one line, exit 3)
            log.info("%s refused round %s by its policy: %s", self.name, number, exc)
            raise BranchRefused(number if number is not None else -1, exc) from None
        log.error("%s refused round %s by its policy: %s", self.name, number, exc)

    def _round_identity(self, spec: RoundSpec, party: int) -> RoundIdentity | None:
        certificates = spec.identity_certificates()
        if not certificates:
            return None
        if self._identity is None:
            raise PolicyRefused(
                "branch.identity", "an active round needs this branch's certificate identity"
            )
        return self._identity.round_identity(certificates, party)

    def _start(self, start: RoundStart) -> None:
        spec = decode_spec(start.spec)
        self.policy.check_clip(start.clip)  # the clip this update goes through, before training
        session = get_backend(spec.name).client(
            spec,
            start.party,
            rounding=self._rounding_stream(start.round),
            policy=self.policy,
            identity=self._round_identity(spec, start.party),
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
