"""``federation.seed`` keys no secret (security review M1).

The review regenerated the server's central DP noise from the seed in the config
and subtracted it (max error 5.8e-09 against the exact sum). Now the noise comes
from the OS CSPRNG whatever the seed; only ``replay_noise`` (simulations) seeds
it, and then every ledger row says so and ``audit verify`` reports the run as
not private.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.ledger.verify import noise_seeded, verify_ledger
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 32
NAMES = [f"branch-{i}" for i in range(4)]
UPDATE = 0.1


def _config(*, dp: bool = True, **federation: object) -> FederationConfig:
    """The review's federation; ``dp=False`` drops its ``[dp]`` section (no noise at all)."""
    sections: dict[str, object] = {
        "federation": {"name": "m1", "clients": NAMES, "dimension": D, "rounds": 1} | federation,
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "plain", "value_bound": 1.0},
    }
    if dp:
        sections["dp"] = {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3}
    return FederationConfig.from_dict(sections)


def _run(config: FederationConfig, tmp_path: Path) -> tuple[np.ndarray, list[dict]]:
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(
            name,
            lambda m: np.full_like(m, UPDATE),
            hub.connect(name),
            policy=BranchPolicy(allow_plain=True),
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 10, "rounds": 1}, daemon=True
        ).start()
    ledger = Ledger(tmp_path / f"{config.seed}-{config.replay_noise}.ledger", LedgerKey.generate())
    server = FederationServer(
        config, hub, ServerStore(tmp_path / f"{config.replay_noise}.sqlite"), ledger=ledger
    )
    (result,) = server.run(wait_for_clients=120)
    assert result.status == "complete"
    return server.model, ledger.entries()


def _subtract_regenerated_noise(config: FederationConfig, model: np.ndarray) -> float:
    """The review's attack: rebuild the noise from the seed and remove it."""
    label = b"secagg/v1/test-seed/noise" + str(config.seed).encode()
    noise = gaussian(1.0, D, KeyedStream(hashlib.sha256(label).digest()[:16]))
    exact = np.full(D, UPDATE)  # the mean of four equal updates
    return float(np.max(np.abs(model - noise / len(NAMES) - exact)))


def test_m1_the_config_seed_does_not_reveal_the_noise(tmp_path: Path) -> None:
    config = _config(seed=7)
    model, entries = _run(config, tmp_path)
    # the noise std on the mean is 1/4: subtracting a guess leaves noise of that size
    assert _subtract_regenerated_noise(config, model) > 0.05
    assert entries[0]["noise_seeded"] is False and noise_seeded(entries[0]) is False


def test_replayed_noise_is_reproducible_and_ledgered_as_seeded(tmp_path: Path) -> None:
    config = _config(seed=7, replay_noise=True)
    model, entries = _run(config, tmp_path)
    assert _subtract_regenerated_noise(config, model) < 1e-9  # the replay is exact
    assert entries[0]["noise_seeded"] is True


def test_a_replayed_federation_without_dp_ledgers_no_seeded_noise(tmp_path: Path) -> None:
    """A simulation without DP (``--mechanism off``) sets ``replay_noise`` too, but draws
    no DP noise: its rows said ``noise_seeded: true`` beside ``dp: null`` and audit
    verify blamed seeded noise instead of the missing DP. A row without DP noise says
    false, and the verifier names the true reason."""
    config = _config(dp=False, seed=7, replay_noise=True)
    model, entries = _run(config, tmp_path)
    assert np.allclose(model, UPDATE)  # the exact mean: nothing was added to it
    assert entries and all(entry["dp"] is None for entry in entries)
    assert [entry["noise_seeded"] for entry in entries] == [False] * len(entries)
    result = verify_ledger(tmp_path / "7-True.ledger")
    assert result.ok and result.seeded == []
    assert result.released_without_dp and not result.private


def test_replay_noise_needs_a_seed() -> None:
    with pytest.raises(ConfigurationError, match="replay_noise"):
        _config(replay_noise=True)


def test_a_replay_seed_is_refused_with_a_branch_budget(tmp_path: Path) -> None:
    """The replay seed keys a branch's noise share by its name and round number only: in
    two federations, one seed gives the same share to both rounds numbered alike, and a
    budget that charges each round as fresh noise would be unsound. Refused at once, one
    line naming both, before the state file is created; the simulator, which passes a
    replay seed and no budget, is unchanged (tests/apps/simulation/test_replay_bytes.py)."""
    state = tmp_path / "branch.state"
    budget = BranchPolicy(epsilon_budget=4.0, delta=1e-5)
    with pytest.raises(ConfigurationError, match="epsilon_budget") as caught:
        FederationClient(
            NAMES[0], lambda m: m, None, policy=budget, replay_seed=b"seed", state=state
        )
    assert "replay seed" in str(caught.value) and "\n" not in str(caught.value)
    assert not state.exists()
    # either alone is taken
    FederationClient(NAMES[0], lambda m: m, None, replay_seed=b"seed")
    FederationClient(NAMES[0], lambda m: m, None, policy=budget, state=state)
    assert state.exists()
