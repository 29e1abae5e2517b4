"""The run folder: metrics per round (JSON, CSV), plots (PNG), a markdown report.

Layout of ``<run>/``::

    config.toml            the configuration that ran (re-run it with --config; it leaves
                           out ``out``, so a replay writes a new folder)
    summary.json           the final table and per-branch metrics
    rounds.json            every round: status, dropouts, metrics, epsilon, bytes
    rounds.csv             the same, one row per round and branch
    auprc.png              AUPRC per round, per branch and pooled
    epsilon.png            epsilon spent per round, per branch (with DP only: a run
                           without DP claims no epsilon, so it has no such plot)
    report.md              a human-readable report of all of it
    server.sqlite          the federation server's database (rounds, checkpoints)
    ledger.sqlite          the signed privacy ledger (secagg audit verify ledger.sqlite
                           --pubkey ledger.pub.pem); a simulation replays its DP noise
                           from its seed, so its rows say noise_seeded and verify
                           reports the run as not private (exit 3): its epsilons are
                           what the same run with OS noise would spend, not a guarantee
                           (without DP: no noise, no epsilon, and exit 3 all the same)
    ABORTED                only in a run stopped by SIGTERM or Ctrl-C: the signal and
                           the time; such a folder has no summary.json nor report.md

A federation that completed no round is UNTRAINED: its row has no figures (the model is
where training started), and no branch is compared with it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Final

from secagg.apps.json_output import dumps
from secagg.apps.simulation.config import DP_KEYS, PATH_KEYS, SECTIONS
from secagg.apps.simulation.runner import SimulationResult, composed_epsilon
from secagg.dp.display import shown as shown_up
from secagg.dp.display import shown_field

#: the one line a run without DP gets instead of epsilon.png, in the words the audit
#: uses for its ledger (``secagg audit verify`` / ``report``), so the two read alike
NO_EPSILON_LINE = (
    "No epsilon plot: this run was released without differential privacy: no epsilon is claimed."
)

SUMMARY_METRICS = (
    "auprc",
    "roc_auc",
    "recall_at_1pct_fpr",
    "recall_at_01pct_fpr",
    "precision_at_top_05pct",
    "fraud_amount_caught_at_top_05pct",
)


#: above this many branches, the report and the plots summarise the branches instead
#: of drawing and listing each one (a network of 1 000 participants, the many world)
MANY_BRANCHES = 20

#: the headline columns, labelled for what they measure in every row alike
COLUMNS = {
    "auprc": "AUPRC (pooled)",
    "mean_branch_auprc": "mean of branch AUPRCs",
    "recall_at_01pct_fpr": "recall @ 0.1% FPR",
    "precision_at_top_05pct": "precision, top 0.5%",
    "fraud_amount_caught_at_top_05pct": "fraud € caught, top 0.5%",
}


def summary_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The final table: one row per setting (local-only, federated, centralized).

    Every row measures the same way: the pooled columns score all branches' test sets
    together (local-only: each row by its own branch's model), and the mean column
    averages each branch's own AUPRC. (The local-only row once put a per-branch mean
    under a pooled heading.)"""
    rows = []
    for setting, values in result.settings.items():
        pooled = values.get("pooled")
        row: dict[str, Any] = {"setting": setting}
        for metric in SUMMARY_METRICS:
            if pooled is not None:
                row[metric] = pooled.get(metric, math.nan)
            else:  # a result from before local-only had pooled figures: the branch mean
                row[metric] = _mean([m[metric] for m in values["branches"].values()])
        row["mean_branch_auprc"] = values["mean_branch_auprc"]
        row["diverged"] = bool(values.get("diverged"))
        row["untrained"] = bool(values.get("untrained"))
        if row["untrained"]:  # its figures are the starting model's, not a result
            for metric in (*SUMMARY_METRICS, "mean_branch_auprc"):
                row[metric] = math.nan
        row["epsilon"] = values.get("epsilon")
        row["epsilon_unit"] = values.get("epsilon_unit")
        if "epsilon_this_run" in values:  # composed with a prior's (see prior_lines)
            row["epsilon_this_run"] = values["epsilon_this_run"]
            row["delta"] = values.get("delta")
        row["bytes_sent_per_branch_per_round"] = values.get("bytes_sent_per_branch_per_round")
        row["seconds_per_round"] = values.get("seconds_per_round")
        rows.append(row)
    return rows


def metric_cell(row: dict[str, Any], column: str) -> str:
    """A metric of the table: "diverged" where the setting's model scored NaN or
    infinity (there is no ranking to measure), else the number."""
    if row.get("untrained"):
        return "UNTRAINED"
    value = row.get(column, math.nan)
    if row.get("diverged") and isinstance(value, float) and math.isnan(value):
        return "diverged"
    return fmt(value)


def divergence_lines(result: SimulationResult) -> list[str]:
    """One line per setting whose model diverged (and, for local-only, which branches'
    models did), so a table cell reading "diverged" is explained where it is printed."""
    lines = []
    for setting, values in result.settings.items():
        # only local-only has a model per branch; the others score one model everywhere
        per_branch = values.get("branches", {}) if setting == "local-only" else {}
        branches = [name for name, metrics in per_branch.items() if metrics.get("diverged")]
        if not values.get("diverged") and not branches:
            continue
        whose = f" (the models of {', '.join(branches)})" if branches else ""
        lines.append(
            f"diverged: {setting}{whose}: its scores are not finite, so it has no AUPRC; "
            "training blew up (a learning rate too high for this data is the usual cause)"
        )
    return lines


def local_only_lines(result: SimulationResult) -> list[str]:
    """Why the local-only row's ε reads "-" under client-level DP: the line beside the
    table, where the "-" is printed (nothing said why, and a reader took the row for a
    private one whose figure was lost, report review 2026-12-05). Empty otherwise."""
    c = result.config
    local = result.settings.get("local-only")
    if not c.private or c.unit != "client" or local is None or local.get("epsilon") is not None:
        return []
    return [
        "local-only: no ε (-): client-level DP protects a branch's whole contribution to a "
        "release; a local-only model is never released (each branch keeps its own, trained "
        "without noise), so it carries no client-level ε"
        + (
            "; the prior it starts from spent its own (the prior only row)"
            if c.prior_cost is not None
            else ""
        )
    ]


def rounds_run(result: SimulationResult) -> str:
    """``10 rounds``, or ``3 of 10 rounds completed`` when the federation completed
    fewer than planned: a title said the planned rounds of a run stopped after 3 (or
    whose every round aborted), as if they had all run."""
    planned = result.config.rounds
    fed = next((v for k, v in result.settings.items() if k.startswith("federated")), {})
    done = fed.get("rounds_completed", planned)
    plural = "" if planned == 1 else "s"
    return (
        f"{planned} round{plural}" if done == planned else f"{done} of {planned} rounds completed"
    )


def untrained_lines(result: SimulationResult) -> list[str]:
    """One line per setting whose model was never trained (no federated round
    completed: every one aborted, or the run stopped first), so a table cell reading
    UNTRAINED is explained where it is printed.

    Why: a run whose every round aborted printed the prior's figures in the federated
    row, beside the local-only ones, as if the federation had produced them (simulate
    audit, 2026-12-04)."""
    lines = []
    start = "the prior" if result.config.prior_source != "none" else "the seeded initialisation"
    for setting, values in result.settings.items():
        if not values.get("untrained"):
            continue
        lines.append(
            f"UNTRAINED: {setting}: no round completed ({values.get('rounds_completed', 0)} "
            f"of {result.config.rounds} planned, {values.get('rounds_aborted', 0)} aborted); "
            f"its model is {start}, not a result, so the table shows no figure for it and "
            "no branch is compared with it"
        )
    return lines


