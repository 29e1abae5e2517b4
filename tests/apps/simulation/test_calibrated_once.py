"""DP-SGD's noise is searched once per run for each distinct input: the check before
training (:func:`~secagg.apps.simulation.early_checks.check_dpsgd_calibration`) and the
trainers built later share the DP engine's memo, and get the same noise.

Why pinned: a profile (2026-12-06) read three calibrations and two searches of one run
as repeated work; they were three branches and two distinct (sample rate, steps), each
searched once. A memo key that came to differ between the check and the trainers (a
rounded rate, another delta) would double the most expensive step before training (a
PRV search: 2-3 s of CPU each) without changing any figure. A guard: it passes before.
"""

from __future__ import annotations

from typing import Any

import pytest

from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig

#: two small branches, customer-level DP-SGD for a target epsilon (the default mechanism)
SMALL = SimulationConfig(
    branches=2, rounds=1, local_epochs=1, train_rows=600, test_rows_per_branch=200, epsilon=3.0
)


def test_the_check_and_the_trainers_search_each_input_once_and_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from secagg.dp import dpsgd

    searched: list[tuple[Any, ...]] = []

    def counted(prior: Any, **inputs: Any) -> float:
        """A stand-in for the PRV search (seconds each; the memo is what is checked): a
        noise of its own for each input, so that a trainer's tells which it was."""
        searched.append((tuple(prior), *sorted((k, v) for k, v in inputs.items() if k != "said")))
        return 1.0 + len(searched) / 8

    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})  # this test's searches, none before
    monkeypatch.setattr(dpsgd, "_search_after", counted)
    branches, _, _ = runner._load_data(SMALL)
    runner.check_dpsgd_calibration(SMALL, branches)
    assert searched and len(searched) == len(set(searched)) <= len(branches)
    after_check = list(searched)
    runner.check_dpsgd_calibration(SMALL, branches)  # the seed's run checks again
    noise: dict[str, set[float]] = {}
    for branch in branches:
        for role in ("local", "federated"):
            trainer = runner.BranchTrainer(SMALL, branch, role)
            assert trainer.dpsgd is not None
            noise.setdefault(branch.name, set()).add(trainer.dpsgd.noise_multiplier)
    assert searched == after_check  # no second search: the memo answered
    # each branch's trainers train with one noise, the one the check found
    z_checked = {z for z, _ in dpsgd._CALIBRATIONS.values()}
    assert all(len(zs) == 1 and zs <= z_checked for zs in noise.values()), noise
