"""Valid but extreme noise, targets and prior releases: a typed error that names what
to change, never Opacus's OverflowError, and nothing charged.

Before: ``charge(1e200, 0.5)``, ``prior_releases=[(1e200, 0.5, 1)]`` and
``noise_multiplier=1e200`` (at ``train``) raised ``OverflowError: (34, 'Numerical
result out of range')`` from Opacus's RDP analysis (``sigma ** 2`` in Python floats),
and a target epsilon of 1e-300 raised ``OverflowError: math range error`` from the
calibration's secant step instead of "unreachable".
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from secagg.dp.accounting import MAX_NOISE_MULTIPLIER, noise_multiplier_after  # noqa: E402
from secagg.dp.dpsgd import _MAX_TRAINING_NOISE, DPSGDTrainer  # noqa: E402
from secagg.errors import BudgetUnreachable, ConfigurationError  # noqa: E402

HUGE = [1e200, 1e308]


def _trainer(**privacy: object) -> DPSGDTrainer:
    n = 256
    x = torch.linspace(-1, 1, n * 4).reshape(n, 4)
    dataset = TensorDataset(x, (x[:, 0] > 0).long())
    settings: dict[str, object] = {"noise_multiplier": 1.0, "delta": 1e-5, **privacy}
    return DPSGDTrainer(
        nn.Linear(4, 2), dataset, batch_size=64, learning_rate=0.1, max_grad_norm=1.0,
        **settings,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("z", HUGE)
def test_a_charge_of_overflowing_noise_is_refused_and_not_recorded(
    accountant: str, z: float
) -> None:
    trainer = _trainer(accountant=accountant)
    with pytest.raises(ConfigurationError, match="at most 1e4"):
        trainer.charge(z, 0.5)
    assert trainer.history == () and trainer.epsilon() == 0.0


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_a_prior_release_of_overflowing_noise_is_refused_at_calibration(accountant: str) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot calibrate noise.*at most 1e4"):
        _trainer(
            noise_multiplier=None, target_epsilon=3.0, epochs=1, accountant=accountant,
            prior_releases=[(1e200, 0.5, 1)],
        )  # fmt: skip


@pytest.mark.parametrize("z", HUGE)
def test_training_noise_above_the_ceiling_is_refused_when_the_trainer_is_built(z: float) -> None:
    with pytest.raises(ConfigurationError, match=r"noise_multiplier must lie in \(0, 10000\]"):
        _trainer(noise_multiplier=z)
    assert (
        _trainer(noise_multiplier=MAX_NOISE_MULTIPLIER).noise_multiplier == 1e4
    )  # the ceiling is in


def test_the_trainers_ceiling_is_the_calibrations() -> None:
    assert _MAX_TRAINING_NOISE == MAX_NOISE_MULTIPLIER


@pytest.mark.parametrize("target", [1e-300, 5e-324])
def test_a_vanishing_target_is_unreachable_not_an_overflow(target: float) -> None:
    """A slope of 0.5 (epsilon ~ z^-1/2) made the secant's step exp(1394)."""

    def spent(z: float) -> float:
        return 10 / math.sqrt(z)

    with pytest.raises(BudgetUnreachable, match="unreachable"):
        noise_multiplier_after([], target, 1e-5, 0.5, 2, spent=spent)
