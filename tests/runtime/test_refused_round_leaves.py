"""A branch that refuses a round by its policy leaves it at once, and counts it once.

Review finding (2026-12-05): a branch refusing a round's *setup* (a Shamir threshold
below its own floor) sent no leave, so the server waited out the whole training
deadline for it, and the branch with it; the round's end then counted the round again
(an abort, plus a refused payload), so one refused round showed as three events.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _endpoints import RecordingHub

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, decode_message

NAMES = [f"branch-{i:02d}" for i in range(8)]
#: 8 parties: a SecAgg+ graph whose neighbourhoods reach past 4 share holders, so a floor
#: of 4 passes the round's start (some threshold of the graph meets it) and the setup's
#: threshold of 3 is what the branch refuses (with 4 parties the floor of 5 is refused at
#: the start since no threshold of the graph can meet it, and the setup path went untested)
FLOOR = 4
D = 6
#: the training deadline the refusing branch must not wait out
TRAINING_SECONDS = 120.0


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "leave", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 4.0},
            "deadlines": {
                "phase_seconds": 20.0,
                "training_seconds": TRAINING_SECONDS,
                "round_seconds": 300.0,
            },
        }
    )


def test_a_branch_refusing_the_setup_leaves_at_once_and_counts_one_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="secagg.server")
    hub = RecordingHub()
    done = {name: threading.Event() for name in NAMES}
    trained: list[str] = []
    clients = []
    for i, name in enumerate(NAMES):
        # a floor above the setup's threshold: branch 0 refuses the round's setup
        policy = BranchPolicy(min_threshold=FLOOR) if i == 0 else BranchPolicy()

        def train(model: np.ndarray, name: str = name) -> np.ndarray:
            trained.append(name)
            return np.full_like(model, 0.1)

        client = FederationClient(
            name,
            train,
            hub.connect(name),
            policy=policy,
            stop_on_refusal=False,
        )
        clients.append(client)

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=TRAINING_SECONDS, rounds=1)
            finally:
                done[name].set()

        threading.Thread(target=run, daemon=True).start()
    results: list[object] = []

    def serve() -> None:  # the store is the server thread's own (SQLite)
        store = ServerStore(Path(tempfile.mkdtemp(prefix="secagg-leave-")) / "state.sqlite")
        server = FederationServer(_config(), hub, store)
        results.extend(server.run(wait_for_clients=60, max_attempts=1))

    served = threading.Thread(target=serve, daemon=True)
    began = time.monotonic()
    served.start()
    # well within the training deadline: before the fix the branch (and the server) took
    # the whole 120 s; a third of it is a generous bound on a loaded machine
    assert done[NAMES[0]].wait(TRAINING_SECONDS / 3), "the refusing branch waited out the round"
    served.join(timeout=TRAINING_SECONDS / 3)
    assert not served.is_alive(), "the server waited out the training deadline"
    assert time.monotonic() - began < TRAINING_SECONDS / 3
    assert len(results) == 1  # the round ended
    # the refusal came at the setup: the start passed, so the branch trained first
    assert NAMES[0] in trained
    refusing = clients[0]
    stats = refusing.stats
    assert stats.rounds_refused == 1
    assert (stats.rounds_aborted, stats.rounds_completed, stats.refused_messages) == (0, 0, 0)
    # it said why it left, and sent nothing else
    sent = [decode_message(p) for name, p in hub.received if name == NAMES[0]]
    assert sent == [Leave(1, "refused by its policy: branch.min_threshold")]
    # the server's operator sees why (it was logged at DEBUG only), once, on one line
    left = [r.getMessage() for r in caplog.records if "left the round" in r.getMessage()]
    assert left == [
        "round 1: branch-00 left the round: 'refused by its policy: branch.min_threshold'"
    ]
    # the round's end, which the server sent after the branch left, is taken quietly
    end = refusing._transport.receive(timeout=60)  # type: ignore[union-attr]
    assert end is not None
    refusing.handle(end)
    assert (stats.rounds_refused, stats.rounds_aborted, stats.refused_messages) == (1, 0, 0)


def test_a_round_refused_at_its_start_is_one_refusal_whatever_its_end_says() -> None:
    """The round goes on without the branch and the server ends it: that end is not a
    second count (before the fix a ``complete`` end counted the refused round as one
    this branch completed, and ``run(rounds=1)`` waited for it)."""
    from _endpoints import SentMessages

    from secagg.aggregation import get_backend
    from secagg.aggregation.spec import encode_spec
    from secagg.runtime.wire import RoundEnd, RoundStart, encode_message

    spec = encode_spec(get_backend("plain").plan(2, D))  # refused: plain is not allowed
    for complete in (True, False):
        outbox = SentMessages()
        client = FederationClient(NAMES[0], lambda m: m, outbox, stop_on_refusal=False)
        client.handle(
            encode_message(RoundStart(1, 0, spec, np.zeros(D, np.float32), 1.0, federation="fed"))
        )
        client.handle(encode_message(RoundEnd(1, complete, "" if complete else "aborted")))
        stats = client.stats
        counts = (stats.rounds_refused, stats.rounds_completed, stats.rounds_aborted)
        assert counts == (1, 0, 0) and stats.refused_messages == 0
        assert outbox.sent == [Leave(1, "refused by its policy: branch.allow_plain")]
        # the next round is taken as usual
        client.handle(
            encode_message(RoundStart(2, 0, spec, np.zeros(D, np.float32), 1.0, federation="fed"))
        )
        assert stats.rounds_refused == 2 and stats.refused_messages == 0


def test_the_end_of_a_refused_round_starts_the_refusal_log_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any round's end is progress (secagg.runtime.refusals): after it, refusals are
    logged in full again. The refused round's end returned before the reset, so junk
    after it stayed counted, not logged."""
    import logging

    from _endpoints import SentMessages

    from secagg.aggregation import get_backend
    from secagg.aggregation.spec import encode_spec
    from secagg.runtime.refusals import LOGGED_REFUSALS
    from secagg.runtime.wire import RoundEnd, RoundStart, encode_message

    spec = encode_spec(get_backend("plain").plan(2, D))
    client = FederationClient(NAMES[0], lambda m: m, SentMessages(), stop_on_refusal=False)
    client.handle(
        encode_message(RoundStart(1, 0, spec, np.zeros(D, np.float32), 1.0, federation="fed"))
    )
    for i in range(LOGGED_REFUSALS + 1):
        client.handle(b"junk %d" % i)
    client.handle(encode_message(RoundEnd(1, True)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="secagg.client"):
        client.handle(b"junk after the round")
    assert [r.getMessage() for r in caplog.records if "refused a message" in r.getMessage()]
