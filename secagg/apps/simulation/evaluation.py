"""How a setting's model is scored, and how the federation is judged against local-only.

Step 5 of the run: metrics on every branch's held-out test set and on all of them
pooled (AUPRC and the fraud team's operating points; a simulator's privilege, as a real
server holds no test data), per branch a paired bootstrap interval of federated minus
local-only AUPRC (resampling cards when the data names them), and the mean of the last
rounds, the federation's stable estimate. The report and the experiment over seeds read
:data:`ENOUGH_TEST_FRAUDS` and :data:`LAST_ROUNDS` from here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from secagg.apps.models.metrics import fraud_metrics
from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.seeding import _derived_seed


def evaluate(model: Any, branches: list[BranchData]) -> dict[str, Any]:
    """Metrics on every branch's test set and on all of them pooled."""
    from secagg.apps.models.training import scores

    return scored({b.name: scores(model, b.x_test) for b in branches}, branches)


def scored(test_scores: dict[str, np.ndarray], branches: list[BranchData]) -> dict[str, Any]:
    """Metrics of given test scores per branch and pooled (every row scored by the model
    of its setting; local-only: by its own branch's model). ``_scores`` keeps the raw
    scores for the branch comparisons; it is not written out."""
    per_branch = {}
    for branch in branches:
        per_branch[branch.name] = fraud_metrics(
            branch.y_test, test_scores[branch.name], branch.amount_test
        ).as_dict()
    amounts = [b.amount_test for b in branches]
    pooled = fraud_metrics(
        np.concatenate([b.y_test for b in branches]),
        np.concatenate([test_scores[b.name] for b in branches]),
        None if any(a is None for a in amounts) else np.concatenate(amounts),  # type: ignore[arg-type]
    ).as_dict()
    auprcs = [m["auprc"] for m in per_branch.values() if not math.isnan(m["auprc"])]
    # a branch without a test fraud has no AUPRC and is left out of the mean; a branch
    # whose model diverged leaves it undefined: the mean of the others read as all of
    # theirs (local-only "diverged" in every pooled column beside a branch mean of 0.006)
    if any(m.get("diverged") for m in per_branch.values()):
        auprcs = []
    return {
        "pooled": pooled,
        "diverged": pooled["diverged"],
        "branches": per_branch,
        "mean_branch_auprc": float(np.mean(auprcs)) if auprcs else math.nan,
        "_scores": test_scores,
    }


#: a branch test set with fewer independent fraud draws (frauds, or the cards holding
#: them when the intervals resample cards) is flagged: its AUPRC interval is too wide to
#: say much (the review measured a bootstrap standard error of 0.04-0.09 at 22-69)
ENOUGH_TEST_FRAUDS = 20


def branch_verdicts(
    config: SimulationConfig,
    branches: list[BranchData],
    federated: dict[str, Any],
    local: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Per branch: is the federated model at least as good as the branch's local-only
    model? Decided by a 95 % paired, stratified bootstrap interval of the AUPRC
    difference (federated - local) on the branch's test set: "at least local" when the
    interval reaches 0 or above. The bootstrap resamples the branch's *cards* when the
    data names them (synthetic data, a table with a customer column): a compromised
    card's burst of frauds is one draw, not several, and resampling its rows one by one
    gave intervals too narrow (docs/results.md). A single-run comparison of two AUPRCs
    is mostly noise at 20-70 test frauds; a branch with fewer than
    :data:`ENOUGH_TEST_FRAUDS` is flagged, not dropped."""
    from secagg.apps.models.metrics import paired_difference_interval

    out = {}
    for branch in branches:
        frauds = int(branch.y_test.sum())
        fraud_cards = (
            None
            if branch.customers_test is None
            else int(np.unique(branch.customers_test[branch.y_test == 1]).size)
        )
        fed_s, local_s = federated["_scores"][branch.name], local["_scores"][branch.name]
        finite = bool(np.isfinite(fed_s).all() and np.isfinite(local_s).all())
        interval = (
            paired_difference_interval(
                branch.y_test,
                fed_s,
                local_s,
                metric="auprc",
                resamples=1000,
                level=0.95,
                seed=_derived_seed(config, "verdict", branch.name),
                clusters=branch.customers_test,
            )
            if frauds >= 2 and finite
            else None
        )
        if interval is not None and math.isnan(interval.high):
            interval = None  # every test fraud on one card: nothing to resample
        judged = interval is not None
        out[branch.name] = {
            "test_frauds": frauds,
            "test_fraud_cards": fraud_cards,
            "enough_frauds": (frauds if fraud_cards is None else fraud_cards) >= ENOUGH_TEST_FRAUDS,
            "judged": judged,
            "difference": None if interval is None else interval.estimate,
            "low": None if interval is None else interval.low,
            "high": None if interval is None else interval.high,
            "at_least_local": bool(interval is not None and interval.high >= 0),
            "better": bool(interval is not None and interval.low > 0),
            "resampled": "row" if branch.customers_test is None else "card",
        }
    return out


#: the federation's stable estimate: the mean of its last rounds' metrics
LAST_ROUNDS = 3


def last_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pooled AUPRC and branch-mean AUPRC averaged over the last :data:`LAST_ROUNDS`
    completed rounds: the final round alone wobbles by 0.03-0.05 from round to round."""
    done = [r for r in rounds if r["status"] == "complete"][-LAST_ROUNDS:]
    if not done:
        return None
    return {
        "rounds": [r["round"] for r in done],
        "auprc": float(np.mean([r["pooled"]["auprc"] for r in done])),
        "mean_branch_auprc": float(np.mean([r["mean_branch_auprc"] for r in done])),
    }


def _scores(model: Any, x: np.ndarray) -> np.ndarray:
    from secagg.apps.models.training import scores

    return scores(model, x)
