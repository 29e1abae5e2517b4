"""The fraud models: logistic regression and a small MLP, and a loss that copes with imbalance.

Both output one logit per transaction (higher = more likely fraud). Both are
Opacus-compatible (no BatchNorm: its batch statistics would mix records and
defeat per-record clipping). The initial weights come from a seeded torch
generator so that every branch and the server start from one model.
"""

from __future__ import annotations

import torch
from torch import nn

from secagg.apps.models import MODELS
from secagg.errors import ConfigurationError


class LogisticRegression(nn.Module):
    """One linear layer: the fraud team's interpretable baseline."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class FraudMLP(nn.Module):
    """Two hidden layers of ``hidden`` units with ReLU: captures feature interactions
    (a small amount is only suspicious online and at high velocity)."""

    def __init__(self, features: int, hidden: int = 32) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_model(name: str, features: int, *, seed: int = 0) -> nn.Module:
    """A fresh model with weights drawn from a generator seeded by ``seed``."""
    if name not in MODELS:
        raise ConfigurationError(f"model must be one of {MODELS}, not {name!r}")
    if features < 1:
        raise ConfigurationError("a model needs at least one feature")
    model: nn.Module = LogisticRegression(features) if name == "logistic" else FraudMLP(features)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:  # Kaiming-uniform bound, as nn.Linear uses
                bound = 1.0 / parameter.shape[1] ** 0.5
                parameter.uniform_(-bound, bound, generator=generator)
            else:
                parameter.zero_()
    return model


TRAINABLE = ("all", "head")


def head(model: nn.Module) -> nn.Linear:
    """The model's output layer: the last :class:`~torch.nn.Linear` (the whole logistic model)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ConfigurationError("the model has no linear output layer")
    return layers[-1]


def set_trainable(model: nn.Module, which: str) -> nn.Module:
    """Train every parameter (``all``) or only the output layer (``head``), in place.

    Why a head: under DP-SGD the noise norm of each step grows with the square root of
    the number of trained parameters, while the signal (a few hundred clipped fraud
    gradients) does not. Starting from a prior that cost no privacy (a public or earlier
    released model) and fine-tuning only its 33-parameter output layer divides that
    noise by about 7.9 (sqrt(2 081 / 33)) for the 2 081-parameter MLP; the body's
    features stay those of the prior."""
    if which not in TRAINABLE:
        raise ConfigurationError(f"trainable must be one of {TRAINABLE}, not {which!r}")
    output = head(model)
    keep = {id(p) for p in output.parameters()} if which == "head" else None
    for parameter in model.parameters():
        parameter.requires_grad_(keep is None or id(parameter) in keep)
    return model


def trainable_mask(model: nn.Module) -> torch.Tensor:
    """One bool per entry of the flat parameter vector (``named_parameters`` order):
    True where the parameter is trained. The federation exchanges only those entries."""
    return torch.cat(
        [torch.full((p.numel(),), p.requires_grad, dtype=torch.bool) for p in model.parameters()]
    )


def fraud_loss(positive_weight: float = 10.0) -> nn.Module:
    """Binary cross-entropy on logits with fraud cases weighted ``positive_weight`` times.

    Weighting (rather than oversampling) keeps Poisson sampling, and so the
    DP-SGD accounting, intact; the mean is over records, as Opacus assumes.
    A moderate weight is deliberate: under DP-SGD each record's gradient is
    clipped anyway, so a weight of 1 / fraud-rate would only be clipped away.
    """
    if not positive_weight > 0:
        raise ConfigurationError("positive_weight must be positive")
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor([positive_weight]), reduction="mean")
