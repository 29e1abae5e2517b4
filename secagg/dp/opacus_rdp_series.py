"""Opacus's RDP of the subsampled Gaussian at fractional orders, the same floats, faster.

Why: a DP-SGD calibration evaluates the accountant at about ten noise multipliers, and
each new ``(q, z)`` costs one RDP curve: 151 orders, 99 of them fractional, each a
series Opacus sums term by term in Python (``_compute_log_a_for_frac_alpha``), with two
scalar SciPy calls a term (``binom``, ``log_ndtr``). With a large sample rate the series
is long (``q = 0.5``: about 0.2 s a curve at ``z = 1.4``, 2.1 s at the search's
``z = 1e4``), and that was most of a small ``secagg simulate``'s calibration.

What is the same: every float. The SciPy functions are ufuncs, whose loop calls the
same scalar kernel on each element of an array as on a lone scalar, so they are called
once per block of terms instead of once per term; the products and quotients of a term
are IEEE-rounded operations on the same operands in the same order, whether NumPy or
Python does them; ``math.log`` (not NumPy's SIMD logarithm, which may differ in the last
bit) and the sums are applied term by term, in Opacus's order, with Opacus's own
``_log_add`` and ``_log_sub``; the series stops at the term where Opacus's stops. Only
float arguments with ``0 < q < 1`` and ``1e-100 <= z <= 1e100`` (every one a DP-SGD history
holds, :func:`~secagg.dp.accountants.dpsgd_runs`) take this path; anything else is
Opacus's own function. Written for Opacus 1.6.0's series (:data:`SERIES_OF`): another
version is served by its own code. tests/dp/test_opacus_rdp_series.py compares the two
bit for bit.

Size: about 160 lines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: the Opacus version whose ``_compute_log_a_for_frac_alpha`` this module reproduces
SERIES_OF = "1.6.0"

#: terms per block in the first block (most series end within it), doubled per block up
#: to :data:`_LARGEST_BLOCK` (the long series of a large ``z``: tens of thousands)
_FIRST_BLOCK = 64
_LARGEST_BLOCK = 8192
#: the term index ``i`` is squared as an int64 (``i * i - i``) and converted to a float:
#: exact below 2**53, so blocks follow a series this far (thousands of times any seen);
#: a longer one is left to Opacus's loop
_MOST_TERMS = 2**26


def applies(q: Any, sigma: Any, alpha: Any) -> bool:
    """Whether :func:`compute_rdp_order` gives Opacus's float for these arguments: plain
    floats, ``0 < q < 1``, ``1e-100 <= sigma <= 1e100`` (its square neither 0, where
    Opacus divides by it, nor infinite), a finite fractional order > 1."""
    return (
        type(q) is float
        and type(sigma) is float
        and type(alpha) is float
        and 0.0 < q < 1.0
        and 1e-100 <= sigma <= 1e100
        and math.isfinite(alpha)
        and alpha > 1.0
        and not alpha.is_integer()
    )


def compute_rdp_order(q: float, sigma: float, alpha: float) -> float:
    """Opacus's ``_compute_rdp(q, sigma, alpha)`` for arguments that :func:`applies` to:
    ``log A_alpha / (alpha - 1)``, ``log A_alpha`` by :func:`_log_a_fractional`."""
    return _log_a_fractional(q, sigma, alpha) / (alpha - 1)


def _log_a_fractional(q: float, sigma: float, alpha: float) -> Any:
    """Opacus 1.6.0's ``_compute_log_a_for_frac_alpha``, its terms computed a block at a
    time (see the module's docstring for why each float is the same)."""
    from opacus.accountants.analysis.rdp import _compute_log_a_for_frac_alpha, _log_add, _log_sub
    from scipy import special

    log_a0, log_a1 = -np.inf, -np.inf
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_not_q = math.log(q), math.log(1 - q)
    twice_variance = 2 * (sigma**2)
    erfc_scale = math.sqrt(2) * sigma
    log_half, log_two, root_two = math.log(0.5), math.log(2), 2**0.5
    start, size = 0, _FIRST_BLOCK
    while start < _MOST_TERMS:
        i = np.arange(start, start + size, dtype=np.int64)
        fi = i.astype(np.float64)
        j = alpha - fi
        coefs = special.binom(alpha, fi)
        # _log_erfc(x) = log(2) + log_ndtr(-x * 2**0.5), for x = (i - z0) / (sqrt 2 sigma)
        # and x = (z0 - j) / (sqrt 2 sigma)
        ndtr0 = special.log_ndtr(-((fi - z0) / erfc_scale) * root_two)
        ndtr1 = special.log_ndtr(-((z0 - j) / erfc_scale) * root_two)
        quad0 = (i * i - i) / twice_variance
        quad1 = (j * j - j) / twice_variance
        # Python floats from here: the same values as NumPy's scalars, summed term by
        # term in Opacus's order
        terms = zip(
            coefs.tolist(),
            (fi * log_q).tolist(),
            (j * log_not_q).tolist(),
            (j * log_q).tolist(),
            (fi * log_not_q).tolist(),
            quad0.tolist(),
            quad1.tolist(),
            ndtr0.tolist(),
            ndtr1.tolist(),
            strict=True,
        )
        for coef, i_log_q, j_log_not_q, j_log_q, i_log_not_q, q0, q1, n0, n1 in terms:
            log_coef = math.log(abs(coef))
            log_s0 = log_coef + i_log_q + j_log_not_q + q0 + (log_half + (log_two + n0))
            log_s1 = log_coef + j_log_q + i_log_not_q + q1 + (log_half + (log_two + n1))
            # Opacus's _log_add and _log_sub, inlined on their common path (the same
            # expressions: min and max of two as Python takes them, first one on ties)
            if coef > 0:
                low, high = (
                    (log_s0 if log_s0 < log_a0 else log_a0),
                    (log_s0 if log_s0 > log_a0 else log_a0),
                )
                log_a0 = high if low == -math.inf else math.log1p(math.exp(low - high)) + high
                low, high = (
                    (log_s1 if log_s1 < log_a1 else log_a1),
                    (log_s1 if log_s1 > log_a1 else log_a1),
                )
                log_a1 = high if low == -math.inf else math.log1p(math.exp(low - high)) + high
            elif (
                -math.inf < log_s0 < log_a0 < log_s0 + 700
                and -math.inf < log_s1 < log_a1 < log_s1 + 700
            ):  # a difference of finite logs, the larger first: no refusal, no overflow
                log_a0 = math.log(math.expm1(log_a0 - log_s0)) + log_s0
                log_a1 = math.log(math.expm1(log_a1 - log_s1)) + log_s1
            else:  # a term as large as the sum so far (Opacus refuses it), inf, NaN
                log_a0 = _log_sub(log_a0, log_s0)
                log_a1 = _log_sub(log_a1, log_s1)
            if (log_s1 if log_s1 > log_s0 else log_s0) < -30:  # max(log_s0, log_s1), inlined
                return _log_add(log_a0, log_a1)
        start, size = start + size, min(2 * size, _LARGEST_BLOCK)
    return _compute_log_a_for_frac_alpha(q, sigma, alpha)  # a series that long: Opacus's own


def compute_rdp(original: Any, q: Any, noise_multiplier: Any, orders: list[Any]) -> Any:
    """Opacus's ``compute_rdp(q=q, noise_multiplier=noise_multiplier, steps=1,
    orders=orders)`` for a list of orders: each fractional order that :func:`applies` by
    :func:`compute_rdp_order`, every other one by Opacus's ``_compute_rdp``. ``original``
    is Opacus's ``compute_rdp`` (before any memo wraps it); another Opacus version than
    :data:`SERIES_OF` gets it whole."""
    import opacus
    from opacus.accountants.analysis import rdp

    if opacus.__version__ != SERIES_OF:
        return original(q=q, noise_multiplier=noise_multiplier, steps=1, orders=orders)
    curve = np.array(
        [
            compute_rdp_order(q, noise_multiplier, order)
            if applies(q, noise_multiplier, order)
            else rdp._compute_rdp(q, noise_multiplier, order)
            for order in orders
        ]
    )
    return curve * 1  # Opacus's ``rdp * steps``, at one step
