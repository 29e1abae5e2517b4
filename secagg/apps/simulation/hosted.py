"""The simulator's branches as clients of the Ray engine (``engine = "ray"``).

With the in-process engine :func:`~secagg.apps.simulation.federation.run_federation` builds
every branch's :class:`~secagg.apps.simulation.branch_training.BranchTrainer` in the driver.
With the Ray engine (:mod:`secagg.runtime.ray_engine`) a :class:`HostedBranch` (a
picklable recipe: the configuration, the branch's data, the prior and the branch's
policy) goes to a client host through Ray's object store, and the host builds the
trainer and its :class:`~secagg.runtime.client.FederationClient` there, exactly as
the in-process engine does (same hook, same ``replay_seed`` and ``privacy_report``),
so the local training runs in the Ray workers and the same seed gives the same run.

The driver still needs two things of each trainer: the record-level epsilon of every
round's row (:func:`hosted_epsilons`) and, at the end, the DP-SGD parameters the
report prints (:func:`hosted_trainers`). Both are asked of the hosts between rounds
through :meth:`~secagg.runtime.ray_engine.RayHub.probe`; the trainer itself stays in
its worker.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secagg.aggregation.policy import BranchPolicy
from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.config import SimulationConfig
from secagg.runtime.client import FederationClient
from secagg.runtime.ray_engine import HostedClient, RayHub
from secagg.transport.base import ClientEndpoint

#: what the driver asks a hosted branch between rounds
EPSILON, PRIVACY = "epsilon", "privacy"


@dataclass(frozen=True)
class HostedBranch:
    """Builds one branch's trainer and federation client inside its client host."""

    config: SimulationConfig
    data: BranchData
    prior: np.ndarray | None
    policy: BranchPolicy
    #: record-level distributed DP: every branch's protected units (the public
    #: denominator of the scaled gradient sums), else None
    units_total: int | None = None
    #: the driver's DP-SGD noise calibrations (:func:`secagg.dp.dpsgd.known_calibrations`):
    #: the host's trainer gets the noise the driver's check found, without a search of
    #: its own (seconds of CPU a host); empty without DP-SGD (no Opacus is imported)
    calibrations: Mapping[tuple[Any, ...], Any] = field(default_factory=dict)

    def __call__(self, name: str, endpoint: ClientEndpoint) -> HostedClient:
        import torch

        from secagg.apps.simulation.branch_training import BranchTrainer
        from secagg.apps.simulation.seeding import _replay_bytes

        # as run_simulation sets it in the driver: determinism, and one core per host
        torch.set_num_threads(1)
        if self.calibrations:
            from secagg.dp.dpsgd import remember_calibrations

            remember_calibrations(self.calibrations)
        trainer = BranchTrainer(self.config, self.data, "federated", self.prior)
        if self.units_total is not None:
            trainer.units_total = self.units_total
        client = FederationClient(
            name,
            trainer.update_hook(),
            endpoint,
            policy=self.policy,
            replay_seed=_replay_bytes(self.config, "rounding", name),
            privacy_report=None if trainer.dpsgd is None else trainer.privacy_report,
        )
        return HostedClient(client, functools.partial(_probe, trainer))


def _probe(trainer: Any, what: str) -> Any:
    """A hosted trainer's answer to the driver (see :func:`hosted_epsilons`)."""
    if what == EPSILON:
        return trainer.epsilon()
    if what == PRIVACY:
        dpsgd = trainer.dpsgd is not None
        return {
            "epsilon": trainer.epsilon(),
            "dpsgd": dpsgd,
            "dpsgd_batch_size": trainer.dpsgd_batch_size,
            "privacy_report": trainer.privacy_report() if dpsgd else None,
        }
    raise ValueError(f"unknown probe {what!r}")


def hosted_epsilons(hub: RayHub, branches: list[BranchData]) -> dict[str, float | None]:
    """Each branch's record-level epsilon so far, in the branches' order (as the
    in-process engine's ``trainer.epsilon()`` per branch)."""
    answers = hub.probe(EPSILON)
    return {b.name: answers.get(b.name) for b in branches}


class HostedTrainer:
    """What :func:`~secagg.apps.simulation.privacy.privacy_parameters` reads of a branch's
    trainer, fetched from its host when the federation is over."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.dpsgd: bool | None = True if answer["dpsgd"] else None
        self.dpsgd_batch_size: int | None = answer["dpsgd_batch_size"]
        self._epsilon: float | None = answer["epsilon"]
        self._report: dict[str, Any] | None = answer["privacy_report"]

    def epsilon(self) -> float | None:
        return self._epsilon

    def privacy_report(self) -> dict[str, Any]:
        assert self._report is not None
        return self._report


def hosted_trainers(hub: RayHub, branches: list[BranchData]) -> dict[str, HostedTrainer]:
    """Every branch's trainer as its host last reported it."""
    answers = hub.probe(PRIVACY)
    return {b.name: HostedTrainer(answers[b.name]) for b in branches}
