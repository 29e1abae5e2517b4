"""An adaptive round's count sensitivity is never taken below the 1/2 a client moves it by.

A client reports ``1[unclipped] - 1/2``, so the noised count has sensitivity 1/2 in every
round the engine runs. The running accountant took any positive ``count_sensitivity``,
from a caller or from a ledger's history: a history rewritten to 0.01 was recomputed by
``PrivacyAccountant.from_history`` at epsilon 5.30 where its rounds spent 5.57, so an
auditor re-checking a flattering claim from the ledger found it consistent.
"""

from __future__ import annotations

import copy

import pytest

from secagg.dp.accounting import DEFAULT_COUNT_SENSITIVITY, PrivacyAccountant
from secagg.errors import ConfigurationError


def _two_adaptive_rounds() -> PrivacyAccountant:
    accountant = PrivacyAccountant(1e-5, "pld", unit="client")
    for _ in range(2):
        accountant.step(1.2, 1.0, count_noise_stddev=2.0)
    return accountant


@pytest.mark.parametrize("sensitivity", [0.01, 0.25, 0.4999999])
def test_a_history_with_a_smaller_count_sensitivity_is_refused(sensitivity: float) -> None:
    history = copy.deepcopy(_two_adaptive_rounds().history)
    history[0]["count_sensitivity"] = sensitivity
    with pytest.raises(ConfigurationError, match=r"count_sensitivity must be at least 0\.5"):
        PrivacyAccountant.from_history(history, 1e-5)


def test_a_round_charged_with_a_smaller_count_sensitivity_is_refused_and_changes_nothing() -> None:
    accountant = _two_adaptive_rounds()
    before = (accountant.rounds, accountant.epsilon())
    with pytest.raises(ConfigurationError, match="count_sensitivity"):
        accountant.step(1.2, 1.0, count_noise_stddev=2.0, count_sensitivity=0.01)
    assert (accountant.rounds, accountant.epsilon()) == before


def test_the_recorded_history_replays_to_the_same_epsilon() -> None:
    accountant = _two_adaptive_rounds()
    assert accountant.history[0]["count_sensitivity"] == DEFAULT_COUNT_SENSITIVITY
    replayed = PrivacyAccountant.from_history(accountant.history, 1e-5)
    assert replayed.epsilon() == accountant.epsilon()


def test_a_larger_count_sensitivity_charges_more_and_is_taken() -> None:
    history = copy.deepcopy(_two_adaptive_rounds().history)
    history[0]["count_sensitivity"] = 1.0  # replace-one adjacency's, say
    assert PrivacyAccountant.from_history(history, 1e-5).epsilon() > (
        _two_adaptive_rounds().epsilon()
    )
