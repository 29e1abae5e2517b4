"""A round's public parameters (RoundConfig) and the roles built from them refuse values
of the wrong type by name, before any state exists (hostile-user audit 2026-12-04)."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.protocol import Client, RoundConfig, Server
from secagg.protocol.messages import GraphKind

_GOOD = dict(num_clients=5, vector_length=3, bits=32, graph=GraphKind.HARARY, degree=2, threshold=2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_clients", "5"),  # TypeError in a comparison
        ("num_clients", None),
        ("num_clients", 5.0),  # "a Harary graph needs an even degree k in [2, 4.0]"
        ("vector_length", 1.5),  # accepted
        ("bits", 32.0),  # accepted: a float shift width fails later
        ("threshold", 2.5),  # accepted
        ("threshold", True),  # accepted as 1
        ("degree", 2.0),
        ("graph", "harary"),  # accepted as a str where the messages encode a GraphKind
        ("active", "yes"),  # accepted: truthy, though the variant is a yes/no choice
    ],
)
def test_a_round_config_field_of_the_wrong_type_is_refused_by_name(
    field: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        RoundConfig(**(_GOOD | {field: value}))  # type: ignore[arg-type]


def test_a_server_needs_a_round_config() -> None:
    # before: AttributeError: 'str' object has no attribute 'active'
    with pytest.raises(ConfigurationError, match="RoundConfig"):
        Server("secagg+")  # type: ignore[arg-type]


def test_a_server_round_id_must_be_bytes() -> None:
    # before: a 16-character str was taken as the round id
    with pytest.raises(ConfigurationError, match="round id"):
        Server(RoundConfig(**_GOOD), round_id="a" * 16)  # type: ignore[arg-type]


@pytest.mark.parametrize("party", [1.5, True, "a", None])
def test_a_client_party_must_be_an_integer(party: object) -> None:
    # before: 1.5 and True were taken as party ids, "a" and None raised TypeError
    with pytest.raises(ConfigurationError, match="party"):
        Client(party)  # type: ignore[arg-type]


def test_a_client_takes_a_numpy_integer_party() -> None:
    assert Client(np.int64(3)).party == 3


def test_a_ragged_input_is_refused_as_configuration() -> None:
    # before: numpy's "inhomogeneous shape" ValueError
    with pytest.raises(ConfigurationError, match="input"):
        Client(0).set_input([[1], [1, 2]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("num_clients", "5"),
        ("num_clients", 5.0),
        ("k", "4"),
        ("k", True),
        ("threshold", "3"),
        ("threshold", 2.5),
        ("min_colluders", "2"),
        ("dropout_fraction", None),
        ("corrupt_fraction", "0.05"),
    ],
)
def test_create_refuses_a_wrongly_typed_argument_naming_it(argument, value) -> None:
    """``RoundConfig.create(num_clients="5")`` or ``k="4"`` raised a bare TypeError from
    a comparison (hostile-input audit 2026-12-05); each now names its argument."""
    args = {"num_clients": 10, "vector_length": 4, argument: value}
    with pytest.raises(ConfigurationError, match=rf"^{argument} must be "):
        RoundConfig.create(**args)
