"""``--json``'s ``"rounds_accounted"``: every round the ``"epsilon"`` covers, the prior
ledger's included. ``"rows"`` counts this file's rows only, so a script reading it
beside the federation's epsilon of six rounds read three (the prior ledger's count was
under ``prior_ledger.rows``; left alone in the review of 2026-12-05)."""

from __future__ import annotations

import json
from pathlib import Path

from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("a", "d")]


def _json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["audit", "verify", *args, "--json"])
    return json.loads(result.stdout)


def test_rounds_accounted_counts_the_prior_ledgers_rounds_too(tmp_path: Path) -> None:
    rows, epsilon = central_client_rows(COHORTS, Z, DELTA)
    prior, key = write_ledger(tmp_path / "rounds-1-3.ledger", rows[:3])
    tail, _ = write_ledger(tmp_path / "rounds-4-6.ledger", rows[3:], key)
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    payload = _json(str(tail), "--pubkey", pub, "--prior-ledger", str(prior))
    assert payload["verdict"] == "VERIFIED", payload["first_failure"]
    assert payload["rows"] == 3 and payload["prior_ledger"]["rows"] == 3
    assert payload["rounds_accounted"] == 6
    assert payload["epsilon"] >= epsilon * (1 - 1e-8)


def test_rounds_accounted_is_the_rows_of_a_whole_ledger(tmp_path: Path) -> None:
    rows, _ = central_client_rows(COHORTS[:4], Z, DELTA)
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    payload = _json(str(path), "--pubkey", pub)
    assert payload["rows"] == payload["rounds_accounted"] == 4
