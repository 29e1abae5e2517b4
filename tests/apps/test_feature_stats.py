"""Feature statistics for the simulator: secure and noised, or public (DP review).

The secure path must give the pooled statistics of the clipped rows (up to the
aggregation's error) without noise, stay close with noise on large data, never
pool the raw rows, and replay exactly from a seed. Public statistics files fail
with errors that name the file and the feature. Test rows come from numpy's
seeded generator (test data, not secrets).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import secagg.apps.simulation.feature_stats as fs
from secagg.apps.simulation.feature_stats import (
    FeatureStatistics,
    load_public_statistics,
    public_feature_statistics,
    secure_feature_statistics,
)
from secagg.dp.statistics import MomentRelease
from secagg.errors import ConfigurationError

F = 5
BOUND = 4.0


def _branches(sizes: tuple[int, ...] = (300, 200, 150, 100), seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.array([0.5, 1.0, 2.0, 3.0, 0.1])
    shift = np.array([0.0, 1.0, -1.5, 2.0, 0.05])
    return [(rng.normal(size=(n, F)) * scale + shift).astype(np.float32) for n in sizes]


def _pooled_clipped(rows: list[np.ndarray]) -> np.ndarray:
    return np.clip(np.concatenate(rows).astype(np.float64), -BOUND, BOUND)


# --- the secure path -----------------------------------------------------------------


def test_without_noise_it_is_the_pooled_statistics_of_the_clipped_rows():
    rows = _branches()
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=0.0)
    pooled = _pooled_clipped(rows)
    n = pooled.shape[0]
    err = stats.details["aggregation_error_bound"]
    assert 0 < err < 1e-3
    # a sum off by err moves the mean by err / n and the variance by about (1 + 2 b) err / n
    np.testing.assert_allclose(stats.mean, pooled.mean(0), rtol=0, atol=err / n + 1e-12)
    np.testing.assert_allclose(
        stats.std**2, pooled.var(0), rtol=0, atol=(1 + 2 * BOUND + BOUND**2) * err / n + 1e-12
    )
    assert stats.source == "secure" and not stats.private
    assert stats.accountant_step is None and stats.epsilon_at(1e-5) == math.inf
    assert stats.details["backend"] == "secagg+"
    # the clipping is real: feature 3 (std 3 around 2) is clipped at 4
    assert stats.std[3] < np.concatenate(rows)[:, 3].std()


def test_with_noise_it_is_close_on_large_data():
    rows = _branches(sizes=(40_000, 30_000, 20_000, 10_000), seed=4)
    z = 2.0
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=z)
    pooled = _pooled_clipped(rows)
    n = pooled.shape[0]
    release = MomentRelease(bound=BOUND, features=F, noise_multiplier=z)
    s1, s2, _ = release.stddevs  # the total's noise std per block
    mean = pooled.mean(0)
    # 6 standard deviations of each estimate's noise (about 2e-9 false alarms per value)
    np.testing.assert_array_less(np.abs(stats.mean - mean), 6 * s1 / n)
    var_noise = np.sqrt(s2**2 + 4 * mean**2 * s1**2) / n
    np.testing.assert_array_less(np.abs(stats.std**2 - pooled.var(0)), 6 * var_noise + 1e-12)
    assert np.any(stats.mean != mean)  # and it is noised
    assert stats.private
    assert stats.effective_noise_multiplier == pytest.approx(z / math.sqrt(3))
    assert stats.accountant_step == (pytest.approx(z / math.sqrt(3)), 1.0, 1)
    assert stats.epsilon_at(1e-5) == pytest.approx(release.epsilon(1e-5))


def test_the_raw_rows_only_ever_reach_branch_vector(monkeypatch):
    """Structural: each branch's rows go to MomentRelease.branch_vector exactly once and
    to no stacking function; the aggregation only receives the noised branch vectors."""
    rows = _branches()
    for r in rows:
        r.setflags(write=False)
    seen: list[int] = []
    real_vector = MomentRelease.branch_vector

    def spy_vector(self, x, customers=None):
        seen.append(id(x))
        return real_vector(self, x, customers)

    def guard(name):
        real = getattr(np, name)

        def guarded(*args, **kwargs):
            flat = [a for arg in args for a in (arg if isinstance(arg, list | tuple) else [arg])]
            for a in flat:
                if isinstance(a, np.ndarray) and any(np.shares_memory(a, r) for r in rows):
                    raise AssertionError(f"np.{name} was given a branch's raw rows")
            return real(*args, **kwargs)

        return guarded

    for name in ("concatenate", "vstack", "hstack", "stack", "row_stack", "append"):
        if hasattr(np, name):
            monkeypatch.setattr(np, name, guard(name))
    monkeypatch.setattr(MomentRelease, "branch_vector", spy_vector)
    aggregated = []
    real_round = fs.run_local_round

    def spy_round(backend, updates, **kwargs):
        aggregated.append(np.array(updates))
        return real_round(backend, updates, **kwargs)

    monkeypatch.setattr(fs, "run_local_round", spy_round)
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=1.0, replay_seed=b"s")
    assert seen == [id(r) for r in rows]
    assert len(aggregated) == 1 and aggregated[0].shape == (len(rows), 2 * F + 1)
    release = MomentRelease(bound=BOUND, features=F, noise_multiplier=1.0)
    for vector, r in zip(aggregated[0], rows, strict=True):
        assert np.all(vector != real_vector(release, r))  # every branch's vector is noised
    assert stats.features == F


def test_the_noise_shares_are_sized_for_the_assumed_honest_branches(monkeypatch):
    honest_seen: list[int] = []
    real_share = MomentRelease.noise_share

    def spy(self, honest, stream):
        honest_seen.append(honest)
        return real_share(self, honest, stream)

    monkeypatch.setattr(MomentRelease, "noise_share", spy)
    rows = _branches(sizes=(50,) * 8)
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=1.0)
    # 8 branches at a corrupt fraction of 0.25: 2 colluders, so 6 shares must carry sigma
    assert honest_seen == [6] * 8
    assert stats.details["assumed_colluders"] == 2
    assert stats.details["honest_noise_contributors"] == 6


def test_same_replay_seed_same_bytes_and_otherwise_different():
    rows = _branches()
    kwargs = {"bound": BOUND, "noise_multiplier": 1.0}
    a = secure_feature_statistics(rows, replay_seed=b"seed-1", **kwargs)
    b = secure_feature_statistics(rows, replay_seed=b"seed-1", **kwargs)
    c = secure_feature_statistics(rows, replay_seed=b"seed-2", **kwargs)
    d = secure_feature_statistics(rows, **kwargs)
    assert a.mean.tobytes() == b.mean.tobytes() and a.std.tobytes() == b.std.tobytes()
    assert a.mean.tobytes() != c.mean.tobytes()
    assert a.mean.tobytes() != d.mean.tobytes()
    assert a.details["replayable"] and not d.details["replayable"]
    # without noise the rounding is the only randomness, and the seed fixes it too
    e = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=0.0, replay_seed=b"r")
    f = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=0.0, replay_seed=b"r")
    assert e.mean.tobytes() == f.mean.tobytes() and e.std.tobytes() == f.std.tobytes()


@pytest.mark.parametrize(
    ("asked", "used"), [("plain", "secagg+"), ("ckks", "secagg+"), ("secagg", "secagg")]
)
def test_backends_without_a_use_here_fall_back_to_secagg_plus(asked, used):
    stats = secure_feature_statistics(
        _branches(sizes=(40, 30)), bound=BOUND, noise_multiplier=0.0, backend=asked
    )
    assert stats.details["backend"] == used
    assert stats.details["requested_backend"] == asked


def _mangle(rows: list[np.ndarray], what: str) -> list:
    if what == "one branch":
        return rows[:1]
    if what == "fewer features":
        return [rows[0], rows[1][:, :2]]
    if what == "a list":
        return [rows[0], rows[1].tolist()]
    return rows


@pytest.mark.parametrize(
    ("rows", "overrides", "message"),
    [
        ("one branch", {}, "2 branches"),
        ("fewer features", {}, "features"),
        ("a list", {}, "numpy"),
        ("", {"backend": "x"}, "backend"),
        ("", {"bound": 0.0}, "bound"),
        ("", {"noise_multiplier": -1.0}, "noise_multiplier"),
        ("", {"max_branch_rows": 100}, "max_branch_rows"),
        ("", {"corrupt_fraction": 1.0}, "corrupt_fraction"),
        ("", {"rows_per_unit": 0}, "rows_per_unit"),
    ],
)
def test_bad_calls_are_refused_by_name(rows, overrides, message):
    kwargs = {"bound": 1.0, "noise_multiplier": 1.0, **overrides}
    with pytest.raises(ConfigurationError, match=message):
        secure_feature_statistics(_mangle(_branches(), rows), **kwargs)


def test_customer_rows_are_checked_against_rows_per_unit():
    rows = _branches(sizes=(6, 4))
    ok = [np.array([1, 1, 2, 2, 3, 3]), np.array([7, 7, 8, 8])]
    stats = secure_feature_statistics(
        rows, bound=BOUND, noise_multiplier=1.0, rows_per_unit=2, customers=ok
    )
    assert stats.rows_per_unit == 2
    heavy = [np.array([1, 1, 1, 2, 3, 3]), None]
    with pytest.raises(ConfigurationError, match="rows_per_unit"):
        secure_feature_statistics(
            rows, bound=BOUND, noise_multiplier=1.0, rows_per_unit=2, customers=heavy
        )


def test_apply_and_the_report():
    rows = _branches()
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=1.0)
    scaled = stats.apply(rows[0])
    assert scaled.dtype == np.float32 and scaled.shape == rows[0].shape
    np.testing.assert_allclose(scaled, (rows[0] - stats.mean) / stats.std, rtol=1e-6)
    with pytest.raises(ConfigurationError, match="features"):
        stats.apply(np.zeros((2, F + 1)))
    report = json.loads(json.dumps(stats.as_dict()))  # JSON-ready
    assert report["source"] == "secure" and report["bound"] == BOUND
    assert report["honest_noise_contributors"] == 2 and len(report["mean"]) == F
    with pytest.raises(ValueError, match="read-only"):
        stats.mean[0] = 1.0


# --- a column the bound clips mostly is refused before any sum ----------------------------


def _raw_scale(sizes: tuple[int, ...] = (300, 200, 150, 100)) -> list[np.ndarray]:
    """The branches' rows with column 1 in seconds over two days (the Kaggle layout's
    Time, which no one scaled), the others standardised."""
    rows = _branches(sizes)
    rng = np.random.default_rng(9)
    for r in rows:
        r[:, 1] = rng.uniform(0, 172_800, len(r))
    return rows


def test_a_column_the_bound_clips_mostly_is_refused_before_any_branch_contributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A raw-scale column was clipped to +-bound value by value: its released mean sat at
    the bound and its std at the floor, so the standardised column came out in the
    millions and the model trained on garbage (AUPRC 0.157 where the scaled file gave
    1.000; simulate audit, 2026-12-06), and the release still cost its epsilon. Each
    branch counts on its own rows what the bound would clip, and refuses before it
    contributes: nothing is summed, nothing is charged."""

    def contributed(*args: object, **kwargs: object) -> None:
        raise AssertionError("a branch contributed its sums")

    monkeypatch.setattr(MomentRelease, "branch_vector", contributed)
    with pytest.raises(ConfigurationError, match=r"column 1 \(100 % of its values on 4 of 4"):
        secure_feature_statistics(_raw_scale(), bound=BOUND, noise_multiplier=1.0)
    names = ["a", "Time", "c", "d", "e"]
    with pytest.raises(fs.ColumnsBeyondBound) as refused:
        secure_feature_statistics(
            _raw_scale(), bound=BOUND, noise_multiplier=1.0, feature_names=names
        )
    assert "'Time' (100 % of its values on 4 of 4 branches)" in str(refused.value)
    assert refused.value.columns == {"Time": (1.0, 4)} and refused.value.branches == 4
    assert refused.value.bound == BOUND and "'a'" not in str(refused.value)


