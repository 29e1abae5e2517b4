"""A participant back on a new session inside its round is told the round runs without
it; the branch takes that notice for the round it lost, once.

Why: the server sends nothing of a round to a session that did not take it, and it is
right to: the branch is gone from the round. But it never told that session anything
either (a participant was never sent a not-sampled notice), so a branch *process* back
inside its round (killed between two phases and restarted, with or without its state
file) knew neither that the round runs without it nor for how long, and waited on its
idle timer alone (``secagg client --idle``): a round longer than that timer made it give
up while eligible. The new session is now told, once a round
(:class:`~secagg.runtime.wire.NotSampled`, the round's deadline); a branch that lost that
very round takes it as the round's deadline (not counted as a round it was not sampled
for: the round is counted lost), and a repeat is refused as before.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _threads import BOUND, wait_until

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import ROUND_GRACE_SECONDS, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import UNSAMPLED_LOOK_SECONDS, FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import NotSampled, RoundStart, decode_message, encode_message
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = ["b1", "b2", "b3"]
MOVED = "b3"
PLAIN = BranchPolicy(allow_plain=True)
FEDERATION = "reconnected-participant"
#: how long the cohort waits for the notice on the new session: many server looks
TOLD_WITHIN = 20 * UNSAMPLED_LOOK_SECONDS


def test_a_participant_on_a_new_session_is_told_the_round_runs_without_it(
    tmp_path: Path,
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": FEDERATION, "clients": NAMES, "dimension": D, "rounds": 1},
            "backend": {"name": "plain", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = InProcessHub()
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    first = hub.connect(MOVED)  # takes the round's start, then its session drops
    heard: list[bytes] = []

    def train(model: np.ndarray) -> np.ndarray:
        # b1's training: b3 restarts inside the round, and the round waits (bounded)
        # until b3's new session has heard from the server
        if threading.current_thread().name == "b1":
            assert isinstance(decode_message(first.receive(timeout=BOUND)), RoundStart)
            hub.disconnect(MOVED)
            again = hub.connect(MOVED)

            def told() -> bool:
                payload = again.receive(timeout=0.0)
                if payload is not None:
                    heard.append(payload)
                return bool(heard)

            wait_until(told, TOLD_WITHIN)
        return np.full_like(model, 0.1)

    for name in NAMES[:2]:
        client = FederationClient(name, train, hub.connect(name), policy=PLAIN)
        threading.Thread(
            target=client.run,
            kwargs={"idle_timeout": BOUND, "rounds": 1},
            name=name,
            daemon=True,
        ).start()
    result = server.run_round()
    assert result.status == "complete" and MOVED not in result.contributed
    assert heard, f"{MOVED}'s new session heard nothing within {TOLD_WITHIN} s"
    notice = decode_message(heard[0])
    assert isinstance(notice, NotSampled) and notice.round == result.number
    assert notice.deadline > BOUND  # the round's deadline, from when it was told


def _start(number: int, deadline: float) -> bytes:
    spec = encode_spec(get_backend("plain", value_bound=1.0).plan(3, D))
    return encode_message(
        RoundStart(number, 0, spec, np.zeros(D), None, False, deadline, federation=FEDERATION)
    )


def test_the_branch_takes_the_notice_of_the_round_it_lost_once(tmp_path: Path) -> None:
    client = FederationClient(
        "b", lambda m: np.zeros_like(m), InProcessHub().connect("b"), policy=PLAIN
    )
    client.handle(_start(1, deadline=5.0))
    client.reconnected(InProcessHub().connect("b"))
    notice = encode_message(NotSampled(1, 300.0, federation=FEDERATION))
    client.handle(notice)
    assert client.stats.refused_messages == 0
    assert client.stats.rounds_lost == 1 and client.stats.rounds_not_sampled == 0
    assert client._wait(0.5) > 300.0 + ROUND_GRACE_SECONDS - 5  # the server's word
    client.handle(notice)  # a repeat: refused, changes nothing
    assert client.stats.refused_messages == 1
    client.handle(encode_message(NotSampled(2, 1.0, federation=FEDERATION)))
    assert client.stats.rounds_not_sampled == 1 and client.stats.refused_messages == 1


def test_a_restarted_branch_takes_the_notice_of_the_round_its_state_holds(
    tmp_path: Path,
) -> None:
    """Killed inside round 1 and restarted with its state file: the notice of round 1 is
    the deadline of the round the file says it took."""
    state = tmp_path / "b.json"
    first = FederationClient(
        "b", lambda m: np.zeros_like(m), InProcessHub().connect("b"), policy=PLAIN, state=state
    )
    first.handle(_start(1, deadline=5.0))
    again = FederationClient(
        "b", lambda m: np.zeros_like(m), InProcessHub().connect("b"), policy=PLAIN, state=state
    )
    assert again._wait(0.5) == 0.5  # it knows the round, not its deadline
    again.handle(encode_message(NotSampled(1, 300.0, federation=FEDERATION)))
    assert again.stats.refused_messages == 0
    assert again._wait(0.5) > 300.0 + ROUND_GRACE_SECONDS - 5
