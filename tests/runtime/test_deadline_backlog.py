"""A phase's deadline seen at a refused message reads the answers already queued first.

Found by the runtime review of 2026-12-07 (secagg/runtime/server.py, ``_drive``): the
collect loop checks a phase's deadline when a receive brings nothing it can use, a
refused message included, so that a stream of junk cannot hold a phase open. On a busy
server, though, the answers of a phase can wait in the transport's inbox past the
deadline; read in turn they are taken, but one junk message read first closed the phase
at once: every answer queued behind it was a dropout, and one branch that sent junk
behind its own answer made the round abort below its threshold. Now the loop reads the
messages queued when it saw the deadline (``queued()``, which the in-process hub and
gRPC's server offer) and then closes the phase: what came in time is taken, and a stream
that never runs dry still cannot hold the phase open.

Over :class:`~_lockstep_hub.LockstepHub`, whose clock moves three seconds for every
message the server reads (a slow server, on the clock alone): the branches' answers are
all queued at once, against a ten-second phase deadline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _lockstep_hub import LockstepHub

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, encode_message

NAMES = [f"branch-{i}" for i in range(5)]
JUNK = encode_message(Relay(1, b"junk"))
#: fake seconds the server takes to read a message, and a phase's deadline
READ_SECONDS, PHASE_SECONDS = 3.0, 10.0


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "backlog", "clients": NAMES, "dimension": 8, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # one dropout among the five is survived, two are not
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.3},
            "deadlines": {"phase_seconds": PHASE_SECONDS, "round_seconds": 1000.0},
        }
    )


def _train(model: np.ndarray) -> np.ndarray:
    return np.full_like(model, 0.01)


class _SlowServer(LockstepHub):
    """Every message the server reads moves the clock on by :data:`READ_SECONDS`;
    ``flood`` puts one more junk message from ``branch-0`` in the inbox at each read (a
    stream that never runs dry). ``reads`` counts the messages read."""

    def __init__(self, *, flood: bool = False) -> None:
        super().__init__()
        self.flood = flood
        self.reads = 0

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None:
            self.reads += 1
            assert self.reads < 10_000, "the phase never closed"
            self.now += READ_SECONDS
            if self.flood:
                self._to_server.put((NAMES[0], JUNK))
        return item


class _JunkAfterFirstAnswer:
    """A branch's endpoint that sends one junk payload right behind its first answer."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self._sent = 0

    def send(self, payload: bytes) -> None:
        self._inner.send(payload)  # type: ignore[attr-defined]
        if self._sent == 0:
            self._inner.send(JUNK)  # type: ignore[attr-defined]
        self._sent += 1

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


def test_junk_read_past_the_deadline_drops_no_answer_that_came_in_time(tmp_path: Path) -> None:
    """The five keys are queued at once; branch-2 sends junk behind its own. Read at 3 s a
    message, the junk comes fourth, past the 10 s deadline. Before: the phase closed
    there, branch-3 and branch-4 (queued in time) were dropouts, and the round aborted
    below its threshold of 4. Now the two are read first and the round completes."""
    hub = _SlowServer()
    for name in NAMES:
        if name == NAMES[2]:
            endpoint = hub.connect(name)
            client = FederationClient(name, _train, _JunkAfterFirstAnswer(endpoint))
            hub.adopt(client, endpoint)
        else:
            hub.join(name, _train)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    result = server.run_round()
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES)
    assert server.refused_messages == 1


def test_a_stream_that_never_runs_dry_still_closes_the_phase(tmp_path: Path) -> None:
    """branch-1 never answers, and a junk message from branch-0 comes with every read, so
    the inbox never runs dry: the key phase still closes at its deadline (having read
    only what was queued when the deadline was seen), branch-1 a dropout."""
    hub = _SlowServer(flood=True)
    for name in NAMES:
        if name == NAMES[1]:
            hub.join_scripted(name, lambda payload: [])
        else:
            hub.join(name, _train)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    result = server.run_round()
    assert result.status == "complete", result.reason
    assert NAMES[1] not in result.contributed
    assert hub.reads < 200, hub.reads
