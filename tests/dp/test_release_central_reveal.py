"""Central DP whose noise the CKKS key holder adds: the decrypted sum is the release.

``CentralRelease.charge_at_reveal`` was None whatever the backend, so a server that died
between the key holder's reply (the noised sum, which nobody sees un-noised) and storing
the round was never charged for it (worktree 165; the federation-level case is
tests/runtime/test_ckks_reveal_charge.py). It now returns the round's charge, as the
release would store it, when the backend adds at least the planned noise; where the
server noises the sum itself (masking, or adaptive clipping) the release comes after the
trusted server's noise and nothing is charged at the reveal.
"""

from __future__ import annotations

import numpy as np
import pytest

from secagg.dp.config import DPSettings
from secagg.dp.release import CentralRelease, mechanism_for

MEMBERS = ["b1", "b2", "b3", "b4"]


def _central(**dp: object) -> CentralRelease:
    settings = {"clip": 2.0, "noise_multiplier": 0.8, "delta": 1e-5, **dp}
    mechanism = mechanism_for(
        DPSettings(**settings),  # type: ignore[arg-type]
        dimension=8,
        bits=32,
        sample_rate=1.0,
        expected_clients=4.0,
        corrupt_fraction=0.25,
        seed=b"s" * 16,
    )
    assert isinstance(mechanism, CentralRelease)
    mechanism.begin_round(MEMBERS)
    return mechanism


def test_the_key_holders_noised_sum_is_charged_as_its_release_would_be() -> None:
    mechanism = _central()
    noise = mechanism.backend_noise_stddev
    charge = mechanism.charge_at_reveal(contributors=3, participants=4, noise_added=noise)
    assert charge is not None
    assert mechanism.accountant.epsilon() == 0.0  # the note charges nothing yet
    released = _central().release(np.ones(8), contributors=3, participants=4, noise_added=noise)
    assert charge["charged"] == released.store["charged"]  # members and multiplier
    assert charge["epsilon"] == pytest.approx(released.epsilon, rel=1e-12)
    restarted = _central()
    restarted.restore(charge)  # what a restart does with the round's "revealed"
    assert restarted.accountant.epsilon() == pytest.approx(released.epsilon, rel=1e-12)


@pytest.mark.parametrize("noise_added", [0.0, 1.0])
def test_a_sum_the_server_noises_itself_is_not_charged_at_the_reveal(noise_added: float) -> None:
    """Masking (no noise added) or less than planned: the server adds the rest, trusted."""
    mechanism = _central()
    assert noise_added < mechanism.backend_noise_stddev
    assert (
        mechanism.charge_at_reveal(contributors=3, participants=4, noise_added=noise_added) is None
    )


def test_adaptive_clipping_noises_on_the_server_so_nothing_is_charged_at_the_reveal() -> None:
    mechanism = _central(clip=0.1, adaptive_clip=True, count_noise_stddev=1.0)
    assert mechanism.backend_noise_stddev == 0.0
    assert mechanism.charge_at_reveal(contributors=3, participants=4, noise_added=5.0) is None
