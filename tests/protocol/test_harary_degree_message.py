"""A Harary degree's refusal states the rule RoundConfig keeps: an even k below
``clients - 1``, or ``clients - 1`` itself (the complete graph).

Why: for 10 clients it read "needs an even degree k in [2, 9]": 9 is odd, yet k = 9 runs
(``RoundConfig.create`` turns it into the complete graph) while k = 7 is refused, so
the message named a bound its own "even" excluded (review, 2026-12-06).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigurationError
from secagg.protocol import RoundConfig
from secagg.protocol.messages import GraphKind


def _refusal(num_clients: int, degree: int) -> str | None:
    """RoundConfig's refusal of a Harary graph of ``degree``, or None if it accepts it."""
    try:
        RoundConfig(num_clients, 1, 32, GraphKind.HARARY, degree, 1)
    except ConfigurationError as exc:
        return str(exc)
    return None


def _accepted(num_clients: int, degree: int) -> bool:
    """Whether some graph of the round runs ``degree``: a Harary one, or the complete."""
    for kind in (GraphKind.HARARY, GraphKind.COMPLETE):
        try:
            RoundConfig(num_clients, 1, 32, kind, degree, 1)
        except ConfigurationError:
            continue
        return True
    return False


def _described(message: str, degree: int) -> bool:
    """Whether the message's rule admits ``degree``."""
    ranged = re.search(r"an even degree k in \[2, (\d+)\]", message)
    if ranged and 2 <= degree <= int(ranged.group(1)) and degree % 2 == 0:
        return True
    if re.search(r"an even degree k = 2\b", message) and degree == 2:
        return True
    complete = re.search(r"k = (\d+) = clients - 1", message)
    return bool(complete) and degree == int(complete.group(1))


def test_ten_clients_name_eight_and_the_complete_graph() -> None:
    assert _refusal(10, 7) == (
        "a Harary graph of 10 clients needs an even degree k in [2, 8] or "
        "k = 9 = clients - 1 (the complete graph), got 7"
    )


@pytest.mark.parametrize(
    ("num_clients", "rule"),
    [
        (2, "needs k = 1 = clients - 1 (the complete graph), got 3"),
        (3, "needs k = 2 = clients - 1 (the complete graph), got 3"),
        (5, "needs an even degree k = 2 or k = 4 = clients - 1 (the complete graph), got 3"),
    ],
)
def test_small_rounds_name_what_is_left(num_clients: int, rule: str) -> None:
    assert _refusal(num_clients, 3) == f"a Harary graph of {num_clients} clients {rule}"


@settings(max_examples=40, deadline=None)
@given(num_clients=st.integers(2, 60), degree=st.integers(-1, 62))
def test_the_message_admits_exactly_the_degrees_that_run(num_clients: int, degree: int) -> None:
    """Every degree from -1 to n + 1 that the refusal's rule admits runs (as a Harary or
    the complete graph), and every one it leaves out is refused by both."""
    message = _refusal(num_clients, degree)
    if message is None or "Harary" not in message:
        return
    for candidate in range(-1, num_clients + 2):
        assert _described(message, candidate) == _accepted(num_clients, candidate), (
            message,
            candidate,
        )