def no_round_completed(result: SimulationResult) -> str | None:
    """Why the federation produced no model, in one phrase, or None when a round completed.

    Why it exists: a run whose every round aborted (a threshold no round could meet, too
    many dropouts) exited 0 like a finished one, so a script or CI job running ``secagg
    simulate`` took its untrained model for a result (review, 2026-12-05). The command
    now fails with this phrase; the reason is the last aborted round's own (the
    protocol names the phase and the threshold), else the server's reason to stop
    before any round ran (no quorum, the epsilon budget)."""
    fed = next((v for k, v in result.settings.items() if k.startswith("federated")), {})
    if not fed.get("untrained"):
        return None
    aborted = [row for row in result.rounds if row.get("status") != "complete"]
    if not aborted:
        return f"no round ran ({result.stopped or 'the federation stopped before its first'})"
    last = " ".join(str(aborted[-1].get("reason") or "").split()) or "no reason recorded"
    return (
        f"{len(aborted)} of {result.config.rounds} planned aborted "
        f"({'the last: ' if len(aborted) > 1 else ''}{last})"
    )


def verdict_lines(result: SimulationResult) -> list[str]:
    """The per-branch comparison of federated with local-only, as a markdown table: the
    AUPRC difference with its 95 % paired bootstrap interval, and a flag where the test
    set holds too few frauds to say much."""
    if not result.branch_verdicts:
        return []
    from secagg.apps.simulation.runner import ENOUGH_TEST_FRAUDS

    verdicts = result.branch_verdicts
    by_card = any(v.get("resampled") == "card" for v in verdicts.values())
    unit = (
        "resampling the branch's cards (every row of a drawn card; the cards with a test "
        "fraud and the others apart): a card's burst of frauds is one draw, not several"
        if by_card
        else "resampling its fraud and legitimate rows apart"
    )
    lines = [
        "### Federated against local-only, per branch",
        "",
        "AUPRC difference (federated - local-only) on the branch's own test set, with its "
        f"95 % interval from 1 000 paired bootstrap resamples, {unit}. *At least local* "
        "when the interval reaches 0.",
        "",
    ]
    if len(verdicts) > MANY_BRANCHES:
        # a branch with a handful of test frauds has an interval too wide to say anything:
        # with many small participants only the ones with enough frauds are listed
        judged = [v for v in verdicts.values() if v["judged"]]
        listed = {n: v for n, v in verdicts.items() if v["judged"] and v["enough_frauds"]}
        lines += [
            f"{len(verdicts)} branches: {len(judged)} have the 2 test frauds "
            + ("on 2 cards or more " if by_card else "or more ")
            + f"a comparison needs ({sum(v['at_least_local'] for v in judged)} of them at least "
            f"local, {sum(not v['at_least_local'] for v in judged)} behind), {len(listed)} the "
            f"{ENOUGH_TEST_FRAUDS} {'fraud cards' if by_card else 'frauds'} that make the "
            "interval narrow enough to mean something"
            + (": they are listed below." if listed else ". The pooled figures above are "
               "the measure of this network; every branch's verdict is in summary.json."),
            "",
        ]  # fmt: skip
        verdicts = listed
        if not listed:
            return lines[:-1]
    lines += [
        f"| branch | test frauds{' (cards)' if by_card else ''} | difference | 95 % interval "
        "| verdict |",
        "|---|---|---|---|---|",
    ]
    for name, v in verdicts.items():
        if v.get("untrained"):
            verdict = "not judged (the federated model is UNTRAINED)"
        elif not v["judged"]:
            verdict = "not judged (fewer than 2 test frauds or fraud cards, or a diverged model)"
        elif v["better"]:
            verdict = "better"
        elif v["at_least_local"]:
            verdict = "at least local (within the interval)"
        else:
            verdict = "**behind local-only**"
        cards = v.get("test_fraud_cards")
        if v["judged"] and not v["enough_frauds"]:
            few = "fraud cards" if cards is not None else "test frauds"
            verdict += f"; few {few} (< {ENOUGH_TEST_FRAUDS}): a wide interval"
        # an untrained federation's difference would be the starting model's against
        # local-only, printed under "federated - local-only": none is shown
        trained = not v.get("untrained")
        interval = (
            f"[{fmt(v['low'])}, {fmt(v['high'])}]" if trained and v["low"] is not None else "-"
        )
        difference = fmt(v["difference"]) if trained else "-"
        frauds = f"{v['test_frauds']}" + ("" if cards is None else f" ({cards})")
        lines.append(f"| {name} | {frauds} | {difference} | {interval} | {verdict} |")
    judged = [v for v in result.branch_verdicts.values() if v["judged"]]
    chance = chance_behind_text(len(judged), sum(not v["at_least_local"] for v in judged))
    return lines + (["", chance + "."] if chance else [])


#: the share of comparisons whose 95 % interval lies wholly below 0 when the two models
#: are equally good: the interval's upper tail
CHANCE_BEHIND = 0.025


def chance_behind_text(judged: int, behind: int) -> str:
    """How many branches would fall behind by chance alone, and how likely the count seen.

    Why: "every branch at least local" is read over many intervals at once (40 for 8
    branches and 5 seeds), and each falls wholly below 0 in about 2.5 % of draws even
    when federated and local-only are equally good: about one of 40, and none in only
    36 % of experiments. Without that figure a reader cannot tell a shortfall the
    federation causes (4 of 40: 1.8 % by chance) from the noise of many tests."""
    if judged < 2:
        return ""
    expected = CHANCE_BEHIND * judged
    tail = sum(
        math.comb(judged, k) * CHANCE_BEHIND**k * (1 - CHANCE_BEHIND) ** (judged - k)
        for k in range(behind, judged + 1)
    )
    seen = (
        f"none behind, as here, in {100 * (1 - CHANCE_BEHIND) ** judged:.0f} % of repetitions"
        if behind == 0
        else f"{behind} or more, as here, in {100 * tail:.1f} % of repetitions"
    )
    return (
        f"By chance alone (federated and local-only equally good for every branch, the "
        f"comparisons taken as independent), about {expected:.1f} of {judged} would fall "
        f"behind ({100 * CHANCE_BEHIND:g} % each): {seen}"
    )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    parts: list[str] = []
    for n in numbers:
        if parts and parts[-1].split("-")[-1] == str(n - 1):
            parts[-1] = parts[-1].split("-")[0] + f"-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts) or "none"


def rounds_phrase(numbers: list[int]) -> str:
    """``[2]`` -> ``"round 2"``, ``[8, 9, 10]`` -> ``"rounds 8-10"``: "rounds 2" read as a
    count of two rounds."""
    return f"round {numbers[0]}" if len(numbers) == 1 else f"rounds {_ranges(numbers)}"


def last_rounds_auprc(value: float) -> str:
    """The federation's AUPRC over its last rounds as printed: "diverged" when one of
    those rounds scored no AUPRC (a NaN mean), as the table's cell says for the same run,
    where the console line read "nan" and the report "n/a"."""
    if math.isnan(value):
        return "diverged (a round among them scored no AUPRC)"
    return fmt(value)


