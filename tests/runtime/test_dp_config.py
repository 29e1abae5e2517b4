"""The federation's DP configuration refuses what its accountant would misstate
(DP review: fixed-size cohorts charged as Poisson, delta >= 1/N), and every ledger row
says how the cohort was drawn and which datasets are neighbours."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]


def _data(sampling: dict[str, object], **dp: object) -> dict[str, object]:
    return {
        "federation": {"name": "acct", "clients": NAMES, "dimension": 4, "rounds": 1},
        "sampling": sampling,
        "backend": {"name": "secagg", "value_bound": 1.0},
        "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3} | dp,
    }


def test_fixed_size_cohorts_with_client_level_dp_are_refused() -> None:
    """Charged as Poisson at q = m/N they understate epsilon (3.0 vs 9.7 in the review)."""
    with pytest.raises(ConfigurationError, match=r"sampling\.kind = 'fixed'"):
        FederationConfig.from_dict(_data({"kind": "fixed", "count": 2}))
    FederationConfig.from_dict(_data({"kind": "poisson", "rate": 0.5}))
    without_dp = _data({"kind": "fixed", "count": 2})
    del without_dp["dp"]
    FederationConfig.from_dict(without_dp)


@pytest.mark.parametrize("delta", [0.25, 0.5])
def test_delta_not_below_one_over_the_population_is_refused(delta: float) -> None:
    with pytest.raises(ConfigurationError, match=r"dp\.delta"):
        FederationConfig.from_dict(_data({"kind": "poisson", "rate": 1.0}, delta=delta))


@pytest.mark.parametrize(
    ("mechanism", "adjacency"),
    [("central", "add/remove one client"), ("distributed", "zero-out one client's update")],
)
def test_ledger_rows_record_sampling_population_and_adjacency(
    tmp_path: Path, mechanism: str, adjacency: str
) -> None:
    config = FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": 1.0}, mechanism=mechanism)
        | {"backend": {"name": "secagg+", "value_bound": 1.0}}
    )
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 10, "rounds": 1}, daemon=True
        ).start()
    ledger = Ledger(tmp_path / "l.sqlite", LedgerKey.generate())
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger)
    (result,) = server.run(wait_for_clients=10)
    assert result.status == "complete", result.reason
    block = ledger.entries()[0]["dp"]
    assert block["sampling"] == {"kind": "poisson", "rate": 1.0, "population": len(NAMES)}
    assert block["adjacency"] == adjacency
