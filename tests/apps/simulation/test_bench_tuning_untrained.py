"""The tuning-validation check (benchmarks/bench_tuning_validation.py) and the tuned
fits' epoch-0 candidate: a centralized fit that ships its start untrained is one of the
check's candidates, and its regret is taken against a best that includes it.

Why: the check's table held only trained candidates, so a fit that chose the prior
untrained was not ``in_table`` and its regret was NaN (every trained candidate
diverged) or could fall below 0 (the start beat them all on the test set)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _benchmarks import benchmark_script
from _tuning_worlds import CONFIG, DIVERGING, LARGE, start_vector, world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.simulation import tuning


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**16), validation=st.sampled_from(["row", "customer", "world"]))
def test_an_untrained_choice_is_in_the_table_and_its_regret_is_zero(
    monkeypatch: pytest.MonkeyPatch, seed: int, validation: str
) -> None:
    """Every trained candidate diverges (as in test_tuning_untrained_start.py): the fit
    ships the prior untrained, the best candidate on the test set."""
    monkeypatch.setattr(tuning, "TUNING_LEARNING_RATES", DIVERGING)
    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    rows = world(seed, scale=LARGE)
    starts = {"scratch": None, "prior": start_vector(rows["direction"], 3.0)}
    fit = tuning.fit_tuned(
        CONFIG,
        rows["x"],
        rows["y"],
        starts,
        "centralized",
        customers=rows["customers"] if validation == "customer" else None,
        validation=validation,
        world=(rows["x_world"], rows["y_world"]) if validation == "world" else None,
    )
    assert (fit.start, fit.learning_rate, fit.epochs) == ("prior", None, 0)
    x_test, y_test = rows["x_world"], rows["y_world"]  # a test set of the same rule
    with benchmark_script("bench_tuning_validation") as probe:
        table = probe.candidate_table(
            CONFIG, rows["x"], rows["y"], starts, "centralized", x_test, y_test
        )
        result = probe._regrets({validation: fit}, table, x_test, y_test)[validation]
    assert result["regret"] == 0.0  # NaN before: every candidate in the table diverged
    assert math.isfinite(result["best_test_auprc"])
    assert result["in_table"] is True
    assert table["prior", None, 0] == result["test_auprc"]
    assert not any(epochs == 0 for name, _, epochs in table if name == "scratch")
    assert result["chosen"] == "the prior, untrained"


def test_a_trained_choice_keeps_its_regret_against_every_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A prior ranking the rows backwards is trained: still in the table, regret >= 0,
    the untrained prior one candidate among the rest (its entry scores it as it is)."""
    from secagg.apps.models.metrics import average_precision

    monkeypatch.setattr(tuning, "TUNING_MAX_EPOCHS", 2)
    rows = world(7)
    backwards = start_vector(rows["direction"], -3.0)
    starts = {"scratch": None, "prior": backwards}
    fit = tuning.fit_tuned(
        CONFIG, rows["x"], rows["y"], starts, "centralized", customers=None, validation="row"
    )
    assert fit.epochs >= 1
    x_test, y_test = rows["x_world"], rows["y_world"]
    with benchmark_script("bench_tuning_validation") as probe:
        table = probe.candidate_table(
            CONFIG, rows["x"], rows["y"], starts, "centralized", x_test, y_test
        )
        result = probe._regrets({"row": fit}, table, x_test, y_test)["row"]
    assert result["in_table"] is True and result["regret"] >= 0
    assert ("prior", None, 0) in table
    as_it_is = x_test.astype(np.float64) @ backwards[:-1].astype(np.float64) + backwards[-1]
    assert math.isclose(table["prior", None, 0], average_precision(y_test, as_it_is))
    assert len(table) == 1 + 2 * len(tuning.TUNING_LEARNING_RATES) * 2
