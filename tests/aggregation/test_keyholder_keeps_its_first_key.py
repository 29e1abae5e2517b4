"""A key holder without a pinned key keeps the key it made at its first key request.

Before, a key holder without a key file made a fresh key pair whenever the server's key
request carried another design point than its key's: a server alternating two design
points had a key generated (and a new context published for the branches to trust) on
every key request, at the server's pace. A key cannot follow a design point (its ring
and modulus chain are the design point's), so a request for another is refused now,
before any key work, with nothing made or opened; the first design point is answered
under the same key as before.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderRefusal

D = 8


def _key_request(clients: int, value_bound: float = 1.0) -> bytes:
    backend = CKKSBackend(value_bound=value_bound, max_clients=clients)
    (request,) = backend.server(backend.plan(2, D)).start()
    return request.payload


def _counting(helper: KeyHolderSession) -> list[Any]:
    """The keys ``helper`` makes, from now on."""
    made: list[Any] = []
    make = helper._make

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(make(*args, **kwargs))
        return made[-1]

    helper._make = counted  # type: ignore[method-assign]
    return made


@pytest.mark.parametrize(
    ("clients", "value_bound"),
    [(4, 1.0), (2, 1.0), (3, 0.5)],  # more clients, fewer, a smaller bound: all another key
)
def test_a_design_point_change_after_the_first_key_is_refused(
    clients: int, value_bound: float
) -> None:
    helper = CKKSBackend().helper()
    made = _counting(helper)
    helper.handle(_key_request(3), round_number=1)
    first = helper.fingerprint
    with pytest.raises(KeyHolderRefusal, match="made its key for 3 clients") as caught:
        helper.handle(_key_request(clients, value_bound), round_number=2)
    assert "\n" not in str(caught.value)
    assert len(made) == 1 and helper.fingerprint == first
    assert helper.opened == (1, D)  # the refused round was not opened
    helper.handle(_key_request(3), round_number=2)  # its own design point: the same key
    assert len(made) == 1 and helper.fingerprint == first and helper.opened == (2, D)


def test_a_server_alternating_design_points_gets_one_key_made() -> None:
    """The figure: 8 key requests alternating two design points made 8 key pairs."""
    helper = CKKSBackend().helper()
    made = _counting(helper)
    refused = 0
    for round_number in range(1, 9):
        try:
            helper.handle(_key_request(3 if round_number % 2 else 5), round_number=round_number)
        except KeyHolderRefusal:
            refused += 1
    assert (len(made), refused) == (1, 4)
