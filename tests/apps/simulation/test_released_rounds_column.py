"""Record-level distributed DP: the privacy table's "rounds" column, and summary.json's
``privacy_parameters.server.rounds``, are the rounds the accountant charged (the released
ones), with the planned count beside them. They were the planned count: `--unit record
--mechanism distributed --branches 3 --dropout 0.45 --rounds 3` printed "rounds 3"
beside ε = 1.608, one released round's (hostile review, 2026-12-06)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.privacy import privacy_parameters
from secagg.apps.simulation.report import _noise_once_rows

CONFIG = SimulationConfig(branches=3, rounds=3, unit="record", mechanism="distributed")


def _server(statuses: list[str], shares: list[int] | None) -> dict[str, Any]:
    dp = SimpleNamespace(
        noise_multiplier=4.539, record_clip=10 / 858, delta=1e-5, epsilon_budget=3.0
    )
    run = SimpleNamespace(
        rounds=[{"round": i, "status": status} for i, status in enumerate(statuses, 1)],
        server_dp=dp,
        noise_shares=shares,
    )
    return privacy_parameters(CONFIG, run, [])["server"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("statuses", "shares", "released"),
    [
        (["aborted", "complete", "aborted"], [1], 1),  # the run above
        (["complete", "complete", "complete"], [1, 1, 1], 3),
        (["complete", "aborted", "complete"], None, 2),  # no accountant's shares: the log
    ],
)
def test_rounds_are_the_released_ones_with_the_planned_beside(
    statuses: list[str], shares: list[int] | None, released: int
) -> None:
    server = _server(statuses, shares)
    assert server["rounds"] == released
    assert server["rounds_planned"] == 3


def test_the_table_says_released_of_planned_when_fewer_were_released() -> None:
    row = _noise_once_rows(_server(["aborted", "complete", "aborted"], [1]))[-1]
    assert "| 1 released of 3 planned |" in row
    full = _noise_once_rows(_server(["complete"] * 3, [1, 1, 1]))[-1]
    assert "| 3 |" in full and "planned" not in full


def test_a_folder_from_before_reads_as_it_was_recorded() -> None:
    server = _server(["complete"] * 3, [1, 1, 1])
    del server["rounds_planned"]
    assert "| 3 |" in _noise_once_rows(server)[-1]
