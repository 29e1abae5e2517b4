"""The key holder's clamp does the same work whether or not the exact sum crossed its box.

Finding (second review of the clamp, 2026-12-06): ``clamp_to_plausible`` counted the
coordinates beyond the box and ran its ``nan_to_num`` and ``clip`` passes only when that
count was non-zero. The key holder clamps its exact sum slice by slice (65 536 values) just
before the reply leaves, so each slice holding a clamped coordinate made the reply later
by those two passes (measured in-process on a loaded 2-core host: about 0.7 ms a slice
with nothing beyond the box, 1.2 ms with one coordinate beyond it). With a malicious
branch's upload set near the box's edge in chosen slices, that delay is the bit the clamp
replaced the refusal to remove: whether an honest coordinate of the slice is above a
threshold, un-noised, now in the reply's timing instead of its kind.

Checked here at numpy's granularity: the sequence of array operations the clamp applies
(every ufunc and array function, recorded by an ndarray subclass) is the same for any
two sums of one length, inside, across or far beyond the box, NaN and infinities
included, so its time does not depend on which coordinates it moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from secagg.aggregation.keyholder_policy import clamp_to_plausible

REACH = 3.0
#: within the box, across its edge, far beyond it, and the non-finite values a crafted
#: decryption could hold
COORDINATE = st.one_of(
    st.floats(-10.0, 10.0),
    st.sampled_from([REACH, -REACH, 1e300, -1e300, np.inf, -np.inf, np.nan]),
)


class _Traced(np.ndarray):
    """An ndarray view that records the name of every ufunc and array function applied
    to it (numpy's own dispatch protocols), then runs it on the plain array."""

    trace: list[str]

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        self.trace.append(f"{ufunc.__name__}.{method}")
        plain = tuple(x.view(np.ndarray) if isinstance(x, _Traced) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(
                x.view(np.ndarray) if isinstance(x, _Traced) else x for x in kwargs["out"]
            )
        return getattr(ufunc, method)(*plain, **kwargs)

    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self.trace.append(func.__name__)
        return super().__array_function__(func, types, args, kwargs)


def _operations(values: np.ndarray) -> tuple[list[str], int]:
    """The operations the clamp applied to ``values`` (in place) and the count it returned."""
    traced = values.view(_Traced)
    traced.trace = []
    moved = clamp_to_plausible(traced, REACH)
    return traced.trace, moved


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 16).flatmap(
        lambda size: st.tuples(
            arrays(np.float64, size, elements=COORDINATE),
            arrays(np.float64, size, elements=COORDINATE),
        )
    )
)
def test_the_clamp_applies_the_same_operations_to_any_two_sums(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    first, second = (values.copy() for values in pair)
    first_operations, _ = _operations(first)
    second_operations, _ = _operations(second)
    assert first_operations == second_operations
    for clamped in (first, second):  # and the result is still the clamp's
        assert np.all(np.abs(clamped) <= REACH)


def test_a_sum_within_the_box_and_one_beyond_it_take_the_same_operations() -> None:
    """The case of the finding: one slice untouched, one with a coordinate beyond the box
    (as a malicious branch's near-edge upload plus an honest value above the threshold)."""
    within = np.array([2.95, 0.0, -1.0])
    beyond = np.array([3.05, 0.0, -1.0])
    within_operations, within_moved = _operations(within)
    beyond_operations, beyond_moved = _operations(beyond)
    assert (within_moved, beyond_moved) == (0, 1)  # the key holder's log still counts it
    assert within_operations == beyond_operations
    assert within.tolist() == [2.95, 0.0, -1.0] and beyond.tolist() == [REACH, 0.0, -1.0]
