"""The server's collect loop moves on as soon as nothing it waits for can still arrive.

Known item (runtime review, 2026-12-07; secagg/runtime/server.py, ``_drive``): the loop
looked at whether every party it still waited for had gone only after a receive came
back empty. When a party's session ended before the last party that could answer had
answered, the end's wake was taken while others were still silent, and after the last
answer the loop waited out one more poll (half a second) for nobody before it closed the
phase. Every phase in which a branch dropped paid it. Now the loop looks before it waits:
when every party it still waits for is gone, it takes only what has already arrived and
closes the phase.

Over :class:`~_lockstep_hub.LockstepHub`: every branch answers inside the server's send,
so a wait with nothing queued is a wait for nothing, counted, never timed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _lockstep_hub import LockstepHub

from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore

D = 8
NAMES = [f"branch-{i}" for i in range(5)]
NEVER = 3600.0  # a deadline no round here reaches
PHASE = 30.0  # the phase deadline a silent branch is waited for, on the clock


def _config(backend: dict[str, object], phase_seconds: float = NEVER) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "polls", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": backend,
            "deadlines": {"phase_seconds": phase_seconds, "round_seconds": 3 * NEVER},
        }
    )


def _train(model: np.ndarray) -> np.ndarray:
    return np.full_like(model, 0.01)


#: a SecAgg+ round that survives one dropout among five branches
MASKING = {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.3}


@pytest.mark.parametrize(
    ("drop_at", "phase"),
    [(1, "training"), (2, "share_keys"), (3, "masked_input"), (4, "unmasking")],
)
def test_a_branch_gone_mid_phase_costs_no_poll(tmp_path: Path, drop_at: int, phase: str) -> None:
    """A branch's session ends as the server sends it its ``drop_at``-th message (before
    it answers that phase), the first branch of the cohort, so its end is seen before the
    others answer. Before: the round took one idle wait (0.5 s) after the last answer of
    that phase; now none."""
    hub = LockstepHub()
    dropped = NAMES[0]
    for name in NAMES:
        hub.join(name, _train, drop_at=drop_at if name == dropped else None)
    server = FederationServer(
        _config(MASKING), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock
    )
    result = server.run_round()
    assert result.status == "complete", result.reason
    if drop_at < 4:  # an unmasking dropout's masked input is in the sum already
        assert result.contributed == tuple(NAMES[1:]), phase
    assert (hub.idle_waits, hub.idle_seconds) == (0, 0.0), (
        f"the loop waited {hub.idle_seconds} s for nobody in {phase}"
    )


def test_every_branch_gone_closes_the_phase_without_a_poll(tmp_path: Path) -> None:
    """Three of five gone in the key phase: the round aborts below its threshold at once
    (it waited a poll for nobody before), and without waiting its deadline out."""
    hub = LockstepHub()
    for i, name in enumerate(NAMES):
        hub.join(name, _train, drop_at=2 if i < 3 else None)
    server = FederationServer(
        _config(MASKING), hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock
    )
    result = server.run_round()
    assert result.status == "aborted"
    assert hub.idle_waits == 0, f"the loop waited {hub.idle_seconds} s for nobody"


def test_a_silent_branch_still_waits_out_the_phase_deadline(tmp_path: Path) -> None:
    """The deadline stays: a branch connected and silent is waited for until the phase's
    deadline, on the clock, and is then a dropout (the round completes without it)."""
    hub = LockstepHub()
    silent = NAMES[0]
    hub.join_scripted(silent, lambda payload: [])
    for name in NAMES[1:]:
        hub.join(name, _train)
    server = FederationServer(
        _config(MASKING, phase_seconds=PHASE),
        hub,
        ServerStore(tmp_path / "s.sqlite"),
        clock=hub.clock,
    )
    result = server.run_round()
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES[1:])
    # the training phase's deadline (phase_seconds here), waited on the clock alone
    assert PHASE <= hub.idle_seconds < PHASE + 1.0
