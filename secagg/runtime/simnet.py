"""The simulated network: the in-process transport plus byte counts and scheduled dropouts.

Dropouts here take the *real* paths: a branch scheduled to vanish in a round
stops sending at its phase (before its key advertisement, its encrypted shares,
its masked input or its unmasking shares) and disappears from the server's view
of connected clients, exactly as a closed gRPC stream does. The server then
closes the phase without it, and the protocol recovers the sum from the
survivors' shares, or aborts below the threshold. The vanished branch comes
back for the next round.

The schedule is a function of the seed, the round and the branch name (SHA-256
to a uniform number), so a run with the same seed drops the same branches at
the same phases. A branch that reaches its vanishing point only after the server
ended that round (it answered late: its phase closed at the deadline while it
trained, or the round aborted) is recorded as a dropout and hides nothing, as on
the Ray engine: hidden until its thread read the round's end, it sat the next
round out or not by thread timing.

It lives in the runtime (``secagg simulate`` re-exports it from
``secagg.apps.simulation.network``) because both of the simulator's engines play
the same schedule: the in-process one here, and the Ray engine
(:mod:`secagg.runtime.ray_engine`), whose client hosts wrap each of their branches
in the same :class:`_ScheduledEndpoint`, so one seed drops the same branches at the
same phases on either engine.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from secagg.errors import SecAggError
from secagg.runtime.wire import ROUND_END, RoundEnd, RoundStart, decode_message
from secagg.transport.inprocess import InProcessHub

#: the messages a branch sends in a masking round, in order (a dropout skips one and the rest)
MASKING_PHASES = ("advertise_keys", "share_keys", "masked_input", "unmasking")
#: plain and CKKS rounds: a branch sends one contribution
SINGLE_PHASE = ("contribution",)


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class DropoutSchedule:
    """Which branch vanishes in which round, and before which of its messages."""

    rate: float
    seed: int
    phases: tuple[str, ...] = MASKING_PHASES

    def phase_for(self, round_number: int, name: str) -> int | None:
        """Index of the first message ``name`` does not send in this round, or None."""
        if _uniform("secagg/v1/sim-dropout", self.seed, round_number, name) >= self.rate:
            return None
        pick = _uniform("secagg/v1/sim-dropout-phase", self.seed, round_number, name)
        return min(int(pick * len(self.phases)), len(self.phases) - 1)


@dataclass(frozen=True)
class DropoutEvent:
    round: int
    branch: str
    phase: str


class SimulatedNetwork(InProcessHub):
    """An :class:`InProcessHub` that counts bytes per branch and plays a dropout schedule."""

    def __init__(self, schedule: DropoutSchedule | None = None) -> None:
        super().__init__()
        self.schedule = schedule
        self._vanished: set[str] = set()
        self._ended_round: dict[str, int] = {}  # the last round whose end was sent, by name
        self._late_vanishes: set[tuple[str, int]] = set()  # recorded, hiding nothing
        self._count_lock = threading.Lock()
        self.bytes_sent: dict[str, int] = defaultdict(int)  # branch -> server
        self.bytes_received: dict[str, int] = defaultdict(int)  # server -> branch
        self.dropouts: list[DropoutEvent] = []

    # server side
    def send(self, name: str, payload: bytes) -> None:
        super().send(name, payload)
        self._sent_to(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        """As the hub's (to ``name``'s session ``session`` only), counted as :meth:`send`
        counts: defined beside :meth:`send`, so the server uses it here too."""
        payload = b"".join(parts)
        super().send_to_session(name, session, (payload,))
        self._sent_to(name, payload)

    def _sent_to(self, name: str, payload: bytes) -> None:
        """Count a message sent to ``name``; a round's end is remembered (a vanish of that
        round from now on hides nothing) and brings a vanished branch back."""
        ended = _round_end(payload)
        with self._count_lock:
            self.bytes_received[name] += len(payload)
            vanished = name in self._vanished
            if ended is not None:
                self._ended_round[name] = max(ended, self._ended_round.get(name, 0))
        if vanished and ended is not None:
            # back for the next round as soon as the server has ended this one: waiting
            # for the branch's thread to read the RoundEnd let the server sample the next
            # round before it had, so the branch sat that round out on some runs and not
            # on others (the same seed gave different runs)
            self._reappear(name)

    def connected(self) -> set[str]:
        with self._count_lock:
            vanished = set(self._vanished)
        return super().connected() - vanished

    # client side
    def connect(self, name: str) -> _ScheduledEndpoint:  # type: ignore[override]
        return _ScheduledEndpoint(self, name, super().connect(name))

    def _vanish(self, event: DropoutEvent) -> None:
        """Hide ``event.branch`` from :meth:`connected` until its round's end is sent,
        and wake the server; once, however many messages it then holds back. A vanish of
        a round whose end was already sent is recorded once and hides nothing (see the
        module: the Ray engine's rule, ``RayHub._remote_vanish``)."""
        with self._count_lock:
            if self._ended_round.get(event.branch, 0) >= event.round:
                late = (event.branch, event.round)
                if late not in self._late_vanishes:
                    self._late_vanishes.add(late)
                    self.dropouts.append(event)
                return
            vanishing = event.branch not in self._vanished
            if vanishing:
                self._vanished.add(event.branch)
                self.dropouts.append(event)
        if vanishing:
            self.wake_server()  # the server looks at once, not at its next poll

    def _reappear(self, name: str) -> None:
        """Bring a vanished ``name`` back (its round ended) and wake the server's waits
        for parties (``wait_for_sessions``: the quorum wait, the start wait).

        Why no :meth:`wake_server`, which a vanish calls: that wakes the collect loop's
        ``receive``, which waits there for messages and, among returns, only for the
        round's key holder (to send it its request again); a key holder is sent no
        :class:`RoundStart`, so it has no schedule and never vanishes here. A branch
        back for the next round is seen by that round's draw, which looks at
        :meth:`connected` afresh."""
        with self._count_lock:
            back = name in self._vanished
            self._vanished.discard(name)
        if back:  # connected() grew: a quorum wait may be waiting for it
            self.sessions_changed()

    def _count_sent(self, name: str, size: int) -> None:
        with self._count_lock:
            self.bytes_sent[name] += size


def _round_end(payload: bytes) -> int | None:
    """The round of a :class:`~secagg.runtime.wire.RoundEnd`, else None (the kind byte
    is read first: a round start's model is not decoded; a malformed message is no
    round end, and its client refuses it)."""
    if len(payload) < 6 or payload[5] != ROUND_END:
        return None
    try:
        message = decode_message(payload)
    except SecAggError:
        return None
    return message.round if isinstance(message, RoundEnd) else None


class _ScheduledEndpoint:
    """A branch's endpoint that goes silent at its scheduled phase of a round."""

    def __init__(self, network: SimulatedNetwork, name: str, inner: object) -> None:
        self._network = network
        self.name = name
        self._inner = inner
        self._round: int | None = None
        self._drop_at: int | None = None
        self._sent = 0

    def receive(self, timeout: float | None) -> bytes | None:
        payload = self._inner.receive(timeout)  # type: ignore[attr-defined]
        if payload is not None:
            try:
                message = decode_message(payload)
            except SecAggError:
                return payload  # the client refuses it; nothing to schedule
            if isinstance(message, RoundStart):
                self._round, self._sent = message.round, 0
                schedule = self._network.schedule
                self._drop_at = (
                    None if schedule is None else schedule.phase_for(message.round, self.name)
                )
            elif isinstance(message, RoundEnd):
                self._network._reappear(self.name)
                self._round, self._drop_at = None, None
        return payload

    def send(self, payload: bytes) -> None:
        schedule = self._network.schedule
        if self._drop_at is not None and self._sent >= self._drop_at and schedule is not None:
            phases = schedule.phases
            phase = phases[min(self._drop_at, len(phases) - 1)]
            self._network._vanish(DropoutEvent(self._round or 0, self.name, phase))
            return  # vanished: nothing more leaves this round
        self._sent += 1
        self._network._count_sent(self.name, len(payload))
        self._inner.send(payload)  # type: ignore[attr-defined]
