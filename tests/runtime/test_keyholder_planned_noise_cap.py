"""A key holder holding the federation's config admits the noise the federation plans.

Regression guard for the key holder's cap on the noise a server asks for (its default:
10 x the design point's clients x value bound, tests/aggregation/
test_keyholder_request_caps.py): a federation of 3 branches planning z = 40 at clip 1
asks every decryption for std 40, above that default (30), and its own key holder
refused every round. ``secagg keyholder --config`` (``key_holder_service``) now takes
the federation's planned std as its cap when the table sets none and the default is
below it; a cap the table sets is its operator's and stays, unless it is below the
plan: then the key holder stops at start, naming the key, instead of refusing every round.
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("tenseal")

from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import bound_to_federation
from secagg.runtime.launch import key_holder_service


def _config(noise_multiplier: float) -> FederationConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's privacy-cost warnings
        return FederationConfig.from_dict(
            {
                "federation": {"name": "f", "clients": ["a", "b", "c"], "dimension": 8},
                "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "kh"},
                "dp": {"clip": 1.0, "noise_multiplier": noise_multiplier, "delta": 1e-5},
            }
        )


def test_the_federations_planned_noise_is_admitted_by_its_key_holder() -> None:
    config = _config(40.0)
    session = key_holder_service(config, None, {}).session  # type: ignore[arg-type]
    params = config.aggregation_backend().design_point().parameters()  # type: ignore[attr-defined]
    session.policy.check_noise_request(params, 40.0)  # type: ignore[attr-defined]
    assert session.policy.noise_cap(params) == 40.0  # type: ignore[attr-defined]


def test_a_plan_within_the_default_or_a_cap_of_the_table_is_left_as_it_is() -> None:
    assert "max_noise_stddev" not in bound_to_federation(_config(1.0), {})
    assert (
        bound_to_federation(_config(40.0), {"max_noise_stddev": 45.0})["max_noise_stddev"] == 45.0
    )
    with pytest.raises(ConfigurationError, match=r"^\[key_holder\] max_noise_stddev: 35 is below"):
        bound_to_federation(_config(40.0), {"max_noise_stddev": 35.0})
    own = {"noise_stddev": 50.0, "max_decryptions": 9}
    assert bound_to_federation(_config(40.0), own)["max_noise_stddev"] == 50.0
