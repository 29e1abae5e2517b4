"""How many steps should the noise added once take? A probe of record-level DP's rounds and
server learning rate on the tuning seeds; prints JSON on stdout.

python benchmarks/bench_record_rounds.py                  # tuning seeds 1000-1009, every variant
python benchmarks/bench_record_rounds.py --seeds 1000,1001 --variants 10:2 30:2
python benchmarks/bench_record_rounds.py --quick          # one small seed, two variants

Why: with record-level DP and the noise added once (``--unit record --mechanism
distributed``) each round is one step of full-batch DP gradient descent. On the tuning
seed 1000 ten steps without any noise scored as ten noised ones (federated AUPRC 0.789
against 0.786): the noise was not what held the federation back, the number of steps
was. This probe asks how many steps, at which server learning rate, on the *tuning*
seeds only (the reported seeds 0-4 stay unseen), and applies the rule fixed before its
first run (:data:`RULE`): the variant with the highest mean federated / centralized
ratio, if its worst seed and its branches at least local are no worse than the shipped
variant's (one branch of slack), and only if it beats it by :data:`MIN_GAIN`.

How: the real data, prior, local-only and centralized baselines of ``secagg simulate
--unit record --mechanism distributed`` (the same functions; local-only at the defaults'
10 steps), and the federation as an in-process stand-in of its rounds: every branch's
clipped per-customer gradient sum (:func:`secagg.dp.gradient_sum.clipped_gradient_sum`),
one Gaussian noise of the mechanism's own multiplier re-sized for the variant's rounds
(drawn from a keyed stream; the real run adds a distributed discrete Gaussian whose sum
has that spread), the server's step; no dropouts, no secure aggregation. A variant is
``rounds:learning_rate`` (``30:2``); ``rounds:learning_rate:0`` runs it without noise
(a diagnostic, never chosen); ``rounds:learning_rate:1:momentum`` adds the server's FedAvgM
momentum and ``rounds:learning_rate:1:momentum:clip`` the per-customer clip of the
federation's gradient sums (the noise scales with it; local-only keeps the defaults' clip,
so a variant is judged against the local-only model that would ship).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.apps.bench import emit, machine_info, probe_seeds

#: the probed variants: rounds at the server learning rate (10:2 is what shipped before)
VARIANTS = ("10:2", "20:2", "30:2", "40:2", "10:4", "20:4")
#: what the rule compares against by default: RECORD_DISTRIBUTED_ROUNDS (30) at the
#: defaults' server learning rate 2, shipped since 2026-12-07 (10:2 before; ``--shipped``)
SHIPPED = "30:2"
TUNING_SEEDS = tuple(range(1000, 1010))
#: the least mean gain over the shipped variant a choice must show (the seeds' spread)
MIN_GAIN = 0.01
RULE = (
    "highest mean federated/centralized ratio over the seeds; its worst-seed ratio at least "
    "the shipped variant's; its branches at least local at least the shipped count - 1; "
    f"and a mean gain of at least {MIN_GAIN} over the shipped variant (else keep it)"
)


@dataclass(frozen=True)
class Variant:
    """A number of rounds at a server learning rate, with the mechanism's noise or none."""

    name: str
    rounds: int
    learning_rate: float
    noised: bool = True
    momentum: float = 0.0
    #: the federation's per-customer clip; None: the defaults' (``config.dp_clip``)
    clip: float | None = None
    #: the server's step: "sgd" (FedAvg / FedAvgM) or "adam" (FedAdam, Reddi et al. 2021:
    #: betas 0.9, 0.99; ``adam_tau`` its adaptivity; post-processing of the noised means)
    optimizer: str = "sgd"
    adam_tau: float = 1e-3
    #: a diagonal preconditioner measured on the public reference at the prior (no
    #: privacy cost): "pre" scales every customer's gradient before its clip (AdaDPS,
    #: Li et al. 2022), "post" scales the noised mean (a fixed FedAdam-like step)
    precondition: str | None = None
    precondition_power: float = 0.5
    precondition_cap: float = 10.0


