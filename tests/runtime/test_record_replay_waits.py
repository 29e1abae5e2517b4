"""The parties' waits cover the server's replays of its branches' DP-SGD reports.

Review (2026-12-07). A record-level server replays each contributor's DP-SGD report
(Opacus's accountant, up to about 1.7 s of CPU a report within the replay caps) once the
round's phases are over, one after another, in its own thread, before it releases the
round and tells the parties its end (tests/runtime/test_record_replay_schedule.py). The
parties waited for that silence by bounds that left it out:

- a branch waits for the round's end the deadline the server told it (the round's
  phases only) plus ROUND_GRACE_SECONDS (30 s), or its idle timer past its last answered
  payload if that is longer: after a round that used its deadline, 50 PRV branches of a
  second each outlasted a branch of ``FederationClient.run``'s default idle (30 s),
  which gave up and left the federation while the server was at work on its round;
- the CKKS key holder's idle timer as the launcher sizes it (``key_holder_idle``:
  ``quorum_wait_seconds`` + ``round_seconds`` + 30 s) covers the wait from a round's
  decryption to the next round's key request, a quorum wait included, but not the
  replays in between: a federation of 400 branches, the replays at 2 s each, had the
  key holder give up before round 2's key request, and the federation stopped.

Now the server tells every branch a deadline that includes its replays' allowance
(:meth:`Mechanism.replay_seconds`: :data:`~secagg.dp.release.REPLAY_SECONDS_PER_REPORT`
a contributor, for record-level DP-SGD only), and ``key_holder_idle`` adds the
allowance of the federation's every branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _record_replays import DELTA, SlowReplays, dpsgd_report, record_config, start_branches
from _session_clock import SessionClock, SessionDialer, session_time
from _threads import BOUND

import secagg.dp.release as release_module
import secagg.runtime.client as client_module
import secagg.runtime.keyholder as keyholder_module
import secagg.runtime.redial as redial_module
from secagg.errors import MalformedMessage
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import key_holder_idle
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import FederationEnd, Relay, encode_message
from secagg.transport.inprocess import InProcessHub

BRANCHES = [f"branch-{i:02d}" for i in range(8)]
#: the round's deadline as the server keeps it (generous: its phases must not miss it)
ROUND_SECONDS = 20.0
#: how long after the told deadline a branch waits (the grace patched to shrink the
#: told window to about this: the round's phases, then no more)
BRANCH_WINDOW_SECONDS = 1.0
#: the injected cost of one replay (a sleep before the real, cheap RDP replay)
REPLAY_SECONDS = 0.4
#: every branch's idle timer: shorter than the replays' total, longer than the wait for
#: the round's start (the server is built before the branches start)
IDLE_SECONDS = 2.0


def _report(branch: int) -> dict[str, Any]:
    return dpsgd_report([(1.0, 0.001 * (branch + 1), 1_000)])


def test_a_branch_waits_out_the_replays_of_a_round_that_used_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every branch's idle timer (2 s) is shorter than the round's replays (8 x 0.4 s),
    and the window past the phases' deadline is 1 s: each still hears the round's end,
    because the deadline it was told covers the replays. Before, each gave up "past the
    round deadline" while the server replayed, and the round was released to nobody."""
    monkeypatch.setattr(client_module, "ROUND_GRACE_SECONDS", BRANCH_WINDOW_SECONDS - ROUND_SECONDS)
    replays = SlowReplays(REPLAY_SECONDS).install(monkeypatch)
    assert REPLAY_SECONDS * len(BRANCHES) > IDLE_SECONDS + BRANCH_WINDOW_SECONDS
    config = record_config(
        BRANCHES, name="waits", rounds=1, phase_seconds=ROUND_SECONDS, round_seconds=ROUND_SECONDS
    )
    hub = InProcessHub()
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    reports = {name: _report(branch) for branch, name in enumerate(BRANCHES)}  # Opacus imported
    clients, threads = start_branches(hub, BRANCHES, reports.__getitem__, idle=IDLE_SECONDS)
    results = server.run(wait_for_clients=BOUND, max_attempts=1)
    for thread in threads:
        thread.join(timeout=BOUND)

    assert [r.status for r in results] == ["complete"], [r.reason for r in results]
    contributed = set(results[0].contributed)
    assert len(replays.calls) == len(contributed) >= 2
    heard = {c.name: (c.stats.outcome, c.stats.end_reason) for c in clients}
    assert {name: heard[name][0] for name in contributed} == dict.fromkeys(contributed, "rounds"), (
        heard
    )
    assert all(c.stats.rounds_ended == 1 for c in clients if c.name in contributed)


