"""Test helpers that write CSV files for the simulator, shared by its data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_creditcard_layout(path: Path, rows: int = 1200, seed: int = 0) -> Path:
    """A file of the Kaggle credit-card layout (Time, V1..V28, Amount, Class) at its raw
    scale: Time in seconds over two days, Amount in euros (log-normal, median about
    22), V1..V28 standardised components with a fraud signal in V1..V4, 10 % fraud.
    ``--data creditcard`` scales Time and Amount itself; ``--data csv --label Class``
    does not (simulate audit, 2026-12-06: AUPRC 0.157 against 1.000)."""
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < 0.1).astype(int)
    v = rng.normal(size=(rows, 28))
    v[:, :4] += 2.0 * label[:, None]
    amount = np.exp(rng.normal(3.1, 1.8, rows))
    time = np.sort(rng.uniform(0, 2 * 86_400, rows))
    header = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]
    lines = [",".join(header)]
    for i in range(rows):
        values = [f"{time[i]:.0f}", *(f"{x:.6f}" for x in v[i]), f"{amount[i]:.2f}"]
        lines.append(",".join([*values, str(label[i])]))
    path.write_text("\n".join(lines) + "\n")
    return path
