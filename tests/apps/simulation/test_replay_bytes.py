"""A simulation replays to the byte: the same seed sends the same bytes per branch and
logs the same dropouts in the same order.

Before: SecAgg+'s neighbour graph was drawn from the OS in every round, so in a round
where two or more branches dropped out, how many key shares the others sent depended on
whether the dropped ones neighboured each other: *sent / branch / round* of one seed read
1 055.6, 1 053.0 and 1 050.6 bytes over three runs. And two branches vanishing in one
phase were logged in whichever order their threads ran.
"""

from __future__ import annotations

from pathlib import Path

from secagg.apps.simulation import runner
from secagg.apps.simulation.config import SimulationConfig

SHAKY = SimulationConfig(
    branches=8,
    rounds=4,
    local_epochs=1,
    # the floor of 100 rows per branch (4 000 and 300 cost a sixth more of the test's
    # CPU time): what a round sends and who drops depend on the seed, the model's size
    # and the neighbour graph, not on the rows
    train_rows=800,
    test_rows_per_branch=100,
    batch_size=64,
    dropout=0.45,
    mechanism="off",
    seed=3,
    # no public prior to fit (40 % of a run's time): what a round sends depends on the
    # model's size, the dropouts and the neighbour graph, not on where training starts
    prior="none",
)


def _replayed(tmp_path: Path, name: str) -> tuple[list[object], list[object], object]:
    result = runner.run_simulation(SHAKY, tmp_path / name)
    sent = [(row["round"], row["bytes_sent"], row["dropped"]) for row in result.rounds]
    mean = result.settings["federated (secagg+)"]["bytes_sent_per_branch_per_round"]
    return sent, result.dropouts, mean


def test_the_same_seed_sends_the_same_bytes_and_logs_the_same_dropouts(tmp_path: Path) -> None:
    first = _replayed(tmp_path, "a")
    busy = [entry for entry in first[0] if len(entry[2]) >= 2]
    assert busy, "the seed must give a round with two or more dropouts to mean anything"
    assert all(entry[1] for entry in first[0])  # the bytes are counted, per branch
    for name in "bc":
        assert _replayed(tmp_path, name) == first
