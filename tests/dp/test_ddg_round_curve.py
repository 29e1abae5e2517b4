"""One round's DDG RDP curve (``ddg_round_rdp``) and its conversion (``rdp_epsilon``):
the pieces a branch's own budget composes rounds of different parameters with.

Summed over k identical rounds and converted, the curve gives ``ddg_epsilon`` of those k
rounds at sample rate 1, float for float up to the sum's rounding: the branch's figure
and the server's are the same accountant's."""

from __future__ import annotations

import math

import pytest

from secagg.dp.ddg_accounting import DDG_ORDERS, ddg_epsilon, ddg_round_rdp, rdp_epsilon
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.errors import ConfigurationError

DELTA = 1e-6


def _parameters(z: float, honest: int) -> dict[str, float | int]:
    m = DistributedDiscreteGaussian(dimension=20, clip=1.0, noise_multiplier=z, expected_clients=8)
    return {
        "l2_sensitivity": m.sensitivity,
        "l1_sensitivity": m.l1_sensitivity,
        "local_stddev": float(m.local_sigma),
        "noise_contributors": honest,
        "dimension": m.padded,
    }


@pytest.mark.parametrize(("z", "honest", "rounds"), [(1.0, 6, 1), (2.0, 3, 7), (0.7, 1, 25)])
def test_k_identical_curves_give_ddg_epsilon_of_k_rounds(
    z: float, honest: int, rounds: int
) -> None:
    parameters = _parameters(z, honest)
    curve = ddg_round_rdp(**parameters)  # type: ignore[arg-type]
    assert len(curve) == len(DDG_ORDERS)
    summed = [0.0] * len(curve)
    for _ in range(rounds):
        summed = [a + b for a, b in zip(summed, curve, strict=True)]
    expected = ddg_epsilon(**parameters, sample_rate=1.0, rounds=rounds, delta=DELTA)  # type: ignore[arg-type]
    assert math.isclose(rdp_epsilon(summed, DELTA), expected, rel_tol=1e-9)


def test_rounds_of_different_parameters_add() -> None:
    low = ddg_round_rdp(**_parameters(1.0, 3))  # type: ignore[arg-type]
    high = ddg_round_rdp(**_parameters(4.0, 3))  # type: ignore[arg-type]
    both = rdp_epsilon([a + b for a, b in zip(low, high, strict=True)], DELTA)
    assert rdp_epsilon(low, DELTA) < both and rdp_epsilon(high, DELTA) < both


@pytest.mark.parametrize(
    "values",
    [[0.1] * 3, [-0.1] * len(DDG_ORDERS), [math.nan] * len(DDG_ORDERS)],
)
def test_a_curve_that_is_not_one_is_refused(values: list[float]) -> None:
    with pytest.raises(ConfigurationError):
        rdp_epsilon(values, DELTA)


def test_no_round_is_no_epsilon_and_bad_counts_are_refused() -> None:
    assert rdp_epsilon([0.0] * len(DDG_ORDERS), DELTA) == 0.0
    for count in (0, 2.5, True, [3, 4]):
        with pytest.raises(ConfigurationError, match="noise_contributors"):
            ddg_round_rdp(**{**_parameters(1.0, 3), "noise_contributors": count})  # type: ignore[arg-type]
