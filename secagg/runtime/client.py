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
its update but a :class:`~secagg.runtime.wire.Leave` naming the setting, and, by
default, stops (:class:`BranchRefused`): a server that tries to weaken a round is an
incident for an operator, not a retry loop. A branch that skips refused rounds
instead (``stop_on_refusal=False``) is done with the round at the refusal: it waits
for the next round on its idle timer, and the refused round counts once, in
``rounds_refused`` (its end, and its payloads sent before the leave arrived, are
taken quietly, never counted as an abort or as refused messages).

In the active variant the round lists every party's certificate; the branch
checks each against its own CA (:class:`BranchIdentity`) and signs with its
certificate's key, so the server can substitute no party's key.

**Nor does the server choose the round's protocol id.** The branch binds its session
to the round it started (:func:`~secagg.runtime.wire.round_context`; ``bind_round``):
a masking round's id is derived from the federation's name, that round number and the
approved spec, and a setup under any other id is refused
(:class:`~secagg.errors.WrongRound`), nothing of the protocol sent: the branch leaves
the round at once (a :class:`~secagg.runtime.wire.Leave`), so the server does not wait
out the phase for it. With a start at or below the last round started refused too, no
id repeats at a branch, so nothing it signed (its advertised keys) verifies in another
round: a server drawing the id itself could reuse one and replay a branch's old keys to
its neighbours. The server's round numbers only grow across its restarts (its store),
so a crashed round's retry is the next number and is accepted. A branch keeps that
high-water mark in its state file (``state``; ``secagg client --state``:
:mod:`secagg.runtime.branch_state`), written before it trains, so a restarted branch
still refuses a replayed round number; without one it remembers rounds only while it
runs, and a replay to a restarted branch would need the same round number and the
very same spec (cohort, order, parameters) again (docs/protocol.md, "Round ids in a
federation"; docs/deployment.md).

**Nor which federation the branch is in.** Every round start names its federation. A
branch takes the rounds of one federation only: its pin (``branch.federation``;
``secagg client --federation``), or else the one its state file records, or else the
one the server named in the first round it took (logged once). A start of any other is
refused before anything else, nothing trained or sent, and the branch leaves the round
at once: a pin's refusal is a policy refusal (``branch.federation``), a state file's a
:class:`~secagg.runtime.branch_state.BranchStateError` naming the file and both names.

**Nor how many rounds it takes.** With ``branch.epsilon_budget`` (and ``branch.delta``)
the branch keeps its own privacy budget (:mod:`secagg.runtime.branch_budget`): before
training it takes only a round in which it adds its own distributed noise share and
whose charge, under its own assumptions, keeps its epsilon within the budget, and it
records the charge in its state file before anything of the round is trained or sent.
Any other round is a policy refusal naming ``branch.epsilon_budget``.

Waiting, and when to stop (reliability review D1, D3)
-----------------------------------------------------
:meth:`FederationClient.run` serves one session. *Between* rounds, a server
silent for ``idle_timeout`` ends it ("idle"): silent, that is, of anything that moves
the federation on for this branch (a round start or a notice it takes, its round's end,
a payload of its round its session answers), so messages it refuses, and a payload
taken without an answer (a round's abort, repeated), do not restart the timer.
*Inside* a round (from its :class:`~secagg.runtime.wire.RoundStart` to its
:class:`~secagg.runtime.wire.RoundEnd`) the branch waits at least the round
deadline the server announced, plus :data:`ROUND_GRACE_SECONDS`: a slower branch's
training is the server's business, bounded by its own deadline, and must not make
the fast branches quit. A :class:`~secagg.runtime.wire.FederationEnd` ends the
session at once with the server's verdict (``stats.outcome``: "finished" or
"stopped").

A round the server's sampling left this branch out of is not silence: the server
sends it a :class:`~secagg.runtime.wire.NotSampled` notice (the round's number, its
federation and its deadline, nothing else), and the branch then waits at least that
round's deadline (plus :data:`ROUND_GRACE_SECONDS`) before its idle timer counts
again, as a branch inside the round does. Before, a branch left out of several rounds
in a row heard nothing and gave up (``BranchGaveUp``) while still eligible: with
``sampling.rate`` 0.1 and rounds of minutes a federation lost its branches one by one.
The notice is taken between rounds only, once a round: one of a round at or below the
last this branch started, one of a round it was told of already, of another federation,
or sent while this branch's own round is in flight (its end still due) is refused and
changes nothing (the notices taken are kept round by round, so a far-future one keeps
out no honest one). The server
tells each client once a round (a client that connects inside the round within a
second), so the deadline told is kept across a reconnect inside that round. Counted
in ``stats.rounds_not_sampled``.

:meth:`FederationClient.serve` keeps a branch in the federation across sessions:
it dials (any transport, through a ``dial(timeout)`` callable), serves, and when a
session is lost redials with back-off. The *retry window starts when the
connection is lost* and lasts ``give_up_after`` seconds (None: until the end is
announced); the first session gets ``connect_timeout``. A server that refuses
this party for who it is (:class:`~secagg.transport.base.NotAccepted`) is not
redialled. Running out of the window, or of the idle timer between rounds, raises
:class:`BranchGaveUp` (a :class:`~secagg.transport.base.TransportError`: the CLI's
exit status 1), never a quiet return.

A branch facing a server of an older secagg release (its round start is of an older
wire version) leaves that round and stops with :class:`ServerOutdated`, one line naming
both versions and what to upgrade: it could take none of the server's rounds. A
branch whose model dimension is not the federation's stops at the first round
start with :class:`DimensionMismatch` (a :class:`~secagg.errors.ConfigurationError`
naming both numbers) before it trains; a branch that leaves a round on its own
(its side of the round aborted, or it could not take part: a round its policy
refuses, a training hook that raised, or returned NaN in a round without a clip: under
a clip it sends the zero vector instead, as a leave there would depend on its data) says
so with a
:class:`~secagg.runtime.wire.Leave`, so the server need not wait out the phase for it
(D6).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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
    WrongRound,
)
from secagg.runtime import outcome, redial
from secagg.runtime.branch_budget import BranchBudget, RoundCharge
from secagg.runtime.branch_state import BranchStateError, RoundMark
from secagg.runtime.refusals import RefusalLog
from secagg.runtime.wire import (
    ROUND_START,
    ROUND_START_VERSION,
    FederationEnd,
    Leave,
    NotSampled,
    OutdatedMessage,
    Relay,
    RoundEnd,
    RoundStart,
    decode_message,
    encode_message,
    round_context,
)
from secagg.transport.base import ClientEndpoint, NotConnected, TransportError
from secagg.transport.waiting import (
    StopAsked,
    raise_if_stop_asked,
    raise_stop_within,
    stop_asked,
    stop_name,
    stop_within,
)

log = logging.getLogger("secagg.client")

#: global model -> this client's update (same length); runs on the client only
TrainingHook = Callable[[np.ndarray], np.ndarray]

#: opens a session with the server within ``timeout`` seconds, or raises NotConnected
Dial = Callable[[float], ClientEndpoint]

#: what a branch waits beyond the round deadline the server announced: the server
#: still releases, commits and tells the parties after its deadline passes
ROUND_GRACE_SECONDS = 30.0
#: the most rounds whose not-sampled notice a branch remembers between two rounds it
#: starts (a replay of one is refused); past it the highest is forgotten
MAX_NOTICES_KEPT = 256
#: a refused message's log line: the branch, the error's type (a ``SignatureError`` is a
#: forgery to look into, a ``MalformedMessage`` junk or a version skew; the text alone did
#: not say which) and its text. The text of every error secagg raises on a server's
#: message names the message's fields, parties and the round's public parameters, never a
#: key, share or value of the update (a bound crossed is named, not the coordinate that
#: crossed it)
REFUSED_LINE = "%s refused a message (%s): %s"
#: the branch's own training hook (or its privacy report) raised: not a refusal of the
#: server's message, and logged as the hook worded it (the branch's own code and log)
TRAINING_FAILED_LINE = "%s: its training hook failed in round %s (%s): %s; it left the round"
# the back-off between dials, kept importable from here (see secagg.runtime.redial)
MAX_REDIAL_PAUSE = redial.MAX_REDIAL_PAUSE
MAX_DIAL_SECONDS = redial.MAX_DIAL_SECONDS


