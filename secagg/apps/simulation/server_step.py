"""The federation server's optimizer step, for the simulator's loops outside a federation.

The local-only baseline of record-level distributed DP (each branch alone, full-batch
DP gradient descent with the whole noise its own) steps as the federation's server
does: the server's learning rate, and FedAvgM's momentum or FedAdam's moments
(``server_optimizer``). It kept its own copy of FedAvgM's step, so with FedAdam on the
server the baseline would have gone on stepping FedAvg(M), and a branch's verdict
("federated at least local") would compare two optimizers, not sharing against not
sharing. :class:`ServerStep` calls the runtime's own step,
:func:`~secagg.runtime.server_optimizer.server_step`, the one the federation's server
calls: one rule, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from secagg.apps.simulation.config import DEFAULT_SERVER_ADAM_TAU, SimulationConfig
from secagg.runtime.server_optimizer import ServerMoments, server_step


@dataclass(frozen=True)
class _ServerOptimizer:
    """The settings of the federation's config the server's step reads, and no more
    (the rest of a :class:`~secagg.runtime.config.FederationConfig`, its clients,
    backend and deadlines, means nothing to a branch alone)."""

    server_learning_rate: float
    server_momentum: float
    server_optimizer: str
    server_adam_tau: float


class ServerStep:
    """The server's step over successive released means, its state (FedAvgM's velocity,
    FedAdam's moments and step count) kept between them as the server keeps it.

    Each :meth:`step` starts from the model it is given (the caller's: local-only
    loads each model into a float32 network and steps from what it holds) and adopts
    the moments, whatever the result: a non-finite model is the caller's to score as
    diverged (the server instead keeps its previous model and aborts the round)."""

    def __init__(self, config: SimulationConfig, size: int) -> None:
        tau = config.server_adam_tau
        self.config = _ServerOptimizer(
            server_learning_rate=config.server_learning_rate,
            server_momentum=config.server_momentum,
            server_optimizer=config.server_optimizer,
            server_adam_tau=DEFAULT_SERVER_ADAM_TAU if tau is None else tau,
        )
        self._moments = ServerMoments.zeros(size)

    def step(self, model: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """``model`` after the server's step along ``mean`` (float64)."""
        updated, self._moments = server_step(self.config, model, mean, self._moments)
        return updated
