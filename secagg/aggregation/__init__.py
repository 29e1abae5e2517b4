"""One aggregation interface, several backends: plain, SecAgg, SecAgg+ and CKKS.

:func:`aggregate` is the one-line research entry: an (n, d) float array in,
the float sum and a per-round report out, for any backend. Behind it,
:func:`get_backend` builds an :class:`AggregationBackend` whose rounds are
sans-I/O server and client sessions (see :mod:`secagg.aggregation.base`); the
in-memory driver (:mod:`secagg.aggregation.local`), the simulator, the
benchmarks and the networked runtime all drive the same sessions.

Adding a backend: a module here with its spec, sessions and backend class, and
one line in :data:`_REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from secagg.aggregation.ckks import CKKSBackend, CKKSSpec
from secagg.aggregation.local import run_local_round
from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.plain import PlainBackend, PlainSpec
from secagg.aggregation.spec import encode_spec, read_header
from secagg.errors import ConfigurationError, MalformedMessage

_MASKING_OPTIONS = ("value_bound", "bits", "scale", "dropout_fraction", "corrupt_fraction")

#: name -> (backend factory, spec class, the settings it takes)
_REGISTRY: dict[str, tuple[Callable[..., AggregationBackend], type[RoundSpec], tuple[str, ...]]] = {
    "plain": (PlainBackend, PlainSpec, ("value_bound",)),
    "secagg": (lambda **o: MaskingBackend(graph="complete", **o), MaskingSpec, _MASKING_OPTIONS),
    "secagg+": (lambda **o: MaskingBackend(graph="harary", **o), MaskingSpec, _MASKING_OPTIONS),
    "ckks": (CKKSBackend, CKKSSpec, ("value_bound", "precision", "max_clients")),
}
BACKENDS = tuple(_REGISTRY)


def backend_from_settings(name: str, **settings: Any) -> AggregationBackend:
    """The backend ``name`` from a federation's settings: each takes the ones it knows
    (unset ones, None, keep its defaults). Lets a config stay backend-agnostic."""
    if name not in _REGISTRY:
        raise ConfigurationError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    accepted = _REGISTRY[name][2]
    return get_backend(
        name, **{k: v for k, v in settings.items() if k in accepted and v is not None}
    )


def needs_helper(name: str) -> bool:
    """Whether backend ``name`` needs a helper party (the CKKS key holder)."""
    return backend_from_settings(name).needs_helper


def get_backend(name: str, **options: Any) -> AggregationBackend:
    """The backend called ``name``, configured with ``options``.

    ``plain``: ``value_bound`` (default: none). ``secagg`` / ``secagg+``:
    ``value_bound`` (bound on every coordinate of every update; default 1.0),
    ``bits`` (32 or 64), ``scale``, ``dropout_fraction``, ``corrupt_fraction``.
    ``ckks``: ``value_bound``, ``precision``, ``max_clients``.
    """
    if name not in _REGISTRY:
        raise ConfigurationError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    try:
        return _REGISTRY[name][0](**options)
    except TypeError as exc:
        raise ConfigurationError(f"backend {name}: {exc}") from None


def decode_spec(data: bytes) -> RoundSpec:
    """A round spec from the wire, read by the backend that owns it."""
    name, body = read_header(data)
    if name not in _REGISTRY:
        raise MalformedMessage(f"round spec of an unknown backend {name!r}")
    return _REGISTRY[name][1].decode_body(body, name)


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
