"""The synthetic card-transaction world."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.apps.models.synthetic import FEATURE_NAMES, TYPOLOGIES, generate_branches
from secagg.errors import ConfigurationError

# --- synthetic branches ------------------------------------------------------------


def test_synthetic_branches_are_reproducible_rare_and_non_iid() -> None:
    a = generate_branches(8, seed=3, total_train_rows=40_000, test_rows_per_branch=5_000)
    b = generate_branches(8, seed=3, total_train_rows=40_000, test_rows_per_branch=5_000)
    c = generate_branches(8, seed=4, total_train_rows=40_000, test_rows_per_branch=5_000)
    assert all(np.array_equal(x.x_train, y.x_train) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].x_train, c[0].x_train)
    sizes = [br.num_train for br in a]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]  # unequal sizes
    for branch in a:
        assert 0.001 <= branch.fraud_rate <= 0.02
        assert branch.x_train.shape[1] == len(FEATURE_NAMES)
        assert np.all(np.isfinite(branch.x_train))
    # no branch sees all typologies much: each one's top typology dominates its mix
    dominant = [max(br.typology_mix) for br in a]
    assert np.mean(dominant) > 0.5
    assert len({int(np.argmax(br.typology_mix)) for br in a}) >= 3  # and they differ
    assert len(TYPOLOGIES) == len(a[0].typology_mix)


def test_synthetic_generator_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="at least 2"):
        generate_branches(1)
    with pytest.raises(ConfigurationError, match="fraud_rate_range"):
        generate_branches(4, fraud_rate_range=(0.0, 0.1))
    with pytest.raises(ConfigurationError, match="100 rows"):
        generate_branches(4, total_train_rows=50)