def privacy_lines(result: SimulationResult) -> list[str]:
    """What the run spent, which rounds it released, and why it stopped: the lines every
    epsilon-printing output of the simulator carries (a run above its target is marked)."""
    c = result.config
    fed = next((v for k, v in result.settings.items() if k.startswith("federated")), None)
    if fed is None:
        return []
    released = fed.get("rounds_released", [])
    rounds = (
        f"{len(released)} released round{'' if len(released) == 1 else 's'} of "
        f"{c.rounds} planned" + (f" ({rounds_phrase(released)})" if released else "")
    )
    if not c.private:
        return [f"no differential privacy; {rounds}"] + (
            [_stopped_line(result)] if result.stopped else []
        )
    eps = fed.get("epsilon")
    delta = fed.get("delta", c.delta)
    with_prior = " with the prior's" if "epsilon_this_run" in fed else ""
    start = "the prior" if c.prior_source != "none" else "the seeded initialisation"
    # no round released: the model is where training started (see runner.untrained_cost)
    starting = (
        f"; no round released: the model is {start}, and this its cost"
        if fed.get("epsilon_of") == "the starting model"
        else ""
    )
    spent = (
        f"ε = {fmt_epsilon(eps, 3)} ({c.protected}-level, δ = {_up(delta)}{with_prior}{starting})"
        if eps is not None
        # a bare "ε = 0" read as a figure: it is none, and why
        else f"no ε (no round released: the model is {start}, which saw no data)"
        if fed.get("untrained")
        else "no ε claimed"
    )
    if c.epsilon is None:
        verdict = f"noise multiplier {_down(c.noise_multiplier)}, no target"
    elif fed.get("above_target"):
        verdict = f"ABOVE THE TARGET ε = {c.epsilon:g}"
    else:
        verdict = f"within the target ε = {c.epsilon:g}"
    if with_prior and c.epsilon is not None:
        verdict += " (the composed ε is what the target is held to)"
    lines = [
        f"privacy: {spent} after {rounds}; {verdict}",
        *prior_lines(result),
        _replay_caveat(c),
    ]
    stats = result.feature_statistics
    if stats is not None:
        lines.append(_statistics_line(stats, c.delta))
    if result.stopped:
        lines.append(_stopped_line(result))
    return lines


def prior_lines(result: SimulationResult) -> list[str]:
    """What a prior from a file adds to every ε of a setting that starts from it (prior
    only, local-only, federated): the ε and δ its own training spent, composed with this
    run's by basic composition, and where that cost is recorded (not in this run's
    ledger). None without a prior cost (no DP, the public prior, no prior)."""
    c = result.config
    cost = c.prior_cost
    if cost is None:
        return []
    fed = next((v for k, v in result.settings.items() if k.startswith("federated")), {})
    this_run = fed.get("epsilon_this_run")
    return [
        f"prior: {c.prior_path} already spent ε = {_up(cost[0])}, δ = {_up(cost[1])} on these "
        f"{c.protected}s (prior_epsilon, prior_delta); every ε of a setting that starts from "
        "it (prior only, local-only, federated) adds it by basic composition (ε's add, δ's "
        "add: the generic bound, the prior's mechanisms being unknown); this run alone: "
        + (f"ε = {fmt_epsilon(this_run, 3)}, " if this_run is not None else "")
        + f"δ = {_up(c.delta)}. The prior's cost lies outside this run's ledger, which records "
        "this run's rounds only"
    ]


def _replay_caveat(config: Any) -> str:
    """Why the ε above is not a guarantee of this run, on the line beside it: a
    simulation draws its DP noise from its seed, which anyone holding the config can
    replay. Only the ledger verification and report.md said so (DP audit, 2026-12-03).
    Its cohorts come from the seed too, which costs nothing: ε credits no sampling."""
    return (
        "replayed: this simulation draws its DP noise from its seed, so ε is what the same "
        "run with fresh OS noise would spend, not a guarantee of this run"
    )


def _stopped_line(result: SimulationResult) -> str:
    """Why fewer rounds were released than planned, from the run's own round records:
    the run either attempted every planned round and some aborted (the simulator lets
    the server attempt ``rounds`` rounds, aborted ones included), or stopped before it
    had attempted them all (at the epsilon budget, or without a quorum).

    Why: every such run read "stopped before the planned rounds: 2 rounds attempted
    (max_attempts)", the server's limit rather than what happened, also when all the
    planned rounds had run and one of them aborted (report review, 2026-12-05)."""
    reason = result.stopped or "no reason recorded"
    planned = result.config.rounds
    attempted = len(result.rounds)
    aborted = [int(r["round"]) for r in result.rounds if r.get("status") != "complete"]
    if attempted >= planned:
        ran = f"ran its {planned} planned round{'' if planned == 1 else 's'}"
        if not aborted:  # nothing aborted: the server's own reason is all there is
            return f"{ran}: {reason}"
        last = [r for r in result.rounds if r.get("status") != "complete"][-1]
        why = " ".join(str(last.get("reason") or "").split()) or reason
        return (
            f"{ran}; {len(aborted)} aborted ({rounds_phrase(aborted)}): "
            f"{'the last: ' if len(aborted) > 1 else ''}{why}"
        )
    early = f"after {attempted} of {planned} planned rounds" + (
        f" ({len(aborted)} aborted: {rounds_phrase(aborted)})" if aborted else ""
    )
    if reason.startswith("epsilon budget"):
        return f"stopped early, {early}, before crossing the budget: {reason}"
    return f"stopped {early}: {reason}"


def _statistics_line(stats: dict[str, Any], delta: float) -> str:
    if stats["source"] == "public":
        return f"feature statistics: public ({stats.get('origin', 'a file')}), no epsilon"
    if not stats.get("charged_to_branches"):
        return (
            f"feature statistics: secure sum over {stats.get('backend', 'secure aggregation')}"
            ", without noise (the run has no record-level DP)"
        )
    return (
        f"feature statistics: secure sum over {stats.get('backend', 'secure aggregation')}, "
        f"values clipped to ±{_up(stats['bound'])}, "
        f"noise z = {_down(stats['noise_multiplier'])} per block; "
        f"ε = {fmt_epsilon(stats['epsilon_alone'], 3)} alone at δ = {_up(delta)}, "
        "composed into every branch's ε above"
    )


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _up(value: float, digits: int = 6) -> str:
    """A privacy cost or a sensitivity (ε, δ, a clip, a sample rate) in ``g`` style,
    rounded *up* at ``digits`` significant digits: never shown below what ran."""
    return shown_field(value, digits)


def _down(value: float, digits: int = 6) -> str:
    """A noise figure (a multiplier, a std) in ``g`` style, rounded *down* at ``digits``
    significant digits: never shown above the noise that was added."""
    return shown_field(value, digits, lower=True)


def _noise_or_dash(value: float | None) -> str:
    """A noise multiplier at 4 decimals rounded down, or ``-`` when there is none."""
    return "-" if value is None else shown_up(value, 4, lower=True)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_epsilon(value: float | None, digits: int = 3) -> str:
    """An epsilon (or delta) as :func:`fmt` shows it, but rounded *up* at ``digits``.

    A privacy figure read off a report is taken as what was spent: rounded to the
    nearest it could show less (3.0004 as ``3.000``). :func:`secagg.dp.display.shown`
    rounds toward the safe side; below 0.1 it keeps ``digits`` significant digits.
    """
    if value is None:
        return "-"
    if math.isinf(value):
        return "∞"
    if math.isnan(value):
        return "n/a"
    return shown_up(float(value), digits)


def fmt_bytes(value: Any) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


#: the files of a run folder that present a result: a folder whose writing failed keeps
#: none of them (the command's ABORTED marker removes the same, see simulation.cli)
PRESENTING = ("summary.json", "report.md")


