"""One round of the simulation's distributed plan, traced from the plan to its charge.

Why: the federation plan sizes every branch's noise share for the *expected* cohort
(``federation_plan.honest_shares``: q N less the assumed colluders and tolerated
dropouts), while a Poisson draw or dropouts leave a round with fewer. The epsilon the
run prints and the ledger signs must be that of the round that ran: the mechanism the
plan builds charges a round at the honest shares it kept (contributors less the
population's assumed colluders), whatever the plan counted on, so a round below the
plan is charged more, never the planned figure (DP plans review, 2026-12-06).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.federation_plan import (
    expected_cohort,
    federation_config,
    honest_shares,
)
from secagg.dp.distributed import assumed_colluders

_CONFIG = SimulationConfig(
    unit="client",
    mechanism="distributed",
    epsilon=3.0,
    branches=12,
    sample_rate=0.5,
    rounds=3,
    corrupt_fraction=0.25,
    tolerated_dropout=0.1,
)


@pytest.fixture(scope="module")
def mechanism(tmp_path_factory: pytest.TempPathFactory) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = federation_config(_CONFIG, 100, Path(tmp_path_factory.mktemp("state")))
        return plan.mechanism()


def test_the_plan_counts_the_expected_cohort() -> None:
    """6 expected of 12, 3 colluders of the population, no tolerated dropout of 6."""
    assert (expected_cohort(_CONFIG), honest_shares(_CONFIG)) == (6, 3)


@settings(max_examples=30, deadline=None)
@given(participants=st.integers(1, 12), dropped=st.integers(0, 12))
def test_a_round_is_charged_at_the_shares_it_kept(
    mechanism: object, participants: int, dropped: int
) -> None:
    contributors = max(0, participants - dropped)
    honest = max(0, contributors - assumed_colluders(participants, 0.25, 12))
    ddg = mechanism.ddg  # type: ignore[attr-defined]
    assert ddg.expected_clients == expected_cohort(_CONFIG)  # shares sized as planned
    if honest == 0:
        refusal = mechanism.reveal_refusal(  # type: ignore[attr-defined]
            contributors=contributors, participants=participants
        )
        assert refusal is not None and "no honest noise share" in refusal
        return
    charge = mechanism.charge_at_reveal(  # type: ignore[attr-defined]
        contributors=contributors, participants=participants
    )
    assert charge["noise_contributors"] == honest
    realised = ddg.epsilon(
        noise_contributors=honest, sample_rate=1.0, rounds=1, delta=_CONFIG.delta
    )
    assert charge["epsilon"] == realised
    planned = ddg.epsilon(
        noise_contributors=honest_shares(_CONFIG), sample_rate=1.0, rounds=1, delta=_CONFIG.delta
    )
    if honest < honest_shares(_CONFIG):
        assert charge["epsilon"] > planned  # fewer shares than planned: charged more
