"""A key holder's own design caps, as a property: a key request is answered exactly when
its design point sums at most ``max_clients`` clients, values bounded by at most
``max_value_bound``, to a precision no finer than ``min_precision`` (and a ring admits
it); otherwise it is refused in one line naming the first cap it breaks, in the order
clients, bound, precision (docs/backends.md, "design point"), with no key made and
nothing opened.

The oracle is written from the documented rule, not from the code's branches.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import (
    _KEY_REQUEST,
    KeyHolderSession,
    _helper_message,
    federation_field,
)
from secagg.aggregation.keyholder_policy import KeyHolderPolicy, KeyHolderRefusal
from secagg.aggregation.spec import Writer
from secagg.errors import MalformedMessage

D = 4
_powers = st.integers(min_value=-9, max_value=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    caps=st.tuples(
        st.none() | st.integers(min_value=2, max_value=40),
        st.none() | _powers.map(lambda k: 10.0**k),
        st.none() | _powers.map(lambda k: 10.0**k),
    ),
    asked=st.tuples(
        st.integers(min_value=2, max_value=40),
        _powers.map(lambda k: 10.0**k),
        st.integers(min_value=-12, max_value=0).map(lambda k: 10.0**k),
    ),
)
def test_a_key_request_is_answered_exactly_within_the_caps(
    caps: tuple[int | None, float | None, float | None], asked: tuple[int, float, float]
) -> None:
    most_clients, most_bound, finest = caps
    clients, bound, precision = asked
    policy = KeyHolderPolicy(
        max_clients=most_clients, max_value_bound=most_bound, min_precision=finest
    )
    helper = KeyHolderSession(policy)
    request = Writer().u32(clients).f64(bound).f64(precision).u32(D).bytes()
    payload = _helper_message(_KEY_REQUEST, request + federation_field(""))
    broken = [
        key
        for key, beyond in (
            ("max_clients", most_clients is not None and clients > most_clients),
            ("max_value_bound", most_bound is not None and bound > most_bound),
            ("min_precision", finest is not None and precision < finest),
        )
        if beyond
    ]
    try:
        reply = helper.handle(payload, round_number=1)
    except KeyHolderRefusal as refusal:
        assert broken, f"refused within the caps: {refusal}"
        assert f"[key_holder] {broken[0]} = " in str(refusal) and "\n" not in str(refusal)
        assert helper.fingerprint is None and helper.opened is None
        return
    except MalformedMessage as malformed:  # no ring for this design point: a typed refusal
        assert not broken, f"a cap broken ({broken}) but refused as {malformed}"
        assert "design point" in str(malformed) and helper.fingerprint is None
        return
    assert not broken, f"answered beyond {broken}"
    assert reply[4:6] == bytes([4, 2]) and helper.opened == (1, D)