def test_each_branch_judges_its_own_rows() -> None:
    """The rule is a branch's (it sees only its own rows): one branch whose column is
    mostly beyond the bound refuses though the pooled share is below the limit."""
    rows = _branches()
    assert fs.MAX_CLIPPED_SHARE == 0.5
    rows[3][:, 2] = np.where(np.arange(len(rows[3])) < 60, 50.0, 0.0)  # 60 % of 100 rows
    shares = fs.clipped_shares(rows[3], BOUND)
    assert shares.shape == (F,) and shares[2] == pytest.approx(0.6)
    assert fs.clipped_shares(np.full((4, F), BOUND), BOUND).max() == 0.0  # at the bound: kept
    assert fs.clipped_shares(np.zeros((0, F)), BOUND).max() == 0.0  # no rows, nothing clipped
    with pytest.raises(fs.ColumnsBeyondBound, match=r"column 2 \(60 % of its values on 1 of 4"):
        secure_feature_statistics(rows, bound=BOUND, noise_multiplier=1.0)
    rows[3][:, 2] = np.where(np.arange(len(rows[3])) < 50, 50.0, 0.0)  # half: kept
    stats = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=0.0)
    assert stats.details["max_clipped_share"] == 0.5


def test_what_the_bound_clips_is_recorded_per_column() -> None:
    """Below the limit the release goes ahead, and the report says which columns the
    bound clipped and how much (pooled over the branches, and the largest branch's)."""
    rows = _branches()
    stats = secure_feature_statistics(
        rows, bound=BOUND, noise_multiplier=0.0, feature_names=list("abcde")
    )
    clipped = stats.details["clipped"]
    every = np.concatenate(rows)
    beyond = {n for j, n in enumerate("abcde") if np.any(np.abs(every[:, j]) > BOUND)}
    assert {"c", "d"} <= set(clipped) == beyond  # N(-1.5, 2) and N(2, 3) reach beyond 4
    assert "a" not in clipped and "e" not in clipped  # N(0, 0.5), N(0.05, 0.1): never
    assert clipped["d"]["share"] == pytest.approx(float(np.mean(np.abs(every[:, 3]) > BOUND)))
    largest = max(float(np.mean(np.abs(r[:, 3]) > BOUND)) for r in rows)
    assert clipped["d"]["largest_branch_share"] == pytest.approx(largest)
    assert json.loads(json.dumps(stats.as_dict()))["clipped"] == clipped
    unnamed = secure_feature_statistics(rows, bound=BOUND, noise_multiplier=0.0)
    assert set(unnamed.details["clipped"]) == {f"column {'abcde'.index(n)}" for n in beyond}