def parse_variant(text: str) -> Variant:
    """``rounds:learning_rate``, ``rounds:learning_rate:0`` (no noise),
    ``rounds:learning_rate:1:momentum`` (the server's FedAvgM momentum, noised) or
    ``rounds:learning_rate:1:momentum:clip`` (and the federation's per-customer clip)."""
    if text.startswith("adam:"):
        return _parse_adam(text)
    if text.startswith(("pre:", "post:")):
        return _parse_preconditioned(text)
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3, 4, 5) or (len(parts) >= 3 and parts[2] not in ("0", "1")):
            raise ValueError
        rounds, rate = int(parts[0]), float(parts[1])
        momentum = float(parts[3]) if len(parts) >= 4 else 0.0
        clip = float(parts[4]) if len(parts) == 5 else None
        if rounds < 1 or not rate > 0 or not 0 <= momentum < 1:
            raise ValueError
        if clip is not None and not (clip > 0 and np.isfinite(clip)):
            raise ValueError
    except ValueError:
        raise SystemExit(
            f"error: --variants: {text!r} is not "
            "rounds:learning_rate[:0|1[:momentum[:clip]]] "
            "(e.g. 30:2, 30:0.5:1:0.8 or 30:2:1:0:5)"
        ) from None
    return Variant(text, rounds, rate, len(parts) == 2 or parts[2] == "1", momentum, clip)


def _parse_adam(text: str) -> Variant:
    """``adam:rounds:learning_rate[:tau]``: the server's FedAdam step, noised."""
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4):
            raise ValueError
        rounds, rate = int(parts[1]), float(parts[2])
        tau = float(parts[3]) if len(parts) == 4 else 1e-3
        if rounds < 1 or not rate > 0 or not (tau > 0 and np.isfinite(tau)):
            raise ValueError
    except ValueError:
        raise SystemExit(
            f"error: --variants: {text!r} is not adam:rounds:learning_rate[:tau] "
            "(e.g. adam:30:0.01 or adam:30:0.01:1e-4)"
        ) from None
    return Variant(text, rounds, rate, optimizer="adam", adam_tau=tau)


def _parse_preconditioned(text: str) -> Variant:
    """``pre|post:rounds:learning_rate:power[:cap]``: a public diagonal preconditioner."""
    parts = text.split(":")
    try:
        if len(parts) not in (4, 5):
            raise ValueError
        rounds, rate, power = int(parts[1]), float(parts[2]), float(parts[3])
        cap = float(parts[4]) if len(parts) == 5 else 10.0
        if rounds < 1 or not rate > 0 or not 0 <= power <= 2 or not (1 <= cap < np.inf):
            raise ValueError
    except ValueError:
        raise SystemExit(
            f"error: --variants: {text!r} is not pre|post:rounds:learning_rate:power[:cap] "
            "(e.g. pre:30:2:0.5 or post:30:2:1:100)"
        ) from None
    return Variant(
        text,
        rounds,
        rate,
        precondition=parts[0],
        precondition_power=power,
        precondition_cap=cap,
    )


def public_preconditioner(
    config: Any, stats: Any, prior: Any, power: float, cap: float
) -> np.ndarray:
    """A diagonal preconditioner from the public reference alone (no privacy cost).

    Each public branch's mean clipped per-customer gradient at the prior; ``r`` the
    root mean square over those branches, coordinate by coordinate (the second moment
    FedAdam would estimate from noiseless means); the preconditioner is
    ``(median(r) / r) ** power`` held in ``[1 / cap, cap]``, so coordinates whose
    gradients are small everywhere take larger steps, as Adam's would."""
    import dataclasses

    from secagg.apps.models.nets import fraud_loss
    from secagg.apps.simulation import runner
    from secagg.apps.simulation.data import _public_reference
    from secagg.dp.gradient_sum import clipped_gradient_sum
    from secagg.dp.user_level import CustomerLoss

    means = []
    for branch in _public_reference(config):
        public = dataclasses.replace(branch, x_train=stats.apply(branch.x_train))
        trainer = runner.BranchTrainer(config, public, "federated", prior)
        inputs, targets = trainer.units  # type: ignore[misc]
        loss = (
            CustomerLoss(positive_weight=config.positive_weight)
            if public.customers_train is not None
            else fraud_loss(config.positive_weight)
        )
        total = clipped_gradient_sum(trainer.model, inputs, targets, loss, clip=config.dp_clip)
        means.append(total / max(1, int(inputs.shape[0])))
    rms = np.sqrt(np.mean(np.square(means), axis=0))
    floor = float(np.median(rms))
    scale = (floor / np.maximum(rms, floor / cap**4)) ** power
    return np.clip(scale, 1 / cap, cap)


