"""A record-level privacy report's numbers are taken as they are or refused (review
2026-12-05): ``RecordReport.from_dict`` turned a step count of 3.5 into 3 (``int()``
truncates), ``"3"`` into 3 and ``True`` into 1, and a count past the wire's u32 field
into a report that could not be sent. A report whose history undercounts its steps
would let the server claim a smaller epsilon than the branch spent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secagg.dp.release import RecordReport
from secagg.errors import MalformedMessage


def _dict(**changes: object) -> dict[str, object]:
    report: dict[str, object] = {
        "accountant": "prv",
        "delta": 1e-5,
        "epsilon": 1.5,
        "history": [[1.1, 0.01, 10]],
        "max_grad_norm": 1.0,
        "unit": "customer",
    }
    report.update(changes)
    return report


@pytest.mark.parametrize("steps", [3.5, 1e300, math.nan, math.inf, True, "3", 3.0, -1, 2**32])
def test_a_step_count_that_is_not_a_whole_number_is_refused(steps: object) -> None:
    with pytest.raises(MalformedMessage, match="steps"):
        RecordReport.from_dict(_dict(history=[[1.1, 0.01, steps]]))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("delta", "1e-5"),
        ("delta", True),
        ("delta", math.nan),
        ("delta", 0.0),
        ("epsilon", "1.5"),
        ("epsilon", True),
        ("epsilon", math.nan),
        ("epsilon", -math.inf),
        ("epsilon", 10**400),
        ("max_grad_norm", "1.0"),
        ("max_grad_norm", math.inf),
        ("max_grad_norm", False),
    ],
)
def test_a_number_field_that_is_not_a_number_in_range_is_refused(key: str, value: object) -> None:
    with pytest.raises(MalformedMessage, match=key):
        RecordReport.from_dict(_dict(**{key: value}))


@pytest.mark.parametrize(
    "entry",
    [
        ["1.1", 0.01, 10],
        [True, 0.01, 10],
        [math.nan, 0.01, 10],
        [math.inf, 0.01, 10],
        [1.1, "0.01", 10],
        [1.1, math.nan, 10],
        [1.1, 1.5, 10],
        [1.1, 0.01],
    ],
)
def test_a_history_entry_with_a_bad_noise_multiplier_or_rate_is_refused(entry: list) -> None:
    with pytest.raises(MalformedMessage):
        RecordReport.from_dict(_dict(history=[entry]))


def test_a_fractional_step_count_is_refused_when_built_directly_too() -> None:
    with pytest.raises(MalformedMessage, match="steps"):
        RecordReport("prv", 1e-5, 1.5, ((1.1, 0.01, 3.5),))  # type: ignore[arg-type]


def test_an_honest_report_round_trips_exactly() -> None:
    """What a trainer sends (ints, floats, numpy scalars, +inf epsilon: no noise) is kept
    as it is."""
    honest = _dict(history=[[np.float64(1.1), 0.01, np.int64(10)], [2, 1, 0]])
    report = RecordReport.from_dict(honest)
    assert report.history == ((1.1, 0.01, 10), (2.0, 1.0, 0))
    assert all(type(steps) is int for _, _, steps in report.history)
    assert RecordReport.from_dict(report.as_dict()) == report
    assert RecordReport.from_dict(_dict(epsilon=math.inf)).epsilon == math.inf
    assert RecordReport.from_dict(_dict(max_grad_norm=None)).max_grad_norm is None
