"""The federation's AUPRC over its last rounds, as the console and the report print it.

A federation whose model diverged in one of its last rounds averages to NaN: the table's
cell said "diverged" while the console line beside it printed "nan" and the report
"n/a" (simulator audit, 2026-12-06)."""

from __future__ import annotations

import math

from secagg.apps.simulation.evaluation import last_rounds
from secagg.apps.simulation.report import last_rounds_auprc


def _round(number: int, auprc: float) -> dict[str, object]:
    return {
        "round": number,
        "status": "complete",
        "pooled": {"auprc": auprc},
        "mean_branch_auprc": auprc,
    }


def test_a_diverged_round_among_the_last_reads_diverged() -> None:
    last = last_rounds([_round(1, 0.5), _round(2, math.nan), _round(3, 0.6)])
    assert last is not None and math.isnan(last["auprc"])
    assert last_rounds_auprc(last["auprc"]).startswith("diverged")


def test_a_finite_mean_is_printed_to_three_digits() -> None:
    last = last_rounds([_round(1, 0.5), _round(2, 0.58), _round(3, 0.6)])
    assert last is not None
    assert last_rounds_auprc(last["auprc"]) == "0.560"
