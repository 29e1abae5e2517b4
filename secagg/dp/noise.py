"""Noise samplers for differential privacy, reading only from a :class:`KeyedStream`.

Theory of operation
-------------------
*Discrete Gaussian* (Canonne, Kamath and Steinke, NeurIPS 2020, Algorithms 1-3):
the distribution on the integers with ``P[Y = y]`` proportional to
``exp(-y^2 / (2 sigma^2))``. It is what each client adds in the distributed
DP mechanism: integers survive the modular sum exactly, and the sum of the
clients' samples is analysed by Kairouz, Liu and Steinke (2021).

The sampler is *exact*: every decision is a Bernoulli trial with an exactly
known rational probability, and every such trial is decided exactly. The
algorithm is CKS's:

1. ``Bernoulli(exp(-gamma))`` for ``gamma`` in [0, 1]: count successes of
   ``Bernoulli(gamma / K)`` for K = 1, 2, ... until the first failure; the
   result is 1 when the failure happens at an odd K. Larger ``gamma`` is split
   into ``m >= gamma`` equal parts, all of which must succeed.
2. Discrete Laplace with scale ``t``: ``U`` uniform in ``{0..t-1}`` accepted
   with ``Bernoulli(exp(-U/t))``, plus ``t`` times a geometric count of
   ``Bernoulli(exp(-1))`` successes, a fair sign, and rejection of -0.
3. Discrete Gaussian: a discrete Laplace sample ``Y`` with ``t = floor(sigma)+1``
   accepted with ``Bernoulli(exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)))``.

To run at numpy speed on a million coordinates, all lanes advance together and
each rational Bernoulli ``p = a/b`` is decided *lazily*: a 53-bit prefix of a
uniform real ``U`` is compared with a float approximation of ``p``; when the
prefix interval is further than a safe margin (2^-30, far above float64's
error on these expressions) from ``p``, that comparison is the exact one. The
rare lanes within the margin (about one draw in 5*10^8) are settled with Python
integers, extending ``U`` with fresh 64-bit words until ``U < a/b`` is decided.
So no float rounding ever changes an outcome, and the timing varies only with
the random draws themselves (a side channel the docs mention).

*Continuous Gaussian* (the server's central noise): Box-Muller on 53-bit
uniforms from the stream. Floating-point Gaussian samplers are known to leak
through their low-order bits (Mironov, CCS 2012); docs/privacy.md states the
caveat and the distributed discrete mechanism is the answer when it matters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.errors import ConfigurationError

_MARGIN = 2.0**-30
#: below this sigma^2 the split of gamma into parts would leave 64-bit lanes
MIN_SIGMA_SQUARED = Fraction(1, 10**6)
_PREFIX_BITS = 53

#: maps lane indices (into the arrays the caller passed) to exact (num, den) of p
ExactProbability = Callable[[int], tuple[int, int]]


def _bernoulli(stream: KeyedStream, p_hat: np.ndarray, exact: ExactProbability) -> np.ndarray:
    """One Bernoulli(p_i) per lane, where p_hat approximates p_i = num/den in [0, 1]."""
    prefix = stream.words(p_hat.size) >> np.uint64(64 - _PREFIX_BITS)
    low = prefix.astype(np.float64) * 2.0**-_PREFIX_BITS  # exact: prefix < 2^53
    high = low + 2.0**-_PREFIX_BITS
    accept = high <= p_hat - _MARGIN
    unsure = ~accept & (low < p_hat + _MARGIN)
    for lane in np.flatnonzero(unsure):
        num, den = exact(int(lane))
        u, bits = int(prefix[lane]), _PREFIX_BITS
        while True:  # is U < num/den, for U in [u/2^bits, (u+1)/2^bits)?
            if (u + 1) * den <= num << bits:
                accept[lane] = True
                break
            if u * den >= num << bits:
                break
            u = (u << 64) | int(stream.words(1)[0])
            bits += 64
    return accept


def _bernoulli_exp_unit(
    stream: KeyedStream, gamma_hat: np.ndarray, exact: ExactProbability
) -> np.ndarray:
    """Bernoulli(exp(-gamma_i)) for gamma_i = num/den in [0, 1] (CKS Algorithm 1).

    All lanes still running share the same K (the loop's iteration), so K is a
    scalar and the running lanes are compacted every iteration.
    """
    result = np.zeros(gamma_hat.size, dtype=bool)
    alive = np.arange(gamma_hat.size)
    gammas = gamma_hat
    k = 1
    while alive.size:
        live, kk = alive, k  # bind for the closure

        def exact_k(lane: int, live: np.ndarray = live, kk: int = kk) -> tuple[int, int]:
            num, den = exact(int(live[lane]))
            return num, den * kk

        success = _bernoulli(stream, gammas / k, exact_k)
        result[alive[~success]] = k & 1 == 1  # stopped at this K: 1 if K is odd
        alive, gammas = alive[success], gammas[success]
        k += 1
    return result


def bernoulli_exp(
    stream: KeyedStream, gamma_hat: np.ndarray, exact: ExactProbability
) -> np.ndarray:
    """Bernoulli(exp(-gamma_i)) for any gamma_i = num/den >= 0, exactly.

    ``gamma_hat`` is a float approximation of each ``gamma_i`` (relative error
    below 1e-12) and ``exact(i)`` returns its exact numerator and denominator.
    ``gamma`` is split into ``m_i`` equal parts with ``m_i >= gamma_i`` taken
    from the approximation with room to spare, so every part lies in [0, 1].
    """
    parts = np.floor(gamma_hat * (1 + 2.0**-30) + 2.0**-30).astype(np.int64) + 1
    result = np.ones(gamma_hat.size, dtype=bool)
    remaining = parts.copy()
    alive = np.arange(gamma_hat.size)
    while alive.size:
        live = alive

        def exact_part(lane: int, live: np.ndarray = live) -> tuple[int, int]:
            num, den = exact(int(live[lane]))
            return num, den * int(parts[live[lane]])

        ok = _bernoulli_exp_unit(stream, gamma_hat[alive] / parts[alive], exact_part)
        result[alive[~ok]] = False
        remaining[alive] -= 1
        alive = alive[ok & (remaining[alive] > 0)]
    return result


def _as_fraction(sigma_squared: float | int | Fraction) -> Fraction:
    if isinstance(sigma_squared, bool) or not isinstance(sigma_squared, int | float | Fraction):
        raise ConfigurationError("sigma_squared must be an int, float or Fraction")
    if isinstance(sigma_squared, float) and not math.isfinite(sigma_squared):
        raise ConfigurationError("the discrete Gaussian needs a finite sigma^2")
    value = Fraction(sigma_squared)
    if not value >= MIN_SIGMA_SQUARED:
        raise ConfigurationError(
            f"the discrete Gaussian needs sigma^2 >= {MIN_SIGMA_SQUARED} (below it, it is 0 "
            "with probability above 1 - 10^-100000: add no noise instead)"
        )
    return value


def discrete_laplace(stream: KeyedStream, scale: int, count: int) -> np.ndarray:
    """``count`` exact samples with P[Y = y] proportional to exp(-|y| / scale) (CKS Alg. 2)."""
    if not isinstance(stream, KeyedStream):  # None reached stream.integers as AttributeError
        raise ConfigurationError(f"stream must be a KeyedStream, not {type(stream).__name__}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigurationError("the discrete Laplace scale must be a positive integer")
    if scale >= 1 << 62:
        raise ConfigurationError("discrete Laplace scale too large for 64-bit lanes")
    count = _count(count)  # 1.5, True or -1 reached numpy's shape checks, naming nothing
    out = np.zeros(count, dtype=np.int64)
    filled = 0
    while filled < count:
        # Oversample (about 63% of candidates survive the U step for large t) so
        # one pass usually fills everything; taking accepted candidates in lane
        # order is a stopping rule on acceptance alone, so the law is unchanged.
        size = int((count - filled) * 1.8) + 8
        u = stream.integers(scale, size).astype(np.int64)
        keep = _bernoulli_exp_unit(stream, u / scale, lambda i, u=u: (int(u[i]), scale))  # U/t < 1
        v = np.zeros(size, dtype=np.int64)
        alive = np.arange(size)
        while alive.size:  # V = number of Bernoulli(exp(-1)) successes before a failure
            hit = _bernoulli_exp_unit(stream, np.ones(alive.size), lambda i: (1, 1))
            v[alive[hit]] += 1
            alive = alive[hit]
        negative = stream.bits(size)
        x = u + scale * v
        keep &= ~(negative & (x == 0))
        accepted = np.where(negative[keep], -x[keep], x[keep])[: count - filled]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return out


def discrete_gaussian(
    sigma_squared: float | int | Fraction, count: int, stream: KeyedStream | None = None
) -> np.ndarray:
    """``count`` exact samples of the discrete Gaussian N_Z(0, sigma^2) as int64.

    ``sigma_squared`` is taken as the exact rational it denotes (a float is its
    exact binary value). Samples come from ``stream``, a fresh CSPRNG-keyed
    stream when omitted. Note ``sigma^2`` is the parameter, not exactly the
    variance, which is slightly below it for small sigma (CKS Prop. 1).
    """
    count = _count(count)
    sigma2 = _as_fraction(sigma_squared)
    stream = stream or KeyedStream()
    p, q = sigma2.numerator, sigma2.denominator
    t = math.isqrt(p // q) + 1  # floor(sigma) + 1, exactly
    if t * 64 >= 1 << 62:
        raise ConfigurationError("sigma too large for 64-bit lanes")
    sigma2_f = float(sigma2)
    out = np.zeros(count, dtype=np.int64)
    filled = 0
    while filled < count:  # oversampled like discrete_laplace (acceptance is above 0.6)
        y = discrete_laplace(stream, t, int((count - filled) * 1.6) + 8)
        a = np.abs(y)
        gamma_hat = (a - sigma2_f / t) ** 2 / (2 * sigma2_f)

        def exact(i: int, a: np.ndarray = a) -> tuple[int, int]:
            # (|y| - p/(q t))^2 / (2 p/q) = (|y| q t - p)^2 / (2 p q t^2)
            return (int(a[i]) * q * t - p) ** 2, 2 * p * q * t * t

        accepted = y[bernoulli_exp(stream, gamma_hat, exact)][: count - filled]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return out


def _count(count: object) -> int:
    """A sample count: an integer >= 0 (2.5 and "3" failed as TypeErrors, True gave 1)."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ConfigurationError(f"count must be a non-negative integer, not {count!r}")
    return int(count)


def gaussian(std: float, count: int, stream: KeyedStream | None = None) -> np.ndarray:
    """``count`` samples of N(0, std^2) as float64 (Box-Muller on 53-bit uniforms).

    For the server's central noise. See the module docstring for the
    floating-point caveat.
    """
    if isinstance(std, bool) or not isinstance(std, numbers.Real):
        raise ConfigurationError(f"the Gaussian std must be a number, not {std!r}")
    if not (math.isfinite(std) and std >= 0):
        raise ConfigurationError("the Gaussian std must be finite and non-negative")
    count = _count(count)
    stream = stream or KeyedStream()
    pairs = (count + 1) // 2
    u1 = 1.0 - stream.uniform(pairs)  # in (0, 1]: log is finite
    u2 = stream.uniform(pairs)
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.empty(2 * pairs, dtype=np.float64)
    np.multiply(radius, np.cos(angle), out=out[:pairs])
    np.multiply(radius, np.sin(angle), out=out[pairs:])
    out *= std
    return out[:count]


def discrete_gaussian_pmf(sigma_squared: float, support: np.ndarray) -> np.ndarray:
    """The discrete Gaussian's pmf on ``support`` (normalised numerically; for tests)."""
    sigma2 = float(sigma_squared)
    reach = math.ceil(12 * math.sqrt(sigma2)) + 2
    grid = np.arange(-reach, reach + 1)
    norm = np.exp(-(grid.astype(np.float64) ** 2) / (2 * sigma2)).sum()
    return np.exp(-(np.asarray(support, dtype=np.float64) ** 2) / (2 * sigma2)) / norm
