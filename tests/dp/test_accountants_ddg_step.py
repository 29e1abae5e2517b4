"""The distributed discrete Gaussian's accountant takes honest share counts as whole
numbers or refuses them with ConfigurationError (review 2026-12-05): NaN escaped as a
plain ValueError from ``int()``, infinity as an OverflowError, and 3.5 (or ``True``)
was charged as 3 (or 1), an honest-share count no round has."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.dp.accountants import DiscreteGaussianAccountant
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.release import mechanism_for
from secagg.errors import ConfigurationError

COMMON = {"dimension": 64, "bits": 32, "sample_rate": 0.5, "expected_clients": 10.0,
          "corrupt_fraction": 0.1}  # fmt: skip


def _accountant() -> DiscreteGaussianAccountant:
    ddg = DistributedDiscreteGaussian(
        dimension=64, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    return DiscreteGaussianAccountant(ddg, sample_rate=0.5, delta=1e-5)


@pytest.mark.parametrize("shares", [math.nan, math.inf, 3.5, 3.0, True, "3", None, -1])
def test_a_share_count_that_is_not_a_whole_number_is_a_configuration_error(
    shares: object,
) -> None:
    accountant = _accountant()
    accountant.step(7)
    before = (accountant.honest_shares, accountant.epsilon())
    with pytest.raises(ConfigurationError, match="honest noise shares"):
        accountant.step(shares)  # type: ignore[arg-type]
    assert (accountant.honest_shares, accountant.epsilon()) == before  # nothing charged


def test_numpy_integer_counts_are_charged_as_ints() -> None:
    accountant = _accountant()
    accountant.step(np.int64(7))  # type: ignore[arg-type]
    assert accountant.honest_shares == [7] and type(accountant.honest_shares[0]) is int


def test_a_restart_refuses_a_stored_fractional_share_count_instead_of_truncating() -> None:
    """``restore`` charged ``int(stored["noise_contributors"])``: a stored 3.9 became 3."""
    mechanism = mechanism_for(DPSettings(mechanism="distributed"), **COMMON)
    out = mechanism.charge_at_reveal(contributors=8, participants=8)  # type: ignore[attr-defined]
    stored = {key: out[key] for key in ("noise_contributors", "assumed_colluders", "parameters")}
    again = mechanism_for(DPSettings(mechanism="distributed"), **COMMON)
    again.restore(stored)
    assert again.accountant.honest_shares == [stored["noise_contributors"]]  # type: ignore[attr-defined]
    fresh = mechanism_for(DPSettings(mechanism="distributed"), **COMMON)
    with pytest.raises(ConfigurationError, match="honest noise shares"):
        fresh.restore(stored | {"noise_contributors": stored["noise_contributors"] + 0.9})
    assert fresh.accountant.honest_shares == []  # type: ignore[attr-defined]
