"""The bank-fraud example hook scales its features without looking at its own rows.

Why: it standardised with the branch's own mean and std, which move with every record,
so the model depended on data no DP-SGD noise covered and the epsilon it reported to
the signed ledger was not the epsilon of what ran (review of 2026-12-06)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank_fraud"


def _write(path: Path, rows: list[tuple[float, int, int]]) -> Path:
    lines = ["amount,velocity,is_fraud"] + [f"{a:.3f},{v},{y}" for a, v, y in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _features_of(monkeypatch: pytest.MonkeyPatch, path: Path) -> np.ndarray:
    """The features the hook hands DP-SGD for the branch file ``path``."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import dpsgd_hook

    seen: list[np.ndarray] = []
    real = dpsgd_hook.as_dataset

    def spy(features: Any, labels: Any) -> Any:
        seen.append(np.array(features, dtype=np.float64))
        return real(features, labels)

    monkeypatch.setattr(dpsgd_hook, "as_dataset", spy)
    monkeypatch.setenv("SECAGG_BRANCH_CSV", str(path))
    monkeypatch.setenv("SECAGG_ROUNDS", "2")
    dpsgd_hook.make_hook("branch-001", 3)
    return seen[-1]


def _rows(seed: int) -> list[tuple[float, int, int]]:
    rng = np.random.default_rng(seed)
    return [
        (float(rng.normal(3 + 2 * (i % 15 == 0), 1)), int(rng.poisson(2)), int(i % 15 == 0))
        for i in range(300)
    ]


@pytest.mark.parametrize("stats", [False, True])
def test_one_record_more_changes_no_other_records_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stats: bool
) -> None:
    """Neighbouring branch files (one outlying record added) give every shared record
    the same features: the scaling is data-independent, as DP-SGD's epsilon assumes."""
    if stats:
        public = {
            "features": {"amount": {"mean": 3.0, "std": 1.5}, "velocity": {"mean": 2.0, "std": 1.4}}
        }
        (tmp_path / "stats.json").write_text(json.dumps(public))
        monkeypatch.setenv("SECAGG_FEATURE_STATS", str(tmp_path / "stats.json"))
    rows = _rows(0)
    one = _features_of(monkeypatch, _write(tmp_path / "one.csv", rows))
    other = _features_of(monkeypatch, _write(tmp_path / "other.csv", [*rows, (400.0, 90, 1)]))
    assert np.array_equal(one, other[: len(rows)])
    if stats:  # the public statistics are applied, not ignored
        amounts = np.array([round(a, 3) for a, _, _ in rows])  # as written
        assert np.allclose(one[:, 0], (amounts - 3.0) / 1.5, atol=1e-4)
