"""What :class:`NoiseFloorWarning` says is true of the figures it names.

Its message printed the returned noise multiplier with ``:g`` (to the nearest, 6
digits): z = 0.43333349 read 0.433333, less noise than the z whose epsilon it quotes
("spends only epsilon ..."), so the pair shown could understate what the shown z spends.
It printed the z PLD refused to the nearest too: 0.28888888 read 0.288889, a larger
z that PLD may well evaluate. Now the returned z is rounded up (the epsilon quoted bounds
what the shown z spends) and the refused one down (any z below it is refused as well).

Its docstring and message also said the threshold lies below PLD's floor. The search
stops one of its steps (up to 1.5x) above the z it could not evaluate: the threshold may
lie between the two, and the warning now says by how much z may exceed the least noise
that meets the budget (``z / unevaluable``) instead of claiming the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from secagg.dp import accounting
from secagg.dp.accounting import NoiseFloorWarning, PldTooLarge
from secagg.dp.display import shown


def test_the_returned_z_is_shown_up_and_the_refused_z_down() -> None:
    warning = NoiseFloorWarning(
        noise_multiplier=0.43333349, epsilon=0.034, target_epsilon=8.0, unevaluable=0.28888888
    )
    text = str(warning)
    assert "0.433334" in text and "0.433333" not in text
    assert "0.288888" in text and "0.288889" not in text


def _synthetic(floor: float, threshold: float, target: float = 1.0) -> Callable[[float], float]:
    """An accountant whose epsilon falls as 1/z, meets ``target`` at ``threshold`` and
    cannot be evaluated below ``floor`` (as PLD below its size limit)."""

    def eps_of(z: float) -> float:
        if z < floor:
            raise PldTooLarge("too large", points=1e9, noise_multiplier=z, sample_rate=0.1)
        return target * threshold / z

    return eps_of


def test_a_floor_stop_names_how_far_above_the_refused_z_it_stopped() -> None:
    """The threshold (0.9) lies above the floor (0.8): the search walks down from 1.2 in
    steps of 1.5, stops at the least z it evaluated, and the warning's figures say so:
    that z, its own epsilon, the refused z and their ratio."""
    floor: list[tuple[float, float, float]] = []
    eps_of = _synthetic(0.8, 0.9)
    z = accounting._calibrate(eps_of, 1.0, guess=1.2, tol=1e-3, first_step=1.001, floor=floor)
    assert eps_of(z) <= 1.0
    (stopped, spent, refused) = floor[0]
    assert stopped == z and spent == eps_of(z) and refused < 0.8 < z
    with pytest.warns(NoiseFloorWarning) as caught:
        assert accounting._floor_warned(z, 1.0, floor) == z
    (warning,) = [w.message for w in caught]
    assert isinstance(warning, NoiseFloorWarning)
    assert math.isclose(warning.excess, z / refused)
    assert 1.4 < warning.excess <= 1.5  # the search's step of 1.5 (z stopped 1.33x above 0.9)
    text = str(warning)
    assert f"at most {shown(warning.excess, 3, significant=True)}x less" in text
    assert float(shown(warning.excess, 3, significant=True)) >= warning.excess
