"""When and where the record-level server replays its branches' DP-SGD reports.

Review (2026-12-07): each report's replay by its branch's accountant is bounded (about
1.7 s of CPU at worst for PRV, an honest branch of 100 000 rows 0.6-1.0 s), but not the
round's total: 50 such branches need about 50 s, against the 30 s grace a branch waits
past the round's deadline. These tests pin what the server does with a total past that
grace, with the accountant's cost injected (a sleep before the real, cheap RDP replay):

- a report arriving costs the server's thread no replay (:meth:`RecordRelease.take_report`
  only checks what needs none); each is replayed once, in the mechanism's one background
  thread, one after another, from its arrival on (since 2026-12-07, beside the round's
  remaining phases: tests/runtime/test_record_replay_overlap.py; before, after them in
  the server's thread), and held to before anything is released, recorded or claimed
  (the release, the row and the claim reuse the figure);
- the server sets no deadline on those replays: a round whose replays end after its
  phases' deadline plus the grace completes, its row holding the replayed figures, and
  every branch hears its end, even one whose idle timer is shorter than the replays:
  the deadline the server tells covers them (an allowance a contributor,
  :data:`~secagg.dp.release.REPLAY_SECONDS_PER_REPORT`; since 2026-12-07, when such a
  branch gave up "past the round deadline": tests/runtime/test_record_replay_waits.py).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _record_replays import DELTA, Phases, SlowReplays, dpsgd_report, record_config, start_branches

import secagg.runtime.client as client_module
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordRelease, RecordReport
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

BRANCHES = [f"branch-{i:02d}" for i in range(10)]
#: the round's phases' deadline (generous: a phase that misses it on a loaded machine
#: would make its branches dropouts)
ROUND_SECONDS = 20.0
#: how long a branch's round wait lasts past the phases' deadline (without the replays'
#: allowance): the grace is patched to make it this short, so the test need not sleep 30 s
BRANCH_WINDOW_SECONDS = 1.0
#: the injected cost of one replay: the round's ten add up to twice the branches' window,
#: so they end after every branch's deadline plus its grace
REPLAY_SECONDS = 0.2
#: the idle timer of the one branch shorter than the replays (the others': 60 s)
IMPATIENT = BRANCHES[-1]
IMPATIENT_IDLE_SECONDS = 0.5


def _history(branch: int, steps: int) -> list[tuple[float, float, int]]:
    """A branch's DP-SGD history: its own sample rate (its own row count), one run."""
    return [(1.0, 0.001 * (branch + 1), steps)]


def _report_dict(branch: int, steps: int, stated: float | None = None) -> dict[str, Any]:
    return dpsgd_report(_history(branch, steps), epsilon=stated)


def test_a_report_is_replayed_once_off_the_callers_thread_before_anything_claims_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replays = SlowReplays(cost=0.0).install(monkeypatch)
    caller = threading.get_ident()
    mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    identities = [f"id-{i}" for i in range(len(BRANCHES))]
    for branch, identity in enumerate(identities):
        # stated below its history's figure: what is claimed must be the replay's
        report = RecordReport.from_dict(_report_dict(branch, 500, stated=0.001))
        assert mechanism.report_problem(identity, report) is None
        mechanism.take_report(identity, report)
    mechanism.require_reports(identities)
    assert len(replays.calls) == len(identities)
    assert caller not in {call.thread for call in replays.calls}, "replayed in a phase"
    mechanism.release(np.zeros(4), contributors=len(identities), participants=10, noise_added=0)
    block = mechanism.ledger_block({})
    claim = mechanism.ledger_claim(None)
    assert len(replays.calls) == len(identities), "the release, row or claim replayed again"
    replayed = {
        identity: RecordLevelAccountant("rdp", DELTA, _history(branch, 500)).epsilon()
        for branch, identity in enumerate(identities)
    }
    assert {k: r["epsilon"] for k, r in block["client_reports"].items()} == replayed
    assert claim == max(replayed.values())


def test_replays_past_every_branchs_deadline_and_grace_still_release_a_checked_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "ROUND_GRACE_SECONDS", BRANCH_WINDOW_SECONDS - ROUND_SECONDS)
    replays = SlowReplays(cost=REPLAY_SECONDS).install(monkeypatch)
    phases = Phases().install(monkeypatch).spans
    config = record_config(
        BRANCHES, name="replays", rounds=1, phase_seconds=ROUND_SECONDS, round_seconds=ROUND_SECONDS
    )
    hub = InProcessHub()
    # made before the round: the first one imports Opacus (seconds), which would use up
    # the branches' short window inside the round's first phase
    reports = {name: _report_dict(branch, 1_000) for branch, name in enumerate(BRANCHES)}
    clients, threads = start_branches(
        hub,
        BRANCHES,
        reports.__getitem__,
        idle=lambda name: IMPATIENT_IDLE_SECONDS if name == IMPATIENT else 60.0,
    )
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"), ledger=ledger)
    server_thread = threading.get_ident()
    results = server.run(wait_for_clients=60, max_attempts=1)
    ledger.close()
    for thread in threads:
        thread.join(timeout=60)

    assert [r.status for r in results] == ["complete"], [r.reason for r in results]
    # each contributor's report once, off the server's thread, one after another (the
    # impatient branch contributed too, unless a loaded machine kept the round from
    # starting within its idle timer)
    contributed = results[0].contributed
    assert set(BRANCHES) - {IMPATIENT} <= set(contributed)
    began, _ = phases[1]
    assert len(replays.calls) == len(contributed)
    assert server_thread not in {call.thread for call in replays.calls}
    spans = sorted((call.began, call.ended) for call in replays.calls)
    assert all(after[0] >= before[1] for before, after in itertools.pairwise(spans))
    # they ended after the phases' deadline plus the grace ...
    assert REPLAY_SECONDS * (len(BRANCHES) - 1) > BRANCH_WINDOW_SECONDS + IMPATIENT_IDLE_SECONDS
    assert spans[-1][1] > began + BRANCH_WINDOW_SECONDS
    # ... and every contributor heard the round's end all the same, the one whose idle
    # timer is shorter than the replays too: the deadline it was told covers them
    heard = [c for c in clients if c.name in contributed]
    assert [c.stats.outcome for c in heard] == ["rounds"] * len(heard), [
        (c.name, c.stats.end_reason) for c in heard
    ]
    assert [c.stats.rounds_ended for c in heard] == [1] * len(heard)
    audit = verify_ledger(path, key.public_key)
    assert audit.ok and audit.private, audit.first_failure
