"""Opacus's "First batch is empty" warning stays off the console of a simulate run;
every other Opacus warning still reaches it.

Why: with ``--batch-size 1`` a branch's Poisson sampling draws each row with
probability 1/N, so a loader's first batch is empty about a third of the time, and
``secagg simulate`` printed a timestamped WARNING for each, advising more data or a
larger epsilon (simulate audit, 2026-12-06). An empty Poisson batch is expected, and
its privacy accounting relies on it: nothing to fix, so no line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import BranchTrainer
from secagg.apps.simulation.config import SimulationConfig


class _Console(logging.Handler):
    """What the root logger's handlers (Opacus's basicConfig console) are handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}:{record.levelname}:{record.getMessage()}")


@pytest.fixture
def console() -> Iterator[_Console]:
    handler = _Console()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _trainer(batch_size: int) -> BranchTrainer:
    rng = np.random.default_rng(0)
    y = np.zeros(40, dtype=np.int8)
    y[:4] = 1
    data = BranchData(
        name="branch-01",
        x_train=rng.normal(size=(40, 5)).astype(np.float32),
        y_train=y,
        x_test=rng.normal(size=(10, 5)).astype(np.float32),
        y_test=y[:10],
        fraud_rate=0.1,
    )
    config = SimulationConfig(batch_size=batch_size, noise_multiplier=1.0, epsilon=None)
    return BranchTrainer(config, data, "local")


def test_an_empty_first_poisson_batch_prints_nothing(console: _Console) -> None:
    trainer = _trainer(batch_size=1)
    assert trainer.dpsgd is not None
    collate = trainer.dpsgd._loader.collate_fn  # the branch's own DP data loader
    batch = collate([])  # the Poisson sampler drew no row for the first batch
    assert [t.shape[0] for t in batch] == [0, 0]  # still an (empty) batch
    assert not [line for line in console.lines if "First batch is empty" in line]


def test_other_opacus_warnings_still_reach_the_console(console: _Console) -> None:
    _trainer(batch_size=1)
    logging.getLogger("opacus.data_loader").warning("a sampler that is not Poisson")
    logging.getLogger("opacus.privacy_engine").warning("First batch is empty, elsewhere")
    assert console.lines == [
        "opacus.data_loader:WARNING:a sampler that is not Poisson",
        "opacus.privacy_engine:WARNING:First batch is empty, elsewhere",
    ]
