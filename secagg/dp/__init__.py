"""Differential privacy: clipping, noise, accounting and DP-SGD, with the unit explicit.

The front door for users and auditors:

* :func:`epsilon` and :func:`noise_multiplier_for`: DP-FedAvg accounting with
  Poisson client sampling (PLD or RDP, through Google's ``dp_accounting``), the
  figure where the sampling stays secret; :func:`federation_epsilon` and
  :func:`federation_noise_multiplier`: what a secagg federation claims, each client
  charged for the rounds it is in (:func:`likely_most_rounds` of them for the most
  sampled), since a round's members see one another;
* :class:`PrivacyAccountant`: the running (epsilon, delta) after every round,
  with a history an auditor can replay;
* :class:`DPConfig` and :class:`PrivacyUnit`: what is protected (a record or a
  whole client) and how;
* mechanisms: :func:`clip_l2`, :class:`CentralGaussian`,
  :class:`DistributedDiscreteGaussian`, :class:`AdaptiveClipping`, and
  :class:`DPSGDTrainer` (Opacus; imported on first use, so the rest of the
  package works without torch).

See docs/privacy.md for what each mechanism and the accountant assume.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secagg.dp.accounting import (
        NoiseFloorWarning,
        PrivacyAccountant,
        adaptive_noise_split,
        ddg_epsilon,
        epsilon,
        federation_epsilon,
        federation_noise_multiplier,
        likely_most_rounds,
        noise_multiplier_for,
    )
    from secagg.dp.adaptive import AdaptiveClipping, unclipped_report
    from secagg.dp.central import CentralGaussian
    from secagg.dp.clipping import ClipResult, clip_coordinates, clip_l2
    from secagg.dp.config import (
        ClientLevelCost,
        DPConfig,
        PrivacyCostWarning,
        PrivacyUnit,
        client_level_cost,
    )
    from secagg.dp.distributed import DistributedDiscreteGaussian, honest_noise_contributors
    from secagg.dp.dpsgd import DPSGDTrainer, TrainingReport
    from secagg.dp.noise import discrete_gaussian, gaussian

#: where each public name lives; loaded on first use, so that a branch process that
#: only clips and encodes never pays for the accountant (dp_accounting, scipy) or torch
_HOMES = {
    "NoiseFloorWarning": "accounting",
    "PrivacyAccountant": "accounting",
    "adaptive_noise_split": "accounting",
    "ddg_epsilon": "accounting",
    "epsilon": "accounting",
    "federation_epsilon": "accounting",
    "federation_noise_multiplier": "accounting",
    "likely_most_rounds": "accounting",
    "noise_multiplier_for": "accounting",
    "AdaptiveClipping": "adaptive",
    "unclipped_report": "adaptive",
    "CentralGaussian": "central",
    "ClipResult": "clipping",
    "clip_coordinates": "clipping",
    "clip_l2": "clipping",
    "ClientLevelCost": "config",
    "DPConfig": "config",
    "PrivacyCostWarning": "config",
    "PrivacyUnit": "config",
    "client_level_cost": "config",
    "DistributedDiscreteGaussian": "distributed",
    "honest_noise_contributors": "distributed",
    "DPSGDTrainer": "dpsgd",
    "TrainingReport": "dpsgd",
    "discrete_gaussian": "noise",
    "gaussian": "noise",
}

__all__ = [
    "AdaptiveClipping",
    "CentralGaussian",
    "ClientLevelCost",
    "ClipResult",
    "DPConfig",
    "DPSGDTrainer",
    "DistributedDiscreteGaussian",
    "NoiseFloorWarning",
    "PrivacyAccountant",
    "PrivacyCostWarning",
    "PrivacyUnit",
    "TrainingReport",
    "adaptive_noise_split",
    "client_level_cost",
    "clip_coordinates",
    "clip_l2",
    "ddg_epsilon",
    "discrete_gaussian",
    "epsilon",
    "federation_epsilon",
    "federation_noise_multiplier",
    "gaussian",
    "honest_noise_contributors",
    "likely_most_rounds",
    "noise_multiplier_for",
    "unclipped_report",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use."""
    if name in _HOMES:
        return getattr(importlib.import_module(f"secagg.dp.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'secagg.dp' has no attribute {name!r}")
