"""One aggregation interface, several backends: plain, SecAgg, SecAgg+ and CKKS.

:func:`aggregate` is the one-line research entry: an (n, d) float array in,
the float sum and a per-round report out, for any backend. Behind it,
:func:`get_backend` builds an :class:`AggregationBackend` whose rounds are
sans-I/O server and client sessions (see :mod:`secagg.aggregation.base`); the
in-memory driver (:mod:`secagg.aggregation.local`), the simulator, the
benchmarks and the networked runtime all drive the same sessions.

Adding a backend: a module here with its spec, sessions and backend class, and
one line in :data:`secagg.aggregation.registry._REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from secagg.aggregation.base import (
    HELPER,
    AggregationBackend,
    AggregationReport,
    AggregationResult,
    Announce,
    ClientSession,
    HelperSession,
    Outgoing,
    RoundSpec,
    ServerSession,
    ToParty,
)
from secagg.aggregation.ckks import CKKSBackend
from secagg.aggregation.local import run_local_round
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.plain import PlainBackend
from secagg.aggregation.registry import (
    BACKENDS,
    backend_from_settings,
    decode_spec,
    get_backend,
    needs_helper,
)
from secagg.aggregation.spec import encode_spec
from secagg.errors import ConfigurationError


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
    if isinstance(backend, AggregationBackend) and options:
        raise ConfigurationError("give options to get_backend, not with a backend instance")
    chosen = backend if isinstance(backend, AggregationBackend) else get_backend(backend, **options)
    gone = {int(p) for p in dropped}
    if any(not 0 <= p < arr.shape[0] for p in gone):
        raise ConfigurationError(f"dropped clients must lie in 0..{arr.shape[0] - 1}")
    return run_local_round(chosen, arr, vanish=dict.fromkeys(gone, 0))


__all__ = [
    "BACKENDS",
    "HELPER",
    "AggregationBackend",
    "AggregationReport",
    "AggregationResult",
    "Announce",
    "CKKSBackend",
    "ClientSession",
    "HelperSession",
    "MaskingBackend",
    "Outgoing",
    "PlainBackend",
    "RoundSpec",
    "ServerSession",
    "ToParty",
    "aggregate",
    "backend_from_settings",
    "decode_spec",
    "encode_spec",
    "get_backend",
    "needs_helper",
    "run_local_round",
]
