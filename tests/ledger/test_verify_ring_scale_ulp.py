"""A recorded discrete Gaussian scale at the ring's headroom replays on an auditor's
machine whose arithmetic differs from the server's in the last bit.

Why: the server plans its scale as :meth:`~secagg.dp.distributed.
DistributedDiscreteGaussian._ring_scale` (the ring's headroom, usually below the float
cap, so the scale *is* that figure) and records it; the audit rebuilds the mechanism
with that scale, and a given scale above the headroom is refused
(:class:`~secagg.dp.distributed.ScaleBeyondRing`) with no tolerance. On one machine the
recomputation is bit for bit the server's (ruled out below: the planned scale, vector
bounds down to 1e-300 included, is always taken back). But the headroom rests on
``scipy.special.erfcinv`` (the wrap's k) and float powers, which library versions
may round one ulp apart: an auditor whose k is one ulp larger computed a headroom one
ulp below the recorded scale, and an honest ledger failed its replay. A given scale is
now refused above the headroom by more than :data:`~secagg.dp.distributed.
SCALE_HEADROOM_TOLERANCE` (relative, 1e-12: thousands of ulps, a wrap probability
moved by parts in 10^12), and a scale any further above is refused as before.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from _ledgers import distributed_rows, write_ledger
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp import distributed
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian, ScaleBeyondRing
from secagg.dp.release import DistributedRelease, mechanism_for
from secagg.ledger.verify import verify_ledger

DELTA, N = 1e-5, 4
NAMES = [f"branch-{i}" for i in range(N)]


def _honest_ledger(tmp_path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16, bits=32, sample_rate=1.0, expected_clients=float(N),
            corrupt_fraction=0.25, seed=b"s" * 16, population=N,
        )  # fmt: skip
    assert isinstance(mechanism, DistributedRelease)
    # the usual case: the scale is the ring's headroom, not the float cap below it
    assert mechanism.ddg.scale == mechanism.ddg.largest_scale
    path, _ = write_ledger(tmp_path / "d.ledger", distributed_rows(mechanism, [4, 4], NAMES, DELTA))
    return path


def _one_ulp_larger_k(monkeypatch: pytest.MonkeyPatch) -> None:
    """The auditor's erfcinv, one ulp from the server's."""
    real = distributed.wrap_stddevs
    monkeypatch.setattr(distributed, "wrap_stddevs", lambda p: math.nextafter(real(p), math.inf))


def test_an_honest_ledger_replays_where_the_headroom_is_one_ulp_lower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _honest_ledger(tmp_path)
    assert verify_ledger(path).ok  # the server's own arithmetic
    _one_ulp_larger_k(monkeypatch)
    result = verify_ledger(path)
    assert result.ok, result.first_failure  # before: "... beyond the ring's headroom"


def test_a_scale_further_above_the_headroom_is_still_refused() -> None:
    planned = DistributedDiscreteGaussian(
        dimension=16, clip=1.0, noise_multiplier=2.0, expected_clients=4
    )
    largest = planned.largest_scale
    parameters = dict(dimension=16, clip=1.0, noise_multiplier=2.0, expected_clients=4)
    DistributedDiscreteGaussian(**parameters, scale=largest * (1 + 1e-13))  # within
    with pytest.raises(ScaleBeyondRing):
        DistributedDiscreteGaussian(**parameters, scale=largest * (1 + 1e-9))


@settings(max_examples=50, deadline=None)
@given(
    bound_exponent=st.floats(-300, 3),
    record_exponent=st.one_of(st.none(), st.floats(-6, 0)),
    dimension=st.integers(1, 5000),
    noise_exponent=st.floats(-2, 2),
    clients=st.integers(1, 2000),
    bits=st.sampled_from([16, 20, 32, 48, 64]),
)
def test_on_one_machine_the_planned_scale_is_always_taken_back(
    bound_exponent: float,
    record_exponent: float | None,
    dimension: int,
    noise_exponent: float,
    clients: int,
    bits: int,
) -> None:
    """Guard (held before too): the replay's recomputation is the server's, so no
    tolerance is needed on one machine, vector bounds down to 1e-300 included."""
    bound = 10.0**bound_exponent
    clip = bound if record_exponent is None else bound * 10.0**record_exponent
    parameters = dict(
        dimension=dimension, clip=clip, noise_multiplier=10.0**noise_exponent,
        expected_clients=clients, bits=bits,
        vector_bound=0.0 if record_exponent is None else bound,
    )  # fmt: skip
    try:
        planned = DistributedDiscreteGaussian(**parameters)  # type: ignore[arg-type]
    except distributed.ConfigurationError:
        return  # parameters no server plans
    replayed, _ = DistributedDiscreteGaussian.as_recorded(**parameters, scale=planned.scale)
    assert replayed.scale == planned.scale
