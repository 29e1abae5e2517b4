"""The scale a server plans is the scale every branch's check takes back (second review
of the float cap of 4ba881e, 2026-12-06; no finding).

Why: a branch with a noise floor recomputes the planned scale from the round's spec
(:attr:`~secagg.dp.distributed.DistributedDiscreteGaussian.planned_scale`) and refuses a
coarser share (``secagg.aggregation.masking._check_share_scale``). The planner now caps
the scale for the noise share's std too (``2^48 sqrt(n) / (z C)``); were the branch's
recomputation to miss that cap, or the given-scale constructor to refuse the capped
plan, every branch with a floor would refuse every round the server can plan. Drawn
over cohorts, noise, clips, ring sizes and record-level bounds; checked offline over
3 000 draws besides.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation.masking import SCALE_PLAN_TOLERANCE
from secagg.dp.distributed import MIN_BITS, DistributedDiscreteGaussian
from secagg.errors import ConfigurationError


@settings(max_examples=50, deadline=None)
@given(
    clients=st.integers(min_value=2, max_value=10**6),
    noise_multiplier=st.floats(min_value=1e-3, max_value=1e4),
    clip=st.floats(min_value=1e-9, max_value=1e9),
    bits=st.integers(min_value=MIN_BITS, max_value=64),
    dimension=st.integers(min_value=1, max_value=5_000),
    units_per_update=st.sampled_from([1.0, 7.5, 1e3]),
)
def test_a_planned_scale_given_back_is_the_plan(
    clients: int,
    noise_multiplier: float,
    clip: float,
    bits: int,
    dimension: int,
    units_per_update: float,
) -> None:
    parameters = {
        "dimension": dimension,
        "clip": clip,
        "noise_multiplier": noise_multiplier,
        "expected_clients": clients,
        "bits": bits,
        "vector_bound": clip * units_per_update,
    }
    try:
        planned = DistributedDiscreteGaussian(**parameters)  # type: ignore[arg-type]
    except ConfigurationError:
        return  # no plan at these parameters: the server cannot send one
    given_back = DistributedDiscreteGaussian(**parameters, scale=planned.scale)  # type: ignore[arg-type]
    assert given_back.scale >= given_back.planned_scale * (1 - SCALE_PLAN_TOLERANCE)
    assert given_back.local_sigma == planned.local_sigma
