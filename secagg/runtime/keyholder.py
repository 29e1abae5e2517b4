"""A backend's helper as a process: the CKKS key holder, for instance.

Some backends need a party besides the server and the clients (CKKS: the only
holder of the secret key, run by someone the server operator does not
control: a compliance office, an HSM-backed service). It connects to the server
like a branch (its own certificate, outbound only) and answers the requests of
the backend's :class:`~secagg.aggregation.base.HelperSession`, relayed as
:class:`~secagg.runtime.wire.Relay` messages. This loop never names a backend:
what is answered, and how, is the session's.

A server can restart (it resumes from its database and waits for its key holder
before the next CKKS round), so :meth:`KeyHolderService.serve` keeps the key holder
in the federation across sessions like a branch: when a session is lost it redials
with the branch's back-off (:mod:`secagg.runtime.redial`: exponential, jitter from
the OS CSPRNG, one log line per attempt) for up to ``give_up_after`` seconds from
the loss, and raises :class:`KeyHolderGaveUp` when that runs out. Before, the key
holder exited at the first lost session and the resumed server waited for it in
vain.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from secagg.aggregation import HelperSession
from secagg.aggregation.keyholder_policy import NOISE_CAP_PER_RANGE
from secagg.errors import ConfigurationError, SecAggError
from secagg.runtime import outcome, redial
from secagg.runtime.refusals import RefusalLog
from secagg.runtime.wire import FederationEnd, Relay, decode_message, encode_message
from secagg.transport.base import ClientEndpoint, NotConnected, TransportError
from secagg.transport.waiting import (
    raise_if_stop_asked,
    raise_stop_within,
    stop_asked,
    stop_behind,
)

if TYPE_CHECKING:
    from secagg.runtime.config import FederationConfig

log = logging.getLogger("secagg.keyholder")

#: the key holder's idle timer when the federation's config does not size it
#: (:func:`secagg.runtime.launch.key_holder_idle` does, from the server's deadlines)
DEFAULT_IDLE_SECONDS = 600.0

#: opens a session with the server within ``timeout`` seconds, or raises NotConnected
Dial = Callable[[float], ClientEndpoint]


def bound_to_federation(
    config: FederationConfig, settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The key holder's own settings with the federation's name bound as its
    ``federation`` (the only federation whose requests it answers) and the federation's
    round length as its ``dimension``: the length every round's sum has
    (``federation.dimension``, plus the count coordinate of adaptive clipping), computed
    as the server plans its rounds, from the federation's file the key holder holds
    itself.

    Why: the round's dimension (in the key request that opens a round, and in the
    decryption request) is the server's word, and without a length of its own the key
    holder decrypted a sum of any length a server planned (a longer one releases more
    coordinates per decryption than the federation agreed to); with it, a round of
    another length is refused when it is opened, before any branch encrypts. A
    ``dimension`` or ``federation`` the table gives must agree, or the key holder refuses
    to start with one line naming it.

    And the noise the federation plans the key holder to add (``dp``'s central z x clip,
    the std every honest decryption request asks for) is admitted by its cap on the
    noise a server asks for (``max_noise_stddev``), when the table sets none and that
    default (:data:`~secagg.aggregation.keyholder_policy.NOISE_CAP_PER_RANGE` x the
    federation's clients x its value bound) is below it: a federation of 3 branches
    planning z = 40 had every round refused by its own key holder; a cap the table sets
    below it stops the key holder at start, naming the key."""
    values = dict(settings or {})
    # the federation it serves: every key and decryption request names one, and a
    # request of another (a splice of A's aggregate into B's round) is refused
    named = values.setdefault("federation", config.name)
    if isinstance(named, str) and named != config.name:
        raise ConfigurationError(
            f"[key_holder] federation: {named!r} disagrees with the federation's config "
            f"([federation] name = {config.name!r}); leave it out to take the config's"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings: the server gives them
        mechanism = config.mechanism()
    expected = mechanism.round_dimension(config.dimension)
    planned = float(mechanism.backend_noise_stddev)
    derived = NOISE_CAP_PER_RANGE * len(config.clients) * config.backend.value_bound
    given_cap = values.get("max_noise_stddev")
    if (
        isinstance(given_cap, int | float)
        and not isinstance(given_cap, bool)
        and given_cap < planned
    ):
        raise ConfigurationError(
            f"[key_holder] max_noise_stddev: {given_cap:g} is below the noise std the "
            f"federation plans the key holder to add ({planned:g}: dp.noise_multiplier x "
            "dp.clip): it would refuse every round; refusing to start"
        )
    if planned > derived and "max_noise_stddev" not in values:
        own = values.get("noise_stddev")
        values["max_noise_stddev"] = max(planned, _own_noise(own))
    given = values.setdefault("dimension", expected)
    if isinstance(given, int) and not isinstance(given, bool) and given != expected:
        raise ConfigurationError(
            f"[key_holder] dimension: {given} disagrees with the federation's rounds of "
            f"{expected} values (federation.dimension = {config.dimension}); leave it out to "
            "take the federation's"
        )
    return values


def _own_noise(value: object) -> float:
    """The ``[key_holder] noise_stddev`` as a finite float, or 0 for anything else (the
    policy refuses that itself, in one line naming the key)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:  # an int past the floats
        return 0.0
    return number if math.isfinite(number) else 0.0


def _local_text(error: BaseException) -> str:
    """``error`` as the key holder's own log writes it: its text, then the detail the
    session kept out of its refusal reply (``local_detail``: local paths, what the key
    holder's operator must do), if it has one. Read by name, not by class, so this loop
    still names no backend."""
    detail = getattr(error, "local_detail", "")
    return f"{error} [{detail}]" if isinstance(detail, str) and detail else str(error)


class KeyHolderGaveUp(NotConnected):
    """The key holder found no session with the server for ``give_up_after`` seconds
    since its connection was lost (or, for the first one, ``connect_timeout``).

    A :class:`~secagg.transport.base.TransportError` (``secagg keyholder`` exits 1);
    ``decryptions`` is the lifetime count so far, ``cause`` the last transport error."""

    def __init__(self, message: str, decryptions: int, cause: BaseException | None) -> None:
        super().__init__(message)
        self.decryptions = decryptions
        self.cause = cause


@dataclass(frozen=True)
class KeyHolderRun:
    """How a key holder's service ended (:func:`secagg.runtime.launch.run_key_holder`).

    ``outcome``: "finished" (the server announced the federation complete), "stopped"
    (it announced an end before the last round; ``reason`` says why) or "idle" (the
    server was silent for the idle timeout: no end was announced). Only "finished" is
    a federation this key holder saw through: ``secagg keyholder`` exits 0 for it alone,
    as ``secagg client`` does for its branch."""

    decryptions: int
    outcome: str
    reason: str = ""
    sessions: int = 0

    @property
    def finished(self) -> bool:
        return self.outcome == "finished"


def _raise_stop_behind(exc: BaseException) -> None:
    """Raise the stop ``exc`` surfaced from, if it did (:func:`stop_behind`): the very
    interrupt where the chain has one, else :class:`StopAsked` for the recorded stop.

    Why: the key holder's catch-alls that only log and serve on looked at the chain
    alone, so a SIGTERM recorded while a library raised its own error there (the
    request's reply built, the clamp note written) logged one ERROR line before the
    next turn of the loop ended the key holder on the stop anyway."""
    if stop_behind(exc) is not None:
        raise_stop_within(exc)
        raise_if_stop_asked()


class KeyHolderService:
    """Serves a helper session's requests from the federation server.

    The loop outlives any one message: whatever a message makes the decoder or
    the session raise (a refusal by the key holder's policy, a malformed or
    hostile payload, a bug), it is logged and the next message is read. A server
    must not be able to stop the key holder by what it sends (review L3); only
    the transport ending, the server going silent (of any request answered anew: see
    :meth:`run`) for the idle timer, or the server's
    :class:`~secagg.runtime.wire.FederationEnd` ends the loop. A refused request is
    answered with the session's refusal (:meth:`HelperSession.refusal`), so the server
    aborts that round at once instead of waiting out its deadline. Ending on that
    announcement lets the key holder exit with the branches instead of waiting out
    its idle timer after every finished federation; a forged end costs only a
    restart of the key holder, never a decryption.
    """

    def __init__(self, name: str, transport: ClientEndpoint | None, session: HelperSession) -> None:
        self.name = name
        self._transport = transport
        self.session = session
        self.answered = 0
        self.refused = 0
        self.sessions = 0  # sessions opened by serve() (1 + the reconnections)
        self.end: FederationEnd | None = None
        #: why the last run() returned: "finished" or "stopped" (the server's
        #: announcement; see end_reason) or "idle" (the server was silent); None while
        #: running (see KeyHolderRun)
        self.outcome: str | None = None
        self.end_reason = ""
        # refused requests: a few logged, the rest counted (the server chooses how many)
        self._refusals = RefusalLog(log, name)
        self._refusal_failed = False  # a refusal could not be built (logged once)
        #: the last decryption's request (its SHA-256) and its reply, until the next
        #: other message: a resend of that very request is answered with that very reply
        #: (see _repeat)
        self._last_release: tuple[bytes, bytes] | None = None
        #: the idle timer: the last request answered anew (or the first session's start),
        #: when the last session was lost (None: none since the last run began) and the
        #: sessions lost since that request; the timer goes on across sessions (see run)
        self._heard = time.monotonic()
        self._session_lost_at: float | None = None
        self._quiet_sessions = 0
        self._last_answered: bytes | None = None  # the last request answered's SHA-256

    @property
    def decryptions(self) -> int:
        return int(getattr(self.session, "decryptions", self.answered))

    def run(self, *, idle_timeout: float | None = 120.0) -> int:
        """Answer requests until the server announces the federation's end or is silent for
        ``idle_timeout`` (None: never); returns decryptions. :attr:`end` holds the
        announcement, if any. A lost session raises
        :class:`~secagg.transport.base.NotConnected` (:meth:`serve` redials).

        The idle timer counts from the first session's start or the last request
        answered anew: a request the session answered (not refused) that is not the last
        one answered again, on this session or an earlier one. Messages refused or not
        for the key holder, the resend of its last decryption (:meth:`_repeat`) and one
        request answered again and again (the key request of the round opened, which the
        CKKS key holder answers from what it holds) leave it running. Why: every receive
        waited the whole timer again, so a server, or anything on the key holder's
        channel, sending any of those a little more often than ``--idle`` kept the key
        holder waiting forever while the federation moved nowhere (review, 2026-12-06;
        the branch's rule, since then).

        Nor does a new session restart it: after a lost session the timer goes on from
        where that session left it, the time without a session left out (the redial
        window's, :meth:`serve`), so a server that ends every session after ~10 s and
        accepts the redial cannot keep the key holder waiting forever, nor one that
        sends the same request again on each new session (review, 2026-12-06; the
        branch's rule too)."""
        if self._transport is None:
            raise NotConnected(f"{self.name} has no session: dial first (serve)")
        self.outcome, self.end_reason = None, ""
        self._heard = redial.idle_start_on_new_session(
            self._heard, self._session_lost_at, time.monotonic()
        )
        self._session_lost_at = None
        try:
            return self._serve_session(idle_timeout)
        except NotConnected:
            self._session_lost(time.monotonic())
            raise

    def _session_lost(self, now: float) -> None:
        """The session ended at ``now``: the idle timer stops until the next session; the
        first session lost after a request answered anew spends none of it.

        Why: the timer is sized to cover the round's wait between its key request and its
        decryption request (:func:`~secagg.runtime.launch.key_holder_idle`), and within one
        session an honest server ends that wait with the next request. A server that died
        late in the round never sends it: carried to the restarted server, the wait had
        spent the timer, and the key holder gave up while the restarted server waited for
        its parties and a quorum, each within its bound (review, 2026-12-06). Only the
        first such session: later ones, with nothing answered, count, so a server that
        ends every session still has the key holder give up (within two timers)."""
        if self._quiet_sessions == 0 and self._last_answered is not None:
            self._heard = now  # the round's wait so far is no silence
        self._session_lost_at = now
        self._quiet_sessions += 1

    def _serve_session(self, idle_timeout: float | None) -> int:
        """:meth:`run`'s loop on the current session (the idle timer already set)."""
        assert self._transport is not None
        ignored = 0  # messages since the last request answered anew
        while True:
            raise_if_stop_asked()  # a stop a library swallowed (a decryption's, a receive's)
            wait = None
            if idle_timeout is not None:
                wait = max(0.0, idle_timeout - (time.monotonic() - self._heard))
            payload = self._transport.receive(timeout=wait)
            raise_if_stop_asked()  # swallowed in the receive: not taken as the server's
            if payload is not None:
                answered = self.answered
                if not self._repeat(payload):
                    before = self.decryptions
                    reply = self._answer(payload)
                    spent = self.decryptions != before
                    if reply is not None and spent and self.answered != answered:
                        # a sum released (not a refusal): kept for a resend of its request
                        self._last_release = (hashlib.sha256(payload).digest(), reply)
                    digest = hashlib.sha256(payload).digest()
                    anew = self.answered != answered and digest != self._last_answered
                    if reply is not None:
                        # a stop swallowed in the decryption (CKKS's C calls) releases
                        # nothing: the sum stays unsent, its decryption counted, as for a
                        # reply lost with its session (second review of the stop record);
                        # said, as the stop's other forms say it
                        # (tests/runtime/test_keyholder_plain_stop_spent.py)
                        if spent and stop_asked() is not None:
                            self._log_spent(before)
                        raise_if_stop_asked()
                        try:
                            self._send_reply(payload, reply, spent=spent)
                        except ConnectionError:
                            # the session broke under the reply of a request answered
                            # anew: the round moved all the same (its key made, its sum
                            # decrypted and counted), and the resend on the next session
                            # is answered as a repeat, which is no progress
                            if anew:
                                self._progress(digest)
                            raise
                        finally:
                            self._after_reply()  # nothing the reply's timing may show
                    if self.end is not None:
                        return self.decryptions
                    # still answered once sent (a reply the transport refused is a refusal)
                    if anew and self.answered != answered:
                        self._progress(digest)
                        ignored = 0
                        continue
                ignored += 1
                if wait is None or wait > 0.0:
                    continue  # the timer has not run out yet
            self.outcome = "idle"
            if ignored == 0:
                self.end_reason = f"the server was silent for {idle_timeout or 0:.0f} s"
            else:
                self.end_reason = (
                    f"the server sent nothing this key holder could take for "
                    f"{idle_timeout or 0:.0f} s ({ignored} messages refused, repeated or "
                    "not for it)"
                )
            if self._quiet_sessions:  # the server ended the others: their time counted
                self.end_reason += f", over {self._quiet_sessions + 1} sessions"
            return self.decryptions

    def _progress(self, digest: bytes) -> None:
        """The request of SHA-256 ``digest`` was answered anew: the idle timer restarts."""
        self._heard, self._last_answered, self._quiet_sessions = time.monotonic(), digest, 0

    def serve(
        self,
        dial: Dial,
        *,
        idle_timeout: float | None = 120.0,
        connect_timeout: float = 30.0,
        give_up_after: float | None = 600.0,
        reconnect: bool = True,
    ) -> int:
        """Answer requests across sessions until the federation's end is announced or the
        server is silent for ``idle_timeout`` within a session; returns decryptions.

        The first session is dialled for up to ``connect_timeout`` seconds; a lost one
        is redialled for up to ``give_up_after`` seconds from the loss (None: until the
        end is announced). Raises :class:`KeyHolderGaveUp` when that window runs out and
        :class:`~secagg.transport.base.NotAccepted` at once when the server refuses this
        party for who it is (no redial can cure that)."""

        def one_session(transport: ClientEndpoint) -> int:
            self._transport = transport
            try:
                return self.run(idle_timeout=idle_timeout)
            finally:
                self._transport = None

        def opened() -> int:
            self.sessions += 1
            return self.sessions

        return redial.serve_sessions(
            log,
            self.name,
            dial,
            one_session,
            opened=opened,
            gave_up=lambda message, cause: KeyHolderGaveUp(message, self.decryptions, cause),
            connect_timeout=connect_timeout,
            give_up_after=give_up_after,
            reconnect=reconnect,
        )

    def _after_reply(self) -> None:
        """The session's say on the request just answered, now that its reply has left
        (:meth:`~secagg.aggregation.base.HelperSession.after_reply`: the CKKS key holder's
        warning that it clamped a sum, which written before the reply made the reply's
        timing tell the server whether the sum was clamped). Never raises: a failure is
        one log line, and the service goes on."""
        say = getattr(self.session, "after_reply", None)
        if say is None:
            return
        try:
            say()
        except Exception as exc:  # its own log lines only: never stop serving for them
            # a Ctrl-C or SIGTERM that surfaced as this (in the chain, or recorded while a
            # library raised its own error): the stop, not one more ERROR line beside it
            _raise_stop_behind(exc)
            log.error("%s: its notes on the last request failed: %r", self.name, exc)

    def _repeat(self, payload: bytes) -> bool:
        """Whether ``payload`` is the last decryption's request again, answered here with
        the reply already made for it (no second decryption, nothing counted); any other
        message drops that reply.

        Why: the server sends a request again, once a round, when the key holder's session
        changed before it answered (:meth:`FederationServer._helper_restarted`). When the
        session broke under the reply (a network cut as the sum left, the reply queued
        but never delivered), the key holder had decrypted, and its record refused the
        resend as a round already served: the round aborted, every branch's upload lost,
        and a decryption of the lifetime cap spent on nothing. The very same reply again
        is no new release: the same noised sum, the same noise, to the server the first
        was for, so the once-per-round rule (no fresh noise to average) holds. Only the
        identical request (round, federation, aggregate, noise asked, byte for byte) gets
        it; a process that restarted has no reply kept, and its record refuses the round
        as before."""
        kept = self._last_release
        if kept is None:
            return False
        if not hmac.compare_digest(hashlib.sha256(payload).digest(), kept[0]):
            self._last_release = None  # another message: the resend window is over
            return False
        request = decode_message(payload)  # answered once already: it decodes
        round_number = request.round if isinstance(request, Relay) else -1
        raise_if_stop_asked()  # nothing leaves after a stop, the same reply neither
        log.warning(
            "%s: the server sent round %d's decryption request again (its session changed "
            "before the reply reached it); sent the same reply again, no new decryption "
            "(lifetime count %d)",
            self.name,
            round_number,
            self.decryptions,
        )
        self.answered += 1
        self._send_reply(payload, kept[1])
        return True

    def _answer(self, payload: bytes) -> bytes | None:
        """The reply to one message: the session's answer, its refusal of a request it
        refused (see :meth:`_refusal`), or None (not for the helper, not a request, or a
        helper without refusals; refused requests are logged)."""
        before = self.decryptions
        relay: Relay | None = None
        try:
            message = decode_message(payload)
            if isinstance(message, FederationEnd):
                self._ended(message)
                return None
            if not isinstance(message, Relay):
                return None  # round starts and ends are not for the helper
            relay = message
            answer = self.session.handle(message.payload, round_number=message.round)
            reply = encode_message(Relay(message.round, answer))
        except SecAggError as exc:
            self.refused += 1
            self._log_spent(before)
            # the full text here (a refusal's local detail: its state file's path, what
            # the operator must do); the server hears only the refusal's own text
            self._refusals.refused(
                logging.WARNING,
                "%s refused a request (%s): %s",
                self.name,
                type(exc).__name__,
                _local_text(exc),
            )
            return self._refusal(relay, exc)
        except Exception as exc:  # anything else a hostile message provokes: never crash
            if stop_behind(exc) is not None:
                # a stop that a library raised its own error for (a SIGTERM that killed a
                # worker, recorded; a Ctrl-C in the error's chain): the stop, not "a
                # request raised ...; ignored, serving on" at ERROR beside the command's
                # "stopped by SIGTERM"; a decryption it spent is said either way (the
                # chain's stop went out before the look: tests/runtime/
                # test_keyholder_chained_stop_spent.py)
                self._log_spent(before)
                _raise_stop_behind(exc)
            self.refused += 1
            self._log_spent(before)
            self._refusals.refused(
                logging.ERROR,
                "%s: a request raised %s (%s); ignored, serving on",
                self.name,
                type(exc).__name__,
                exc,
            )
            log.debug("the request's traceback", exc_info=True)
            return self._refusal(relay, exc)
        except KeyboardInterrupt:
            # the stop itself (Python's Ctrl-C where the decryption's Python code was, a
            # StopAsked): a decryption it spent is said as for the stop's other forms;
            # it passed the catch-all above unsaid
            # (tests/runtime/test_keyholder_plain_stop_spent.py)
            self._log_spent(before)
            raise
        self.answered += 1
        self._refusals.reset()  # a request answered: the session makes progress
        if self.decryptions != before:
            log.info(
                "%s decrypted round %d (decryption %d of its lifetime)",
                self.name,
                message.round,
                self.decryptions,
            )
        return reply

    def _send_reply(self, payload: bytes, reply: bytes, *, spent: bool = False) -> None:
        """Send ``reply`` to the request ``payload``; a reply the transport refuses (above
        its ``max_message_bytes``, its outbox full) makes the request a refused one.
        ``spent``: the request cost a decryption (``reply`` carries the sum).

        Why: the send was outside the loop's guard, so a reply larger than the session's
        limit (a decryption of a model the server sized beyond it) raised
        :class:`~secagg.transport.framing.MessageTooLarge` out of :meth:`run` and stopped
        the key holder's service (review, 2026-12-06). Now it is one log line, the
        request counted refused (not answered), the session's refusal sent instead when
        it has one (small: the server aborts the round at once rather than waiting out
        its phase), and the service goes on. A lost session (``ConnectionError``) still
        ends :meth:`run`, so :meth:`serve` redials.

        A decryption whose reply did not leave still counts against the lifetime cap
        (``max_decryptions``), deliberately, and the log says so. Why not give it back:
        the count is on disk before anything leaves (the session commits it first, so
        a crash between the decryption and the send cannot un-spend it), and giving it
        back needs a second write that a crash can skip; the key holder cannot tell a
        reply that never left from one that left as its session broke (a transport may
        fail after handing the bytes on); and it cannot tell a failure from one a
        server provoked (closing its session as each decryption is due): a refund is
        a decryption the cap does not bound. A round whose reply was lost is never
        decrypted again (the once-per-round record refuses it); the server's resend of
        its request gets the same reply from this process (:meth:`_repeat`). The cost of
        counting is one decryption of the cap per reply lost for good, said on the lines
        below, not a release."""
        assert self._transport is not None
        try:
            self._transport.send(reply)
            return
        except ConnectionError as exc:
            if spent:  # the session broke under the reply: the decryption stays spent
                log.warning(
                    "%s: its session ended before the reply to its decryption left (%s); "
                    "the decryption stays counted (lifetime count %d), and a resend of "
                    "its request gets the same reply",
                    self.name,
                    exc,
                    self.decryptions,
                )
            raise
        except TransportError as exc:
            error = exc
        self.answered -= 1
        self.refused += 1
        self._refusals.refused(
            logging.WARNING,
            "%s could not send its reply (%s): %s; the request is refused%s, serving on",
            self.name,
            type(error).__name__,
            error,
            (
                f" and one decryption spent without release (lifetime count {self.decryptions})"
                if spent
                else ""
            ),
        )
        request = decode_message(payload)  # decoded once already: a reply came of it
        refusal = self._refusal(request if isinstance(request, Relay) else None, error)
        if refusal is None:
            return
        try:
            self._transport.send(refusal)
        except ConnectionError:
            raise
        except TransportError:  # the server waits out the phase, as without a refusal
            log.debug("%s: its refusal could not be sent either", self.name)

    def _refusal(self, relay: Relay | None, error: BaseException) -> bytes | None:
        """The session's refusal of ``relay``'s request, relayed under its round, or None
        (the message was no request, or the session has no refusal reply).

        Why: a refused request was answered with silence, so the server waited out the
        phase's deadline (a 60 s phase took 60 s to abort a round the key holder had
        refused when it was opened); with the refusal it aborts at once, with the key
        holder's reason. One small reply per request, as an answer would be: no
        amplification for a server sending junk. Building it never stops the loop."""
        build = getattr(self.session, "refusal", None)  # a HelperSession has one (or None)
        if relay is None or build is None:
            return None
        try:
            refusal = build(error)
            return None if refusal is None else encode_message(Relay(relay.round, refusal))
        except Exception as exc:  # never let a refusal stop the key holder
            _raise_stop_behind(exc)  # a Ctrl-C or SIGTERM that surfaced as this: the stop
            # logged once: a server's junk must not make this a line per request
            level = logging.DEBUG if self._refusal_failed else logging.ERROR
            self._refusal_failed = True
            log.log(level, "%s: could not build a refusal (%s); none sent", self.name, exc)
            return None

    def _ended(self, end: FederationEnd) -> None:
        self.end = end
        self.outcome = "finished" if end.finished else "stopped"
        self.end_reason = end.reason
        # the verdict: run() returns it (outcome), and a command says it itself
        if end.finished:
            outcome.log.info("%s: the federation finished (last round %d)", self.name, end.round)
        else:
            outcome.log.warning(
                "%s: the server stopped the federation after round %d: %s",
                self.name,
                end.round,
                end.reason or "no reason given",
            )

    def _log_spent(self, before: int) -> None:
        """Warn when a request raised after its decryption was recorded: the decryption
        counts against the lifetime cap, and nothing was released.

        Why it can happen at all: a session records a decryption before its reply is
        built, so a failure building the reply (memory, say) spends one. The CKKS key
        holder's refusal of an implausible sum after decrypting was the other case until
        2026-12-06; it now releases that sum clamped (:func:`~secagg.aggregation.
        keyholder_policy.clamp_to_plausible`)."""
        if self.decryptions != before:
            log.warning(
                "%s: one decryption spent without release (lifetime count %d)",
                self.name,
                self.decryptions,
            )
