"""A session's end read past a phase's deadline closes the phase only after the answers
queued behind it are read.

Found by the second review of the collect loop's backlog read (2026-12-07,
secagg/runtime/server.py, ``_drive``): when the loop sees a phase's deadline passed at a
refused message it reads the messages already queued (``queued()``) before it closes the
phase (tests/runtime/test_deadline_backlog.py). A session's end, though, reaches the loop
as a receive that returns None (the in-process hub queues a wake; gRPC says it when its
inbox is empty), and a None past the deadline closed the phase at once, the backlog
unread: every answer queued behind the end was a dropout. One branch that sends its
answer and hangs up (an honest crash), or that sends junk behind its answer and hangs up
(a malicious one), made the branches queued after it dropouts on a busy server, and the
round aborted below its threshold. Now a None past the deadline reads the queued
messages first, as a refused message does; a wait that found nothing still closes the
phase at once (nothing is queued), and the read stays bounded by what was queued when
the deadline was seen.

Over :class:`~_lockstep_hub.LockstepHub`, whose clock moves :data:`READ_SECONDS` for
every message the server reads (a slow server, on the clock alone): the branches' keys
are all queued at once, against a ten-second phase deadline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _lockstep_hub import LockstepHub

from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, encode_message

NAMES = [f"branch-{i}" for i in range(5)]
HANGS_UP = NAMES[2]
JUNK = encode_message(Relay(1, b"junk"))
#: a phase's deadline (fake seconds)
PHASE_SECONDS = 10.0


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "backlog-end", "clients": NAMES, "dimension": 8, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            # one dropout among the five is survived, two are not
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.3},
            "deadlines": {"phase_seconds": PHASE_SECONDS, "round_seconds": 1000.0},
        }
    )


def _train(model: np.ndarray) -> np.ndarray:
    return np.full_like(model, 0.01)


class _SlowServer(LockstepHub):
    """Every message the server reads moves the clock on by ``read_seconds``."""

    def __init__(self, read_seconds: float) -> None:
        super().__init__()
        self.read_seconds = read_seconds
        self.reads = 0

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None:
            self.reads += 1
            assert self.reads < 10_000, "the phase never closed"
            self.now += self.read_seconds
        return item


class _AnswersThenHangsUp:
    """A branch's endpoint that sends its first answer (and ``junk`` behind it, if
    given), then ends its session: a process that crashed, or a branch that hung up."""

    def __init__(self, inner: object, junk: bytes | None) -> None:
        self._inner = inner
        self._junk = junk

    def send(self, payload: bytes) -> None:
        self._inner.send(payload)  # type: ignore[attr-defined]
        if self._junk is not None:
            self._inner.send(self._junk)  # type: ignore[attr-defined]
        self._inner.close()  # type: ignore[attr-defined]

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("junk", "read_seconds"),
    [
        # the end comes 4th, read past the deadline (after 3 reads of 4 s)
        (None, 4.0),
        # the junk comes 4th, past the deadline (3 s a read): the backlog read of the
        # merged fix starts there, and the end right behind it closed the phase
        (JUNK, 3.0),
    ],
    ids=["honest-crash", "junk-then-hang-up"],
)
def test_a_session_end_past_the_deadline_drops_no_answer_queued_behind_it(
    tmp_path: Path, junk: bytes | None, read_seconds: float
) -> None:
    """branch-2 sends its key, then its session ends; branch-3's and branch-4's keys are
    queued behind that end, in time. Before: the end, read past the deadline, closed the
    key phase; the two were dropouts and the round aborted below its threshold of 4. Now
    they are read, and the round completes without branch-2 only (gone after its key)."""
    hub = _SlowServer(read_seconds)
    for name in NAMES:
        if name == HANGS_UP:
            endpoint = hub.connect(name)
            client = FederationClient(name, _train, _AnswersThenHangsUp(endpoint, junk))
            hub.adopt(client, endpoint)
        else:
            hub.join(name, _train)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    result = server.run_round()
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(name for name in NAMES if name != HANGS_UP)
    assert server.refused_messages == (0 if junk is None else 1)


def test_an_empty_wait_past_the_deadline_still_closes_the_phase_at_once(
    tmp_path: Path,
) -> None:
    """The deadline stays for a silent branch: a wait that found nothing (nothing
    queued) closes the phase when the deadline is reached, on the clock alone."""
    hub = _SlowServer(0.0)
    hub.join_scripted(NAMES[0], lambda payload: [])
    for name in NAMES[1:]:
        hub.join(name, _train)
    server = FederationServer(_config(), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    result = server.run_round()
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES[1:])
    assert PHASE_SECONDS <= hub.idle_seconds < PHASE_SECONDS + 1.0
