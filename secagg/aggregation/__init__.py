"""One aggregation interface, several backends: plain, SecAgg, SecAgg+ and CKKS.

:func:`aggregate` is the one-line research entry: an (n, d) float array in,
the float sum and a per-round report out, for any backend. Behind it,
:func:`get_backend` builds an :class:`AggregationBackend` whose rounds take
contributions one client at a time (see :mod:`secagg.aggregation.base`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from secagg.aggregation.base import (
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    ContributionEncoder,
    RoundAggregator,
)
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.plain import PlainBackend
from secagg.errors import ConfigurationError

BACKENDS = ("plain", "secagg", "secagg+", "ckks")


def get_backend(name: str, **options: Any) -> AggregationBackend:
    """The backend called ``name``, configured with ``options``.

    ``plain``: no options. ``secagg`` / ``secagg+``: ``value_bound`` (bound on
    every coordinate of every update; default 1.0), ``bits`` (32 or 64),
    ``scale``, ``dropout_fraction``, ``corrupt_fraction``. ``ckks``: see
    :class:`secagg.aggregation.ckks.CKKSBackend`.
    """
    if name == "plain":
        if options:
            raise ConfigurationError(f"the plain backend takes no options, got {sorted(options)}")
        return PlainBackend()
    if name in ("secagg", "secagg+"):
        graph = "complete" if name == "secagg" else "harary"
        return MaskingBackend(graph=graph, **options)
    if name == "ckks":
        from secagg.aggregation.ckks import CKKSBackend

        return CKKSBackend(**options)
    raise ConfigurationError(f"unknown backend {name!r}; choose one of {BACKENDS}")


def aggregate(
    updates: np.ndarray,
    backend: str | AggregationBackend = "secagg+",
    *,
    dropped: Iterable[int] = (),
    **options: Any,
) -> AggregationResult:
    """Sum the rows of ``updates`` through ``backend``; ``dropped`` clients never send.

    Returns an :class:`AggregationResult` (``total, report = aggregate(...)``):
    the float64 sum of the contributing rows, within ``report.error_bound`` per
    coordinate, and who contributed and who dropped.
    """
    arr = np.asarray(updates, dtype=np.float64)
    if arr.ndim != 2:
        raise ConfigurationError(f"updates must be an (n, d) array, got shape {arr.shape}")
    n, d = arr.shape
    chosen = backend if isinstance(backend, AggregationBackend) else get_backend(backend, **options)
    if isinstance(backend, AggregationBackend) and options:
        raise ConfigurationError("give options to get_backend, not with a backend instance")
    gone = {int(p) for p in dropped}
    if any(not 0 <= p < n for p in gone):
        raise ConfigurationError(f"dropped clients must lie in 0..{n - 1}")
    round_ = chosen.start_round(n, d)
    for party in range(n):
        if party not in gone:
            round_.receive(party, round_.encoder(party).encode(arr[party]))
    return round_.finish()


__all__ = [
    "BACKENDS",
    "AggregationBackend",
    "AggregationReport",
    "AggregationResult",
    "ContributionEncoder",
    "MaskingBackend",
    "PlainBackend",
    "RoundAggregator",
    "aggregate",
    "get_backend",
]