def fedadam_step(
    model: np.ndarray,
    mean: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    number: int,
    learning_rate: float,
    tau: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model and moments after FedAdam's ``number``-th step (1-based) on ``mean``:
    betas 0.9 and 0.99, bias-corrected, ``tau`` added to the root of the second moment
    (Reddi et al. 2021, Algorithm 2, with Adam's bias correction). The server sees only
    the noised mean, so this is post-processing: no privacy cost."""
    first = 0.9 * first + 0.1 * mean
    second = 0.99 * second + 0.01 * mean**2
    corrected = first / (1 - 0.9**number)
    scale = np.sqrt(second / (1 - 0.99**number)) + tau
    return model + learning_rate * corrected / scale, first, second


#: what a seed's setting is computed from: the seed, the public reference's size and
#: the base configuration (:func:`_setting_key`)
SettingKey = tuple[int, int, str]
#: per setting: the configuration, branches, prior and the real baselines
_SETTINGS: dict[SettingKey, tuple[Any, list[Any], Any, dict[str, Any]]] = {}
#: per setting: the run's released feature statistics (the public preconditioner's)
_STATS: dict[SettingKey, Any] = {}
#: per setting, power and cap: the public preconditioner
_PRECONDITIONERS: dict[tuple[SettingKey, float, float], np.ndarray] = {}


def _setting_key(seed: int, base: dict[str, Any]) -> SettingKey:
    """The seed, the public reference's size (``data.PUBLIC_WORLDS``, which
    ``--public-worlds`` sets) and the base configuration: everything the seed's setting
    is computed from. Why: keyed by the seed alone, a process that changed either kept
    the first one's prior and baselines under the new one's name (a row saying 3
    public worlds over a prior fitted on 12)."""
    from secagg.apps.simulation import data

    return (seed, data.PUBLIC_WORLDS, repr(sorted(base.items())))


def _setting(seed: int, base: dict[str, Any]) -> tuple[Any, list[Any], Any, dict[str, Any]]:
    """The seed's configuration, branches, prior and baselines, computed once per
    setting (:func:`_setting_key`)."""
    import torch

    from secagg.apps.simulation import runner
    from secagg.apps.simulation.config import SimulationConfig

    key = _setting_key(seed, base)
    if key not in _SETTINGS:
        config = SimulationConfig(
            **{**base, "seed": seed, "unit": "record", "mechanism": "distributed"}
        )
        torch.set_num_threads(1)
        branches, stats = runner.load_data(config)
        fitted = runner.prior_model(config, stats)
        prior = fitted.vector if isinstance(fitted, runner.TunedFit) else fitted
        baselines = runner._run_baselines(config, branches, runner._quiet, prior)
        _SETTINGS[key] = (config, branches, prior, baselines)
        _STATS[key] = stats
    return _SETTINGS[key]


def probe_seed(seed: int, variant: Variant, base: dict[str, Any]) -> dict[str, Any]:
    """One seed under one variant: the stand-in federation against the real baselines."""
    from secagg.apps.models.nets import fraud_loss
    from secagg.apps.simulation import runner
    from secagg.crypto.stream import KeyedStream, derive
    from secagg.dp.gradient_sum import clipped_gradient_sum
    from secagg.dp.noise import gaussian
    from secagg.dp.user_level import CustomerLoss

    started = time.process_time()
    config, branches, prior, baselines = _setting(seed, base)
    local = baselines["local-only"]
    central = baselines["centralized (non-private)"]
    trainers = [runner.BranchTrainer(config, b, "federated", prior) for b in branches]
    units_total = sum(int(t.units[0].shape[0]) for t in trainers)  # type: ignore[index]
    model = trainers[0].flat().astype(np.float64)
    trainers_start = model.copy()
    resized = config.with_changes(
        rounds=variant.rounds, **({} if variant.clip is None else {"clip": variant.clip})
    )
    record_clip = resized.dp_clip / units_total
    z = runner._distributed_noise(resized, model.size, record_clip) if variant.noised else 0.0
    stream = KeyedStream(derive("record rounds probe noise", f"{seed}/{variant.name}"))
    loss = (
        CustomerLoss(positive_weight=config.positive_weight)
        if branches[0].customers_train is not None
        else fraud_loss(config.positive_weight)
    )
    velocity = np.zeros(model.size)
    second = np.zeros(model.size)  # FedAdam's second moment
    scale = None
    if variant.precondition is not None:
        setting = _setting_key(seed, base)
        key = (setting, variant.precondition_power, variant.precondition_cap)
        if key not in _PRECONDITIONERS:
            _PRECONDITIONERS[key] = public_preconditioner(
                config, _STATS[setting], prior, variant.precondition_power, variant.precondition_cap
            )
        scale = _PRECONDITIONERS[key]
    before_clip = scale if variant.precondition == "pre" else None
    trace: list[dict[str, float]] = []
    previous: np.ndarray | None = None
    for number in range(1, variant.rounds + 1):
        step = np.zeros(model.size)
        for trainer in trainers:
            trainer.load(model.astype(np.float32))
            step -= (
                clipped_gradient_sum(
                    trainer.model,
                    *trainer.units,
                    loss,
                    clip=resized.dp_clip,
                    precondition=before_clip,
                )
                / units_total
            )
        if z:
            step += gaussian(z * record_clip, model.size, stream)
        trace.append(_trace_entry(step, previous, z * record_clip))
        previous = step
        if variant.precondition == "post":
            step = step * scale
        if variant.optimizer == "adam":
            model, velocity, second = fedadam_step(
                model, step, velocity, second, number, variant.learning_rate, variant.adam_tau
            )
            continue
        velocity = variant.momentum * velocity + step
        model = model + variant.learning_rate * velocity
    federated = _scored_at(model, branches, trainers)
    prior_only = _scored_at(trainers_start, branches, trainers)
    verdicts = runner.branch_verdicts(config, branches, federated, local)
    judged = [v for v in verdicts.values() if v["judged"]]
    return {
        "seed": seed,
        "variant": variant.name,
        "rounds": variant.rounds,
        "server_learning_rate": variant.learning_rate,
        "server_momentum": variant.momentum,
        "clip": resized.dp_clip,
        "optimizer": variant.optimizer,
        "precondition": variant.precondition,
        "noise_multiplier": z,
        "public_worlds": _public_worlds(),
        "prior_auprc": prior_only["pooled"]["auprc"],
        "federated_auprc": federated["pooled"]["auprc"],
        "local_only_auprc": local["pooled"]["auprc"],
        "centralized_auprc": central["pooled"]["auprc"],
        "federated_vs_centralized": federated["pooled"]["auprc"] / central["pooled"]["auprc"],
        "branches_judged": len(judged),
        "branches_at_least_local": sum(v["at_least_local"] for v in judged),
        "cpu_seconds": time.process_time() - started,
        "trace": trace,
    }


def _scored_at(model: np.ndarray, branches: list[Any], trainers: list[Any]) -> dict[str, Any]:
    """Every branch's test rows scored by ``model`` (the runner's pooled metrics)."""
    from secagg.apps.simulation import runner

    scores = {}
    for b, trainer in zip(branches, trainers, strict=True):
        trainer.load(model.astype(np.float32))
        scores[b.name] = runner._scores(trainer.model, b.x_test)
    return runner.scored(scores, branches)


def _public_worlds() -> int:
    """How many public worlds the prior is fitted on in this process."""
    from secagg.apps.simulation import data

    return data.PUBLIC_WORLDS


def _trace_entry(step: np.ndarray, previous: np.ndarray | None, sigma: float) -> dict[str, float]:
    """What the server could see of one round without any privacy cost: the noised mean
    step's norm, the norm the noise alone would have (``sigma * sqrt(d)``, public), and the
    cosine with the previous round's step (0 on the first round)."""
    norm = float(np.linalg.norm(step))
    cosine = 0.0
    if previous is not None and norm > 0 and np.linalg.norm(previous) > 0:
        cosine = float(step @ previous / (norm * np.linalg.norm(previous)))
    return {
        "step_norm": norm,
        "noise_norm": float(sigma * np.sqrt(step.size)),
        "cosine_previous": cosine,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant over its seeds: the mean and worst ratio, the branches at least local."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        ratios = [r["federated_vs_centralized"] for r in mine]
        out[name] = {
            "seeds": [r["seed"] for r in mine],
            "mean_ratio": float(np.mean(ratios)),
            "worst_seed_ratio": float(min(ratios)),
            "branches_at_least_local": sum(r["branches_at_least_local"] for r in mine),
            "branches_judged": sum(r["branches_judged"] for r in mine),
            "noised": all(r["noise_multiplier"] > 0 for r in mine),
        }
    return out


def choose(summary: dict[str, Any], shipped: str = SHIPPED) -> str:
    """The variant :data:`RULE` picks (the shipped one when none qualifies or it is absent)."""
    if shipped not in summary:
        return shipped
    base = summary[shipped]
    qualified = [
        name
        for name, s in summary.items()
        if s["noised"]
        and s["worst_seed_ratio"] >= base["worst_seed_ratio"]
        and s["branches_at_least_local"] >= base["branches_at_least_local"] - 1
        and s["mean_ratio"] >= base["mean_ratio"] + MIN_GAIN
    ]
    if not qualified:
        return shipped
    return max(qualified, key=lambda name: summary[name]["mean_ratio"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=None, help="comma-separated (default 1000-1009)")
    parser.add_argument("--variants", nargs="+", default=None, help="default: VARIANTS")
    parser.add_argument("--quick", action="store_true", help="one small seed, two variants")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument(
        "--shipped", default=SHIPPED, help=f"the variant the rule compares with ({SHIPPED})"
    )
    parser.add_argument(
        "--public-worlds",
        type=int,
        default=None,
        help="fit the public prior on this many public worlds (default: the simulator's)",
    )
    args = parser.parse_args(argv)
    if args.public_worlds is not None:
        from secagg.apps.simulation import data

        if args.public_worlds < 1:
            parser.error("--public-worlds must be at least 1")
        data.PUBLIC_WORLDS = args.public_worlds
    base: dict[str, Any] = {}
    seeds = list(TUNING_SEEDS)
    names = list(VARIANTS)
    if args.quick:
        base = {"train_rows": 10_000, "test_rows_per_branch": 1_000}
        seeds, names = [1000], ["1:2", "2:2"]
    if args.seeds:
        seeds = probe_seeds(args.seeds)
    variants = [parse_variant(v) for v in (args.variants or names)]
    # before any seed runs: a malformed --shipped was refused only after the whole probe
    shipped = parse_variant(args.shipped).name if not args.quick else names[0]
    started = time.perf_counter()
    rows = []
    for seed in seeds:
        for variant in variants:
            rows.append(probe_seed(seed, variant, base))
            print(  # progress on stderr: the full probe takes about 30 minutes a core
                f"[{len(rows)}/{len(seeds) * len(variants)}] seed {seed} {variant.name}: "
                f"federated / centralized {rows[-1]['federated_vs_centralized']:.3f}",
                file=sys.stderr,
                flush=True,
            )
    summary = summarise(rows)
    emit(
        {
            "benchmark": "record_rounds",
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - started,
            "machine": machine_info(),
            "world": base or "the defaults of secagg simulate",
            "rule": RULE,
            "rows": rows,
            "summary": summary,
            "shipped": shipped,
            "chosen": choose(summary, shipped),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
