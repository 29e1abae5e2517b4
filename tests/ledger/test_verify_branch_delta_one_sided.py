"""Record-level DP-SGD: a branch may not account at a delta above its row's, by any amount.

A branch's report was held to its row's delta with the symmetric float tolerance (1e-9
relative): a branch accounting at a hair *larger* delta (so a hair smaller epsilon)
than the row prints verified. The writer records both from the same float, so the
unsafe side now fails at any distance; a hair below is still float noise and passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _ledgers import write_ledger

from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
HISTORY = [(1.0, 0.02, 100)]


def _row(branch_delta: float) -> dict[str, Any]:
    with np.errstate(divide="ignore"):
        epsilon = RecordLevelAccountant("rdp", branch_delta, HISTORY).epsilon()
    return {
        "round": 1,
        "status": "complete",
        "participants": {"count": 1, "identity_hashes": ["h-a"]},
        "contributed": 1,
        "dropouts": {},
        "backend": {"name": "secagg+"},
        "dp": {
            "unit": "record",
            "mechanism": "dpsgd",
            "clip": 1.0,
            "sample_rate": 1.0,
            "accountant": "in-clients",
            "delta": DELTA,
            "client_reports": {
                "h-a": {
                    "accountant": "rdp",
                    "delta": branch_delta,
                    "history": [list(h) for h in HISTORY],
                    "epsilon": epsilon,
                    "unit": "customer",
                }
            },
        },
        "privacy": {"epsilon": epsilon, "delta": DELTA},
        "model_sha256": "0" * 64,
        "noise_seeded": False,
        "version": 2,
    }


@pytest.mark.parametrize(
    ("branch_delta", "verifies"),
    [(DELTA, True), (DELTA * (1 - 5e-10), True), (DELTA * (1 + 5e-10), False)],
    ids=["same", "a-hair-below", "a-hair-above"],
)
def test_a_branch_delta_above_the_rows_fails(
    tmp_path: Path, branch_delta: float, verifies: bool
) -> None:
    path, key = write_ledger(tmp_path / "r.sqlite", [_row(branch_delta)])
    result = verify_ledger(path, key.public_key)
    assert result.chain.ok
    assert result.ok is verifies, result.first_failure
    if not verifies:
        assert f"accounts at delta {branch_delta} but the row accounts at delta {DELTA}" in str(
            result.failure
        )
