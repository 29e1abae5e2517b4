"""The masking report's threat model names the population its colluders were counted
over (second review of colluders, 2026-12-07).

A round of 20 drawn from a federation of 100 at 5 % is sized for the population's 5
colluders, every one of whom the server may put in it; the report said "5.0% clients
colluding with it", which reads as 1 of the round's 20. It now says the population and
the colluders in numbers; a round that is its own population states its own count.
"""

from __future__ import annotations

import numpy as np

import secagg
from secagg.aggregation.masking import MaskingBackend


def test_a_sampled_round_s_threat_model_names_its_population_and_colluders() -> None:
    backend = MaskingBackend(max_clients=100)
    _, report = secagg.aggregate(np.zeros((20, 2)), backend=backend)
    assert "5% clients colluding with it" in report.threat_model
    assert "of the population of 100 clients the round was drawn from" in report.threat_model
    assert "5 colluders" in report.threat_model


def test_a_round_that_is_its_own_population_states_its_own_colluders() -> None:
    _, report = secagg.aggregate(np.zeros((20, 2)), backend=MaskingBackend())
    assert "population" not in report.threat_model
    # 5 % of 20 is 1, the floor of 2 colluders is what the round is sized for
    assert "2 colluders of its 20 clients" in report.threat_model
