"""A masking spec's population on the wire (spec version 2): strict and bounded at
decode and at construction, for every round shape; the older version refused by name
for every backend sharing the header; CKKS and plain specs still round-trip (second
review of colluders, 2026-12-07)."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.aggregation import get_backend
from secagg.aggregation.ckks import CKKSSpec, DesignPoint
from secagg.aggregation.masking import MaskingSpec
from secagg.aggregation.registry import decode_spec
from secagg.aggregation.spec import encode_spec
from secagg.errors import ConfigurationError, MalformedMessage
from secagg.protocol.messages import MAX_POPULATION

_ACTIVE_IDENTITY = b"\x01" * 32


def _sampled(n: int, population: int, active: bool) -> MaskingSpec:
    options = {"identities": (_ACTIVE_IDENTITY,) * n} if active else {}
    spec = get_backend("secagg+", max_clients=population, active=active).plan(n, 3, **options)
    assert isinstance(spec, MaskingSpec)
    return spec


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(3, 40),
    extra=st.integers(0, 300),
    active=st.booleans(),
    bad=st.sampled_from(["n-1", "1", "max+1", "2^32-1", "2^31"]),
)
def test_a_population_field_is_taken_exactly_when_a_population_can_be_it(
    n: int, extra: int, active: bool, bad: str
) -> None:
    try:
        spec = _sampled(n, n + extra, active)
    except ConfigurationError:
        return  # a round too small for its population's colluders: not planned
    raw = encode_spec(spec)
    assert decode_spec(raw) == spec
    assert raw[-4:] == struct.pack("<I", spec.population)
    for good in (0, n, MAX_POPULATION):
        taken = dataclasses.replace(spec, population=good)
        assert decode_spec(encode_spec(taken)).population == good
    value = {
        "n-1": n - 1,
        "1": 1,
        "max+1": MAX_POPULATION + 1,
        "2^32-1": 2**32 - 1,
        "2^31": 2**31,
    }[bad]
    with pytest.raises(MalformedMessage, match="population"):
        decode_spec(raw[:-4] + struct.pack("<I", value))
    with pytest.raises(ConfigurationError, match="population"):
        dataclasses.replace(spec, population=value)
    # cut in the population, or followed by anything: malformed, nothing else
    for broken in (raw[:-1], raw[:-4], raw + b"\x00"):
        with pytest.raises(MalformedMessage):
            decode_spec(broken)


@pytest.mark.parametrize("backend", ["plain", "secagg", "ckks"])
def test_other_specs_round_trip_and_version_1_is_refused_by_name(backend: str) -> None:
    if backend == "ckks":
        spec = CKKSSpec(5, 10, DesignPoint(5, 1.0, 1e-6), b"f" * 32, b"context")
    else:
        spec = get_backend(backend).plan(4, 3)
    raw = encode_spec(spec)
    assert decode_spec(raw) == spec
    with pytest.raises(MalformedMessage, match="version 1; this build reads version 2"):
        decode_spec(raw[:4] + b"\x01" + raw[5:])
