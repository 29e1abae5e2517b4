"""``federation.seed`` makes the cohort predictable, so it earns no amplification (DP H4).

The review built two servers from one config with ``federation.seed`` set, Poisson
sampling at q = 0.5 and central DP: both drew the same cohorts (anyone holding the TOML
predicts them), yet the accountant charged each round at q = 0.5 (amplification by
sampling, which needs a cohort secret from the adversary) and the ledger did not say
the sampling was seeded. Now such a config is refused outside a replay; a replay (a
simulation, whose noise is seeded too) keeps its seeded cohorts and amplified figure,
and its ledger says both, so ``audit verify`` reports it as not private on both counts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.dp.release import amplified_by_sampling
from secagg.errors import ConfigurationError
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
    server.run(wait_for_clients=120, max_attempts=3)
    return ledger.entries()


def _complete(entries: list[dict]) -> dict:
    complete = [entry for entry in entries if entry["status"] == "complete"]
    assert complete, [entry.get("reason") for entry in entries]
    return complete[0]


@pytest.mark.parametrize("rate", [0.5, 0.9])
@pytest.mark.parametrize("adaptive", [False, True])
def test_h4_a_seeded_cohort_beside_an_amplified_epsilon_is_refused(
    rate: float, adaptive: bool
) -> None:
    """The review's config (seed 7, Poisson 0.5, central DP) was accepted and its
    mechanism claimed amplification at q = 0.5; it is refused, in one line naming the key."""
    dp = CENTRAL | ({"adaptive_clip": True} if adaptive else {})
    with pytest.raises(ConfigurationError, match=r"federation\.seed = 7") as refused:
        FederationConfig.from_dict(_data(rate, dp=dp, backend="secagg+", seed=7))
    message = str(refused.value)
    assert "\n" not in message
    assert "amplification" in message and "remove federation.seed" in message


def test_h4_the_toml_door_refuses_it_too(tmp_path: Path) -> None:
    path = tmp_path / "federation.toml"
    path.write_text(
        '[federation]\nname = "h4"\nclients = ["a", "b", "c", "d"]\ndimension = 4\nseed = 3\n'
        '[sampling]\nkind = "poisson"\nrate = 0.5\n'
        "[dp]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-3\n"
    )
    with pytest.raises(ConfigurationError, match=r"federation\.seed = 3"):
        FederationConfig.load(path)
    path.write_text(path.read_text().replace("seed = 3\n", ""))
    assert FederationConfig.load(path).mechanism().hides_participation  # amplified, unseeded


@pytest.mark.parametrize(
    ("rate", "dp"),
    [
        (1.0, CENTRAL),  # everyone is sampled: no amplification claimed
        (0.5, None),  # no DP, no epsilon
        (0.5, CENTRAL | {"mechanism": "distributed"}),  # accounted at q = 1 already
        (0.5, {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": 1e-3}),
    ],
    ids=["central-q1", "no-dp", "distributed", "record-dpsgd"],
)
def test_a_seed_is_fine_where_no_amplification_is_claimed(
    rate: float, dp: dict[str, Any] | None
) -> None:
    config = FederationConfig.from_dict(_data(rate, dp=dp, backend="secagg+", seed=7))
    assert not config.mechanism().hides_participation
    assert not amplified_by_sampling(config.dp, sample_rate=config.sample_rate)


@pytest.mark.parametrize(
    "dp",
    [
        None,
        CENTRAL,
        CENTRAL | {"adaptive_clip": True, "count_noise_stddev": 5.0},
        CENTRAL | {"mechanism": "distributed"},
        {"unit": "record", "mechanism": "dpsgd", "clip": 1.0, "delta": 1e-3},
        CENTRAL | {"unit": "record", "mechanism": "distributed", "record_clip": 0.5},
    ],
)
@pytest.mark.parametrize("rate", [0.5, 1.0])
def test_the_config_check_asks_what_the_built_mechanism_claims(
    rate: float, dp: dict[str, Any] | None
) -> None:
    """The refusal is decided before any mechanism exists; it must agree with the one the
    server builds (whose amplified, q < 1 epsilon is what hides the participants)."""
    config = FederationConfig.from_dict(_data(rate, dp=dp, backend="secagg+"))
    mechanism = config.mechanism()
    assert amplified_by_sampling(config.dp, sample_rate=rate) == mechanism.hides_participation


def test_a_seed_at_rate_one_is_ledgered_as_seeded_and_verifies_private(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(_data(1.0, dp=CENTRAL, seed=7))
    row = _complete(_run(config, tmp_path, "q1"))
    assert row["dp"]["sample_rate"] == 1.0
    assert row["dp"]["sampling"]["seeded"] is True and row["noise_seeded"] is False
    result = verify_ledger(tmp_path / "q1.ledger")
    assert result.ok and result.private, result.first_failure
    assert result.seeded_sampling == [] and result.notes == []


def test_without_a_seed_sampling_still_amplifies(tmp_path: Path) -> None:
    """No seed at q < 1: the cohort comes from the OS CSPRNG, the epsilon is amplified,
    the ledger says the sampling was not seeded and the ledger verifies as private."""
    config = FederationConfig.from_dict(_data(0.9, dp=CENTRAL))
    mechanism = config.mechanism()
    assert mechanism.hides_participation and mechanism.accounted_rate == 0.9  # type: ignore[attr-defined]
    row = _complete(_run(config, tmp_path, "unseeded"))
    assert row["dp"]["sample_rate"] == 0.9
    assert row["dp"]["sampling"]["seeded"] is False
    assert row["participants"]["identity_hashes"] == "withheld"
    result = verify_ledger(tmp_path / "unseeded.ledger")
    assert result.ok and result.private, result.first_failure
    # the only note: what the published cohort size costs beyond the Poisson claim
    (note,) = result.notes
    assert note.startswith("1 sampled rows publish their cohort's size")


def test_a_replay_keeps_its_seeded_cohorts_and_is_reported_not_private(tmp_path: Path) -> None:
    """The simulator's case: ``replay_noise`` with a seed at q < 1 and central DP. Its
    cohorts replay (the review's two servers draw the same ones), its amplified figure
    stands as the simulation's nominal epsilon, and its ledger says the noise and the
    cohort were both seeded, so verify lists the round as not private for both."""
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
    assert row["dp"]["sample_rate"] == 0.5
    assert row["dp"]["sampling"]["seeded"] is True and row["noise_seeded"] is True
    result = verify_ledger(tmp_path / "replay.ledger")
    assert result.ok, result.first_failure
    assert not result.private
    assert result.seeded and result.seeded_sampling == result.seeded
    (reason,) = result.not_private_reasons()
    assert reason.startswith(f"round {row['round']}: DP noise was seeded")
    assert "amplification by sampling" in reason
