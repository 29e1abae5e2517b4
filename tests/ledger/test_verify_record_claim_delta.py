"""A record-level ledger's epsilon is stated at the delta the worst branch's latest report
accounts at, when that is larger than the last row's.

Why: a charged record-level row claims the worst branch's latest epsilon, and that may
be an earlier report. Rounds at delta 1e-3, then (after a restart under 1e-5) a round
without the worst branch: ``audit verify`` printed "epsilon 4.53 at delta 1e-05", where
4.53 is that branch's figure at 1e-3 (at 1e-5 its history spends more). An epsilon
holds at any larger delta, so the larger one is the safe side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _ledgers import branch_report, record_dpsgd_row, verify_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import export_public_key
from secagg.ledger.verify import verify_ledger

BRANCHES = ["h-a", "h-b", "h-c"]


def _report(steps: int, delta: float) -> dict[str, Any]:
    history = [(1.0, 0.02, steps)]
    epsilon = RecordLevelAccountant("rdp", delta, history).epsilon()
    return branch_report(history, epsilon, delta=delta)


def _rows(second_delta: float) -> list[dict[str, Any]]:
    """Round 1 at 1e-3, h-a the worst branch; round 2 at ``second_delta`` without h-a,
    claiming h-a's figure (the worst branch's latest, as the server writes it)."""
    first = record_dpsgd_row(
        1, BRANCHES, {"h-a": _report(2000, 1e-3), "h-b": _report(100, 1e-3),
                      "h-c": _report(100, 1e-3)}, delta=1e-3, population=3,
    )  # fmt: skip
    second = record_dpsgd_row(
        2, BRANCHES[1:], {h: _report(200, second_delta) for h in BRANCHES[1:]},
        delta=second_delta, population=3,
    )  # fmt: skip
    second["privacy"]["epsilon"] = max(first["privacy"]["epsilon"], second["privacy"]["epsilon"])
    return [first, second]


def test_the_claim_is_at_the_worst_branchs_larger_delta(tmp_path: Path) -> None:
    result = verify_rows(tmp_path / "r.sqlite", _rows(1e-5))
    assert result.ok, result.first_failure
    assert result.record_level["h-a"] == result.epsilons[-1][1]  # h-a's figure is the claim
    assert result.claim_delta() == 1e-3
    note = next(n for n in result.notes if "more than one delta" in n)
    assert "holds at delta 0.001 only" in note, note


def test_verify_prints_the_larger_delta(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "r.sqlite", _rows(1e-5))
    pub = str(export_public_key(key.public_key, tmp_path / "r.pub"))
    out = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub])
    assert out.exit_code == 0, out.stdout
    assert out.stdout.splitlines()[0].endswith("at delta 0.001"), out.stdout


def test_one_delta_throughout_is_the_rows(tmp_path: Path) -> None:
    """The control: every report at the row's delta; the claim is at that delta."""
    result = verify_rows(tmp_path / "r.sqlite", _rows(1e-3))
    assert result.ok, result.first_failure
    assert result.claim_delta() == 1e-3
    assert not [n for n in result.notes if "more than one delta" in n]


def test_a_worst_branch_in_the_prior_ledger_sets_the_delta_too(tmp_path: Path) -> None:
    """The same rounds split: round 1 (h-a's last report, at 1e-3) in the prior ledger,
    round 2 at 1e-5 in this file. The claim read "at delta 1e-05" while the delta note,
    which reads both files, said it "holds at delta 0.001 only"."""
    first, second = _rows(1e-5)
    for row in (first, second):
        row["federation"] = "test"
    prior, key = write_ledger(tmp_path / "prior.ledger", [first])
    tail, _ = write_ledger(tmp_path / "tail.ledger", [second], key)
    result = verify_ledger(tail, key.public_key, prior_ledger=prior)
    assert result.ok, result.first_failure
    assert result.claim_delta() == 1e-3
    # both rounds in the prior ledger, and a ledger just begun afresh (no row of its
    # own): the prior ledger's claim, at the same delta
    both, _ = write_ledger(tmp_path / "both.ledger", [first, second], key)
    empty, _ = write_ledger(tmp_path / "empty.ledger", [], key)
    alone = verify_ledger(empty, key.public_key, prior_ledger=both)
    assert alone.ok, alone.first_failure
    assert alone.prior_epsilon == result.record_level["h-a"]
    assert alone.claim_delta() == 1e-3