# --- public statistics -----------------------------------------------------------------


def test_public_statistics_cost_nothing():
    x = np.random.default_rng(5).normal(2.0, 3.0, size=(500, F))
    x[:, 4] = 7.0  # a constant column is centred, not scaled
    stats = public_feature_statistics(x, origin="generator reference sample")
    np.testing.assert_allclose(stats.mean, x.mean(0))
    np.testing.assert_allclose(stats.std[:4], x.std(0)[:4])
    assert stats.std[4] == 1.0
    assert stats.source == "public" and not stats.private
    assert stats.accountant_step is None and stats.epsilon_at(1e-5) == 0.0
    assert stats.details == {"origin": "generator reference sample", "rows": 500}


def test_a_public_statistics_file_round_trips(tmp_path):
    names = [f"f{i}" for i in range(F)]
    stats = public_feature_statistics(np.random.default_rng(6).normal(size=(50, F)))
    path = tmp_path / "stats.json"
    table = stats.as_dict(names)
    table["features"]["unused"] = {"mean": 0.0, "std": 1.0}  # extra features are ignored
    path.write_text(json.dumps(table))
    loaded = load_public_statistics(path, list(reversed(names)))
    np.testing.assert_array_equal(loaded.mean, stats.mean[::-1])
    np.testing.assert_array_equal(loaded.std, stats.std[::-1])
    assert loaded.source == "public" and loaded.details["origin"] == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no feature statistics file"),
        ("{not json", "not valid JSON"),
        ('{"mean": [0]}', '"features"'),
        ('{"features": [1, 2]}', '"features"'),
    ],
)
def test_public_statistics_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "prior.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_public_statistics(path, ["a", "b"])
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (None, "no statistics for feature 'b'"),
        ("[0, 1]", "feature 'b' needs"),
        ('{"mean": 0}', "feature 'b' needs"),
        ('{"mean": NaN, "std": 1}', "'b': mean must be finite"),
        ('{"mean": 0, "std": Infinity}', "'b': std must be finite"),
        ('{"mean": 0, "std": 0}', "'b': std must be positive"),
        ('{"mean": 0, "std": -2}', "'b': std must be positive"),
        ('{"mean": "0", "std": 1}', "'b': mean must be a number"),
        ('{"mean": true, "std": 1}', "'b': mean must be a number"),
    ],
)
def test_public_statistics_feature_errors_name_the_file_and_the_feature(tmp_path, entry, message):
    path = tmp_path / "prior.json"
    table = '"a": {"mean": 0, "std": 1}' + ("" if entry is None else f', "b": {entry}')
    path.write_text('{"features": {' + table + "}}")
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_public_statistics(path, ["a", "b"])
    assert str(path) in str(caught.value)


def test_feature_statistics_refuse_inconsistent_values():
    with pytest.raises(ConfigurationError, match="positive"):
        FeatureStatistics(mean=np.zeros(2), std=np.array([1.0, 0.0]), source="public")
    with pytest.raises(ConfigurationError, match="source"):
        FeatureStatistics(mean=np.zeros(2), std=np.ones(2), source="pooled")
    with pytest.raises(ConfigurationError, match="one value per feature"):
        FeatureStatistics(mean=np.zeros(2), std=np.ones(3), source="public")
    with pytest.raises(ConfigurationError, match="bound"):
        FeatureStatistics(mean=np.zeros(2), std=np.ones(2), source="secure")
