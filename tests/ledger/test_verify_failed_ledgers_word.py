"""``audit verify`` takes nothing on the ledger's word for a FAILED ledger: ``--json``'s
``on_the_ledgers_word`` is ``[]`` there, as the text output and ``audit report`` (which
print those lines for a verified ledger only) have it.

Why: a ledger whose last claim fails its replay printed ``"verdict": "FAILED"`` beside
``"on_the_ledgers_word": ["the noise multiplier 3 DP rows record, replayed as recorded
..."]``: the rows that had just failed read as replayed and vouched for on trust
(review of the audit command's edges, 2026-12-06).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _ledger(tmp_path: Path, *, understate_last: bool) -> tuple[Path, bytes, Path]:
    """A central ledger at z = 10, without a config (so its z is the ledger's word), its
    last claim halved (a claim below its mechanism's: FAILED) or as the accountant gave it."""
    rows, _ = central_client_rows(COHORTS, 10.0, DELTA)
    if understate_last:
        rows[-1]["privacy"]["epsilon"] /= 2
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    return path, key.public_key, export_public_key(key.public_key, tmp_path / "l.pub")


@pytest.mark.parametrize("understate_last", [True, False], ids=["failed", "verified"])
def test_the_ledgers_word_is_said_for_a_verified_ledger_only(
    tmp_path: Path, understate_last: bool
) -> None:
    path, _, pub = _ledger(tmp_path, understate_last=understate_last)
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pub), "--json"]
    )
    payload = json.loads(result.stdout)
    if understate_last:
        assert result.exit_code == 1 and payload["verdict"] == "FAILED"
        assert "the claim is below the mechanism's" in payload["first_failure"]
        assert payload["on_the_ledgers_word"] == []
    else:
        assert result.exit_code == 0 and payload["verdict"] == "VERIFIED"
        (said,) = payload["on_the_ledgers_word"]
        assert said.startswith("the noise multiplier 3 DP rows record, replayed as recorded")


def test_the_method_itself_says_nothing_for_a_failed_result(tmp_path: Path) -> None:
    """The rule is the result's, so a new consumer need not know to check ``ok`` first."""
    path, public_key, _ = _ledger(tmp_path, understate_last=True)
    result = verify_ledger(path, public_key)
    assert not result.ok and result.noise_multiplier_rows
    assert result.ledgers_word() == []
