"""A branch's noise floor holds the noise share at the scale the round really runs.

A noise share's std is ``ceil(z C scale / sqrt(n))`` whole ring units and its
sensitivity the rounded update's inflated bound, which grows as the scale coarsens
(each coordinate rounds to a unit of ``1 / scale``). The branch checked only the
nominal ``z`` the spec states. A server that sent ``z = 1`` at scale 2.5 (a clipped
update of 2.5 units, above the floor of one) had a branch with ``min_noise_multiplier
= 1`` take a round whose noise, per unit of the sensitivity its own encoder enforces,
is 0.19 (10 clients, d = 1024: one round's epsilon 38 at delta 1e-5, against 4.8 at
the planned scale). The branch now refuses a share coarser than its own parameters
plan, as ``audit verify`` refuses such a ledger row; the planned scale is taken, bit
for bit as the server's planner chose it.
"""

from __future__ import annotations

import math
import os

import pytest
from _harness import fingerprint

from secagg.aggregation import decode_spec
from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import encode_spec
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import PolicyRefused

CLIENTS, DIMENSION = 10, 1024


def _spec(scale: float = 0.0, **ddg: object) -> MaskingSpec:
    """The round spec a branch decodes, its noise share at ``scale`` (0: planned)."""
    parameters: dict[str, object] = {
        "dimension": DIMENSION,
        "clip": 1.0,
        "noise_multiplier": 1.0,
        "expected_clients": CLIENTS,
        "bits": 32,
        "scale": scale,
        **ddg,
    }
    share = NoiseShareRound(DistributedDiscreteGaussian(**parameters), os.urandom(16))  # type: ignore[arg-type]
    planned = MaskingBackend(graph="complete", bits=int(parameters["bits"])).plan(  # type: ignore[call-overload]
        CLIENTS, DIMENSION, noise_share=share
    )
    spec = decode_spec(encode_spec(planned))
    assert isinstance(spec, MaskingSpec)
    return spec


def _effective_multiplier(spec: MaskingSpec) -> float:
    """The noise of ``n`` shares per unit of the sensitivity, both in ring units."""
    assert spec.noise_share is not None
    ddg = spec.noise_share.mechanism
    return math.sqrt(ddg.expected_clients) * ddg.local_sigma / ddg.sensitivity


@pytest.mark.parametrize("scale", [2.5, 8.0, 30.0])
def test_a_share_coarser_than_planned_is_refused_by_a_branch_with_a_noise_floor(
    scale: float,
) -> None:
    spec = _spec(scale)
    assert _effective_multiplier(spec) < 0.97  # the weaker round the floor must stop
    policy = BranchPolicy(min_noise_multiplier=1.0)
    before = fingerprint(spec)
    with pytest.raises(PolicyRefused) as refused:
        spec.check_policy(policy)
    assert refused.value.setting == "branch.min_noise_multiplier"
    assert "coarser than its parameters plan" in str(refused.value)
    assert "in effect" in str(refused.value)
    assert fingerprint(spec) == before


def test_the_planned_scale_is_taken() -> None:
    spec = _spec()
    assert _effective_multiplier(spec) > 0.99
    spec.check_policy(BranchPolicy(min_noise_multiplier=1.0))


def test_a_finer_scale_than_planned_is_taken_where_the_ring_allows_it() -> None:
    """On 64 bits the planned scale is float64's cap, below the ring's: a finer one
    only shrinks the rounding's share of the sensitivity."""
    planned = _spec(bits=64).noise_share
    assert planned is not None
    ddg = planned.mechanism
    assert ddg.scale < ddg.largest_scale
    finer = _spec(bits=64, scale=ddg.scale * 1.5)
    finer.check_policy(BranchPolicy(min_noise_multiplier=1.0))


def test_a_branch_without_a_noise_floor_still_takes_a_coarse_share() -> None:
    """Its own budget, if any, charges the share's real epsilon; nothing to refuse."""
    _spec(2.5).check_policy(BranchPolicy())
