"""A Ray client host's trainer gets the DP-SGD noise the driver's check calibrated,
without a search of its own.

Why: with ``engine = "ray"`` each branch's trainer is built in a client host, a process
whose calibration memo starts empty, so every host searched again (a PRV search: seconds
of CPU each) for the noise the driver had found before training. The driver now sends
its memo with each :class:`~secagg.apps.simulation.hosted.HostedBranch`. Checked without
Ray: the recipe goes through pickle as Ray's object store takes it, into a memo emptied
as a fresh host's is."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import pytest

from secagg.aggregation.policy import BranchPolicy
from secagg.apps.simulation import branch_training, federation, runner
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.hosted import HostedBranch
from secagg.errors import ConfigurationError

#: two small branches, DP-SGD for a target epsilon (the default mechanism)
SMALL = SimulationConfig(
    branches=2, rounds=1, local_epochs=1, train_rows=600, test_rows_per_branch=200, epsilon=3.0
)


def test_a_hosted_trainer_takes_the_driver_noise_without_searching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from secagg.dp import dpsgd

    def searched(prior: Any, **inputs: Any) -> float:
        """A stand-in for the driver's PRV search (seconds; the memo is what is checked):
        a noise no real search gives, so that the host's trainer tells where it came from."""
        return 1.0 + inputs["sample_rate"] / 1024

    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})
    monkeypatch.setattr(dpsgd, "_search_after", searched)
    branches, _, _ = runner._load_data(SMALL)
    runner.check_dpsgd_calibration(SMALL, branches)  # the driver's check, before training
    found = federation._driver_calibrations(SMALL)
    assert found
    recipes = [
        pickle.loads(pickle.dumps(HostedBranch(SMALL, b, None, BranchPolicy(), None, found)))
        for b in branches
    ]

    def no_search(prior: Any, **inputs: Any) -> float:
        raise AssertionError("the host searched again")

    built: list[Any] = []

    class Recorded(branch_training.BranchTrainer):
        def __init__(self, *arguments: Any) -> None:
            super().__init__(*arguments)
            built.append(self)

    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})  # a fresh host's memo
    monkeypatch.setattr(dpsgd, "_search_after", no_search)
    monkeypatch.setattr(branch_training, "BranchTrainer", Recorded)
    for branch, recipe in zip(branches, recipes, strict=True):
        recipe(branch.name, None)  # type: ignore[arg-type]
    assert len(built) == len(branches)
    for trainer in built:
        z, q = trainer.dpsgd.noise_multiplier, trainer.dpsgd.sample_rate
        assert z == 1.0 + q / 1024  # the driver's noise, to the bit


def test_a_floor_warning_travels_with_its_calibration() -> None:
    """The memo of an ``--epsilon 1e6`` run holds a NoiseFloorWarning, which did not
    pickle (its constructor takes keywords only): the hosts could not have been sent it."""
    from secagg.dp.calibration import NoiseFloorWarning

    said = NoiseFloorWarning(
        noise_multiplier=0.0742, epsilon=348.3, target_epsilon=1e6, unevaluable=0.0495
    )
    again = pickle.loads(pickle.dumps(said))
    assert type(again) is NoiseFloorWarning and str(again) == str(said)
    assert vars(again) == vars(said)


def test_a_malformed_calibration_is_refused_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from secagg.dp import dpsgd

    monkeypatch.setattr(dpsgd, "_CALIBRATIONS", {})
    good = ((), 3.0, 1e-5, 0.5, 2, "prv")
    for bad in [(float("nan"), ()), (0.0, ()), ("1.3", ()), (1.3, ("not a warning",)), 1.3]:
        with pytest.raises(ConfigurationError):
            dpsgd.remember_calibrations({good: (1.3, ()), ("other",): bad})
        assert dpsgd._CALIBRATIONS == {}  # nothing added, the good entry neither
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dpsgd.remember_calibrations({good: (1.3, ())})
    assert dpsgd.known_calibrations() == {good: (1.3, ())}
