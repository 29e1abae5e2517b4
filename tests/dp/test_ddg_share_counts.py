"""The distributed discrete Gaussian's rounds with different honest share counts.

The accountant charged every round at the fewest honest shares any round had, on the
assumption that fewer shares always cost more. They do not: the bound's ``tau`` term
(a sum of n discrete Gaussians is only close to one) grows with n, so at a local std of
1 (integer units) and a large model more shares can cost more, and two rounds charged
at the fewer count understated the pair (2.9167 where the rounds' own bounds compose
to 2.9269). Each round is now charged the largest per-round bound of the counts seen."""

from __future__ import annotations

import pytest
from dp_accounting import rdp

from secagg.dp.accountants import DiscreteGaussianAccountant
from secagg.dp.ddg_accounting import DDG_ORDERS, _ddg_round_rdp
from secagg.dp.distributed import DistributedDiscreteGaussian


def _mechanism(expected: int, bits: int, dimension: int) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        dimension=dimension, clip=1.0, noise_multiplier=1.0, expected_clients=expected, bits=bits
    )


def _composed(mechanism: DistributedDiscreteGaussian, counts: list[int]) -> float:
    """The rounds' own per-round RDP bounds, summed and converted: what the rounds spent."""
    curves = [
        _ddg_round_rdp(
            mechanism.sensitivity,
            float(mechanism.l1_sensitivity),
            float(mechanism.local_sigma),
            n,
            mechanism.padded,
            1.0,
        )
        for n in counts
    ]
    total = [sum(values) for values in zip(*curves, strict=True)]
    eps, _ = rdp.rdp_privacy_accountant.compute_epsilon(list(DDG_ORDERS), total, 1e-5)
    return float(eps)


@pytest.mark.parametrize("order", [[45_000, 55_000], [55_000, 45_000]])
def test_more_shares_that_cost_more_are_charged(order: list[int]) -> None:
    mechanism = _mechanism(50_000, 14, 2**14)
    assert mechanism.local_sigma == 1  # where tau matters
    one = {
        n: mechanism.epsilon(noise_contributors=n, sample_rate=1.0, rounds=1, delta=1e-5)
        for n in order
    }
    assert one[55_000] > one[45_000]  # more shares, more epsilon: the premise
    accountant = DiscreteGaussianAccountant(mechanism, sample_rate=1.0, delta=1e-5)
    for count in order:
        accountant.step(count)
    assert accountant.epsilon() >= _composed(mechanism, order)


def test_where_fewer_shares_cost_more_the_figure_is_the_fewest_counts() -> None:
    """A local std of 2 or more: tau vanishes, and the figure is what it always was."""
    mechanism = _mechanism(10, 16, 1000)
    assert mechanism.local_sigma >= 2
    accountant = DiscreteGaussianAccountant(mechanism, sample_rate=1.0, delta=1e-5)
    for count in (10, 12, 8, 9):
        accountant.step(count)
    fewest = mechanism.epsilon(noise_contributors=8, sample_rate=1.0, rounds=4, delta=1e-5)
    assert accountant.epsilon() == fewest
    assert accountant.honest_shares == [10, 12, 8, 9]


def test_a_round_without_honest_shares_is_unbounded() -> None:
    mechanism = _mechanism(10, 16, 1000)
    accountant = DiscreteGaussianAccountant(mechanism, sample_rate=1.0, delta=1e-5)
    accountant.step(5)
    accountant.step(0)
    assert accountant.epsilon() == float("inf")
