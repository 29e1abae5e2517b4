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

import numbers
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
    Phase,
    RoundSpec,
    ServerSession,
    ToParty,
    real_array,
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
    arr = real_array(updates, "updates")
    if arr.ndim != 2:
        raise ConfigurationError(f"updates must be an (n, d) array, got shape {arr.shape}")
    if isinstance(backend, AggregationBackend) and options:
        raise ConfigurationError("give options to get_backend, not with a backend instance")
    chosen = backend if isinstance(backend, AggregationBackend) else get_backend(backend, **options)
    gone = _client_indices(dropped, arr.shape[0])
    return run_local_round(chosen, arr, vanish=dict.fromkeys(gone, 0))


def _client_indices(dropped: object, num_clients: int) -> set[int]:
    """The set of client indices in ``dropped`` (repeats allowed), or a ConfigurationError.

    Why: ``int(p)`` on each entry truncated ``1.7`` to client 1 (another client than
    the caller named) and took ``True`` as client 1, and a bare ``3`` or ``None``
    failed as a TypeError on iteration."""
    if isinstance(dropped, str | bytes) or not isinstance(dropped, Iterable):
        raise ConfigurationError(
            f"dropped must be a collection of client indices, not {type(dropped).__name__}"
        )
    gone: set[int] = set()
    for p in dropped:
        if isinstance(p, bool | np.bool_) or not isinstance(p, numbers.Integral):
            raise ConfigurationError(f"dropped clients are integer indices, not {p!r}")
        if not 0 <= p < num_clients:
            raise ConfigurationError(f"dropped clients must lie in 0..{num_clients - 1}, not {p}")
        gone.add(int(p))
    return gone


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
    "Phase",
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
