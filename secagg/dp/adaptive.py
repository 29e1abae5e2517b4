"""Adaptive clipping (Andrew, Thakkar, McMahan and Ramaswamy, NeurIPS 2021).

A fixed clip is a guess: too small and every update is shrunk (bias), too
large and the noise, which scales with the clip, drowns the signal. Adaptive
clipping lets the clip track a target quantile ``gamma`` of the clients'
*unclipped* update norms, privately:

1. Each client in round t clips its update to the current clip ``C_t`` and
   reports ``b_i - 1/2`` where ``b_i = 1`` if its norm was at most ``C_t``.
   The shift makes one client move the sum by at most 1/2 (sensitivity 0.5).
2. The report travels through the *same* secure sum as the update (one extra
   coordinate); the server adds ``N(0, sigma_b^2)`` and estimates the
   unclipped fraction ``b = (sum + noise) / m + 1/2``, clamped to [0, 1], with
   ``m`` the expected number of clients (public, like the mean's denominator).
3. Geometric step: ``C_{t+1} = C_t * exp(-eta * (b - gamma))``. Too many
   unclipped updates (``b > gamma``) shrink the clip, too few grow it. The
   opposite sign drives the clip to 0 or infinity (a peer implementation
   counts *clipped* updates with this unclipped-count formula and diverges;
   tests/dp/test_mechanisms.py shows both). The step is clamped to
   ``[min_clip, max_clip]`` (default: 10^6 either side of the initial clip,
   :data:`DEFAULT_CLIP_RANGE`), post-processing that costs no privacy.
4. The update sum is noised with std ``z_delta * C_t``: the clip *applied this
   round*, never the new one, which would under-noise whenever the clip shrinks.

Privacy (the paper's Theorem 1): the round releases two Gaussian mechanisms,
the update sum (noise multiplier ``z_delta``) and the count (sensitivity 1/2,
noise ``sigma_b``, so multiplier ``2 sigma_b``), whose composition is exactly a
Gaussian mechanism with ``z^-2 = z_delta^-2 + (2 sigma_b)^-2``. So a user picks
the total ``z`` for the budget and
:func:`~secagg.dp.accounting.adaptive_noise_split` gives the part
left for the update; the accountant is charged ``z``.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass, field

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError

#: The largest clip learning rate eta. Why: one round moves the clip by a factor of at
#: most ``exp(eta * max(gamma, 1 - gamma))``, and ``math.exp`` overflows past 709, so
#: ``clip_learning_rate = 2000`` (or 1e300) loaded and failed the first round's close
#: with an OverflowError ("math range error") inside the server; at 1418 the clip was
#: 8e307 after one round and inf after two (upper-bounds review, 2026-12-05). Andrew et
#: al. use 0.2 (the default); 10, fifty times that, already moves the clip by up to
#: e^5 (about 150-fold) a round, far past any useful step.
MAX_CLIP_LEARNING_RATE = 10.0

#: The default floor and ceiling of the clip, as multiples of the initial clip. Why: the
#: geometric step has neither, so a federation whose updates all stay below the clip
#: (converged, or a cohort of idle clients) shrank it by up to e^-0.1 a round at the
#: default rate: below 1e-300 after about 6 900 rounds, then subnormal (2.5e-323 at
#: 10 000, where clipping keeps no precision: a vector clipped to it has norm 2e-323) or
#: 0, which every client refuses as a clip, so every round aborted (safe, but the
#: federation stalled; review 2026-12-06). The other way it reached inf after 7 121
#: rounds, and an infinite noise std. Opacus's AdaClipDPOptimizer clamps the clip into
#: ``[min_clipbound, max_clipbound]`` for the same reason; TensorFlow Privacy's geometric
#: quantile query (the paper's) has no bound. Six orders of magnitude either side of the
#: initial guess leave the quantile tracking free in any run the guess was meant for
#: (tests/dp/test_mechanisms.py: a median of 1 from 0.1 settles within 10 %) and keep
#: the clip a normal float. Clamping the noised estimate is post-processing: it costs no
#: privacy, and the update is still noised with the clip applied.
DEFAULT_CLIP_RANGE = 1e6

__all__ = [
    "DEFAULT_CLIP_RANGE",
    "AdaptiveClipping",
    "append_report",
    "split_report",
    "unclipped_report",
]


def unclipped_report(norm: float, clip: float) -> float:
    """A client's contribution to the count: ``1[norm <= clip] - 1/2``."""
    return (1.0 if norm <= clip else 0.0) - 0.5


