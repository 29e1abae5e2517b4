"""``federation.seed`` makes the cohort predictable, so no epsilon may count on it (DP H4).

The review built two servers from one config with ``federation.seed`` set, Poisson
sampling at q = 0.5 and central DP: both drew the same cohorts (anyone holding the TOML
predicts them), yet the accountant charged each round at q = 0.5 (amplification by
sampling, which needs a cohort secret from the adversary) and the ledger did not say
the sampling was seeded. Such a config was then refused. Since 2026-12-03 no epsilon
credits the sampling at all (a round's members see one another): the central mechanism
charges each client for the rounds it was in, which holds whoever can predict or see
the cohorts, so a seed is accepted and the ledger still says it was used.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.dp.accounting import epsilon
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 4
NAMES = [f"b{i}" for i in range(20)]  # the review's federation
CENTRAL = {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3}


def _data(
    rate: float,
    *,
    dp: dict[str, Any] | None = None,
    backend: str = "plain",
    **federation: object,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "federation": {"name": "h4", "clients": NAMES, "dimension": D, "rounds": 1} | federation,
        "sampling": {"kind": "poisson", "rate": rate},
        "backend": {"name": backend, "value_bound": 1.0},
    }
    if dp is not None:
        data["dp"] = dp
    return data


def _run(config: FederationConfig, tmp_path: Path, label: str) -> list[dict]:
    """One federation over the in-process hub, every branch connected; its ledger rows."""
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m: np.full_like(m, 0.1),
            hub.connect(name),
            policy=BranchPolicy(allow_plain=True),
        )
        threading.Thread(target=client.run, kwargs={"idle_timeout": 10}, daemon=True).start()
    ledger = Ledger(tmp_path / f"{label}.ledger", LedgerKey.generate())
    server = FederationServer(config, hub, ServerStore(tmp_path / f"{label}.sqlite"), ledger=ledger)
    try:
        server.run(wait_for_clients=120, max_attempts=3)
        return ledger.entries()
    finally:
        # as a server stops: left open, the file stayed in WAL mode with an empty log no
        # writer holds, which verify now notes (tests/ledger/test_verify_empty_log.py)
        ledger.close()


def _complete(entries: list[dict]) -> dict:
    complete = [entry for entry in entries if entry["status"] == "complete"]
    assert complete, [entry.get("reason") for entry in entries]
    return complete[0]


@pytest.mark.parametrize("rate", [0.5, 0.9])
def test_h4_a_seeded_cohort_is_accepted_and_credited_nothing(tmp_path: Path, rate: float) -> None:
    """The review's config (seed 7, Poisson, central DP) runs; its claim is the Gaussian
    of the most charged client's rounds, never the amplified figure at q."""
    config = FederationConfig.from_dict(_data(rate, dp=CENTRAL, backend="secagg+", seed=7))
    assert config.mechanism().accounted_rate == 1.0  # type: ignore[attr-defined]
    row = _complete(_run(config, tmp_path, "seeded"))
    assert row["dp"]["sample_rate"] == 1.0 and row["dp"]["composition"] == "per_client"
    assert row["dp"]["sampling"] == {
        "kind": "poisson",
        "rate": rate,
        "population": len(NAMES),
        "seeded": True,
    }
    assert len(row["participants"]["identity_hashes"]) == row["participants"]["count"]
    assert row["privacy"]["epsilon"] == pytest.approx(epsilon(1.0, 1.0, 1, 1e-3), rel=1e-9)
    assert row["privacy"]["epsilon"] > epsilon(1.0, rate, 1, 1e-3) * 1.04  # not amplified
    result = verify_ledger(tmp_path / "seeded.ledger")
    assert result.ok and result.private, result.first_failure
    assert result.seeded_sampling == [] and result.notes == []


