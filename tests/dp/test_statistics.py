"""The moment release (secagg.dp.statistics) and DPSGDTrainer.charge.

What is checked: the stated sensitivities bound what one record (or customer)
can do to a branch vector and are attained; the three blocks compose to one
Gaussian of multiplier z / sqrt(3) (against the analytic Gaussian mechanism and
dp_accounting's RDP of three composed Gaussians); the noise shares come from the
keyed stream and sum to the full std; the post-processing is robust; a charge
moves a trainer's epsilon to exactly its accountant's value. Test data come from
numpy's seeded generator (test data, not secrets); the noise under test comes
from KeyedStream only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from secagg.crypto.stream import KeyedStream
from secagg.dp.statistics import MomentRelease
from secagg.errors import ConfigurationError

F = 6
BOUND = 2.0


def _release(**overrides: object) -> MomentRelease:
    kwargs: dict[str, object] = {"bound": BOUND, "features": F, "noise_multiplier": 1.5}
    kwargs.update(overrides)
    return MomentRelease(**kwargs)  # type: ignore[arg-type]


def _blocks(vector: np.ndarray, f: int = F) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return vector[:f], vector[f : 2 * f], vector[2 * f :]


def _block_norms(a: np.ndarray, b: np.ndarray, f: int = F) -> np.ndarray:
    return np.array(
        [np.linalg.norm(x - y) for x, y in zip(_blocks(a, f), _blocks(b, f), strict=True)]
    )


# --- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bound", 0.0),
        ("bound", -1.0),
        ("bound", math.nan),
        ("bound", math.inf),
        ("bound", True),
        ("features", 0),
        ("features", 2.5),
        ("rows_per_unit", 0),
        ("rows_per_unit", True),
        ("noise_multiplier", -0.1),
        ("noise_multiplier", math.nan),
        ("noise_multiplier", math.inf),
        ("noise_multiplier", "1"),
        ("min_std", 0.0),
        ("min_std", BOUND * 2),
    ],
)
def test_bad_parameters_are_refused_by_name(field, value):
    with pytest.raises(ConfigurationError, match=field):
        _release(**{field: value})


def test_sensitivities_stddevs_and_the_effective_multiplier():
    r, z = 3, 1.7
    release = _release(rows_per_unit=r, noise_multiplier=z)
    d1, d2, d0 = release.sensitivities
    assert d1 == pytest.approx(r * BOUND * math.sqrt(F))
    assert d2 == pytest.approx(r * BOUND**2 * math.sqrt(F))
    assert d0 == r
    assert release.stddevs == pytest.approx((z * d1, z * d2, z * d0))
    # the docstring's proof: the squared sensitivity/std ratios add up to 3 / z^2
    ratio = sum((d / s) ** 2 for d, s in zip(release.sensitivities, release.stddevs, strict=True))
    assert ratio == pytest.approx(3 / z**2)
    assert release.effective_noise_multiplier == pytest.approx(1 / math.sqrt(ratio))
    assert release.accountant_step == (pytest.approx(z / math.sqrt(3)), 1.0, 1)
    per_coordinate = release.coordinate_stddevs()
    assert per_coordinate.shape == (2 * F + 1,)
    np.testing.assert_allclose(_blocks(per_coordinate)[0], z * d1)
    np.testing.assert_allclose(_blocks(per_coordinate)[1], z * d2)
    np.testing.assert_allclose(_blocks(per_coordinate)[2], z * d0)


# --- sensitivity: what one unit can do ---------------------------------------------------


def _data(rng: np.random.Generator, n: int = 40) -> np.ndarray:
    return rng.normal(0.0, 2.5 * BOUND, size=(n, F))  # many values beyond the bound


def test_one_record_moves_each_block_by_at_most_its_sensitivity_and_can_attain_it():
    rng = np.random.default_rng(11)
    release = _release()
    limit = np.array(release.sensitivities) * (1 + 1e-12)
    for _ in range(50):
        x = _data(rng)
        base = release.branch_vector(x)
        extra = rng.normal(0.0, 5 * BOUND, size=(1, F))
        added = release.branch_vector(np.vstack([x, extra]))
        removed = release.branch_vector(x[1:])
        assert np.all(_block_norms(added, base) <= limit)
        assert np.all(_block_norms(removed, base) <= limit)
    x = _data(rng)
    extreme = np.full((1, F), -7 * BOUND)  # far beyond: clipped to -bound everywhere
    moved = _block_norms(release.branch_vector(np.vstack([x, extreme])), release.branch_vector(x))
    np.testing.assert_allclose(moved, release.sensitivities, rtol=1e-12)


def test_one_customer_moves_each_block_by_at_most_its_sensitivity_and_can_attain_it():
    rng = np.random.default_rng(12)
    r = 4
    release = _release(rows_per_unit=r)
    limit = np.array(release.sensitivities) * (1 + 1e-12)
    for _ in range(50):
        x = _data(rng)
        base = release.branch_vector(x)
        k = int(rng.integers(1, r + 1))
        customer = rng.normal(0.0, 5 * BOUND, size=(k, F))
        assert np.all(_block_norms(release.branch_vector(np.vstack([x, customer])), base) <= limit)
    x = _data(rng)
    heavy = np.full((r, F), 9 * BOUND)  # r rows, every value beyond the bound
    moved = _block_norms(release.branch_vector(np.vstack([x, heavy])), release.branch_vector(x))
    np.testing.assert_allclose(moved, release.sensitivities, rtol=1e-12)
    # with r = 1 the same customer would move the sums r times the record sensitivity
    assert release.sensitivities[0] == pytest.approx(r * _release().sensitivities[0])


def test_branch_vector_is_the_clipped_sums_and_count():
    rng = np.random.default_rng(13)
    x = _data(rng, 25).astype(np.float32)
    v = _release().branch_vector(x)
    clipped = np.clip(x.astype(np.float64), -BOUND, BOUND)
    assert v.dtype == np.float64 and v.shape == (2 * F + 1,)
    np.testing.assert_allclose(v[:F], clipped.sum(0), rtol=1e-12)
    np.testing.assert_allclose(v[F : 2 * F], (clipped**2).sum(0), rtol=1e-12)
    assert v[-1] == 25
    np.testing.assert_array_equal(_release().branch_vector(np.zeros((0, F))), np.zeros(2 * F + 1))


def test_branch_vector_refuses_bad_rows_and_heavy_customers():
    release = _release(rows_per_unit=2)
    with pytest.raises(ConfigurationError, match="rows must be"):
        release.branch_vector(np.zeros((3, F + 1)))
    with pytest.raises(ConfigurationError, match="NaN"):
        release.branch_vector(np.full((2, F), np.nan))
    rows = np.zeros((4, F))
    release.branch_vector(rows, customers=np.array([1, 1, 2, 2]))
    with pytest.raises(ConfigurationError, match="rows_per_unit"):
        release.branch_vector(rows, customers=np.array([1, 1, 1, 2]))
    with pytest.raises(ConfigurationError, match="one id per row"):
        release.branch_vector(rows, customers=np.array([1, 2]))


# --- the noise shares ------------------------------------------------------------------


def test_honest_shares_sum_to_the_full_std_per_block():
    """h shares summed have std sigma_k per block: a two-sided chi-square test on the
    sample variance of each block, each at false-alarm rate 1e-6 (3e-6 for the test)."""
    honest, draws = 5, 400
    release = MomentRelease(bound=1.5, features=200, noise_multiplier=2.0)
    stream = KeyedStream()
    totals = np.array(
        [sum(release.noise_share(honest, stream) for _ in range(honest)) for _ in range(draws)]
    )
    f = release.features
    for samples, sigma in zip(
        (totals[:, :f].ravel(), totals[:, f : 2 * f].ravel(), totals[:, 2 * f]),
        release.stddevs,
        strict=True,
    ):
        n = samples.size
        statistic = float(np.sum(samples**2)) / sigma**2  # mean 0 is known: n degrees of freedom
        low, high = stats.chi2.ppf([0.5e-6, 1 - 0.5e-6], n)
        assert low <= statistic <= high, (statistic / n, n)


def test_noise_shares_come_from_the_stream():
    release = _release()
    key = b"k" * 16
    a = release.noise_share(3, KeyedStream(key))
    b = release.noise_share(3, KeyedStream(key))
    c = release.noise_share(3, KeyedStream(b"j" * 16))
    np.testing.assert_array_equal(a, b)
    assert np.all(a != c)
    stream = KeyedStream(key)
    first, second = release.noise_share(3, stream), release.noise_share(3, stream)
    assert stream.position > 0 and np.all(first != second)  # read forward, never reused
    with pytest.raises(ConfigurationError, match="KeyedStream"):
        release.noise_share(3, np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="honest"):
        release.noise_share(0, KeyedStream(key))


def test_without_dp_there_is_no_noise_no_charge_and_no_epsilon():
    release = _release(noise_multiplier=0)
    stream = KeyedStream(b"k" * 16)
    np.testing.assert_array_equal(release.noise_share(4, stream), np.zeros(2 * F + 1))
    assert stream.position == 0
    assert not release.private
    assert release.accountant_step is None
    assert release.epsilon(1e-5) == math.inf
    assert release.stddevs == (0.0, 0.0, 0.0)


# --- epsilon ---------------------------------------------------------------------------


def _analytic_gaussian_epsilon(mu: float, delta: float) -> float:
    """Balle & Wang (ICML 2018), Theorem 8: the exact (eps, delta) curve of the Gaussian
    mechanism whose sensitivity / std is mu."""

    def gap(eps: float) -> float:
        return (
            stats.norm.cdf(mu / 2 - eps / mu)
            - math.exp(eps) * stats.norm.cdf(-mu / 2 - eps / mu)
            - delta
        )

    return float(optimize.brentq(gap, 0.0, 200.0, xtol=1e-13))


@pytest.mark.parametrize("z", [1.2, 2.0, 5.0, 12.0])
@pytest.mark.parametrize("delta", [1e-5, 1e-8])
def test_epsilon_is_that_of_the_gaussian_mechanism_with_sensitivity_sqrt3_over_z(z, delta):
    release = _release(noise_multiplier=z)
    exact = _analytic_gaussian_epsilon(math.sqrt(3) / z, delta)
    eps = release.epsilon(delta)
    assert exact - 1e-9 <= eps <= exact + 1e-5  # PLD is pessimistic, and tight here


@pytest.mark.parametrize("z", [1.0, 3.0, 7.5])
def test_three_composed_gaussians_are_one_at_z_over_sqrt3_in_rdp(z):
    import dp_accounting
    from dp_accounting import rdp

    three = dp_accounting.ComposedDpEvent([dp_accounting.GaussianDpEvent(z)] * 3)
    composed = rdp.RdpAccountant().compose(three).get_epsilon(1e-6)
    assert _release(noise_multiplier=z).epsilon(1e-6, "rdp") == pytest.approx(composed, rel=1e-9)


def test_epsilon_refuses_a_bad_delta():
    with pytest.raises(ConfigurationError, match="delta"):
        _release().epsilon(0.0)
    with pytest.raises(ConfigurationError, match="delta"):
        _release(noise_multiplier=0).epsilon(1.5)


# --- finish: the post-processing -------------------------------------------------------


def test_finish_without_noise_is_the_clipped_population_mean_and_std():
    rng = np.random.default_rng(14)
    x = _data(rng, 300) * 0.2 + 0.3
    release = _release(noise_multiplier=0)
    mean, std = release.finish(release.branch_vector(x))
    clipped = np.clip(x, -BOUND, BOUND)
    np.testing.assert_allclose(mean, clipped.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(std, clipped.std(0), rtol=1e-10)


def test_finish_is_robust_to_noise_that_ruins_the_sums():
    release = _release(noise_multiplier=3.0, min_std=0.01)
    f = F
    total = np.zeros(2 * f + 1)
    total[:f] = [1e9, -1e9, 0, 5, -5, 0]
    total[f : 2 * f] = [-1e9, 1e9, -3, 0, 0, 1e-9]
    total[-1] = -50.0  # a noised count below 1
    mean, std = release.finish(total)
    assert np.all(np.abs(mean) <= BOUND)
    assert np.all((std >= 0.01) & (std <= BOUND))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    with pytest.raises(ConfigurationError, match="coordinates"):
        release.finish(np.zeros(2 * f))
    with pytest.raises(ConfigurationError, match="NaN"):
        release.finish(np.full(2 * f + 1, np.nan))


def test_a_noise_dominated_std_is_floored_at_what_the_noise_resolves():
    """A feature whose variance the noise swamps must not be blown up: its std is at
    least sqrt(noise std of the variance estimate), not the tiny min_std."""
    release = MomentRelease(bound=5.0, features=1, noise_multiplier=5.0)
    n = 2000.0
    total = np.array([0.0, 0.0, n])  # mean 0, variance estimate 0 (e.g. noise cancelled it)
    _, std = release.finish(total)
    _, s2, _ = release.stddevs
    assert std[0] == pytest.approx(math.sqrt(s2 / n))
    assert std[0] > 10 * release.min_std  # type: ignore[operator]
    quiet = MomentRelease(bound=5.0, features=1, noise_multiplier=0.0)
    assert quiet.finish(total)[1][0] == pytest.approx(quiet.min_std)


# --- DPSGDTrainer.charge -----------------------------------------------------------------


@pytest.fixture
def trainer_factory():
    torch = pytest.importorskip("torch")
    pytest.importorskip("opacus")
    from torch import nn
    from torch.utils.data import TensorDataset

    from secagg.dp.dpsgd import DPSGDTrainer

    def make(accountant: str = "prv", **overrides: object) -> DPSGDTrainer:
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(256, 4, generator=gen)
        y = (x[:, 0] > 0).long()
        kwargs: dict[str, object] = {
            "batch_size": 32,
            "learning_rate": 0.1,
            "max_grad_norm": 1.0,
            "noise_multiplier": 1.0,
            "accountant": accountant,
            "replay_seed": b"charge-test",
        }
        kwargs.update(overrides)
        return DPSGDTrainer(nn.Linear(4, 2), TensorDataset(x, y), **kwargs)  # type: ignore[arg-type]

    return make


def _opacus_epsilon(
    accountant: str, history: list[tuple[float, float, int]], delta: float
) -> float:
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = PRVAccountant() if accountant == "prv" else RDPAccountant()
    for z, q, steps in history:  # step by step, as an auditor replays the report
        for _ in range(steps):
            acc.step(noise_multiplier=z, sample_rate=q)
    return float(acc.get_epsilon(delta=delta))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # PRV's log(1 - q) at q = 1
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_charge_adds_the_release_to_the_trainers_epsilon_and_history(trainer_factory, accountant):
    trainer = trainer_factory(accountant)
    release = _release(noise_multiplier=5.0)
    step = release.accountant_step
    assert step is not None
    trainer.charge(*step)  # before any training: the statistics come first
    assert trainer.history == (step,)
    alone = trainer.epsilon()
    assert alone == pytest.approx(_opacus_epsilon(accountant, [step], trainer.delta), rel=1e-9)
    assert alone == pytest.approx(release.epsilon(trainer.delta), rel=0.15)  # another accountant

    report = trainer.train(1)  # PRV evaluations take ~0.3 s each: count them
    training = (trainer.noise_multiplier, trainer.sample_rate, trainer.steps_per_epoch)
    assert trainer.history == (step, training)
    expected = _opacus_epsilon(accountant, [step, training], trainer.delta)
    assert report.epsilon == pytest.approx(expected, rel=1e-9)
    without = _opacus_epsilon(accountant, [training], trainer.delta)
    assert report.epsilon > without  # the release is not free
    ledger = trainer.privacy_report()
    assert ledger["history"][0] == list(step)
    assert ledger["epsilon"] == report.epsilon


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 1.0), "noise_multiplier"),
        ((-1.0, 1.0), "noise_multiplier"),
        ((math.nan, 1.0), "noise_multiplier"),
        ((True, 1.0), "noise_multiplier"),
        ((1.0, 0.0), "sample_rate"),
        ((1.0, 1.5), "sample_rate"),
        ((1.0, 1.0, 0), "steps"),
        ((1.0, 1.0, 1.5), "steps"),
        ((1.0, 1.0, True), "steps"),
    ],
)
def test_charge_validates_its_inputs(trainer_factory, args, name):
    trainer = trainer_factory("rdp")
    with pytest.raises(ConfigurationError, match=name):
        trainer.charge(*args)
    assert trainer.history == ()


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")  # PRV failing
def test_charge_is_refused_when_the_accountant_cannot_evaluate_it(trainer_factory):
    """PRV cannot evaluate z=0.01 at q=1 (see test_dpsgd): refused, nothing recorded."""
    trainer = trainer_factory("prv")
    with pytest.raises(ConfigurationError, match="accountant='rdp'"):
        trainer.charge(0.01, 1.0)
    assert trainer.history == ()
    assert trainer.epsilon() == 0.0


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_a_target_epsilon_covers_the_releases_made_before_training(trainer_factory, accountant):
    """With a charge after calibration the target was exceeded; a prior release is in the
    calibration, so statistics and training together end within the target, and close to
    it (the search stops within 0.01 below)."""
    stats_step = (_release(noise_multiplier=5.0).effective_noise_multiplier, 1.0, 1)
    common = {"noise_multiplier": None, "target_epsilon": 3.0, "epochs": 2, "delta": 1e-4}
    alone = trainer_factory(accountant, **common)
    after = trainer_factory(accountant, **common, prior_releases=[stats_step])
    assert after.history == (stats_step,)
    assert after.noise_multiplier > alone.noise_multiplier  # less left for training
    after.train(2)
    eps = _opacus_epsilon(accountant, list(after.history), 1e-4)
    assert after.epsilon() == pytest.approx(eps, rel=1e-6)
    assert 3.0 - 0.02 <= eps <= 3.0
    with pytest.raises(ConfigurationError, match="would exceed the target"):
        after.train(1)


def test_prior_releases_that_spend_the_target_are_refused(trainer_factory):
    common = {"noise_multiplier": None, "target_epsilon": 1.0, "epochs": 1, "delta": 1e-4}
    with pytest.raises(ConfigurationError, match="already spend epsilon"):
        trainer_factory("rdp", **common, prior_releases=[(0.5, 1.0, 1)])
    with pytest.raises(ConfigurationError, match="prior release"):
        trainer_factory("rdp", **common, prior_releases=[(1.0, 1.5, 1)])
