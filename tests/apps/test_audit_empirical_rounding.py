"""``secagg audit empirical``: the test line's TPR bound is rounded down, like the
epsilon lower bound it yields, and mu up, like the estimate it gives.

"TPR >= {tpr_lower:.3g}" (to the nearest) read a Clopper-Pearson lower bound of 0.40567
as "TPR >= 0.406", a claim the canaries do not support; and mu 0.8004 read 0.800
beside the epsilon estimate rounded up from it.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from secagg.apps.audit.empirical import EmpiricalAudit
from secagg.apps.cli import main


def _audit(**figures: object) -> EmpiricalAudit:
    base: dict[str, object] = dict(
        epsilon_lower=0.5329, confidence=0.95, method="Clopper-Pearson", claimed_epsilon=1.0,
        accountant_epsilon=1.0, consistent=True, threshold_fpr=0.01, hits=45,
        tpr_lower=0.40567, held_out_fpr=0.01, null_check_p=0.5, epsilon_estimate=0.7,
        mu_estimate=0.8004, delta=1e-5, canaries=100, dimension=64, rounds=5,
        noise_multiplier=1.0, backend="secagg+", inserted_cosine_mean=0.1,
        held_out_cosine_mean=0.0, held_out_cosine_std=0.1,
    )  # fmt: skip
    return EmpiricalAudit(**(base | figures))  # type: ignore[arg-type]


def test_the_tpr_bound_is_rounded_down_and_mu_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import secagg.apps.audit.empirical as empirical

    monkeypatch.setattr(empirical, "run_canary_audit", lambda **_: _audit())
    text = CliRunner().invoke(main, ["audit", "empirical"]).output
    assert "45/100 canaries (TPR >= 0.405)" in text
    assert "(mu = 0.801; Andrew et al.'s two-Gaussian fit of the inserted cosines: a point " in text
