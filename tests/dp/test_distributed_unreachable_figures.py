"""The distributed mechanism's "unreachable" messages pair a noise multiplier with the
epsilon it spends: the z is rounded up, so the epsilon quoted (rounded up) bounds what
the z shown spends.

To the nearest (``:.4g``, ``:g``) the most noise tried, 21.5217902, read 21.52 and a z
of 1.2345641 read 1.23456: less noise than the one whose epsilon the message quotes,
which then understates what the z shown spends.
"""

from __future__ import annotations

import re

import pytest

from secagg.dp.distributed import _ddg_unreachable, calibrate_noise_multiplier
from secagg.errors import BudgetUnreachable


def test_the_most_noise_tried_is_shown_up() -> None:
    with pytest.raises(BudgetUnreachable) as refused:
        calibrate_noise_multiplier(
            epsilon=0.01,
            delta=1e-5,
            rounds=1,
            dimension=100,
            clip=1.0,
            expected_clients=10,
            honest_shares=10,
            start=1.1e-3,
        )
    exc = refused.value
    (most, start) = re.findall(r"noise_multiplier (\S+) \(500 steps of 2 % from (\S+)\)", str(exc))[
        0
    ]
    assert float(most) >= exc.noise_multiplier and most == "21.53"
    assert start == "0.0011"


def test_the_central_gaussians_unreachable_z_is_shown_up() -> None:
    z = 1.2345641
    central = BudgetUnreachable("central", epsilon=0.5, noise_multiplier=z, spent=0.7)
    message = str(_ddg_unreachable(central, lambda _: 0.9, 10, 5))
    assert "noise_multiplier 1.23457 spends" in message
