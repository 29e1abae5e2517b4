"""Opacus's RDP curve, its fractional orders' series summed a block of terms at a time
(:mod:`secagg.dp.opacus_rdp_series`, behind :func:`secagg.dp.accountants.memoise_opacus_rdp`):
the same floats as Opacus, bit for bit, and the same calibrated noise.

Why: a DP-SGD calibration computes one new RDP curve per noise multiplier it tries (PRV
sizes its domain by it), and Opacus sums each fractional order's series term by term
with two scalar SciPy calls a term: with a large sample rate that was most of a small
``secagg simulate``'s calibration (the search's ``z = 1e4`` at ``q = 0.5``: 2.1 s of
CPU for one curve). Every figure the engine states goes through that curve, so the
faster sum must change none of them: each check here compares with Opacus's rdp module
loaded afresh from its file, or with noise multipliers recorded from the code before."""

from __future__ import annotations

import importlib.util
import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants.analysis import rdp

import secagg.dp.dpsgd  # the trainers: installs the memo at import; _search_after below
from secagg.dp import opacus_rdp_series
from secagg.dp.accountants import memoise_opacus_rdp

#: Opacus's orders (RDPAccountant.DEFAULT_ALPHAS): 90 fractional, 61 whole (2.0, 3.0, ..., 63)
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
FRACTIONAL = [order for order in ORDERS if not float(order).is_integer()]


def _pristine() -> ModuleType:
    """Opacus's rdp module loaded afresh from its file, under another name."""
    spec = importlib.util.spec_from_file_location("_pristine_rdp_for_series", rdp.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRISTINE = _pristine()


def _outcome(function: Any, *arguments: Any) -> tuple[Any, ...]:
    """What a call gives, bit for bit: its type, dtype and bytes, or the error's type."""
    try:
        value = function(*arguments)
    except (ArithmeticError, ValueError) as exc:
        return ("raises", type(exc))
    array = np.asarray(value)
    return (array.dtype, array.tobytes())


@settings(max_examples=50, deadline=None)
@given(
    q=st.floats(1e-6, 0.999),
    log_z=st.floats(math.log(0.05), math.log(100.0)),
    alpha=st.sampled_from(FRACTIONAL),
)
def test_a_fractional_order_is_opacus_float_bit_for_bit(
    q: float, log_z: float, alpha: float
) -> None:
    z = math.exp(log_z)
    assert opacus_rdp_series.applies(q, z, alpha)
    assert _outcome(opacus_rdp_series.compute_rdp_order, q, z, alpha) == _outcome(
        PRISTINE._compute_rdp, q, z, alpha
    )


#: the calibrations' own (q, z): the tiny simulate's branches, the search's ceiling at a
#: large rate (the longest series: tens of thousands of terms), the default run's rate,
#: and rates near 0 and 1
SEARCHED = [
    (0.5, 1e4, [2.5, 10.9]),
    (1 / 3, 1.331077965171273, FRACTIONAL),
    (0.5, 1.435905437650708, FRACTIONAL),
    (0.05263157894736842, 1.995309215161143, FRACTIONAL),
    (0.9999, 0.3, [1.1, 5.5]),
    (1e-9, 0.05, [1.1, 5.5]),
]


@pytest.mark.parametrize(("q", "z", "orders"), SEARCHED)
def test_the_searched_curves_are_opacus_own(q: float, z: float, orders: list[float]) -> None:
    got = opacus_rdp_series.compute_rdp(PRISTINE.compute_rdp, q, z, orders)
    want = PRISTINE.compute_rdp(q=q, noise_multiplier=z, steps=1, orders=orders)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


#: arguments this module leaves to Opacus: integer orders, q at 0 or 1, a noise whose
#: square overflows, types other than float (a noise whose square underflows is left to
#: it too, below: Opacus's series never ends there, so it is not run here)
DELEGATED = [
    (0.5, 1.3, 12),
    (0.5, 1.3, 3.0),
    (1.0, 1.3, 2.5),
    (0.0, 1.3, 2.5),
    (0.5, 1e160, 2.5),
    (0.5, np.float64(1.3), 2.5),
    (0.5, 1.3, np.float32(2.5)),
    (0.5, 1, 2.5),
]


@pytest.mark.parametrize(("q", "z", "order"), DELEGATED)
def test_anything_else_is_left_to_opacus(q: Any, z: Any, order: Any) -> None:
    assert not opacus_rdp_series.applies(q, z, order)
    got = _outcome(lambda: opacus_rdp_series.compute_rdp(PRISTINE.compute_rdp, q, z, [order]))
    want = _outcome(lambda: PRISTINE.compute_rdp(q=q, noise_multiplier=z, steps=1, orders=[order]))
    assert got == want


def test_a_noise_whose_square_underflows_is_left_to_opacus() -> None:
    assert not opacus_rdp_series.applies(0.5, 1e-160, 2.5)
    assert opacus_rdp_series.applies(0.5, 1e-100, 2.5)


def test_the_memo_does_not_run_opacus_term_by_term_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memoised curve of a tiny run's branch (q = 0.5) is computed without Opacus's
    per-term loop (before: 99 runs of it, 0.2 s of this curve's CPU), and is its value."""
    want = PRISTINE.compute_rdp(q=0.5, noise_multiplier=1.4359, steps=1, orders=ORDERS)
    memoise_opacus_rdp().cache_clear()

    def per_term(*arguments: Any) -> float:
        raise AssertionError("Opacus's term-by-term series ran")

    monkeypatch.setattr(rdp, "_compute_log_a_for_frac_alpha", per_term)
    got = rdp.compute_rdp(q=0.5, noise_multiplier=1.4359, steps=3, orders=ORDERS)
    memoise_opacus_rdp().cache_clear()  # nothing computed under the patch stays cached
    assert got.tobytes() == (want * 3).tobytes()


#: (accountant, target epsilon, q, steps, delta, prior) -> z, recorded from
#: ``secagg.dp.dpsgd._search_after`` before this module (commit 3371231); the prior is
#: the simulator's noised feature statistics (one unsampled Gaussian)
STATS = (5.773502691896258, 1.0, 1)
RECORDED: list[tuple[str, float, float, int, float, tuple[Any, ...], float]] = [
    ("prv", 0.5, 0.2, 10, 1e-5, (), 4.983143363611938),
    ("prv", 3.0, 0.5, 2, 1e-5, (STATS,), 1.435905437650708),  # the tiny run's branch
]


@pytest.mark.parametrize(("accountant", "target", "q", "steps", "delta", "prior", "z"), RECORDED)
def test_calibrated_noise_is_the_recorded_noise(
    accountant: str,
    target: float,
    q: float,
    steps: int,
    delta: float,
    prior: tuple[Any, ...],
    z: float,
) -> None:
    memoise_opacus_rdp().cache_clear()  # every curve computed afresh, by this module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the floor's caveat at 1e6: not the point here
        found = secagg.dp.dpsgd._search_after(
            list(prior),
            target_epsilon=target,
            delta=delta,
            sample_rate=q,
            steps=steps,
            accountant=accountant,
            said=[],
        )
    assert found == z  # bit for bit: the model, its epsilon and AUPRC follow from z