@dataclass
class ClientStats:
    #: the rounds this branch took as its own: each start of its federation numbered above
    #: its last round, recorded (in its state file, with one) before anything else of the
    #: round, whatever became of it: trained, refused by its policy at its start or at the
    #: protocol's setup, left, lost. So every round started is ended (``rounds_ended``),
    #: lost, or the one in flight. Not counted: a start refused before it was taken (a
    #: replay, one that does not decode or fit this branch, or another federation's, which
    #: ``rounds_refused`` counts: that number is not this branch's round). Before,
    #: a round refused at its start was left out and one refused at its setup counted
    #: (review, 2026-12-06)
    rounds_started: int = 0
    rounds_completed: int = 0
    rounds_aborted: int = 0
    refused_messages: int = 0
    rounds_refused: int = 0  # rounds weaker than the branch's policy
    #: rounds this branch left on its own (its training failed, its side of the protocol
    #: aborted, its payload could not be sent) whatever the others made of them: counted
    #: as completed, a round the branch contributed nothing to read as one it took part in
    rounds_left: int = 0
    #: rounds taken whose session was lost before their end came (counted when the branch
    #: continues on a new session), or whose end never came before the next round started
    #: (the server restarted): over for the branch, whatever became of them. A lost
    #: session's round is lost even if its end reaches the new session: the server counted
    #: the branch gone from it, its masked input in the sum or not, so the server's
    #: verdict is not the branch's (it read "completed", review 2026-12-06). Not in
    #: ``rounds_ended`` (``run(rounds=N)`` serves N rounds whose end it saw), but
    #: counted: without it a round taken vanished from the counters
    rounds_lost: int = 0
    #: rounds the server ran without this branch (its sampling left it out), each told by
    #: a :class:`~secagg.runtime.wire.NotSampled` notice taken: none of them is a round
    #: this branch started, so none is in ``rounds_started`` or ``rounds_ended``
    rounds_not_sampled: int = 0
    #: rounds under a clip (DP) whose training hook returned NaN or an infinity: the
    #: branch sent the zero vector instead of leaving, whose dropout would depend on its
    #: data (:meth:`FederationClient._non_finite_update`); counted here, logged as a warning
    non_finite_updates: int = 0
    sessions: int = 0  # sessions opened by serve() (1 + the reconnections)
    #: with ``branch.epsilon_budget``: the epsilon this branch has spent (rounded up, at
    #: ``privacy_delta``; its state file's spend included) and its budget; None without
    epsilon_spent: float | None = None
    epsilon_budget: float | None = None
    privacy_delta: float | None = None
    #: why the last run() returned: "finished" (the server announced the federation
    #: complete), "stopped" (the server announced it stopped before completing; see
    #: end_reason), "rounds" (this branch's own round limit), "idle" (the server was
    #: silent between rounds for idle_timeout) or "outdated" (the server runs an older
    #: secagg: ServerOutdated, end_reason its line); None while running
    outcome: str | None = None
    end_reason: str = ""
    last_model: np.ndarray | None = field(default=None, repr=False)

    @property
    def rounds_ended(self) -> int:
        """The rounds over for this branch: completed, aborted, refused by its policy (over
        when the branch leaves, not when the server ends them) or left on its own."""
        return self.rounds_completed + self.rounds_aborted + self.rounds_refused + self.rounds_left


