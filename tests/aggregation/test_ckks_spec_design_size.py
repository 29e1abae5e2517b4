"""A CKKS round announces no more clients than its design point's parameters can sum.

The parameters, and the key holder's key, are made for ``design.num_clients`` summands;
the server's encrypted sum refuses every upload past them (TooManyContributions). A spec
of more clients was built, encoded, decoded by every branch and approved (a branch checks
``num_clients`` against its own limits), and the branches past the design's count
encrypted and uploaded for nothing. Hypothesis draws both counts: a spec is built (and
read off the wire) exactly when the round fits its design point.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import decode_spec
from secagg.aggregation.ckks import CKKSBackend, CKKSSpec, DesignPoint
from secagg.aggregation.spec import Writer, encode_spec
from secagg.errors import ConfigurationError, MalformedMessage

COUNTS = st.integers(1, 5000)


def _wire(num_clients: int, design_clients: int) -> bytes:
    """A CKKS spec's bytes as a server would send them, whatever the counts."""
    body = DesignPoint(design_clients, 1.0, 1e-6).write(Writer().u32(num_clients).u32(4))
    body = body.blob(b"f" * 32).blob(b"context").bytes()
    return b"SASP\x02\x04ckks" + body  # spec version 2


@settings(max_examples=200, deadline=None)
@given(num_clients=COUNTS, design_clients=COUNTS)
def test_a_spec_is_built_exactly_when_its_round_fits_its_design_point(
    num_clients: int, design_clients: int
) -> None:
    design = DesignPoint(design_clients, 1.0, 1e-6)
    if num_clients <= design_clients:
        spec = CKKSSpec(num_clients, 4, design, b"f" * 32, b"context")
        assert decode_spec(encode_spec(spec)) == spec
        assert decode_spec(_wire(num_clients, design_clients)) == spec
        return
    with pytest.raises(ConfigurationError, match=f"design point of {design_clients}"):
        CKKSSpec(num_clients, 4, design, b"f" * 32, b"context")
    with pytest.raises(MalformedMessage, match=f"design point of {design_clients}"):
        decode_spec(_wire(num_clients, design_clients))


def test_the_backends_plans_fit_their_design_points() -> None:
    """An honest plan sizes the design for the round (or the federation's largest)."""
    assert CKKSBackend().plan(7, 3).design.num_clients == 7
    assert CKKSBackend(max_clients=20).plan(7, 3).design.num_clients == 20
    with pytest.raises(ConfigurationError):  # a round larger than the federation's largest
        CKKSSpec(21, 3, CKKSBackend(max_clients=20).plan(7, 3).design)


def test_the_case_found_six_clients_on_a_design_of_two() -> None:
    data = _wire(6, 2)
    with pytest.raises(MalformedMessage, match="6 clients on a design point of 2"):
        decode_spec(data)
    assert np.frombuffer(data[10:14], "<u4")[0] == 6  # the count the branches would approve
