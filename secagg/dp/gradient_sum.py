"""One step of DP gradient descent before the noise: the sum of per-unit clipped gradients.

Why this exists
---------------
Record-level DP-SGD inside each branch (:mod:`secagg.dp.dpsgd`) makes every branch add
the full noise its own guarantee needs, so an average over ``n`` branches carries
``sqrt(n)`` times the noise one pooled DP-SGD would. With a masking backend the noise
can be added once instead: each branch sends the *un-noised* sum of its protected
units' clipped gradients together with a share of the noise (the distributed discrete
Gaussian, :class:`~secagg.dp.release.RecordDistributedRelease`), and the server only
ever learns the noised total. This module computes a branch's part: for every unit (a
customer's rows, or one row), the gradient of that unit's loss with respect to the
trainable parameters, clipped to L2 norm ``clip``, summed over all units. No sampling:
every unit is in every step (full-batch DP gradient descent), so no amplification by
sampling is claimed and the server, which is not trusted, learns nothing it could
use to void one.

The gradients come from ``torch.func`` (``vmap`` over units of ``grad`` of one unit's
loss), in chunks so memory stays bounded; the loss is called on a batch of one unit,
so a loss that averages over the batch (``CustomerLoss``, ``BCEWithLogitsLoss``) gives
that unit's own loss.

A unit whose gradient is not finite adds the zero vector. Why: finite inputs can
overflow (one row of float32 features at -3e38 gives a linear model a NaN gradient),
and a sum that then failed ("the model diverged") made the branch's round fail
because of that one unit: an outcome the sensitivity ``clip`` does not cover, so the
failure told the server the unit was there. The zero vector is inside the clip ball,
so the sensitivity holds for every unit, finite or not. A model whose *parameters*
are not finite (public: the federation's model) still raises FloatingPointError, before
any unit is looked at.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from secagg.errors import ConfigurationError

#: units per vectorised chunk (per-unit gradients of the chunk are held at once)
CHUNK_UNITS = 4096


def clipped_gradient_sum(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    clip: float,
    chunk: int = CHUNK_UNITS,
    precondition: np.ndarray | None = None,
) -> np.ndarray:
    """Sum over units of ``clip_L2(grad loss(unit), clip)``, as one float64 vector.

    ``precondition`` (a positive vector laid out as the sum is) multiplies each unit's
    gradient coordinate by coordinate *before* it is clipped: a diagonal preconditioner
    that must not depend on any unit's data (e.g. one measured on public data), so the
    sensitivity stays ``clip`` (Li et al. 2022, AdaDPS).

    ``inputs[i]`` and ``targets[i]`` are unit ``i`` (a customer's padded rows and
    their ``[rows, 2]`` label-and-mask target, or one row and its label). The vector
    follows the order of the model's trainable parameters in ``named_parameters()``
    (what :func:`secagg.dp.dpsgd.flat_parameters` gives for them), so it lines up with
    the model vector a federation exchanges. One unit changes the sum by at most
    ``clip`` in L2: that is the sensitivity the noise must be sized for.
    """
    from torch.func import functional_call, grad, vmap

    if not (math.isfinite(clip) and clip > 0):
        raise ConfigurationError(f"clip must be positive and finite, not {clip!r}")
    if inputs.shape[0] != targets.shape[0]:
        raise ConfigurationError(
            f"{inputs.shape[0]} units of inputs but {targets.shape[0]} of targets"
        )
    trainable = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise ConfigurationError("the model has no trainable parameter")
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        # the model, not any unit: checked before the data is read, so what it says
        # depends on no unit
        raise FloatingPointError("the model's parameters are not finite (the model diverged)")
    scales = _split_like(trainable, precondition) if precondition is not None else None
    frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
    frozen.update(dict(model.named_buffers()))

    def unit_loss(
        params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(model, (params, frozen), (x.unsqueeze(0),))
        return loss_fn(logits, y.unsqueeze(0))

    per_unit = vmap(grad(unit_loss), in_dims=(None, 0, 0))
    total = {k: torch.zeros_like(p, dtype=torch.float64) for k, p in trainable.items()}
    with torch.no_grad():
        for start in range(0, inputs.shape[0], max(1, chunk)):
            grads = per_unit(
                trainable, inputs[start : start + chunk], targets[start : start + chunk]
            )
            if scales is not None:
                grads = {name: g * scales[name] for name, g in grads.items()}
            squared = sum(g.reshape(g.shape[0], -1).double().pow(2).sum(1) for g in grads.values())
            # a unit whose squared norm is not finite (its gradient is not, or a float64
            # model's overflowed) adds zero (module docstring); float32 entries square to
            # at most 1.2e77 here, so for them that is exactly the non-finite gradients
            finite = torch.isfinite(squared)
            factor = torch.where(
                finite, (clip / squared.sqrt().clamp(min=1e-12)).clamp(max=1.0), 0.0
            )
            for name, g in grads.items():
                shape = (-1,) + (1,) * (g.dim() - 1)
                clipped = g.double() * factor.reshape(shape)  # inf * 0 is NaN: masked next
                total[name] += torch.where(finite.reshape(shape), clipped, 0.0).sum(0)
    vector = torch.cat([t.reshape(-1) for t in total.values()]).numpy()
    if not np.all(np.isfinite(vector)):  # a sum of vectors of norm <= clip: cannot happen
        raise FloatingPointError("the clipped gradient sum is not finite")
    return vector


def _split_like(trainable: dict[str, torch.Tensor], vector: np.ndarray) -> dict[str, torch.Tensor]:
    """``vector`` cut into tensors shaped as ``trainable``'s parameters, in their order."""
    flat = np.asarray(vector, dtype=np.float64)
    sizes = [p.numel() for p in trainable.values()]
    if flat.shape != (sum(sizes),) or not (np.all(np.isfinite(flat)) and np.all(flat > 0)):
        raise ConfigurationError(
            f"precondition must be {sum(sizes)} positive finite numbers, one per trainable "
            f"parameter, not an array of shape {flat.shape}"
        )
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for (name, p), size in zip(trainable.items(), sizes, strict=True):
        out[name] = torch.from_numpy(flat[offset : offset + size].reshape(p.shape)).to(p.dtype)
        offset += size
    return out
