"""The public worlds (the prior's reference and the worlds held out of its fit) are one
draw under two seed labels (:func:`~secagg.apps.simulation.data._public_worlds`,
2026-12-07). Folding the two copies into one must move no world: every public prior and
statistic of a run, and the default ``secagg simulate`` model, are drawn from them. The
copies' draw as it was is kept below as the reference the folded draw is checked against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secagg.apps.models.synthetic import generate_branches
from secagg.apps.simulation import data
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.seeding import _derived_seed

#: a small run: 3 branches, worlds of 300 training rows (the draw is checked, not a fit)
TINY = SimulationConfig(branches=3, train_rows=1200, test_rows_per_branch=200)


def _worlds_as_drawn_before(config: SimulationConfig, label: str, world: int) -> list[Any]:
    """World ``world`` as the two copies drew it before they were folded (``data.py`` at
    dc5238f): under ``_derived_seed(config, label, world)``, a quarter of the training
    rows (at least 100 a branch), 100 test rows a branch, the config's world knob."""
    knob = {} if config.world == "standard" else {"world": config.world}
    return generate_branches(
        config.branches,
        seed=_derived_seed(config, label, world),
        total_train_rows=max(100 * config.branches, config.train_rows // 4),
        test_rows_per_branch=100,
        **knob,
    )


def _same_worlds(drawn: list[Any], config: SimulationConfig, label: str, count: int) -> None:
    """``drawn`` holds ``count`` worlds of the config's branches, its first and last as
    drawn before (the label and the count pinned; the worlds between are the same
    loop's, and drawing them all twice doubled the test's time)."""
    per_world = config.branches
    assert len(drawn) == count * per_world
    for world in (0, count - 1):
        own = drawn[world * per_world : (world + 1) * per_world]
        _same_rows(own, _worlds_as_drawn_before(config, label, world))


def _same_rows(drawn: list[Any], expected: list[Any]) -> None:
    assert len(drawn) == len(expected)
    for got, want in zip(drawn, expected, strict=True):
        assert got.name == want.name
        for field in ("x_train", "y_train", "x_test", "y_test", "customers_train"):
            a, b = getattr(got, field), getattr(want, field)
            assert (a is None) == (b is None), field
            if a is not None:
                assert np.array_equal(a, b), field


@pytest.mark.parametrize("config", [TINY, TINY.with_changes(seed=3, world="hard")])
def test_the_folded_draw_is_the_two_copies_draw_under_their_own_labels(
    config: SimulationConfig,
) -> None:
    """Each world keeps its seed label exactly: the reference's ``public-reference``,
    the held-out worlds' ``public-validation-world``, and their counts."""
    _same_worlds(data._public_reference(config), config, "public-reference", data.PUBLIC_WORLDS)
    _same_worlds(
        data._public_validation_worlds(config),
        config,
        "public-validation-world",
        data.PUBLIC_VALIDATION_WORLDS,
    )


def test_a_run_reads_its_reference_and_its_held_out_worlds_from_the_cache() -> None:
    """One cache for both draws holds both of a run's (each copy kept its one): the
    reference, read by the public statistics and the prior, is not drawn again after
    the held-out worlds are."""
    data._public_worlds.cache_clear()
    reference = data._public_reference(TINY)
    held_out = data._public_validation_worlds(TINY)
    assert data._public_reference(TINY) is reference
    assert data._public_validation_worlds(TINY) is held_out
    assert data._public_worlds.cache_info().misses == 2
