"""Drive a round's sessions in memory: the research API and the tests' harness.

:func:`run_local_round` plays the network for one server session, its client
sessions and the backend's helper: every payload goes through its bytes, as it
would over gRPC, and the server's phases close when nobody is left to answer
(the in-memory stand-in for a deadline). ``vanish`` makes client ``p`` go silent
after it has sent ``vanish[p]`` payloads (0: it never sends anything), which is
how a dropout at any phase looks to the server.
"""

from __future__ import annotations

import numbers
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from secagg.aggregation.base import (
    HELPER,
    AggregationBackend,
    AggregationResult,
    Announce,
    ClientSession,
    HelperSession,
    Outgoing,
    ToParty,
    real_array,
)
from secagg.aggregation.registry import decode_spec
from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError, RoundAborted, SecAggError


@dataclass
class RoundTimings:
    """CPU-bound wall time of each role in an in-memory round (benchmarks read it)."""

    server_seconds: float = 0.0  # start, every handle and close_phase
    helper_seconds: float = 0.0  # the helper's answers (CKKS: key generation, decryption)
    client_seconds: dict[int, float] = field(default_factory=dict)  # all of one client's work
    largest_payload: dict[int, int] = field(default_factory=dict)  # bytes, per client
    #: the clock each role is timed by; a subclass may read another (the benchmarks' CPU
    #: clock on a shared machine)
    clock: ClassVar[Callable[[], float]] = staticmethod(time.perf_counter)

    def timed(self, role: str, party: int, call: Callable[..., Any], *args: Any) -> Any:
        start = self.clock()
        try:
            return call(*args)
        finally:
            spent = self.clock() - start
            if role == "server":
                self.server_seconds += spent
            elif role == "helper":
                self.helper_seconds += spent
            else:
                self.client_seconds[party] = self.client_seconds.get(party, 0.0) + spent


def _is_index(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _vanish_schedule(vanish: object, n: int) -> dict[int, int]:
    """``vanish`` as {client: payloads it sends before going silent}, or a
    ConfigurationError naming what is wrong.

    Why: a string key or count failed as a TypeError in a comparison, a list as a
    dict-conversion TypeError, and ``{True: 0}``, ``{0: -1}``, ``{0: 1.5}`` and
    ``{0: None}`` each ran a round other than the caller described (client 1
    silenced, or client 0 not silenced at all)."""
    if vanish is None:
        return {}
    if not isinstance(vanish, Mapping):
        raise ConfigurationError(
            f"vanish maps clients to the payloads they send, not {type(vanish).__name__}"
        )
    schedule: dict[int, int] = {}
    for party, count in vanish.items():
        if not _is_index(party) or not 0 <= party < n:
            raise ConfigurationError(f"vanishing clients must lie in 0..{n - 1}, not {party!r}")
        if not _is_index(count) or count < 0:
            raise ConfigurationError(
                f"client {party} vanishes after a count of payloads (an integer >= 0), "
                f"not {count!r}"
            )
        schedule[int(party)] = int(count)
    return schedule


def run_local_round(
    backend: AggregationBackend,
    updates: np.ndarray,
    *,
    vanish: Mapping[int, int] | None = None,
    noise_stddev: float = 0.0,
    rounding: KeyedStream | None = None,
    plan_options: Mapping[str, object] | None = None,
    timings: RoundTimings | None = None,
    helper: HelperSession | None = None,
    round_number: int = 1,
) -> AggregationResult:
    """One round of ``backend`` over the rows of ``updates``; the server's result.

    ``helper`` is the backend's helper to use (default: a fresh
    ``backend.helper()``); pass the same one to several calls, with increasing
    ``round_number``, to play a federation's rounds against one key holder.

    Raises :class:`~secagg.errors.RoundAborted` when the backend cannot give a
    correct sum (e.g. masking below its threshold, or the helper refused the
    round: in a federation the server would wait for its answer in vain).
    """
    rows = real_array(updates, "updates")
    if rows.ndim != 2:
        raise ConfigurationError(f"updates must be an (n, d) array, got shape {rows.shape}")
    n, d = rows.shape
    silent_after = _vanish_schedule(vanish, n)
    spec = backend.plan(n, d, **dict(plan_options or {}))
    server = backend.server(spec, noise_stddev=noise_stddev)
    helper = helper if helper is not None else backend.helper()
    clients: dict[int, ClientSession] = {}
    sent = dict.fromkeys(range(n), 0)
    inbox: deque[tuple[int, bytes]] = deque()  # (sender, payload) to the server
    clock = timings or RoundTimings()

    def silent(party: int) -> bool:
        limit = silent_after.get(party)
        return limit is not None and sent[party] >= limit

    def from_client(party: int, payloads: list[bytes]) -> None:
        for payload in payloads:
            if silent(party):
                return
            sent[party] += 1
            largest = clock.largest_payload
            largest[party] = max(largest.get(party, 0), len(payload))
            inbox.append((party, payload))

    def deliver(outgoing: list[Outgoing]) -> None:
        for event in outgoing:
            if isinstance(event, Announce):
                announced = decode_spec(event.spec)
                for party in range(n):
                    session = backend.client(announced, party, rounding=rounding)
                    clients[party] = session
                    if not silent(party):
                        row = rows[party]
                        from_client(
                            party,
                            clock.timed("client", party, session.set_input, row),
                        )
            elif isinstance(event, ToParty) and event.party == HELPER:
                if helper is None:
                    raise ConfigurationError(f"the {backend.name} backend has no helper")
                try:
                    answer = clock.timed("helper", HELPER, _ask, helper, event.payload)
                except SecAggError as exc:  # refused: nothing comes back, the round aborts
                    deliver(server.abort(f"the {backend.name} helper refused: {exc}"))
                    continue
                inbox.append((HELPER, answer))
                helper.after_reply()  # the reply is out: what the helper logs after it
            elif isinstance(event, ToParty):
                party = event.party
                if party not in clients or silent(party):
                    continue  # vanished: it neither reads nor answers
                try:
                    handle = clients[party].handle
                    from_client(party, clock.timed("client", party, handle, event.payload))
                except RoundAborted:
                    continue  # the client left the round; the server will see it silent

    def _ask(session: HelperSession, payload: bytes) -> bytes:
        return session.handle(payload, round_number=round_number)

    deliver(clock.timed("server", 0, server.start))
    while not server.done:
        if inbox:
            party, payload = inbox.popleft()
            deliver(clock.timed("server", 0, server.handle, party, payload))
        else:
            deliver(clock.timed("server", 0, server.close_phase))
    return server.finish()
