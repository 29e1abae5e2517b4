"""``secagg simulate --seeds N``: one configuration over several seeds, mean ± sd.

Why: one seed is one draw of the world, the dropouts and the DP noise. The ML review
found the headline ratio (federated / centralized AUPRC) at 0.86 on the seed the
defaults were tuned on and 0.22-0.78 on the next four. A claim a reviewer accepts is a
mean and a spread over seeds nobody tuned on, with the worst seed beside it.

Theory of operation
-------------------
Each seed is a complete :func:`~secagg.apps.simulation.runner.run_simulation` in its
own run folder (``<out>/seed-<k>``: its ledger, report and plots, replayable alone).
The experiment then summarises, per setting (prior only, local-only, federated,
centralized) and metric, the mean, sample standard deviation, worst and best seed
(:func:`~secagg.apps.models.metrics.summarise`: a diverged seed is counted, never
averaged away), the federated / centralized ratio per seed, and the branch verdicts
(federated against local-only, a paired bootstrap interval per branch). It writes
``experiment.json`` and ``experiment.md`` beside the seed folders.

The defaults were chosen on :data:`~secagg.apps.simulation.config.TUNING_SEEDS`; an
experiment whose seeds overlap them says so in every output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secagg.apps.models.metrics import summarise
from secagg.apps.simulation.config import TUNING_SEEDS, SimulationConfig, seed_span
from secagg.apps.simulation.runner import (
    PRIOR_COMPOSITION,
    Progress,
    SimulationResult,
    _quiet,
    run_simulation,
)
from secagg.dp.display import shown

#: the metrics an experiment summarises, per setting (pooled unless named otherwise)
EXPERIMENT_METRICS = (
    "auprc",
    "mean_branch_auprc",
    "last_rounds_auprc",
    "recall_at_01pct_fpr",
    "precision_at_top_05pct",
    "fraud_amount_caught_at_top_05pct",
    "roc_auc",
)


@dataclass
class ExperimentResult:
    """Every seed's headline figures and their summary."""

    config: SimulationConfig
    seeds: list[int]
    #: seed -> setting -> metric -> value (None: a figure the setting has not, see
    #: :func:`headline_values`; NaN: a diverged model's)
    per_seed: dict[int, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    #: seed -> the settings whose model diverged in it. Why: experiment.json writes NaN
    #: as null, so its per-seed null read the same for a diverged model's figure and
    #: for a figure the setting has not (a baseline's last rounds)
    diverged: dict[int, list[str]] = field(default_factory=dict)
    #: seed -> federated AUPRC / centralized AUPRC
    ratios: dict[int, float] = field(default_factory=dict)
    #: seed -> branch -> verdict of federated against local-only
    verdicts: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: seed -> wall seconds of its whole run
    seconds: dict[int, float] = field(default_factory=dict)
    #: seed -> the run's epsilon (cumulative, as the run reports it: with a prior from a
    #: file, the prior's and this run's composed)
    epsilons: dict[int, float | None] = field(default_factory=dict)
    #: seed -> this run's epsilon alone, when it differs in kind from ``epsilons`` (a
    #: prior from a file whose cost is composed in); empty otherwise
    epsilons_this_run: dict[int, float | None] = field(default_factory=dict)
    #: seed -> setting -> that setting's own epsilon, as the seed's table prints it (prior
    #: only, local-only, federated; a setting that claims none is left out). Why: the
    #: "ε per run" line is the federation's, and local-only's may differ (record-level
    #: distributed DP: each branch adds all the noise alone, calibrated at another
    #: accountant; a noise multiplier instead of a target)
    setting_epsilons: dict[int, dict[str, float]] = field(default_factory=dict)
    total_seconds: float = 0.0
    #: seeds whose federation completed no round (its model is untrained: no figures)
    untrained_seeds: list[int] = field(default_factory=list)
    #: seed -> why its federation completed no round (see ``report.no_round_completed``)
    untrained_why: dict[int, str] = field(default_factory=dict)
    #: seed -> the run's notes (``SimulationResult.notes``: UNSCALED columns, branches
    #: without a test fraud, a diverged prior, ...), which a single run prints as "note:"
    notes: dict[int, list[str]] = field(default_factory=dict)
    #: seed -> setting -> what its tuning chose and validated on (the public prior, the
    #: centralized baseline: :meth:`~secagg.apps.simulation.tuning.TunedFit.choice`)
    tunings: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: seed -> the other lines a single run prints beside its table that are no figure
    #: of the table: its diverged models, and its privacy lines but the ε one (the
    #: replay caveat, the feature statistics, a prior's cost, why it stopped early)
    advisories: dict[int, list[str]] = field(default_factory=dict)
    #: seeds whose epsilon ended above the target (every single run marks it)
    above_target: list[int] = field(default_factory=list)

    @property
    def tuning_seeds(self) -> tuple[int, ...]:
        """The seeds the settings were chosen on: the configuration's own, if it names
        them (an example file tuned for its scenario), else the built-in defaults'."""
        return self.config.tuning_seeds or tuple(TUNING_SEEDS)

    @property
    def tuned_on_reported_seeds(self) -> list[int]:
        return [s for s in self.seeds if s in self.tuning_seeds]

    def summary(self) -> dict[str, dict[str, Any]]:
        """setting -> metric -> summary (mean, sd, n, min, max, diverged)."""
        out: dict[str, dict[str, Any]] = {}
        settings = {name for per in self.per_seed.values() for name in per}
        for setting in _ordered(settings):
            out[setting] = {}
            for metric in EXPERIMENT_METRICS:
                values = [
                    self.per_seed[s][setting].get(metric)
                    for s in self.seeds
                    if setting in self.per_seed.get(s, {})
                    # an untrained federation has no figure, and did not diverge either:
                    # it is listed on its own line (counted "diverged" before)
                    and not (setting.startswith("federated") and s in self.untrained_seeds)
                ]
                # None: a figure this setting does not have in that seed (see
                # headline_values), neither averaged nor counted as diverged
                known = [float(v) for v in values if v is not None]
                if not known:
                    continue
                out[setting][metric] = summarise(known)
        return out

    def headline(self) -> dict[str, Any]:
        """The claim's figures: mean federated / mean centralized AUPRC, the worst seed's
        ratio, and how many branch comparisons hold within their intervals."""
        fed = [self._value(s, "federated", "auprc") for s in self.seeds]
        central = [self._value(s, "centralized", "auprc") for s in self.seeds]
        both = [s for s, f, c in zip(self.seeds, fed, central, strict=True) if _finite(f, c)]
        finite = [(f, c) for f, c in zip(fed, central, strict=True) if _finite(f, c)]
        ratio_of_means = (
            float(np.mean([f for f, _ in finite]) / np.mean([c for _, c in finite]))
            if finite
            else math.nan
        )
        ratios = [r for r in self.ratios.values() if math.isfinite(r)]
        judged = [v for per in self.verdicts.values() for v in per.values() if v["judged"]]
        return {
            "mean_ratio": ratio_of_means,
            # the seeds the means of mean_ratio are over: those where both have a figure
            "mean_ratio_seeds": both,
            "worst_ratio": min(ratios) if len(ratios) == len(self.seeds) else math.nan,
            "diverged_seeds": [
                s
                for s, r in self.ratios.items()
                if not math.isfinite(r) and s not in self.untrained_seeds
            ],
            "untrained_seeds": list(self.untrained_seeds),
            "branch_comparisons": len(judged),
            "branches_at_least_local": sum(v["at_least_local"] for v in judged),
            "branches_behind_local": sorted(
                f"seed {s} {name}"
                for s, per in self.verdicts.items()
                for name, v in per.items()
                if v["judged"] and not v["at_least_local"]
            ),
            "branches_too_few_frauds": sum(
                not v["enough_frauds"] for per in self.verdicts.values() for v in per.values()
            ),
        }

    def _value(self, seed: int, prefix: str, metric: str) -> float:
        for setting, values in self.per_seed.get(seed, {}).items():
            if setting.startswith(prefix):
                value = values.get(metric)
                return math.nan if value is None else float(value)
        return math.nan


def _ratio_text(ratio: float) -> str:
    """A headline ratio, or why there is none: a seed without a ratio (untrained, or a
    model that diverged) leaves no worst seed and no figure to print as "nan"."""
    return f"{ratio:.3f}" if math.isfinite(ratio) else "none (a seed has no ratio, below)"


def _ratio_seeds_text(result: ExperimentResult, seeds: list[int]) -> str:
    """Which seeds the ratio of means is over, when not every seed: with one seed's
    federation diverged, the ratio was over the others while the table's centralized
    mean is over all of them, and a reader dividing the table's means could not find it."""
    if not seeds or len(seeds) == len(result.seeds):
        return ""
    return f" over seeds {seed_span(seeds)}, the seeds where both have a figure"


def _seed_ratio_text(ratio: float, untrained: bool) -> str:
    if math.isfinite(ratio):
        return f"{ratio:.3f}"
    return "UNTRAINED" if untrained else "diverged"


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _ordered(settings: set[str]) -> list[str]:
    rank = {"prior only": 0, "local-only": 1, "centralized (non-private)": 3}
    return sorted(settings, key=lambda s: (rank.get(s, 2), s))


def headline_values(result: SimulationResult) -> dict[str, dict[str, float | None]]:
    """setting -> metric -> value for one seed's run (pooled metrics, the branch mean,
    and the federation's average over its last rounds).

    NaN is kept for a figure a diverged model left undefined, which the summary counts
    as diverged; a figure the setting does not have is None (a baseline has no rounds to
    average, a table without amounts no fraud amount, a test set without a fraud no
    AUPRC), which the summary leaves out. Why: every NaN was counted "diverged", so
    experiment.json said every seed of local-only, centralized and prior only had
    diverged in the last rounds' column (hostile review, 2026-12-05)."""
    out: dict[str, dict[str, float | None]] = {}
    for setting, values in result.settings.items():
        pooled = values.get("pooled") or {}
        row = {metric: pooled.get(metric) for metric in EXPERIMENT_METRICS}
        row["mean_branch_auprc"] = values.get("mean_branch_auprc")
        last = values.get("last_rounds")  # only the federation has rounds
        row["last_rounds_auprc"] = last["auprc"] if last else None
        if values.get("untrained"):  # the starting model's figures: no result to average
            out[setting] = dict.fromkeys(row, math.nan)
            continue
        diverged = bool(values.get("diverged"))
        out[setting] = {
            k: (None if v is None or (math.isnan(float(v)) and not diverged) else float(v))
            for k, v in row.items()
        }
    return out


def run_experiment(
    config: SimulationConfig, out_dir: Path, progress: Progress = _quiet
) -> ExperimentResult:
    """Run ``config`` on seeds ``config.seed`` .. ``config.seed + config.seeds - 1``."""
    seeds = list(range(config.seed, config.seed + config.seeds))
    result = ExperimentResult(config=config, seeds=seeds)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    from secagg.apps.simulation.report import write_run_folder

    if config.engine == "ray":  # an unreachable cluster, before the checks below too
        from secagg.apps.simulation.runner import _check_ray_address

        _check_ray_address(config)
    _check_later_seeds(config, seeds, progress)
    with _engine_session(config):
        for done, seed in enumerate(seeds):
            # before the seed's run, which makes its folder with its parents
            _check_folders_still_there(out_dir, seeds[:done])
            progress("seeds", done, len(seeds), f"seed {seed}")
            one = dataclasses.replace(config, seed=seed, seeds=1, out=None)
            run = run_simulation(one, out_dir / f"seed-{seed}", progress)
            # before its report, which would make a removed folder again
            _check_folders_still_there(out_dir, seeds[: done + 1])
            write_run_folder(run, out_dir / f"seed-{seed}")
            _record_seed(result, seed, run)
            progress("seeds", done + 1, len(seeds), f"seed {seed}: ratio {result.ratios[seed]:.3f}")
    result.total_seconds = time.perf_counter() - started
    _check_folders_still_there(out_dir, seeds)
    write_experiment(result, out_dir)
    return result


def _check_folders_still_there(out_dir: Path, seeds: list[int]) -> None:
    """Raise FileNotFoundError if the experiment folder, or the folder of one of
    ``seeds`` (those run so far), went away while the experiment ran.

    Why: each seed's run makes its folder with its parents and its report makes it
    again, so a folder removed mid-experiment (an operator's clean-up) came back:
    the next seed made the experiment folder anew, and experiment.md and
    experiment.json summed up seeds whose folders, ledgers and reports were gone, or
    a seed's report.md was written beside no ledger. The experiment then fails as a
    single run whose folder went away does (``secagg simulate``: one line, exit 1)."""
    for folder in (out_dir, *(out_dir / f"seed-{seed}" for seed in seeds)):
        if not folder.is_dir():
            raise FileNotFoundError(
                errno.ENOENT,
                "a folder of the experiment was removed while the experiment ran (a "
                "seed's ledger, server state and report with it)",
                str(folder),
            )


def _check_later_seeds(config: SimulationConfig, seeds: list[int], progress: Progress) -> None:
    """Each seed's data checks but the first's (its own run makes them before it
    trains), before any seed trains: a refusal names the seed and trains nothing.

    Why: a seed whose data no federation can run on (a split leaving a branch without
    its minimum rows, a calibration its branches' sizes refuse) was refused only when
    its turn came, after the earlier seeds had trained. See
    :func:`~secagg.apps.simulation.runner.check_seed_before_training` for the cost."""
    from secagg.apps.simulation.config import key
    from secagg.apps.simulation.runner import check_seed_before_training
    from secagg.errors import ConfigurationError

    later = seeds[1:]
    for done, seed in enumerate(later):
        progress("checks", done, len(later), f"seed {seed}")
        try:
            check_seed_before_training(dataclasses.replace(config, seed=seed, seeds=1, out=None))
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{key('seeds', config.seeds)}: seed {seed} is refused (checked before any "
                f"seed trained): {exc}"
            ) from None
        progress("checks", done + 1, len(later), f"seed {seed}")


def _engine_session(config: SimulationConfig) -> contextlib.AbstractContextManager[Any]:
    """Ray for the whole experiment when the branches run on it: one local instance
    (or one connection to the cluster) for every seed, where a session per seed would
    start and stop Ray each time (3.4-3.7 s apiece on a 2-core machine: init
    2.0-2.3 s, shutdown 1.4 s) and reconnect the driver to a cluster. Each seed's run
    joins it, as it joins any instance its caller started."""
    if config.engine != "ray":
        return contextlib.nullcontext()
    from secagg.apps.simulation.runner import ray_address_source
    from secagg.runtime.ray_engine import ray_session

    return ray_session(config.ray_address, source=ray_address_source(config))


def _record_seed(result: ExperimentResult, seed: int, run: SimulationResult) -> None:
    """One seed's headline values, federated / centralized ratio, verdicts and time."""
    values = headline_values(run)
    result.per_seed[seed] = values
    result.diverged[seed] = [k for k, v in run.settings.items() if v.get("diverged")]
    fed = next((v for k, v in values.items() if k.startswith("federated")), {})
    central = values.get("centralized (non-private)", {})
    f, c = (math.nan if v is None else v for v in (fed.get("auprc"), central.get("auprc")))
    result.ratios[seed] = f / c if _finite(f, c) and c > 0 else math.nan
    if any(v.get("untrained") for k, v in run.settings.items() if k.startswith("federated")):
        from secagg.apps.simulation.report import no_round_completed

        result.untrained_seeds.append(seed)
        result.untrained_why[seed] = no_round_completed(run) or "no round completed"
    result.verdicts[seed] = run.branch_verdicts
    result.seconds[seed] = run.seconds
    result.tunings[seed] = {k: v["tuning"] for k, v in run.settings.items() if "tuning" in v}
    from secagg.apps.simulation.report import divergence_lines, privacy_lines

    # what a single run prints besides its table reaches the experiment's report too:
    # --seeds printed none of it (an UNSCALED column, the replay caveat of the ε)
    result.notes[seed] = list(run.notes)
    result.advisories[seed] = [*divergence_lines(run), *privacy_lines(run)[1:]]
    fed_setting = next((v for k, v in run.settings.items() if k.startswith("federated")), {})
    if fed_setting.get("above_target"):
        result.above_target.append(seed)
    result.epsilons[seed] = fed_setting.get("epsilon")
    result.setting_epsilons[seed] = {
        name: float(value["epsilon"])
        for name, value in run.settings.items()
        if value.get("epsilon") is not None and math.isfinite(float(value["epsilon"]))
    }
    if "epsilon_this_run" in fed_setting:
        result.epsilons_this_run[seed] = fed_setting["epsilon_this_run"]


def write_experiment(result: ExperimentResult, out_dir: Path) -> list[Path]:
    """``experiment.json`` (everything) and ``experiment.md`` (the tables)."""
    from secagg.apps.json_output import dumps

    summary = result.summary()
    payload = {
        "config": {k: v for k, v in result.config.as_dict().items() if k != "out"},
        "seeds": result.seeds,
        "tuning_seeds": list(result.tuning_seeds),
        "tuned_on_reported_seeds": result.tuned_on_reported_seeds,
        "headline": result.headline(),
        "summary": summary,
        "per_seed": result.per_seed,
        # per_seed's null is a diverged model's figure for these settings, else a figure
        # the setting has not
        "diverged_settings": result.diverged,
        "ratios": result.ratios,
        "verdicts": result.verdicts,
        "tunings": result.tunings,
        "epsilons": result.epsilons,
        "setting_epsilons": result.setting_epsilons,
        "above_target": result.above_target,
        "notes": result.notes,
        "advisories": result.advisories,
        **(
            {
                "epsilons_this_run": result.epsilons_this_run,
                "delta": result.config.delta + cost[1],
                "delta_this_run": result.config.delta,
                "prior_epsilon": cost[0],
                "prior_delta": cost[1],
                "composition": PRIOR_COMPOSITION,
            }
            if (cost := result.config.prior_cost) is not None
            else {}
        ),
        "seconds": result.seconds,
        "total_seconds": result.total_seconds,
    }
    json_path = out_dir / "experiment.json"
    json_path.write_text(dumps(payload) + "\n")
    md_path = out_dir / "experiment.md"
    md_path.write_text("\n".join(experiment_lines(result)) + "\n")
    return [json_path, md_path]


#: column labels of the experiment table
TABLE_COLUMNS = {
    "auprc": "AUPRC",
    "last_rounds_auprc": "AUPRC, last rounds",
    "mean_branch_auprc": "mean branch AUPRC",
    "recall_at_01pct_fpr": "recall @ 0.1% FPR",
    "precision_at_top_05pct": "precision, top 0.5%",
    "fraud_amount_caught_at_top_05pct": "fraud € caught, top 0.5%",
}


def experiment_lines(result: ExperimentResult) -> list[str]:
    """The markdown report of an experiment."""
    c = result.config
    summary = result.summary()
    head = result.headline()
    mechanism = f"{c.protected}-level DP ({c.mechanism})" if c.private else "no DP"
    # FedAdam is named: an experiment against its FedAvg(M) control had the same title
    if c.server_optimizer == "adam":
        mechanism += f", server step {c.server_step}"
    # the rounds planned: they depend on the mechanism (the noise once runs 30 when none
    # are given, RECORD_DISTRIBUTED_ROUNDS), and a 30-round experiment and its 10-round
    # control had the same header; a seed stopped early says so below (its advisories)
    rounds = f"{c.rounds} round{'s' if c.rounds != 1 else ''} planned a seed"
    lines = [
        f"# Experiment: {c.branches} branches, {rounds}, {c.backend}, {mechanism}, seeds "
        f"{result.seeds[0]}-{result.seeds[-1]}",
        "",
        f"{len(result.seeds)} seeds, each a full run in `seed-<k>/`; mean ± sample sd over "
        f"seeds, worst seed in brackets. {_wall_time_text(result)}",
        "",
    ]
    # a configuration naming its tuning seeds was tuned as a whole; else the defaults were
    chosen = "settings" if c.tuning_seeds else "defaults"
    if result.tuned_on_reported_seeds:
        lines += [
            f"**Warning**: seeds {result.tuned_on_reported_seeds} are tuning seeds (the "
            f"{chosen} were chosen on them): these figures are in-sample.",
            "",
        ]
    else:
        lines += [
            f"The {chosen} were chosen on seeds {seed_span(result.tuning_seeds)}, none of "
            "which is reported here.",
            "",
        ]
    columns = [m for m in TABLE_COLUMNS if any(m in per for per in summary.values())]
    lines.append("| setting | " + " | ".join(TABLE_COLUMNS[m] for m in columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for setting, metrics in summary.items():
        cells = [_summary_cell(metrics.get(metric)) for metric in columns]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    if "last_rounds_auprc" in columns:
        lines += ["", last_rounds_sentence()]
    lines += [
        "",
        f"- Federated / centralized AUPRC (means): **{_ratio_text(head['mean_ratio'])}**"
        + _ratio_seeds_text(result, head["mean_ratio_seeds"])
        + "; "
        f"worst seed **{_ratio_text(head['worst_ratio'])}**; per seed: "
        + ", ".join(
            f"{s}: {_seed_ratio_text(r, s in result.untrained_seeds)}"
            for s, r in result.ratios.items()
        ),
        f"- Branches at least as good federated as alone (95 % paired bootstrap interval of "
        f"the AUPRC difference reaching 0): {head['branches_at_least_local']} of "
        f"{head['branch_comparisons']} judged"
        + (
            f"; behind: {', '.join(head['branches_behind_local'])}"
            if head["branches_behind_local"]
            else ""
        )
        + f"; {head['branches_too_few_frauds']} branch test sets hold too few frauds (or "
        "cards holding them) to judge well (flagged in each seed's report)",
    ]
    from secagg.apps.simulation.report import chance_behind_text

    chance = chance_behind_text(
        head["branch_comparisons"], head["branch_comparisons"] - head["branches_at_least_local"]
    )
    if chance:
        lines.append(f"- {chance}")
    if head["diverged_seeds"]:
        lines.append(f"- Diverged (no ratio): seeds {head['diverged_seeds']}")
    if head["untrained_seeds"]:
        lines.append(
            f"- UNTRAINED (no federated round completed; no figure, no ratio): seeds "
            f"{head['untrained_seeds']}"
        )
    eps = [e for e in result.epsilons.values() if e is not None]
    cost = c.prior_cost
    if eps and cost is None:
        worst = shown(max(eps), 3)
        lines.append(
            f"- ε per run: at most {worst} (δ = {shown(c.delta, 6, significant=True)}, "
            f"{c.protected}-level)" + _target_text(result)
        )
    elif eps and cost is not None:
        own = [e for e in result.epsilons_this_run.values() if e is not None]
        delta = shown(c.delta + cost[1], 6, significant=True)
        lines.append(
            f"- ε per run: at most {shown(max(eps), 3)} (δ = {delta}, "
            f"{c.protected}-level), the prior's ε = {shown(cost[0], 6, significant=True)} "
            f"(δ = {shown(cost[1], 6, significant=True)}, spent by "
            "its own training, outside these runs' ledgers) plus each run's"
            + (f" (at most {shown(max(own), 3)})" if own else "")
            + ": basic composition (ε's add, δ's add)"
            + _target_text(result)
        )
    return lines + _setting_epsilon_lines(result) + _seed_lines(result)


def _setting_epsilon_lines(result: ExperimentResult) -> list[str]:
    """Each private setting's own ε (the most over seeds, rounded up), when local-only's
    differs from the federation's the "ε per run" line states; else nothing.

    Why: that line took the federated setting's ε alone, so with ``--unit record
    --mechanism distributed`` experiment.md said "ε per run: at most 2.980" while every
    seed's local-only models (each branch noising its own gradient descent, calibrated
    by another accountant) had spent 3.000, as each seed's own table printed."""
    worst: dict[str, float] = {}
    for per_setting in result.setting_epsilons.values():
        for name, value in per_setting.items():
            worst[name] = max(value, worst.get(name, -math.inf))
    federated = next((v for k, v in worst.items() if k.startswith("federated")), None)
    local = worst.get("local-only")
    if federated is None or local is None or shown(local, 3) == shown(federated, 3):
        return []
    listed = ", ".join(f"{name} {shown(value, 3)}" for name, value in worst.items())
    return [
        f"- ε per setting (each setting's own models, the most over seeds): {listed}; "
        "local-only's differs from the federation's above"
    ]


def _summary_cell(summary: Any) -> str:
    """A table cell: mean ± sd (n) and the worst seed; "diverged in k seeds" when every
    seed with a figure diverged; "-" only for a figure the setting does not have.

    Why: a setting whose model diverged in every seed (local-only at too high a learning
    rate) read "-", the cell of a figure the setting has not (a baseline's last rounds),
    while each seed's own table said "diverged"."""
    if summary is None:
        return "-"
    if summary.n == 0:  # summarised only where a figure was known: every one NaN
        return f"diverged in {summary.diverged} seed{'s' if summary.diverged != 1 else ''} (n=0)"
    return f"{summary.format(3)} [{summary.min:.3f}]"


def last_rounds_sentence() -> str:
    """What the table's "AUPRC, last rounds" column averages: it said not which rounds,
    nor over how many (report review, 2026-12-05); each seed's report.md names them."""
    from secagg.apps.simulation.runner import LAST_ROUNDS

    return (
        f"*AUPRC, last rounds*: each seed's federated pooled AUPRC averaged over its last "
        f"{LAST_ROUNDS} completed rounds (over all of them where fewer completed; each "
        "seed's report.md names the rounds), the final round alone wobbling."
    )


def _wall_time_text(result: ExperimentResult) -> str:
    """The experiment's wall time, split into the seeds' runs and the rest.

    Why: it read "Wall time 8.3 min (98 s a seed)" where 98 s was a run's own time and
    8.3 min also held the later seeds' data checks and the folders' writing, so the two
    figures did not agree (5 x 98 s is 8.2 min) and a reader could not tell why."""
    runs = sum(result.seconds.values())
    rest = max(0.0, result.total_seconds - runs)
    mean = runs / len(result.seconds) if result.seconds else 0.0
    return (
        f"Wall time {result.total_seconds / 60:.1f} min: {mean:.0f} s a seed's run, and "
        f"{rest:.0f} s checking the later seeds' data and writing the folders."
    )


def _target_text(result: ExperimentResult) -> str:
    """``; within the target ε = 3``, or the seeds ABOVE it (a single run marks its own;
    the experiment's 'at most' line did not)."""
    c = result.config
    if not c.private or c.epsilon is None:
        return ""
    if result.above_target:
        seeds = sorted(result.above_target)
        return (
            f"; ABOVE THE TARGET ε = {c.epsilon:g} in seed{'s' if len(seeds) > 1 else ''} "
            f"{seed_span(seeds)}"
        )
    return f"; within the target ε = {c.epsilon:g}"


def _seeds_text(result: ExperimentResult, seeds: list[int]) -> str:
    if len(seeds) == len(result.seeds) > 1:
        return "every seed"
    return f"seed{'s' if len(seeds) > 1 else ''} {seed_span(seeds)}"


def _seed_lines(result: ExperimentResult) -> list[str]:
    """Every note and advisory line of the seeds' runs, once each with the seeds that
    printed it, in the order they first appear: what ``--seeds 1`` prints beside its
    table, ``--seeds N`` prints here (each seed's report.md has its own)."""
    out = []
    for kind, per_seed in (("note", result.notes), (None, result.advisories)):
        # lines that differ only in the branches (and counts) they name are one kind: a
        # federation of 40 or 1 000 participants names other branches on every seed,
        # and the console must count them, not list them seed after seed
        kinds: dict[str, dict[str, list[int]]] = {}
        for seed in result.seeds:
            for line in per_seed.get(seed, []):
                texts = kinds.setdefault(_kind(line), {})
                seeds = texts.setdefault(line, [])
                if seed not in seeds:
                    seeds.append(seed)
        for texts in kinds.values():
            first, *others = texts
            seeds = sorted({s for listed in texts.values() for s in listed})
            where = _seeds_text(result, seeds)
            if others:
                # say what differs: "naming other branches" read as the only difference
                # of lines whose counts differed too
                names_only = len({_BRANCH_NAMES.sub("#", text) for text in texts}) == 1
                first += (
                    f" (and {len(others)} more like it, naming other branches"
                    + ("" if names_only else " or counts")
                    + ": each seed's report.md has its own)"
                )
            out.append(f"- note ({where}): {first}" if kind else f"- {where}: {first}")
    return out


#: branch names and counts in a line, which the experiment's grouping of lines ignores
_BRANCHES = re.compile(r"branch-\d+|\d+")

#: branch names alone: what the grouping ignores in a line with a privacy figure
_BRANCH_NAMES = re.compile(r"branch-\d+")

#: a line that states a privacy figure (or the budget that stopped a run)
_PRIVACY_FIGURE = re.compile(r"ε|δ|epsilon|delta", re.IGNORECASE)


def _kind(line: str) -> str:
    """What lines of the seeds are folded into one: lines that differ only in the
    branches and counts they name, except a line with a privacy figure, which is folded
    only into lines that differ from it in branch names alone.

    Why: every digit was ignored, so the seeds' "prior: ... this run alone: ε = 2.994"
    and "... ε = 2.981" were one line, printed with the first seed's ε and "(and 1 more
    like it, naming other branches)": another seed's ε was hidden behind a sentence
    that was not true (report review, 2026-12-05)."""
    pattern = _BRANCH_NAMES if _PRIVACY_FIGURE.search(line) else _BRANCHES
    return pattern.sub("#", line)
