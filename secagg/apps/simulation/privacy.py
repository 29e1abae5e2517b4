"""What a run's figures claim of privacy: its parameters, and a prior's cost composed in.

:func:`privacy_parameters` gathers every parameter an auditor needs to recompute a
run's epsilon (per branch for DP-SGD, the server's for the client level and the
distributed mechanism); the report prints them and summary.json keeps them. A setting
that starts from a prior from a file claims that prior's cost and this run's composed
(basic composition, :func:`with_prior_cost`); a federation that released no round
claims what its starting model cost (:func:`untrained_cost`), never "epsilon = 0".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import local_only_steps
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.federation_plan import expected_cohort, honest_shares

if TYPE_CHECKING:
    from secagg.apps.simulation.federation import FederationRun


def privacy_parameters(
    config: SimulationConfig, run: FederationRun, branches: list[BranchData]
) -> dict[str, Any]:
    """Every parameter an auditor needs to recompute the run's epsilon, per branch.

    Record-level: each branch's DP-SGD (its accountant's history as (noise multiplier,
    sample rate, steps) runs, the per-record clip, delta, accountant and unit), the
    releases charged before training (the feature statistics) apart. Client-level: the
    server's noise multiplier, clip, sampling rate, delta and accountant. The report
    prints them; summary.json keeps them."""
    out: dict[str, Any] = {"mechanism": config.mechanism if config.private else "off"}
    if not config.private:
        return out
    if config.record_distributed and run.server_dp is not None:
        dp = run.server_dp
        out["server"] = {
            "mechanism": "distributed",
            "unit": config.protected,
            "noise_multiplier": dp.noise_multiplier,
            "clip": config.dp_clip,
            "record_clip": dp.record_clip,
            # the public denominator: one customer moves the mean gradient by clip / N
            "customers": round(config.dp_clip / dp.record_clip),
            # the cap applies only to customers' rows: a file without a customer column
            # clips every row on its own (None, as DP-SGD's record-level report says)
            "max_rows": config.max_rows_per_customer if config.has_customers else None,
            # the rounds the accountant charged (those released), which with z and the
            # shares give the ε; the planned count beside it. Why: "rounds" was the
            # planned count, so a run with 1 released round of 3 printed "rounds 3"
            # beside an ε that is one round's (hostile review, 2026-12-06)
            "rounds": _released_rounds(run),
            "rounds_planned": config.rounds,
            "expected_clients": expected_cohort(config),
            "honest_shares": honest_shares(config),
            **_charged_shares(run),
            "delta": dp.delta,
            "accountant": "ddg (distributed discrete Gaussian)",
            "sample_rate": 1.0,  # every customer in every step: full-batch DP-GD
            "epsilon_budget": dp.epsilon_budget,
        }
    elif config.unit == "record":
        out["branches"] = {
            branch.name: _dpsgd_parameters(run.trainers[branch.name], branch)
            for branch in branches
            if run.trainers[branch.name].dpsgd is not None
        }
    elif run.server_dp is not None:
        dp = run.server_dp
        out["server"] = {
            "mechanism": dp.mechanism,
            "noise_multiplier": dp.noise_multiplier,
            "clip": dp.clip,
            "delta": dp.delta,
            "accountant": "ddg (distributed discrete Gaussian)"
            if dp.mechanism == "distributed"
            else dp.accountant,
            # the server's Poisson sampling of branches (1: every branch, every round) ...
            "sample_rate": config.sample_rate,
            # ... and the rate the accountant credits: none (a round's members see each
            # other; the central mechanism charges each branch for its own rounds)
            "accounted_sample_rate": 1.0,
            "charged": "each branch for the rounds it was in"
            if dp.mechanism == "central"
            else "every branch, every round",
            "expected_clients": config.sample_rate * config.branches,
            "epsilon_budget": dp.epsilon_budget,
        }
        if dp.mechanism == "distributed":
            out["server"].update(honest_shares=honest_shares(config), **_charged_shares(run))
    return out


def _dpsgd_parameters(trainer: Any, branch: BranchData) -> dict[str, Any]:
    """A branch's DP-SGD as its accountant composed it: the releases charged before
    training (the feature statistics) apart from its own (z, q, steps) runs, with the
    clip, delta, accountant and unit (``trainer``: a branch trainer whose ``dpsgd`` is
    set, in the driver or as its Ray host reported it)."""
    report = trainer.privacy_report()
    history = [tuple(step) for step in report["history"]]
    prior = len(branch.prior_releases)
    return {
        "unit": report["unit"],
        "accountant": report["accountant"],
        "delta": report["delta"],
        "clip": report["max_grad_norm"],
        "batch_size": trainer.dpsgd_batch_size,
        "units": report.get("num_customers", branch.num_train),
        "max_rows": report.get("max_rows"),
        "prior_releases": [list(step) for step in history[:prior]],
        "dpsgd": [list(step) for step in _runs(history[prior:])],
        "epsilon": report["epsilon"],
    }


def local_only_parameters(
    config: SimulationConfig, trainer: Any, branch: BranchData
) -> dict[str, Any] | None:
    """Every parameter a branch's local-only epsilon follows from, once it has trained:
    its DP-SGD (``mechanism`` "dpsgd", as :func:`privacy_parameters` gives the
    federation's branches), or under record-level distributed DP the Gaussian noise it
    added alone (``mechanism`` "gaussian": ``steps`` full-batch gradient steps, sample
    rate 1, the noise std ``noise_multiplier * sensitivity``, the sensitivity being the
    clip over the branch's own ``units``; PLD accountant). None where local-only claims
    no epsilon (no DP, client-level DP: a local-only model is never released).

    Why: the tables print a local-only epsilon, and no parameter of it was kept
    anywhere (``privacy_parameters`` holds the federation's alone), so an auditor could
    not recompute it; under record-level distributed DP it is another mechanism than the
    federation's, with its own noise (hostile review of the simulator, 2026-12-06)."""
    if trainer.dpsgd is not None:
        return {"mechanism": "dpsgd", **_dpsgd_parameters(trainer, branch)}
    if trainer.units is None or trainer.local_noise_multiplier is None:
        return None
    units = int(trainer.units_total)
    return {
        "mechanism": "gaussian",
        "unit": config.protected,
        "units": units,
        "max_rows": config.max_rows_per_customer if branch.customers_train is not None else None,
        "clip": config.dp_clip,
        "sensitivity": config.dp_clip / units,
        "noise_multiplier": trainer.local_noise_multiplier,
        "sample_rate": 1.0,  # every unit in every step: full-batch gradient descent
        "steps": local_only_steps(config),
        "delta": config.delta,
        "accountant": "pld",
        "epsilon": trainer.epsilon(),
    }


def _released_rounds(run: FederationRun) -> int:
    """The rounds a federation released: those its distributed accountant charged (one
    honest-share count each), else the completed rounds of its log."""
    if run.noise_shares is not None:
        return len(run.noise_shares)
    return sum(row.get("status") == "complete" for row in run.rounds)


def _charged_shares(run: FederationRun) -> dict[str, Any]:
    """The honest noise shares the server's accountant counted in each released round
    (the contributors less the assumed colluders) and their distinct counts: every round
    is charged, order by order, the largest per-round bound of those counts (usually the
    fewest's, not always: :class:`~secagg.dp.accountants.DiscreteGaussianAccountant`).
    With these, z and the rounds, an auditor recomputes epsilon. Run folders written
    before 2026-12-05 give one count here, the fewest, at which every round was charged."""
    shares = list(run.noise_shares or [])
    return {"noise_shares_per_round": shares, "noise_shares_charged": sorted(set(shares))}


def _runs(history: list[tuple[Any, ...]]) -> list[tuple[float, float, int]]:
    """Consecutive (z, q, steps) entries with the same z and q merged into one."""
    merged: list[tuple[float, float, int]] = []
    for z, q, steps in history:
        if merged and merged[-1][:2] == (z, q):
            merged[-1] = (z, q, merged[-1][2] + int(steps))
        else:
            merged.append((float(z), float(q), int(steps)))
    return merged


def _statistics_summary(config: SimulationConfig, stats: Any) -> dict[str, Any] | None:
    """The report's account of the standardisation: source, parameters, epsilon alone."""
    if stats is None:
        return None
    out = {k: v for k, v in stats.as_dict().items() if k not in ("mean", "std")}
    out["epsilon_alone"] = stats.epsilon_at(config.delta) if stats.private else None
    out["charged_to_branches"] = bool(stats.private)
    return out


#: how a prior's cost and this run's compose (see :func:`with_prior_cost`)
PRIOR_COMPOSITION = "basic (the prior's and this run's epsilons add, and their deltas)"


def composed_epsilon(config: SimulationConfig, this_run: float | None) -> float | None:
    """The epsilon of a model that starts from the prior: the prior's (``prior_epsilon``,
    see :attr:`SimulationConfig.prior_cost`) plus this run's, by basic composition (the
    prior's mechanisms are unknown: the generic bound). ``this_run`` itself without a
    prior cost, or when this run claims none (None)."""
    cost = config.prior_cost
    if cost is None or this_run is None:
        return this_run
    return float(this_run) + cost[0]


def with_prior_cost(
    config: SimulationConfig, setting: dict[str, Any], this_run: float | None = None
) -> None:
    """A setting that starts from a prior from a file (prior only, local-only,
    federated) claims the composed epsilon and delta (:func:`composed_epsilon`): its
    ``epsilon`` and ``delta`` become the composition, this run's alone stays in
    ``epsilon_this_run`` and ``delta_this_run``, the prior's in ``prior_epsilon`` and
    ``prior_delta``. ``this_run``: this run's epsilon when ``setting["epsilon"]`` is
    composed already (the federated rounds'); else ``setting["epsilon"]`` is it. Nothing
    changes without a prior cost (no DP, the public prior, no prior)."""
    cost = config.prior_cost
    if cost is None:
        return
    if this_run is None and "epsilon_this_run" not in setting:
        this_run = setting.get("epsilon")
    setting.update(
        epsilon=composed_epsilon(config, this_run),
        epsilon_this_run=this_run,
        delta=config.delta + cost[1],
        delta_this_run=config.delta,
        prior_epsilon=cost[0],
        prior_delta=cost[1],
        composition=PRIOR_COMPOSITION,
    )


#: what a federation that released no round claims of its starting model's cost
_STARTING_COST_KEYS = (
    "epsilon",
    "epsilon_this_run",
    "delta",
    "delta_this_run",
    "prior_epsilon",
    "prior_delta",
    "composition",
)


def untrained_cost(
    config: SimulationConfig, federated: dict[str, Any], prior_only: dict[str, Any] | None
) -> None:
    """The privacy cost of a federation that released no round, where its accountant
    claims none: its model (model.npy) is where training started, so it costs what
    the prior-only setting's model costs (a prior from a file: its own training's ε,
    composed; every prior: the feature statistics' release it was fitted with), and
    nothing without a prior (the seeded initialisation saw no data).

    Why: ``--unit client`` with every round aborted printed "ε = 0" for a model that
    was a prior whose training had spent ε = 1.25 (report review, 2026-12-05). A
    record-level run keeps its own figure: its branches' DP-SGD trained, and spent,
    in the aborted rounds too."""
    if not config.private or federated.get("epsilon") is not None or prior_only is None:
        return
    federated.update({k: prior_only[k] for k in _STARTING_COST_KEYS if k in prior_only})
    federated["epsilon_of"] = "the starting model"  # what the report says it is
    federated["above_target"] = _above_target(federated["epsilon"], config)


def _above_target(epsilon: float | None, config: SimulationConfig) -> bool:
    """A run whose epsilon ended above its target (the budget should make this impossible;
    every epsilon-printing output marks it if it happens). With a prior from a file,
    ``epsilon`` is the composed one: the target sizes this run's noise alone, so a prior
    that spent anything can put the released model above it, and that is said."""
    if not config.private or config.epsilon is None or epsilon is None:
        return False
    return not epsilon <= config.epsilon
