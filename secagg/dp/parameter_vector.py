"""A torch model's parameters as one flat float32 vector: the format every update,
global model and prior travels in, for every mechanism (and for none).

Why a module of its own: these helpers need torch only, and :mod:`secagg.dp.dpsgd`
imports Opacus at its top (2-6 s a process, most of it torch's distributed and
symbolic packages that Opacus pulls in). A run that trains no record-level DP-SGD
(``secagg simulate --mechanism off``, a client-level mechanism, the plain baselines)
still builds its starting model and moves vectors in and out of it, and did so through
``dpsgd``: every such run paid for Opacus. :mod:`secagg.dp.dpsgd` re-exports these
names, so its callers keep working.

An Opacus ``GradSampleModule`` wraps the user's model; the vector is always the
unwrapped model's, so a plain model and its wrapper give the same vector.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np
import torch

from secagg.errors import ConfigurationError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["flat_parameters", "load_flat_parameters", "parameter_names"]

#: the module defining Opacus's wrapper class (``AbstractGradSampleModule``)
_OPACUS_WRAPPERS = "opacus.grad_sample.gsm_base"


def _unwrap(module: nn.Module) -> nn.Module:
    """The user's model inside an Opacus wrapper (or the model itself).

    Opacus is not imported for this: a wrapper is an instance of a class Opacus
    defines, so none can exist before Opacus's wrapper module is loaded, and then its
    class is looked up where it already is (``sys.modules``)."""
    wrappers = sys.modules.get(_OPACUS_WRAPPERS)
    if wrappers is None:
        return module
    while isinstance(module, wrappers.AbstractGradSampleModule):
        module = module._module
    return module


def _named_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The unwrapped model's parameters in flat-vector order, all float32 (or refused)."""
    params = list(_unwrap(module).named_parameters())
    for name, p in params:
        if p.dtype != torch.float32:
            # float32 is the wire format; converting silently would make the
            # round trip lossy for float64 and misleading for float16.
            raise ConfigurationError(
                f"parameter {name!r} is {p.dtype}; the flat vector format is float32 only"
            )
    return params


def parameter_names(module: nn.Module) -> list[str]:
    """Parameter names in flat-vector order, without Opacus's ``_module.`` prefix."""
    return [name for name, _ in _named_parameters(module)]


def flat_parameters(module: nn.Module) -> np.ndarray:
    """All parameters of ``module`` as one float32 numpy vector (a copy).

    The order is ``named_parameters()`` of the unwrapped model, so a plain model
    and its Opacus ``GradSampleModule`` give the same vector. Buffers are not
    included: they are not trained by SGD (and BatchNorm, whose running
    statistics are buffers, is refused anyway).
    """
    params = _named_parameters(module)
    if not params:
        return np.zeros(0, dtype=np.float32)
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1).cpu() for _, p in params])
    return flat.numpy().astype(np.float32, copy=True)


def load_flat_parameters(module: nn.Module, vector: np.ndarray) -> None:
    """Copy a flat float32 vector (e.g. the new global model) into ``module`` in place.

    In place on purpose: the DP optimizer and Opacus's hooks hold references to
    the existing ``Parameter`` objects, so replacing them would silently train a
    detached copy.
    """
    params = _named_parameters(module)
    vec = np.asarray(vector)
    total = sum(p.numel() for _, p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ConfigurationError(
            f"expected a flat vector of {total} parameters, got shape {vec.shape}"
        )
    if vec.dtype != np.float32:
        raise ConfigurationError(f"expected a float32 vector, got {vec.dtype}")
    if not np.all(np.isfinite(vec)):
        raise ConfigurationError("the parameter vector contains NaN or infinite values")
    source = torch.from_numpy(np.ascontiguousarray(vec))
    offset = 0
    with torch.no_grad():
        for _, p in params:
            n = p.numel()
            p.copy_(source[offset : offset + n].view_as(p))
            offset += n
