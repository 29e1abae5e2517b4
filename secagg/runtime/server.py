"""The federation server: FedAvg rounds over any aggregation backend and a transport.

Theory of operation
-------------------
One round (:meth:`FederationServer.run_round`):

1. **Sample** clients among those connected, less any excluded for bad shares and
   any *benched* for missing rounds in a row (:meth:`FederationServer.benched`, unless
   that leaves fewer than 2): Poisson with rate q (each joins
   independently) or a fixed count. The draw comes
   from the OS CSPRNG, or from a keyed stream derived from ``config.seed`` in
   tests that must replay a federation. No epsilon credits the sampling (the
   central mechanism charges each client for the rounds it was in), so a seeded,
   predictable cohort costs no privacy; every ledger row with DP still says
   whether its cohort was seeded (``dp.sampling.seeded``). A client whose own
   epsilon one more round would take past ``dp.epsilon_budget`` sits out. Every
   connected client left out of a round that runs is told so, with the round's
   deadline (:class:`~secagg.runtime.wire.NotSampled`), so its idle timer does not
   run out while rounds go on without it (:meth:`FederationServer._tell_unsampled`).
2. **Record** the round as ``running`` in the store, then **plan** it: the
   backend turns the cohort and the mechanism's round options into a spec, and
   builds its server session (:mod:`secagg.aggregation.base`).
3. **Relay with deadlines** (:meth:`FederationServer._drive`, the one collect
   loop): the session's :class:`~secagg.aggregation.base.Announce` becomes a
   :class:`~secagg.runtime.wire.RoundStart` (spec, party, clip and the float32
   model) to every participant, its payloads become
   :class:`~secagg.runtime.wire.Relay` messages, and the parties' relays are fed
   back in. The session has no clock; this loop is its clock: a phase lasts at
   most ``deadlines.phase_seconds`` from its start (``training_seconds`` for the
   phase that follows the announcement, which includes local training; an answer
   does not restart that clock, so a phase whose answers trickle in still ends on
   time). Past it, the first receive that brings nothing the session takes (an
   empty wait, a refused message, a session's end) closes the phase once the
   messages already queued then are read (a busy server's backlog, bounded by
   what was queued at that look), and whoever has not answered has dropped. It
   closes earlier once everyone it awaits is gone (below). Refused payloads are
   logged and the round goes on.
4. **Release** through the DP mechanism (:mod:`secagg.dp.release`): noise the
   backend did not add, the mean over the mechanism's denominator, the
   accountant's epsilon. Then **FedAvg** (optionally with server momentum).
5. **Record** the round ``complete`` with its checkpoint in one transaction (or
   ``aborted`` with the reason, leaving the model as it was), append its ledger
   row, and only then adopt the new model (a write that fails leaves the server with
   the model its last row records, and stops it for good: :class:`ServerStopped`);
   tell the participants how it ended (a round aborted before its start went
   out, such as a cohort of one, was never theirs: they are told nothing).

Who is gone. A phase also closes before its deadline once every party it still
awaits is *gone*: the session its round start went to has ended (the transport's
``session_id`` changed, even if it reconnected under the same name at once), it is
not connected, or it said it left the round (:class:`~secagg.runtime.wire.Leave`).
So a branch restarted mid-round costs the round nothing but its own update, not a
phase deadline (reliability review D6). Nothing more of the round (a relay, its end)
goes to its new session, which never took the round (:meth:`FederationServer._send`).
The round's helper (the CKKS key holder) is compared with the session its last
request went to instead: one restarted before that request left got it and answers it
(it keeps the round it opened on disk); one restarted after it left, or not connected
when it leaves, is sent the request (again), once a round, when it is back within the
phase's deadline (its decryption record refuses a round twice, and the round takes one
answer), and a second restart in the round aborts it, naming the key holder; a request
that cannot be sent to a connected key holder aborts the round at once, naming the
error. Every :class:`~secagg.runtime.wire.RoundStart` carries the seconds left to the
round deadline, which is how long a branch waits inside the round (D3).

The federation (:meth:`FederationServer.run`). Before each round the server waits
(woken by the transport when a session opens, where it can; else polling with
back-off) until a *quorum* is connected (at least 2 eligible clients,
and the helper when the backend has one), for at most ``quorum_wait`` seconds
(``[server] quorum_wait_seconds``, 600 s by default):
a network blip or a restart of the branches costs waiting, not round numbers and
ledger rows (D2). It stops only on a configured condition: every round complete
(``finished``), the privacy budget, ``max_consecutive_aborts`` aborted rounds in a
row among the rounds that ran the protocol (2 or more participants: a Poisson draw
of fewer is a normal outcome of sampling, not a failure), ``max_attempts``, or no
quorum within ``quorum_wait``. :attr:`FederationServer.finished` and
:attr:`FederationServer.stop_reason` say which, so the CLI exits non-zero when the
federation did not finish; every connected party is then told by a
:class:`~secagg.runtime.wire.FederationEnd`, so branches exit at once. So it is when
a state or ledger write fails (the server then stops with that error): the end says
the server stopped on it, never that the federation finished.

Logs. Each round ends with exactly one line on the ``secagg.server`` logger: INFO
for a complete round, WARNING for an aborted one, with the participants, the
contributions, the dropouts per phase, epsilon and the round's seconds. Everything
else per round (deadlines, the ledger head) is DEBUG. The federation's verdict
(finished, or stopped and why) is logged on :mod:`secagg.runtime.outcome`'s logger,
which a command that prints the verdict itself silences.

This module never names a backend or a DP mechanism: both are objects it holds.
On start-up the server recovers from its store: a round left ``running`` by a
crash is marked aborted and the federation continues from the last checkpoint.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from secagg.aggregation import (
    HELPER,
    AggregationBackend,
    AggregationResult,
    Announce,
    Outgoing,
    Phase,
    ServerSession,
)
from secagg.crypto.prg import MaskRemover
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.display import shown
from secagg.dp.release import Mechanism, Release, UnaccountedContribution
from secagg.errors import (
    ConfigurationError,
    ProtocolError,
    RoundAborted,
    SecAggError,
    UnexpectedMessage,
)
from secagg.ledger.chain import Ledger, LedgerError, read_chain
from secagg.ledger.entry import FROM_STATE, LedgerEntry, Reconstruction, SamplingUnrecorded
from secagg.runtime import outcome
from secagg.runtime.config import FederationConfig
from secagg.runtime.server_optimizer import ServerMoments, server_step
from secagg.runtime.store import ServerStore, StateError, StoreCorrupted
from secagg.runtime.wire import (
    MAX_DEADLINE_SECONDS,
    FederationEnd,
    Leave,
    NotSampled,
    Relay,
    RoundEnd,
    RoundStart,
    decode_message,
    encode_message,
    model_bytes,
    round_context,
    round_start_model,
    round_start_parts,
)
from secagg.transport.base import NotConnected, PeerClosing, ServerEndpoint, TransportError
from secagg.transport.waiting import (
    raise_if_stop_asked,
    raise_stop_within,
    stop_asked,
    stop_behind,
    stop_name,
)

log = logging.getLogger("secagg.server")

#: the fewest connected clients a round can run with (a sum of one is an update)
QUORUM = 2

#: rounds in a row whose sampling drew fewer than :data:`QUORUM` clients (quorum
#: connected) after which the run stops, naming ``sampling.rate``. Such a round is a
#: normal Poisson event and not among ``max_consecutive_aborts``, so without a cap a
#: rate that (almost) never draws two (``1e-9``) burned round numbers, and wrote their
#: rows, without end. A thousand in a row: at 1% of cohorts of two or more (a
#: federation recording 100 empty rounds per real one) a false stop is 4e-5 likely.
MAX_UNDERSIZED_IN_A_ROW = 1000


#: refused messages logged per party and round; the rest are counted in the round's line
LOGGED_REFUSALS = 5

#: the past rounds whose parties are remembered, so that a payload of one of them that
#: arrives after it closed is logged as late (INFO), not as a refusal (WARNING)
LATE_ROUNDS_REMEMBERED = 16

#: how often, inside a round, the server looks for clients that connected since it told
#: the left-out ones (:meth:`FederationServer._tell_unsampled`): a branch that joins in
#: the middle of a long round is told within this many seconds
UNSAMPLED_LOOK_SECONDS = 1.0

#: the longest the collect loop waits in one receive (seconds): between two waits it
#: looks at the round's deadlines, at who is still connected (a transport that cannot
#: tell a session's end wakes it no earlier) and, every UNSAMPLED_LOOK_SECONDS, at who
#: connected since
POLL_SECONDS = 0.5

#: OS error numbers a send can raise that say the server's own resources failed (its
#: descriptors, its memory or buffers, its disk), not the party it sent to: such an error
#: stops the server as an error outside its writes (:meth:`FederationServer._send`),
#: where any other OS error of a send (a timeout, a reset) is that party's dropout
LOCAL_SEND_ERRNOS = frozenset(
    code
    for code in (
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.ENOBUFS,
        errno.ENOSPC,
        getattr(errno, "EDQUOT", None),
        errno.EROFS,
    )
    if code is not None
)


def _local_send_error(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a send, is the server's own resource failing
    (:data:`LOCAL_SEND_ERRNOS`) rather than the party's link or session."""
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, TransportError)
        and exc.errno in LOCAL_SEND_ERRNOS
    )


def _send_error_text(exc: BaseException) -> str:
    """A failed send's error for the log and an abort reason: its type and the
    transport's own words (a peer name, a size), never the payload."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class RoundResult:
    """What one round did, as recorded in the store."""

    number: int
    status: str  # "complete" | "aborted"
    participants: tuple[str, ...]
    contributed: tuple[str, ...]
    reason: str | None
    epsilon: float | None


class BudgetExhausted(RoundAborted):
    """The round would take the federation's epsilon above ``dp.epsilon_budget``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, phase="release")


class ServerStopped(SecAggError):
    """This server stopped on an error or a stop (Ctrl-C, SIGTERM) in a round, or in
    its ledger's rebuild, and runs no more rounds; the message says which.

    Why: the error leaves the server's memory (its round number, its accountant's
    charges, its benched branches) ahead of or beside what its state and ledger hold, so
    a round run from it could release a model no ledger row records, or charge and
    number rounds the state does not know. A new server started on the state resumes
    from what the files hold (rebuilding a missing ledger row first)."""


