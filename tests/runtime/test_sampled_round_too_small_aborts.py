"""A drawn round too small for its population's colluders aborts at planning, in one
line, charged nothing, and the next round goes on (second review of colluders,
2026-12-07).

Five branches at 40 % corrupt: the population's 2 colluders may fill a round of 3 but
one, so such a round has no private threshold. The config's check at load sizes the
expected round (all five, here); a Poisson draw may be smaller. The sampler is fixed to
draw three branches for round 1 and all five after: round 1 must abort before any
message, with the planning refusal as its one-line reason and no epsilon charged (the
federation runs central DP, and round 2's charge shows it), and round 2 must complete.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgered_federation import (
    DIMENSION,
    NAMES,
    RecordingHub,
    start_branches,
    stored_reports,
)

from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer


@pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")
def test_a_too_small_draw_aborts_uncharged_and_the_next_round_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {
                "name": "sampled",
                "clients": NAMES,
                "dimension": DIMENSION,
                "rounds": 1,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "corrupt_fraction": 0.4},
            "dp": {"clip": 1.0, "delta": 1e-5, "noise_multiplier": 1.0},
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )
    draws = iter([NAMES[:3]])

    def sample(self: FederationServer) -> list[str]:
        return list(next(draws, NAMES))

    monkeypatch.setattr(FederationServer, "sample", sample)
    state = open_server_state(config, init=True)
    try:
        hub = RecordingHub()
        start_branches(hub, config, until_end=True)
        server = build_server(config, hub, state.store, ledger=state.ledger)
        results = server.run(wait_for_clients=60)
    finally:
        state.close()
    assert [(r.number, r.status) for r in results] == [(1, "aborted"), (2, "complete")]
    first = results[0]
    assert first.reason is not None and "\n" not in first.reason
    assert "a round of 3 clients drawn from a population of 5" in first.reason
    assert first.epsilon is None and first.contributed == ()
    assert results[1].epsilon is not None and results[1].epsilon > 0  # the charge is real
    reports = stored_reports(config)
    assert "revealed" not in reports[0]
    assert not hub.round_started(1) and hub.round_started(2)  # no branch saw round 1
