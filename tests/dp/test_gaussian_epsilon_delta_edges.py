"""The closed-form Gaussian epsilon at the ends of delta's range: never negative, never
a solver's traceback.

``delta`` is accepted anywhere in (0, 1). Near 1 (above ``Phi(mu / 2)``, so 0.7 at
z = 1, 0.6 at z = 100) the tail bound that caps the solved epsilon went negative, and
:func:`~secagg.dp.gaussian_closed_form.gaussian_epsilon`, ``epsilon(q = 1)``, the running
accountant and a :class:`~secagg.dp.config.DPConfig` plan (``num_clients = 1`` allows
any delta below 1) reported epsilon -0.024 or -0.0025 as spent. A subnormal delta
(1e-310) sent the solver's bracket to infinity and brentq raised scipy's ValueError.
Now: at least 0 (which meets such a delta), and the tail bound for a subnormal delta.
"""

from __future__ import annotations

import math
import sys
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from secagg.dp.accounting import PrivacyAccountant, epsilon, gaussian_epsilon
from secagg.dp.config import DPConfig


@given(
    z=st.floats(min_value=1e-2, max_value=1e4),
    delta=st.floats(min_value=0.5, max_value=1 - 1e-12),
)
@settings(max_examples=40, deadline=None)
def test_no_negative_epsilon_near_delta_one(z: float, delta: float) -> None:
    assert gaussian_epsilon(z, delta) >= 0.0


@pytest.mark.parametrize(("z", "delta"), [(1.0, 0.7), (100.0, 0.6), (1.0, 1 - 1e-16)])
def test_every_entry_point_says_zero_where_delta_covers_the_whole_loss(
    z: float, delta: float
) -> None:
    assert gaussian_epsilon(z, delta) == 0.0
    assert epsilon(z, 1.0, 1, delta) == 0.0
    running = PrivacyAccountant(delta, "pld")
    running.step(z, 1.0)
    assert running.epsilon() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = DPConfig(unit="client", noise_multiplier=z, clip=1.0, delta=delta, num_clients=1)
    assert plan.planned_epsilon() == 0.0


@pytest.mark.parametrize("delta", [1e-310, 1e-320, 5e-324])
@pytest.mark.parametrize("z", [1.0, 1e300])
def test_a_subnormal_delta_gets_the_tail_bound(z: float, delta: float) -> None:
    value = gaussian_epsilon(z, delta)
    assert math.isfinite(value)
    # never below the figure at the smallest normal delta (epsilon falls as delta grows)
    assert value >= gaussian_epsilon(z, sys.float_info.min)
    mu = 1 / z
    assert value >= mu * mu / 2 + mu * -float(special.ndtri(delta)) - 1e-9 * max(1.0, value)
