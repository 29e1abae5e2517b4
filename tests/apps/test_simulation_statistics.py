"""The simulator's feature statistics inside the privacy story (DP review): standardised
with the pooled rows' mean and std before, outside every epsilon; now a noised secure sum
charged to every branch, or public data, or nothing."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.runner import load_data
from secagg.errors import ConfigurationError

SMALL = SimulationConfig(
    branches=4, rounds=1, model="logistic", train_rows=4_000, test_rows_per_branch=200
)


def _pooled_is_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old path standardised with tabular.standardize over the pooled rows."""
    import secagg.apps.models.tabular as tabular

    def pooled(*_: object, **__: object) -> None:
        raise AssertionError("the simulator pooled the branches' raw rows")

    monkeypatch.setattr(tabular, "standardize", pooled)


def test_record_level_dp_standardises_with_a_noised_secure_sum_it_charges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pooled_is_forbidden(monkeypatch)
    branches, stats = load_data(SMALL)
    assert stats.source == "secure" and stats.private
    assert stats.details["backend"] == "secagg+"
    step = stats.accountant_step
    assert step == pytest.approx((10.0 / np.sqrt(3), 1.0, 1))
    assert all(b.prior_releases == (step,) for b in branches)
    # the noise is there: not the pooled clipped statistics, yet close on 4,000 rows
    raw, _ = load_data(SMALL.with_changes(standardize="none"))
    pooled = np.clip(np.concatenate([b.x_train for b in raw]), -5, 5)
    assert not np.allclose(stats.mean, pooled.mean(axis=0), atol=1e-6)
    # a customer adds up to 8 rows to each sum, so the noise is 8 times that of one row
    assert np.max(np.abs(stats.mean - pooled.mean(axis=0))) < 8.0
    again, stats_again = load_data(SMALL)  # replayable from the run's seed
    assert np.array_equal(stats.mean, stats_again.mean)
    assert np.array_equal(branches[0].x_train, again[0].x_train)
    np.testing.assert_allclose(branches[0].x_train, stats.apply(raw[0].x_train))


def test_without_dp_the_sums_are_secure_but_not_noised(monkeypatch: pytest.MonkeyPatch) -> None:
    _pooled_is_forbidden(monkeypatch)
    branches, stats = load_data(SMALL.with_changes(mechanism="off"))
    assert stats.source == "secure" and not stats.private and stats.accountant_step is None
    assert all(b.prior_releases == () for b in branches)
    raw, _ = load_data(SMALL.with_changes(standardize="none"))
    pooled = np.clip(np.concatenate([b.x_train for b in raw]), -5, 5).astype(np.float64)
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=0), atol=1e-6)


def test_client_level_dp_uses_public_statistics_and_charges_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A per-record noise does not hide a whole branch: client-level runs standardise
    with the generator's reference sample (another seed, no branch's rows)."""
    _pooled_is_forbidden(monkeypatch)
    config = SMALL.with_changes(unit="client", mechanism="central")
    assert config.feature_statistics == "public"
    branches, stats = load_data(config)
    assert stats.source == "public" and stats.accountant_step is None
    assert "reference sample" in stats.details["origin"]
    assert all(b.prior_releases == () for b in branches)
    with pytest.raises(ConfigurationError, match="unit = 'client'"):
        config.with_changes(standardize="secure")


def test_public_statistics_from_a_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from secagg.apps.models.synthetic import FEATURE_NAMES

    path = tmp_path / "stats.json"
    stats = {name: {"mean": 1.0, "std": 2.0} for name in FEATURE_NAMES}
    path.write_text(json.dumps({"features": stats}))
    config = SMALL.with_changes(standardize="public", stats_path=str(path))
    branches, used = load_data(config)
    raw, _ = load_data(SMALL.with_changes(standardize="none"))
    np.testing.assert_allclose(branches[1].x_test, (raw[1].x_test - 1.0) / 2.0, rtol=1e-6)
    assert used.source == "public" and branches[1].prior_releases == ()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"standardize": "mean"}, "data.standardize must be one of"),
        ({"stats_path": "s.json"}, "stats_path is read only"),
        ({"stats_bound": 0.0}, "stats_bound"),
        ({"stats_noise_multiplier": 0.0}, "stats_noise_multiplier"),
        (
            {"source": "csv", "path": "x.csv", "label": "y", "standardize": "public"},
            "needs data.stats_path",
        ),
    ],
)
def test_bad_statistics_settings_name_the_key(changes: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SMALL.with_changes(**changes)
