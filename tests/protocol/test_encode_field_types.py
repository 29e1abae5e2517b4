"""``encode`` never puts on the wire a field that the peer refuses or reads otherwise.

The writer turned each scalar field into bytes by whatever conversion it took:
``int(message.active)``, a ``u8`` of the graph kind and of the bit width. So a setup
with ``active=2`` was encoded as a flag byte 2 that every recipient refuses
("active must be 0 or 1"), a graph kind of 7 and a width of 16 likewise, and
``active="1"`` or ``1.0``, ``num_clients=True`` or a party id ``True`` went out as
values nobody set. Now every field that is not a tuple must have its declared type
(by the rule of ``check_fields``) and the setup's width must be one the wire carries,
or ``encode`` raises MalformedMessage. The tuples are still checked item by item only
by the writer's packing: no second pass over an unmasking request's survivors.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import MalformedMessage
from secagg.protocol.messages import (
    GraphKind,
    MaskedInput,
    RoundSetup,
    UnmaskingRequest,
    decode,
    encode,
)

ROUND = bytes(range(16))


def _setup(**changes: Any) -> RoundSetup:
    fields: dict[str, Any] = {
        "round_id": ROUND,
        "recipient": 1,
        "num_clients": 5,
        "vector_length": 10,
        "bits": 32,
        "threshold": 3,
        "graph": GraphKind.COMPLETE,
        "degree": 4,
        "graph_seed": bytes(32),
        "active": False,
    }
    return RoundSetup(**{**fields, **changes})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("active", 2),  # encoded as the byte 2: the peer refused it
        ("active", "1"),  # encoded as an active flag
        ("active", 1.0),
        ("active", np.float64(0.0)),
        ("active", "yes"),  # refused before too, through int()'s ValueError
        ("active", None),  # refused before too, through int()'s TypeError
        ("graph", 7),  # encoded: the peer refused the unknown graph kind
        ("graph", 1),  # an int, not a GraphKind
        ("bits", 16),  # encoded: the peer refused the width
        ("bits", True),
        ("num_clients", True),
        ("recipient", True),
        ("degree", 4.0),  # refused before too, by struct
        ("degree", GraphKind.COMPLETE),  # an IntEnum went out as 0 and came back an int
        ("num_clients", GraphKind.HARARY),
    ],
)
def test_a_setup_field_of_the_wrong_type_or_width_is_refused_at_encode(
    field: str, value: Any
) -> None:
    with pytest.raises(MalformedMessage, match=field):
        encode(_setup(**{field: value}))


def test_a_masked_input_from_party_true_is_refused_at_encode() -> None:
    message = MaskedInput(ROUND, True, 32, np.zeros(3, dtype=np.uint32))  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage, match="sender"):
        encode(message)


def test_well_typed_messages_still_round_trip() -> None:
    for message in (
        _setup(active=True, graph=GraphKind.HARARY, bits=64),
        UnmaskingRequest(ROUND, 3, tuple(range(1000)), (1000, 1001)),
        MaskedInput(ROUND, 2, 64, np.arange(4, dtype=np.uint64)),
    ):
        decoded = decode(encode(message))
        for field in dataclasses.fields(message):
            got, want = getattr(decoded, field.name), getattr(message, field.name)
            assert np.array_equal(got, want) if isinstance(want, np.ndarray) else got == want


_ANY_SCALAR = st.one_of(
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, width=32),
    st.sampled_from([*GraphKind, "1", "", None, np.bool_(True), np.int64(4)]),
)


@settings(max_examples=50, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(["active", "graph", "bits", "degree"]), _ANY_SCALAR))
def test_encode_refuses_or_the_peer_reads_exactly_what_was_sent(changes: dict[str, Any]) -> None:
    """Property: whatever the scalar fields hold, ``encode`` either raises
    MalformedMessage or gives bytes that decode to the same fields of the same types."""
    message = _setup(**changes)
    try:
        data = encode(message)
    except MalformedMessage:
        return
    decoded = decode(data)
    for field in dataclasses.fields(message):
        got, want = getattr(decoded, field.name), getattr(message, field.name)
        assert (type(got), got) == (type(want), want), field.name


def test_the_check_costs_no_pass_over_the_survivors() -> None:
    """An unmasking request's survivors are read once, by the packing: a tuple that
    fails on its last item is refused by the writer, not by a separate scan first."""

    class CountingTuple(tuple):  # type: ignore[type-arg]
        reads = 0

        def __iter__(self):  # type: ignore[no-untyped-def]
            CountingTuple.reads += 1
            return super().__iter__()

    survivors = CountingTuple(range(1000))
    encode(UnmaskingRequest(os.urandom(16), 3, survivors, ()))
    assert CountingTuple.reads <= 1