class FederationServer:
    """Runs the configured federation's rounds over one transport."""

    def __init__(
        self,
        config: FederationConfig,
        transport: ServerEndpoint,
        store: ServerStore,
        initial_model: np.ndarray | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        observer: Callable[[RoundResult, np.ndarray], None] | None = None,
        ledger: Ledger | None = None,
        identity_of: Callable[[str], bytes | None] | None = None,
        unmask: MaskRemover | None = None,
    ) -> None:
        """``observer(result, model)`` is called after every round (complete or
        aborted) with the global model as it then stands: progress bars,
        evaluation in a simulator, monitoring.

        ``unmask`` removes a masking round's masks at its close in place of the
        ``[server] unmask_workers`` threads (e.g. a
        :class:`~secagg.runtime.ray_slices.RayUnmasker`, which :func:`serve` makes for
        ``unmask_on = "ray"``); a local choice, the same sum word for word.

        ``identity_of(name)`` gives a connected branch's certificate (DER) for
        active rounds; by default the transport's ``peer_certificate``."""
        self._identity_of = identity_of or getattr(transport, "peer_certificate", None)
        self.config = config
        self.transport = transport
        # the transport's send to one session of a party, where it has one (_send)
        self._send_to_session = _session_sender(transport)
        self.store = store
        self.ledger = ledger  # one signed row per round: secagg audit verify checks it
        self._observer = observer
        self._clock = clock
        config.plan_privacy()  # the cost of client-level DP, before any data moves
        self.backend: AggregationBackend = config.aggregation_backend()
        if unmask is not None or config.server.unmask_workers is not None:
            threads = config.server.unmask_workers if unmask is None else None
            self.backend.unmask_with(unmask, workers=threads)  # refused without masks
        # DP noise is drawn from the OS CSPRNG: anyone holding the config (and so its
        # seed) could otherwise subtract it. Only a simulation's replay seeds it, and
        # every ledger row with DP noise then says so (audit verify reports it as not
        # private); a row without a DP block drew no noise, so none of it is seeded.
        self.noise_seeded = config.replay_noise
        # seeded streams start again from their key: a restarted server keys them by the
        # last round the state holds, or its first round would draw the noise and the
        # cohort of the federation's first round again (rounds only grow: no key twice)
        self._resumed_after = max((int(row["number"]) for row in store.rounds()), default=0)
        self.mechanism: Mechanism = config.mechanism(
            seed=self._seed(b"noise") if config.replay_noise else None
        )
        self._sampler = self._stream(b"sampling")
        # the cohort is drawn from the config's seed, so anyone holding the config can
        # predict it: every DP ledger row says so (audit verify fails an older row that
        # claims amplification by sampling beside it, unless its noise is a replay's too)
        self.sampling_seeded = config.seed is not None
        self._refuse_dp_contradicting_rounds()  # before anything is written or charged
        recovery = store.recover()
        for number in recovery.aborted_on_restart:
            log.warning("round %d was running when the server stopped: aborted", number)
        if recovery.model is not None:
            self.model = recovery.model
        elif initial_model is not None:
            self.model = np.asarray(initial_model, dtype=np.float64).copy()
        else:
            self.model = np.zeros(config.dimension)
        if self.model.shape != (config.dimension,):
            # on a restart, the state's own size: a changed federation.dimension said only
            # "the model must have 20 parameters" (CLI audit, 2026-12-04)
            found = "x".join(str(n) for n in self.model.shape) or "a scalar"
            whose = "the state's checkpoint" if recovery.model is not None else "the initial model"
            raise ConfigurationError(
                f"federation.dimension = {config.dimension} but {whose} has {found} "
                "parameters: "
                + (
                    "keep federation.dimension as it was for this state, or start a new "
                    "federation with another server.state"
                    if recovery.model is not None
                    else f"give a model of {config.dimension} parameters"
                )
            )
        # the server optimizer's state: FedAvgM's velocity (or FedAdam's first moment),
        # FedAdam's second moment and its steps taken; none is checkpointed, so all
        # restart at zero after a crash or a restart (as FedAvgM's velocity always has)
        self._velocity = np.zeros(config.dimension)
        self._second = np.zeros(config.dimension)
        self._steps = 0
        self.next_round = recovery.next_round
        self._last_epsilon: float | None = None  # the latest completed round's claim
        self.refused_messages = 0  # malformed, foreign or out-of-phase payloads dropped
        # dp.epsilon_budget: a hard cap; budget_reached says why the run stopped at it
        self._budget = config.dp.epsilon_budget if config.dp is not None else None
        self.budget_reached: str | None = None
        self._at_budget: set[str] = set()  # clients whose next round would cross it
        #: messages each name sent that a round's collect loop read, a Leave (which carries
        #: nothing) not counted: refused ones (junk, another round's, a duplicate) are
        #: counted too, so it says who sent something, never who contributed (a round's
        #: RoundResult.contributed says that). Its one reader, a refusal test
        #: (tests/integration/test_branch_refusal_cli.py), reads it as "sent anything"
        self.received_from: Counter[str] = Counter()
        # the background replays (record level) stop with a stop recorded for the
        # process, as the server's own loops do (close() and a failed round stop them too)
        self.mechanism.stop_replays_when(lambda: stop_asked() is not None)
        # and the replays this thread reads (computing a cancelled one itself) end at
        # the next report once a stop is recorded, not after all of them
        # (tests/runtime/test_record_backfill_stop_looks.py)
        self.mechanism.look_between_replays(raise_if_stop_asked)
        entries: list[dict[str, Any]] = []  # the ledger's, read once
        if ledger is not None:
            entries = self._ledger_entries()
            for entry in entries:
                self.mechanism.restore_reports((entry.get("dp") or {}).get("client_reports", {}))
            self._warn_if_renamed(entries)
        self._accusers: dict[str, set[str]] = {}  # accused branch -> who accused it
        #: branches whose DP-SGD report was refused after a round's sum (see
        #: _take_unaccounted) -> why: left out of later rounds, as the accused are
        self._unaccounted: dict[str, str] = {}
        # the accountant's charges of the completed rounds, before the ledger is backfilled:
        # a round the mechanism cannot charge refuses the start with no row written
        for row in store.rounds():
            if row["status"] == "complete":
                self._restore_charge(row["number"], row["report"])
                self._last_epsilon = row["report"].get("epsilon")
            elif (row["report"] or {}).get("revealed"):  # its sum reached the server
                revealed = row["report"]["revealed"]
                self._restore_charge(row["number"], revealed)
                self._last_epsilon = revealed.get("epsilon", self._last_epsilon)
            for accused, accusers in ((row["report"] or {}).get("accused") or {}).items():
                self._accusers.setdefault(accused, set()).update(accusers)
            unaccounted = (row["report"] or {}).get("unaccounted") or {}
            if isinstance(unaccounted, dict):
                self._unaccounted.update({str(k): str(v) for k, v in unaccounted.items()})
        #: the crash-aborted rounds of a ledger backfill left to :meth:`backfill_ledger`
        #: (after the port is bound), or None: nothing left to rebuild
        self._backfill_pending: tuple[int, ...] | None = None
        #: why that backfill failed (this server then runs no rounds), or None
        self._backfill_failed: str | None = None
        #: what stopped that backfill (Ctrl-C, a signal's name; no rounds then), or None
        self._backfill_stopped: str | None = None
        #: the rounds whose ledger rows this server rebuilt from the state, in order
        #: (:meth:`_backfill_ledger`). Why kept: each moved the ledger's head, and
        #: ``secagg server`` on a finished federation said "nothing to do" without the new
        #: head auditors pass to ``--expect-head`` (tests/apps/test_server_finished_rebuilt_head.py)
        self.rebuilt_rounds: list[int] = []
        if ledger is not None:
            if self._rebuild_reads_replays(entries):
                # the rebuilt row's block and claim read every branch's replayed figure:
                # rebuilt once the port is bound (run, run_round, serve's finished path)
                self._backfill_pending = recovery.aborted_on_restart
            else:
                restored = self._last_epsilon
                try:
                    self._backfill_ledger(recovery.aborted_on_restart)
                except BaseException as exc:  # logged as the deferred rebuild's are
                    self._rebuild_ended_early(exc)
                    raise
                self._last_epsilon = restored  # the backfill's running figure is the rows'
            # replayed in the background: the server binds its port after it is built.
            # Started once every check of the build has passed: a refused build leaves
            # no thread replaying for a server that does not exist
            self.mechanism.start_restored_replays()
        # for the per-round log line, what the next row would claim: every charged round
        # at the config's delta (the stored claim was accounted at the delta of the run
        # that made it), or under record level the worst branch's reported figure (the
        # server stores none of its own: the line said "epsilon -" beside a row claiming it)
        # (the restored reports' replays not waited for: see start_restored_replays)
        self._epsilon_now = self.mechanism.provisional_claim(self._carried_epsilon())
        gone = self.mechanism.charged_outside(config.clients)
        if gone:  # the unit of the per-client charge is the name
            log.warning(
                "%d clients charged in earlier rounds are not in federation.clients (%s): "
                "their charges stay in the claim, but a branch renamed starts afresh under "
                "its new name; keep names stable (audit verify fails a ledger that names "
                "more clients than its population)",
                len(gone),
                ", ".join(sorted(gone)[:5]) + (", ..." if len(gone) > 5 else ""),
            )
        # the round in flight: each party's session when its round start was sent, the
        # parties that said they left it, and when it must end (the clock's time)
        self._round_sessions: dict[str, object] = {}
        # the same parties' open session ids as the transport tells them (a vanished
        # simulated branch keeps its own): a round's messages go to these only (_send)
        self._round_session_ids: dict[str, object] = {}
        self._left: set[str] = set()
        #: the round in flight's parties whose DP-SGD report was refused as it arrived:
        #: dropouts of the round, whose later messages of it are refused
        self._report_refused: set[str] = set()
        #: the round in flight's parties whose DP-SGD report was checked as it arrived:
        #: a second report of theirs in the round is refused unchecked
        #: (:meth:`_check_report_on_arrival`)
        self._report_checked: set[str] = set()
        # the parties of the round in flight a send to failed (gone, or a message the
        # transport refused): they never got it, so they are gone from the round (_gone)
        self._unreached: set[str] = set()
        # the error of a failed send to the round's helper (the round then aborts), or None
        self._helper_unreached: str | None = None
        # the last request sent to the round's helper, as sent (kept for the one resend a
        # round after a restart of the helper: _helper_restarted), and whether it was resent
        self._helper_request: bytes | None = None
        self._helper_resent = False
        # whether the round in flight's sum, noted as charged before the requests that
        # reveal it left (all of them to the helper), is still unrevealed: no request of
        # them may have reached the helper yet and it sent nothing since (_hold_at_budget)
        self._reveal_unsent = False
        # the round in flight's cohort and the clients told it runs without them
        # (NotSampled), by name: told once a round, a branch keeps the deadline across a
        # reconnect; and the config's clients as a set (a look every second)
        self._told_or_sampled: set[str] = set()
        # the round in flight's participants its start could not be sent to: the round
        # runs without them, which they are told (NotSampled), and its end is not theirs
        self._start_unsent: set[str] = set()
        # the round in flight's participants told it runs without them on a new session
        # (or on the session they had, their start unsent): each is told once a round
        self._told_moved: set[str] = set()
        self._client_names = frozenset(config.clients)
        self._round_end = 0.0
        # the round in flight's allowance for its replays after the phases (seconds,
        # Mechanism.replay_seconds of its cohort): in every deadline told (_told_deadline)
        self._replay_allowance = 0.0
        # the round in flight's start on the monotonic clock (its line's duration)
        self._round_began = time.monotonic()
        # whether the round in flight was announced (its RoundStart sent): only then do its
        # participants hear its end; one never started is none of theirs to refuse
        self._announced = False
        # who did not answer a phase of the round in flight (its waits closed on them);
        # each client's misses in a row among the rounds it was sampled for, and the
        # last round number it sits out (server.bench_after_missed_rounds)
        self._missed: set[str] = set()
        # the round in flight's reveal note (cleared as each round starts: _run_round)
        self._revealed: dict[int, dict[str, Any] | None] = {}  # round -> charge noted
        self._revealed_noise: dict[int, float] = {}  # round -> the backend noise it assumed
        self._revealed_participants: dict[int, int] = {}  # round -> participants it charged
        self._refusals: dict[str, int] = {}  # the round's refused messages per party
        # the parties of the last LATE_ROUNDS_REMEMBERED rounds driven, by round number
        self._cohorts: dict[int, frozenset[str]] = {}
        # of those rounds, the ones that completed: the parties that answered every phase
        # they were sent, whose later payload of the round is a replay, never late (_late)
        self._answered_all: dict[int, frozenset[str]] = {}
        # (round, party) pairs whose one late payload has been taken as late (_late)
        self._answered_late: set[tuple[int, str]] = set()
        # the write in progress, for what a failed one logs, stores and tells the parties:
        # "state" while a write of the state runs, "ledger" while the round's ledger row is
        # made and appended, None between writes (an error then is no failed write)
        self._writing: str | None = None
        self._misses: Counter[str] = Counter()
        self._benched_until: dict[str, int] = {}
        #: after run(): why it stopped before every configured round was complete
        #: (None when :attr:`finished`; the CLI prints it and exits non-zero)
        self.stop_reason: str | None = None
        # the stop a failed state or ledger write in _run_round logged (the reason told
        # the parties), or None: run() announces the end for that error only
        self._stopped_on: str | None = None
        # the round an error left this server in (ServerStopped after it), or None
        self._failed_round: int | None = None
        # the stop (its signal's name) that ended that round, None for an error: the
        # ServerStopped after it says which (_refuse_after_failure)
        self._round_stopped_by: str | None = None
        # the live round whose records are whole (its state's row finished, its ledger
        # row appended: _record), or None; a stop after them leaves the next start
        # nothing to settle, and the ServerStopped after it says so
        self._recorded_round: int | None = None
        #: whether close() was called (ServerStopped after it)
        self._closed = False

    def _warn_if_renamed(self, entries: list[dict[str, Any]]) -> None:
        """Say so at start when the ledger's last row names another federation than the
        config's ``federation.name``.

        Why: a restart under another name continued the state and ledger without a word
        (a rename is one federation, docs/audit.md), but then ``audit verify --config``
        fails the rows of the old name for good, and every branch with a state file of
        the old name refuses the new rounds: an operator who changed the name by mistake
        learned it from those refusals (review, 2026-12-06)."""
        named = [e for e in entries if isinstance(e.get("federation"), str)]
        if not named or named[-1]["federation"] == self.config.name:
            return
        last = named[-1]
        log.warning(
            "federation.name is %r but the ledger's rounds up to round %s name federation "
            "%r: they continue under the new name (one federation renamed), so `secagg audit "
            "verify --config` with either name fails the other's rows, and branches whose "
            "state file (or branch.federation) names %r refuse its rounds; restore the name "
            "unless the rename is meant",
            self.config.name,
            last.get("round"),
            last["federation"],
            last["federation"],
        )

    def _restore_charge(self, number: int, stored: dict[str, Any]) -> None:
        """Charge a stored round again (:meth:`Mechanism.restore`), naming the round when
        the mechanism refuses it (a round it cannot charge truthfully)."""
        try:
            self.mechanism.restore(stored)
        except ConfigurationError as exc:
            raise ConfigurationError(f"[dp] round {number} of the state: {exc}") from None

    def _refuse_dp_contradicting_rounds(self) -> None:
        """Refuse a ``[dp]`` that contradicts the DP the stored rounds were released with.

        Why: a federation run without DP and restarted with ``[dp]`` (same state) only
        logged a warning, charged its noiseless rounds as if noised and wrote a ledger
        that ``secagg audit verify`` fails for good ("claims epsilon 8.385 but its
        recorded mechanism gives inf"); the reverse drops the charges of noised rounds.
        One accountant composes one mechanism, so the rows that released something
        (complete, or their sum revealed) must all have the config's DP: present or
        absent, its unit and its mechanism. The ledger's DP block says what each row
        ran with; a finished round the ledger lacks (it is about to be rebuilt from the
        store) is judged by its stored epsilon: a server-accounted mechanism records
        one, a round without DP none. Raised before anything is written or bound."""
        dp = self.config.dp
        wanted = None if dp is None else (dp.unit, dp.mechanism)
        seen: dict[tuple[str, str] | None, list[int]] = {}
        ledgered: set[int] = set()
        for entry in self._ledger_entries() if self.ledger is not None else []:
            number = entry.get("round")
            if not isinstance(number, int):
                continue
            ledgered.add(number)
            block = entry.get("dp")
            released = entry.get("status") == "complete" or (
                isinstance(block, dict) and bool(block.get("sum_revealed"))
            )
            if released:
                ran = (
                    (str(block.get("unit")), str(block.get("mechanism")))
                    if isinstance(block, dict)
                    else None
                )
                seen.setdefault(ran, []).append(number)
        for row in self.store.rounds():
            report = row["report"] or {}
            if row["number"] in ledgered:
                continue
            charged = report if row["status"] == "complete" else report.get("revealed")
            if not isinstance(charged, dict):
                continue
            noised = charged.get("epsilon") is not None
            if noised and dp is None:
                seen.setdefault(("?", "?"), []).append(row["number"])
            elif not noised and dp is not None and dp.server_accounts:
                seen.setdefault(None, []).append(row["number"])
        wrong = {ran: numbers for ran, numbers in seen.items() if ran != wanted}
        if not wrong:
            return
        ran, numbers = min(wrong.items(), key=lambda item: item[1][0])

        def describe(kind: tuple[str, str] | None) -> str:
            if kind is None:
                return "without DP (no [dp]: released with no noise)"
            if kind == ("?", "?"):
                return "with DP (an epsilon is stored)"
            return f"with [dp] unit = {kind[0]!r}, mechanism = {kind[1]!r}"

        now = "has no [dp]"
        if dp is not None:
            now = f"has unit = {dp.unit!r}, mechanism = {dp.mechanism!r}"
        raise ConfigurationError(
            f"[dp] contradicts the rounds this state holds: {_round_span(sorted(numbers))} "
            f"ran {describe(ran)}, this config {now}; "
            "one federation keeps one DP mechanism: restore [dp] as it was, or start a new "
            "federation with another server.state"
        )

    def _identities(self, participants: list[str]) -> tuple[bytes, ...]:
        """Each participant's certificate (DER), for rounds whose signatures rest on them."""
        found = []
        for name in participants:
            certificate = self._identity_of(name) if self._identity_of is not None else None
            if not certificate:
                raise ConfigurationError(
                    f"backend.active needs every branch's certificate; none is known for {name}"
                )
            found.append(certificate)
        return tuple(found)

    def _seed(self, label: bytes) -> bytes | None:
        """The replay key of a seeded stream ``label`` (None without a config seed).

        A server started on a state that holds rounds (a restart) keys it after the last
        of them: the stream read from the start again would repeat the first rounds'
        draws. A fresh federation's keys are as they always were (recorded runs replay)."""
        if self.config.seed is None:
            return None
        if self._resumed_after and not label.startswith(b"graph/"):
            label += b"/after-round-" + str(self._resumed_after).encode()
        return derive(b"secagg/v1/test-seed/" + label, self.config.seed)

    def _public_seed(self, number: int) -> bytes | None:
        """Round ``number``'s public randomness (SecAgg+'s neighbour graph) from the
        config's seed in a replay only, so the same simulation sends the same bytes
        (which branches a dropped one's neighbours are decides how many shares go back).
        Anywhere else the graph comes from the OS CSPRNG: a graph anyone holding the
        config could predict lets colluders pick the neighbours of a branch."""
        if not self.config.replay_noise:
            return None
        return self._seed(b"graph/" + str(number).encode())

    def _stream(self, label: bytes) -> KeyedStream:
        seed = self._seed(label)
        return KeyedStream() if seed is None else KeyedStream(seed)

    # --- the federation ------------------------------------------------------

    def completed_rounds(self) -> int:
        return sum(1 for row in self.store.rounds() if row["status"] == "complete")

    @property
    def finished(self) -> bool:
        """Whether every configured round is complete (read from the store, so it holds
        for a server that found its federation finished and ran nothing)."""
        return self.completed_rounds() >= self.config.rounds

    def run(
        self,
        wait_for_clients: float = 30.0,
        *,
        max_consecutive_aborts: int = 5,
        max_attempts: int | None = None,
        quorum_wait: float | None = None,
    ) -> list[RoundResult]:
        """Run rounds until ``config.rounds`` have completed (aborted rounds do not count).

        First waits up to ``wait_for_clients`` seconds for every party; then, before
        each round, up to ``quorum_wait`` seconds (default ``[server]
        quorum_wait_seconds``) for a quorum
        (:meth:`quorum_missing`), burning no round number while it waits.
        ``max_attempts`` caps the rounds attempted by this call, aborted ones
        included (a simulator whose clients budgeted their DP-SGD for exactly
        that many rounds sets it). Stops early after ``max_consecutive_aborts``
        aborted rounds in a row among those that ran the protocol: a federation
        that cannot reach its threshold needs an operator, not an endless loop.

        Afterwards :attr:`finished` says whether every round is complete and
        :attr:`stop_reason` why not; every connected party has been sent a
        :class:`~secagg.runtime.wire.FederationEnd` saying the same. A failed state or
        ledger write raises its error as before, after a FederationEnd that says the
        server stopped on it (:meth:`_announce_stop_on_error`); any other exception
        announces nothing, and so does any exception while a stop is recorded for the
        process (:func:`~secagg.transport.waiting.stop_asked`: a SIGTERM that surfaced as
        another error is announced to nobody, as a Ctrl-C is not; its parties redial a
        restarted server). After either, this server runs no more rounds: ``run`` and
        :meth:`run_round` raise :class:`ServerStopped` (a new server on the state
        resumes from it).

        First of all it rebuilds the ledger rows a restart left to after the bind
        (:meth:`backfill_ledger`); an error there is raised after a FederationEnd that
        says the server stopped, as a failed write's is, but for a stop that surfaced as
        another error (announced to nobody, as a Ctrl-C is not: its parties redial).
        """
        self._refuse_after_failure()
        if quorum_wait is None:
            quorum_wait = self.config.server.quorum_wait_seconds
        self.stop_reason = None
        self._stopped_on = None
        try:
            self.backfill_ledger()  # the rows a restart left to rebuild come first
        except Exception:
            if self._backfill_stopped is not None:
                # a stop that surfaced as another error (backfill_ledger logged it as the
                # stop): announced as none, as a Ctrl-C's KeyboardInterrupt is not. Told
                # "could not rebuild its ledger's missing rows", every branch exited 1 at
                # once, and a server restarted by its service manager found none
                # (tests/runtime/test_record_backfill_stop.py)
                raise
            # the parties that connected since the bind hear that the server stopped
            self._stopped_on = self.stop_reason = (
                "the server stopped before its first round: it could not rebuild its "
                "ledger's missing rows (the server's log has the cause)"
            )
            self._announce_stop_on_error()
            raise
        results: list[RoundResult] = []
        if self.completed_rounds() < self.config.rounds:
            began = self._clock()
            self._wait_for(set(self.config.parties), wait_for_clients)
            try:
                self.stop_reason = self._run_rounds(
                    results,
                    max_consecutive_aborts,
                    max_attempts,
                    quorum_wait,
                    waited_for_parties=self._clock() - began,
                )
            except Exception:
                # a failure _run_round logged and noted, unless a stop is recorded: a
                # stop that surfaced as another error (or a failure on its way out) is
                # announced to nobody, as a Ctrl-C's KeyboardInterrupt is not. Told "the
                # server stopped on an error in round N", every branch exited 1 at once,
                # and a server restarted by its service manager found none
                # (tests/runtime/test_round_stop_surfaced_unannounced.py)
                if self._stopped_on is not None and stop_asked() is None:
                    self.stop_reason = self._stopped_on
                    self._announce_stop_on_error()
                raise
        done = self.completed_rounds()
        if done >= self.config.rounds:
            self.stop_reason = None
            outcome.log.info(
                "federation %s finished: %d of %d rounds complete",
                self.config.name,
                done,
                self.config.rounds,
            )
        else:  # the caller's to report (stop_reason): a warning, not the runtime's error
            outcome.log.warning(
                "federation %s stopped before finishing (%d of %d rounds complete): %s",
                self.config.name,
                done,
                self.config.rounds,
                self.stop_reason,
            )
        self._announce_end(self.finished, self.stop_reason or "")
        return results

    def _run_rounds(
        self,
        results: list[RoundResult],
        max_consecutive_aborts: int,
        max_attempts: int | None,
        quorum_wait: float,
        *,
        waited_for_parties: float = 0.0,
    ) -> str | None:
        """The rounds of :meth:`run`, appended to ``results``; returns why they stopped
        early (None: every configured round is complete). ``waited_for_parties``: the
        seconds :meth:`run` waited for every party (``--wait``) just before; a quorum
        missing before the first round then says the whole time waited, that wait
        included (it said only the quorum wait's "15 s" after 45 s of waiting)."""
        aborted_in_a_row = 0
        undersized_in_a_row = 0  # cohorts of fewer than QUORUM drawn with a quorum there
        while self.completed_rounds() < self.config.rounds:
            raise_if_stop_asked()  # a stop a library swallowed ends the rounds here
            if max_attempts is not None and len(results) >= max_attempts:
                return f"{max_attempts} rounds attempted (max_attempts)"
            if self._budget_spent():
                return self.budget_reached
            began = self._clock()
            missing = self._await_quorum(quorum_wait)
            if missing is not None:
                waited = self._clock() - began  # measured: the transport may stop it early
                if round(waited_for_parties, 1) > 0:
                    return (
                        f"no quorum within {_seconds(waited_for_parties + waited)} s "
                        f"({_seconds(waited_for_parties)} s --wait for every party to connect, "
                        f"then {_seconds(waited)} s for a quorum): {missing}"
                    )
                return f"no quorum within {_seconds(waited)} s: {missing}"
            waited_for_parties = 0.0  # a later round's wait is its quorum wait alone
            participants = self.sample()
            if len(participants) < QUORUM and self.quorum_missing() is not None:
                continue  # the quorum left between the check and the draw: wait again
            result = self._run_round(participants)
            results.append(result)
            if self._observer is not None:
                self._observer(result, self.model.copy())
            if self.budget_reached is not None:
                return self.budget_reached
            if result.status == "complete":
                aborted_in_a_row = 0
            elif len(result.participants) >= QUORUM:  # it ran the protocol, and failed
                aborted_in_a_row += 1
            undersized_in_a_row = (
                undersized_in_a_row + 1 if len(result.participants) < QUORUM else 0
            )
            if undersized_in_a_row >= MAX_UNDERSIZED_IN_A_ROW:
                return (
                    f"{undersized_in_a_row} rounds in a row sampled fewer than {QUORUM} "
                    f"clients with a quorum connected: sampling.rate "
                    f"{self.config.sample_rate:g} over {len(self.config.clients)} clients "
                    f"expects {self.config.expected_clients:.3g} a round; raise sampling.rate"
                )
            if aborted_in_a_row >= max_consecutive_aborts:
                rounds = "round" if aborted_in_a_row == 1 else "rounds"
                return f"{aborted_in_a_row} {rounds} aborted in a row"
        return None

    def quorum_missing(self) -> str | None:
        """What a round still lacks to be worth starting, or None: at least
        :data:`QUORUM` connected clients that are not excluded, and the backend's
        helper (the CKKS key holder) when it has one."""
        eligible = (set(self.config.clients) & self.transport.connected()) - self.excluded()
        eligible -= self._at_budget  # their own epsilon would cross dp.epsilon_budget
        if len(eligible) < QUORUM:
            clients = len(self.config.clients)
            return f"{len(eligible)} of {clients} clients connected, {QUORUM} needed"
        helper = self.config.backend.key_holder
        if helper is not None and helper not in self.transport.connected():
            return f"the key holder {helper} is not connected"
        return None

    def _await_quorum(self, timeout: float) -> str | None:
        """Wait for :meth:`quorum_missing` to clear; returns what is still missing after
        ``timeout`` seconds (or at once when the transport says it has ``stopped``), or
        None. A transport that offers ``wait_for_sessions`` (gRPC's, the in-process
        hub's and so the simulator's) wakes this wait when a session opens or ends; any
        other is polled with back-off, up to 1 s apart (which noticed a quorum up to a
        second late)."""
        wait_for_sessions = getattr(self.transport, "wait_for_sessions", None)
        seen = None if wait_for_sessions is None else wait_for_sessions(None, 0.0)
        missing = self.quorum_missing()
        if missing is None:
            return None
        if getattr(self.transport, "stopped", False):  # shutting down: nobody comes back
            return f"{missing}, and the transport has stopped"
        log.warning("waiting up to %g s for a quorum: %s", timeout, missing)
        began = self._clock()
        pause = 0.02
        while self._clock() - began < timeout:
            raise_if_stop_asked()  # a stop swallowed in the wait ends it here
            if getattr(self.transport, "stopped", False):
                return f"{missing}, and the transport has stopped"
            left = max(0.0, timeout - (self._clock() - began))
            if wait_for_sessions is not None:
                seen = wait_for_sessions(seen, left)
            else:
                time.sleep(min(pause, left))
                pause = min(2 * pause, 1.0)
            missing = self.quorum_missing()
            if missing is None:
                log.info("quorum back after %.1f s", self._clock() - began)
                return None
        return missing

    def _announce_end(self, finished: bool, reason: str) -> None:
        """Tell every connected party the federation is over (finished or stopped), so
        branches exit at once instead of redialling a server that is going away.

        A send that fails on the server's own resources (:data:`LOCAL_SEND_ERRNOS`, which
        :meth:`_send` raises) is logged, and the others are still told: the rounds are
        all recorded by now, and the error, let out, turned a finished federation into a
        failed run (a party not told waits out its idle timer, as for a server that died)."""
        end = FederationEnd(self.next_round - 1, finished, reason)
        untold: list[str] = []
        for name in sorted(self.transport.connected()):
            try:
                self._send(name, end)
            except OSError as exc:
                if not untold:
                    log.error(
                        "the federation's end could not be announced to %s (%s: %s): it "
                        "waits out its idle timer",
                        name,
                        type(exc).__name__,
                        exc,
                    )
                untold.append(name)
        if len(untold) > 1:
            log.error("nor to %d more parties", len(untold) - 1)

    def _announce_stop_on_error(self) -> None:
        """Tell every connected party the federation stopped, as :meth:`run` leaves on a
        failed state or ledger write (:attr:`_stopped_on`, the reason, says which).

        Why: the error left :meth:`run` before its end was announced, so every branch and
        the key holder waited out its idle timer (``--idle``, minutes) for a server that
        had logged why it stopped (review, 2026-12-06). Never ``finished``: even a last
        round the state completed was released to nobody. Nothing here may replace the
        error on its way out: a send that fails beyond what :meth:`_send` takes is
        logged, and the parties are left to their idle timers as before. A crash the
        server did not report (any other exception) announces nothing: the server cannot
        say what stopped it, and its parties see their sessions end."""
        assert self._stopped_on is not None
        try:
            self._announce_end(False, self._stopped_on)
        except Exception as exc:
            log.error(
                "the federation's end could not be announced (%s: %s); the parties wait "
                "out their idle timers",
                type(exc).__name__,
                exc,
            )

    def _wait_for(self, names: set[str], timeout: float) -> None:
        """Wait up to ``timeout`` s for every one of ``names`` to connect, saying so once.

        Why the line: a CKKS server whose key holder was down sat silent for its whole
        ``--wait`` (60 s) before its first quorum warning (operator pass, 2026-12-04).
        Over gRPC and the in-process hub the wait is woken by each session that opens
        rather than polled."""
        end = self._clock() + timeout
        missing = sorted(names - self.transport.connected())
        if missing and timeout > 0:
            shown = ", ".join(missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            log.info(
                "waiting up to %g s (--wait) for every party to connect: %d of %d connected; "
                "missing %s",
                timeout,
                len(names) - len(missing),
                len(names),
                shown,
            )
        # a transport that offers wait_for_sessions (gRPC's, the in-process hub's) wakes
        # this wait when a session opens; any other is polled every 10 ms
        wait_for_sessions = getattr(self.transport, "wait_for_sessions", None)
        seen = None if wait_for_sessions is None else wait_for_sessions(None, 0.0)
        while not names <= self.transport.connected() and self._clock() < end:
            raise_if_stop_asked()  # a stop swallowed in the wait ends it here
            if getattr(self.transport, "stopped", False):  # shutting down: nobody comes
                return
            if wait_for_sessions is None:
                time.sleep(0.01)
            else:
                seen = wait_for_sessions(seen, max(0.0, end - self._clock()))

    def sample(self) -> list[str]:
        """This round's participants among the connected clients (sorted by name), less
        the branches excluded for bad shares (:meth:`excluded`). Revocation and expiry
        are re-checked first where the transport can (a revoked branch's open session
        ends before it is sampled)."""
        recheck = getattr(self.transport, "recheck_sessions", None)
        if recheck is not None:
            for name in recheck():
                log.warning("%s's session ended: revoked, renamed or expired", name)
        eligible = (set(self.config.clients) & self.transport.connected()) - self.excluded()
        eligible -= self._at_budget  # their own epsilon would cross dp.epsilon_budget
        # a benched branch sits out, unless that would leave too few for a round at all
        rested = eligible - self.benched()
        available = sorted(rested if len(rested) >= QUORUM else eligible)
        sampling = self.config.sampling
        if sampling.kind == "poisson":
            draws = self._sampler.uniform(len(self.config.clients))
            chosen = [
                name
                for name, u in zip(self.config.clients, draws, strict=True)
                if u < sampling.rate and name in available
            ]
        else:
            rng = (
                secrets.SystemRandom() if self.config.seed is None else _StreamChoice(self._sampler)
            )
            chosen = rng.sample(available, min(sampling.count or 0, len(available)))
        return sorted(chosen)

    def benched(self) -> set[str]:
        """Clients that sit out the next round for having missed rounds in a row."""
        return {name for name, until in self._benched_until.items() if until >= self.next_round}

    def _bench_absentees(self, result: RoundResult) -> None:
        """Count the misses of the round's participants, and bench a repeat absentee.

        Why: in a cohort of 3 to 5 the default threshold is the whole cohort, so one
        branch that stays connected but never answers (a stuck or failing trainer, or a
        branch that does it on purpose) aborted every round until the server stopped
        the federation (5 aborts in a row): one branch could stop everyone (network
        audit, 2026-12-03). A branch that missed ``server.bench_after_missed_rounds``
        rounds in a row sits out the next round, one more round for each further miss,
        then is sampled again; answering once clears its count. It is a pause, not an
        exclusion: a branch that comes back healthy loses at most those rounds."""
        limit = self.config.server.bench_after_missed_rounds
        missed = self._missed & set(self.config.clients)
        if len(result.participants) < QUORUM:  # no protocol ran: nobody answered or missed
            return
        for name in result.participants:
            if name in missed:
                self._misses[name] += 1
            else:
                self._misses.pop(name, None)
        if limit == 0:
            return
        for name in sorted(missed):
            count = self._misses[name]
            if count >= limit:
                rounds = count - limit + 1
                self._benched_until[name] = result.number + rounds
                log.warning(
                    "%s missed %d rounds in a row: it sits out the next %d round%s",
                    name,
                    count,
                    rounds,
                    "" if rounds == 1 else "s",
                )

    def excluded(self) -> set[str]:
        """Branches left out of rounds: those at least ``server.exclude_after_accusers``
        distinct others named as senders of shares that did not open (security review
        M3), and those a record-level round could not account for after its sum
        (:meth:`_take_unaccounted`)."""
        limit = self.config.server.exclude_after_accusers
        accused = {name for name, by in self._accusers.items() if len(by) >= limit}
        return accused | set(self._unaccounted)

    def _take_unaccounted(self, exc: SecAggError, participants: list[str]) -> dict[str, str] | None:
        """The contributors a record-level round could not account for after its sum
        (:class:`~secagg.dp.release.UnaccountedContribution`: no DP-SGD report, or one
        only the replay refuses), by name -> why, kept out of later rounds (stored with
        the aborted round, so a restart keeps them out too); None for any other error.

        Why: every check that needs no replay runs as the report arrives (a dropout of
        the round, :meth:`_check_report_on_arrival`); what is left aborts the round after
        its sum, and the same branch could do it again in every round it was sampled
        into. Excluded, one branch can abort at most one round (the rule: no single
        branch can stop the server)."""
        if not isinstance(exc, UnaccountedContribution):
            return None
        by_identity = {self._identity(name): name for name in participants}
        named = {
            by_identity[identity]: reason
            for identity, reason in sorted(exc.reasons.items())
            if identity in by_identity
        }
        for name, reason in sorted(named.items()):
            self._unaccounted[name] = reason
            log.error(
                "%s is excluded from later rounds: its update could not be accounted for "
                "after the round's sum (%s)",
                name,
                reason,
            )
        return named or None

    def _take_accusations(self, session: ServerSession | None, participants: list[str]) -> dict:
        """Fold the round's accusations into the record; returns them by name (for the store)."""
        if session is None:
            return {}
        named: dict[str, list[str]] = {}
        before = self.excluded()
        for accused, accusers in session.accusations().items():
            if not 0 <= accused < len(participants):
                continue
            by = sorted(participants[p] for p in accusers if 0 <= p < len(participants))
            named[participants[accused]] = by
            self._accusers.setdefault(participants[accused], set()).update(by)
            log.warning(
                "%s sent shares that did not open to %s", participants[accused], ", ".join(by)
            )
        for name in sorted(self.excluded() - before):
            log.error(
                "%s is excluded from later rounds: accused by %s",
                name,
                ", ".join(sorted(self._accusers[name])),
            )
        return named

    def _take_disputes(
        self, session: ServerSession | None, participants: list[str]
    ) -> dict[str, list[str]]:
        """The round's disputed share pairs by name (holder -> owners), logged for the
        operator and returned for the store.

        A pair is not a verdict: the holder revealed a share off the owner's committed
        polynomial, or the owner dealt it one, and without verifiable secret sharing the
        server cannot tell which; the sum was exact either way. So nobody is excluded on
        it: the operator sees both names and decides if either recurs (docs/deployment.md).
        """
        if session is None:
            return {}
        disputed: dict[str, list[str]] = {}
        for holder, owners in session.inconsistent_shares().items():
            if not 0 <= holder < len(participants):
                continue
            named = sorted(participants[o] for o in owners if 0 <= o < len(participants))
            if not named:
                continue
            disputed[participants[holder]] = named
            log.warning(
                "disputed shares: %s revealed a share of %s that does not fit the owner's "
                "commitment (the holder or the owner deviated; nobody is excluded)",
                participants[holder],
                ", ".join(named),
            )
        return disputed

    def run_round(self) -> RoundResult:
        """Sample a cohort among the connected clients and run one round with it."""
        self._refuse_after_failure()
        self.backfill_ledger()  # the rows a restart left to rebuild come first
        return self._run_round(self.sample())

    def close(self) -> None:
        """Stop this server's background work: the DP-SGD reports' replays still queued
        (record level) are dropped, the one under way ends as it would; it runs no rounds
        after (:class:`ServerStopped`). The store, the ledger and the transport are their
        owner's to close (:func:`~secagg.runtime.launch.serve`'s caller's).

        Why: the replays run in a background thread (up to seconds of CPU a report), and
        a server stopped with reports queued (restored on a restart, or kept in a round
        it left) left that thread replaying all of them for nobody
        (tests/runtime/test_record_replays_stop.py). Nothing is half recorded: no figure
        is held but by the server's thread, and a restart replays the ledger's reports
        again."""
        self._closed = True
        self.mechanism.stop_replays()

    def _refuse_after_failure(self) -> None:
        """Raise :class:`ServerStopped` once a round of this server ended in an error.

        Why: a caller that caught the error (a full disk, a ledger append that failed)
        and ran the same server again started the next round from memory the files no
        longer matched: the next round's start carried a model whose round had no ledger
        row, and its rows numbered and charged on from there (review, 2026-12-07)."""
        if self._closed:
            raise ServerStopped(
                "this server was closed and runs no more rounds: start a new server on its "
                "state, which resumes from what the state and the ledger hold"
            )
        if self._backfill_stopped is not None:
            raise ServerStopped(
                f"this server was stopped by {self._backfill_stopped} while it rebuilt its "
                "ledger's missing rows and runs no rounds: start a new server on its state; "
                "it rebuilds them first"
            )
        if self._backfill_failed is not None:
            raise ServerStopped(
                "this server could not rebuild its ledger's missing rows "
                f"({self._backfill_failed}) and runs no rounds: start a new server on its "
                "state once the cause is mended; it rebuilds them first"
            )
        if (
            self._failed_round is not None
            and self._round_stopped_by is not None
            and self._recorded_round == self._failed_round
        ):
            # a stop while the round's end went out or its line was logged: its state
            # and its ledger hold it whole, and "it settles round N first (recorded
            # aborted, or its missing ledger row rebuilt)" promised the operator a repair
            # the next start never makes (tests/runtime/test_round_stop_after_record_said.py)
            kept = "its state and its ledger" if self.ledger is not None else "its state"
            raise ServerStopped(
                f"this server was stopped by {self._round_stopped_by} in round "
                f"{self._failed_round}, after round {self._failed_round} was recorded in "
                f"{kept}, and runs no more rounds: start a new server on its state, which "
                f"resumes after round {self._failed_round}"
            )
        if self._failed_round is not None and self._round_stopped_by is not None:
            # a Ctrl-C or SIGTERM (or a stop that surfaced as another error): read as "on
            # an error in round N", it sent the operator looking for a failure that never
            # was (tests/runtime/test_round_stop_said_as_stop.py)
            raise ServerStopped(
                f"this server was stopped by {self._round_stopped_by} in round "
                f"{self._failed_round} and runs no more rounds: start a new server on its "
                f"state; it settles round {self._failed_round} first (recorded aborted, or "
                "its missing ledger row rebuilt) and resumes from what the state and the "
                "ledger hold"
            )
        if self._failed_round is not None:
            raise ServerStopped(
                f"this server stopped on an error in round {self._failed_round} and runs no "
                "more rounds: start a new server on its state, which resumes from what the "
                "state and the ledger hold"
            )

    def _run_round(self, participants: list[str]) -> RoundResult:
        """One round, numbered next, with ``participants`` (already sampled).

        A state or ledger write that fails (disk full, a read-only or vanished file)
        stops the server: nothing later can be recorded safely. Before the error
        propagates, the round is marked aborted with that cause if the state still
        takes one small write, so the restart does not record only "server restarted
        mid-round" (reliability review D8); if it does not, the server's log has it.
        A failed ledger append comes after the state finished the round: the round
        keeps its status and records ``ledger_row_missing`` (the cause), which the
        restart reports as it rebuilds the row. So does a row refused before its append
        (:class:`~secagg.ledger.entry.SamplingUnrecorded`): no row of it is written. An
        append that raised after writing its row (a sync or a commit reported failed)
        records ``ledger_append_error`` instead: the ledger is read again to tell (a
        ledger that cannot be read again is taken to lack the row, and the note says
        why). An append the ledger refused (:class:`~secagg.ledger.chain.LedgerError`:
        its file deleted or replaced under the server) wrote nothing: noted missing, and
        the server stops with a LedgerError naming the round. Its model is in the
        state's checkpoint only: the server never adopts it (:attr:`model` stays the
        last one the ledger records), the observer never sees it, no branch hears the
        round's end, and this server runs no later round (:class:`ServerStopped`, after
        any error that stopped a round); the next start rebuilds the row from the state
        before any round runs (:meth:`_backfill_ledger`).

        An OS error of the round outside those writes (the transport's receive failing)
        stops the server too, named as what it is, never as a write: logged, stored as
        the round's abort reason and told to the parties (:meth:`_write` marks a write
        only while it runs).
        """
        number = self.next_round
        # only the round in flight's reveal note is ever read (its abort, a failed write,
        # the key holder's reply): an earlier round's would stay for the server's life,
        # one entry a round of a federation that runs 10^6 of them (review, 2026-12-06)
        self._revealed.clear()
        self._revealed_noise.clear()
        self._revealed_participants.clear()
        self._missed = set()
        self._refusals = {}
        self._writing = None
        self._refuse_after_failure()
        self._recorded_round = None
        ended = False
        try:
            result = self._round(number, participants)
            ended = True
        except (sqlite3.Error, OSError, StateError, SamplingUnrecorded, LedgerError) as exc:
            # StateError: a state write the store refused (its file deleted or replaced
            # under the server: StateLost), which went past this handler unannounced
            cause = " ".join(str(exc).split()) or type(exc).__name__
            asked = stop_behind(exc)
            if asked is not None:
                self._round_stopped_by = stop_name(asked)
                # a stop that surfaced as this error (a library took the interrupt and
                # raised its own, the interrupt in its chain or only in the process's
                # record), or a failure while a stop was recorded: the round is
                # left as a Ctrl-C here leaves it (nothing more written: the next start
                # aborts it, or rebuilds a finished round's missing ledger row), one
                # WARNING line, and the error raised unchanged and announced to nobody
                # (tests/runtime/test_round_stop_surfaced_unannounced.py)
                log.warning(
                    "round %d: the server was stopped by %s (it surfaced as %s: %s): the "
                    "next start settles the round as after a Ctrl-C here",
                    number,
                    self._round_stopped_by,
                    type(exc).__name__,
                    cause,
                )
                raise
            writing = self._writing
            # name the write that failed: a full disk at the ledger append comes after
            # the state committed the round, and "could not write its state" sent the
            # operator to the wrong file (and to doubt a round the state has); and an
            # error that came from no write (the transport's receive, an OS random
            # source) is named as such, never as a write of the state (review, 2026-12-07)
            if writing == "ledger":
                log.error(
                    "round %d: the server could not append the round's ledger row "
                    "(the state has recorded the round): %s",
                    number,
                    cause,
                )
                reason = f"ledger write failed: {cause}"
            elif writing == "state":
                log.error("round %d: the server could not write its state: %s", number, cause)
                reason = f"state write failed: {cause}"
            else:
                reason = (
                    "the server stopped on an error outside its state and ledger writes: "
                    f"{type(exc).__name__}: {cause}"
                )
                log.error("round %d: %s", number, reason)
            ledgering = writing == "ledger"
            try:
                # a LedgerError is an append refused before it wrote anything (the file
                # deleted or replaced: the path names another file now, whose rows say
                # nothing of this writer's); any other may have written the row
                held = False
                if ledgering and not isinstance(exc, LedgerError):
                    try:
                        held = self._ledger_holds(number)
                    except LedgerError as unread:
                        log.error("round %d: %s", number, unread)
                        reason += f"; {' '.join(str(unread).split())}"
                if held:
                    # the append wrote the row before it raised (a sync or a commit
                    # reported failed): the row is there, and a "missing" note would
                    # stay wrong after the restart, which rebuilds nothing
                    log.error(
                        "round %d: the ledger holds the round's row all the same (the "
                        "append wrote it before it failed)",
                        number,
                    )
                    self.store.note_ledger_written(number, reason)
                elif ledgering:
                    # the state has finished the round (it cannot be aborted now): it
                    # records that the round's ledger row is missing and why, and the
                    # restart rebuilds the row from it (_backfill_ledger), or, finding
                    # the row after all, says so (note_ledger_written)
                    self.store.note_ledger_missing(number, reason)
                else:
                    failed: dict[str, Any] = {"reason": reason}
                    if self._revealed.get(number) is not None:  # charged on restart
                        failed["revealed"] = self._revealed[number]
                    self.store.abort_round(number, failed)
            except StoreCorrupted:
                pass  # the round was finished already: a write after the ledger's failed
            except Exception as again:  # the first error is the one to raise
                log.error("round %d: its failure could not be recorded either: %s", number, again)
            # for the parties: which write, not its cause (the server's paths and disks
            # are its own; its log has the cause)
            self._stopped_on = (
                f"the server stopped on an error in round {number}: its {writing} "
                "write failed (the server's log has the cause)"
                if writing is not None
                else f"the server stopped on an error in round {number} outside its state "
                "and ledger writes (the server's log has the cause)"
            )
            if ledgering and isinstance(exc, LedgerError):
                raise LedgerError(
                    f"round {number} could not be ledgered: {cause}; its result stays in "
                    "the state, released to no branch (the next start rebuilds its ledger "
                    "row from the state, once the ledger file is in place)"
                ) from exc
            raise
        except BaseException as exc:
            # a stop (Ctrl-C's KeyboardInterrupt, a StopAsked, one that surfaced as another
            # error) or an error of no write: which, for the ServerStopped after it
            asked = stop_behind(exc)
            self._round_stopped_by = None if asked is None else stop_name(asked)
            raise
        finally:
            if not ended:  # whatever stopped the round: see _refuse_after_failure
                self._failed_round = number
                self.mechanism.stop_replays()  # queued replays are nobody's now
        self._bench_absentees(result)
        return result

    @contextmanager
    def _write(self, target: str) -> Iterator[None]:
        """Mark a write of ``target`` ("state") in progress while the block runs: an error
        it raises leaves the mark for :meth:`_run_round`, which names that write as the
        one that failed; one that ends cleanly clears it.

        Why: the mark stood at "state" for the whole round but its ledger append, so any
        OSError of the round (a transport's, an OS random source's) was reported as a
        failed state write to the log, the stored round and the parties."""
        self._writing = target
        yield
        self._writing = None

    def _ledger_holds(self, number: int) -> bool:
        """Whether the ledger, read as an auditor reads it, holds a row of round
        ``number`` (after its append raised). Raises :class:`LedgerError` (one line)
        when the ledger cannot be read now, or holds a row that is not a JSON object:
        the caller takes the row to be missing and says why; the restart reads the
        ledger again (:meth:`_backfill_ledger`, which refuses such a row).

        Why a row's shape is checked: a signed row that was a JSON list or a number
        (written with the ledger key by something other than this server) ended the
        look in an AttributeError, caught only by the last-resort handler, so the
        round's note of its failed append was never stored."""
        assert self.ledger is not None
        try:
            entries = self.ledger.committed_entries()
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise LedgerError(
                f"the ledger {self.ledger.path} could not be read again: {exc}"
            ) from None
        objects = ledger_objects(enumerate(entries, start=1), self.ledger.path)
        return any(entry.get("round") == number for entry in objects)

    def _ledger_entries(self) -> list[dict[str, Any]]:
        """The ledger's entries as the writer reads them, every one a JSON object;
        :class:`LedgerError` naming the first row that is not (:func:`ledger_objects`)."""
        assert self.ledger is not None
        return ledger_objects(enumerate(self.ledger.entries(), start=1), self.ledger.path)

    def _round(self, number: int, participants: list[str]) -> RoundResult:
        self.next_round += 1
        self._announced = False
        started = time.time()  # the ledger's wall-clock start; the line's duration is:
        self._round_began = time.monotonic()  # a wall clock stepped back made it negative
        with self._write("state"):
            self.store.begin_round(number, participants)
        self.mechanism.begin_round(participants)
        log.debug("round %d: %d participants", number, len(participants))
        if len(participants) < 2:
            return self._abort(
                number, participants, "fewer than 2 clients sampled or connected", started, {}, {}
            )
        session: ServerSession | None = None
        try:
            options = self.mechanism.round_options(len(participants))
            if self.backend.needs_identities:
                options["identities"] = self._identities(participants)
            spec = self.backend.plan(
                len(participants), self.mechanism.round_dimension(self.config.dimension), **options
            )
            session = self.backend.server(
                spec,
                noise_stddev=self.mechanism.backend_noise_stddev,
                public_seed=self._public_seed(number),
            )
            # the round's protocol id follows from its federation and number (and spec),
            # which every branch checks itself: no round id is this server's free choice,
            # and no round of one federation passes for another's with the same number
            session.bind_round(round_context(number, self.config.name))
            # the helper's requests name the federation too (read by name: a backend whose
            # helper takes it, CKKS), so a key holder of another federation refuses them
            name_federation = getattr(session, "bind_federation", None)
            if name_federation is not None:
                name_federation(self.config.name)
            result = self._drive(number, participants, session)
            report = result.report
            self._check_release_budget(len(report.contributed), len(participants))
            # record-level DP-SGD: every contributor's own report, matched by identity
            # (by count alone a dropped branch's report could stand in for one never sent)
            self.mechanism.require_reports(
                self._identity(participants[p]) for p in report.contributed
            )
            # refuses (before charging or releasing) a sum noised less than planned,
            # e.g. by a key holder that did not add the noise the mechanism asked for
            release = self.mechanism.release(
                result.total,
                contributors=len(report.contributed),
                participants=len(participants),
                noise_added=report.noise_stddev,
            )
        except SecAggError as exc:
            dropouts = session.dropouts() if session is not None else {}
            accused = self._take_accusations(session, participants)
            disputed = self._take_disputes(session, participants)
            unaccounted = self._take_unaccounted(exc, participants)
            return self._abort(
                number,
                participants,
                str(exc),
                started,
                {},
                dropouts,
                accused,
                None,
                disputed,
                unaccounted,
            )
        accused = self._take_accusations(session, participants)
        disputed = self._take_disputes(session, participants)
        model, moments = self._updated(release.mean)
        if not np.isfinite(model).all() or not moments.finite():
            bad = int(np.count_nonzero(~np.isfinite(model)))
            knobs = (
                "server_adam_tau" if self.config.server_optimizer == "adam" else "server_momentum"
            )
            what = (
                f"the updated model has {bad} non-finite parameters (inf or nan)"
                if bad
                else "the server optimizer's moments are not finite (inf or nan)"
            )
            reason = (
                f"{what}: the previous model is kept; check federation.server_learning_rate "
                f"and {knobs}"
            )
            return self._abort(
                number,
                participants,
                reason,
                started,
                {},
                report.dropouts,
                accused,
                release,
                disputed,
            )
        names = tuple(participants[p] for p in report.contributed)
        stored = {"contributed": list(names), "epsilon": release.epsilon, **release.store}
        if accused:
            stored["accused"] = accused
        if disputed:
            stored["disputed"] = disputed
        with self._write("state"):
            self.store.complete_round(number, stored, model)
        outcome = RoundResult(number, "complete", tuple(participants), names, None, release.epsilon)
        backend = {"name": report.backend, **report.details}
        if report.noise_stddev > 0:  # what the backend (the CKKS key holder) actually added
            backend["noise_stddev_added"] = report.noise_stddev
        digest = hashlib.sha256(model_bytes(model)).hexdigest()
        self._record(outcome, started, backend, report.dropouts, stored, model_digest=digest)
        # adopted only once the state and the ledger both hold the round: a write that
        # failed left the server holding the model of a round with no ledger row (or one
        # its state records aborted), which a caller running it again released in the
        # next round's start (review, 2026-12-07)
        self.model = model
        self._velocity, self._second, self._steps = moments
        self._log_round(outcome, started, report.dropouts)
        self._broadcast(participants, RoundEnd(number, True))
        return outcome

    def _log_round(self, result: RoundResult, started: float, dropouts: dict[str, int]) -> None:
        """The round's one line: INFO when complete, WARNING when aborted (for operators:
        ``secagg server`` shows it by default)."""
        if result.status == "complete" or result.epsilon is not None:
            # what the ledger claims: the server's own epsilon, or under record-level
            # DP (each branch accounts its DP-SGD) the worst branch's reported one; an
            # aborted round whose sum the server may have seen is charged too, and its
            # line says so (it read "epsilon -", the figure of complete rounds only)
            claim = self.mechanism.ledger_claim(result.epsilon)
            if claim is not None:
                self._epsilon_now = claim
        lost = ", ".join(f"{phase} {count}" for phase, count in dropouts.items() if count)
        eps = "-" if self._epsilon_now is None else shown(self._epsilon_now, 4, significant=True)
        if self._epsilon_now is not None and self.mechanism.unit == "record":
            eps += " (per record, worst branch)"
        facts = (
            f"{len(result.contributed)}/{len(result.participants)} contributed, "
            f"dropouts: {lost or 'none'}, epsilon {eps}, "
            f"{time.monotonic() - self._round_began:.2f} s"
        )
        flooded = {n: c for n, c in self._refusals.items() if c > LOGGED_REFUSALS}
        if flooded:
            facts += ", refused messages: " + ", ".join(
                f"{n} {c}" for n, c in sorted(flooded.items())
            )
        if result.status == "complete":
            log.info("round %d complete: %s", result.number, facts)
        else:
            log.warning("round %d aborted (%s): %s", result.number, result.reason, facts)

    def _abort(
        self,
        number: int,
        participants: list[str],
        reason: str,
        started: float,
        backend: dict[str, Any],
        dropouts: dict[str, int],
        accused: dict[str, list[str]] | None = None,
        released: Release | None = None,
        disputed: dict[str, list[str]] | None = None,
        unaccounted: dict[str, str] | None = None,
    ) -> RoundResult:
        """Record the round aborted. ``released``: the mechanism released it (and charged
        its accountant) before the round failed: the charge is kept, as for a sum revealed.
        ``unaccounted``: contributors excluded for it (:meth:`_take_unaccounted`)."""
        report: dict[str, Any] = {"reason": reason, **({"accused": accused} if accused else {})}
        if disputed:
            report["disputed"] = disputed
        if unaccounted:
            report["unaccounted"] = unaccounted
        charge = self._revealed.get(number)
        if released is not None and (released.epsilon is not None or released.store):
            charge = {"epsilon": released.epsilon, **released.store}
        if charge is not None:
            # the unmasking requests had left: the server may have seen the noised sum,
            # which is the release; charged as a restart would charge it (review: an
            # abort in the same process dropped the note, and the charge with it)
            report["revealed"] = charge
        with self._write("state"):
            self.store.abort_round(number, report)
        epsilon = None
        if charge is not None:
            if released is None:  # a release has charged the accountant already
                self.mechanism.restore(charge)
            epsilon = charge.get("epsilon")
        result = RoundResult(number, "aborted", tuple(participants), (), reason, epsilon)
        self._record(
            result, started, backend, dropouts, charge or {}, sum_revealed=charge is not None
        )
        self._log_round(result, started, dropouts)
        if self._announced:
            # a round aborted before its start went out (a cohort of one, a plan refused)
            # was never theirs: its end was refused by the branch sampled alone ("the end
            # of round 2, but this branch's round is 1") and counted as a refused message
            self._broadcast(participants, RoundEnd(number, False, reason))
        return result

    # --- one round's conversation -----------------------------------------------

    def _drive(
        self, number: int, participants: list[str], session: ServerSession
    ) -> AggregationResult:
        """Relay between the session and the parties until it is done (the one collect loop)."""
        cfg = self.config
        names = dict(enumerate(participants))
        if cfg.backend.key_holder is not None:
            names[HELPER] = cfg.backend.key_holder
        party_of = {name: party for party, name in names.items()}
        round_end = self._round_end = self._clock() + cfg.deadlines.round_seconds
        self._replay_allowance = self.mechanism.replay_seconds(
            len(participants) + self.mechanism.replay_backlog()
        )
        self._left, self._unreached = set(), set()
        self._report_refused, self._report_checked = set(), set()  # _check_report_on_arrival
        # each party's session as the round starts: a later one means it has gone (D6);
        # a participant's is taken again as its round start leaves (_dispatch), the
        # helper's as each request leaves (_deliver_to_helper)
        self._round_sessions, self._round_session_ids = {}, {}
        connected = self.transport.connected()  # one look for all: see _sessions_now
        for name in names.values():
            self._round_sessions[name], self._round_session_ids[name] = self._sessions_now(
                name, connected
            )
        self._cohorts[number] = frozenset(names.values())
        for past in sorted(self._cohorts)[:-LATE_ROUNDS_REMEMBERED]:
            del self._cohorts[past]
            self._answered_all.pop(past, None)
        self._answered_late = {seen for seen in self._answered_late if seen[0] in self._cohorts}
        self._refusals = {}
        self._helper_unreached = None
        self._helper_request, self._helper_resent = None, False
        self._reveal_unsent = False  # see _hold_at_budget
        # the cohort is not told it is not sampled, but for a participant its start could
        # not be sent to (taken out of both sets by _dispatch as the start goes out)
        self._told_or_sampled, self._start_unsent = set(participants), set()
        self._told_moved = set()  # participants told on a new session (_tell_unsampled)
        # the phase that follows the announcement includes local training: its deadline
        training = self._dispatch(number, participants, session.start())
        self._tell_unsampled(number)
        next_look = self._clock() + UNSAMPLED_LOOK_SECONDS
        phase, last_progress = session.phase, self._clock()
        awaited = _Awaited(self, session, names)
        # reads left before the phase closes once its deadline was seen with messages
        # still queued (None: not seen yet in this phase; see below)
        backlog: int | None = None
        while not session.done:
            # a stop a library swallowed (in a receive, a session's handling): the round
            # is left running in the state, as a Ctrl-C here leaves it (aborted at the
            # next start); nothing more of it is sent
            raise_if_stop_asked()
            if self._clock() >= next_look:  # a client that connected since is told too
                self._tell_unsampled(number)
                next_look = self._clock() + UNSAMPLED_LOOK_SECONDS
            if self._helper_unreached is not None:
                # the helper never got the phase's request: nothing can come of waiting
                helper = cfg.backend.key_holder
                reason = (
                    f"could not send to the key holder {helper} in phase {session.phase}: "
                    f"{self._helper_unreached}"
                )
                self._dispatch(number, participants, session.abort(reason))
                break
            now = self._clock()
            if now > round_end:
                self._missed |= {names[p] for p in session.waiting_for if p in names}
                self._dispatch(number, participants, session.abort("round deadline passed"))
                break
            limit = cfg.deadlines.first_phase_seconds if training else cfg.deadlines.phase_seconds
            wait = max(0.0, last_progress + limit - now)
            # everyone still awaited gone (a session's end seen while others were still
            # to answer): only what has arrived is taken, and the phase closes below
            if awaited.none_can_answer():
                wait = 0.0
            item = self.transport.receive(timeout=min(wait, POLL_SECONDS))
            outgoing = None if item is None else self._receive(number, session, party_of, *item)
            if outgoing is not None and item is not None:
                awaited.answered(item[0])
            if backlog is not None:  # one read of the backlog: a message, or an end (None)
                backlog -= 1
            if outgoing is None:
                # nothing came, or what came was refused (or a Leave): the phase's deadline
                # and the early close are checked here either way, so a stream of junk,
                # which keeps the queue from ever running dry, cannot hold a phase open
                # past its deadline (runtime audit 2026-12-04)
                if self._clock() - last_progress >= limit:
                    if backlog is None:
                        # seen at a refused message, or at a None that was a session's
                        # end with messages queued behind it (an empty wait finds none
                        # queued and closes at once): the answers queued arrived before
                        # the deadline was seen (a busy server had not read them yet)
                        # and are read first, then the phase closes. Closed at once, one
                        # branch's junk sent behind its own answer made every answer
                        # queued after it a dropout, and the round could abort below its
                        # threshold (runtime review, 2026-12-07); so did a branch that
                        # answered and hung up, its end read as a None (second review,
                        # 2026-12-07). Bounded: one read each, of what was queued at the
                        # look (a session's end counts where the transport queues one);
                        # what came after it waits its turn
                        backlog = self._queued()
                    if backlog > 0:
                        continue
                    log.debug("round %d: deadline of %s passed", number, session.phase)
                elif awaited.someone_can_answer():
                    # a look since the last departure found a party that can still
                    # answer: no early close, and no O(n) look (the silent set, who is
                    # connected) for each refused message of a junk stream (second
                    # review of the collect loop, 2026-12-07: 1.8 ms a message at 5 000
                    # branches, for messages that cost microseconds to refuse)
                    continue
                elif (silent := {names[p] for p in session.waiting_for if p in names}) and all(
                    self._gone(name) for name in silent
                ):
                    if (
                        cfg.backend.key_holder in silent
                        and cfg.backend.key_holder not in self._left
                    ):
                        restarted = self._helper_restarted(number, session.phase)
                        if restarted is None:
                            continue  # resent to its new session, or waiting for one
                        self._dispatch(number, participants, session.abort(restarted))
                        break
                    log.debug("round %d: everyone silent in %s has gone", number, session.phase)
                else:
                    continue
                self._missed |= {names[p] for p in session.waiting_for if p in names}
                outgoing = session.close_phase()
            # a stop swallowed while a message was handled (the protocol's checks and
            # sums, in numpy's and the crypto's C calls): nothing it moved the round to
            # leaves (the next phase's requests, the key holder's decryption request);
            # the round stays running in the state, as for a stop raised there
            raise_if_stop_asked()
            outgoing = self._hold_at_budget(number, session, participants, outgoing)
            announced = self._dispatch(number, participants, outgoing)
            if session.phase != phase or announced:
                training = announced or (training and session.phase == phase)
                phase, last_progress = session.phase, self._clock()
                backlog = None
        if self._reveal_unsent and self._revealed.get(number) is not None:
            # no request that reveals the sum reached the helper (every send of it was
            # refused by the transport, which carried nothing of it: its size, a session
            # that ended; or it never came back to be sent it) and it sent nothing: no
            # decryption ran, nothing was released. Before (review, 2026-12-07) the round
            # was ledgered sum_revealed at the planned epsilon, charged to every branch
            log.info(
                "round %d: the request that reveals the sum never reached the key holder "
                "%s: nothing was revealed, not charged",
                number,
                cfg.backend.key_holder,
            )
            self._revealed[number] = None
        self._reveal_unsent = False
        # a reply read on a path that left the loop without _hold_at_budget (a round
        # deadline after a refused reply): its charge is set right before the round is
        # stored, as after any other message
        self._charge_after_reply(number, session)
        self._helper_request = None  # the round is over: nothing of it is resent
        if session.phase == "complete":
            self._note_answered_all(number, names)
        return session.finish()

    def _note_answered_all(self, number: int, names: dict[int, str]) -> None:
        """Remember who answered every phase of round ``number``, which completed: its
        parties but those a phase closed without (:attr:`_missed`), and but a helper its
        request was resent to (the key holder repeats a reply its broken session may
        have delivered too: an honest second copy). A later payload of the round from one
        of them is no late answer (:meth:`_late`).

        Why: an honest party sends one payload a phase and none after the last; every
        payload of a past round from one of its parties was logged at INFO as "a late
        payload ... whose phase has closed without it (a slow branch or link)", so a
        branch that sent its last answer twice (a replay) looked like a slow link, though
        its phase had closed *with* it (runtime review, 2026-12-07). Only a completed
        round: an abort inside a phase leaves parties still awaited, whose answers are
        late and are not among :attr:`_missed`."""
        answered = set(names.values()) - self._missed
        if self._helper_resent:
            answered.discard(self.config.backend.key_holder)
        self._answered_all[number] = frozenset(answered)

    def _tell_unsampled(self, number: int) -> None:
        """Tell every connected client the sampling left out of round ``number`` that the
        round runs without it, and for how long at most (:class:`NotSampled`).

        Why: a branch waits for the server between rounds for its idle timer only
        (``secagg client --idle``), and one left out heard nothing while the rounds went
        on without it; with ``sampling.rate`` 0.1 and rounds of minutes, a branch out of a
        few rounds in a row gave up (``BranchGaveUp``) while still eligible, and the
        federation lost its branches one by one. The notice names the round, the
        federation and the round's deadline (what every round start names), never the
        cohort. A benched, excluded or budget-spent branch is told too: it is connected
        and waits for the federation's end like any other. A send that fails is that
        branch's (:meth:`_send`), never the round's. Sent after the round's first events,
        so the cohort's training does not wait for it.

        Called again inside the round every :data:`UNSAMPLED_LOOK_SECONDS`: a client that
        connects in the middle of the round is told too (it heard nothing and waited on
        its idle timer alone, which a long round outlasts). Each client once a round, by
        name: one told keeps the deadline across a reconnect, and would refuse the same
        round's notice again as a replay.

        And a participant back on a new session inside the round (once a round): gone from
        the round, it is sent nothing of it there (:meth:`_send`), and, never told either,
        a branch *process* back inside its round (killed between two phases, restarted)
        knew neither that the round runs without it nor for how long, and waited on its
        idle timer alone (review, 2026-12-06). A branch that lost that very round takes
        the notice as the round's deadline (:meth:`FederationClient._not_sampled
        <secagg.runtime.client.FederationClient._not_sampled>`)."""
        connected = self.transport.connected()
        untold = (connected - self._told_or_sampled) & self._client_names
        # a participant back on a new session inside the round: gone from the round, and
        # sent nothing of it there (_send), so told it runs without it, once a round. Only
        # once the round is announced: before, its start goes to the new session (_dispatch)
        moved = {
            name
            for name in self._round_session_ids.keys() & connected & self._client_names
            if self._announced and name not in self._told_moved and self._on_another_session(name)
        }
        self._told_moved |= moved
        untold |= moved
        if not untold:
            return
        notice = NotSampled(number, self._told_deadline(), federation=self.config.name)
        for name in sorted(untold):
            self._told_or_sampled.add(name)
            if name in self._start_unsent:
                # told, as the sampling's left-out clients are, by name: the branch keeps
                # the deadline across a reconnect, and refused a second notice of the
                # round on its next session as a replay (review, 2026-12-06)
                self._told_moved.add(name)
            self._send(name, notice)

    def _told_deadline(self) -> float:
        """How long the round in flight may still last, as every round start and notice
        tells it: its phases' deadline from now, plus the allowance for the replays of its
        DP-SGD reports (:meth:`Mechanism.replay_seconds` of its cohort, and of the
        restored reports not replayed yet), which its end waits for after the phases,
        before it is told to anyone.

        Why the allowance: a branch waits for the round's end that long (plus
        ROUND_GRACE_SECONDS) or its idle timer past its last payload, and a round that
        used its deadline had its replays (up to seconds a report: 50 PRV branches
        about 50 s) outlast both; each branch gave up "past the round deadline" while
        the server was at work, and left the federation (tests/runtime/
        test_record_replay_waits.py). A left-out branch waits for the next round's start,
        which follows the replays too."""
        left = max(0.0, self._round_end - self._clock()) + self._replay_allowance
        return min(left, MAX_DEADLINE_SECONDS)

    def _session_of(self, name: str) -> object:
        """``name``'s current session: the transport's session id where it has one
        (a reconnect is a new id), else whether it is connected; None when it is not."""
        if name not in self.transport.connected():
            return None
        session_id = getattr(self.transport, "session_id", None)
        return session_id(name) if session_id is not None else True

    def _sessions_now(self, name: str, connected: set[str] | None = None) -> tuple[object, object]:
        """``(_session_of(name), _session_id(name))`` from one look at the session id, taken
        before the look at who is connected: what the early-close rule compares with and
        the id a round's messages are bound to (:meth:`_send`) name the same session.

        Why: taken by two looks, a reconnect between them made the first the old session
        and the second the new one; the round start went to the new session, which took
        the round, while the early-close rule counted the branch gone and closed the phase
        without it (review, 2026-12-06). With the id first, a reconnect after it leaves
        both on the old session (the start is refused there: a dropout), one before it
        both on the new one.

        ``connected``: the transport's :meth:`connected`, looked at once before a loop
        over a round's parties, and trusted only where it names ``name`` (a snapshot
        taken before the id: a reconnect between the two leaves both on the new session,
        one after the id both on the old one, as above); a party it does not name is
        looked at again now, so one that connected since the snapshot is not taken for
        gone. Why: a look copies the connected set, O(n), and taken for every party it
        made each round start O(n^2): 3.6 s at 5 000 branches of the in-process hub, twice
        a round (second review of the collect loop, 2026-12-07)."""
        session_id = getattr(self.transport, "session_id", None)
        now = None if session_id is None else session_id(name)
        if session_id is not None and now is None:
            return None, None
        present = (connected is not None and name in connected) or (
            name in self.transport.connected()
        )
        if session_id is None:
            return (True if present else None), None
        return (now, now) if present else (None, now)

    def _session_id(self, name: str) -> object:
        """``name``'s open session id as the transport tells it (None: no open session, or
        a transport that tells no session ids), whether or not :meth:`_session_of` counts
        it connected (the simulator's network keeps a vanished branch's session open)."""
        session_id = getattr(self.transport, "session_id", None)
        return None if session_id is None else session_id(name)

    def _on_another_session(self, name: str) -> bool:
        """Whether ``name``, a party of the round in flight, is now on an open session
        other than the one that took the round (it reconnected since): nothing of the
        round is for that session (see :meth:`_send`)."""
        if name not in self._round_session_ids:
            return False
        now = self._session_id(name)
        return now is not None and now != self._round_session_ids[name]

    def _gone(self, name: str, connected: set[str] | None = None) -> bool:
        """Whether a party of the round in flight can no longer answer in it: its
        session at the round start has ended (even if it is back on a new one), or it
        said it left the round, or a message of the round could not be sent to it.
        ``connected``: the transport's :meth:`connected`, looked at once for many parties
        (:class:`_Awaited`); by default looked at now."""
        if name in self._left or name in self._unreached:
            return True
        if connected is None:
            now = self._session_of(name)
        elif name not in connected:
            now = None
        else:
            session_id = getattr(self.transport, "session_id", None)
            now = session_id(name) if session_id is not None else True
        return now is None or now != self._round_sessions.get(name)

    def _queued(self) -> int:
        """How many messages wait in the transport's inbox now (its ``queued``), or 0
        for a transport that cannot say: the phase then closes at its deadline as soon
        as a refused message is read, as before."""
        queued = getattr(self.transport, "queued", None)
        return 0 if queued is None else int(queued())

    def _departures(self) -> object:
        """A mark that changes whenever a party of the round in flight may have gone: a
        leave, a failed send, or a session opened or ended (the transport's count of
        those, ``wait_for_sessions``); a fresh object, equal to no earlier mark, for a
        transport that counts none (every look is then taken)."""
        count = getattr(self.transport, "wait_for_sessions", None)
        if count is None:
            return object()
        return (len(self._left), len(self._unreached), count(None, 0.0))

    def _hold_at_budget(
        self,
        number: int,
        session: ServerSession,
        participants: list[str],
        outgoing: list[Outgoing],
    ) -> list[Outgoing]:
        """Abort instead of revealing a sum whose epsilon would cross ``dp.epsilon_budget``,
        or one with no honest noise share at all (``Mechanism.reveal_refusal``: epsilon
        infinite, refused whatever the budget).

        With distributed DP the sum the server unmasks is the release itself, so the
        check comes before the unmasking requests leave (the masked inputs alone reveal
        nothing): the round is aborted, nothing is learned, nothing is charged. So with
        central DP whose noise the CKKS key holder adds: before the decryption request.
        The run stops with it only if a round of every client with every contribution
        would cross the budget too (:meth:`_reveal_past_budget`)."""
        self._charge_after_reply(number, session)
        count = session.contributors_before_reveal()
        if count is None or session.done:
            return outgoing
        refusal = self.mechanism.reveal_refusal(contributors=count, participants=len(participants))
        if refusal is not None:  # a sum with no honest noise share: never revealed
            return session.abort(refusal)
        after = self._epsilon_past_budget(count, len(participants))
        if after is None:
            first = number not in self._revealed
            self._note_reveal(
                number, count, len(participants), noise_added=session.noise_at_reveal()
            )
            if first and self._revealed.get(number) is not None:
                # a sum only the helper's reply reveals (every request that reveals it goes
                # to the helper) stays unrevealed until a request may have reached it or
                # it answered: a round that ends before is not charged (end of _drive)
                self._reveal_unsent = bool(outgoing) and all(
                    not isinstance(event, Announce) and event.party == HELPER for event in outgoing
                )
            return outgoing
        return session.abort(self._reveal_past_budget(number, count, len(participants), after))

    def _reveal_past_budget(
        self, number: int, contributors: int, participants: int, after: float
    ) -> str:
        """Why round ``number``, whose sum of ``contributors`` would take epsilon to
        ``after``, above ``dp.epsilon_budget``, is aborted unrevealed and uncharged; and
        whether the run stops with it (:attr:`budget_reached`).

        A round that crosses only because it is short of the design's best round is that
        round's shortfall, not the budget's end: short of contributions (dropouts before
        their masked inputs: fewer honest noise shares than the cohort planned), or of
        clients (a cohort drawn without some: one benched, disconnected at the draw, or
        left out by the sampling). If a round of every client with every share would
        still fit (what :meth:`_budget_spent` asks before each draw), the run goes on,
        and a run of such rounds ends at ``max_consecutive_aborts``. Only a round that
        would cross even at the design's best stops the run. Why: the one short round
        stopped a whole distributed-DP federation although its later rounds with every
        share fitted (review of the budget path, 2026-12-07); and so, until the second
        review of it that day, did a round whose cohort lacked one branch absent at the
        draw (7 of 8 clients, every share in: the same epsilon as 7 of 8 shares, which
        went on), so that one branch, benched or reconnecting, could stop the server.
        Nothing is learned either way: no unmasking request has left, and the masked
        inputs alone reveal nothing. The reason says "not the budget's end", not that the
        run goes on: the same round may be its last for another cause (``max_attempts``,
        ``max_consecutive_aborts``), and its ledger row said "the run goes on" all the
        same (second review, 2026-12-07)."""
        budget = self._budget
        assert budget is not None
        at_least = shown(after, 4, significant=True, lower=True)
        clients = self._drawable()
        largest = self._largest_round(clients)
        # the design's best round, as the draw's check asks it (participants None); the
        # claim so far is in it, so a claim above a lowered budget still stops the run
        best_fits = self._epsilon_past_budget(largest, None) is None
        if contributors < largest and best_fits:
            cohort = (
                f" (a cohort of {participants} of the {len(clients)} clients)"
                if participants < largest
                else ""
            )
            best = "every client" if largest == len(clients) else f"{largest} clients"
            reason = (
                f"epsilon budget {budget:g}: revealing this round's sum of {contributors} of "
                f"{participants} contributions{cohort} would bring epsilon to at least "
                f"{at_least}; aborted unrevealed and uncharged, not the budget's end (a round "
                f"of {best} with every contribution fits)"
            )
            log.warning("round %d: %s", number, reason)
            return reason
        self.budget_reached = (
            f"epsilon budget {budget:g}: revealing this round's sum would bring epsilon to "
            f"at least {at_least}; stopped before it"
        )
        return self.budget_reached

    def _note_reveal(
        self, number: int, contributors: int, participants: int, *, noise_added: float = 0.0
    ) -> None:
        """Keep the charge of a round whose sum the server is about to see, once, before
        the requests that reveal it leave: with distributed DP, or central DP whose noise
        the backend adds (``noise_added``: the CKKS key holder's), that sight is the
        release, so a server that dies before releasing is still charged on restart (DP
        and network audits, 2026-12-03: such a round was recorded "aborted" and never
        charged although its noised sum had been unmasked; worktree 165: the same for a
        CKKS round whose decrypted sum had reached the server)."""
        if number in self._revealed:
            return
        charge = self.mechanism.charge_at_reveal(
            contributors=contributors, participants=participants, noise_added=noise_added
        )
        if charge is not None:
            with self._write("state"):
                self.store.note_reveal(number, charge)
        self._revealed[number] = charge
        self._revealed_noise[number] = noise_added
        self._revealed_participants[number] = participants

    def _charge_after_reply(self, number: int, session: ServerSession) -> None:
        """Keep the charge noted before the reveal (:meth:`_note_reveal`) true to the reply:
        drop it when the party that was to reveal the sum refused to, and charge again, at
        the noise that ran, a round whose sum the backend revealed with less noise than
        its charge was noted at.

        A refusal (``session.reveal_refused()``: the CKKS key holder's refusal reply, all
        it sent to the round's one decryption request) released nothing, so the round
        aborts uncharged: the note is replaced when the round is stored aborted (a crash
        before that charges it on restart, the safe side). Until 2026-12-06 such a round
        was ledgered ``sum_revealed`` at the planned epsilon.

        The order: the charge is noted at the planned noise before the decryption request
        leaves (so that a crash after the reply is charged), and the key holder's reply
        is checked only when it is back. A reply reporting less noise than planned is
        refused by the session and the round aborts, but its sum has reached the server,
        so the key holder has released it: the aborted round is charged, at the noise
        multiplier the reply reports (``noise / clip``; none vouched for: epsilon
        infinite), never at the plan's. Called after every message the round takes, so
        the note is replaced (``store.note_reveal``) before the round is stored aborted,
        and its ledger row, a restart and ``audit verify`` all replay what ran.

        Why: the abort kept the planned charge, so the ledger row of a sum the server saw
        under about 10⁻⁶ of noise claimed the epsilon of the planned 1.0 (review of
        2026-12-06). A key holder that reports more noise than it added is not caught:
        its report is all the server can know of its noise. The re-noted charge of a reply
        is written before the session reads it (:meth:`_charge_before_reading`), so here
        it is already done; this call keeps the refusal's case and any noise the session
        settles on that the reply's first bytes did not say."""
        noted = self._revealed_noise.get(number)
        if noted is None or self._revealed.get(number) is None:
            return
        if session.reveal_refused():
            log.info("round %d: the sum was never revealed (refused): not charged", number)
            self._revealed[number] = None
            return
        self._recharge(number, session.noise_at_reveal())

    def _charge_before_reading(
        self, number: int, session: ServerSession, party: int, payload: object
    ) -> None:
        """Make durable, before the session reads ``payload``, the charge of the sum it
        would reveal at the noise it reports (``session.noise_of_reply``), when that is
        below the noise the round's charge was noted at.

        Why here and not only after the reply is handled (:meth:`_charge_after_reply`):
        the re-noted charge was written after the session had read the key holder's
        under-noised sum, so a server that died in between restarted charged at the
        planned epsilon, below what ran (review of 2026-12-06). Now nothing of the server
        reads such a reply before its charge is on disk: a crash before the write is a
        crash before any of the server's code saw the sum (the charge stays the plan's,
        for a reply only the transport's buffer held), one after it is charged at the
        reported noise. A reply that vouches for no noise (a std that is NaN, infinite,
        negative or missing: ``noise_of_reply`` 0.0) is charged as no noise, epsilon
        infinite: the key holder has decrypted the round and the reply may carry the sum
        whatever else is wrong with it, and its report is all the server knows of the
        noise. A reply the key holder sends in the normal course (at least the planned
        noise) writes nothing here."""
        noise = session.noise_of_reply(party, payload)
        if noise is None or self._revealed.get(number) is None:
            return
        self._recharge(number, noise, read=False)

    def _recharge(self, number: int, carried: float, *, read: bool = True) -> None:
        """Charge again round ``number``, whose charge was noted before its reveal, at the
        backend noise std ``carried`` if that is below the noise the note assumed: the
        charge written to the store before it is kept in memory.

        ``read``: whether the session has read the sum already (after the reply), or the
        charge is written before it does (:meth:`_charge_before_reading`); the log line
        says which. Why: it said the sum "reached the server" in both cases, although a
        charge made before reading is made precisely so that none of the server's code
        has seen the sum yet (review, 2026-12-06)."""
        noted = self._revealed_noise.get(number)
        if noted is None or not carried < noted:
            return
        charge = self.mechanism.charge_at_short_reveal(
            participants=self._revealed_participants[number], noise_added=carried
        )
        if charge is None:
            return
        if read:
            what = "the key holder's sum reached the server with noise std %g"
            how = "charged at that noise"
        else:
            what = "the key holder's reply reports noise std %g"
            how = "charged at that noise before the server reads the sum"
        log.warning(
            "round %d: " + what + ", below the %g its charge assumed: " + how + " (epsilon %s)",
            number,
            carried,
            noted,
            shown(charge["epsilon"], 4, significant=True),
        )
        with self._write("state"):
            self.store.note_reveal(number, charge)
        self._revealed[number] = charge
        self._revealed_noise[number] = carried

    def _budget_spent(self) -> bool:
        """Whether ``dp.epsilon_budget`` leaves no round to run: fewer than two clients
        can take one more without the claim crossing it. Who cannot sits out the draws
        (:meth:`sample`); with a mechanism that charges every client every round that
        is all of them or none.

        Only the clients a draw may still take count (:meth:`_drawable`): an excluded
        branch is in no later round, so a round "of every client" that needs it is no
        round to run. Why: with one branch excluded (accused; the state keeps it), the
        best case of all 8 fitted while no cohort of the 7 left could, so the server
        drew round after round, each run to its reveal and aborted there, until
        ``max_consecutive_aborts`` ("5 rounds aborted in a row", each charged by every
        branch that keeps its own budget) instead of stopping at the budget before the
        draw (second review of the budget path, 2026-12-07)."""
        if self._budget is None:
            return False
        clients = self._drawable()
        largest = self._largest_round(clients)
        able = self.mechanism.within_budget(clients, self._budget, round_size=largest)
        self._at_budget = set(clients) - set(able)
        if len(able) >= QUORUM:
            if self._at_budget:
                log.info(
                    "%d of %d clients sit out: one more round would take their epsilon "
                    "above dp.epsilon_budget %g",
                    len(self._at_budget),
                    len(clients),
                    self._budget,
                )
            return False
        after = self.mechanism.epsilon_after_next(contributors=largest, participants=None)
        if not able and after is not None:
            self.budget_reached = (
                f"epsilon budget {self._budget:g}: one more round would bring epsilon to at "
                f"least {shown(after, 4, significant=True, lower=True)}; stopped before it"
            )
        else:
            left_out = len(self.config.clients) - len(clients)
            excluded = f" ({left_out} more excluded from rounds)" if left_out else ""
            self.budget_reached = (
                f"epsilon budget {self._budget:g}: {len(able)} of {len(clients)} clients"
                f"{excluded} can take one more round without their epsilon crossing it, "
                "fewer than a round needs; stopped"
            )
        return True

    def _largest_round(self, clients: list[str]) -> int:
        """The most of ``clients`` (:meth:`_drawable`) one round can hold: all of them,
        but no more than ``sampling.count`` under fixed sampling
        (:attr:`~secagg.runtime.config.FederationConfig.largest_round`), whose draw takes
        that many at most. The best case of one more round is a round of this many with
        every share (:meth:`_budget_spent`, :meth:`_reveal_past_budget`).

        Why: the best case was a round of every client, which a fixed-count run never
        draws. With 8 branches drawn 4 at a time and a budget a round of 8 fits and no
        round of 4 does, the server drew rounds of 4, ran each to its reveal and aborted
        it there as "not the budget's end (a round of every client with every
        contribution fits)" until ``max_consecutive_aborts``, each charged by every
        branch that keeps its own budget, instead of stopping at the budget before the
        draw (tests/runtime/test_budget_fixed_count.py)."""
        return min(len(clients), self.config.largest_round)

    def _drawable(self) -> list[str]:
        """The clients a later draw may take: the configured ones but those excluded
        from rounds for good (:meth:`excluded`: accused, or unaccounted for, which the
        state keeps across restarts). A benched branch, one disconnected now or one
        at its own budget is in: it may be drawn again."""
        excluded = self.excluded()
        return [name for name in self.config.clients if name not in excluded]

    def _epsilon_past_budget(self, contributors: int, participants: int | None) -> float | None:
        """The epsilon one more round of ``contributors`` (of ``participants``) would
        bring, when that is above ``dp.epsilon_budget``; None when it is within it, or
        there is no budget, or this server accounts nothing. Nothing is charged."""
        if self._budget is None:
            return None
        after = self.mechanism.epsilon_after_next(
            contributors=contributors, participants=participants
        )
        if after is None or after <= self._budget:
            return None
        return after

    def _crosses_budget(self, contributors: int, participants: int | None, what: str) -> bool:
        """Whether ``what`` (one more round of ``contributors``) would take epsilon above
        ``dp.epsilon_budget``; if so, :attr:`budget_reached` says so and the run stops."""
        after = self._epsilon_past_budget(contributors, participants)
        if after is None:
            return False
        self.budget_reached = (
            f"epsilon budget {self._budget:g}: {what} would bring epsilon to at least "
            f"{shown(after, 4, significant=True, lower=True)}; stopped before it"
        )
        return True

    def _check_release_budget(self, contributors: int, participants: int) -> None:
        """Central DP: refuse to release a round that would cross the budget (the server
        holds the sum, as the central model trusts it to; nothing leaves, nothing is
        charged)."""
        if self._crosses_budget(contributors, participants, "releasing this round"):
            assert self.budget_reached is not None
            raise BudgetExhausted(self.budget_reached)

    def _receive(
        self,
        number: int,
        session: ServerSession,
        party_of: dict[str, int],
        name: str,
        payload: bytes,
    ) -> list[Outgoing] | None:
        try:
            message: Any = decode_message(payload)
        except SecAggError as exc:
            message = exc  # refused below, after it is counted
        if isinstance(message, Leave):  # a late one (of a past round) changes nothing
            if message.round == number and name in party_of and name not in self._left:
                self._left.add(name)
                # INFO, not DEBUG: a branch that refused the round by its policy (a
                # threshold, a clip, another federation) is what its operator must see.
                # The reason is the branch's text: quoted, so it stays one line.
                log.info("round %d: %s left the round: %r", number, name, message.reason)
            return None
        self.received_from[name] += 1  # a Leave carries nothing of an update: not counted
        if isinstance(message, Relay) and message.round == number and name in party_of:
            # durable before the session reads a reply that reveals the sum under less
            # noise than the round's charge assumed; outside the refusal handlers below: a
            # store that cannot write stops the round, as for the charge's first note
            self._charge_before_reading(number, session, party_of[name], message.payload)
            if party_of[name] == HELPER:  # it answered: whatever it sent may reveal the sum
                self._reveal_unsent = False
        try:
            if isinstance(message, SecAggError):
                raise message
            if not isinstance(message, Relay) or message.round != number:
                raise ProtocolError(f"expected a payload of round {number}")
            if name not in party_of:
                raise ProtocolError(f"{name} is not a party of this round")
            if name in self._report_refused:
                raise ProtocolError(
                    f"{name}'s DP-SGD report was refused this round: it is a dropout of it"
                )
            if message.privacy is not None and party_of[name] != HELPER:
                self._check_report_on_arrival(number, name, message.privacy)
            outgoing = session.handle(party_of[name], message.payload)
        except SecAggError as exc:
            self.refused_messages += 1
            party = party_of.get(name)
            if self._late(number, name, message, exc, session, party):
                if self._log_refusal(number, name):
                    log.info(
                        "round %d: a late payload from %s of round %d, whose phase has "
                        "closed without it (a slow branch or link): dropped",
                        number,
                        name,
                        message.round,
                    )
                return None
            if self._log_refusal(number, name):
                ahead = self._phase_not_passed(number, name, message, exc, session, party)
                if ahead is not None:
                    log.warning(
                        "round %d: refused a message from %s, out of phase: a payload of "
                        "phase %s while the round is in %s, from a party the round dropped, "
                        "which is sent nothing after it (%s): %s",
                        number,
                        name,
                        ahead,
                        session.phase,
                        type(exc).__name__,
                        exc,
                    )
                elif self._out_of_phase_after_late(number, name, message, exc):
                    log.warning(
                        "round %d: refused a message from %s, out of phase: it has answered "
                        "the phase it missed late already, and a party dropped is sent "
                        "nothing after it (%s): %s",
                        number,
                        name,
                        type(exc).__name__,
                        exc,
                    )
                else:
                    log.warning(
                        "round %d: refused a message from %s (%s): %s",
                        number,
                        name,
                        type(exc).__name__,
                        exc,
                    )
            return None
        except Exception as exc:  # no branch's bytes may stop the server
            raise_stop_within(exc)  # a Ctrl-C or SIGTERM that surfaced as this: the stop
            self.refused_messages += 1
            if self._log_refusal(number, name):
                log.error(
                    "round %d: a message from %s raised %s (dropped; please report): %s",
                    number,
                    name,
                    type(exc).__name__,
                    exc,
                )
            return None
        if message.privacy is not None and party_of[name] != HELPER:
            self.mechanism.take_report(self._identity(name), message.privacy)
        return outgoing

    def _check_report_on_arrival(self, number: int, name: str, report: Any) -> None:
        """Refuse the message carrying ``report`` (a :class:`ProtocolError`, before the
        session sees it: nothing of the round changes) when the mechanism would not keep
        the report by a check that needs no replay (:meth:`Mechanism.report_problem`),
        and make ``name`` a dropout of the round: it counts as having left (the phase
        does not wait for it) and its later messages of the round are refused.

        Why: the report was checked only after the round's phases, once the sum was
        unmasked, and its refusal aborted the round; nothing stopped the branch sending
        it again, so one enrolled branch aborted every round it was sampled into (the
        rule: no single branch can stop the server). As a dropout its mask is removed
        as any dropout's, and the others' round completes without its update.

        One report a party and round is checked: a second is refused unchecked, and its
        sender is a dropout of the round too. Why: the check costs Opacus's RDP curves
        of the report's runs (0.55 s of CPU for a 'prv' report of 8 new runs near a
        sample rate of 0.5), an honest branch sends its report once, with its first
        payload, and the check ran for every message that carried one: one whose report
        passed and whose payload the session then refused left its sender a party, so
        one branch's stream of such messages, each with new rates, held the collect loop
        0.55 s a message while the deadlines ran (tests/runtime/test_record_report_flood.py)."""
        if name in self._report_checked:
            # before the check, not after it: each check costs the report's RDP curves
            problem = (
                "a second DP-SGD report in one round (a branch sends one, with its first payload)"
            )
        else:
            self._report_checked.add(name)
            problem = self.mechanism.report_problem(self._identity(name), report)
        if problem is None:
            return
        self._report_refused.add(name)
        self._left.add(name)
        log.warning(
            "round %d: %s is a dropout of the round: its DP-SGD privacy report was refused "
            "as it arrived: %s",
            number,
            name,
            problem,
        )
        raise ProtocolError(f"{name}'s DP-SGD report was refused: {problem}")

    def _late(
        self,
        number: int,
        name: str,
        message: Any,
        refusal: SecAggError,
        session: ServerSession,
        party: int | None,
    ) -> bool:
        """Whether ``message``, refused with ``refusal``, is a late answer: a payload of a
        past round ``name`` was a party of, or a payload of the round in flight from a
        party that missed one of its phases, refused as out of phase. An honest branch's
        (or key holder's) answer that arrived after its phase closed without it: refused
        as before, but no sign of an attack.

        Why: it was logged as a WARNING refusal ("expected a payload of round 2",
        "AdvertiseKeys is not accepted in phase share_keys"), so an operator reading the
        log saw an attack where a branch had only been slow. A payload of a round its
        sender was not in, of a round to come, or not a payload at all stays a WARNING.
        Only the last :data:`LATE_ROUNDS_REMEMBERED` rounds are remembered: a payload
        older than that is a refusal again.

        One late payload a party and round: an honest party has one payload in flight at
        most (it waits for the server's next message after each), and one dropped from
        a phase is sent nothing of the phases after it, so a second out-of-phase payload
        of the same round cannot be late (it is a later phase's, or a replay). Before
        (review, 2026-12-06) every one was logged late, at INFO: a dropped party sending
        well-formed messages of phases still to come looked like a slow link.

        And only a payload of a phase the round has passed (:meth:`ServerSession.phase_of`,
        read from its header): a dropped party's *first* payload of the phase in flight or
        of a later one was logged late too (its unmasking shares while the round collected
        keys' shares), since only the second was told apart (review, 2026-12-06). A
        backend that cannot say a payload's phase makes it no late one."""
        if not isinstance(message, Relay):
            return False
        if message.round < number:
            late = name in self._cohorts.get(message.round, frozenset()) and name not in (
                self._answered_all.get(message.round, frozenset())
            )
        else:
            phases = self._dropped_partys_phases(number, name, message, refusal, session, party)
            late = phases is not None and phases[0] < phases[1]
        if not late or (message.round, name) in self._answered_late:
            return False
        self._answered_late.add((message.round, name))
        return True

    def _dropped_partys_phases(
        self,
        number: int,
        name: str,
        message: Any,
        refusal: SecAggError,
        session: ServerSession,
        party: int | None,
    ) -> tuple[Phase, Phase] | None:
        """The phase a refused payload of the round in flight is of (by its header alone)
        and the phase the round is in, when it came from a party the round dropped and was
        refused as out of order; None otherwise, or when either phase is unknown.

        Why one place: a late answer (:meth:`_late`: a phase the round has passed) and an
        out-of-phase one (:meth:`_phase_not_passed`: the phase in flight or a later one)
        are the two sides of this one comparison, and each wrote the conditions out."""
        if (
            party is None
            or not isinstance(message, Relay)
            or message.round != number
            or not isinstance(refusal, UnexpectedMessage)
            or name not in self._missed
        ):
            return None
        sent, now = session.phase_of(party, message.payload), session.current_phase
        if sent is None or now is None:
            return None
        return sent, now

    def _phase_not_passed(
        self,
        number: int,
        name: str,
        message: Any,
        refusal: SecAggError,
        session: ServerSession,
        party: int | None,
    ) -> str | None:
        """The phase of a refused payload of the round in flight, from a party the round
        dropped, when that phase is the one in flight or a later one (no late answer: the
        warning says so); None otherwise."""
        phases = self._dropped_partys_phases(number, name, message, refusal, session, party)
        if phases is None or phases[0] < phases[1]:
            return None
        return phases[0].name

    def _out_of_phase_after_late(
        self, number: int, name: str, message: Any, refusal: SecAggError
    ) -> bool:
        """Whether a refused ``message`` is out of phase from a party whose one late
        payload of that round was taken already (:meth:`_late`): the warning says so."""
        return (
            isinstance(message, Relay)
            and message.round <= number
            and (message.round, name) in self._answered_late
            and (message.round < number or isinstance(refusal, UnexpectedMessage))
        )

    def _identity(self, name: str) -> str:
        """How the ledger names a party: its keyed identity hash (its name without one)."""
        return self.ledger.key.identity_hash(name) if self.ledger is not None else name

    def _log_refusal(self, number: int, name: str) -> bool:
        """Whether to log this refusal: the first :data:`LOGGED_REFUSALS` of a party in a
        round, then one line saying the rest are only counted (a branch that sent 20 000
        junk messages wrote 20 311 warning lines, 2.3 MB, in one round: network audit);
        :meth:`_log_round` gives the round's total per party."""
        count = self._refusals[name] = self._refusals.get(name, 0) + 1
        if count == LOGGED_REFUSALS + 1:
            log.warning(
                "round %d: %s sent more than %d refused messages: the rest of this round's "
                "are counted, not logged",
                number,
                name,
                LOGGED_REFUSALS,
            )
        return count <= LOGGED_REFUSALS

    def _dispatch(self, number: int, participants: list[str], outgoing: list[Outgoing]) -> bool:
        """Send the session's events; True if the round was announced (training starts)."""
        announced = False
        for event in outgoing:
            if isinstance(event, Announce):
                announced = self._announced = True
                model = self.model.astype(np.float32)
                # encoded once: every branch's round start shares these bytes (see _send)
                shared = round_start_model(model)
                clip, report = self.mechanism.clip, self.mechanism.report_unclipped
                # how long the round may still last: a branch waits that long in it (D3)
                left = self._told_deadline()
                connected = self.transport.connected()  # one look for all: _sessions_now
                for party, name in enumerate(participants):
                    # the session the start goes to is the round's for this participant:
                    # one that reconnected since the sampling (while the CKKS key holder
                    # made the round's key) takes the round on its new session. Before,
                    # the session at the sampling was the reference, so the server took
                    # it for gone and closed the phase without the upload it was making
                    # on the start the server had sent it (review, 2026-12-06)
                    # one look at the session: see _sessions_now
                    self._round_sessions[name], self._round_session_ids[name] = self._sessions_now(
                        name, connected
                    )
                    start = RoundStart(
                        number,
                        party,
                        event.spec,
                        model,
                        clip,
                        report,
                        left,
                        federation=self.config.name,
                    )
                    reached = name not in self._unreached
                    self._send(name, start, model=shared)
                    if reached and name in self._unreached:
                        self._start_missed(name)
            elif event.party == HELPER:
                self._send_to_helper(number, Relay(number, event.payload))
            else:
                self._send(participants[event.party], Relay(number, event.payload))
        return announced

    def _send_to_helper(self, number: int, message: Relay) -> None:
        """Send a request of the round in flight to its helper (the CKKS key holder).

        The helper's session the request goes to becomes the one the early-close rule
        compares with: a key holder that restarted before the request left got it on its
        new session and answers it (its opened round is durable), so it is not "gone";
        one that restarts after it left never got it, and is. Before, its session at the
        round start was the reference, so a key holder restarted mid-round was declared
        gone 0.5 s into its decryption and the round aborted while it was decrypting.

        A send that fails while the helper is connected aborts the round at once
        (:attr:`_helper_unreached`, checked by the collect loop), its reason naming the
        helper and the transport's error (a helper not connected at all gets it when it is
        back: :meth:`_deliver_to_helper`): a helper
        is no dropout a round can do without, and it cannot answer what it never got.
        Before, the failure was logged (at DEBUG for a lost connection) and the round
        waited out the phase's deadline, 60 s in the test, for an answer that could not
        come."""
        if self.config.backend.key_holder is None:
            raise ConfigurationError("the backend needs a helper: name its key_holder")
        self._helper_request = encode_message(message)
        self._deliver_to_helper(number, self._helper_request)

    def _helper_restarted(self, number: int, phase: str) -> str | None:
        """What to do when the round's helper has gone while the phase awaits its answer:
        None to keep waiting (its request was resent to its new session just now, or it
        has not reconnected yet: the phase's deadline still bounds the wait), or the
        reason to abort the round with (it restarted again after the resend).

        Why: a key holder restarted after a request left (a crash, a deploy, a dropped
        link) never answers it on its new session, and the server closed the phase 0.5 s
        later ("did not decrypt in time"), every branch's upload lost. Its opened round is
        on disk and its decryption record refuses a round twice, so the request is resent,
        as it was sent, once a round to its new session. Exactly one answer is used: the
        session takes one reply to a request and ends the phase with it (a late one of the
        old session, or a second reply, is refused, or belongs to a finished round and is
        refused as one); a key holder *process* that had decrypted before it went refuses
        the resend (its record), which aborts the round with its reason, while one whose
        session only broke under the reply answers it with that very reply (no second
        decryption: :meth:`KeyHolderService._repeat
        <secagg.runtime.keyholder.KeyHolderService._repeat>`). A helper that keeps
        restarting is not chased: one resend a round, then the round aborts, naming it."""
        helper = self.config.backend.key_holder
        assert helper is not None and self._helper_request is not None
        if self._helper_resent:
            return (
                f"the key holder {helper} left again (a restart or a lost connection) in "
                f"phase {phase} after its request was resent (one resend a round)"
            )
        if self._session_of(helper) is None:
            return None  # not back yet: the phase's deadline bounds the wait
        self._helper_resent = True
        log.warning(
            "round %d: the key holder %s left (a restart or a lost connection) in phase %s "
            "before answering; its request is sent again to its new session (once a round)",
            number,
            helper,
            phase,
        )
        self._deliver_to_helper(number, self._helper_request)
        return None

    def _deliver_to_helper(self, number: int, payload: bytes) -> None:
        """Send an encoded request to the round's helper on its current session, which
        becomes the early-close rule's reference (see :meth:`_send_to_helper`). A helper
        not connected at all is sent the request when it is back (the round's one resend,
        :meth:`_helper_restarted`); any other failed send sets :attr:`_helper_unreached`.

        The look at the session and the send are one step where the transport offers
        ``send_to_session`` (:func:`_session_sender`), as for a round's participants
        (:meth:`_send`). Why: sent by name after the look, a request reached a session the
        helper opened between the two (a restart, a redial) while the reference stayed
        the old one, so the early-close rule took the helper for gone and resent the
        request to that same session: two requests of the round on it, and the round's
        one resend spent (review, 2026-12-06). Now a session opened since the look gets
        nothing and the resend (:meth:`_helper_restarted`) is its one request; a helper
        with no session at the look is sent nothing by name either (it gets the request
        when it is back, as before). A transport without ``send_to_session`` (or without
        session ids) is sent by name."""
        helper = self.config.backend.key_holder
        assert helper is not None
        session, session_id = self._sessions_now(helper)
        self._round_sessions[helper] = session
        try:
            if self._send_to_session is None:
                self.transport.send(helper, payload)
            elif session_id is None:  # no session as the request went out
                raise NotConnected(f"the key holder {helper} has no open session")
            else:
                self._send_to_session(helper, session_id, [payload])
            self._reveal_unsent = False  # handed to the transport: it may be decrypted
        except (OSError, TransportError) as exc:  # an OS error beyond ConnectionError too
            if _local_send_error(exc):  # the server's own resources: see _send
                raise
            if not isinstance(exc, TransportError):
                # an OS error of the send itself (a timeout, a reset) may come after some
                # or all of the request was written: it may have reached the key holder
                self._reveal_unsent = False
            now = self._session_id(helper)
            if (
                isinstance(exc, NotConnected)
                and session_id is not None
                and now is not None
                and now != session_id
                and not self._helper_resent
            ):
                # it reconnected between the look and the send: the new session never
                # got the request; the early-close rule takes the helper for gone and
                # _helper_restarted sends it there, once
                log.warning(
                    "round %d: the key holder %s reconnected as its request went out; the "
                    "request is sent to its new session (once a round)",
                    number,
                    helper,
                )
                return
            if isinstance(exc, ConnectionError) and session is None and not self._helper_resent:
                # not connected (restarting between two requests): the request is sent
                # when it is back within the phase's deadline, as the one resend of the
                # round (:meth:`_helper_restarted`); before, the round aborted at once
                log.warning(
                    "round %d: the key holder %s is not connected; its request is sent when "
                    "it is back (once a round)",
                    number,
                    helper,
                )
                return
            if (
                isinstance(exc, NotConnected)
                and session_id is not None
                and (now is None or (isinstance(exc, PeerClosing) and now == session_id))
                and not self._helper_resent
            ):
                # its session ended inside the send, and it has none yet (a dropped link,
                # a restart): as for one not connected at the look, the request is sent
                # when it is back within the phase's deadline, the round's one resend.
                # Before, the round aborted at once, every upload lost to a dropped link.
                # Sound: one resend a round, and the key holder decrypts a round once on
                # its own (its record; a broken session's reply is repeated, not redone).
                # So for a session the key holder has half-closed (PeerClosing: its
                # normal end, a restart), still listed until its call ends: it can
                # answer nothing more there, and the request was not queued; taken for
                # a live helper that refused it, the round aborted at once (review,
                # 2026-12-07), where before the send was refused it was resent
                # when the key holder was back
                log.warning(
                    "round %d: the key holder %s left as its request went out; the request "
                    "is sent when it is back (once a round)",
                    number,
                    helper,
                )
                return
            error = _send_error_text(exc)
            log.warning("round %d: could not send to the key holder %s: %s", number, helper, error)
            if self._helper_unreached is None:
                self._helper_unreached = error

    def _send(
        self,
        name: str,
        message: RoundStart | Relay | RoundEnd | FederationEnd | NotSampled,
        *,
        model: bytes | None = None,
    ) -> None:
        """Send to one party; a failure is that party's, never the round's.

        Gone, or a message the transport refuses (above its size limit, its outbox full, its
        session ended), or any other OS error of the send (a timeout; before 2026-12-07 it
        stopped the server as a failed state write) but one of the server's own resources
        (:data:`LOCAL_SEND_ERRNOS`, which stops the server): the party cannot answer what it
        never got, so it is gone from the round in flight at once (:attr:`_unreached`, read by
        :meth:`_gone`): the early-close rule closes the phase as soon as everyone else
        answered, the party a dropout, and the round completes or aborts by its threshold.
        Before 2026-12-06 the phase waited out its deadline for it (minutes, in a
        deployment) although nothing could come. Letting the error out aborted the whole
        round, which one branch could provoke every round by inflating what it relays to a
        neighbour (runtime audit 2026-12-04). The round's helper is no such party: its
        requests go through :meth:`_send_to_helper`.

        ``model``: a round start's model bytes, encoded once for every branch
        (:func:`~secagg.runtime.wire.round_start_model`). A transport that offers
        ``send_parts`` (gRPC's) queues the start in parts around those very bytes, so
        the model is held once whatever the cohort; before, each branch's start held its
        own copy until written: n copies of the model at every round start (1 000
        branches of a 10 MB model, 10 GB), against the server's O(d) memory.

        A message of the round in flight (its start, a relay, its end) goes only to the
        session that took the round: a participant that reconnected since (a dropped link,
        a restarted process) is sent nothing of it on its new session, which never took
        the round, and is gone from the round (:attr:`_unreached`), a dropout the round's
        threshold covers; it takes the next round on its new session. Before (review,
        2026-12-06) the rest of the round went there by name (the next phase's relay and
        the round's end), which the branch could only drop as late. A transport without
        session ids cannot tell sessions apart: its sends go by name, as before.

        The look at the session and the send are one step where the transport offers
        ``send_to_session`` (:func:`_session_sender`): a party that reconnected between
        them (review, 2026-12-06: a check-then-send race) is refused by the transport and
        is unreached, where it got the round's message on its new session (a round start
        there took the round the server had recorded on the old one) while the server
        counted it delivered. A transport with session ids but without that send is sent
        by name (the window stays open there; the early-close rule still counts a party
        on a new session gone, :meth:`_gone`). A party that had no session when the round
        was bound to it (its start, :meth:`_sessions_now`) is sent nothing of the round:
        by name it reached a session opened after the server looked."""
        in_round = isinstance(message, (RoundStart, Relay, RoundEnd))
        if in_round and self._on_another_session(name):
            log.debug(
                "round %d: %s is on a new session since the round started: nothing of the "
                "round is sent to it",
                message.round,
                name,
            )
            self._unreach(name)
            return
        expected = self._round_session_ids.get(name) if in_round else None
        if (
            in_round
            and expected is None
            and name in self._round_session_ids
            and getattr(self.transport, "session_id", None) is not None
        ):
            # no session when the round was bound to it: a send by name would reach only
            # a session opened since, which never took the round
            log.debug("round %d: %s had no session as the round went out", message.round, name)
            self._unreach(name)
            return
        try:
            if isinstance(message, RoundStart) and model is not None:
                parts = list(round_start_parts(message, model))
            else:
                parts = [encode_message(message)]
            if expected is not None and self._send_to_session is not None:
                self._send_to_session(name, expected, parts)
                return
            send_parts = getattr(self.transport, "send_parts", None)
            if len(parts) > 1 and send_parts is not None:
                send_parts(name, parts)
            else:
                self.transport.send(name, b"".join(parts))
        except (OSError, TransportError) as exc:
            if _local_send_error(exc):
                # the server's own descriptors, memory or disk (EMFILE, ENOBUFS, ...): no
                # party's failure. Taken for one, every branch of every round was a dropout
                # while the rounds aborted below their threshold, their ledger rows
                # blaming the branches, until max_consecutive_aborts stopped the run with
                # no word of the cause (review, 2026-12-07); it stops the server instead,
                # named as an error outside its writes (_run_round), as a receive's does
                raise
            # anything else is the party's: gone, a message the transport refused (its
            # size, a full outbox), an OS error of the send (a timeout, a reset)
            if isinstance(exc, ConnectionError):  # gone: the early-close rule's dropout
                log.debug("could not reach %s: %s", name, exc)
            else:
                log.warning(
                    "could not send %s to %s: %s",
                    type(message).__name__,
                    name,
                    _send_error_text(exc),
                )
            self._unreach(name)

    def _unreach(self, name: str) -> None:
        """A send to ``name`` failed: a party of the round in flight is gone from it (a
        round end or a federation end sent after the round changes nothing: the next
        round's parties start afresh in :meth:`_drive`)."""
        if name in self._round_sessions:
            self._unreached.add(name)

    def _start_missed(self, name: str) -> None:
        """The start of the round in flight could not be sent to participant ``name``:
        the round runs without it, which it is told like a client the sampling left out
        (:meth:`_tell_unsampled`, on whatever session it has now or gets within the
        round), and the round's end is not sent to it.

        Why: the cohort was never told, so a participant its start never reached (no
        session as the start went out: it dropped between the sampling and the start,
        and redialled; or a start the transport refused) heard nothing of a round it
        never took and waited on its idle timer alone while the round ran, giving up
        (``BranchGaveUp``) in a round longer than that timer; and the round's end, sent
        to it by name, was refused by the branch as the end of a round it never started
        (review, 2026-12-06)."""
        self._start_unsent.add(name)
        self._told_or_sampled.discard(name)

    def _broadcast(self, participants: list[str], message: RoundEnd) -> None:
        """Send the round's end to its participants, but those its start never reached."""
        for name in participants:
            if name not in self._start_unsent:
                self._send(name, message)

    # --- the model update ------------------------------------------------------

    def _updated(self, mean: np.ndarray) -> tuple[np.ndarray, ServerMoments]:
        """The model and the server optimizer's state after applying ``mean``, not yet
        adopted: :func:`~secagg.runtime.server_optimizer.server_step` (FedAvg, FedAvgM or
        FedAdam, as the config says) on this server's model and state.

        The state, like the velocity, is held in memory only: it restarts at zero after
        a crash or a restart, step count included, so FedAdam's first step after one is
        again about ``lr`` per coordinate (the sign of the mean), and a resumed
        federation's models are not an uninterrupted one's.

        Why not adopted at once: a model with an inf or a nan (an overflow of the mean
        times the learning rate) was checkpointed, every branch refused it and every
        later round aborted; a restart resumed from the same checkpoint (CLI audit,
        2026-12-04). The caller adopts the model and the state together, only when
        every value of both is finite."""
        return server_step(
            self.config, self.model, mean, ServerMoments(self._velocity, self._second, self._steps)
        )

    # --- the ledger --------------------------------------------------------------

    def _record(
        self,
        result: RoundResult,
        started: float | None,
        backend: dict[str, Any],
        dropouts: dict[str, int],
        stored: dict[str, Any],
        *,
        model_digest: str | None = None,
        reconstruction: Reconstruction | None = None,
        finished_at: float | None = None,
        sum_revealed: bool = False,
    ) -> None:
        """Append the round's signed ledger row (after the store has committed it).
        ``sum_revealed``: an aborted round whose sum the server saw before it stopped,
        charged as released (``dp.sum_revealed``; ``result.epsilon`` is its claim).
        ``reconstruction``: the row is rebuilt from the state after a crash, and this
        says why and which fields the state held (``finished_at``: the state's)."""
        if self.ledger is None:
            if reconstruction is None:
                self._recorded_round = result.number  # the state's write was its record
            return
        cfg = self.config
        charged = result.status == "complete" or sum_revealed
        if charged:
            last = result.epsilon
        elif reconstruction is None:
            last = self._carried_epsilon()
        else:  # rebuilt in order: the running figure of the rows before it
            last = self._last_epsilon
        self._last_epsilon = last
        dp = self._dp_block(stored)
        if dp is not None and sum_revealed:
            dp["sum_revealed"] = True
        # from here the round's ledger row is being made: an entry refused (a DP block
        # without its sampling record: SamplingUnrecorded) fails as its append would,
        # before any byte of the ledger is written
        self._writing = "ledger"
        entry = LedgerEntry(
            federation=cfg.name,
            round=result.number,
            status=result.status,
            reason=result.reason,
            started_at=started,
            finished_at=time.time() if finished_at is None else finished_at,
            backend=backend or {"name": cfg.backend.name},
            participants=result.participants,
            contributed=len(result.contributed),
            dropouts=dropouts,
            dp=dp,
            epsilon=self.mechanism.ledger_claim(last),
            delta=cfg.dp.delta if cfg.dp is not None else None,
            model_sha256=model_digest or hashlib.sha256(model_bytes(self.model)).hexdigest(),
            reconstructed=reconstruction is not None,
            reconstruction=reconstruction,
            # a row without a DP block released no DP noise, so none of it was seeded
            noise_seeded=self.noise_seeded and dp is not None,
        )
        self.ledger.append(entry.row(self.ledger.key.identity_hash))
        self._writing = None
        if reconstruction is None:  # the live round's records are whole
            self._recorded_round = result.number
        self._log_head(result.number)

    def _log_head(self, number: int) -> None:
        """The DEBUG line with the ledger head after round ``number``'s row.

        Why its own method: the head was read as an argument of ``log.debug`` (read at
        any log level), after the round's row was appended and the write in progress
        reset to the state, so a head read that raised stopped the server saying "the
        server could not write its state" about a round the state and the ledger both
        hold. The row is written; the head is read only when the line is shown, and a
        failure to read it is a warning of its own (the next append meets any lasting
        fault of the ledger, and that path records it)."""
        assert self.ledger is not None
        if not log.isEnabledFor(logging.DEBUG):
            return
        try:
            head = self.ledger.anchor()
        except (sqlite3.Error, OSError) as exc:
            log.warning(
                "round %d: its ledger row is appended, but the ledger head could not be read "
                "back: %s",
                number,
                " ".join(str(exc).split()) or type(exc).__name__,
            )
            return
        log.debug("ledger head %s (auditors keep it: --expect-head)", head)

    def _carried_epsilon(self) -> float | None:
        """The cumulative epsilon a row that charges nothing carries: the accountant's,
        at the delta the row records (the config's), over every round charged so far.

        Why: the row carried the last charged round's stored claim. After a restart under
        a config with another delta that claim was accounted at the old delta, and the
        aborted round's row put it beside the new one: an (epsilon, delta) pair no
        accountant produced (rounds at 1e-5 claimed at 1e-7 read as spending less than
        they do). The restarted accountant has every charged round replayed at the
        config's delta, which is what the row records; within one run it is the last
        claim itself. None while no round has been charged."""
        if self._last_epsilon is None:
            return None
        figure = _accounted_epsilon(self.mechanism)
        # record level: the branches' reports, not a delta's
        return self._last_epsilon if figure is None else figure

    def _dp_block(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        """The mechanism's ledger block, with how the cohort was drawn and what the
        guarantee's neighbouring datasets are: what an auditor needs to replay it.

        ``sampling.seeded`` is always written, false included (an auditor tells "not
        seeded" from "not said"): a cohort drawn from the config's seed is predictable,
        which no claim of today's mechanisms counts on, but an older row's did."""
        block = self.mechanism.ledger_block(stored)
        if block is None:
            return None
        cfg = self.config
        block = dict(block)
        block["sampling"] = {
            "kind": cfg.sampling.kind,
            "rate": cfg.sample_rate,
            "population": len(cfg.clients),
            "seeded": self.sampling_seeded,
        }
        return block

    def _rebuild_reads_replays(self, entries: list[dict[str, Any]]) -> bool:
        """Whether the ledger (its ``entries``) lacks a finished round's row
        (:meth:`_backfill_ledger` rebuilds it) and the mechanism replays DP-SGD reports
        (record level, :meth:`Mechanism.replay_seconds`): the rebuilt row's block and
        claim then read every branch's replayed figure, restored ones included."""
        if self.mechanism.replay_seconds(1) <= 0:
            return False
        recorded = {entry.get("round") for entry in entries}
        return any(
            row["number"] not in recorded and row["status"] in ("complete", "aborted")
            for row in self.store.rounds()
        )

    def backfill_ledger(self) -> None:
        """Rebuild the ledger rows the constructor left to after the bind, if it left any
        (:meth:`_backfill_ledger`); :meth:`run`, :meth:`run_round` and :func:`serve`'s
        path for a finished federation call it before anything else is recorded.

        Why not in the constructor: under record-level DP a rebuilt row's block and claim
        read every branch's replayed figure (the row is signed, so the figures must be
        the replays'), so a restart after a crash mid-round (the round it aborts has no
        row) waited there for every restored report's replay, one after another, and
        :func:`serve` bound its port only after that: a federation of hundreds of PRV
        branches unreachable past its parties' redial windows
        (tests/runtime/test_record_restart_backfill_waits.py). Every error of the
        rebuild is raised here as it was from the constructor (a chain that fails its
        check: :func:`refuse_broken_chain`'s :class:`LedgerError`; a failed append: its
        own), logged, and this server runs no rounds after it (:class:`ServerStopped`;
        a new server on the state tries again).

        A stop (Ctrl-C, SIGTERM: a ``KeyboardInterrupt``,
        :class:`~secagg.transport.waiting.StopAsked` included) is raised unchanged and
        logged as a stop, one WARNING line without a traceback: it was an ERROR line
        "could not rebuild its ledger's missing rows: KeyboardInterrupt", which read as
        a failure of the ledger. A row is appended whole or not at all, so the next
        start rebuilds the rows still missing (tests/runtime/test_record_backfill_stop.py);
        this server runs no rounds after it (:class:`ServerStopped`), as after a round a
        stop ended. So is any other exception while a stop is recorded for the process
        (:func:`~secagg.transport.waiting.stop_asked`): a stop that surfaced as another
        error (a wait on a replay cut short: ``RuntimeError: cannot release un-acquired
        lock``) was an ERROR line "could not rebuild its ledger's missing rows", beside
        the command's "stopped by SIGTERM"; it is the stop's WARNING line, naming what
        it surfaced as."""
        if self._backfill_pending is None:
            return
        self._refuse_after_failure()
        restored = self._last_epsilon
        try:
            self._backfill_ledger(self._backfill_pending)
        except BaseException as exc:
            self._rebuild_ended_early(exc)
            raise
        finally:
            self._last_epsilon = restored  # the backfill's running figure is the rows'
            self._writing = None
        self._backfill_pending = None
        # the log line's figure: the replayed claim now, as the constructor's was when
        # it rebuilt the rows itself
        self._epsilon_now = self.mechanism.provisional_claim(self._carried_epsilon())

    def _rebuild_ended_early(self, exc: BaseException) -> None:
        """Log and note why the rebuild of the ledger's missing rows (the constructor's
        or :meth:`backfill_ledger`'s) ended with ``exc``, which the caller raises on;
        this server runs no rounds after it (:class:`ServerStopped`), and its replays
        stop (nobody reads them).

        A stop (a ``KeyboardInterrupt``, :class:`~secagg.transport.waiting.StopAsked`
        included), or any exception while a stop is recorded for the process (a stop
        that surfaced as another error), is one WARNING line naming the signal; anything
        else is the ERROR line of a failed rebuild. Why one place: the constructor's
        rebuild (a federation whose rows read no replays) logged nothing, so a finished
        federation's start on a full disk said only ``secagg server: [Errno 28] No space
        left on device``, naming neither the ledger nor the rebuild, where a record-level
        one said "could not rebuild its ledger's missing rows"
        (tests/apps/test_server_finished_rebuild_fails.py)."""
        cause = " ".join(str(exc).split()) or type(exc).__name__
        asked = stop_behind(exc)  # the record's, or an interrupt in the chain (no handlers)
        if isinstance(exc, KeyboardInterrupt):
            # the first stop recorded, as the round's handler and the command's line name
            # it: a second signal's interrupt ending the rebuild named itself
            # (tests/runtime/test_rebuild_second_stop_named_first.py)
            self._backfill_stopped = _stop_name(exc) if asked is None else stop_name(asked)
            log.warning(
                "the server was stopped by %s while it rebuilt its ledger's missing rows: "
                "the next start rebuilds those still missing",
                self._backfill_stopped,
            )
        elif asked is not None:
            # a stop that surfaced as another exception (unwinding a wait on a replay's
            # future: "cannot release un-acquired lock"), or a failure while a stop was
            # recorded: said as the stop, with what it surfaced as
            # (tests/runtime/test_record_backfill_stop.py)
            self._backfill_stopped = stop_name(asked)
            log.warning(
                "the server was stopped by %s while it rebuilt its ledger's missing rows "
                "(it surfaced as %s: %s): the next start rebuilds those still missing",
                self._backfill_stopped,
                type(exc).__name__,
                cause,
            )
        else:
            self._backfill_failed = f"{type(exc).__name__}: {cause}"
            log.error("the server could not rebuild its ledger's missing rows: %s", cause)
        self.mechanism.stop_replays()  # this server runs no rounds: nobody reads them

    def _backfill_ledger(self, aborted_on_restart: tuple[int, ...] = ()) -> None:
        """Record finished rounds the ledger lacks: a round the crash interrupted
        (aborted on restart), or one whose row was lost between the store's commit and
        the ledger's. Rebuilt from the store: marked ``reconstructed``, with a
        ``reconstruction`` record of why and which fields the state held
        (:func:`_provenance`).

        A rebuilt row's epsilon is the accountant's at the delta the row records (the
        config's) over the rounds charged up to and including its own
        (:class:`_ChargeReplay`). Why: the row carried the round's stored claim (or,
        charging nothing, the last one), accounted at the delta of the run that made
        it; after a restart under another ``dp.delta`` that was an (epsilon, delta)
        pair no accountant produced, which ``audit verify`` fails (rounds 1-2 at 1e-3
        claimed 4.85 beside delta 1e-4, where they spend 5.77). Under the same delta
        the replay is the stored claim itself.

        Called by the constructor, or, where a rebuilt row reads DP-SGD replays (record
        level), by :meth:`backfill_ledger` once the port is bound."""
        assert self.ledger is not None
        # each round's row (the last, should one repeat): whether it was rebuilt tells a
        # restart that stopped after its rebuild from an append that wrote and failed
        recorded = {entry.get("round"): entry for entry in self._ledger_entries()}
        epsilon: float | None = None
        checked = False
        replay = _ChargeReplay(self.config)
        for row in self.store.rounds():
            report = row["report"] or {}
            complete = row["status"] == "complete"
            revealed = None if complete else report.get("revealed")
            charge = report if complete else revealed
            if charge is not None:  # as __init__ restored it: completed, or its sum revealed
                replay.add(charge)
            if row["number"] in recorded or row["status"] not in ("complete", "aborted"):
                epsilon = charge.get("epsilon", epsilon) if charge is not None else epsilon
                found = recorded.get(row["number"])
                if found is not None and _note_unreconciled(report, found):
                    self._reconcile_missing_note(row["number"], report, found)
                continue
            if not checked:  # a row is added only to a chain that verifies
                refuse_broken_chain(self.ledger)
                checked = True
            contributed = tuple(report.get("contributed", ()))
            if charge is not None:
                epsilon = charge.get("epsilon", epsilon)
            if epsilon is not None:  # nothing charged yet: no claim to restate
                epsilon = replay.epsilon(stored=epsilon)
            result = RoundResult(
                row["number"],
                row["status"],
                tuple(row["participants"]),
                contributed,
                report.get("reason"),
                epsilon if complete or revealed is not None else None,
            )
            self._last_epsilon = epsilon if not complete else self._last_epsilon
            digest = self.store.checkpoint_digest(row["number"])
            self._record(
                result,
                row["started_at"],
                {},
                {},
                report if complete else (revealed or {}),
                model_digest=digest,
                reconstruction=_provenance(
                    row,
                    interrupted=row["number"] in aborted_on_restart,
                    checkpointed=digest is not None,
                    charged=complete or revealed is not None,
                    with_dp=self.config.dp is not None,
                ),
                finished_at=row["finished_at"],
                sum_revealed=revealed is not None,
            )
            missing = report.get("ledger_row_missing")
            log.warning(
                "ledger: round %d was missing%s and has been reconstructed from the store",
                row["number"],
                f" ({missing})" if missing else "",
            )
            self.rebuilt_rounds.append(row["number"])  # its row is in the ledger now
            # the state says the row is there again (and keeps why it had been missing)
            self.store.note_ledger_rebuilt(row["number"])

    def _reconcile_missing_note(
        self, number: int, report: dict[str, Any], found: dict[str, Any]
    ) -> None:
        """Round ``number``'s state says its ledger row is missing, or says nothing of a
        row an earlier restart rebuilt, yet the ledger holds ``found``
        (:func:`_note_unreconciled`): make the note say what happened. A row marked
        ``reconstructed`` was rebuilt by an earlier restart that stopped before its note
        (``ledger_row_rebuilt``, with the missing note's cause or "no cause recorded",
        as that restart would have written); any other is the failed append's own,
        written before it raised (a log the next open replayed: ``ledger_append_error``).
        Why: the restart skipped a round whose row it found, and the note "missing"
        (or no note) stayed for good beside a row an auditor reads."""
        cause = report.get("ledger_row_missing")
        if found.get("reconstructed"):
            log.warning(
                "ledger: round %d%s an earlier restart rebuilt its row and stopped before "
                "it recorded so",
                number,
                f" was recorded missing ({cause});" if cause else ":",
            )
            self.store.note_ledger_rebuilt(number)
            return
        log.warning(
            "ledger: round %d was recorded missing (%s), but the ledger holds its row: the "
            "append wrote it before it failed; nothing rebuilt",
            number,
            cause,
        )
        self.store.note_ledger_written(number)


def _note_unreconciled(report: dict[str, Any], found: dict[str, Any]) -> bool:
    """Whether a finished round's state ``report`` says something of its ledger row that
    the row ``found`` in the ledger contradicts: a ``ledger_row_missing`` note, or a row
    a restart rebuilt (``reconstructed``) with no ``ledger_row_rebuilt`` note.

    Why the second: a restart that rebuilt the row of a round with no note (the server
    stopped between the state's commit and the ledger's) and then stopped before its
    own note left the round with none for good, since the next restart mended only a
    round noted missing; the uncrashed restart records ``ledger_row_rebuilt``."""
    if report.get("ledger_row_missing"):
        return True
    return bool(found.get("reconstructed")) and "ledger_row_rebuilt" not in report


class _Awaited:
    """The parties the phase in flight awaits that can still answer, for the collect
    loop's look before each wait (:meth:`FederationServer._drive`): when none is left,
    the loop takes only what has arrived and closes the phase, rather than wait out a
    poll for nobody.

    Why kept between looks: a look costs the awaited set and the transport's connected
    set, O(n) each, and taken before every message it made a phase of n answers O(n^2)
    (about 0.17 ms a message at 1 000 branches of the simulator). The set found is kept
    and shrunk as its parties answer; it is looked at again only when it runs empty,
    the phase changes, or a party may have gone (:meth:`FederationServer._departures`).
    A party kept in it that is gone meanwhile without a mark (a transport that counts
    no session changes) only costs the poll the loop paid before; the decision to close
    is always a fresh look."""

    def __init__(
        self, server: FederationServer, session: ServerSession, names: dict[int, str]
    ) -> None:
        self._server = server
        self._session = session
        self._names = names
        self._answerable: set[str] = set()
        self._looked = False  # _answerable is a look's (not the helper awaited alone)
        self._phase: str | None = None
        self._mark: object = object()  # equal to no mark: the first call looks

    def answered(self, name: str) -> None:
        """``name``'s payload was taken: it is no longer awaited in this phase."""
        self._answerable.discard(name)

    def none_can_answer(self) -> bool:
        """Whether every party the phase still awaits is gone
        (:meth:`FederationServer._gone`), none of them the round's helper: a gone
        helper is waited for, to be sent its request again when it is back
        (:meth:`FederationServer._helper_restarted`)."""
        server, session = self._server, self._session
        mark = server._departures()  # before the look: a change during it shows next time
        if self._answerable and mark == self._mark and session.phase == self._phase:
            return False
        self._mark, self._phase = mark, session.phase
        self._looked = False
        silent = [self._names[p] for p in session.waiting_for if p in self._names]
        helper = server.config.backend.key_holder
        if helper in silent and helper not in server._left:
            self._answerable = {helper}  # looked at again once it answers
            return False
        if not silent:
            self._answerable = set()
            return False
        connected = server.transport.connected()
        self._answerable = {name for name in silent if not server._gone(name, connected)}
        self._looked = True
        return not self._answerable

    def someone_can_answer(self) -> bool:
        """Whether the last look (:meth:`none_can_answer`) found a party of this phase
        that can still answer, which has not answered since, and nothing has happened
        since that could make it gone (the same phase and departures mark): the loop's
        early-close look would find it, and is skipped. Never true for a helper awaited
        alone (its return is looked for at every wake: the resend) nor on a transport
        that counts no session changes (every mark is new). A wrong answer could only
        delay an early close to the phase's deadline, never close a phase early."""
        return (
            self._looked
            and bool(self._answerable)
            and self._session.phase == self._phase
            and self._server._departures() == self._mark
        )


def _session_sender(transport: ServerEndpoint) -> Callable[[str, int, list[bytes]], None] | None:
    """The transport's ``send_to_session`` (see :mod:`secagg.transport.base`), or None.

    Taken only from the class whose ``send`` the server would otherwise call, and only
    where that class defines both: a subclass that overrides ``send`` (to count, watch
    or refuse what the server sends, as the simulator's network and many tests do) and
    a wrapper that passes other attributes through to an inner transport would have
    their ``send`` bypassed by an inherited or passed-through ``send_to_session``."""
    for klass in type(transport).__mro__:
        if "send" in vars(klass):
            found = "send_to_session" in vars(klass)
            return transport.send_to_session if found else None  # type: ignore[attr-defined]
    return None


def _provenance(
    row: dict[str, Any], *, interrupted: bool, checkpointed: bool, charged: bool, with_dp: bool
) -> Reconstruction:
    """Why a round's ledger row is rebuilt from the state's record ``row``, and which of
    the row's fields that record holds.

    Why: the row said only ``reconstructed: true``, so an auditor could not tell a row
    lost to a full disk from a round a crash interrupted, nor which fields are the
    round's own record: the state keeps no backend details and no dropouts per phase
    (the row gets the restarted server's backend name and none), keeps a checkpoint
    only of a completed round (an aborted one gets the model the server restarted
    with), and the cohort's sampling record is today's config's."""
    report = row["report"] or {}
    missing = report.get("ledger_row_missing")
    if missing:
        cause = f"the ledger append failed after the state recorded the round ({missing})"
    elif interrupted or str(report.get("reason") or "").startswith("server restarted mid-round"):
        cause = (
            "the server stopped during the round; the restart recorded it aborted in the "
            "state, which the ledger then lacked"
        )
    else:
        cause = (
            "no cause recorded: the server stopped between the state's commit of the round "
            "and the ledger's append"
        )
    recovered = ["round", "status", "reason", "started_at", "participants", "contributed"]
    not_recovered = {
        "backend": "the restarted server's backend name only: the state keeps no backend "
        "details of a round",
        "dropouts": "none recorded: the state keeps no dropouts per phase",
    }
    if row.get("finished_at") is None:
        not_recovered["finished_at"] = "the time of the rebuild: the state has none"
    else:
        recovered.append("finished_at")
    if checkpointed:
        recovered.append("model_sha256")
    else:
        not_recovered["model_sha256"] = (
            "the model the server restarted with: the state keeps no checkpoint of this round"
        )
    # the claim is the state's charges (this round's and those before it), accounted at
    # the row's delta (_ChargeReplay); the DP block's parameters are the restarted
    # mechanism's
    recovered.append("privacy.epsilon")
    if with_dp:
        not_recovered["dp"] = "the restarted server's DP parameters and sampling" + (
            ", with the state's record of the round's charge" if charged else ""
        )
    return Reconstruction(FROM_STATE, cause, tuple(recovered), not_recovered)


def _accounted_epsilon(mechanism: Mechanism) -> float | None:
    """The cumulative epsilon of ``mechanism``'s accountant, at the delta it accounts at
    (the config's); None for a mechanism whose server accounts nothing (no DP, or record
    level: each branch accounts its DP-SGD and reports it)."""
    accountant = getattr(mechanism, "accountant", None)
    figure = getattr(accountant, "epsilon", None)
    return float(figure()) if callable(figure) else None


class _ChargeReplay:
    """The stored charges of a federation's rounds, replayed in order through a fresh
    mechanism of the config's ``[dp]``: its accountant's epsilon after any prefix of
    the rounds, at the config's delta.

    Why a second mechanism: the server's own has every stored round charged by the
    time the ledger is backfilled, so its figure is a rebuilt row's only when that row
    is the last charged round; this one states the figure after the row's own round,
    whichever it is. The arithmetic is the accountant's (:meth:`Mechanism.restore`,
    the same call that restored the server's), none of it here. Built at the first
    figure asked for: a restart that rebuilds nothing replays nothing."""

    def __init__(self, config: FederationConfig) -> None:
        self._config = config
        self._charges: list[dict[str, Any]] = []
        self._mechanism: Mechanism | None = None
        self._replayed = 0  # charges restored into the mechanism so far

    def add(self, stored: dict[str, Any]) -> None:
        """A charged round's stored record (completed, or its sum revealed), in order."""
        self._charges.append(stored)

    def epsilon(self, *, stored: float) -> float:
        """Every charge added so far, accounted at the config's delta; ``stored`` (the
        state's claim) where the server accounts nothing (record level)."""
        if self._mechanism is None:
            self._mechanism = self._config.mechanism()  # draws no noise: accounting only
        while self._replayed < len(self._charges):
            # each charge passed the server's own restore (_restore_charge) already
            self._mechanism.restore(self._charges[self._replayed])
            self._replayed += 1
        figure = _accounted_epsilon(self._mechanism)
        return stored if figure is None else figure


def _seconds(elapsed: float) -> str:
    """A measured wait for a log line: to 0.1 s, without trailing zeros (15.02 is "15",
    45.06 is "45.1", 0.51 is "0.5")."""
    return f"{elapsed:.1f}".rstrip("0").rstrip(".")


def _stop_name(stop: KeyboardInterrupt) -> str:
    """What asked for ``stop``, for a log line: the signal a :class:`StopAsked` names
    (SIGTERM; SIGINT as Ctrl-C, as the CLI's line says it), else Ctrl-C (a plain
    ``KeyboardInterrupt`` is Python's SIGINT)."""
    signum = getattr(stop, "signum", None)
    return stop_name(signum if isinstance(signum, int) else signal.SIGINT)


def refuse_broken_chain(ledger: Ledger) -> None:
    """Refuse to continue a ledger whose chain does not verify against its signed head.

    Why: with a row deleted from the middle of a good ledger (its signed head intact,
    so ``audit verify`` already failed it: "signed head says 3 rows, file has 2") the
    server found the round missing, "reconstructed" it from the store, appended it
    after the gap and ran on: the ledger stayed failed, now with rows signed on top of
    the damage (CLI audit, 2026-12-04). Rebuilding one round is only for a chain that
    verifies and merely ends before the store's last round (a crash between the two
    commits). Raises :class:`~secagg.ledger.chain.LedgerError` (one line)."""
    report = read_chain(ledger.path, ledger.key.public_key)
    if not report.ok:
        failure = " ".join(str(report.failure).split())
        raise LedgerError(
            f"the ledger {ledger.path} fails its chain check ({failure}): the server does not "
            "append to a damaged ledger; restore it from a backup (secagg audit verify "
            "shows the damage)"
        )
    # a chain that verifies may still hold a row no server writes (signed with the key
    # by something else): the start's reads of the rows took it for an object
    ledger_objects(((row.seq, row.entry) for row in report.rows), ledger.path)


def ledger_objects(rows: Iterable[tuple[int, Any]], path: Path) -> list[dict[str, Any]]:
    """The entries of ``rows`` (``(row number, entry)`` pairs), every one a JSON
    object; :class:`~secagg.ledger.chain.LedgerError` (one line) naming the first row
    that is not.

    Why: the server reads its ledger's rows back (at start, to rebuild a missing row,
    after a failed append) as objects. A row that is valid JSON but a list, a number or
    a string (no server writes one; signed with the ledger key by something else, its
    chain verifies) ended those reads in ``AttributeError: 'list' object has no
    attribute 'get'``: a traceback at start, and after a failed append no note of the
    failure stored with its round."""
    objects: list[dict[str, Any]] = []
    for seq, entry in rows:
        if not isinstance(entry, dict):
            shown = repr(entry)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise LedgerError(
                f"the ledger {path}: row {seq} is not a JSON object but "
                f"{type(entry).__name__} {shown}: no server writes such a row; the server "
                "does not continue this ledger: restore it from a backup (secagg audit "
                "verify names the damage)"
            )
        objects.append(entry)
    return objects


def _round_span(numbers: list[int]) -> str:
    """``round 3`` or ``rounds 1 to 4`` (5 rounds), for a one-line message."""
    if len(numbers) == 1:
        return f"round {numbers[0]}"
    return f"rounds {numbers[0]} to {numbers[-1]} ({len(numbers)} rounds)"


class _StreamChoice:
    """``random.sample`` driven by a keyed stream (tests that replay a federation)."""

    def __init__(self, stream: KeyedStream) -> None:
        self._stream = stream

    def sample(self, population: list[str], k: int) -> list[str]:
        pool = list(population)
        for i in range(k):  # partial Fisher-Yates with unbiased integers
            j = i + int(self._stream.integers(len(pool) - i, 1)[0])
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


__all__ = [
    "FederationServer",
    "RoundAborted",
    "RoundResult",
    "ServerStopped",
    "ledger_objects",
    "refuse_broken_chain",
]
