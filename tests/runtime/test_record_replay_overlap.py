"""A record-level round's replays run beside its remaining phases, off the server's thread.

Review (2026-12-07): the server replayed each contributor's DP-SGD report once the
round's phases were over, one after another in its own thread (50 PRV branches of
100 000 rows: about 28 s in which it read no message), so the round's end came the
phases plus the replays' sum after its start. A report arrives with its branch's first
payload, and the round's remaining phases (the masking's shares, masked inputs and
unmasking; the CKKS upload and decryption) are round trips to the branches in which the
server mostly waits. Now each report kept is replayed from then on in a background
thread (:class:`~secagg.dp.release._BackgroundReplays`), while the server's thread goes
on reading and answering; what is held, refused and claimed is still decided in the
server's thread once the phases are over, from the same replays' figures.

The replay's cost is injected here as a sleep, which leaves the interpreter to the
server's thread; Opacus's PRV holds it about half the time (measured on 2 cores: a
thread spinning beside a replay kept 56 % of its pace), so the server's own work
slows while a replay runs, but no message waits for one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from _record_replays import (
    DELTA,
    Phases,
    SlowReplays,
    dpsgd_report,
    record_config,
    start_branches,
)
from _threads import BOUND
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.dp.release as release_module
from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.release import RecordReport
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

BRANCHES = [f"branch-{i:02d}" for i in range(8)]
REPLAY_SECONDS = 0.3


def _history(branch: int) -> list[tuple[float, float, int]]:
    return [(1.0, 0.001 * (branch + 1), 1_000)]


def _report(branch: int) -> dict[str, Any]:
    history = _history(branch)
    # stated below the replay: the row must hold the replayed figure
    stated = RecordLevelAccountant("rdp", DELTA, history).epsilon() * 0.5
    return dpsgd_report(history, epsilon=stated)


def test_the_replays_begin_during_the_phases_off_the_servers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phases = Phases().install(monkeypatch)
    # each replay: during the phases?, its thread
    replays = SlowReplays(REPLAY_SECONDS, mark=phases.during).install(monkeypatch)
    # the phases wait (up to BOUND) for a replay to begin: on a busy machine the round's
    # last phases could end before the background thread was scheduled (one such run
    # failed "no replay began before the phases ended"); replays that ran only after the
    # phases, as before the overlap, still fail, after BOUND
    phases.hold = replays.began
    began = replays.starts
    config = record_config(BRANCHES, name="overlap", rounds=1)
    hub = InProcessHub()
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"), ledger=ledger)
    reports = {name: _report(branch) for branch, name in enumerate(BRANCHES)}
    _, threads = start_branches(hub, BRANCHES, reports.__getitem__, idle=BOUND)
    server_thread = threading.get_ident()
    try:
        results = server.run(wait_for_clients=BOUND, max_attempts=1)
    finally:
        ledger.close()
    for thread in threads:
        thread.join(timeout=BOUND)

    assert [r.status for r in results] == ["complete"], [r.reason for r in results]
    contributed = results[0].contributed
    assert len(began) == len(contributed) >= 2, "each kept report replayed once"
    assert all(thread != server_thread for _, thread in began), "a replay in the server's thread"
    assert any(during for during, _ in began), "no replay began before the phases ended"
    # the same figures as replays after the phases: the row holds each history's own
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    held = audit.chain.rows[-1].entry["dp"]["client_reports"]
    figures = sorted(report["epsilon"] for report in held.values())
    expected = sorted(
        RecordLevelAccountant("rdp", DELTA, _history(BRANCHES.index(name))).epsilon()
        for name in contributed
    )
    assert figures == expected


_RUN = st.tuples(
    st.sampled_from([0.8, 1.0, 1.5]), st.sampled_from([0.001, 0.01, 0.05]), st.integers(1, 2_000)
)


@settings(max_examples=25, deadline=None)
@given(
    branches=st.lists(st.tuples(_RUN, st.integers(1, 500), st.booleans()), min_size=1, max_size=5),
    checked_first=st.booleans(),
)
def test_the_held_figures_are_each_historys_own_replay_whichever_thread_ran_it(
    branches: list[tuple[tuple[float, float, int], int, bool]], checked_first: bool
) -> None:
    """Branches restored from a ledger (or not) report a longer history, stating more
    than it gives: each row holds its history's own replay (the restored one's read
    first), whether the contributors' check read the background replays first or the
    row did, and the claim is the worst of them."""
    mechanism = release_module.RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
    identities = [f"id-{i}" for i in range(len(branches))]
    for identity, ((z, q, steps), _, restored) in zip(identities, branches, strict=True):
        if restored:
            recorded = RecordLevelAccountant("rdp", DELTA, [(z, q, steps)]).epsilon()
            mechanism.restore_reports({identity: dpsgd_report([(z, q, steps)], epsilon=recorded)})
    mechanism.start_restored_replays()
    expected = {}
    for identity, ((z, q, steps), more, _) in zip(identities, branches, strict=True):
        history = [(z, q, steps + more)]
        expected[identity] = RecordLevelAccountant("rdp", DELTA, history).epsilon()
        report = RecordReport.from_dict(dpsgd_report(history, epsilon=expected[identity] * 1.5))
        assert mechanism.report_problem(identity, report) is None
        mechanism.take_report(identity, report)
    if checked_first:
        mechanism.require_reports(identities)
    block = mechanism.ledger_block({})
    assert {k: r["epsilon"] for k, r in block["client_reports"].items()} == expected
    assert mechanism.ledger_claim(None) == max(expected.values())
    assert mechanism.replay_backlog() == 0
