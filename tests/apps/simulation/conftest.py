"""Fixtures the simulation's tests share."""

from __future__ import annotations

from typing import Any

import pytest

from secagg.apps.simulation import runner


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal at config load: the data is never even generated."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the run started: the refusal came too late")

    monkeypatch.setattr(runner, "load_data", refuse)
    # what run_simulation calls: patching load_data alone let a refusal after the data
    # pass (--server-learning-rate 1e308 was one, found by the runtime's plan)
    monkeypatch.setattr(runner, "_load_data", refuse)
