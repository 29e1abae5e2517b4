"""``audit verify``'s float tolerances only ever go to the safe side.

Recorded parameters that must agree were compared with a symmetric 1e-9 relative
tolerance, so a row could print a delta a hair *below* the one its epsilon holds at,
record a noise std a hair below noise multiplier x clip (less noise than the replay
assumes), or account at a delta a hair above the config's, and verify. The writer
computes both sides of each pair from the same floats, so an honest row is exact; a
hair on the safe side (a printed delta above the accounted one, more noise) still
verifies. And ``verify`` printed the replayed cumulative epsilon where the last row
claimed a hair more (the report shows the larger).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.display import shown
from secagg.ledger import export_public_key
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

Z, DELTA = 1.5, 1e-5
HAIR = 1e-12  # far inside the old 1e-9 tolerance


def _rows() -> list[dict[str, Any]]:
    return central_client_rows([("a", "b"), ("a", "c")], Z, DELTA)[0]


def _verify(tmp_path: Path, rows: list[dict], expected: ExpectedPrivacy | None = None):
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    return verify_ledger(path, key.public_key, expected=expected)


def _printed_delta(rows: list[dict], delta: float) -> list[dict]:
    rows = copy.deepcopy(rows)
    rows[1]["privacy"]["delta"] = delta
    return rows


def _noise_std(rows: list[dict], std: float) -> list[dict]:
    rows = copy.deepcopy(rows)
    rows[1]["dp"]["noise_std"] = std
    return rows


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda rows: _printed_delta(rows, DELTA * (1 - HAIR)), "prints delta"),
        (lambda rows: _noise_std(rows, Z * (1 - HAIR)), "records noise std"),
    ],
    ids=["printed delta below the accounted", "noise std below z x clip"],
)
def test_a_hair_on_the_unsafe_side_fails(tmp_path: Path, change: Any, said: str) -> None:
    result = _verify(tmp_path, change(_rows()))
    assert not result.ok
    assert str(result.first_failure).startswith(f"row 2 (round 2): {said}")


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: _printed_delta(rows, DELTA * (1 + HAIR)),
        lambda rows: _noise_std(rows, Z * (1 + HAIR)),
    ],
    ids=["printed delta above the accounted", "noise std above z x clip"],
)
def test_a_hair_on_the_safe_side_verifies(tmp_path: Path, change: Any) -> None:
    result = _verify(tmp_path, change(_rows()))
    assert result.ok, result.first_failure


def _expected(delta: float) -> ExpectedPrivacy:
    return ExpectedPrivacy(
        delta=delta,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=0.5,
        population=4,
    )


def test_a_row_accounted_a_hair_above_the_configs_delta_fails(tmp_path: Path) -> None:
    result = _verify(tmp_path, _rows(), _expected(DELTA * (1 - HAIR)))
    assert not result.ok
    assert "but the config's delta is" in str(result.first_failure)
    # a hair below the config's delta promises more than the config: it verifies
    (tmp_path / "b").mkdir()
    assert _verify(tmp_path / "b", _rows(), _expected(DELTA * (1 + HAIR))).ok


def test_verify_prints_the_larger_of_the_last_claim_and_its_replay(tmp_path: Path) -> None:
    rows = _rows()
    replayed = rows[-1]["privacy"]["epsilon"]
    claim = replayed * (1 + 5e-7)  # within the tolerance above the replay
    rows[-1]["privacy"]["epsilon"] = claim
    path, key = write_ledger(tmp_path / "l.sqlite", rows)
    assert verify_ledger(path, key.public_key).ok
    pem = export_public_key(key.public_key, tmp_path / "k.pub")
    run = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem), "--json"])
    assert json.loads(run.output)["epsilon"] == claim
    run = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    # printed rounded up at its delta: from the claim, the larger figure
    assert f"cumulative epsilon {shown(claim, 3)} at delta" in run.output