def write_run_folder(result: SimulationResult, run_dir: Path) -> list[Path]:
    """Write every file of the run folder; returns their paths.

    A failure on the way (a plot, the report) removes the files that present a result
    before it propagates: ``--prior-epsilon 1.7e308`` failed in the epsilon plot and
    left a summary.json beside no report.md, a folder read as a finished run."""
    try:
        return _write_run_folder(result, run_dir)
    except BaseException:
        for name in PRESENTING:
            with contextlib.suppress(OSError):
                (run_dir / name).unlink(missing_ok=True)
        raise


def _write_run_folder(result: SimulationResult, run_dir: Path) -> list[Path]:
    """:func:`write_run_folder` without its cleanup."""
    run_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if result.final_model is not None:  # the released model: a prior for a later run
        import numpy as np

        model_path = run_dir / "model.npy"
        np.save(model_path, np.asarray(result.final_model, dtype=np.float32), allow_pickle=False)
        written.append(model_path)
    written += [
        _write_config(result, run_dir / "config.toml"),
        _write_json(run_dir / "summary.json", _summary(result)),
        _write_json(run_dir / "rounds.json", result.rounds),
        _write_rounds_csv(result, run_dir / "rounds.csv"),
    ]
    written += _write_plots(result, run_dir)
    written.append(_write_markdown(result, run_dir / "report.md"))
    return written


def _summary(result: SimulationResult) -> dict[str, Any]:
    branch_table = []
    for branch in result.branches:
        name = branch["name"]
        row = dict(branch)
        for setting, values in result.settings.items():
            # an untrained model's scores are the starting model's, not the setting's
            row[f"auprc {setting}"] = (
                None if values.get("untrained") else values["branches"][name]["auprc"]
            )
        branch_table.append(row)
    return {
        "config": result.config.as_dict(),
        "table": summary_rows(result),
        "branches": branch_table,
        "dropouts": result.dropouts,
        # raw test scores ("_scores") stay in memory: they are per-row outputs
        "settings": {
            name: {k: v for k, v in values.items() if not k.startswith("_")}
            for name, values in result.settings.items()
        },
        "branch_verdicts": result.branch_verdicts,
        "privacy": privacy_lines(result),
        "untrained": untrained_lines(result),
        "stopped": result.stopped,
        "feature_statistics": result.feature_statistics,
        "privacy_parameters": result.privacy,
        "notes": result.notes,
        "seconds": result.seconds,
    }


def _write_json(path: Path, payload: Any) -> Path:
    path.write_text(dumps(payload) + "\n")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _write_config(result: SimulationResult, path: Path) -> Path:
    """The run's configuration, which replays it: every key but ``out`` (this folder,
    which a replay must not reuse: ``--config`` of it then writes a new folder, or the
    one ``--out`` names)."""
    values = result.config.as_dict()
    # absolute, so that the replay works from any directory (relative ones are read
    # from the directory the run ran in, which this process still is)
    values.update(
        {name: os.path.abspath(values[name]) for name in PATH_KEYS if values[name] is not None}
    )
    lines = [
        "# the configuration of this run; replay it with",
        f"#   secagg simulate --config {os.path.abspath(path)} [--out NEW-FOLDER]",
        "# (out is left out: a replay writes a new run folder)",
        "",
    ]
    # a run without DP writes no DP key: a replay would be refused for them (they say
    # DP is on), and they did nothing here
    left_out = {"out", *(() if result.config.private else DP_KEYS)}
    for section, keys in SECTIONS.items():
        lines.append(f"[{section}]")
        lines += [
            f"{k} = {_toml_value(values[k])}"
            for k in keys
            if values.get(k) is not None and k not in left_out
        ]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _write_rounds_csv(result: SimulationResult, path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "round",
                "status",
                "branch",
                "contributed",
                *SUMMARY_METRICS,
                "epsilon",
                "bytes_sent",
                "bytes_received",
                "seconds",
            ]
        )
        for r in result.rounds:
            for name, metrics in [*r["branches"].items(), ("pooled", r["pooled"])]:
                eps = r["epsilon_record_level"].get(name) if name != "pooled" else r["epsilon"]
                if r["epsilon_client_level"] is not None:
                    eps = r["epsilon_client_level"]
                if name != "pooled" or r["epsilon_client_level"] is not None:
                    eps = composed_epsilon(result.config, eps)  # pooled: composed already
                writer.writerow(
                    [
                        r["round"],
                        r["status"],
                        name,
                        "" if name == "pooled" else int(name in r["contributed"]),
                        *(metrics.get(metric, "") for metric in SUMMARY_METRICS),
                        "" if eps is None else eps,
                        r["bytes_sent"].get(name, sum(r["bytes_sent"].values())),
                        r["bytes_received"].get(name, sum(r["bytes_received"].values())),
                        r["seconds"],
                    ]
                )
    return path


def auprc_baselines(result: SimulationResult) -> dict[str, float]:
    """The horizontal lines of auprc.png: what the federated curve is compared with,
    each measured as the curve is (all test sets pooled)."""
    lines = {}
    local = result.settings.get("local-only", {}).get("pooled")
    if local is not None and not math.isnan(local["auprc"]):  # NaN: it diverged
        lines["local-only (each branch's own model)"] = local["auprc"]
    central = result.settings.get("centralized (non-private)", {}).get("pooled")
    if central is not None and not math.isnan(central["auprc"]):
        lines["centralized, non-private"] = central["auprc"]
    return lines


def dropout_points(result: SimulationResult) -> list[tuple[int, float]]:
    """The red crosses of auprc.png: (round, pooled AUPRC) of every round in which a
    branch dropped out, so a dip in the curve can be told from a round that lost one."""
    return [(r["round"], r["pooled"]["auprc"]) for r in result.rounds if r["dropped"]]


def epsilon_series(result: SimulationResult) -> dict[str, list[float]]:
    """The lines of epsilon.png: client-level epsilon (one line), or each branch's
    record-level epsilon, folded into one line when every branch's is the same (eight
    identical lines made a legend that said nothing)."""

    # with a prior from a file, each model's epsilon adds the prior's (basic composition)
    cost = result.config.prior_cost
    prior = 0.0 if cost is None else cost[0]

    def line(values: list[Any]) -> list[float]:
        return [math.nan if v is None else float(v) + prior for v in values]

    if any(r["epsilon_client_level"] is not None for r in result.rounds):
        # the server's epsilon: client level, or record level with the noise added once
        # (the rounds keep it under epsilon_client_level: it is what the server accounts)
        c = result.config
        label = (
            f"{c.protected}-level, accounted by the server (every branch)"
            if c.record_distributed
            else "client-level (every branch)"
        )
        return {label: line([r["epsilon_client_level"] for r in result.rounds])}
    names = [b["name"] for b in result.branches]
    series = {
        name: line([r["epsilon_record_level"].get(name) for r in result.rounds]) for name in names
    }
    values = list(series.values())
    if len(values) > 1 and all(_same_curve(values[0], other) for other in values[1:]):
        return {f"every branch (all {len(values)} coincide)": values[0]}
    if len(values) > MANY_BRANCHES:  # a legend of 1 000 names says nothing either

        def each_round(pick: Any) -> list[float]:
            return [
                pick(finite) if (finite := [v[i] for v in values if not math.isnan(v[i])])
                else math.nan
                for i in range(len(values[0]))
            ]  # fmt: skip

        return {
            f"largest of {len(values)} branches": each_round(max),
            f"smallest of {len(values)} branches": each_round(min),
        }
    return series


def _same_curve(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
        for x, y in zip(a, b, strict=True)
    )


