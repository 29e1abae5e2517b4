"""Feature statistics (mean, std) released with Gaussian noise and an epsilon: the moment release.

Why: standardising features with a mean and std computed in the clear over every
branch's rows is a release of those rows outside every epsilon. Here each branch
computes three clipped sums over its own rows, adds its share of Gaussian noise,
and the shares and sums are added by secure aggregation, so the server only ever
sees one noised total, and the release is charged to every branch's accountant.
This module is the mechanism (no I/O, no aggregation); the simulator's
orchestration is :mod:`secagg.apps.simulation.feature_stats`.

The mechanism
-------------
Every feature value is clipped to ``[-b, b]`` (``b`` = :attr:`MomentRelease.bound`).
A *unit* is what one epsilon protects: a record, or a customer with up to ``r``
rows (:attr:`MomentRelease.rows_per_unit`; the caller passes only the rows it
trains on, i.e. at most ``r`` per customer). A branch's vector has ``2F + 1``
coordinates (:meth:`MomentRelease.branch_vector`)::

    block 1:  S1 = sum over rows of clip(x)      (F values)
    block 2:  S2 = sum over rows of clip(x)^2    (F values)
    block 0:  S0 = number of rows                (1 value)

Adding or removing one unit moves the blocks, in L2, by at most::

    Delta1 = r * b * sqrt(F)      (each of r rows moves each of F sums by <= b)
    Delta2 = r * b^2 * sqrt(F)    (each clip(x)^2 lies in [0, b^2])
    Delta0 = r

and these are attained (``r`` rows with every value at ``b``). Block ``k`` of the
total gets Gaussian noise of std ``sigma_k = z * Delta_k``, one multiplier ``z``
(:attr:`MomentRelease.noise_multiplier`) for all three blocks.

*Claim: the release is one Gaussian mechanism with multiplier z / sqrt(3).*
Divide block ``k`` of the release by ``sigma_k`` (a fixed, public, invertible
rescaling, so post-processing in both directions): the result is the scaled sum
plus ``N(0, I)`` in all ``2F + 1`` coordinates. Two neighbouring datasets move
the scaled sum by ``(d1 / sigma1, d2 / sigma2, d0 / sigma0)`` with
``||d_k|| <= Delta_k``, whose squared L2 norm is at most::

    sum_k (Delta_k / sigma_k)^2 = sum_k (Delta_k / (z Delta_k))^2 = 3 / z^2.

The privacy loss of the spherical Gaussian ``N(m, I)`` vs ``N(m', I)`` depends
only on ``||m - m'||`` (rotate so the difference lies on one axis; the other axes
cancel), so the release is exactly the Gaussian mechanism with L2 sensitivity
``sqrt(3) / z`` and unit noise, i.e. noise multiplier ``z_eff = z / sqrt(3)``
(:attr:`MomentRelease.effective_noise_multiplier`). The same holds in every
accountant's language: the Renyi divergence of order ``a`` is
``a * ||m - m'||^2 / 2 = 3a / (2 z^2)``, the sum of the three blocks' ``a / (2 z^2)``
(the tests check it with dp_accounting's RDP of the three composed Gaussians).
Each branch charges it as one Gaussian release of the same records, without
sampling: ``(z_eff, sample_rate=1.0, steps=1)``
(:attr:`MomentRelease.accountant_step`, for ``DPSGDTrainer.charge``).

Distributed noise. The server must not see an un-noised total, so the noise
comes from the branches: each adds ``N(0, sigma_k^2 / h)`` per coordinate of block
``k`` (:meth:`MomentRelease.noise_share`), ``h`` = the branches assumed honest
(all minus the colluders the masking protocol is sized for). Any ``h`` shares
together carry the full ``sigma_k^2``; the colluders' shares, known to the server,
are not counted, and the honest ones that are not needed only add noise. A
branch that drops takes its share with it: the orchestration refuses to release a
total with fewer honest shares than ``h``. The draws come from a
:class:`~secagg.crypto.stream.KeyedStream` (AES-CTR under an OS-CSPRNG key),
never from ``numpy.random``. The floating-point caveat of the engine's continuous
Gaussian applies (``secagg.dp.noise``; Mironov 2012): the epsilon is that of the
idealised real-valued mechanism, and so is the secure aggregation's fixed-point
rounding of each branch's noised vector (error below ``1e-6`` per coordinate at the
orchestration's 64-bit ring, orders of magnitude below ``sigma``), which is not
strictly post-processing of the noised total.

From sums to mean and std (:meth:`MomentRelease.finish`), all post-processing:
``n = max(S0, 1)``, ``mean = clip(S1 / n, -b, b)``, ``m2 = clip(S2 / n, 0, b^2)``,
``var = clip(m2 - mean^2, floor, b^2)``, ``std = sqrt(var)`` (population std,
like ``numpy.std``). The noise on ``mean`` is about ``sigma1 / n`` and on ``var``
about ``v = sqrt(sigma2^2 + 4 mean^2 sigma1^2) / n``: on small data (a few
thousand rows) with a wide ``b`` the estimates are poor, and a feature's variance
can even come out negative. The floor is therefore ``max(min_std^2, min(v, b^2))``:
no std below what the noise can resolve, so a noise-dominated feature is
standardised by a too-large std (shrunk) rather than a tiny one (blown up by
orders of magnitude). That is the honest price of not looking at the rows; the
alternative is statistics from public or prior data, which cost no epsilon.
Clipping itself biases the statistics of features with values beyond ``b``; pick
``b`` from public knowledge of the features' ranges, never from the data.

``noise_multiplier = 0`` is *no DP*: for runs without DP, the same aggregation
without noise. :attr:`MomentRelease.private` is then False,
:meth:`MomentRelease.epsilon` is ``inf`` and :attr:`MomentRelease.accountant_step`
is None (nothing to charge: an accountant cannot represent an infinite epsilon).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.dp._checks import _count, _positive
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError

__all__ = ["BLOCKS", "DEFAULT_MIN_STD_FRACTION", "MomentRelease"]

#: the three blocks of a branch vector, in order
BLOCKS = ("sum", "sum_of_squares", "count")
#: the std floor is this fraction of the bound unless ``min_std`` says otherwise
DEFAULT_MIN_STD_FRACTION = 1e-3


@dataclass(frozen=True, kw_only=True)
class MomentRelease:
    """Clipped sums of values and squares plus a count, with Gaussian noise per block.

    Args:
        bound: every feature value is clipped to ``[-bound, bound]`` (public, chosen
            without looking at the data).
        features: ``F``, the number of feature columns.
        noise_multiplier: ``z``; block ``k``'s noise std is ``z * Delta_k``. 0 = no DP.
        rows_per_unit: ``r``, the most rows one privacy unit contributes (1 for
            record-level DP; a customer's ``max_rows`` for customer-level DP).
        min_std: the floor of a released std (default ``bound * 1e-3``), in
            ``(0, bound]``.
    """

    bound: float
    features: int
    noise_multiplier: float
    rows_per_unit: int = 1
    min_std: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound", _positive("bound", self.bound))
        object.__setattr__(self, "features", _count("features", self.features, 1))
        object.__setattr__(self, "rows_per_unit", _count("rows_per_unit", self.rows_per_unit, 1))
        z = self.noise_multiplier
        if isinstance(z, bool) or not isinstance(z, numbers.Real) or not math.isfinite(z) or z < 0:
            raise ConfigurationError(
                f"noise_multiplier must be a finite number >= 0 (0 = no DP), not {z!r}"
            )
        object.__setattr__(self, "noise_multiplier", float(z))
        if self.min_std is None:
            object.__setattr__(self, "min_std", self.bound * DEFAULT_MIN_STD_FRACTION)
        else:
            floor = _positive("min_std", self.min_std)
            if floor > self.bound:
                raise ConfigurationError(
                    f"min_std must not exceed bound {self.bound:g} (no std of values clipped "
                    f"to [-bound, bound] does), not {self.min_std!r}"
                )
            object.__setattr__(self, "min_std", floor)

    # --- the mechanism's parameters -----------------------------------------------

    @property
    def private(self) -> bool:
        """Whether the release is DP at all (``noise_multiplier > 0``)."""
        return self.noise_multiplier > 0

    @property
    def dimension(self) -> int:
        """Length of a branch vector: ``2F + 1``."""
        return 2 * self.features + 1

    @property
    def sensitivities(self) -> tuple[float, float, float]:
        """L2 sensitivity of each block under add/remove one unit: (sum, squares, count)."""
        r, b, root_f = self.rows_per_unit, self.bound, math.sqrt(self.features)
        return (r * b * root_f, r * b * b * root_f, float(r))

    @property
    def stddevs(self) -> tuple[float, float, float]:
        """The noise std on each block of the *total*: ``z * Delta_k`` (sum, squares, count)."""
        z = self.noise_multiplier
        d1, d2, d0 = self.sensitivities
        return (z * d1, z * d2, z * d0)

    def coordinate_stddevs(self) -> np.ndarray:
        """The total's noise std per coordinate (length ``2F + 1``)."""
        s1, s2, s0 = self.stddevs
        f = self.features
        return np.concatenate([np.full(f, s1), np.full(f, s2), [s0]]).astype(np.float64)

    @property
    def effective_noise_multiplier(self) -> float:
        """``z / sqrt(3)``: the one Gaussian mechanism the three blocks compose to
        (module docstring); 0.0 without DP."""
        return self.noise_multiplier / math.sqrt(3.0)

    @property
    def accountant_step(self) -> tuple[float, float, int] | None:
        """What each branch's accountant is charged: ``(z / sqrt(3), 1.0, 1)``, one
        unsampled Gaussian release of its units; None without DP (nothing to charge)."""
        if not self.private:
            return None
        return (self.effective_noise_multiplier, 1.0, 1)

    def epsilon(self, delta: float, accountant: str = "pld") -> float:
        """Epsilon at ``delta`` of the release alone (``inf`` without DP).

        Through :func:`secagg.dp.accounting.epsilon` (dp_accounting's PLD by
        default, ``"rdp"`` as the looser cross-check) of one Gaussian of multiplier
        ``z / sqrt(3)`` without sampling. A branch that also trains with DP-SGD
        composes this release with its training in its own accountant
        (``DPSGDTrainer.charge``); the composed epsilon is below the sum of the two.
        """
        from secagg.dp._checks import _delta

        d = _delta(delta)
        if not self.private:
            return math.inf
        from secagg.dp.accounting import epsilon  # dp_accounting: on first use

        return epsilon(self.effective_noise_multiplier, 1.0, 1, d, accountant)

    # --- a branch's side ----------------------------------------------------------

    def branch_vector(self, rows: np.ndarray, customers: np.ndarray | None = None) -> np.ndarray:
        """The branch's ``2F + 1`` clipped sums (float64): ``[S1, S2, count]``.

        ``rows`` is the ``(n, F)`` array of the rows the branch trains on (for
        customer-level DP: at most ``rows_per_unit`` per customer, the subset the
        trainer uses). ``customers`` (optional, one id per row) lets this check
        that no customer has more than ``rows_per_unit`` rows, the assumption the
        sensitivity rests on. Zero rows give the zero vector.
        """
        x = np.asarray(rows)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ConfigurationError(
                f"rows must be an (n, {self.features}) array, got shape {x.shape}"
            )
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ConfigurationError(f"rows must be real numbers, not {x.dtype}")
        x = x.astype(np.float64, copy=False)
        if not np.all(np.isfinite(x)):
            raise ConfigurationError("rows contain NaN or infinite values")
        if customers is not None:
            self._check_customers(customers, x.shape[0])
        clipped = np.clip(x, -self.bound, self.bound)
        out = np.empty(self.dimension, dtype=np.float64)
        f = self.features
        out[:f] = clipped.sum(axis=0)
        out[f : 2 * f] = np.square(clipped).sum(axis=0)
        out[2 * f] = float(x.shape[0])
        return out

    def _check_customers(self, customers: np.ndarray, rows: int) -> None:
        ids = np.asarray(customers)
        if ids.shape != (rows,):
            raise ConfigurationError(
                f"customers must give one id per row ({rows}), got shape {ids.shape}"
            )
        if rows == 0:
            return
        _, counts = np.unique(ids, return_counts=True)
        if counts.max() > self.rows_per_unit:
            raise ConfigurationError(
                f"a customer has {int(counts.max())} rows, more than rows_per_unit = "
                f"{self.rows_per_unit}: pass only the rows the branch trains on"
            )

    def noise_share(self, honest: int, stream: KeyedStream | None) -> np.ndarray:
        """One branch's noise: ``N(0, sigma_k^2 / honest)`` per coordinate of block ``k``.

        Any ``honest`` shares sum to the full ``sigma_k``. Drawn from ``stream``
        (a fresh OS-CSPRNG-keyed stream when None). Without DP: zeros, and
        nothing is drawn.
        """
        h = _count("honest", honest, 1)
        if not self.private:
            return np.zeros(self.dimension, dtype=np.float64)
        if stream is not None and not isinstance(stream, KeyedStream):
            raise ConfigurationError(
                f"stream must be a KeyedStream (never numpy.random), not {type(stream)!r}"
            )
        stream = stream if stream is not None else KeyedStream()
        root_h = math.sqrt(h)
        s1, s2, s0 = self.stddevs
        f = self.features
        return np.concatenate(
            [
                gaussian(s1 / root_h, f, stream),
                gaussian(s2 / root_h, f, stream),
                gaussian(s0 / root_h, 1, stream),
            ]
        )

    # --- the server's side (post-processing) ---------------------------------------

    def finish(self, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The noised total of all branch vectors to ``(mean, std)``, each of length F.

        Robust post-processing (module docstring): the count is floored at 1, the
        mean clipped to ``[-bound, bound]``, the second moment to ``[0, bound^2]``
        and the variance to ``[floor, bound^2]``, ``floor`` the larger of
        ``min_std^2`` and the variance estimate's own noise std (0 without DP).
        """
        t = np.asarray(total, dtype=np.float64)
        if t.shape != (self.dimension,):
            raise ConfigurationError(
                f"the total must have {self.dimension} coordinates, got shape {t.shape}"
            )
        if not np.all(np.isfinite(t)):
            raise ConfigurationError("the total contains NaN or infinite values")
        f, b = self.features, self.bound
        count = max(float(t[2 * f]), 1.0)
        mean = np.clip(t[:f] / count, -b, b)
        second = np.clip(t[f : 2 * f] / count, 0.0, b * b)
        s1, s2, _ = self.stddevs
        # the variance estimate's own noise std (ignoring the count's): no std below
        # what the noise can resolve, so a noise-dominated feature is never blown up
        resolvable = np.sqrt(s2 * s2 + 4.0 * np.square(mean) * s1 * s1) / count
        min_std = self.min_std if self.min_std is not None else b * DEFAULT_MIN_STD_FRACTION
        floor = np.maximum(min_std * min_std, np.minimum(resolvable, b * b))
        var = np.clip(second - np.square(mean), floor, b * b)
        return mean, np.sqrt(var)
