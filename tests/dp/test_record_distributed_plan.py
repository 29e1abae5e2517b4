"""Record-level distributed DP states its plan's cost before any data moves, as the
client-level mechanisms do, and that plan does not understate a run within the
tolerated dropouts.

Why: :meth:`~secagg.dp.config.DPSettings.plan` returned None for every record-level
config, so ``secagg server`` with ``unit = "record"``, ``mechanism = "distributed"``
said nothing of its epsilon. Its rounds are charged at the noise shares they kept,
exactly as client-level distributed rounds are: with 2 of 8 branches dropping in each
of 3 rounds (backend.dropout_fraction = 0.25 tolerates it) the ledger signs the worst
figure, above the one every share present gives, and nobody had been told either.
The warning now states both, each rounded up (the side a reader may rely on).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from secagg.dp.config import DPSettings, PrivacyCostWarning
from secagg.dp.release import mechanism_for

BRANCHES, DIMENSION, ROUNDS, DELTA = 8, 16, 3, 1e-5
SETTINGS = DPSettings(
    unit="record",
    mechanism="distributed",
    clip=1.0,
    record_clip=0.01,
    noise_multiplier=1.0,
    delta=DELTA,
)


def _plan_warnings(settings: DPSettings, dropout_fraction: float) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings.plan(
            num_clients=BRANCHES,
            sample_rate=1.0,
            rounds=ROUNDS,
            dimension=DIMENSION,
            bits=32,
            corrupt_fraction=0.0,
            dropout_fraction=dropout_fraction,
        )
    return [str(w.message) for w in caught if issubclass(w.category, PrivacyCostWarning)]


def _run_epsilon(contributors: int) -> float:
    """The epsilon the server's own mechanism signs after ROUNDS rounds of
    ``contributors`` branches each."""
    mechanism = mechanism_for(
        SETTINGS,
        dimension=DIMENSION,
        bits=32,
        sample_rate=1.0,
        expected_clients=BRANCHES,
        corrupt_fraction=0.0,
        seed=b"plan" * 4,
        population=BRANCHES,
    )
    epsilon = None
    for _ in range(ROUNDS):
        mechanism.round_options(contributors)
        mechanism.begin_round(tuple(f"b{i}" for i in range(contributors)))
        epsilon = mechanism.release(
            np.zeros(DIMENSION), contributors=contributors, participants=contributors,
            noise_added=0.0,
        ).epsilon  # fmt: skip
    assert epsilon is not None
    return epsilon


def test_the_plan_states_the_epsilon_of_a_run_that_loses_the_tolerated_dropouts() -> None:
    (text,) = _plan_warnings(SETTINGS, dropout_fraction=0.25)
    found = re.search(
        r"^record-level distributed DP with 8 expected clients per round: the plan spends "
        r"epsilon = ([\d.]+) \(delta = 1e-05\) per protected unit over 3 rounds with every "
        r"noise share present, and up to epsilon = ([\d.]+) if each round loses up to 2 of 8 "
        r"expected clients",
        text,
    )
    assert found is not None, text
    every_share, worst = float(found.group(1)), float(found.group(2))
    full, lossy = _run_epsilon(BRANCHES), _run_epsilon(BRANCHES - 2)
    assert full <= every_share  # rounded up, never below what the mechanism charges
    assert full < lossy <= worst  # the run that loses 2 a round spends more: stated too


def test_no_tolerated_dropout_no_warning_and_dpsgd_has_no_server_plan() -> None:
    """The warning is about what the plan would leave unsaid: with no dropout tolerated,
    every round keeps its planned shares and the rows sign the plan's figure. DP-SGD in
    the branches has no server plan at all (each branch accounts itself)."""
    assert _plan_warnings(SETTINGS, dropout_fraction=0.0) == []
    dpsgd = DPSettings(unit="record", mechanism="dpsgd", clip=1.0, delta=DELTA)
    assert _plan_warnings(dpsgd, dropout_fraction=0.25) == []


def test_the_plans_figures_are_the_runtimes() -> None:
    """The plan's mechanism is the runtime's: same sensitivity (record_clip) and vector
    bound (dp.clip), so its every-share epsilon is the rows' own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyCostWarning)  # the first test's subject
        plan = SETTINGS.plan(
            num_clients=BRANCHES, sample_rate=1.0, rounds=ROUNDS, dimension=DIMENSION,
            bits=32, dropout_fraction=0.25,
        )  # fmt: skip
    assert plan is not None
    assert plan.planned_epsilon() == pytest.approx(_run_epsilon(BRANCHES), rel=1e-12)
