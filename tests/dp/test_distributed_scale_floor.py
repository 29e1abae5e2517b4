"""A distributed discrete Gaussian's scale leaves a clipped update more than one ring unit.

The scale is ring units per unit of the updates (a clip 1000 times smaller is planned
a scale 1000 times larger), so what it does to an update is ``vector_bound * scale``:
a clipped update's norm in ring units. Two defects, one rule:

* a *given* scale of 1 or less (in code, from a masking spec on the wire, from a
  ledger row) was taken: at clip 1, 0.5 rounded every update to stray units, each
  noise share's std was rounded up to 1 unit, and the round was charged epsilon 44
  for a sum of rounding noise. It is now :class:`ScaleTooCoarse` (a
  :class:`ConfigurationError`; :class:`MalformedMessage` from the wire);
* the *planned* scale was refused at ``scale <= 1``, a test of the units: clip 1e9 on
  32 bits (a clipped update of 5e8 units) was refused, and clip 1e-3 with 1000 clients
  on 8 bits (0.92 units, the configuration refused at clip 1) was taken. Both now
  follow ``vector_bound * scale <= 1``, whatever the units.

The refusal is looked up by name, not imported, so that every case fails on its own
against the code from before the type existed.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import distributed
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.errors import ConfigurationError, MalformedMessage
from tests._ddg_wire import REVIEWED, spec_with_share_scale

_UNIT = dict(dimension=1000, noise_multiplier=1.0, expected_clients=8, bits=32)


def _refused_as_too_coarse(params: dict[str, object], scale: float) -> ConfigurationError:
    with pytest.raises(ConfigurationError, match="ring unit") as caught:
        DistributedDiscreteGaussian(**params, scale=scale)  # type: ignore[arg-type]
    assert type(caught.value).__name__ == "ScaleTooCoarse"
    assert isinstance(caught.value, distributed.ScaleTooCoarse)
    return caught.value


@pytest.mark.parametrize("scale", [1.0, 0.999, 0.5, 1e-3, 1e-100, 1e-300, 5e-324])
def test_a_given_scale_of_one_or_less_at_unit_clip_is_refused_by_type(scale: float) -> None:
    refused = _refused_as_too_coarse({**_UNIT, "clip": 1.0}, scale)
    assert "give a scale above 1," in str(refused) and "\n" not in str(refused)


@pytest.mark.parametrize(("clip", "scale"), [(1e-3, 1000.0), (1e-3, 999.0), (1e3, 1e-3)])
def test_the_floor_is_the_clipped_update_in_ring_units_not_the_scale(
    clip: float, scale: float
) -> None:
    _refused_as_too_coarse({**_UNIT, "clip": clip}, scale)
    # a little more and the same units take it
    taken = DistributedDiscreteGaussian(**_UNIT, clip=clip, scale=scale * 1.01)  # type: ignore[arg-type]
    assert taken.scale * clip > 1


def test_a_share_scale_of_one_from_the_wire_is_malformed() -> None:
    from secagg.aggregation import decode_spec

    with pytest.raises(MalformedMessage, match="ring unit"):
        decode_spec(spec_with_share_scale(1.0)[0])
    with pytest.raises(MalformedMessage, match="ring unit"):
        decode_spec(spec_with_share_scale(0.25)[0])
    same, spec = spec_with_share_scale(DistributedDiscreteGaussian(**REVIEWED).scale)
    assert decode_spec(same) == spec


@pytest.mark.parametrize("clip", [1e-6, 1e-3, 1.0, 1e3, 1e9])
def test_the_planned_scale_is_refused_or_taken_alike_in_any_units(clip: float) -> None:
    # 1000 clients on 8 bits: a clipped update would span 0.92 ring units at any clip
    crowded = dict(dimension=1000, noise_multiplier=1.0, expected_clients=1000, bits=8)
    with pytest.raises(ConfigurationError, match=r"spans 0\.923 <= 1 ring unit"):
        DistributedDiscreteGaussian(**crowded, clip=clip)  # type: ignore[arg-type]
    # 8 clients on 32 bits: 5.35e8 units at any clip (clip 1e9 was refused: scale 0.54)
    planned = DistributedDiscreteGaussian(**_UNIT, clip=clip)  # type: ignore[arg-type]
    assert planned.scale * clip == pytest.approx(535487971.0122161, rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    clip_exponent=st.integers(min_value=-12, max_value=12),
    clients=st.integers(min_value=1, max_value=2000),
    bits=st.integers(min_value=8, max_value=40),
    dimension=st.integers(min_value=1, max_value=4096),
    noise_multiplier=st.floats(min_value=0.05, max_value=20.0),
)
def test_planned_scales_do_not_depend_on_the_units(
    clip_exponent: int, clients: int, bits: int, dimension: int, noise_multiplier: float
) -> None:
    """The same federation in other units (the clip times 10^k) is refused or planned
    alike, and planned at the same clipped update in ring units, above 1."""
    params = dict(
        dimension=dimension, noise_multiplier=noise_multiplier, expected_clients=clients, bits=bits
    )
    clip = 10.0**clip_exponent
    outcomes = []
    planned = None
    for bound in (1.0, clip):
        try:
            planned = DistributedDiscreteGaussian(**params, clip=bound)  # type: ignore[arg-type]
        except ConfigurationError as refused:
            outcomes.append(("refused", str(refused).split(":")[0]))
        else:
            assert planned.scale * bound > 1
            outcomes.append(("planned", planned.scale * bound))
    (unit_kind, unit_figure), (kind, figure) = outcomes
    assert kind == unit_kind
    if kind == "planned":
        assert math.isclose(figure, unit_figure, rel_tol=1e-9)  # type: ignore[arg-type]
        # a planned scale, given back (the wire, a ledger), is taken: the floor refuses
        # no planned round
        assert planned is not None
        given_back = DistributedDiscreteGaussian(**params, clip=clip, scale=planned.scale)  # type: ignore[arg-type]
        assert given_back == planned