class BranchGaveUp(NotConnected):
    """The branch stopped waiting before the federation's end was announced: no session
    for ``give_up_after`` seconds since the connection was lost (or, for the first one,
    ``connect_timeout``), or a server silent between rounds for ``idle_timeout``.

    A :class:`~secagg.transport.base.TransportError`, so the CLI reports it in one line
    with exit status 1 (a service manager's ``Restart=on-failure`` then applies).
    ``stats`` are the branch's counters so far; ``cause`` the last transport error."""

    def __init__(
        self, message: str, stats: ClientStats, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.stats = stats
        self.cause = cause


class DimensionMismatch(ConfigurationError):
    """The branch's model does not have the federation's number of parameters.

    Raised at the first round start (before training for the branch's configured
    size; after it for the training hook's update): the branch leaves that round, so
    the server drops it at once, and stops, as every later round would fail the same
    way (``secagg client`` exits 2, a usage error)."""

    def __init__(self, federation: int, branch: int, what: str = "this branch's model") -> None:
        self.federation = federation
        self.branch = branch
        super().__init__(
            f"{what} has {branch} parameters but the federation's model has {federation}: "
            f"start the branch with the federation's dimension ({federation}; "
            "secagg client --dimension)"
        )


class ServerOutdated(SecAggError):
    """The server runs an older secagg release than this branch: its round start is of
    an older wire version, so the branch can take none of its rounds, and stops.

    Why stop: the branch refused and left every round, but then waited for the next
    one, for as long as the server ran, taking part in nothing and saying so only in
    its log (one line a round start). Only an upgrade of the server mends it; ``secagg
    client`` prints this one line and exits 1 (the server's side, as when it refuses
    the branch: a service manager's restart then brings the branch back once the
    server is upgraded). ``stats`` are the branch's counters (``outcome``
    "outdated", ``end_reason`` this line)."""

    def __init__(self, name: str, found: OutdatedMessage, stats: ClientStats) -> None:
        self.round, self.version, self.stats = found.round, found.version, stats
        super().__init__(
            f"{name}: the server speaks an older secagg wire version (round {found.round}'s "
            f"start is v{found.version}, this branch needs v{ROUND_START_VERSION}): upgrade "
            "secagg on the server to this branch's release, then start the branch again"
        )


class _TrainingFailed(Exception):
    """The training hook (or its privacy report) raised ``cause``: carried apart from the
    errors of the server's message, whatever its type (see
    :meth:`FederationClient._training_failed`)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class BranchRefused(PolicyRefused):
    """The branch refused a round by its policy and stopped (``secagg client`` exits 3)."""

    def __init__(self, round_number: int, refusal: PolicyRefused) -> None:
        self.round = round_number
        self.refusal = refusal
        super().__init__(refusal.setting, f"round {round_number}: {refusal}")
        self.args = (f"round {round_number}: {refusal}",)


#: what an identity refusal names: the ``secagg client`` flag whose folder holds this
#: branch's certificate and the CA every party's must chain to. It named
#: ``branch.identity``, which no ``[branch]`` table or flag has (review, 2026-12-06)
IDENTITY_SETTING = "--certs"


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
                IDENTITY_SETTING, "the round does not list this branch's certificate as its own"
            )
        names = []
        for index, der in enumerate(certificates):
            try:
                names.append(self.check(der))
            except Exception as exc:  # any failure to verify is a refusal
                raise_stop_within(exc)  # a Ctrl-C or SIGTERM inside the check: the stop
                raise PolicyRefused(
                    IDENTITY_SETTING, f"party {index}'s certificate does not verify: {exc}"
                ) from None
        if len(set(names)) != len(names):
            raise PolicyRefused(
                IDENTITY_SETTING, "the round lists one branch's certificate for several parties"
            )
        keys = {p: CertificateVerifyKey.from_certificate(der) for p, der in enumerate(certificates)}
        return RoundIdentity(self.signing_key, keys)


class FederationClient:
    """One branch: trains locally, then contributes through the round's backend."""

    def __init__(
        self,
        name: str,
        train: TrainingHook,
        transport: ClientEndpoint | None,
        *,
        policy: BranchPolicy | None = None,
        identity: BranchIdentity | None = None,
        stop_on_refusal: bool = True,
        replay_seed: bytes | None = None,
        privacy_report: Callable[[], dict] | None = None,
        dimension: int | None = None,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        """``policy`` is the weakest round this branch joins (default: the safe
        :class:`BranchPolicy`: no ``plain``, CKKS only with a pinned key holder, the
        threshold computed locally). With ``stop_on_refusal`` a refused round stops
        :meth:`run` with :class:`BranchRefused`; otherwise the round is skipped.
        ``identity`` (the branch's certificate) is needed for active rounds.

        ``replay_seed`` (simulations only) keys the stochastic rounding of the
        encoding and the distributed-DP noise share, so that a run replays bit
        for bit; by default both draw from the OS CSPRNG. Masks and keys are
        never seeded. It is refused (:class:`~secagg.errors.ConfigurationError`)
        with ``policy.epsilon_budget``: its streams are keyed by the branch's name
        and the round number only, so a branch in two federations under one seed
        adds the same noise share to both rounds numbered alike, and a budget that
        charges each round as fresh noise would understate what was spent (keying
        them by the federation too would change every simulation's bytes).

        ``privacy_report`` (record-level DP, e.g. ``DPSGDTrainer.privacy_report``)
        returns the local accountant's inputs; they go with the round's first
        payload to the server's ledger.

        ``dimension`` is the number of parameters the hook was built for: a round
        whose model has another size raises :class:`DimensionMismatch` before
        training. ``transport`` may be None when :meth:`serve` dials the sessions.

        ``state`` is the file where the branch keeps the last round number it started
        (:class:`~secagg.runtime.branch_state.RoundMark`), read now and written before
        each round's training: a restarted branch then still refuses a round at or
        below it. Without it the branch remembers its rounds only while it runs. A file
        that cannot be read or written raises
        :class:`~secagg.runtime.branch_state.BranchStateError`, never a silent reset.
        With ``policy.epsilon_budget`` the branch's privacy spend is kept there too
        (:mod:`secagg.runtime.branch_budget`; without ``state``, in memory only).
        """
        self.policy = policy if policy is not None else BranchPolicy()
        if replay_seed is not None and self.policy.epsilon_budget is not None:
            # before the state file is opened or created: a refused branch leaves nothing
            raise ConfigurationError(
                f"{name}: branch.epsilon_budget cannot be combined with a replay seed "
                "(simulations only): the seeded noise shares repeat across federations "
                "for the same round numbers, so the budget would charge noise that is not "
                "fresh; drop the replay seed or the budget"
            )
        self._identity = identity
        self._stop_on_refusal = stop_on_refusal
        self._replay_seed = replay_seed
        self._privacy_report = privacy_report
        self._pending_privacy: RecordReport | None = None
        self.name = name
        self._train = train
        self._transport = transport
        self._dimension = dimension
        self._round: int | None = None
        # the last round whose start this branch took, kept across restarts with ``state``
        self._mark = None if state is None else RoundMark(state, name, self.policy.federation)
        self._started: int | None = None if self._mark is None else self._mark.last
        # the federation whose rounds this branch takes: its pin, the one its state file
        # records, or (None until then) the one the server names in the first round taken
        self.federation: str | None = (
            self.policy.federation if self._mark is None else self._mark.federation
        )
        # a round of another federation this branch refused at its start: its late
        # payloads and its end are taken quietly (the refusal counted it, once)
        self._foreign_round: int | None = None
        self._end_due = False  # whether that round's end is still to come
        # the round this branch refused by its policy: its end is taken quietly and
        # counted nowhere (the refusal counted it, once)
        self._refused_round: int | None = None
        # the round whose session was lost before its end came: counted lost when the
        # branch went on on a new session; its end, if it comes, is taken quietly
        self._lost_round: int | None = None
        if self._started is not None:
            # the last round a previous process of this branch took (its state file), lost
            # with that process: its end and its late payloads, which the server sends by
            # name and so to this process's session, are taken quietly, the end once; they
            # were two "refused a message" WARNING lines and two refused messages ("round
            # N has already ended") at a restart mid-round. Not counted lost here: this
            # process never took it
            self._lost_round, self._end_due = self._started, True
        # the round this branch left on its own (refused, its side aborted, its payload
        # could not be sent, its training failed): the server's payloads of it sent before
        # the leave arrived are dropped quietly, not counted as refused messages
        self._left_round: int | None = None
        self._session: ClientSession | None = None
        # how far the round start being handled got: a leave for a failure says what
        # failed (a failure after training read "local training failed", review
        # 2026-12-05, although the training had succeeded)
        self._stage: Literal["before training", "training", "after training"] = "before training"
        # inside a round: the monotonic time until which the branch waits for the server
        self._round_deadline: float | None = None
        # the rounds whose NotSampled notice this branch took since the last round it
        # started (at most MAX_NOTICES_KEPT: past it the highest is forgotten), and the
        # monotonic time until which the last notice's round may last (its deadline, plus
        # the grace): the branch's idle timer counts only after it (None: no such round)
        self._notices_taken: set[int] = set()
        self._not_sampled_until: float | None = None
        # the monotonic time until which the last round this branch took may still run
        # without it, once it is out of it (it refused the round, or the round's session
        # was lost): its start's deadline, plus the grace; kept as a notice's is
        self._out_of_round_until: float | None = None
        # the monotonic time of the last message that moved something (run's idle timer)
        self._heard = time.monotonic()
        # when the last session was lost (None: none lost since the last run began), and
        # the sessions lost since the last progress: the idle timer goes on across them
        self._session_lost_at: float | None = None
        self._quiet_sessions = 0
        self._end_message: FederationEnd | None = None
        self.stats = ClientStats()
        # refused messages: a few logged, the rest counted (the server chooses how many)
        self._refusals = RefusalLog(log, name)
        # the branch's own privacy budget (branch.epsilon_budget), kept in its state file
        self._budget = BranchBudget.open(self.policy, self._mark, name)
        self._count_spend()

    def reconnected(self, transport: ClientEndpoint) -> None:
        """Continue on a new session; the round in flight (if any) is lost, and counted so.

        Why counted here and not by the end that may still come: the server counts the
        branch gone from the round once its session ends (even if it is back at once), so
        whether its masked input is in the sum is the server's to know, not the branch's;
        that round's end on the new session counted it completed (or aborted) by the
        others' verdict. A round it refused by its policy before the loss stays counted
        as that, once; one it left on its own is counted left here.

        Whatever became of it, the round is over for the branch from here: the server
        sends nothing of a round to a session that did not take it, its end included
        (:meth:`FederationServer._send <secagg.runtime.server.FederationServer._send>`),
        so the end it waited for no longer comes. Before (review, 2026-12-06), a round it
        had left or refused stayed "in flight" for good: the branch refused the next
        round's :class:`~secagg.runtime.wire.NotSampled` notice, went back on its idle
        timer and gave up while eligible, and a round left was never counted left. An end
        that still comes (a transport that cannot tell sessions apart sends by name) is
        taken quietly. And the round runs on without the branch until the deadline its
        start named: the branch waits that long before its idle timer counts, as for a
        round it was told it is not sampled for (it waited on the idle timer alone, and
        a round longer than ``--idle`` made it give up)."""
        due = self._end_due and self._started is not None
        if due and self._lost_round != self._started:  # not a second loss of that round
            if self._started == self._refused_round:
                pass  # counted once already, as a refusal
            elif self._started == self._left_round:
                self.stats.rounds_left += 1  # its end, which counted it, no longer comes
            else:
                self.stats.rounds_lost += 1
                log.warning(
                    "%s: round %s is lost: its session was lost before its end came",
                    self.name,
                    self._started,
                )
            self._lost_round = self._started
            if self._round_deadline is not None:  # a refused round's is kept already
                self._out_of_round_until = self._round_deadline
        self._transport = transport
        self._session = None
        self._round = None
        self._round_deadline = None
        # _not_sampled_until is kept: the server tells a left-out branch once a round, by
        # name, not again on a session that reconnects inside the round, and the deadline
        # it told (a time on this process's monotonic clock) still holds; a blip inside a
        # long round put the branch back on its idle timer, and it gave up

    def run(self, *, idle_timeout: float | None = 30.0, rounds: int | None = None) -> ClientStats:
        """Serve rounds on the current session until the server announces the federation's
        end, ``rounds`` have ended, or the server is silent *between* rounds for
        ``idle_timeout`` seconds (None: no limit); ``stats.outcome`` says which.

        Inside a round the wait is at least the round deadline the server announced
        (plus :data:`ROUND_GRACE_SECONDS`). A lost session raises
        :class:`~secagg.transport.base.NotConnected` (:meth:`serve` redials).

        The idle timer counts from the last message that moved something (:attr:`_heard`:
        a round start taken, a not-sampled notice taken, the round's end, a payload the
        round's session answered), not from the last message: a message the branch
        refuses, a late one it drops, or a payload taken without an answer leaves it
        running. Why: every receive waited the whole
        timer again, so a server (or anything on its channel) sending a message the
        branch could only refuse a little more often than ``--idle`` kept it waiting
        forever (review, 2026-12-06).

        Nor does a new session restart it: after a lost session the timer goes on from
        where that session left it, the time without a session left out (that is the
        redial window's, :meth:`serve`). Why: every session began the timer afresh, so a
        server that ended each session after ~10 s and accepted the redial kept a branch
        waiting forever with nothing ever moving (review, 2026-12-06)."""
        if self._transport is None:
            raise NotConnected(f"{self.name} has no session: dial first (serve)")
        self.stats.outcome, self.stats.end_reason = None, ""
        self._heard = redial.idle_start_on_new_session(
            self._heard, self._session_lost_at, time.monotonic()
        )
        self._session_lost_at = None
        try:
            return self._serve_session(idle_timeout, rounds)
        except NotConnected:
            self._session_lost(time.monotonic())
            raise

    def _session_lost(self, now: float) -> None:
        """The session ended at ``now``: the idle timer stops until the next session, and
        the time this branch spent waiting for a deadline it was told (its round's, or
        that of a round it is not sampled for) is not counted as the server's silence.

        Why: within one session that wait never counts (an honest server ends the round,
        which restarts the timer), but a server that crashes mid-round never ends it, and
        the branch came back to the restarted server with its timer used up by the
        round's wait: it gave up while the restarted server waited for a quorum, within
        ``quorum_wait_seconds``, below ``--idle`` (review, 2026-12-06). The deadline is
        the one the message that moved the branch named, fixed then, so a server ending
        every session still has the branch give up after it and ``--idle``."""
        window = self._round_deadline
        if window is None:
            window = self._out_of_round_end()
        if window is not None:
            self._heard = max(self._heard, min(now, window))
        self._session_lost_at = now
        self._quiet_sessions += 1

    def _serve_session(self, idle_timeout: float | None, rounds: int | None) -> ClientStats:
        """:meth:`run`'s loop on the current session (the idle timer already set)."""
        assert self._transport is not None
        ignored = 0  # messages since the last one that moved something
        while True:
            raise_if_stop_asked()  # a stop a library swallowed (a hook's, a receive's)
            if self._end_message is not None:
                end = self._end_message
                self.stats.outcome = "finished" if end.finished else "stopped"
                self.stats.end_reason = end.reason
                return self.stats
            if rounds is not None and self.stats.rounds_ended >= rounds:
                self.stats.outcome = "rounds"
                return self.stats
            left = None
            if idle_timeout is not None:
                left = max(0.0, idle_timeout - (time.monotonic() - self._quiet_since()))
            wait = self._wait(left)
            payload = self._transport.receive(timeout=wait)
            raise_if_stop_asked()  # swallowed in the receive: not taken as the server's
            if payload is not None:
                heard = self._heard
                self.handle(payload)
                if self._heard != heard:
                    ignored = 0
                    continue
                ignored += 1
                if wait is None or wait > 0.0:
                    continue  # the timer has not run out yet
            self.stats.outcome = "idle"
            where = "past the round deadline" if self._round_deadline else "between rounds"
            quiet = time.monotonic() - self._heard
            said = "was silent" if ignored == 0 else "sent nothing this branch could take"
            extra = "" if ignored == 0 else f" ({ignored} messages refused or dropped)"
            if self._quiet_sessions:  # the server ended the others: their time counted
                extra += f", over {self._quiet_sessions + 1} sessions"
            self.stats.end_reason = f"the server {said} for {quiet:.0f} s {where}{extra}"
            return self.stats

    def _quiet_since(self) -> float:
        """When the idle timer began to count: the last message that moved something, or,
        between rounds, the end (deadline plus the grace) of a round that runs without
        this branch (a notice's, or its own round's once out of it), if that is later.

        Why: no round's end comes to a branch out of the round, so its timer ran from the
        notice (or the loss), inside the round: an honest server that ran the round to
        its deadline and then waited for a quorum (within ``quorum_wait_seconds``, below
        ``--idle``, as the option asks) lost the branch, where one in the round counts
        from the round's end (review, 2026-12-06)."""
        if self._round_deadline is not None:
            return self._heard
        until = self._out_of_round_end()
        return self._heard if until is None else max(self._heard, until)

    def _out_of_round_end(self) -> float | None:
        """The monotonic time until which a round that runs without this branch may last
        (a notice's deadline, or its own round's once out of it, plus the grace): the
        later of the two, or None when neither is set. The idle timer's start, the
        receive's wait and a lost session's carried time all reckon with it."""
        return max(
            (t for t in (self._not_sampled_until, self._out_of_round_until) if t is not None),
            default=None,
        )

    def _progress(self) -> None:
        """A message moved the federation on for this branch: the idle timer restarts."""
        self._heard = time.monotonic()
        self._quiet_sessions = 0

    def _wait(self, idle_timeout: float | None) -> float | None:
        """How long the next receive may wait: the idle timer, or inside a round at
        least until the announced round deadline (plus the grace) has passed; between
        rounds, after a round the server ran without this branch (:class:`NotSampled`),
        at least until that round's deadline (plus the grace) has passed."""
        if self._round_deadline is None:
            until = self._out_of_round_end()
            if until is None or idle_timeout is None:
                return idle_timeout
            return max(until - time.monotonic(), idle_timeout)
        left = max(0.0, self._round_deadline - time.monotonic())
        return left if idle_timeout is None else max(left, idle_timeout)

    def serve(
        self,
        dial: Dial,
        *,
        rounds: int | None = None,
        idle_timeout: float | None = 120.0,
        connect_timeout: float = 30.0,
        give_up_after: float | None = 600.0,
        reconnect: bool = True,
    ) -> ClientStats:
        """Stay in the federation across sessions until its end is announced (or
        ``rounds`` have ended): dial, serve, and on a lost session redial.

        The first session is dialled for up to ``connect_timeout`` seconds. Once a
        session is lost, the branch redials (:mod:`secagg.runtime.redial`: back-off
        from 0.25 s to :data:`MAX_REDIAL_PAUSE`, jitter from the OS CSPRNG, one log
        line per failed attempt) for up to ``give_up_after`` seconds *from the
        loss* (None: until the federation's end is announced), so a long-lived
        session and a short one ride out a server restart alike (review D1). It
        misses the round in flight (to the server, a dropout; to the branch, a round
        lost: ``stats.rounds_lost``) and joins the next.

        Returns the stats when the federation's end was announced ("finished" or
        "stopped") or ``rounds`` were served. Raises :class:`BranchGaveUp` when the
        window or the idle timer ran out, a
        :class:`~secagg.transport.base.NotAccepted` at once when the server refuses
        this party for who it is, :class:`BranchRefused` or
        :class:`DimensionMismatch` when the branch stops a round itself, and
        :class:`ServerOutdated` when the server runs an older secagg."""

        def one_session(transport: ClientEndpoint) -> ClientStats:
            self.reconnected(transport)
            return self.run(idle_timeout=idle_timeout, rounds=rounds)

        def opened() -> int:
            self.stats.sessions += 1
            return self.stats.sessions

        stats = redial.serve_sessions(
            log,
            self.name,
            dial,
            one_session,
            opened=opened,
            gave_up=lambda message, cause: BranchGaveUp(message, self.stats, cause),
            connect_timeout=connect_timeout,
            give_up_after=give_up_after,
            reconnect=reconnect,
        )
        if stats.outcome == "idle":  # not a lost session: the server stopped answering
            raise BranchGaveUp(
                f"{self.name}: {stats.end_reason}; giving up "
                "(the federation's end was not announced)",
                stats,
            )
        return stats

    def handle(self, payload: bytes) -> None:
        """Process one message from the server (refused messages change nothing).

        Raises :class:`BranchRefused` when a round is weaker than the policy (and
        ``stop_on_refusal``), :class:`DimensionMismatch` when the round's model is
        not this branch's size, :class:`ServerOutdated` at a round start of an older
        wire version, :class:`~secagg.runtime.branch_state.BranchStateError`
        when its state file cannot record a round it starts, and
        :class:`~secagg.transport.base.NotConnected` when the session ended while the
        branch answered; nothing else a server sends escapes."""
        number: int | None = None
        starting = False  # a round start: leaving it tells the server not to wait
        # the round a refused start leaves is its own only if the start was taken (begun):
        # one refused before, as a replay of the last round, leaves nothing of that round
        started = self._started
        self._stage = "before training"
        try:
            message = decode_message(payload)
            number = message.round
            if isinstance(message, RoundStart):
                starting = True
                self._start(message)
            elif isinstance(message, Relay):
                self._relay(message)
            elif isinstance(message, RoundEnd):
                self._end(message)
            elif isinstance(message, FederationEnd):
                self._federation_end(message)
            elif isinstance(message, NotSampled):
                self._not_sampled(message)
            else:
                raise MalformedMessage("a leave is a branch's message, not the server's")
        except DimensionMismatch as exc:
            self._session, self._round, self._round_deadline = None, None, None
            if starting and number is not None:
                # the branch stops: without a leave the server waited for it until its
                # session ended (review, 2026-12-05); the sizes are the round's public
                # model's and this branch's configuration (or its hook's output length)
                self._leave(
                    number,
                    f"could not take part (DimensionMismatch: {exc.branch} parameters, "
                    f"the federation's model {exc.federation})",
                )
            raise
        except BranchStateError:  # it could not record the round: it stops, takes none
            if starting and number is not None:
                self._leave(
                    number,
                    "could not take part (BranchStateError)",
                    taken=self._started != started,
                )
            raise
        except OutdatedMessage as exc:
            self.stats.refused_messages += 1
            if exc.kind != ROUND_START:
                # not proof of an older server: only the round start's version moved (the
                # others are v2 at both ends), so none is outdated today; a stale message
                # of a later change refuses that message only, like any malformed one
                self._refusals.refused(
                    logging.ERROR, REFUSED_LINE, self.name, type(exc).__name__, exc
                )
                return
            # an older server's round start names no federation: this branch can take
            # none of its rounds. It leaves this one at once (a leave is still of the old
            # version, which that server reads) and stops: waiting could only repeat it
            self._session, self._round, self._round_deadline = None, None, None
            self._leave(exc.round, "could not take part (OutdatedMessage: upgrade secagg)")
            stop = ServerOutdated(self.name, exc, self.stats)
            self.stats.outcome, self.stats.end_reason = "outdated", str(stop)
            log.info("%s", stop)  # the caller reports it (secagg client: one line, exit 1)
            raise stop from None
        except NotConnected:  # the session ended while answering: serve() redials
            raise
        except _TrainingFailed as failed:
            self._training_failed(number, failed.cause, taken=self._started != started)
        except PolicyRefused as exc:
            # at the start or at the protocol's setup (a threshold below the branch's, a
            # setup other than its spec): either way the branch leaves the round now, so
            # the server need not wait out the training deadline for it (a setup refusal
            # sent no leave, and the server waited 120 s of training for it)
            self._session, self._round = None, None  # nothing more of it is answered
            if number is not None:
                self._leave(
                    number,
                    f"refused by its policy: {exc.setting}",
                    taken=not starting or self._started != started,
                )
            self._refused(number, exc)
        except SecAggError as exc:
            self.stats.refused_messages += 1
            self._refusals.refused(
                logging.WARNING, REFUSED_LINE, self.name, type(exc).__name__, exc
            )
            # not for a replayed start of the round in flight: the branch is still in it,
            # and a leave made the server count it gone (review, 2026-12-05)
            in_flight = self._session is not None and number == self._round
            if starting and number is not None and not in_flight:
                # the error's kind only: its text may describe the update (a value, a
                # bound it crossed), and a leave travels in clear outside any DP
                self._leave(
                    number,
                    f"could not take part ({type(exc).__name__})",
                    taken=self._started != started,
                )
        except Exception as exc:  # no server message may crash a branch
            raise_stop_within(exc)  # a Ctrl-C or SIGTERM that surfaced as this: the stop
            self._raise_stop_recorded(exc, "handling a message")
            self.stats.refused_messages += 1
            self._refusals.refused(
                logging.ERROR, "%s dropped a message (%s): %s", self.name, type(exc).__name__, exc
            )
            if starting and number is not None:
                # e.g. the training hook raised: without a leave the server waited out
                # the training deadline for it every round (network audit, 2026-12-03)
                self._leave(number, self._failure_reason(exc), taken=self._started != started)

    def _raise_stop_recorded(self, exc: Exception, where: str) -> None:
        """Raise the stop recorded for the process (:class:`StopAsked`, from ``exc``) if
        there is one, after one WARNING naming what it surfaced as; return otherwise.
        For the catch-alls that take ``exc`` as a failure of the branch's own, after
        they looked for a stop in its chain.

        Why: a stop can surface as another error with no trace of it in the chain (a
        DataLoader's workers killed by the same SIGTERM: "worker exited unexpectedly";
        a C call that took the interrupt and raised its own error), or a failure can
        come while a stop is recorded: either is the stop, as the server takes one in
        its round. Taken as the branch's failure, it logged an ERROR and told the server
        "local training failed" (or "could not take part") in a leave after the
        operator's stop (tests/runtime/test_client_stop_surfaced_in_training.py)."""
        asked = stop_asked()
        if asked is None:
            return
        log.warning(
            "%s: stopped by %s %s, which surfaced as %s: %s",
            self.name,
            stop_name(asked),
            where,
            type(exc).__name__,
            exc,
        )
        raise StopAsked(asked) from exc

    def _training_failed(self, number: int | None, exc: Exception, *, taken: bool) -> None:
        """The training hook (or its privacy report) raised ``exc``: the branch leaves the
        round, saying its training failed, and waits for the next one.

        Why apart from the refusals: a hook's own :class:`~secagg.errors.SecAggError` (a
        DP-SGD trainer's ``ConfigurationError``) was logged as "refused a message" and
        counted among the refused messages, blaming the server for the branch's own code,
        its leave read "could not take part"; and a hook's ``PolicyRefused`` read as the
        round refused by the branch's policy, which stopped the branch (exit 3) naming a
        setting the round never crossed. The round is counted once, in ``rounds_left``
        when its end comes, never as a refused message. Logged as the hook worded it (the
        branch's own log), at most :data:`~secagg.runtime.refusals.LOGGED_REFUSALS` lines
        in a row, as every round start is the server's to send."""
        self._session, self._round = None, None
        self._refusals.refused(
            logging.ERROR, TRAINING_FAILED_LINE, self.name, number, type(exc).__name__, exc
        )
        if number is not None:
            self._leave(number, self._failure_reason(exc), taken=taken)

    def _failure_reason(self, exc: Exception) -> str:
        """A leave's reason for a round start that raised ``exc``: what failed (the
        training hook, or taking part before or after it) and the error's kind only, as
        its text may describe the update, and a leave travels in clear outside any DP."""
        kind = type(exc).__name__
        if self._stage == "training":
            return f"local training failed ({kind})"
        if self._stage == "after training":
            return f"could not take part after training ({kind})"
        return f"could not take part ({kind})"

    def _refused(self, number: int | None, exc: PolicyRefused) -> None:
        """A round below the policy: nothing of the update has left; stop or skip it.

        The round is over for this branch (one refusal, never also an abort): the
        round's late payloads and its end are taken quietly (before, the branch waited
        until the server's round deadline and then counted the round again, as refused
        payloads and as an abort). The round runs on without it until the deadline its
        start named, which it waits out before its idle timer counts, as after a notice
        that it is not sampled (it waited on the idle timer alone, so a round longer than
        the timer made a branch that skips refused rounds give up, review 2026-12-06)."""
        self.stats.rounds_refused += 1
        if self._round_deadline is not None:
            self._out_of_round_until = self._round_deadline
        self._session, self._round, self._round_deadline = None, None, None
        if number is not None and number == self._started and self._end_due:
            self._refused_round = number
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
                IDENTITY_SETTING, "an active round needs this branch's certificate identity"
            )
        return self._identity.round_identity(certificates, party)

    def _check_federation(self, start: RoundStart) -> None:
        """Refuse, before anything else, a start of another federation than this branch's:
        its pin (:class:`PolicyRefused`, ``branch.federation``), the one its state file
        records (:class:`BranchStateError`, naming the file), or, with neither, the one
        whose rounds it took since it started (the round numbers it holds to are that
        federation's; another's say nothing of them)."""
        try:
            self.policy.check_federation(start.federation)
            if self._mark is not None:
                self._mark.check(start.federation, start.round)
            if self.federation is not None and start.federation != self.federation:
                raise PolicyRefused(
                    "branch.federation",
                    f"the round is of federation {start.federation!r}, but this branch took "
                    f"the rounds of {self.federation!r}; pin the one it joins with "
                    "secagg client --federation",
                )
        except PolicyRefused:
            if start.round != self._started:
                self._foreign_round = start.round
            raise

    def _start(self, start: RoundStart) -> None:
        self._check_federation(start)
        if self._started is not None and start.round <= self._started:
            # the server's round numbers only grow, across its restarts too (each round is
            # begun in its store before any start is sent): the start of a round this
            # branch already started is a replay, in flight or ended; taken, it replaced
            # the round in flight, or retrained and counted an ended round again
            kept = "" if self._mark is None else f" (its state {self._mark.path})"
            raise MalformedMessage(
                f"the start of round {start.round}, but this branch already started round "
                f"{self._started}{kept}"
            )
        if self._dimension is not None and start.model.size != self._dimension:
            raise DimensionMismatch(start.model.size, self._dimension)
        # a start that does not decode (its spec, its party) changes nothing: it moved the
        # round first, and sent while a round was in flight, that round's own end was
        # then refused, never counted (review, 2026-12-05)
        spec = decode_spec(start.spec)
        carried = start.model.size + (1 if start.report_unclipped else 0)
        if spec.dimension != carried:
            # checked before training: a DP-SGD hook spends record-level budget on a round
            # whose upload could only fail (the session refused the update's length)
            raise MalformedMessage(
                f"the round's spec carries {spec.dimension} values, but its model has "
                f"{start.model.size}"
                + (" and a count coordinate" if start.report_unclipped else "")
            )
        try:
            self.policy.check_clip(start.clip)  # the clip the update goes through
            bound = spec.input_bound
            _check_bound_holds_the_clip(bound, start.clip)
            backend = get_backend(spec.name)
            # the policy before the round's certificates: verifying a list the server
            # chose (as long as its spec allows) is work a round this branch refuses
            # anyway must not cost, and the refusal names the setting the round violates,
            # not the identity (the identities were verified first, as the arguments of
            # backend.client, before it checked the policy)
            spec.check_policy(self.policy)
            # its own budget before training: a DP-SGD hook spends nothing on a refused round
            charge = None if self._budget is None else self._budget.admit(start.round, spec)
            session = backend.client(
                spec,
                start.party,
                rounding=self._rounding_stream(start.round),
                policy=self.policy,
                identity=self._round_identity(spec, start.party),
            )
            # the round this branch started (its numbers only grow, checked above): the
            # session refuses a protocol round of any other (a reused round id would let
            # the server replay a branch's signed keys from an earlier round)
            session.bind_round(round_context(start.round, start.federation))
        except PolicyRefused:
            # a well-formed round this branch decides against: it is this branch's round
            # (the refusal counts it; its end is taken quietly), its number used
            self._begin(start)
            raise
        # the charge on disk before training, nor anything of the round sent: a crash
        # keeps it; with a state file in the round's own write
        self._begin(start, charge)
        self.stats.last_model = start.model
        self._stage = "training"  # the hook, its output's conversion and its report
        try:
            update = np.asarray(self._train(start.model.copy()), dtype=np.float64)
            if self._privacy_report is not None:
                self._pending_privacy = RecordReport.from_dict(self._privacy_report())
        except Exception as exc:  # the branch's own code failed, whatever it raised
            stop = stop_within(exc)
            if stop is not None:  # a Ctrl-C or SIGTERM the hook's code turned into this
                log.debug("%s: stopped in its training hook, which raised %r", self.name, exc)
                raise stop from None
            self._raise_stop_recorded(exc, "in its training hook")
            raise _TrainingFailed(exc) from exc
        # a stop the hook's code swallowed (torch's C calls, a library's ``except
        # BaseException``) left no exception: the record still has it, and nothing of
        # the update is used (the round's session does not take it)
        raise_if_stop_asked()
        self._stage = "after training"
        if update.shape != start.model.shape:
            raise DimensionMismatch(start.model.size, update.size, "the training hook's update")
        if not np.all(np.isfinite(update)):
            update = self._non_finite_update(start.round, start.clip, update)
        update = Mechanism(start.clip, report_unclipped=start.report_unclipped).prepare(update)
        update = self._within_bound(update, bound)
        # the round is this branch's round in flight only once its session took the input:
        # taken before, a refusal of it read as a replayed start of the round in flight
        # (no leave: the server waited out the phase for the branch) and a failure left
        # the branch in a round it had said it left (review, 2026-12-05)
        payloads = session.set_input(update)
        self._round, self._session = start.round, session
        self._send(start.round, payloads)

    def _non_finite_update(self, number: int, clip: float | None, update: np.ndarray) -> np.ndarray:
        """What a round gets of a training hook's update holding NaN or an infinity.

        With a clip (a DP round: client-level, or record-level whose clip bounds the
        whole vector) the zero vector, counted in ``stats.non_finite_updates`` and logged
        as a warning (never a value). Why not leave, as before 2026-12-06: whether the
        hook's output is finite depends on the branch's data, and a leave is seen in
        clear by the server and its ledger (a dropout). Under the zero-out adjacency the
        neighbouring dataset (this branch's update zeroed) never leaves that way, so a
        leave told the server something no epsilon covers. The zero vector is inside the
        clip ball, so the round's guarantee holds whatever the data made the hook return,
        and the branch takes part as every round does (its noise share, if any, counted).

        Without a clip (no DP: no epsilon to protect) the round is refused as before
        (:class:`~secagg.errors.ConfigurationError`, so a leave saying "could not take
        part"): the sum is then the others' honest FedAvg, where a zero counted as a
        trained contribution would pull the average towards no change and hide a broken
        branch behind a round that reads as completed."""
        if clip is None:
            raise ConfigurationError("the training hook returned NaN or infinite values")
        self.stats.non_finite_updates += 1
        log.warning(
            "%s: its training hook returned NaN or infinite values in round %s; it sends "
            "the zero vector instead (inside the clip, so the round's DP holds)",
            self.name,
            number,
        )
        return np.zeros_like(update)

    def _count_spend(self) -> None:
        """The budget's figures in the stats (the exit summary prints them)."""
        if self._budget is not None:
            self.stats.epsilon_spent = self._budget.spent
            self.stats.epsilon_budget = self._budget.budget
            self.stats.privacy_delta = self._budget.delta

    def _begin(self, start: RoundStart, charge: RoundCharge | None = None) -> None:
        """Take ``start``'s round as this branch's round, once it is checked: recorded in
        the state file first (so nothing of the round is done that a restart forgets),
        then the round in flight, if any, superseded.

        ``charge``: the round's privacy charge (``branch.epsilon_budget``), kept before
        this returns. With a state file it goes in the same atomic write as the round's
        number: one write a round, not two (the mark, then the charge), and no crash
        between them leaves a round taken but uncharged."""
        if self._mark is not None:
            spent = None if charge is None or self._budget is None else self._budget.after(charge)
            # BranchStateError: neither the round nor its charge recorded
            self._mark.advance(start.round, start.federation, spent)
        elif charge is not None and self._budget is not None:
            self._budget.record(charge)  # kept in memory (no state file)
        if charge is not None:
            self._count_spend()
        self.stats.rounds_started += 1  # taken: trained or refused by its policy from here
        if self.federation is None:  # once: the rounds it takes from now on are this one's
            log.info(
                "%s joins federation %r, the one the server names (pin it: branch.federation)",
                self.name,
                start.federation,
            )
            self.federation = start.federation
        if self._end_due and self._started not in (self._refused_round, self._lost_round):
            self._superseded(start.round)  # a lost session's round is counted already
        self._progress()
        self._started, self._end_due, self._refused_round = start.round, True, None
        self._lost_round, self._not_sampled_until, self._out_of_round_until = None, None, None
        # its number is the notices' floor now (the server's rounds only grow): a notice
        # of a round above it taken before (a far-future one) keeps out nothing after it
        self._notices_taken = set()
        self._round, self._session, self._left_round = None, None, None
        # inside a round from here: wait for the server's deadline, not the idle timer
        self._round_deadline = (
            None
            if start.deadline is None
            else time.monotonic() + start.deadline + ROUND_GRACE_SECONDS
        )

    def _superseded(self, number: int) -> None:
        """Count the last round taken, whose end never came, as lost when round ``number``
        starts.

        Why: its end is refused from here on (it is no longer this branch's round), so
        uncounted it was taken but never ended: the counters no longer added up (review,
        2026-12-05). An honest server's restart or a lost session leaves such a round."""
        self.stats.rounds_lost += 1
        log.warning(
            "%s: round %s is lost: round %d started before its end came",
            self.name,
            self._started,
            number,
        )

    def _within_bound(self, update: np.ndarray, bound: float | None) -> np.ndarray:
        """The update with every coordinate clamped into the round's ``value_bound``.

        Why clamp rather than leave the round: whether a branch takes part would then
        depend on its private update, through a bound the server picks, and the leave
        says so in clear, outside the secure sum and any DP accounting; varying the
        bound round by round, a server read off the update's largest coordinate by
        bisection (runtime audit 2026-12-04). With a clip no larger than the bound
        (checked before training) nothing is clamped but rounding; without DP,
        coordinates beyond the bound the federation chose are cut to it, counted in
        this branch's own log only. Clamping is 1-Lipschitz per coordinate, so it
        never raises a DP mechanism's sensitivity."""
        if bound is None:
            return update
        beyond = int(np.count_nonzero(np.abs(update) > bound))
        if beyond == 0:
            return update
        log.warning(
            "%s: %d coordinates of its update lay beyond the round's value_bound %g and "
            "were cut to it (the federation's backend.value_bound, or a dp.clip, sizes it)",
            self.name,
            beyond,
            bound,
        )
        return np.clip(update, -bound, bound)

    def _rounding_stream(self, round_number: int) -> KeyedStream:
        if self._replay_seed is None:
            return KeyedStream()
        label = f"secagg/v1/rounding-replay/{self.name}/{round_number}/".encode()
        return KeyedStream(derive(label, self._replay_seed))

    def _relay(self, relay: Relay) -> None:
        """Answer a payload of the round in flight; drop a late one of a round this branch
        is out of, quietly; refuse any other.

        Late, not malformed: a round it left or refused (sent before the server read its
        leave), and the round whose session was lost (:meth:`reconnected`). The server
        sends a round's payloads by name, so one of the lost round (an unmask request:
        its masked input had arrived before the loss) reaches the new session; it was
        refused as "a payload for round N, not ours", a refused message blamed on a
        server that did nothing wrong."""
        if self._session is None and relay.round in (
            self._left_round,
            self._foreign_round,
            self._lost_round,
        ):
            why = "whose session was lost" if relay.round == self._lost_round else "which it left"
            log.debug("%s: a late payload of round %d, %s", self.name, relay.round, why)
            return
        if self._session is None or relay.round != self._round:
            raise MalformedMessage(f"a payload for round {relay.round}, not ours")
        try:
            replies = self._session.handle(relay.payload)
        except RoundAborted as exc:
            log.info("%s left round %d: %s", self.name, relay.round, exc)
            self._session = None
            self._leave(relay.round, exc.reason)
            return
        except WrongRound as exc:
            # a payload of another protocol round inside this one: the server runs the
            # round under other facts than the branch bound (another federation's, a
            # reused id), so no payload of this round can ever be taken; the branch
            # leaves now, rather than sit in the round until the phase's deadline
            log.error(
                "%s left round %d of federation %r: the server's payload is of another "
                "protocol round (%s)",
                self.name,
                relay.round,
                self.federation,
                exc,
            )
            self.stats.refused_messages += 1
            self._session = None
            self._leave(relay.round, "refused a payload of another round (WrongRound)")
            return
        if replies:
            # the round's session answered it: a step of the protocol, of which a round
            # has a few. A payload it takes without an answer is no progress: a
            # protocol round's abort is taken again and again once the round is aborted
            # or done, so one abort repeated kept the branch in its round past the
            # round's deadline for good (review, 2026-12-06); the round's end follows
            # an honest abort, and the round's deadline bounds the wait meanwhile
            self._progress()
        self._send(relay.round, replies)

    def _leave(self, round_number: int, reason: str, *, taken: bool = True) -> None:
        """Tell the server this branch sends nothing more in the round (best effort).

        ``taken``: the round is one this branch took, not only the number of a start it
        refused before taking it (a replay of its last round): that refusal must change
        nothing, so it must not mark the round left (its late payloads then went unseen,
        and its end, due after a lost session, was counted "left")."""
        if taken and round_number == self._started and self._session is None:
            self._left_round = round_number  # its late payloads are no one's fault
        try:
            if self._transport is not None:
                self._transport.send(encode_message(Leave(round_number, reason[:200])))
        except ConnectionError as exc:  # gone anyway: the server sees the session end
            log.debug("%s could not send its leave: %s", self.name, exc)

    def _send(self, round_number: int, payloads: list[bytes]) -> None:
        """Send this branch's payloads of the round; one the transport refuses (a
        :class:`~secagg.transport.framing.MessageTooLarge`) ends its part in the round:
        without it the round cannot go on for this branch, and it sat in the round,
        sending nothing and telling nobody, until the server's deadline.

        Nothing is sent once a stop was asked (:func:`raise_if_stop_asked`, before each
        payload): the stop's line says that nothing more of the update leaves, and a stop
        a training hook swallowed (``except BaseException``) sent the update all the
        same."""
        if self._transport is None:
            raise NotConnected(f"{self.name} has no session")
        try:
            for payload in payloads:
                raise_if_stop_asked()
                privacy, self._pending_privacy = self._pending_privacy, None  # first only
                self._transport.send(encode_message(Relay(round_number, payload, privacy)))
        except NotConnected:  # the session ended: serve() redials
            raise
        except TransportError as exc:
            log.error(
                "%s left round %d: its payload could not be sent (%s): %s",
                self.name,
                round_number,
                type(exc).__name__,
                exc,
            )
            if self._round == round_number:
                self._session, self._round = None, None
            self._leave(round_number, f"could not take part ({type(exc).__name__})")

    def _end(self, end: RoundEnd) -> None:
        """The end of the round this branch last started, once; any other round's end,
        and that round's end again, is refused and changes nothing (a stale one ended the
        round in flight, runtime audit 2026-12-04; a replayed one counted the round
        again, so a server could end a branch's ``run(rounds=...)`` early)."""
        if end.round == self._foreign_round and end.round != self._started:
            self._foreign_round = None  # another federation's round, refused at its start
            return
        if end.round != self._started:
            raise MalformedMessage(
                f"the end of round {end.round}, but this branch's round is {self._started}"
            )
        if not self._end_due:  # a replay: it counted the round again (and ended run early)
            raise MalformedMessage(f"round {end.round} has already ended")
        self._end_due = False
        self._progress()
        self._refusals.reset()  # a round ended: the session makes progress
        self._out_of_round_until = None
        if self._lost_round == end.round:  # counted when its session was lost (reconnected)
            self._lost_round, self._refused_round = None, None
            self._session, self._round, self._round_deadline = None, None, None
            return
        if self._refused_round == end.round:  # counted once already, as a refusal
            self._refused_round, self._round_deadline = None, None
            return
        if self._left_round == end.round:  # it left: the others' verdict is not its own
            self.stats.rounds_left += 1
            self._session, self._round, self._round_deadline = None, None, None
            return
        if end.complete:
            self.stats.rounds_completed += 1
        else:
            self.stats.rounds_aborted += 1
        self._session = None
        self._round = None
        self._round_deadline = None

    def _not_sampled(self, notice: NotSampled) -> None:
        """The server runs round ``notice.round`` without this branch: wait at least until
        its deadline (plus :data:`ROUND_GRACE_SECONDS`) before the idle timer counts.

        Taken between rounds only, each round once: a notice of another federation than
        this branch's, sent while this branch's own round is in flight (its end still
        due: an honest server ends a round before it runs the next), of a round at or
        below the last this branch started (a stale one), or of a round whose notice it
        took already (a replay) is refused (:class:`~secagg.errors.MalformedMessage`)
        and changes nothing. A round whose session was lost is over for the branch: a
        notice after it is taken, and so is one of that very round, once (the server
        tells a participant back on a new session that the round runs without it): its
        deadline only, not counted in ``rounds_not_sampled``.

        The notices taken are remembered one by one, not as a high-water mark. Why: a
        notice of round 2**32 - 1 (a hostile or buggy server; nothing tells it from an
        honest one) was "the last round told of", and every honest notice after it was
        refused as at or below it: the idle timer ran, and a branch left out of a few
        rounds gave up while eligible (review, 2026-12-06). Now such a notice keeps out
        nothing but itself. The set is emptied when the branch starts a round (its
        number is the floor then) and holds at most :data:`MAX_NOTICES_KEPT` rounds: past
        that the highest is forgotten (a notice of it again would be taken again, as a
        server could send a notice of any fresh round number anyway; an honest one sends
        each once), so no server fills memory, and none can raise a floor."""
        if self.federation is not None and notice.federation != self.federation:
            raise MalformedMessage(
                f"a not-sampled notice of federation {notice.federation!r}, but this branch "
                f"takes the rounds of {self.federation!r}"
            )
        if notice.round == self._started == self._lost_round and not self._notices_taken:
            # the round this branch lost (its session, or its process before a restart):
            # the server says once that it runs without this branch, and for how long. A
            # deadline, not a round it was left out of: the round is counted lost already.
            # Once, and never after a later round's notice: compared with the last notice
            # only ("not this round again"), the lost round's notice and the next round's,
            # sent alternately, were each taken, each restarting the idle timer and
            # counting a round not sampled, for as long as a server sent them (review,
            # 2026-12-06)
            self._keep_notice(notice.round)
            self._not_sampled_until = time.monotonic() + notice.deadline + ROUND_GRACE_SECONDS
            self._progress()
            return
        if self._end_due and self._started != self._lost_round:
            raise MalformedMessage(
                f"a not-sampled notice of round {notice.round} while this branch's round "
                f"{self._started} is in flight"
            )
        if self._started is not None and notice.round <= self._started:
            raise MalformedMessage(
                f"a not-sampled notice of round {notice.round}, but this branch has started "
                f"round {self._started} already"
            )
        if notice.round in self._notices_taken:
            raise MalformedMessage(
                f"a not-sampled notice of round {notice.round}, which this branch was told of "
                "already"
            )
        self._keep_notice(notice.round)
        self._not_sampled_until = time.monotonic() + notice.deadline + ROUND_GRACE_SECONDS
        self._out_of_round_until = None  # a later round runs: the lost one is over
        self._progress()
        self.stats.rounds_not_sampled += 1
        log.debug(
            "%s: round %d runs without it (not sampled); it waits up to %.0f s for the next",
            self.name,
            notice.round,
            notice.deadline + ROUND_GRACE_SECONDS,
        )

    def _keep_notice(self, number: int) -> None:
        """Remember that round ``number``'s notice was taken; past
        :data:`MAX_NOTICES_KEPT` rounds the highest is forgotten (a floor raised instead
        would let far-future notices keep the honest ones out again)."""
        self._notices_taken.add(number)
        if len(self._notices_taken) > MAX_NOTICES_KEPT:
            self._notices_taken.discard(max(self._notices_taken))

    def _federation_end(self, end: FederationEnd) -> None:
        """The server has stopped running rounds: :meth:`run` returns with its verdict."""
        self._session, self._round, self._round_deadline = None, None, None
        self._end_message = end
        self._progress()
        # the verdict: serve() returns it (stats.outcome), and a command says it itself
        if end.finished:
            outcome.log.info("%s: the federation finished (last round %d)", self.name, end.round)
        else:
            outcome.log.warning("%s: the server stopped the federation: %s", self.name, end.reason)


def _check_bound_holds_the_clip(bound: float | None, clip: float | None) -> None:
    """Refuse, before training, a round whose ``value_bound`` is below its clip.

    A clipped update's coordinates are at most the clip, so an honest round sizes its
    arithmetic for at least that (the server's config requires it); a smaller bound
    could only cut clipped updates, and only some branches', depending on their data.
    Decided on the round's public parameters alone, so refusing says nothing of the
    update."""
    if bound is None or clip is None:
        return
    if not bound >= clip:
        raise PolicyRefused(  # the server's key: no branch setting admits such a round
            "backend.value_bound",
            f"the round's value_bound {bound:g} is below its clip {clip:g}: a clipped "
            "update would not fit the round's arithmetic (the federation's [backend] "
            "value_bound must be at least its dp.clip)",
        )
