"""Count the record-level replays the server starts, for the tests of its report checks.

Why a helper: a report refused as it arrives must start no replay (one of PRV's can cost
seconds to minutes of CPU), and three test files recorded the replays with the same
dozen lines (``duplicates --change``)."""

from __future__ import annotations

import pytest

from secagg.dp import release as release_module


def replays_started(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every replay the server starts from now on, by its history (a report refused on
    arrival starts none): ``RecordLevelAccountant.epsilon`` counted, then run."""
    asked: list[object] = []
    real = release_module.RecordLevelAccountant.epsilon

    def counted(self: object) -> float:
        asked.append(getattr(self, "history", None))
        return real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(release_module.RecordLevelAccountant, "epsilon", counted)
    return asked
