"""The Ray address a ``--engine ray`` run joins, checked before any data or training.

Why a module of its own: the run first reached Ray in the federation, after the prior
and every baseline, so an address nothing answers on, or one that answers but is no Ray
GCS, was refused minutes into a run (or hung in Ray's retries). The checks here probe
the address (bounded by ``ray_engine.PROBE_SECONDS``) and refuse it in one line naming
where it came from, ``ray_address`` or the ``RAY_ADDRESS`` environment variable.
"""

from __future__ import annotations

import os
from typing import Final, NoReturn

from secagg.apps.simulation.config import SimulationConfig, key
from secagg.errors import ConfigurationError


def ray_address_source(config: SimulationConfig) -> str:
    """How messages name ``config.ray_address``: as the user set it (the flag or the
    file's key); :func:`~secagg.runtime.ray_engine.joined_address` names the
    environment instead when Ray joins ``RAY_ADDRESS``."""
    return key("ray_address")


def _check_ray_address(config: SimulationConfig) -> None:
    """Refuse a Ray address nothing answers on before any data or training, in one
    line naming where it came from (each probe bounded: ``ray_engine.PROBE_SECONDS``):
    ``ray_address`` as the user set it, or the ``RAY_ADDRESS`` environment variable,
    which Ray joins when ``ray_address`` is not given or ``"auto"``.

    Why: the run first reached Ray in the federation, after the prior's fit and every
    baseline, so ``--ray-address 127.0.0.1:1`` was refused minutes into a default-size
    run; ``RAY_ADDRESS=127.0.0.1:1`` with no ``--ray-address`` was not checked at all,
    and hung in Ray's retries (killed after 150 s, simulate audit 2026-12-05). A driver
    already joined to Ray (a caller's instance, an experiment's session) is not probed:
    it joins what it has. A port that answers but is no Ray GCS (not gRPC, or gRPC
    without Ray's service) is refused here too (:func:`_not_a_ray_gcs`); one that
    answers like a GCS but cannot be joined is still found by ``ray.init``."""
    from secagg.runtime.ray_engine import (
        RayUnavailable,
        check_address,
        joined_address,
        require_ray,
    )

    target, named = joined_address(config.ray_address, ray_address_source(config))
    if target is None or require_ray().is_initialized():
        return
    try:
        check_address(target, source=named)
    except RayUnavailable as exc:
        # the engine's words name the source; a config file's key is named as typed
        _refuse_ray_address(config, target, named, str(exc).split("): ", 1)[-1])
    not_ray = _not_a_ray_gcs(target)
    if not_ray is not None:
        _refuse_ray_address(config, target, named, not_ray)


def _refuse_ray_address(
    config: SimulationConfig, target: str, named: str | None, why: str
) -> NoReturn:
    """The one line refusing the Ray address ``target``, named where it came from:
    ``ray_address`` as the user set it, or the ``RAY_ADDRESS`` environment variable."""
    from secagg.runtime.ray_engine import RAY_ADDRESS_SOURCE, RAY_ADDRESS_VARIABLE

    where = (
        f"{RAY_ADDRESS_VARIABLE}={target} (the environment variable Ray joins when "
        f"{key('ray_address')} is {'auto' if config.ray_address else 'not given'})"
        if named == RAY_ADDRESS_SOURCE
        else key("ray_address", config.ray_address)
    )
    raise ConfigurationError(f"{where}: cannot reach Ray there (checked before training): {why}")


#: a method every Ray GCS serves (``NodeInfoGcsService.CheckAlive``); asked with an empty
#: request only to see who answers, never to learn anything of the cluster
_GCS_PROBE_METHOD: Final = "/ray.rpc.NodeInfoGcsService/CheckAlive"


def _not_a_ray_gcs(target: str, timeout: float | None = None) -> str | None:
    """Why the port at ``target`` (``HOST:PORT``, accepting connections) is no Ray GCS,
    or None when it may be one (or the probe cannot tell).

    Why: a port that accepts TCP but is not Ray (a web server, the federation's own
    gRPC port) passed :func:`~secagg.runtime.ray_engine.check_address` and failed only
    in ``ray.init``, after the data, the prior and every baseline (about 115 s; review,
    2026-12-05). One unary gRPC call settles it, bounded by ``PROBE_SECONDS``: a peer
    that does not speak HTTP/2 ("Failed parsing HTTP/2") or a gRPC server without
    Ray's GCS service (``UNIMPLEMENTED``) is refused; any other answer, even
    ``UNAUTHENTICATED`` (a cluster with token auth), is a GCS. No verdict (None) for
    silence within the bound, a ``ray://`` (Ray Client) address, or ``RAY_USE_TLS``
    (a plaintext probe of a TLS GCS would read as garbage)."""
    import grpc

    from secagg.runtime.ray_engine import PROBE_SECONDS

    if target.strip().startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        return None
    channel = grpc.insecure_channel(target.strip())
    try:
        probe = channel.unary_unary(
            _GCS_PROBE_METHOD, request_serializer=None, response_deserializer=None
        )
        probe(b"", timeout=PROBE_SECONDS if timeout is None else timeout)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = (exc.details() if callable(getattr(exc, "details", None)) else "") or ""
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return "a gRPC server answers on that port, but not Ray's (no GCS service there)"
        if code == grpc.StatusCode.UNAVAILABLE and "Failed parsing HTTP/2" in details:
            return "something answers on that port, but not gRPC, so not a Ray GCS"
        return None
    finally:
        channel.close()
    return None
