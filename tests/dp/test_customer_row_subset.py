"""A heavy customer's row subset: seeded, named PCG64, the same rows for the same seed.

It draws no noise and guards no secret, so a seeded generator is the house's rule for it
(see ``secagg.dp.user_level._customer_rng``); but it must not hang on
``np.random.default_rng``, whose bit generator numpy may change: that would move which
rows every truncated customer keeps, and the default simulation's figures with them."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.dp.user_level import group_by_customer, keep_customer_rows

IDS = np.array(["a"] * 12 + ["b"] * 3 + [7] * 10, dtype=object)
#: the rows kept at max_rows = 4 with seed b"pinned": every recorded run's choice
PINNED = [2, 4, 10, 11, 12, 13, 14, 16, 19, 23, 24]


def test_the_subset_does_not_depend_on_numpys_default_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the row subset asked np.random.default_rng")

    monkeypatch.setattr(np.random, "default_rng", refused)
    assert np.flatnonzero(keep_customer_rows(IDS, max_rows=4, seed=b"pinned")).tolist() == PINNED


def test_the_subset_is_the_recorded_one_and_grouping_keeps_it() -> None:
    """Deterministic per seed, and the grouping keeps exactly the capped rows."""
    kept = keep_customer_rows(IDS, max_rows=4, seed=b"pinned")
    assert np.flatnonzero(kept).tolist() == PINNED
    x = np.arange(IDS.size, dtype=np.float32).reshape(-1, 1)
    grouped = group_by_customer(x, np.zeros(IDS.size), IDS, max_rows=4, seed=b"pinned")
    rows, target = grouped.tensors
    seen = sorted(int(v) for v in rows[..., 0][target[..., 1] > 0].tolist())
    assert seen == PINNED
    other = keep_customer_rows(IDS, max_rows=4, seed=b"other")
    assert np.flatnonzero(other).tolist() != PINNED
