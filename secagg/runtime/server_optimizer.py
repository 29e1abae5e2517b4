"""The federation server's optimizer: what it does with a released mean.

The server learns only the noised mean of the branches' updates; what it does with it
is post-processing, at no privacy cost and checked by no branch. Three steps, chosen by
the federation's config: FedAvg (``model + lr * mean``), FedAvgM (Hsu et al. 2019: a
velocity ``v = momentum * v + mean``, ``model + lr * v``) when ``server_momentum`` is set,
and FedAdam (Reddi et al. 2021) when ``server_optimizer = "adam"``.

Why a module of its own, without I/O: the simulator's local-only baseline must step
exactly as the federation's server does (a branch's verdict "federated at least local"
compares sharing with not sharing, not two optimizers), and it runs no server. Both call
:func:`server_step`; the server keeps its state (:class:`ServerMoments`) and adopts the
model and the state together, only when every value of both is finite.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from secagg.runtime.config import ADAM_BETA1, ADAM_BETA2


class ServerOptimizerSettings(Protocol):
    """The settings the step reads (a :class:`~secagg.runtime.config.FederationConfig`
    has them; the simulator passes its own)."""

    @property
    def server_learning_rate(self) -> float: ...

    @property
    def server_momentum(self) -> float: ...

    @property
    def server_optimizer(self) -> str: ...

    @property
    def server_adam_tau(self) -> float: ...


class ServerMoments(NamedTuple):
    """The server optimizer's state after a step, adopted with the model or not at all:
    FedAvgM's velocity or FedAdam's first moment, FedAdam's second moment (zeros
    otherwise), and the steps taken (FedAdam's bias correction counts them)."""

    first: np.ndarray
    second: np.ndarray
    steps: int

    @classmethod
    def zeros(cls, size: int) -> ServerMoments:
        """The state before any step (and after a restart: it is held in memory only)."""
        return cls(np.zeros(size), np.zeros(size), 0)

    def finite(self) -> bool:
        """Whether every moment is finite: an inf second moment (a mean whose square
        overflowed) would freeze its coordinate at a zero step in every later round."""
        return bool(np.isfinite(self.first).all() and np.isfinite(self.second).all())


def server_step(
    settings: ServerOptimizerSettings,
    model: np.ndarray,
    mean: np.ndarray,
    moments: ServerMoments,
) -> tuple[np.ndarray, ServerMoments]:
    """The model and the optimizer's state after stepping along ``mean``, not adopted.

    ``mean`` is the update direction, the same sign for each optimizer: ``model + lr *
    step``. FedAdam: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2`` (betas
    :data:`~secagg.runtime.config.ADAM_BETA1` / ``ADAM_BETA2``), each corrected by the
    steps taken (``1 - b^t``, as Adam; Reddi et al.'s algorithm leaves it out, the probe
    that asked for it, benchmarks/bench_record_rounds.py, has it), and ``model += lr *
    m_hat / (sqrt(v_hat) + tau)``.

    The mean is stepped as float64, the model's dtype, whatever array it came in: a
    float32 mean squared in float32 underflowed at 1e-23, and its coordinate then
    stepped by ``lr * g / tau``. Overflow is not raised here: the result may hold an
    inf or a nan, which the caller must refuse (the server keeps its previous model and
    aborts the round)."""
    model = np.asarray(model, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    rate = settings.server_learning_rate
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # refused by the caller
        if settings.server_optimizer == "adam":
            steps = moments.steps + 1
            first = ADAM_BETA1 * moments.first + (1 - ADAM_BETA1) * mean
            second = ADAM_BETA2 * moments.second + (1 - ADAM_BETA2) * mean**2
            corrected = first / (1 - ADAM_BETA1**steps)
            scale = np.sqrt(second / (1 - ADAM_BETA2**steps)) + settings.server_adam_tau
            return model + rate * corrected / scale, ServerMoments(first, second, steps)
        if settings.server_momentum > 0:
            velocity = settings.server_momentum * moments.first + mean
            return model + rate * velocity, ServerMoments(
                velocity, moments.second, moments.steps + 1
            )
        return model + rate * mean, ServerMoments(moments.first, moments.second, moments.steps + 1)
