"""Training hooks: how a branch's own training plugs into the federation client.

A hook is any function from the global model (float64 vector) to this branch's
update (a vector of the same length). :func:`torch_hook` builds one from a torch
model and a local training function, for example a
:class:`~secagg.dp.dpsgd.DPSGDTrainer`'s ``train`` (record-level DP inside the
branch); a numpy function is a hook as it is. torch is imported only here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from secagg.errors import ConfigurationError
from secagg.runtime.client import TrainingHook

if TYPE_CHECKING:
    from torch import nn


def torch_hook(model: nn.Module, train: Callable[[nn.Module], object]) -> TrainingHook:
    """Load the global model into ``model``, run ``train(model)``, return the parameter change.

    The model's parameters travel as one float32 vector in ``named_parameters()``
    order (the same order on every branch and the server); the update is
    ``trained - global`` in float64.
    """
    from secagg.dp.parameter_vector import flat_parameters, load_flat_parameters

    size = flat_parameters(model).size

    def hook(global_model: np.ndarray) -> np.ndarray:
        if global_model.shape != (size,):
            raise ConfigurationError(
                f"the global model has {global_model.size} parameters, this model {size}"
            )
        start = global_model.astype(np.float32)
        load_flat_parameters(model, start)
        train(model)
        return flat_parameters(model).astype(np.float64) - start.astype(np.float64)

    return hook


class DPSGDHook:
    """A branch's record-level DP-SGD as a training hook that also reports its accounting.

    ``DPSGDHook(trainer, epochs)`` trains ``epochs`` local epochs per round with a
    :class:`~secagg.dp.dpsgd.DPSGDTrainer` (keep ONE trainer for the whole
    federation: its accountant composes every round) and returns the parameter
    change. Its :meth:`privacy_report` is what the federation client sends for the
    server's ledger, so an auditor can recompute this branch's epsilon.
    """

    def __init__(self, trainer: object, epochs: int = 1) -> None:
        from secagg.dp.dpsgd import DPSGDTrainer

        if not isinstance(trainer, DPSGDTrainer):
            raise ConfigurationError("DPSGDHook needs a secagg.dp.dpsgd.DPSGDTrainer")
        if epochs < 1:
            raise ConfigurationError("epochs must be at least 1")
        self.trainer = trainer
        self.epochs = epochs

    def __call__(self, global_model: np.ndarray) -> np.ndarray:
        start = np.asarray(global_model, dtype=np.float32)
        if start.shape != self.trainer.flat_parameters().shape:
            raise ConfigurationError(
                f"the global model has {start.size} parameters, this model "
                f"{self.trainer.flat_parameters().size}"
            )
        self.trainer.load_flat_parameters(start)
        self.trainer.train(self.epochs)
        return self.trainer.flat_parameters().astype(np.float64) - start.astype(np.float64)

    def privacy_report(self) -> dict:
        return self.trainer.privacy_report()
