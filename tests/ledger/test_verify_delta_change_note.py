"""A ledger whose rows change delta mid-way (a restart under a new config) replays each
row at its own delta, as the server accounted it: right, but the cumulative epsilon
then holds at the last row's delta only, and a larger delta reads as a smaller epsilon.
Without ``--config`` (which holds every row to its delta) this verified silently:
rounds 1-3 at delta 1e-5 claimed 4.09, rounds 4-5 at delta 0.01 brought the "cumulative
epsilon" printed down to 3.42, the same five rounds at 1e-5 spend 6.13, and no line
said a delta had changed (``audit verify`` prints no delta). Now a note says so,
naming each delta, the round it begins at, and what the figure holds at."""

from __future__ import annotations

from pathlib import Path

from _ledgers import central_client_dp, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.ledger import export_public_key
from secagg.ledger.chain import load_public_key
from secagg.ledger.verify import verify_ledger

Z = 1.5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("a", "c")]


def _ledger(tmp_path: Path, deltas: list[float]) -> tuple[Path, str, list[float]]:
    """Per-client central rows, each claiming what the server's accountant says at the
    row's delta (a new delta rebuilds it over every round so far, as a restart does)."""
    rows, claims = [], []
    for number, delta in enumerate(deltas, start=1):
        accountant = PerClientAccountant(delta, "pld")
        for cohort in COHORTS[:number]:
            accountant.step(Z, cohort)
        claims.append(accountant.epsilon())
        rows.append(
            ledger_row(
                number,
                central_client_dp(Z, delta),
                claims[-1],
                participants=COHORTS[number - 1],
                publish_participants=True,
                delta=delta,
            )
        )
    path, key = write_ledger(tmp_path / "ledger", rows)
    return path, str(export_public_key(key.public_key, tmp_path / "ledger.pub")), claims


def _delta_notes(notes: list[str]) -> list[str]:
    return [note for note in notes if "more than one delta" in note]


def test_a_delta_raised_mid_ledger_is_noted_with_what_the_epsilon_holds_at(
    tmp_path: Path,
) -> None:
    path, pub, claims = _ledger(tmp_path, [1e-5, 1e-5, 1e-5, 0.01, 0.01])
    assert claims[-1] < claims[2]  # the larger delta: a smaller figure for more rounds
    result = verify_ledger(path, load_public_key(pub))
    assert result.ok and result.epsilons[-1][1] == claims[-1]
    (note,) = _delta_notes(result.notes)
    assert "delta 1e-05 from round 1, delta 0.01 from round 4" in note
    assert "holds at delta 0.01 only" in note
    assert "at delta 1e-05 the same rounds spend more" in note
    outcome = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub])
    assert outcome.exit_code == 0 and "holds at delta 0.01 only" in outcome.stdout


def test_a_delta_lowered_mid_ledger_is_noted_without_the_spend_more_clause(
    tmp_path: Path,
) -> None:
    path, pub, _ = _ledger(tmp_path, [0.01, 0.01, 1e-5, 1e-5, 1e-5])
    result = verify_ledger(path, load_public_key(pub))
    (note,) = _delta_notes(result.notes)
    assert "delta 0.01 from round 1, delta 1e-05 from round 3" in note
    assert "holds at delta 1e-05 only" in note and "spend more" not in note


def test_one_delta_throughout_has_no_such_note(tmp_path: Path) -> None:
    path, pub, _ = _ledger(tmp_path, [1e-5] * 5)
    result = verify_ledger(path, load_public_key(pub))
    assert result.ok and not _delta_notes(result.notes)
