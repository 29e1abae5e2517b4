"""The line that says why fewer rounds were released than planned, read off the run's own
round records: a run that attempted every planned round and had some abort did not stop
early (it read "stopped before the planned rounds: 2 rounds attempted (max_attempts)",
report review 2026-12-05); one that stopped before attempting them all says after how
many."""

from __future__ import annotations

from typing import Any

import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.report import privacy_lines
from secagg.apps.simulation.runner import SimulationResult

THRESHOLD = "2 of 3 masked inputs arrived, below the threshold of 3"


def _round(number: int, status: str, reason: str | None = None) -> dict[str, Any]:
    return {"round": number, "status": status, "reason": reason}


def _result(
    planned: int, rounds: list[dict[str, Any]], stopped: str, *, private: bool
) -> SimulationResult:
    """The few fields :func:`privacy_lines` reads, for a run whose rounds are ``rounds``."""
    config = SimulationConfig(
        branches=3, rounds=planned, **({} if private else {"mechanism": "off"})
    )
    released = [r["round"] for r in rounds if r["status"] == "complete"]
    federated = {
        "epsilon": 1.5 if private and released else None,
        "rounds_released": released,
        "rounds_completed": len(released),
        "rounds_aborted": len(rounds) - len(released),
        "untrained": not released,
    }
    return SimulationResult(
        config=config,
        branches=[],
        rounds=rounds,
        settings={"federated (secagg+)": federated},
        stopped=stopped,
    )


@pytest.mark.parametrize("private", [True, False])
def test_a_run_that_attempted_every_planned_round_says_so_and_why_one_aborted(
    private: bool,
) -> None:
    rounds = [_round(1, "complete"), _round(2, "aborted", THRESHOLD)]
    lines = privacy_lines(_result(2, rounds, "2 rounds attempted (max_attempts)", private=private))
    # the round's own reason, not the server's attempt limit
    assert lines[-1] == f"ran its 2 planned rounds; 1 aborted (round 2): {THRESHOLD}"
    assert "stopped" not in lines[-1] and "max_attempts" not in lines[-1]


def test_every_round_aborted_names_the_last_ones_reason() -> None:
    rounds = [_round(1, "aborted", "no quorum in share_keys"), _round(2, "aborted", THRESHOLD)]
    line = privacy_lines(_result(2, rounds, "2 rounds aborted in a row", private=True))[-1]
    assert line == f"ran its 2 planned rounds; 2 aborted (rounds 1-2): the last: {THRESHOLD}"


def test_one_planned_round_is_singular() -> None:
    rounds = [_round(1, "aborted", THRESHOLD)]
    line = privacy_lines(_result(1, rounds, "1 round aborted in a row", private=False))[-1]
    assert line.startswith("ran its 1 planned round; 1 aborted (round 1): ")


def test_a_run_stopped_at_the_budget_says_after_how_many_of_its_rounds() -> None:
    budget = "epsilon budget 3: releasing this round would bring epsilon to at least 3.2"
    rounds = [_round(1, "complete"), _round(2, "complete"), _round(3, "aborted", budget)]
    line = privacy_lines(_result(4, rounds, budget, private=True))[-1]
    assert line == (
        "stopped early, after 3 of 4 planned rounds (1 aborted: round 3), before crossing "
        f"the budget: {budget}"
    )


def test_a_run_stopped_without_a_quorum_says_after_how_many_of_its_rounds() -> None:
    quorum = "no quorum within 15 s: 1 of 3 clients connected, 2 needed"
    rounds = [_round(1, "complete")]
    line = privacy_lines(_result(3, rounds, quorum, private=False))[-1]
    assert line == f"stopped after 1 of 3 planned rounds: {quorum}"
