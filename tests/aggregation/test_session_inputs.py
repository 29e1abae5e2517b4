"""The aggregation layer's entry points refuse wrongly typed inputs with a typed error
naming the input (hostile-input audit 2026-12-05).

Each case below failed before as a bare TypeError or AttributeError from deep inside a
backend (``'str' object has no attribute 'check_backend'``), or passed a wrong value
into a round; each is now a :class:`~secagg.errors.ConfigurationError` that names what
was wrong, raised before anything is built.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from secagg.aggregation import get_backend
from secagg.aggregation.masking import MaskingBackend, MaskingSpec
from secagg.errors import ConfigurationError


@pytest.mark.parametrize("backend", ["plain", "secagg", "secagg+"])
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("policy", "branch.toml"),  # a policy's file instead of the policy
        ("policy", {"max_clip": 1.0}),
        ("rounding", b"seed" * 4),  # a seed instead of a KeyedStream
        ("identity", "certificate.pem"),
    ],
)
def test_a_client_option_of_the_wrong_type_is_refused_naming_it(
    backend: str, option: str, value: object
) -> None:
    chosen = get_backend(backend)
    spec = chosen.plan(4, 2)
    with pytest.raises(ConfigurationError, match=rf"^{option} must be a "):
        chosen.client(spec, 0, **{option: value})  # type: ignore[arg-type]


def test_a_client_without_a_spec_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="round spec is needed"):
        get_backend("secagg+").client(b"spec bytes", 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dropout_fraction", "0.1"),
        ("corrupt_fraction", None),
        ("value_bound", "1.0"),
        ("scale", None),
        ("active", "no"),  # a non-empty string is true
        ("noise_share", "share"),
        ("identities", ["a", "b"]),
    ],
)
def test_a_masking_spec_field_of_the_wrong_type_is_refused_naming_it(
    field: str, value: object
) -> None:
    spec = MaskingSpec(4, 2)
    with pytest.raises(ConfigurationError, match=field):
        dataclasses.replace(spec, **{field: value})


def test_plan_refuses_round_options_of_the_wrong_type() -> None:
    with pytest.raises(ConfigurationError, match="noise_share"):
        get_backend("secagg+").plan(4, 2, noise_share="share")
    # a string of two characters looked like two identities
    with pytest.raises(ConfigurationError, match="identities"):
        MaskingBackend(active=True).plan(2, 2, identities="ab")  # type: ignore[arg-type]


def test_well_typed_options_still_build_a_client() -> None:
    chosen = get_backend("secagg+")
    spec = dataclasses.replace(chosen.plan(4, 2), dropout_fraction=np.float64(0.1))
    client = chosen.client(spec, 0, policy=None, rounding=None)
    assert client.set_input(np.zeros(2)) == []


@pytest.mark.parametrize(
    "vanish",
    [
        {"0": 1},  # TypeError in a comparison
        {0: "1"},
        [1, 2],  # a list of clients: dict conversion TypeError
        {True: 0},  # silenced client 1
        {0: -1},  # silenced client 0 before its first payload: not what -1 says
        {0: 1.5},
        {0: None},  # ran with nobody silenced
        {9: 0},  # outside the round
    ],
)
def test_run_local_round_refuses_a_vanish_schedule_it_cannot_follow(vanish: object) -> None:
    from secagg.aggregation import run_local_round

    with pytest.raises(ConfigurationError, match="vanish"):
        run_local_round(get_backend("secagg+"), np.zeros((4, 2)), vanish=vanish)  # type: ignore[arg-type]


def test_run_local_round_follows_a_well_typed_schedule() -> None:
    from secagg.aggregation import run_local_round

    _, report = run_local_round(
        get_backend("secagg", dropout_fraction=0.3), np.zeros((6, 2)), vanish={np.int64(2): 0}
    )
    assert report.dropped == (2,)


@pytest.mark.parametrize("active", ["no", 1, None])
def test_the_masking_variant_must_be_named_by_a_bool(active: object) -> None:
    """``MaskingBackend(active="no")`` ran the active variant (``bool("no")``)."""
    with pytest.raises(ConfigurationError, match="active must be True or False"):
        MaskingBackend(active=active)  # type: ignore[arg-type]
