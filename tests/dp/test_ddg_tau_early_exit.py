"""``_ddg_tau`` stops summing where every later term is exactly 0.0 in the floats.

Why: the sum ran over all ``n - 1`` terms in Python, 5.6 s per distinct share count at
10^7 clients, although at a local std of about 8.7 or more (``2 pi^2 sigma^2 / 2`` past
745, where ``exp`` of the negative underflows to 0.0) every term is exactly zero, and at
a slightly smaller ``2 pi^2 sigma^2`` past 746 all but a short prefix are. Skipping
exact zeros leaves ``math.fsum`` unchanged, so the figures must stay float for float.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import ddg_accounting


def _full_sum(local_stddev: float, noise_contributors: int) -> float:
    """The sum as it was, every term computed: the reference the early exit must equal."""
    two_pi2_s2 = 2 * math.pi**2 * local_stddev**2
    return 10 * math.fsum(math.exp(-two_pi2_s2 * k / (k + 1)) for k in range(1, noise_contributors))


# local stds around both thresholds: 2 pi^2 s^2 = 746 (s ~ 6.148) and pi^2 s^2 = 745.13
# (s ~ 8.689), where the terms go from all nonzero to a prefix to none
_EDGES = [0.5, 1.0, 2.0, 6.14, 6.1475, 6.148, 6.1482, 6.15, 6.2, 7.0, 8.68, 8.689, 8.69, 9.0]


@pytest.mark.parametrize("local_stddev", _EDGES)
@pytest.mark.parametrize("noise_contributors", [1, 2, 3, 50, 4000])
def test_same_figure_as_the_full_sum(local_stddev: float, noise_contributors: int) -> None:
    got = ddg_accounting._ddg_tau(local_stddev, noise_contributors)
    assert got == _full_sum(local_stddev, noise_contributors)


@settings(max_examples=50, deadline=None)
@given(
    local_stddev=st.floats(min_value=6.0, max_value=12.0),
    noise_contributors=st.integers(min_value=1, max_value=20_000),
)
def test_same_figure_as_the_full_sum_anywhere_near_the_cut(
    local_stddev: float, noise_contributors: int
) -> None:
    assert ddg_accounting._ddg_tau(local_stddev, noise_contributors) == _full_sum(
        local_stddev, noise_contributors
    )


@pytest.mark.parametrize("local_stddev", [6.2, 9.0, 1e6])
def test_no_term_past_the_last_nonzero_one(
    local_stddev: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million shares at a local std where the terms underflow cost a handful of
    ``exp`` calls, not a million (the sum of 10^7 took 5.6 s)."""
    calls = []
    real_exp = math.exp

    def counted_exp(x: float) -> float:
        calls.append(x)
        return real_exp(x)

    monkeypatch.setattr(math, "exp", counted_exp)
    ddg_accounting._ddg_tau(local_stddev, 1_000_000)
    monkeypatch.undo()
    assert len(calls) <= 100
