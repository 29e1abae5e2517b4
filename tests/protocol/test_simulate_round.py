"""simulate_round's arguments: what a researcher types is checked and named
(hostile-user audit 2026-12-04)."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.errors import ConfigurationError
from secagg.protocol import run_round, simulate_round


@pytest.mark.parametrize(
    "dropped",
    [
        [1],  # AttributeError: 'list' object has no attribute 'items'
        {"masked_input": "a"},  # ValueError: invalid literal for int()
        {"masked_input": 1},  # TypeError: 'int' object is not iterable
        {"masked_input": [1.5]},  # int(1.5): client 1 vanished instead
        {"masked_input": [True]},
    ],
)
def test_simulate_round_refuses_dropped_clients_it_cannot_read(dropped: object) -> None:
    inputs = np.arange(15, dtype=np.uint32).reshape(5, 3)
    with pytest.raises(ConfigurationError, match="dropped"):
        simulate_round(inputs, dropped=dropped)  # type: ignore[arg-type]


def test_ragged_inputs_are_a_configuration_error() -> None:
    """A ragged nested list raised numpy's ValueError (hostile-input audit 2026-12-05)."""
    with pytest.raises(ConfigurationError, match="ragged rows"):
        run_round([[1, 2], [3]])  # type: ignore[arg-type]
