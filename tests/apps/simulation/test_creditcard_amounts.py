"""The credit-card layout's Amount column reaches the fraud-amount metric.

Why: ``secagg simulate --data creditcard`` printed "n/a" in the "fraud € caught, top
0.5 %" column for a file that holds every row's Amount (simulate audit, 2026-12-06)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from secagg.apps.models.tabular import CREDITCARD_COLUMNS
from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig


def _write(path: Path, rows: int = 1200, seed: int = 0) -> dict[tuple[float, ...], float]:
    """A credit-card-layout file; returns each row's V1..V3 (a key) -> its Amount."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.05).astype(int)
    y[:40] = 1
    lines, amount_of = [",".join(CREDITCARD_COLUMNS)], {}
    for i in range(rows):
        v = [round(float(x), 4) for x in rng.normal(size=28) + y[i]]
        amount = round(float(rng.exponential(60)), 2)
        amount_of[tuple(v[:3])] = amount
        lines.append(",".join([str(10 * i), *map(str, v), str(amount), str(y[i])]))
    path.write_text("\n".join(lines) + "\n")
    return amount_of


def test_every_test_row_carries_its_amount(tmp_path: Path) -> None:
    amount_of = _write(tmp_path / "cards.csv")
    config = SimulationConfig(
        source="creditcard", path=str(tmp_path / "cards.csv"), branches=3, standardize="none"
    )
    branches = runner.load_branches(config)
    for b in branches:
        assert b.amount_test is not None and b.amount_test.shape == b.y_test.shape
        expected = [amount_of[tuple(round(float(v), 4) for v in row[:3])] for row in b.x_test]
        assert np.allclose(b.amount_test, expected, rtol=1e-6, atol=1e-4)
        assert np.all(b.amount_test >= 0)
