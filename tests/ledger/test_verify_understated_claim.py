"""A claim below its replay fails beyond float noise; within it, it is flagged, and no
figure shows it.

``audit verify`` accepted a claim within 1e-6 (relative) of the epsilon it replays, on
either side, silently. The report then printed the *claim*: a ledger whose replay gives
2.0000001 and whose rows claim 1.9999991 read "epsilon = 2.000" (rounded up from the
claim) where the mechanism's epsilon rounds up to 2.001. Then verify noted every claim
below its replay and the report printed the larger of the two; now the tolerance is
one-sided: a claim may lie up to 1e-6 *above* its replay (the safe side), but only
float noise (1e-8) below it: the 1e-6-below claim fails, naming the row. A claim within
the float noise below is still noted, and the replay is what every figure shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_dp, ledger_row, write_ledger

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
    """A noise multiplier whose one round's epsilon lies in (2, 2 + 1e-10]."""
    low, high = 1.0, 10.0  # epsilon(low) > 2 > epsilon(high)
    for _ in range(200):
        middle = (low + high) / 2
        if _epsilon(middle) > BOUNDARY:
            low = middle
        else:
            high = middle
        if BOUNDARY < _epsilon(low) <= BOUNDARY + 1e-10:
            return low
    raise AssertionError("no z found")


def _ledger(tmp_path: Path, below: float = 5e-10) -> tuple[Path, bytes, float, float]:
    """One row claiming ``below`` (relative) less than its replay, which lies just above
    the boundary the report's 3 decimals round at."""
    z = _z_just_above_boundary()
    true = _epsilon(z)
    claim = true * (1 - below)
    assert claim < BOUNDARY < true
    dp = central_dp(z, DELTA)
    path, key = write_ledger(tmp_path / "l.sqlite", [ledger_row(1, dp, claim, delta=DELTA)])
    return path, key.public_key, claim, true


def test_a_claim_one_part_in_a_million_below_its_replay_fails(tmp_path: Path) -> None:
    """Before: verified (the symmetric 1e-6 tolerance), only noted."""
    path, public_key, claim, true = _ledger(tmp_path, below=5e-7)
    result = verify_ledger(path, public_key)
    assert not result.ok
    assert result.first_failure == (
        f"row 1 (round 1): claims epsilon {claim} but its recorded mechanism gives {true} "
        "(the claim is below the mechanism's)"
    )
    text, _ = build_report(path, public_key)
    assert "**FAILED**: row 1 (round 1): claims epsilon" in text


def test_a_claim_above_its_replay_within_the_tolerance_verifies_and_is_shown(
    tmp_path: Path,
) -> None:
    """The safe side keeps its tolerance: a claim that overstates the replay by less than
    one part in a million verifies, and the claim (the larger) is what is shown."""
    path, public_key, _claim, true = _ledger(tmp_path)
    over = true * (1 + 5e-7)
    dp = verify_ledger(path, public_key).chain.rows[0].entry["dp"]
    path, key = write_ledger(tmp_path / "over.sqlite", [ledger_row(1, dp, over, delta=DELTA)])
    result = verify_ledger(path, key.public_key)
    assert result.ok and not result.understated, result.first_failure
    assert result.shown_epsilon(1, over) == over


def test_verify_flags_a_claim_below_its_replay_within_float_noise(tmp_path: Path) -> None:
    path, public_key, claim, true = _ledger(tmp_path)
    result = verify_ledger(path, public_key)
    assert result.ok  # float noise: not a failure
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


def test_a_claim_that_matches_only_a_lower_from_scratch_figure_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The from-scratch fallback (``EpsilonReplay.older_claim``) must not pull the replay
    below the incremental accountant's figure. Measured, the two agree to ~4e-12; here
    the from-scratch one is made 5e-6 lower. Before: a claim matching it verified and
    verify printed it, below what the incremental replay gives; now the replay is held
    to the larger of the two and the claim fails as below the mechanism's."""
    z = 3.0
    true = _epsilon(z)
    lower = true * (1 - 5e-6)
    monkeypatch.setattr(PrivacyAccountant, "reference_epsilon", lambda self: lower)
    dp = central_dp(z, DELTA)
    path, key = write_ledger(tmp_path / "old.sqlite", [ledger_row(1, dp, lower, delta=DELTA)])
    result = verify_ledger(path, key.public_key)
    assert not result.ok
    assert "(the claim is below the mechanism's)" in str(result.failure)
    assert result.epsilons[-1][1] == true
