"""``audit verify`` replays incrementally (reliability review D7).

A 200-row ledger took 9 min 36 s to verify when every row's epsilon was recomputed from
the whole history. The replay now steps one accountant per row and composes only that
row's round. These tests hold correctness only (every claim the server's mechanism wrote
replays, rows are composed one at a time, a ledger written by the from-scratch code still
verifies); the time is measured by ``benchmarks/bench_accounting.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import write_ledger

from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.verify import verify_ledger

DELTA, N = 1e-5, 20
#: the from-scratch computation, kept before the ``no_from_scratch`` fixture replaces it
original_reference = PrivacyAccountant.reference_epsilon


def _rows(
    rounds: int, *, mechanism: str, sample_rate: float, z: float = 1.1, older: bool = False
) -> list[dict]:
    """Rows as the server writes them: the claims come from the server's own mechanism
    (its accountant, stepped once per released round). ``older``: central rows as the
    code before 2026-12-03 wrote them (no ``composition``, the Poisson claim at q, the
    participants withheld), whose claims the replay's older path checks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warnings
        release = mechanism_for(
            DPSettings(mechanism=mechanism, noise_multiplier=z, delta=DELTA),
            dimension=4,
            bits=32,
            sample_rate=sample_rate,
            expected_clients=N * sample_rate,
            corrupt_fraction=0.1,
            seed=b"s" * 16,
            population=N,
        )
    cohort = max(2, round(N * sample_rate))  # every round draws the expected cohort
    rows = []
    poisson = PrivacyAccountant(DELTA)
    for number in range(1, rounds + 1):
        names = tuple(f"b{(number * cohort + i) % N}" for i in range(cohort))
        release.round_options(cohort)
        release.begin_round(names)
        out = release.release(
            np.zeros(4), contributors=cohort, participants=cohort, noise_added=0.0
        )
        dp: dict[str, Any] = release.ledger_block(out.store) | {
            "sampling": {"kind": "poisson", "rate": sample_rate, "population": N}
        }
        claim = out.epsilon
        if older:
            dp.pop("composition")
            dp["sample_rate"] = sample_rate
            poisson.step(z, sample_rate)
            claim = poisson.epsilon()
        entry = LedgerEntry(
            federation="speed", round=number, status="complete", reason=None,
            started_at=None, finished_at=1.0e9 + number, backend={"name": "secagg+"},
            participants=names, contributed=cohort, dropouts={},
            dp=dp, epsilon=claim, delta=DELTA, model_sha256=f"{number:064x}",
            publish_participants=not older,
            legacy_layout=True,  # a row before dp.sampling was recorded (version 2)
        )  # fmt: skip
        rows.append(entry.row(lambda name: name))
    return rows


@pytest.fixture
def no_from_scratch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fails the test if the replay recomputes any epsilon from the whole history."""
    calls: list[int] = []

    def refuse(self: PrivacyAccountant) -> float:
        calls.append(self.rounds)
        raise AssertionError("the replay recomputed an epsilon from scratch")

    monkeypatch.setattr(PrivacyAccountant, "reference_epsilon", refuse)
    return calls


@pytest.mark.parametrize(("sample_rate", "rounds"), [(1.0, 300), (0.1, 60)])
def test_d7_central_ledger_replays_row_by_row(
    tmp_path: Path, no_from_scratch: list[int], sample_rate: float, rounds: int
) -> None:
    """q = 1 (the config default: the closed form) and q = 0.1 (one PLD convolution per
    row): every claim replays, without one from-scratch recomputation."""
    rows = _rows(rounds, mechanism="central", sample_rate=sample_rate)
    path, key = write_ledger(tmp_path / "central.sqlite", rows)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert no_from_scratch == [] and result.from_scratch == 0
    claims = [row["privacy"]["epsilon"] for row in rows]
    assert [eps for _, eps in result.epsilons] == pytest.approx(claims, rel=1e-12)
    assert claims == sorted(claims) and claims[0] < claims[-1]


def test_d7_distributed_ledger_replays_row_by_row(tmp_path: Path) -> None:
    rows = _rows(300, mechanism="distributed", sample_rate=1.0)
    path, key = write_ledger(tmp_path / "distributed.sqlite", rows)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    claims = [row["privacy"]["epsilon"] for row in rows]
    assert [eps for _, eps in result.epsilons] == claims


def test_d7_a_ledger_written_by_the_from_scratch_accountant_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims written before accounting became incremental may differ from it within
    the PLD discretisation: such a claim is checked against the from-scratch value (and
    noted); a claim matching neither still fails."""
    # 3 rows (was 5): each is replayed from scratch here, the property is per row
    rows = _rows(3, mechanism="central", sample_rate=0.1, older=True)
    shift = 1 + 1e-5  # an older accountant's value, inside the discretisation, not 1e-6
    for row in rows:
        row["privacy"]["epsilon"] *= shift
    path, key = write_ledger(tmp_path / "old.sqlite", rows)
    original = PrivacyAccountant.reference_epsilon
    # the older accountant's figure of a history: both replays below ask it of the same
    # histories (the second stops at row 2), each a from-scratch PLD, so it is computed once
    older: dict[str, float] = {}

    def older_reference(self: PrivacyAccountant) -> float:
        history = json.dumps([self.delta, self.accountant, self.history], sort_keys=True)
        if history not in older:
            older[history] = original(self) * shift
        return older[history]

    monkeypatch.setattr(PrivacyAccountant, "reference_epsilon", older_reference)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.from_scratch == 3
    assert any("from-scratch PLD accountant" in note for note in result.notes)
    rows[1]["privacy"]["epsilon"] *= 1.01  # neither value: a changed claim, after a good row
    path, key = write_ledger(tmp_path / "edited.sqlite", rows)
    result = verify_ledger(path, key.public_key)
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 2 (round 2): claims epsilon")


def test_d7_full_participation_claims_of_the_older_pld_code_verify_without_redoing_it(
    tmp_path: Path, no_from_scratch: list[int]
) -> None:
    """Where every client is sampled the older code claimed dp_accounting's discretised
    PLD, up to one discretisation step (1e-4) above the exact Gaussian the replay now
    computes: such claims verify without rebuilding that PLD (2-50 s a row); a claim
    below the exact value, or further above it, does not."""
    # 3 rows (was 6): each older claim is a from-scratch PLD of its history to write
    rows = _rows(3, mechanism="central", sample_rate=1.0, older=True)
    exact = [row["privacy"]["epsilon"] for row in rows]
    older = PrivacyAccountant(DELTA)
    for row in rows:
        older.step(1.1, 1.0)
        row["privacy"]["epsilon"] = original_reference(older)  # what the older code wrote
    path, key = write_ledger(tmp_path / "older.sqlite", rows)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert no_from_scratch == []
    for shift, ok in ((0.5e-4, True), (3e-4, False), (-1e-5, False)):
        for row, value in zip(rows, exact, strict=True):
            row["privacy"]["epsilon"] = value + shift
        path, key = write_ledger(tmp_path / f"shift{shift}.sqlite", rows)
        result = verify_ledger(path, key.public_key)
        assert result.ok is ok, (shift, result.first_failure)
        if ok:
            assert result.from_scratch == len(rows)
        else:
            assert result.first_failure is not None
            assert result.first_failure.startswith("row 1 (round 1): claims epsilon")
    assert no_from_scratch == []
