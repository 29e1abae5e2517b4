"""Evaluation benchmark: what the per-branch verdicts and fraud-team metrics cost;
prints JSON on stdout.

python benchmarks/bench_evaluation.py            # 1 000 resamples, 20 000 and 160 000 rows
python benchmarks/bench_evaluation.py --quick    # 200 resamples, 20 000 rows
python benchmarks/bench_evaluation.py --out benchmarks/results/evaluation.json

Why: every `secagg simulate` run judges each branch's federated model against its
local-only one with a paired, stratified bootstrap of 1 000 resamples (of cards, when the
data names them: a card's rows are one draw), and scores every
round with AUPRC, recall at 0.1 % FPR and the top-0.5 % alert metrics. Measured here
against the same computation done the obvious way (resample the rows, re-sort,
recompute: ``fraud_metrics`` on each resample), in the same run, on a test set shaped
like a branch's (0.15 % fraud, scores with ties).
"""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any

import numpy as np

from secagg.apps.bench import emit, machine_info
from secagg.apps.models.metrics import fraud_metrics, paired_difference_interval


def _branch(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Benchmark data (not a secret): labels at 0.15 % and two models' rounded scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.0015).astype(np.int8)
    y[:2] = 1
    a = np.round(rng.normal(size=rows) + 2.0 * y, 2)
    b = np.round(rng.normal(size=rows) + 1.5 * y, 2)
    amounts = rng.lognormal(4.0, 1.0, rows)
    return y, a, b, amounts


def _cards(rows: int, seed: int) -> np.ndarray:
    """A card id per row: about 25 rows a card, as the synthetic world's test period."""
    return np.random.default_rng(seed + 1).integers(0, max(2, rows // 25), rows)


def _naive_paired(y: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int) -> float:
    """The obvious paired bootstrap: resample rows per class, recompute both AUPRCs."""
    rng = np.random.default_rng(1)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    start = time.process_time()
    for _ in range(resamples):
        rows = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        fraud_metrics(y[rows], a[rows]).auprc - fraud_metrics(y[rows], b[rows]).auprc
    return time.process_time() - start


def run(quick: bool) -> dict[str, Any]:
    resamples = 200 if quick else 1000
    sizes = (20_000,) if quick else (20_000, 160_000)
    results = []
    for rows in sizes:
        y, a, b, amounts = _branch(rows, seed=rows)
        start = time.process_time()
        paired_difference_interval(y, a, b, resamples=resamples, seed=0)
        fast = time.process_time() - start
        cards = _cards(rows, seed=rows)
        start = time.process_time()
        paired_difference_interval(y, a, b, resamples=resamples, seed=0, clusters=cards)
        by_card = time.process_time() - start
        naive_resamples = max(20, resamples // 20)
        naive = _naive_paired(y, a, b, naive_resamples) * resamples / naive_resamples
        start = time.process_time()
        fraud_metrics(y, a, amounts)
        metrics = time.process_time() - start
        results.append(
            {
                "rows": rows,
                "frauds": int(y.sum()),
                "resamples": resamples,
                "paired_interval_cpu_s": round(fast, 4),
                "paired_interval_by_card_cpu_s": round(by_card, 4),
                "cards": int(np.unique(cards).size),
                "naive_paired_cpu_s_extrapolated": round(naive, 3),
                "naive_resamples_timed": naive_resamples,
                "speedup": round(naive / fast, 1) if fast > 0 else None,
                "fraud_metrics_cpu_s": round(metrics, 4),
            }
        )
    return {
        "benchmark": "evaluation",
        "date": datetime.date.today().isoformat(),
        "machine": machine_info(),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 resamples, 20 000 rows")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    emit(run(args.quick), args.out)


if __name__ == "__main__":
    main()
