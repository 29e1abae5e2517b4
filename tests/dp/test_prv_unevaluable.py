"""Opacus's PRV accountant below about z = 0.05: no candidate for a calibration, and
never a figure that flatters what ran.

PRV sizes its privacy loss domain ``[-L, L]`` by an RDP bound; once ``L`` passes 709.78
``exp`` overflows in its delta computation and it answers ``inf``, raises "Discrete mean
differs significantly from continuous mean", or returns about ``709 + log q`` whatever
the true epsilon. A DP-SGD calibration toward a huge target walked into the error and
aborted; a trainer charged such a release and reported 709.1 for a release PLD puts at
about 950.
"""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

import dp_accounting  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from secagg.dp.accountants import RecordLevelAccountant, opacus_epsilon  # noqa: E402
from secagg.dp.accounting import (  # noqa: E402
    NoiseFloorWarning,
    PrvCannotEvaluate,
    noise_multiplier_after,
)
from secagg.dp.dpsgd import DPSGDTrainer  # noqa: E402
from secagg.errors import ConfigurationError  # noqa: E402

# PRV's own numerics at these z: overflow warnings, "Optimal order is the smallest alpha"
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")


def _pld_epsilon(z: float, q: float, steps: int, delta: float, grid: float = 1e-2) -> float:
    """An independent figure: dp_accounting's PLD, an upper bound at most about
    ``grid`` per step above the truth (pessimistic discretisation)."""
    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=grid)
    event = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    return float(accountant.compose(event, steps).get_epsilon(delta))


def _dataset(n: int = 512) -> TensorDataset:
    x = torch.linspace(-1, 1, n * 8).reshape(n, 8)
    return TensorDataset(x, (x[:, 0] > 0).long())


# --- what PRV answers is refused where it cannot stand behind it -----------------------


@pytest.mark.parametrize(
    ("z", "q", "steps"),
    [(0.01, 0.1, 1), (0.025, 0.5, 1), (0.02, 0.001, 1)],  # PRV said 707.5, 709.1, 702.9
)
def test_prv_never_states_a_capped_epsilon(z: float, q: float, steps: int) -> None:
    truth = _pld_epsilon(z, q, steps, 1e-5, grid=0.1) - 0.1 * steps
    assert truth > 850  # what the release really spends, at least
    with pytest.raises(PrvCannotEvaluate, match="accountant='rdp'"):
        opacus_epsilon("prv", [(z, q, steps)], 1e-5)
    # the auditor's replay states no figure below the truth either
    assert RecordLevelAccountant("prv", 1e-5, [(z, q, steps)]).epsilon() == math.inf


def test_prv_is_unchanged_where_it_can_evaluate() -> None:
    """z = 0.045 at q = 0.5, two steps: epsilon 615.5, within 0.02 of PLD."""
    from opacus.accountants import create_accountant

    opacus = create_accountant(mechanism="prv")
    opacus.history = [(0.045, 0.5, 2)]
    ours = opacus_epsilon("prv", opacus.history, 1e-5)
    assert ours == opacus.get_epsilon(delta=1e-5)
    assert ours == pytest.approx(_pld_epsilon(0.045, 0.5, 2, 1e-5), abs=0.5)


def test_a_charge_prv_would_cap_is_refused_not_recorded() -> None:
    """Before: ``charge(0.025, 0.5)`` was accepted and the trainer reported epsilon
    709.1 for a release PLD puts above 950."""
    trainer = DPSGDTrainer(
        nn.Linear(8, 2), _dataset(), batch_size=64, learning_rate=0.1, max_grad_norm=1.0,
        noise_multiplier=1.0, delta=1e-5,
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="accountant='rdp'"):
        trainer.charge(0.025, 0.5)
    assert trainer.history == ()
    assert trainer.epsilon() == 0.0


# --- a calibration stops at the least noise PRV can evaluate --------------------------


@pytest.mark.parametrize(("target", "batch_size"), [(1e4, 256), (2000, 256), (1e4, 512)])
def test_a_huge_target_calibrates_to_prvs_floor_and_says_so(target: float, batch_size: int) -> None:
    """Before: 'cannot calibrate noise for epsilon=10000.0 with the 'prv' accountant:
    Discrete mean differs significantly from continuous mean.' Now the least noise PRV
    can evaluate, within the target by PRV and by PLD, with the floor warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = DPSGDTrainer(
            nn.Linear(8, 2), _dataset(), batch_size=batch_size, learning_rate=0.1,
            max_grad_norm=1.0, target_epsilon=target, epochs=1, delta=1e-5,
        )  # fmt: skip
    floors = [w.message for w in caught if isinstance(w.message, NoiseFloorWarning)]
    assert len(floors) == 1, [str(w.message) for w in caught]
    (floor,) = floors
    z, q, steps = trainer.noise_multiplier, trainer.sample_rate, trainer.steps_per_epoch
    spent = opacus_epsilon("prv", [(z, q, steps)], 1e-5)
    assert floor.accountant == "PRV" and "PRV cannot evaluate" in str(floor)
    assert floor.noise_multiplier == z and floor.epsilon == spent
    assert spent <= target
    assert _pld_epsilon(z, q, steps, 1e-5) <= spent + 0.05  # PRV's figure is the real one
    with pytest.raises(PrvCannotEvaluate):  # the step below really is out of PRV's reach
        opacus_epsilon("prv", [(floor.unevaluable, q, steps)], 1e-5)


def _power_law(floor: float, calls: list[float]):  # type: ignore[no-untyped-def]
    def spent(z: float) -> float:
        calls.append(z)
        if z < floor:
            raise PrvCannotEvaluate(f"z={z} is below the floor", history=[(z, 0.5, 2)])
        return 2.0 / z

    return spent


def test_noise_multiplier_after_treats_unevaluable_noise_as_no_candidate() -> None:
    calls: list[float] = []
    with pytest.warns(NoiseFloorWarning, match="PRV cannot evaluate") as caught:
        z = noise_multiplier_after(
            [], 1e4, 1e-5, 0.5, 2, spent=_power_law(0.05, calls), accountant="PRV"
        )
    (warning,) = [w.message for w in caught if isinstance(w.message, NoiseFloorWarning)]
    assert 0.05 <= z <= 0.05 * 1.5 and 2.0 / z <= 1e4
    assert warning.unevaluable < 0.05 <= warning.noise_multiplier == z
    assert warning.epsilon == 2.0 / z


def test_noise_multiplier_after_gives_the_floor_to_a_list_when_asked() -> None:
    said: list[NoiseFloorWarning] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoiseFloorWarning)
        z = noise_multiplier_after(
            [], 1e4, 1e-5, 0.5, 2, spent=_power_law(0.05, []), accountant="PRV", floor_out=said
        )
    assert [w.noise_multiplier for w in said] == [z]


def test_a_genuine_failure_of_the_accountant_still_raises() -> None:
    def broken(z: float) -> float:
        if z < 0.5:
            raise RuntimeError("Cannot compute epsilon")
        return 2.0 / z

    with pytest.raises(RuntimeError, match="Cannot compute epsilon"):
        noise_multiplier_after([], 100.0, 1e-5, 0.5, 2, spent=broken)
