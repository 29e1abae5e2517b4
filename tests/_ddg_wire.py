"""A masking spec's wire bytes with its noise share's scale replaced.

Shared by the tests of what a distributed-DP scale from the wire may be
(tests/dp/test_distributed_scale_headroom.py: not beyond the ring's headroom;
tests/dp/test_distributed_scale_floor.py: not so coarse that rounding swamps an
update): a buggy or hostile server can announce any scale, its planner never would."""

from __future__ import annotations

import struct
from typing import Any

from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound

#: the reviewed parameters: 3 clients, clip 1, a 4-coordinate update on 32 bits
REVIEWED: dict[str, Any] = dict(
    dimension=4, clip=1.0, noise_multiplier=1.0, expected_clients=3, bits=32
)


def spec_with_share_scale(scale: float) -> tuple[bytes, object]:
    """The encoded masking spec of a round of :data:`REVIEWED` whose noise share
    announces ``scale``, and the spec as planned (with the planned scale)."""
    from secagg.aggregation.masking import MaskingBackend
    from secagg.aggregation.spec import encode_spec

    ddg = DistributedDiscreteGaussian(**REVIEWED)
    spec = MaskingBackend(graph="complete").plan(3, 4, noise_share=NoiseShareRound(ddg, bytes(16)))
    data = encode_spec(spec)
    at = data.index(struct.pack("<d", ddg.scale))
    return data[:at] + struct.pack("<d", scale) + data[at + 8 :], spec
