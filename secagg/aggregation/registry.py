"""The backends by name: what a config's ``backend.name`` and a spec's header resolve to.

Adding a backend: its module in this package, and one line in :data:`_REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secagg.aggregation.base import AggregationBackend, RoundSpec
from secagg.aggregation.ckks import CKKSBackend, CKKSSpec
from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.aggregation.plain import PlainBackend, PlainSpec
from secagg.aggregation.spec import MAX_SPEC_CLIENTS, MAX_SPEC_DIMENSION, read_header
from secagg.errors import ConfigurationError, MalformedMessage

_MASKING_OPTIONS = (
    "value_bound",
    "bits",
    "scale",
    "dropout_fraction",
    "corrupt_fraction",
    "active",
    "max_clients",  # the federation's size: sampled rounds are sized for its colluders
)

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


def accepted_settings(name: str) -> tuple[str, ...]:
    """The federation settings backend ``name`` takes (others do not apply to it)."""
    if name not in _REGISTRY:
        raise ConfigurationError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    return _REGISTRY[name][2]


def needs_helper(name: str) -> bool:
    """Whether backend ``name`` needs a helper party (the CKKS key holder)."""
    return backend_from_settings(name).needs_helper


def get_backend(name: str, **options: Any) -> AggregationBackend:
    """The backend called ``name``, configured with ``options``.

    ``plain``: ``value_bound`` (default: none). ``secagg`` / ``secagg+``:
    ``value_bound`` (bound on every coordinate of every update; default 1.0),
    ``bits`` (32 or 64), ``scale``, ``dropout_fraction``, ``corrupt_fraction``,
    ``active`` (the malicious-server variant).
    ``ckks``: ``value_bound``, ``precision``, ``max_clients``.
    """
    if not isinstance(name, str) or name not in _REGISTRY:  # a list: "unhashable type"
        raise ConfigurationError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    try:
        return _REGISTRY[name][0](**options)
    except TypeError as exc:
        raise ConfigurationError(f"backend {name}: {exc}") from None


def decode_spec(data: bytes) -> RoundSpec:
    """A round spec from the wire, read by the backend that owns it.

    Total: any bytes give a spec or :class:`MalformedMessage`, never another exception.
    A backend's ``decode_body`` should raise only ``MalformedMessage``; whatever else it
    raises (a ``ConfigurationError`` from a parameter check, an ``OverflowError`` from
    arithmetic on a hostile field) is converted here, because a branch's receive loop
    must survive any spec a server sends (review findings H1 and L3).
    """
    name, body = read_header(data)
    if name not in _REGISTRY:
        raise MalformedMessage(f"round spec of an unknown backend {name!r}")
    try:
        spec = _REGISTRY[name][1].decode_body(body, name)
    except MalformedMessage:
        raise
    except Exception as exc:  # totality: see the docstring
        detail = str(exc)[:200]
        raise MalformedMessage(
            f"{name} round spec refused ({type(exc).__name__}): {detail}"
        ) from None
    if not 1 <= spec.num_clients <= MAX_SPEC_CLIENTS:
        raise MalformedMessage(f"a round of {spec.num_clients} clients is out of range")
    if not 1 <= spec.dimension <= MAX_SPEC_DIMENSION:
        raise MalformedMessage(f"a round of dimension {spec.dimension} is out of range")
    return spec
