"""A federation's sampled masking rounds are planned for its population's colluders.

Review of colluders (2026-12-07): the server planned a round drawn from its clients for
the round's own colluders, so a branch holding ``expected_clients`` (the federation) and
counting the federation's colluders refused honest rounds, while one counting the round's
took a round a hostile server packed with every colluder. The federation's backend now
takes the federation's size (``max_clients``, as CKKS does), every smaller round's spec
names it, and a sampling that draws rounds too small for the federation's colluders is
refused at load, in one line naming the numbers, not round after round.
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.aggregation.masking import MaskingSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig


def _config(clients: int, count: int, corrupt: float) -> dict[str, Any]:
    return {
        "federation": {
            "name": "fraud",
            "clients": [f"b{i}" for i in range(clients)],
            "dimension": 4,
        },
        "sampling": {"kind": "fixed", "count": count},
        "backend": {"name": "secagg+", "corrupt_fraction": corrupt},
    }


def test_a_round_of_20_from_100_names_its_population_and_a_branch_expecting_100_takes_it() -> None:
    config = FederationConfig.from_dict(_config(100, 20, 0.1))
    spec = config.aggregation_backend().plan(20, 4)
    assert isinstance(spec, MaskingSpec) and spec.population == 100
    assert spec.round_config().colluders == 10
    # the branch holding the federation's own fractions and size admits the plan (before:
    # planned for the round's 2 colluders, which a branch counting the 10 refuses)
    spec.check_policy(BranchPolicy(corrupt_fraction=0.1, expected_clients=100))


def test_a_sampling_too_small_for_the_population_s_colluders_is_refused_at_load() -> None:
    """25 % of 100 clients: 25 colluders may fill a round of 20 but one."""
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(_config(100, 20, 0.25))
    text = str(refused.value)
    assert "no round of 20 clients drawn from the 100 ([sampling] kind = 'fixed', count = 20)" in (
        text
    ), text
    assert "25 colluders" in text and "\n" not in text


def test_a_poisson_rate_too_small_for_a_round_names_the_sampling_rate() -> None:
    """The config fuzz's find (2026-12-07): rate 0.5 of 3 clients under active SecAgg+
    draws rounds of 2, which no private threshold fits; the refusal named "(sampling)"
    and the [backend] keys, not the [sampling] rate that was the mistake."""
    config = {
        "federation": {"name": "rec", "clients": ["a", "b", "c"], "dimension": 8},
        "sampling": {"kind": "poisson", "rate": 0.5},
        "backend": {"name": "secagg+", "active": True},
    }
    with pytest.raises(ConfigurationError) as refused:
        FederationConfig.from_dict(config)
    text = str(refused.value)
    assert "([sampling] kind = 'poisson', rate = 0.5)" in text, text
    assert "\n" not in text
