"""Central DP-FedAvg (McMahan, Ramage, Talwar and Zhang, ICLR 2018).

Each sampled client clips its update to L2 norm ``C``; the server receives
the (secure) sum, adds Gaussian noise of standard deviation ``z * C`` to every
coordinate and divides by the *expected* number of clients per round, a
public constant. Dividing by the realised count would make the denominator
depend on the data and break the analysis, so :meth:`CentralGaussian.mean`
never does. One round is then the Gaussian mechanism with noise multiplier
``z`` on a sensitivity-``C`` sum for the round's members. A federation credits no
amplification by sampling (a round's members see one another): each client is
charged the Gaussians of the rounds it was in (``PerClientAccountant`` in
:mod:`secagg.dp.accountants`); the Poisson-subsampled figure of
:func:`secagg.dp.epsilon` at ``q < 1`` holds only for a cohort kept secret.

The server here is *trusted with the noise*: it sees the un-noised sum for the
instant it takes to add the noise. When it must not, use the distributed
mechanism (:mod:`secagg.dp.distributed`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError


@dataclass(frozen=True)
class CentralGaussian:
    """Gaussian noise of std ``noise_multiplier * clip`` on the sum of clipped updates."""

    clip: float
    noise_multiplier: float
    expected_clients: float

    def __post_init__(self) -> None:
        for name in ("clip", "noise_multiplier", "expected_clients"):
            # True passed as 1 and a str failed as math's TypeError, naming nothing
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigurationError(f"{name} must be a number, not {value!r}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ConfigurationError("clip must be positive and finite")
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0):
            raise ConfigurationError("noise_multiplier must be finite and non-negative")
        if not (math.isfinite(self.expected_clients) and self.expected_clients > 0):
            raise ConfigurationError("expected_clients must be positive (q times the population)")

    @property
    def stddev(self) -> float:
        """Noise std on the sum, per coordinate."""
        return self.noise_multiplier * self.clip

    def noised_sum(self, clipped_sum: np.ndarray, stream: KeyedStream | None = None) -> np.ndarray:
        """The sum plus N(0, (zC)^2) per coordinate, from a CSPRNG-keyed stream."""
        total = _real_sum(clipped_sum)
        if not np.all(np.isfinite(total)):
            raise ConfigurationError("the sum contains NaN or infinite values")
        return total + gaussian(self.stddev, total.size, stream).reshape(total.shape)

    def mean(self, clipped_sum: np.ndarray, stream: KeyedStream | None = None) -> np.ndarray:
        """The DP estimate of the mean update: noised sum / expected clients (fixed)."""
        return self.noised_sum(clipped_sum, stream) / self.expected_clients


def _real_sum(values: np.ndarray) -> np.ndarray:
    """The sum as float64, or a ConfigurationError: casting kept only the real part of a
    complex sum (noised and released as if it were the sum) and raised numpy's
    ValueError on text or a ragged list."""
    try:
        raw = np.asarray(values)
    except ValueError:
        raise ConfigurationError("the sum must be a rectangular array (ragged rows)") from None
    if raw.dtype.kind not in "biuf":
        raise ConfigurationError(f"the sum must hold real numbers, not {raw.dtype} values")
    return raw.astype(np.float64)
