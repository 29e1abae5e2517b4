"""The plan's cost description never shows more noise than the plan adds.

:meth:`ClientLevelCost.describe` (the PrivacyCostWarning a DPConfig raises) printed the
noise on the mean update and the noise-to-signal ratio with ``:.3g`` (to the nearest):
a noise std of 0.12351 x the clip read 0.124, and a noise vector 2.3456 x the largest
mean update read 2.35, more noise than the plan adds. Both are rounded down now.
"""

from __future__ import annotations

from secagg import dp


def test_the_noise_figures_are_rounded_down() -> None:
    cost = dp.ClientLevelCost(
        expected_clients=100.0,
        noise_multiplier=12.351,
        epsilon=1.0,
        delta=1e-5,
        rounds=10,
        relative_noise_on_mean=0.12351,
        noise_to_signal=2.3456,
    )
    text = cost.describe()
    assert "noise std on the mean update is 0.123 x the clip" in text
    assert "the noise vector is 2.34 x the norm" in text


def test_one_round_is_said_in_the_singular() -> None:
    """CI's warnings read "over 1 rounds"."""
    from secagg.dp.config import ClientLevelCost

    one = ClientLevelCost(8.0, 1.0, 2.0, 1e-5, 1, 0.125, None)
    assert one.describe().endswith("over 1 round")
    assert ClientLevelCost(8.0, 1.0, 2.0, 1e-5, 3, 0.125, None).describe().endswith("over 3 rounds")
