"""The record-rounds probe computes a seed's setting (configuration, branches, prior,
baselines) once per seed, public reference size and base configuration: a process that
changes the reference's size (``--public-worlds``) or the base gets a new setting, never
the first one's under the new one's name."""

from __future__ import annotations

from typing import Any

import pytest
from _benchmarks import benchmark_script


class _Counting:
    """Stand-ins for the simulator's data, prior and baselines: each call returns a new
    token recording the public reference's size and the configuration it was given."""

    def __init__(self) -> None:
        self.calls = 0

    def load_data(self, config: Any) -> tuple[list[Any], Any]:
        from secagg.apps.simulation import data

        self.calls += 1
        return [("branches", self.calls, data.PUBLIC_WORLDS, config.train_rows)], "stats"

    def prior_model(self, config: Any, stats: Any) -> Any:
        from secagg.apps.simulation import data

        return ("prior", data.PUBLIC_WORLDS)

    def run_baselines(self, config: Any, branches: Any, quiet: Any, prior: Any) -> Any:
        return {"local-only": {}, "centralized (non-private)": {}}


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Any:
    from secagg.apps.simulation import data, runner

    fake = _Counting()
    monkeypatch.setattr(runner, "load_data", fake.load_data)
    monkeypatch.setattr(runner, "prior_model", fake.prior_model)
    monkeypatch.setattr(runner, "_run_baselines", fake.run_baselines)
    monkeypatch.setattr(data, "PUBLIC_WORLDS", 12)
    with benchmark_script("bench_record_rounds") as module:
        module.fake = fake
        yield module


def test_one_setting_per_seed_reference_size_and_base(
    probe: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secagg.apps.simulation import data

    base = {"train_rows": 10_000}
    first = probe._setting(1000, base)
    assert probe._setting(1000, dict(base)) is first  # the same setting: computed once
    assert probe.fake.calls == 1
    assert first[2] == ("prior", 12)

    monkeypatch.setattr(data, "PUBLIC_WORLDS", 3)  # what --public-worlds 3 does
    resized = probe._setting(1000, base)
    assert probe.fake.calls == 2
    assert resized[2] == ("prior", 3)  # before: the 12-world prior, under "3"

    other = probe._setting(1000, {"train_rows": 20_000})
    assert probe.fake.calls == 3
    assert other[0].train_rows == 20_000  # before: the first base's configuration

    monkeypatch.setattr(data, "PUBLIC_WORLDS", 12)
    assert probe._setting(1000, base) is first  # back to the first: kept, not refitted
    assert probe.fake.calls == 3
    assert probe._setting(1001, base) is not first
    assert probe.fake.calls == 4
