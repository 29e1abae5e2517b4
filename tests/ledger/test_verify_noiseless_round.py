"""A round released with a DP block but no noise (noise multiplier 0) makes the ledger
NOT PRIVATE, as a round released without a DP block does.

Why: its replayed epsilon is infinite and the row claims "inf", so every claim followed
and ``audit verify`` said ``VERIFIED ... cumulative epsilon inf`` with exit 0 and
``"private": true`` in ``--json``: a script checking the exit status passed a ledger
that promises nothing (hostile review, 2026-12-05).
"""

from __future__ import annotations

import json
from pathlib import Path

from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.report import build_report

DELTA = 1e-5


def _refuse(constant: str) -> None:
    raise AssertionError(f"--json printed {constant}, which is no JSON")


def test_a_round_without_noise_is_not_private(tmp_path: Path) -> None:
    noisy, _ = central_client_rows([("a", "b")], 1.5, DELTA)
    rows, epsilon = central_client_rows([("a", "b"), ("a", "c"), ("b", "c")], 1.5, DELTA)
    noiseless, _ = central_client_rows([("a", "b"), ("a", "c")], 0.0, DELTA)
    rows[1] = noiseless[1]  # round 2 added no noise; round 3 carries the infinity on
    assert rows[1]["dp"]["noise_multiplier"] == 0.0 and epsilon < float("inf")
    rows[2]["privacy"]["epsilon"] = "inf"
    path, key = write_ledger(tmp_path / "l.ledger", [noisy[0], *rows[1:]])
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    args = ["audit", "verify", str(path), "--pubkey", pub]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3, result.output
    assert (
        "round 2: released with a DP block but no noise (noise multiplier 0): epsilon is "
        "infinite from this round on"
    ) in result.output
    payload = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout, parse_constant=_refuse)
    assert payload["private"] is False and payload["exit_status"] == 3
    assert payload["epsilon"] == "inf"
    assert payload["per_client"]["every_round_epsilon"] == "inf"
    text, _ = build_report(path, key.public_key)
    assert "**NOT PRIVATE**: round 2 released with a DP block but no noise" in text
