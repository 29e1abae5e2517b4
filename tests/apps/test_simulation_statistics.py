"""The simulator's feature statistics inside the privacy story (DP review): standardised
with the pooled rows' mean and std before, outside every epsilon; now a noised secure sum
charged to every branch, or public data, or nothing."""

from __future__ import annotations

import dataclasses

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


# --- raw-scale columns (simulate audit, 2026-12-06) -------------------------------------


def test_a_raw_scale_csv_is_refused_naming_its_columns_and_the_fixes(tmp_path) -> None:
    """The Kaggle layout read as a generic CSV (``--data csv --label Class``): Time in
    seconds and Amount in euros were clipped to +-5 value by value, the model trained on
    garbage (AUPRC 0.157; 1.000 with ``--data creditcard``, which scales them), and
    nothing said so. Refused before any training, naming the columns, the shares the
    branches would clip and what to do; the V columns, within the bound, are not named."""
    from _fraud_csv import write_creditcard_layout

    path = write_creditcard_layout(tmp_path / "creditcard.csv")
    config = SimulationConfig(
        branches=3, source="csv", path=str(path), label="Class", partition="iid"
    )
    with pytest.raises(ConfigurationError) as refused:
        load_data(config)
    message = str(refused.value)
    assert "\n" not in message
    assert "'Time' (100 % of its values on 3 of 3 branches)" in message
    assert "'Amount' (" in message and "'V1'" not in message
    assert "±5 (data.stats_bound)" in message
    assert "scale" in message and "data.standardize = 'public'" in message
    assert "data.source = 'creditcard'" in message  # the layout it has: it scales them
    # the same rows through the credit-card loader: Time and Amount scaled, accepted
    branches, stats = load_data(dataclasses.replace(config, source="creditcard", label=None))
    assert stats.source == "secure" and len(branches) == 3
    assert stats.details["clipped"]["log_amount"]["largest_branch_share"] < 0.5
    # with public statistics or none, nothing is clipped: nothing to refuse
    raw, none = load_data(config.with_changes(standardize="none"))
    assert none is None and raw[0].x_train.max() > 1000


def test_a_column_the_release_clips_a_quarter_of_is_a_note(tmp_path) -> None:
    """Below the refusal, a column whose values the bound clips in a large share gets
    statistics biased toward zero (its std too small): the run says so beside its
    results, naming the column; a few clipped values in a tail are no note."""
    from secagg.apps.simulation.runner import _statistics_summary, statistics_notes

    rng = np.random.default_rng(4)
    rows = 900
    label = (rng.random(rows) < 0.1).astype(int)
    wide = rng.normal(2.0, 5.0, rows)  # about 35 % beyond +-5: biased, not garbage
    tail = rng.standard_t(3, rows)  # about 1 % beyond: no note
    lines = ["wide,tail,is_fraud"] + [
        f"{w:.4f},{t:.4f},{y}" for w, t, y in zip(wide, tail, label, strict=True)
    ]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    config = SimulationConfig(
        branches=3, source="csv", path=str(path), label="is_fraud", partition="iid"
    )
    _, stats = load_data(config)
    summary = _statistics_summary(config, stats)
    assert set(summary["clipped"]) == {"wide", "tail"}
    (note,) = statistics_notes(config, summary)
    assert note.startswith("the secure feature statistics clipped ")
    assert "'wide'" in note and "'tail'" not in note and "data.stats_bound" in note
    assert statistics_notes(config, None) == []


def test_standardize_none_names_the_columns_far_above_the_others(tmp_path) -> None:
    """``standardize = "none"`` with the Kaggle layout read as a generic CSV trained on
    Time in seconds and Amount in euros beside unit-scale components and said nothing
    (federated AUPRC 0.106 at a 10 % fraud rate, chance; 0.948 with the same rows scaled,
    simulate audit 2026-12-06). The console and report.md now carry a note naming the
    columns and their magnitudes; the V columns and the synthetic world are not named."""
    from _fraud_csv import write_creditcard_layout
    from click.testing import CliRunner

    from secagg.apps.cli import main

    path = write_creditcard_layout(tmp_path / "creditcard.csv", rows=600)
    (tmp_path / "none.toml").write_text('[data]\nstandardize = "none"\n')
    out = tmp_path / "run"
    args = ["simulate", "--config", str(tmp_path / "none.toml"), "--data", "csv"]
    args += ["--path", str(path), "--label", "Class", "--branches", "2", "--rounds", "1"]
    args += ["--partition", "iid", "--model", "logistic", "--mechanism", "off"]
    args += ["--backend", "plain", "--local-epochs", "1", "--quiet", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    console = " ".join(result.output.split())
    assert "note: UNSCALED: data.standardize = 'none' trains on the raw values" in console
    assert "'Time' (|values| of order 1e+5)" in console
    assert "'Amount' (|values| of order 1e+3)" in console
    assert "'V1'" not in console
    report = (out / "report.md").read_text()
    assert "'Time' (|values| of order 1e+5)" in report and "'V1'" not in report
    # the synthetic world's columns lie within one order of each other: no note
    from secagg.apps.simulation.runner import _load_data, unscaled_notes

    synthetic = SMALL.with_changes(standardize="none", train_rows=2_000)
    assert unscaled_notes(synthetic, *_load_data(synthetic)[::2]) == []
