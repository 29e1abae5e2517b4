"""A noise-std mismatch names figures that differ.

Verify fails a row whose recorded noise std is not its noise multiplier times its clip
(within 1e-9). The reason printed each figure with ``:g`` (6 digits, to the nearest):
a std 1e-7 above z x clip read "records noise std 1.5 but noise multiplier 1.5 x clip
1 = 1.5", which names no difference, and a std recorded above the noise added read as
that noise. Now the figures are printed exactly (``repr``).
"""

from __future__ import annotations

from pathlib import Path

from _ledgers import central_dp, ledger_row, write_ledger

from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5


def test_the_mismatch_reason_shows_the_figures_apart(tmp_path: Path) -> None:
    z, clip = 1.5, 1.0
    std = z * clip * (1 + 1e-7)  # more noise recorded than the multiplier adds
    accountant = PrivacyAccountant(DELTA, "rdp")
    accountant.step(z, 1.0)
    dp = {
        "unit": "client",
        "mechanism": "central",
        "clip": clip,
        "noise_multiplier": z,
        "noise_std": std,
        "sample_rate": 1.0,
        "accountant": "rdp",
        "delta": DELTA,
        "adjacency": "add/remove one client",
    }
    path, key = write_ledger(tmp_path / "l.sqlite", [ledger_row(1, dp, accountant.epsilon())])
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None
    assert f"records noise std {std!r} but noise multiplier 1.5 x clip 1.0 = 1.5:" in failure


def test_a_parameter_note_shows_a_recorded_z_apart_from_the_configs(tmp_path: Path) -> None:
    """A row that ran at z = 1.9999999 under a config of z = 2 read "recorded noise
    multiplier 2 (config: 2)" (``:g``): less noise than the config's, shown as the same."""
    from secagg.ledger.verify import ExpectedPrivacy

    z = 1.9999999
    accountant = PrivacyAccountant(DELTA, "rdp")
    accountant.step(z, 1.0)
    sampling = {"kind": "poisson", "rate": 1.0, "population": 3, "seeded": False}
    dp = central_dp(z, DELTA, sampling=sampling)
    path, key = write_ledger(tmp_path / "l.sqlite", [ledger_row(1, dp, accountant.epsilon())])
    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=3,
        noise_multiplier=2.0,
    )
    result = verify_ledger(path, key.public_key, expected=expected)
    assert result.ok, result.first_failure
    assert "recorded noise multiplier 1.9999999 (config: 2.0)" in result.notes[0]