def test_h4_the_toml_door_accepts_it_too(tmp_path: Path) -> None:
    path = tmp_path / "federation.toml"
    path.write_text(
        '[federation]\nname = "h4"\nclients = ["a", "b", "c", "d"]\ndimension = 4\nseed = 3\n'
        '[sampling]\nkind = "poisson"\nrate = 0.5\n'
        "[dp]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-3\n"
        "adaptive_clip = true\ncount_noise_stddev = 5.0\n"
    )
    config, seeded = FederationConfig.load_for_audit(path)
    assert config.seed == 3 and seeded
    assert FederationConfig.load(path).mechanism().accounted_rate == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("rate", "dp"),
    [
        (1.0, CENTRAL),
        (0.5, None),
        (0.5, CENTRAL),
        (0.5, CENTRAL | {"mechanism": "distributed"}),
        (0.5, {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": 1e-3}),
    ],
    ids=["central-q1", "no-dp", "central-sampled", "distributed", "record-dpsgd"],
)
def test_a_seed_is_fine_with_every_mechanism(rate: float, dp: dict[str, Any] | None) -> None:
    config = FederationConfig.from_dict(_data(rate, dp=dp, backend="secagg+", seed=7))
    assert getattr(config.mechanism(), "accounted_rate", 1.0) == 1.0


def test_a_seed_at_rate_one_is_ledgered_as_seeded_and_verifies_private(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(_data(1.0, dp=CENTRAL, seed=7))
    row = _complete(_run(config, tmp_path, "q1"))
    assert row["dp"]["sample_rate"] == 1.0
    assert row["dp"]["sampling"]["seeded"] is True and row["noise_seeded"] is False
    result = verify_ledger(tmp_path / "q1.ledger")
    assert result.ok and result.private, result.first_failure
    assert result.seeded_sampling == [] and result.notes == []


def test_without_a_seed_the_rows_list_who_took_part(tmp_path: Path) -> None:
    """No seed at q < 1: the cohort comes from the OS CSPRNG, the ledger says the
    sampling was not seeded, lists the participants' identity hashes (the per-client
    charge needs them; before, they were withheld for the amplified claim's sake) and
    verifies as private, with nothing to note."""
    config = FederationConfig.from_dict(_data(0.9, dp=CENTRAL))
    row = _complete(_run(config, tmp_path, "unseeded"))
    assert row["dp"]["sample_rate"] == 1.0
    assert row["dp"]["sampling"]["seeded"] is False
    assert isinstance(row["participants"]["identity_hashes"], list)
    result = verify_ledger(tmp_path / "unseeded.ledger")
    assert result.ok and result.private, result.first_failure
    assert result.notes == []


def test_a_replay_keeps_its_seeded_cohorts_and_is_reported_not_private(tmp_path: Path) -> None:
    """The simulator's case: ``replay_noise`` with a seed at q < 1 and central DP. Its
    cohorts replay (the review's two servers draw the same ones) and its ledger says the
    noise and the cohort were both seeded; verify lists the round as not private for its
    noise (the cohort costs nothing: no amplification is claimed)."""
    config = FederationConfig.from_dict(_data(0.5, dp=CENTRAL, seed=7, replay_noise=True))
    cohorts = []
    for trial in range(2):
        hub = InProcessHub()
        for name in NAMES:
            hub.connect(name)
        store = ServerStore(tmp_path / f"draw-{trial}.sqlite")
        server = FederationServer(config, hub, store, np.zeros(D))
        assert server.sampling_seeded
        cohorts.append([server.sample() for _ in range(3)])
    assert cohorts[0] == cohorts[1]
    row = _complete(_run(config, tmp_path, "replay"))
    assert row["dp"]["sample_rate"] == 1.0
    assert row["dp"]["sampling"]["seeded"] is True and row["noise_seeded"] is True
    result = verify_ledger(tmp_path / "replay.ledger")
    assert result.ok, result.first_failure
    assert not result.private
    assert result.seeded and result.seeded_sampling == []
    (reason,) = result.not_private_reasons()
    assert reason.startswith(f"round {row['round']}: DP noise was seeded")
    assert "amplification by sampling" not in reason
