"""A claim below its replay, within the tolerance, is flagged, and no figure shows it.

``audit verify`` accepts a claim within 1e-6 (relative) of the epsilon it replays, on
either side, silently. The report then printed the *claim*: a ledger whose replay gives
2.0000001 and whose rows claim 1.9999991 read "epsilon = 2.000" (rounded up from the
claim) where the mechanism's epsilon rounds up to 2.001. Now verify notes every claim
below its replay and the report prints, for a verified ledger, the larger of the two.
"""

from __future__ import annotations

from pathlib import Path

from _ledgers import ledger_row, write_ledger

from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
BOUNDARY = 2.0  # the report shows 3 decimals: 2.000 vs 2.001


def _epsilon(z: float) -> float:
    accountant = PrivacyAccountant(DELTA, "rdp")
    accountant.step(z, 1.0)
    return accountant.epsilon()


def _z_just_above_boundary() -> float:
    """A noise multiplier whose one round's epsilon lies in (2, 2 + 1e-7]."""
    low, high = 1.0, 10.0  # epsilon(low) > 2 > epsilon(high)
    for _ in range(200):
        middle = (low + high) / 2
        if _epsilon(middle) > BOUNDARY:
            low = middle
        else:
            high = middle
        if BOUNDARY < _epsilon(low) <= BOUNDARY + 1e-7:
            return low
    raise AssertionError("no z found")


def _ledger(tmp_path: Path) -> tuple[Path, bytes, float, float]:
    z = _z_just_above_boundary()
    true = _epsilon(z)
    claim = true * (1 - 5e-7)  # within verify's 1e-6, below the boundary
    assert claim < BOUNDARY < true
    dp = {
        "unit": "client",
        "mechanism": "central",
        "clip": 1.0,
        "noise_multiplier": z,
        "noise_std": z,
        "sample_rate": 1.0,
        "accountant": "rdp",
        "delta": DELTA,
        "adjacency": "add/remove one client",
    }
    path, key = write_ledger(tmp_path / "l.sqlite", [ledger_row(1, dp, claim, delta=DELTA)])
    return path, key.public_key, claim, true


def test_verify_flags_a_claim_below_its_replay(tmp_path: Path) -> None:
    path, public_key, claim, true = _ledger(tmp_path)
    result = verify_ledger(path, public_key)
    assert result.ok  # within the tolerance: not a failure
    assert result.epsilons[-1][1] == true  # the replay's figure, not the claim
    (note,) = [n for n in result.notes if "below" in n]
    assert "round 1" in note and repr(claim) in note and repr(true) in note


def test_the_report_shows_the_replayed_epsilon_where_the_claim_is_below(tmp_path: Path) -> None:
    path, public_key, claim, true = _ledger(tmp_path)
    assert float("2.000") < true and claim < float("2.000")
    text, _ = build_report(path, public_key)
    assert "**VERIFIED**" in text
    spent = next(x for x in text.splitlines() if x.startswith("- budget spent"))
    assert "epsilon = 2.001 " in spent
    row = next(x for x in text.splitlines() if x.startswith("| 1 | complete"))
    assert row.split("|")[-3].strip() == "2.001"
    assert "below" in text  # the note is in the report too
