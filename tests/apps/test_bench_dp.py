"""The DP benchmark's plaintext pass, the figure every step is divided by, is a floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from secagg.apps.bench import dp


def _scripted(monkeypatch: pytest.MonkeyPatch, plaintext: list[float], step: list[float]):
    """Stand in for the timing loop: the plaintext pass's runs, then every step's."""
    calls: list[tuple[Callable[[], Any], Callable[[], None]]] = []
    answers = iter([plaintext] + [step] * len(dp.STEPS))

    def timed(work: Callable[[], Any], runs: int, setup: Callable[[], None]) -> list[float]:
        calls.append((work, setup))
        return next(answers)

    monkeypatch.setattr(dp, "_median_seconds", timed)
    return calls


def test_the_plaintext_pass_is_its_fastest_run_not_its_median(monkeypatch):
    """A slow spell during most runs of the pass must not make every step look cheaper."""
    _scripted(monkeypatch, [5e-3, 1e-3, 5e-3, 5e-3, 5e-3], [2e-3, 2e-3, 2e-3])
    cell = dp._measure(10_000, 3, progress=False)
    assert cell["plaintext_pass_seconds"] == 1e-3
    assert cell["plaintext_pass_seconds_runs"] == [5e-3, 1e-3, 5e-3, 5e-3, 5e-3]
    for step in dp.STEPS:
        assert cell[f"{step}_vs_plaintext"] == pytest.approx(2.0)
