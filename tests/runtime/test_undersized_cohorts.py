"""A federation whose sampling draws fewer than two clients round after round stops,
naming ``sampling.rate``, instead of burning round numbers without end.

Before: ``sampling.rate = 1e-9`` over three connected clients was accepted, and the
server's loop drew an empty cohort, recorded round N aborted ("fewer than 2 clients
sampled or connected"), and drew again at once: such rounds do not count among
``max_consecutive_aborts`` (a short Poisson cohort is a normal event), so it ran without
a bound, writing a state row (and a ledger row) per round as fast as the disk took
them, and never waited or stopped. Now :data:`MAX_UNDERSIZED_IN_A_ROW` such rounds in a
row stop the run with a reason naming the sampling rate; a cohort of two or more in
between resets the count.

No branch trains: an empty cohort never announces a round. The cap is lowered for the
test (it is the server module's constant), so the run is a few dozen rounds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import secagg.runtime.config as config_module
import secagg.runtime.server as server_module
from secagg.runtime.config import FederationConfig, SmallDrawWarning
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["b1", "b2", "b3"]
CAP = 12


def test_rounds_that_never_sample_two_clients_stop_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "MAX_UNDERSIZED_IN_A_ROW", CAP, raising=False)
    # since 2026-12-07 the load refuses this rate (every draw is below 2: see
    # test_sampling_draws_too_small.py); the server's own guard is what is tested here
    monkeypatch.setattr(config_module, "REFUSED_ABORT_SHARE", 1.0)
    with pytest.warns(SmallDrawWarning, match=r"\[sampling\] rate"):
        config = FederationConfig.from_dict(
            {
                "federation": {"name": "tiny", "clients": NAMES, "dimension": 4, "rounds": 3},
                "sampling": {"kind": "poisson", "rate": 1e-9},
                "backend": {"name": "secagg+", "value_bound": 1.0},
            }
        )
    hub = InProcessHub()
    endpoints = [hub.connect(name) for name in NAMES]  # connected: the quorum is there
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    results = server.run(wait_for_clients=0.0, max_attempts=CAP + 5)
    assert len(results) == CAP, [r.reason for r in results]
    assert all(r.status == "aborted" and len(r.participants) < 2 for r in results)
    assert server.stop_reason is not None
    assert f"{CAP} rounds in a row" in server.stop_reason
    assert "sampling.rate" in server.stop_reason
    assert not server.finished
    del endpoints