def _write_plots(result: SimulationResult, run_dir: Path) -> list[Path]:
    """auprc.png always; epsilon.png only for a run with DP. Without DP there is no
    epsilon to draw: the plot was an empty axis titled "No differential privacy in this
    run", which a reader took for a privacy curve (report.md says so in one line)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in result.rounds]
    names = [b["name"] for b in result.branches]
    paths = []

    fig, ax = plt.subplots(figsize=(8, 5))
    # many branches: the pooled curve alone (each branch's is in rounds.csv)
    for name in names if len(names) <= MANY_BRANCHES else []:
        ax.plot(
            rounds,
            [r["branch_auprc"][name] for r in result.rounds],
            marker=".",
            linewidth=1,
            label=name,
        )
    pooled = [r["pooled"]["auprc"] for r in result.rounds]
    ax.plot(rounds, pooled, color="black", linewidth=2.5, label="federated, all branches")
    marked = dropout_points(result)
    if marked:
        ax.scatter(
            [m[0] for m in marked],
            [m[1] for m in marked],
            marker="x",
            color="red",
            zorder=5,
            label="round with dropouts",
        )
    for (label, value), style in zip(
        auprc_baselines(result).items(), (("tab:orange", ":"), ("grey", "--")), strict=False
    ):
        ax.axhline(value, color=style[0], linestyle=style[1], label=label)
    ax.set_xlabel("round")
    ax.set_ylabel("AUPRC (held-out test sets, pooled)")
    ax.set_title(f"Federated AUPRC per round ({result.config.backend})")
    paths.append(_save(fig, ax, run_dir / "auprc.png"))
    if not result.config.private:
        return paths

    fig, ax = plt.subplots(figsize=(8, 5))
    series = epsilon_series(result)
    for label, values in series.items():
        ax.plot(rounds, values, marker="o" if len(series) == 1 else ".", label=label)
    target = target_line(result)
    if target is not None:
        ax.axhline(target, color="red", linestyle="--", label="target")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("round")
    cost = result.config.prior_cost
    ax.set_ylabel(
        f"epsilon spent (delta = {_up(result.config.delta)})"
        if cost is None
        else f"epsilon: the prior's {_up(cost[0])} + this run's (delta = "
        f"{_up(result.config.delta + cost[1])})"
    )
    title = f"Privacy spent per round ({result.config.protected}-level)"
    if result.config.epsilon is not None and target is None:  # said, not drawn
        title += f"; target ε = {result.config.epsilon:g}, far above this scale"
    ax.set_title(title)
    paths.append(_save(fig, ax, run_dir / "epsilon.png"))
    return paths


#: a target epsilon more than this many times the largest epsilon drawn (or than 1) is
#: named in epsilon.png's title instead of drawn as a line
TARGET_SCALE: Final = 100.0


def target_line(result: SimulationResult) -> float | None:
    """The target epsilon epsilon.png draws as a line, or None (no target, or one far
    above every epsilon drawn, see :data:`TARGET_SCALE`).

    Why: ``--epsilon 1e308`` drew its line at 1e308, matplotlib's tick arithmetic
    overflowed ("RuntimeWarning: overflow encountered in multiply" on the console) and
    the curve of the epsilon spent (587) lay flat on the axis (simulate audit,
    2026-12-05). The title names such a target instead; the default's (3, with 2.99
    spent) is drawn as before."""
    c = result.config
    if not c.private or c.epsilon is None:
        return None
    drawn = [v for values in epsilon_series(result).values() for v in values if math.isfinite(v)]
    return c.epsilon if c.epsilon <= TARGET_SCALE * max([1.0, *drawn]) else None


def _save(fig: Any, ax: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_markdown(result: SimulationResult, path: Path) -> Path:
    """report.md, for a reader who was not at the console: the results measured alike in
    every row, every privacy parameter per branch, how to check the ledger, the data
    each branch had, and how much one seed says."""
    c = result.config
    run_dir = Path(os.path.abspath(path.parent))  # its commands work from any directory
    privacy = (
        f"{c.protected}-level DP, mechanism `{c.mechanism}`, "
        + (
            f"target ε = {c.epsilon:g}"
            if c.epsilon is not None
            else f"z = {_down(c.noise_multiplier)}"  # down: never more noise than ran
        )
        + f", δ = {_up(c.delta)}"
        + (
            f", from a prior that spent ε = {_up(c.prior_cost[0])}, δ = {_up(c.prior_cost[1])} "
            "(composed into every ε below)"
            if c.prior_cost is not None
            else ""
        )
        if c.private
        else "no differential privacy"
    )
    # what training changed: `trainable = "auto"` depends on the prior and the mechanism,
    # so the folder says it rather than leave the reader to work it out
    size = None if result.final_model is None else len(result.final_model)
    trained = "every parameter" if c.trains == "all" else "the output layer only"
    if size is not None:
        trained += f" of {size:,}".replace(",", " ")
    lines = [
        "# secagg simulation report",
        "",
        f"{c.branches} branches, {rounds_run(result)}, backend `{c.backend}`, model `{c.model}` "
        f"(trained: {trained}), server step {c.server_step}, "
        f"{privacy}; dropout rate {c.dropout:g}; seed {c.seed}; data `{c.source}`. "
        f"Wall time {result.seconds:.1f} s.",
        "",
        "## Results",
        "",
        "| setting | "
        + " | ".join(COLUMNS.values())
        + " | ε | sent / branch / round | s / round |",
        "|---" * (len(COLUMNS) + 4) + "|",
    ]
    for row in summary_rows(result):
        eps = fmt_epsilon(row["epsilon"], 2)
        if row["epsilon_unit"]:
            eps += f" ({row['epsilon_unit']})"
        lines.append(
            f"| {row['setting']} | "
            + " | ".join(metric_cell(row, column) for column in COLUMNS)
            + f" | {eps} | {fmt_bytes(row['bytes_sent_per_branch_per_round'])} | "
            f"{fmt(row['seconds_per_round'], 1)} |"
        )
    lines += [
        "",
        *untrained_lines(result),
        *divergence_lines(result),
        *local_only_lines(result),
        *privacy_lines(result),
    ]
    lines += [
        "",
        "The *pooled* columns score all branches' held-out test sets together (local-only: "
        "each test row by its own branch's model, so every row of the table is measured "
        "the same way); the *mean of branch AUPRCs* averages each branch's AUPRC on its own "
        "test set, where a small branch counts as much as a large one."
        + _small_test_sets_caveat(result),
        "",
        f"One seed is one draw: seed {c.seed} fixes the data, the initial model, "
        + ("the DP noise " if c.private else "")
        + ("the sampled cohorts " if c.sample_rate < 1 else "")
        + "and the dropouts, and another seed can rank the settings differently. Run "
        "several before concluding (mean ± sd over seeds, in one folder):",
        "",
        "```bash",
        f"secagg simulate --config {run_dir / 'config.toml'} --seed 0 --seeds 5 "
        f"--out {run_dir}-seeds",
        "```",
    ]
    last = next(
        (v.get("last_rounds") for k, v in result.settings.items() if k.startswith("federated")),
        None,
    )
    if last:
        lines += [
            "",
            f"Federated AUPRC averaged over {rounds_phrase(last['rounds'])} (the final round "
            f"alone wobbles): pooled {last_rounds_auprc(last['auprc'])}, branch mean "
            f"{last_rounds_auprc(last['mean_branch_auprc'])}.",
        ]
    lines += ["", *verdict_lines(result)]
    if result.notes:
        lines += ["", "Notes on the data:", ""]
        lines += [f"- {note}" for note in result.notes]
    lines += [
        "",
        *_privacy_section(result),
        "",
        *_ledger_section(
            run_dir, c.private, sampled=c.sample_rate < 1, prior=c.prior_cost is not None
        ),
    ]
    lines += [
        "",
        "## Per branch (AUPRC on the branch's own test set)",
        "",
        "| branch | train rows | train frauds | test rows | test frauds | train fraud rate | "
        + " | ".join(result.settings)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(result.settings),
    ]
    listed, summary = _listed_branches(result)
    for branch in listed:
        name = branch["name"]
        cells = " | ".join(branch_cell(v, name) for v in result.settings.values())
        lines.append(
            f"| {name} | {branch['train_rows']} | {branch['train_frauds']} | "
            f"{branch.get('test_rows', '-')} | {branch.get('test_frauds', '-')} | "
            f"{_observed_rate(branch)} | {cells} |"
        )
    lines += [
        *summary,
        "",
        "A branch with few test frauds has a noisy AUPRC of its own (2 frauds: each one "
        "moves it by about half); the pooled columns are steadier.",
        "",
        "## Rounds",
        "",
        f"| round | status | dropped | AUPRC (pooled) | {rounds_epsilon_header(c)} | s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.rounds:
        dropped = ", ".join(r["dropped"]) or "-"
        if len(r["dropped"]) > MAX_LISTED_DROPOUTS:
            dropped = f"{len(r['dropped'])} branches"
        # an aborted round leaves the model as it was: the AUPRC measured after it is the
        # model's before it (of a federation whose every round aborted, the prior's),
        # which its row presented as the round's (the progress bar shows none either)
        auprc = fmt(r["pooled"]["auprc"]) if r["status"] == "complete" else "- (model unchanged)"
        lines.append(
            f"| {r['round']} | {r['status']} | {dropped} | {auprc} | "
            f"{fmt_epsilon(r['epsilon'], 2)} | {r['seconds']:.1f} |"
        )
    if result.dropouts:
        lines += ["", "Dropouts (branch vanished before sending this message):", ""]
        lines += _dropout_lines(result.dropouts)
    # link only the plots _write_plots drew: without DP there is no epsilon.png
    epsilon = "![epsilon per round](epsilon.png)" if c.private else NO_EPSILON_LINE
    lines += ["", "![AUPRC per round](auprc.png)", "", epsilon, ""]
    path.write_text("\n".join(lines))
    return path


def branch_cell(setting: dict[str, Any], branch: str) -> str:
    """A setting's AUPRC on one branch's test set, or UNTRAINED where no round trained the
    setting's model (its scores are the starting model's). The per-branch table printed
    them as the federation's beside an UNTRAINED row above it (report review,
    2026-12-05)."""
    return "UNTRAINED" if setting.get("untrained") else fmt(setting["branches"][branch]["auprc"])


def rounds_epsilon_header(config: Any) -> str:
    """The ε column of report.md's rounds table, with its unit, its δ and whose it is:
    the column read a bare "ε", where the results table says "(customer)" and the
    privacy line its δ (report review, 2026-12-05). Record level by DP-SGD: the largest
    of the branches' ε, as the rounds record it; else the server's."""
    if not config.private:
        return "ε"
    cost = config.prior_cost
    delta = config.delta + (0.0 if cost is None else cost[1])
    dpsgd = config.unit == "record" and not config.record_distributed
    whose = ", the largest branch's" if dpsgd else ""
    prior = ", with the prior's" if cost is not None else ""
    return f"ε ({config.protected}-level{whose}{prior}, δ = {_up(delta)})"


def _small_test_sets_caveat(result: SimulationResult) -> str:
    """A warning after the table when most branches' test sets hold too few frauds for
    an AUPRC of their own (the many world): their mean is then no measure at all."""
    from secagg.apps.simulation.runner import ENOUGH_TEST_FRAUDS

    small = sum(b.get("test_frauds", 0) < ENOUGH_TEST_FRAUDS for b in result.branches)
    if small * 2 <= len(result.branches):
        return ""
    return (
        f" Here {small} of {len(result.branches)} branches hold fewer than "
        f"{ENOUGH_TEST_FRAUDS} test frauds (a branch with one scores 1.0 if the model ranks "
        "it first, and one without any is left out): their mean says little about this "
        "network; read the pooled columns."
    )


#: more dropouts than this in a round are counted, not named, in the rounds table
MAX_LISTED_DROPOUTS = 8


def _dropout_lines(dropouts: list[dict[str, Any]]) -> list[str]:
    """One line per dropout, or with many branches one line per round counting them by
    phase (5 % of 1 000 participants is 50 names a round)."""
    if len(dropouts) <= 5 * MAX_LISTED_DROPOUTS:
        return [f"- round {d['round']}: {d['branch']} at {d['phase']}" for d in dropouts]
    lines = []
    for number in sorted({d["round"] for d in dropouts}):
        phases: dict[str, int] = {}
        for d in dropouts:
            if d["round"] == number:
                phases[d["phase"]] = phases.get(d["phase"], 0) + 1
        counted = ", ".join(f"{n} at {phase}" for phase, n in phases.items())
        lines.append(f"- round {number}: {sum(phases.values())} branches ({counted})")
    return lines


def _listed_branches(result: SimulationResult) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of the per-branch table and the lines after it: every branch, or with
    more than :data:`MANY_BRANCHES` only those with enough test frauds for an AUPRC of
    their own to say something, and a summary of all of them (summary.json keeps every
    branch's figures)."""
    branches = result.branches
    if len(branches) <= MANY_BRANCHES:
        return branches, []
    from secagg.apps.simulation.runner import ENOUGH_TEST_FRAUDS

    listed = [b for b in branches if b.get("test_frauds", 0) >= ENOUGH_TEST_FRAUDS]

    def spread(key: str) -> str:
        values = sorted(int(b.get(key, 0)) for b in branches)
        middle = values[len(values) // 2]
        return f"{values[0]}-{values[-1]} (median {middle}, total {sum(values)})"

    def share_without(key: str) -> str:
        return f"{sum(int(b.get(key, 0)) == 0 for b in branches)}"

    return listed, [
        "",
        f"{len(branches)} branches; {len(listed)} with at least {ENOUGH_TEST_FRAUDS} test "
        "frauds are listed above. Training rows "
        f"{spread('train_rows')}; training frauds {spread('train_frauds')}, none in "
        f"{share_without('train_frauds')}; test frauds {spread('test_frauds')}, none in "
        f"{share_without('test_frauds')}. Every branch's figures are in summary.json.",
    ]


def _privacy_section(result: SimulationResult) -> list[str]:
    """Every parameter the run's epsilon follows from, per branch (record level) or for
    the server (client level), and the feature statistics' release."""
    c = result.config
    lines = ["## Privacy parameters", ""]
    if not c.private:
        # the audit's words for such a ledger, so report.md and the audit read alike
        lines.append(
            "Released without differential privacy: no epsilon is claimed (no noise was added)."
        )
        return [*lines, *_statistics_rows(result)]
    cost = c.prior_cost
    if cost is not None:
        lines += [
            f"Prior from a file (`{c.prior_path}`): its own training already spent ε = "
            f"{_up(cost[0])}, δ = {_up(cost[1])} on these {c.protected}s (given as prior_epsilon, "
            "prior_delta: nothing here can check it). Every ε of a setting that starts "
            "from it (prior only, local-only, federated) is its ε plus this run's, at δ its "
            "δ plus this run's: basic composition, the generic bound, its mechanisms being "
            "unknown. The parameters below are this run's alone.",
            "",
        ]
    params = result.privacy
    branches = params.get("branches", {})
    server = params.get("server")
    if c.unit == "record" and branches:
        lines += [
            f"DP-SGD in every branch (Opacus), protecting one {c.protected}: each step "
            "Poisson-samples the branch's units at rate q, clips each unit's gradient to L2 "
            "norm C and adds Gaussian noise of std z·C. The accountant composes the steps "
            "(and the releases charged before training) into ε at δ.",
            "",
            "| branch | unit | units n | expected batch | noise multiplier z | sample rate q "
            "| steps | clip C | δ | accountant | ε |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        shown = dict(list(branches.items())[:MANY_BRANCHES])
        for name, p in shown.items():
            runs = p["dpsgd"] or [[math.nan, math.nan, 0]]
            z = " then ".join(_down(run[0], 4) for run in runs)
            q = " then ".join(_up(run[1], 4) for run in runs)
            steps = sum(int(run[2]) for run in runs)
            # Poisson sampling draws q * n units a step on average (Opacus sets q from
            # the configured batch, 1 / ceil(n / B), so q * n is not B)
            batch = " then ".join(f"{run[1] * p['units']:.4g}" for run in runs)
            unit = p["unit"] + (f" (≤ {p['max_rows']} rows)" if p.get("max_rows") else "")
            lines.append(
                f"| {name} | {unit} | {p['units']} | {batch} | {z} | {q} "
                f"| {steps} | {_up(p['clip'])} | {_up(p['delta'])} | {p['accountant']} | "
                f"{fmt_epsilon(p['epsilon'], 3)} |"
            )
        if len(branches) > len(shown):
            eps = [p["epsilon"] for p in branches.values() if p["epsilon"] is not None]
            low, high = (fmt_epsilon(min(eps)), fmt_epsilon(max(eps))) if eps else ("", "")
            span = f"; ε of all of them {low}-{high}" if eps else ""
            lines += [
                "",
                f"The first {len(shown)} of {len(branches)} branches; every branch's "
                "parameters are in summary.json (privacy_parameters)" + f"{span}.",
            ]
        priors = {tuple(step) for p in branches.values() for step in p["prior_releases"]}
        for z, q, steps in sorted(priors):
            lines += [
                "",
                f"Charged to every branch's accountant before training: the feature "
                f"statistics' release, z = {_down(z, 4)}, q = {_up(q)}, {int(steps)} step "
                "(below).",
            ]
        lines += [
            "",
            f"Each update is also clipped to L2 ≤ {c.update_clip:g} before secure "
            "aggregation: the ring's bound, with no privacy role of its own.",
        ]
    elif server is not None and server.get("unit"):
        lines += _noise_once_rows(server)
    elif server is not None:
        budget = server.get("epsilon_budget")
        distributed = server["mechanism"] == "distributed"
        lines += [
            f"Client-level DP ({server['mechanism']}): each branch's update is clipped to L2 "
            "norm C; "
            + (
                "the server adds Gaussian noise of std z·C to the sum."
                if server["mechanism"] == "central"
                else "each branch adds its discrete Gaussian share before masking, so the "
                f"server only sees a noised sum. {_SHARES_SENTENCE}"
            ),
            "",
            "| mechanism | noise multiplier z | clip C | sampling rate | δ | accountant | budget |"
            + (" noise sized for (honest shares) | shares charged |" if distributed else ""),
            "|---|---|---|---|---|---|---|" + ("---|---|" if distributed else ""),
            # z down, the clip, δ and budget up (to the nearest, z = 1.96661 read 1.967:
            # more noise than was added), as the record-level tables round them
            f"| {server['mechanism']} | {_down(server['noise_multiplier'], 4)} | "
            f"{_up(server['clip'])} | {_sampling_cell(server)} | "
            f"{_up(server['delta'])} | {server['accountant']} | "
            f"{'-' if budget is None else f'ε ≤ {_up(budget)}'} |"
            + (f" {_shares_cells(server)} |" if distributed else ""),
        ]
    return [*lines, *_local_only_rows(result), *_statistics_rows(result)]


def _local_only_rows(result: SimulationResult) -> list[str]:
    """The local-only row's epsilon, per branch, with every parameter it follows from
    (see :func:`~secagg.apps.simulation.privacy.local_only_parameters`): DP-SGD alone, or
    under record-level distributed DP the Gaussian noise each branch adds to its own
    full-batch gradient descent. Empty where local-only claims no epsilon, or for a run
    folder written before these parameters were kept.

    Why: the table printed a local-only ε and nothing in report.md or summary.json let
    it be recomputed; under record-level distributed DP it is not the federation's
    mechanism (hostile review of the simulator, 2026-12-06)."""
    local = result.settings.get("local-only") or {}
    params: dict[str, dict[str, Any]] = local.get("privacy_parameters") or {}
    if not params:
        return []
    gaussian = any(p["mechanism"] == "gaussian" for p in params.values())
    how = (
        "each branch adds the whole Gaussian noise itself (nobody shares it) to each of its "
        "full-batch gradient steps: std z·C/n, n its own units; every unit in every step (q = 1)"
        if gaussian
        else "each branch's own DP-SGD over all its epochs, the releases charged before "
        "training included"
    )
    lines = [
        "",
        f"Local-only (each branch training alone, the table's local-only row): {how}. "
        "The row's ε is the largest of the branches'.",
        "",
        "| branch | mechanism | unit | units n | noise multiplier z | sample rate q | steps "
        "| clip C | sensitivity | δ | accountant | ε |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown = dict(list(params.items())[:MANY_BRANCHES])
    for name, p in shown.items():
        if p["mechanism"] == "gaussian":
            z, q, steps = _down(p["noise_multiplier"], 4), _up(p["sample_rate"], 4), p["steps"]
            sensitivity = _up(p["sensitivity"])
        else:
            runs = p["dpsgd"] or [[math.nan, math.nan, 0]]
            z = " then ".join(_down(run[0], 4) for run in runs)
            q = " then ".join(_up(run[1], 4) for run in runs)
            steps = sum(int(run[2]) for run in runs)
            sensitivity = "-"
        unit = p["unit"] + (f" (≤ {p['max_rows']} rows)" if p.get("max_rows") else "")
        lines.append(
            f"| {name} | {p['mechanism']} | {unit} | {p['units']} | {z} | {q} | {steps} "
            f"| {_up(p['clip'])} | {sensitivity} | {_up(p['delta'])} | {p['accountant']} | "
            f"{fmt_epsilon(p['epsilon'], 3)} |"
        )
    if len(params) > len(shown):
        lines += [
            "",
            f"The first {len(shown)} of {len(params)} branches; every branch's parameters are "
            "in summary.json (the local-only setting's privacy_parameters).",
        ]
    return lines


def _observed_rate(branch: dict[str, Any]) -> str:
    """The branch's fraud share of its training rows, as the data has it (the synthetic
    world's ``fraud_rate`` is the rate it was drawn at, which a small branch misses)."""
    rows = branch.get("train_rows") or 0
    return f"{branch['train_frauds'] / rows:.4f}" if rows else "-"


def _noise_once_rows(server: dict[str, Any]) -> list[str]:
    """Record-level DP with the noise added once in the secure sum: what one protected
    unit is, how far it can move the released mean gradient, what the noise is sized
    for and the shares the accountant charged (a run folder from before these fields
    shows -)."""
    unit = server["unit"]
    rows = server.get("max_rows")
    budget = server.get("epsilon_budget")
    customers = server.get("customers")
    return [
        f"{unit.capitalize()}-level DP with the noise added once (DP gradient descent, "
        f"one full-batch step a round): every branch sums its {unit}s' gradients, each "
        f"{unit}'s"
        + (f" (up to {rows} rows)" if rows and unit == "customer" else "")
        + " clipped to L2 norm C, divides the sum by the public number N of "
        f"{unit}s in all branches, and adds its discrete Gaussian share before masking. "
        f"The server unmasks only the noised mean gradient, which one {unit} moves by at "
        f"most C / N. {_SHARES_SENTENCE}",
        "",
        f"| unit | {unit}s N | clip C per {unit} | moves the mean by C / N | noise "
        "multiplier z | noise sized for (honest shares) | shares charged | rounds | δ | "
        "accountant | budget |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {unit} | {'-' if customers is None else customers} | {_up(server['clip'])} | "
        f"{_up(server['record_clip'], 4)} | {_down(server['noise_multiplier'], 4)} | "
        f"{_shares_cells(server)} | {_rounds_cell(server)} | {_up(server['delta'])} | "
        f"{server['accountant']} | {'-' if budget is None else f'ε ≤ {_up(budget)}'} |",
    ]


def _rounds_cell(server: dict[str, Any]) -> str:
    """The rounds the ε is accounted over (the released ones), and the planned count when
    fewer were released: the column read the planned count beside the ε of fewer rounds,
    which an auditor recomputing it from z, the shares and the rounds could not match
    (a run folder from before 2026-12-06 records the planned count alone)."""
    rounds = server.get("rounds")
    planned = server.get("rounds_planned")
    if rounds is None:
        return "-"
    if planned is not None and planned != rounds:
        return f"{rounds} released of {planned} planned"
    return str(rounds)


#: how the distributed mechanism's noise is sized and its epsilon accounted
_SHARES_SENTENCE = (
    "z is the noise of all the expected branches' shares together (each adds z / √E of "
    "it, E the expected branches); the shares are sized so that the honest ones alone, "
    "H of E, still carry the noise the target ε needs (z √(H / E)): H is the expected "
    "branches less the assumed colluders (who know their own shares) and the tolerated "
    "dropouts. The server accounts ε from the shares that really arrived in "
    "each released round less the assumed colluders, every round charged, order by order, "
    "the largest per-round bound of the counts the rounds had (usually the fewest's; the "
    "column charged lists them. summary.json: privacy_parameters.server."
    "noise_shares_per_round; the "
    "ledger's noise_contributors); a round with more dropouts spends more, and the budget "
    "stops the run before it crosses ε."
)


def _shares_cells(server: dict[str, Any]) -> str:
    """The two share columns: what the noise is sized for, and the honest share counts
    the rounds were charged at (every round at the largest per-round bound of these; a
    folder from before 2026-12-05 records one count, the fewest)."""
    sized = server.get("honest_shares")
    cohort = server.get("expected_clients")
    charged = server.get("noise_shares_charged")
    if isinstance(charged, list):
        charged = ", ".join(str(count) for count in charged) or None
    return (
        ("-" if sized is None else f"{sized} of {cohort:g}")
        + " | "
        + ("-" if charged is None else f"{charged}")
    )


def _sampling_cell(server: dict[str, Any]) -> str:
    """The sampling column of the client-level table: the server's Poisson rate q and
    why the accountant does not credit it (a run folder from before sampling has q = 1;
    one from before 2026-12-03 may record a central run that did)."""
    q = float(server.get("sample_rate", 1.0))
    if q >= 1:
        return "1 (every branch, every round)"
    cohort = server.get("expected_clients")
    expected = f", {cohort:g} branches expected" if cohort is not None else ""
    if float(server.get("accounted_sample_rate", q)) < 1:
        credited = "credited by the accountant"
    elif server.get("mechanism") == "central":
        credited = "not credited: a round's members see it; each branch charged for its own"
    else:
        credited = "not credited: the server that draws the cohort is not trusted"
    return f"q = {q:g} (Poisson{expected}; {credited})"


def _statistics_rows(result: SimulationResult) -> list[str]:
    stats = result.feature_statistics
    if stats is None:
        return ["", "Features: not standardised (data.standardize = 'none')."]
    lines = ["", "Feature statistics (the standardisation every branch applies):", ""]
    lines.append(f"- {_statistics_line(stats, result.config.delta)}")
    if stats.get("source") == "secure":
        lines.append(
            f"- one unit contributes up to {stats.get('rows_per_unit', 1)} row(s); "
            f"effective noise multiplier {_noise_or_dash(stats.get('effective_noise_multiplier'))}"
        )
        if "clipped" in stats:
            lines.append(_clipped_line(stats))
    return lines


def _clipped_line(stats: dict[str, Any]) -> str:
    """Which columns the statistics' bound clipped, and how much: a column clipped in a
    large share has a biased mean and std (its std too small). Pooled over the branches,
    the simulator's view; a real branch knows only its own share."""
    b = f"±{stats['bound']:g}"
    clipped = stats["clipped"]
    if not clipped:
        return f"- no value beyond {b}: nothing was clipped"
    shown = sorted(
        ((n, c) for n, c in clipped.items() if c["share"] >= 0.01), key=lambda nc: -nc[1]["share"]
    )
    small = len(clipped) - len(shown)
    columns = ", ".join(
        f"{name} {100 * c['share']:.1f} % (up to {100 * c['largest_branch_share']:.1f} % on a "
        "branch)"
        for name, c in shown
    )
    if small:
        columns += (", " if columns else "") + (
            f"{small} column{'s' if small != 1 else ''} below 1 %"
        )
    limit = stats.get("max_clipped_share")
    refused = (
        f"; a branch contributes no column it would clip above {100 * limit:.0f} % of, and the "
        "run is then refused"
        if limit is not None
        else ""
    )
    return (
        f"- training values beyond {b}, clipped there before the sums (pooled over the "
        f"branches; a real branch knows only its own share): {columns}; a large share "
        f"biases a column's mean and std (the std too small){refused}"
    )


def _ledger_section(
    run_dir: Path, private: bool = True, *, sampled: bool = False, prior: bool = False
) -> list[str]:
    """Where the signed ledger is, how to check it, and why the check says "not
    private": the simulation's seeded DP noise (its seeded cohorts cost nothing: no
    epsilon credits the sampling), or no DP at all. ``prior``: the run started from a
    prior from a file whose cost the ledger does not hold."""
    ledger, key = run_dir / "ledger.sqlite", run_dir / "ledger.pub.pem"
    cohorts = "its cohorts too, so they also say sampling seeded; " if sampled else ""
    why = (
        "A simulation replays its DP noise from its seed, so its rows say noise_seeded ("
        + cohorts
        + "see docs/privacy.md) and the verification reports the run as not private (exit "
        "status 3): the epsilons are what the same run with fresh OS noise would spend, "
        "not a guarantee. "
        if private
        else "This run used no differential privacy: its rows carry no DP block and claim "
        "no ε, and the verification reports it as released without differential privacy "
        "(exit status 3). "
    )
    return [
        "## Privacy ledger",
        "",
        f"The server wrote one hash-chained, signed row per round to `{ledger}` (what was "
        "released"
        + (", its mechanism, noise, sampling and cumulative ε" if private else "")
        + f"); its public key is `{key}`. Check it:",
        "",
        "```bash",
        f"secagg audit verify {ledger} --pubkey {key}",
        "```",
        "",
        why + f"`secagg audit report {ledger} --pubkey {key} --out DIR` writes the ledger "
        "as a verified report.",
    ] + (
        [
            "",
            "The ledger records this run's rounds only: its ε is this run's alone. The "
            "prior this run started from (prior_path) spent its own ε and δ on these units "
            "in its own training, which lies outside this ledger (in its own run's, if it "
            "has one); the ε in the tables above adds it (basic composition).",
        ]
        if prior
        else []
    )
