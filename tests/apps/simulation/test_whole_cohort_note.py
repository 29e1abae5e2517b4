"""The note that explains aborted rounds when the masking threshold is every branch."""

from __future__ import annotations

import dataclasses

import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.runner import whole_cohort_notes
from secagg.protocol.config import RoundConfig

ABORTED = {"status": "aborted", "reason": "below the threshold of 3"}
COMPLETE = {"status": "complete", "reason": None}


def _config(**changes: object) -> SimulationConfig:
    return dataclasses.replace(SimulationConfig(), **changes)


def test_three_branches_are_told_any_dropout_aborts_and_how_often() -> None:
    config = _config(branches=3, dropout=0.05)
    (note,) = whole_cohort_notes(config, [ABORTED, COMPLETE, COMPLETE])
    assert "is all 3 branches" in note
    assert "any dropout aborts" in note
    assert "up to 14.3 % of rounds abort" in note  # 1 - 0.95**3 = 0.1426, rounded up
    assert "here 1 of 3" in note


@pytest.mark.parametrize("branches", range(2, 12))
@pytest.mark.parametrize("backend", ["secagg", "secagg+"])
def test_the_note_appears_exactly_when_the_threshold_is_the_cohort(
    branches: int, backend: str
) -> None:
    config = _config(branches=branches, backend=backend, dropout=0.1)
    graph = "complete" if backend == "secagg" else "harary"
    threshold = RoundConfig.create(
        branches,
        1,
        graph=graph,
        dropout_fraction=config.tolerated_dropout,
        corrupt_fraction=config.corrupt_fraction,
    ).threshold
    notes = whole_cohort_notes(config, [COMPLETE])
    assert bool(notes) == (threshold == branches)


@pytest.mark.parametrize(
    "changes",
    [
        {"dropout": 0.0},  # nobody drops: nothing to explain
        {"backend": "plain"},  # no threshold
        {"backend": "ckks"},
        {"sample_rate": 0.7},  # cohorts vary: the full-cohort threshold is not the rule
    ],
)
def test_no_note_where_it_would_not_hold(changes: dict[str, object]) -> None:
    assert whole_cohort_notes(_config(branches=3, **changes), [ABORTED]) == []


def test_the_default_eight_branches_get_no_note() -> None:
    assert whole_cohort_notes(SimulationConfig(), [ABORTED]) == []