def test_the_told_deadline_adds_the_replay_allowance_for_record_level_rounds_only() -> None:
    """The allowance a round's deadline carries: one per contributor that reports, for
    the record-level DP-SGD mechanism; none where the server replays nothing."""
    base = {
        "federation": {"name": "waits", "clients": BRANCHES, "dimension": 4, "rounds": 1},
        "backend": {"name": "secagg+", "value_bound": 1.0},
    }
    record = FederationConfig.from_dict(
        base | {"dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA}}
    )
    per_report = release_module.REPLAY_SECONDS_PER_REPORT
    assert record.mechanism().replay_seconds(7) == 7 * per_report
    central = FederationConfig.from_dict(
        base | {"dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": DELTA}}
    )
    assert central.mechanism().replay_seconds(7) == 0.0
    assert FederationConfig.from_dict(base).mechanism().replay_seconds(7) == 0.0


# --- the key holder ------------------------------------------------------------------

#: a federation of this many branches, every one contributing, each replay taking
#: MEASURED_REPLAY_SECONDS (the worst measured within the caps: 1.7 s of CPU)
MANY = 400
MEASURED_REPLAY_SECONDS = 2.0
QUORUM_WAIT, ROUND = 600.0, 600.0


class _Session:
    """Answers ``b"key"`` (opens a round) and ``b"sum"`` (decrypts it, once)."""

    def __init__(self) -> None:
        self.decryptions = 0

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        if payload == b"key":
            return b"public key %d" % round_number
        if payload == b"sum":
            self.decryptions += 1
            return b"sum %d" % round_number
        raise MalformedMessage("a key holder answers key and decryption requests only")

    def refusal(self, error: BaseException) -> bytes:
        return b"refused"


@pytest.fixture
def clock() -> Iterator[SessionClock]:
    with session_time(keyholder_module, redial_module) as fake:
        yield fake


def _ckks_record_config(clients: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "he",
                "clients": [f"b{i}" for i in range(clients)],
                "dimension": 4,
                "rounds": 2,
            },
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "kh"},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": DELTA},
            "deadlines": {"round_seconds": ROUND},
            "server": {"quorum_wait_seconds": QUORUM_WAIT},
        }
    )


def test_a_key_holder_sized_by_the_launcher_outlasts_the_replays_between_rounds(
    clock: SessionClock,
) -> None:
    """Round 1's key request at once and its decryption request as the round's deadline
    nears; then the server replays its MANY reports and waits most of its quorum wait
    before round 2's key request. The key holder, idle by ``key_holder_idle``, answers
    it and hears the federation's end; before, it gave up in the replays' silence."""
    config = _ckks_record_config(MANY)
    idle = key_holder_idle(config)
    replays = MANY * MEASURED_REPLAY_SECONDS
    assert replays > ROUND + 30.0  # longer than what the old sizing left for them
    script = [
        (0.0, encode_message(Relay(1, b"key"))),
        (ROUND - 5.0, encode_message(Relay(1, b"sum"))),
        (replays + QUORUM_WAIT - 10.0, encode_message(Relay(2, b"key"))),
        (0.0, encode_message(FederationEnd(2, True))),
    ]
    dial = SessionDialer(clock, [(script, None)], downtime=0.0)
    holder = KeyHolderService("kh", None, _Session())  # type: ignore[arg-type]
    holder.serve(dial, idle_timeout=idle, give_up_after=1.0)  # type: ignore[arg-type]
    assert holder.outcome == "finished", (idle, holder.end_reason)
    assert holder.answered == 3


def test_the_launcher_adds_the_allowance_of_every_branch_for_record_level_dpsgd() -> None:
    """``key_holder_idle``: the quorum wait, the round, the grace, and for record-level
    DP-SGD one allowance a branch; a central-DP CKKS federation's is as before."""
    config = _ckks_record_config(MANY)
    grace = client_module.ROUND_GRACE_SECONDS
    per_report = release_module.REPLAY_SECONDS_PER_REPORT
    assert key_holder_idle(config) == QUORUM_WAIT + ROUND + grace + MANY * per_report
    central = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": ["a", "b", "c"], "dimension": 4},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "kh"},
            "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": DELTA, "mechanism": "central"},
        }
    )
    assert key_holder_idle(central) == 600.0 + 600.0 + grace