def append_report(clipped_update: np.ndarray, report: float) -> np.ndarray:
    """The vector a client sends: its clipped update with its count report as one more
    coordinate, so both travel through the same secure sum."""
    return np.append(np.asarray(clipped_update, dtype=np.float64).ravel(), report)


def split_report(total: np.ndarray) -> tuple[np.ndarray, float]:
    """The aggregate back into (sum of clipped updates, sum of reports)."""
    t = np.asarray(total, dtype=np.float64)
    return t[:-1], float(t[-1])


@dataclass
class AdaptiveClipping:
    """The server's state for adaptive clipping; one :meth:`update` per round.

    Defaults follow the paper and TensorFlow Federated: initial clip 0.1,
    target quantile 0.5, learning rate 0.2, count noise ``m / 20``.

    The clip stays in ``[min_clip, max_clip]``: by default ``initial_clip`` divided and
    multiplied by :data:`DEFAULT_CLIP_RANGE` (10^6), so it neither sinks to 0 (which
    the clients refuse, aborting every round) nor grows to inf; a step that would cross
    a bound stops at it (``history`` records ``clamped``).

    Limit: ``noise_multiplier < 2 * count_stddev``. The total ``z`` is split between
    the count (multiplier ``2 * count_stddev``) and the update (module docstring);
    at or above the limit the count alone would spend the whole budget and the
    update could get no noise, so construction raises :class:`ConfigurationError`
    rather than under-noise. With the default count noise (``expected_clients /
    20``) that means ``noise_multiplier`` in ``(0, expected_clients / 10)``: z = 1
    needs more than 10 expected clients. A small cohort passes ``count_stddev``
    above ``noise_multiplier / 2`` instead (from ``noise_multiplier / sqrt(3)`` on,
    the update keeps a multiplier below ``2 * noise_multiplier``; closer to the
    limit it works but warns that the count takes most of the budget). The error
    says which argument to change and to what.
    """

    noise_multiplier: float
    expected_clients: float
    initial_clip: float = 0.1
    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_stddev: float | None = None
    min_clip: float | None = None  # None: initial_clip / DEFAULT_CLIP_RANGE
    max_clip: float | None = None  # None: initial_clip * DEFAULT_CLIP_RANGE
    clip: float = field(init=False)
    history: list[dict[str, float]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        # types first, by name: a str failed as math's or a comparison's TypeError, and
        # True passed as 1
        for name in (
            "noise_multiplier",
            "expected_clients",
            "initial_clip",
            "target_quantile",
            "learning_rate",
            "count_stddev",
            "min_clip",
            "max_clip",
        ):
            value = getattr(self, name)
            if name in ("count_stddev", "min_clip", "max_clip") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigurationError(f"{name} must be a number, not {value!r}")
        if not (math.isfinite(self.expected_clients) and self.expected_clients > 0):
            raise ConfigurationError("expected_clients must be positive")
        if not (math.isfinite(self.initial_clip) and self.initial_clip > 0):
            raise ConfigurationError("initial_clip must be positive")
        if self.min_clip is None:
            self.min_clip = self.initial_clip / DEFAULT_CLIP_RANGE
        if self.max_clip is None:
            self.max_clip = self.initial_clip * DEFAULT_CLIP_RANGE
        # a normal float floor: below 2.2e-308 the clip loses precision on its way to 0
        if not (math.isfinite(self.min_clip) and self.min_clip >= sys.float_info.min):
            raise ConfigurationError(
                f"min_clip must be a positive normal float (at least {sys.float_info.min:g}), "
                f"not {self.min_clip!r}"
            )
        if not (
            math.isfinite(self.max_clip) and self.min_clip <= self.initial_clip <= self.max_clip
        ):
            raise ConfigurationError(
                f"initial_clip {self.initial_clip:g} must lie in [min_clip, max_clip] = "
                f"[{self.min_clip:g}, {self.max_clip:g}], both finite"
            )
        if not 0 < self.target_quantile < 1:
            raise ConfigurationError("target_quantile must lie strictly between 0 and 1")
        if not (
            math.isfinite(self.learning_rate) and 0 < self.learning_rate <= MAX_CLIP_LEARNING_RATE
        ):
            raise ConfigurationError(
                f"learning_rate must lie in (0, {MAX_CLIP_LEARNING_RATE:g}], not "
                f"{self.learning_rate!r}"
            )
        defaulted = self.count_stddev is None
        if self.count_stddev is None:
            self.count_stddev = 0.05 * self.expected_clients
        self._check_split(defaulted)
        from secagg.dp.accounting import adaptive_noise_split  # dp_accounting: on first use

        self.update_noise_multiplier = adaptive_noise_split(
            self.noise_multiplier, self.count_stddev
        )
        self.clip = self.initial_clip

    def _check_split(self, defaulted: bool) -> None:
        """Refuse ``noise_multiplier >= 2 * count_stddev`` in this class's own terms.

        The accountant's :func:`~secagg.dp.accounting.adaptive_noise_split` refuses it
        too, but names its own parameter (``count_noise_stddev``) and no range; here the
        message names the arguments a caller of this class can change. Invalid values
        (not positive, not finite) are left to that function's checks."""
        z, count = self.noise_multiplier, self.count_stddev
        assert count is not None
        if not (_positive(z) and _positive(count)) or z < 2 * count:
            return
        fixes = [
            f"count_stddev above {z / 2:g} (e.g. count_stddev={_round_up(z / math.sqrt(3)):g}, "
            "which also keeps the update's noise multiplier below twice the total; "
            "dp.count_noise_stddev in a federation config)",
            f"noise_multiplier below {2 * count:g}",
        ]
        if defaulted:
            fixes.append(f"expected_clients above {10 * z:g}")
        origin = (
            f" (count_stddev defaults to expected_clients / 20 = {count:g}, which allows "
            f"noise_multiplier in (0, expected_clients / 10) = (0, {2 * count:g}))"
            if defaulted
            else ""
        )
        raise ConfigurationError(
            f"adaptive clipping: noise_multiplier {z:g} must be below 2 * count_stddev = "
            f"{2 * count:g}, or the noisy clip count alone would spend the whole privacy "
            f"budget and leave no noise for the update{origin}; change one of: " + "; ".join(fixes)
        )

    @property
    def update_stddev(self) -> float:
        """Noise std for this round's update sum: ``z_delta`` times the clip applied now."""
        return self.update_noise_multiplier * self.clip

    def noised_count(self, report_sum: float, stream: KeyedStream | None = None) -> float:
        """The secure sum of the clients' reports plus N(0, sigma_b^2)."""
        assert self.count_stddev is not None
        return float(report_sum) + float(gaussian(self.count_stddev, 1, stream)[0])

    def update(self, noised_count: float) -> float:
        """Move the clip from the round's noised count; returns the new clip."""
        if isinstance(noised_count, bool) or not isinstance(noised_count, numbers.Real):
            raise ConfigurationError(f"the noised count must be a number, not {noised_count!r}")
        if not math.isfinite(noised_count):
            raise ConfigurationError("the noised count must be finite")
        fraction = min(1.0, max(0.0, noised_count / self.expected_clients + 0.5))
        applied = self.clip
        stepped = applied * math.exp(-self.learning_rate * (fraction - self.target_quantile))
        assert self.min_clip is not None and self.max_clip is not None
        self.clip = min(self.max_clip, max(self.min_clip, stepped))
        self.history.append(
            {
                "clip_applied": applied,
                "unclipped_fraction": fraction,
                "next_clip": self.clip,
                "clamped": float(self.clip != stepped),
            }
        )
        return self.clip


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _round_up(value: float) -> float:
    """``value`` rounded up to two significant digits, for a suggestion in a message."""
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / step) * step, 12)


def __getattr__(name: str) -> object:
    """``adaptive_noise_split`` stays importable from here (it lives with the accountant)."""
    if name == "adaptive_noise_split":
        from secagg.dp.accounting import adaptive_noise_split

        return adaptive_noise_split
    raise AttributeError(f"module 'secagg.dp.adaptive' has no attribute {name!r}")
