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


def test_the_floor_warning_quotes_the_epsilon_of_the_z_it_returns_and_shows() -> None:
    """Epsilon 8 over 10^9 rounds at q = 1e-9: PLD's epsilon is not monotone this close to
    its floor (1.45, 0.034, 3.06, 7.95, 0.034 at z = 0.4332, 0.43322, 0.43325, 0.43328,
    0.4333; RDP about 1.30 throughout). Before: the search returned z = 0.4332372..., the
    warning said "noise_multiplier 0.433238 spends epsilon 7.966" (the figure of the
    unrounded z, quoted beside a rounded-up z that spends 0.034), and ``privacy noise``
    printed z = 0.4333 spending 0.03413: two figures for one answer. Now the answer at the
    floor is the z as ``privacy noise`` shows it (rounded up, evaluated, within the budget),
    the warning quotes that z's own PLD epsilon, which is the CLI's (the same call, so it is
    computed once), and says PLD is unstable here: its figure at the search's z lay above
    RDP's upper bound."""
    plan = (1e-9, 10**9, 1e-5)
    with pytest.warns(NoiseFloorWarning) as caught:
        z = accounting.noise_multiplier_for(8.0, 1e-5, *plan[:2])
    (warning,) = [w.message for w in caught if isinstance(w.message, NoiseFloorWarning)]
    assert isinstance(warning, NoiseFloorWarning)
    assert float(shown(z)) == z  # what privacy noise prints is what was returned
    spent = accounting.epsilon(z, *plan)  # the CLI's own computation of its figure
    assert warning.noise_multiplier == z and warning.epsilon == spent <= 8.0
    text = str(warning)
    assert f"noise_multiplier {shown(z, 6, significant=True)} spends epsilon " in text
    assert f"spends epsilon {shown(spent, 4, significant=True)}," in text
    assert warning.pld_above_rdp is not None
    at, pld_figure, rdp_figure = warning.pld_above_rdp
    assert pld_figure > rdp_figure == accounting.epsilon(at, *plan, "rdp")
    assert "unstable" in text and shown(rdp_figure, 4, significant=True) in text
