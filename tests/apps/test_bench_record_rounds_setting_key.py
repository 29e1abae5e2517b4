"""The record-rounds probe's setting key (``_setting_key``) over the base configurations
a caller may pass: it never raises on values that cannot be ordered or are nested, does
not depend on the order the base was written in, and never gives two different bases
the same key.

Why: the key is ``repr(sorted(base.items()))``. Sorting a dict's items compares keys
only (they are unique), so values of any type are never compared; and the values a
:class:`~secagg.apps.simulation.config.SimulationConfig` takes (numbers, strings, None,
tuples of seeds) each have a repr that says the whole value, so two different bases
cannot share one setting (a guard for 93359927's review: no bug was found)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _benchmarks import benchmark_script
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def probe() -> Iterator[Any]:
    with benchmark_script("bench_record_rounds") as module:
        yield module


#: the value types of SimulationConfig's fields
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(0, 2000), max_size=4).map(tuple),
)
_bases = st.dictionaries(
    st.sampled_from(["train_rows", "world", "clip", "tuning_seeds", "rounds"]), _values
)


@settings(max_examples=200, deadline=None)
@given(first=_bases, second=_bases)
def test_different_bases_never_share_a_key(
    probe: Any, first: dict[str, Any], second: dict[str, Any]
) -> None:
    same_key = probe._setting_key(1000, first) == probe._setting_key(1000, second)
    if same_key:
        assert first == second
    # the order the base was written in does not matter
    reordered = dict(reversed(list(first.items())))
    assert probe._setting_key(1000, reordered) == probe._setting_key(1000, first)


def test_unorderable_and_nested_values_do_not_raise(probe: Any) -> None:
    base = {"b": {1, "x"}, "a": [object(), None], "c": {"y": None, "x": (1, "z")}}
    key = probe._setting_key(1000, base)
    assert key[0] == 1000
    assert key[2].startswith("[('a', ")  # sorted by the keys alone
