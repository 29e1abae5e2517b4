"""A noise multiplier under 1e-150 (1e-160 hung) is no noise, said at once.

Why: ``dpsgd_runs`` takes any finite z >= 0, and Opacus's fractional-order RDP series
loops forever on the NaN that dividing by a subnormal z^2 makes (z = 1e-200, whose
square is 0, already raised ZeroDivisionError and read as no noise). The call hung, so
every figure stated for such a history hung with it (found by the calibration review,
2026-12-07).
"""

from __future__ import annotations

import math
import threading

import pytest

from secagg.dp.accountants import opacus_epsilon
from secagg.dp.accounting import PrvCannotEvaluate

#: generous: the answer is immediate; before the fix the call never returned
_BOUND_S = 120.0


def _answer_within_bound(name: str, history: list[tuple[float, float, int]]) -> object:
    """``opacus_epsilon`` in a daemon thread, so a hang fails the test instead of the run."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = opacus_epsilon(name, history, 1e-5)
        except Exception as exc:  # handed back to the test's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(_BOUND_S)
    assert not worker.is_alive(), f"opacus_epsilon({name!r}, {history}) did not return"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@pytest.mark.parametrize("z", [1e-160, 1.5e-154, 1e-155, 5e-324, 9.9e-151])
def test_rdp_says_infinite_for_a_subnormal_square(z: float) -> None:
    assert _answer_within_bound("rdp", [(z, 0.5, 1)]) == math.inf


def test_prv_says_it_cannot_evaluate_a_subnormal_square() -> None:
    with pytest.raises(PrvCannotEvaluate, match="no noise"):
        _answer_within_bound("prv", [(1e-160, 0.5, 1)])


def test_a_run_that_releases_nothing_answers_as_with_noise() -> None:
    # no sampling or no step: nothing was released, so z does not matter
    for q, steps in ((0.0, 5), (0.5, 0)):
        assert _answer_within_bound("rdp", [(1e-160, q, steps)]) == _answer_within_bound(
            "rdp", [(1.0, q, steps)]
        )


def test_above_the_floor_opacus_still_answers() -> None:
    # z = 1e-149: a finite (astronomical) epsilon, as before
    value = _answer_within_bound("rdp", [(1e-149, 0.5, 1)])
    assert 1e290 < value < math.inf
