"""What closes the largest branch's gap to its own model? A probe of record-level DP with
the noise added once; prints JSON on stdout.

python benchmarks/bench_branch_gap.py                       # tuning seeds 1000-1009, every variant
python benchmarks/bench_branch_gap.py --seeds 1003 --variants baseline personal-head:1
python benchmarks/bench_branch_gap.py --quick               # one small seed, two variants
python benchmarks/bench_branch_gap.py --quick --variants baseline personal-own-large:1
python benchmarks/bench_branch_gap.py --out benchmarks/results/branch_gap.json
python benchmarks/bench_branch_gap.py --variants baseline ensemble-local select-local \
    ensemble-split:2.5 select-split:2.5

Why: with record-level DP and the noise added once in the secure sum, the federation
meets the pooled bar of issue 16, but on seeds 0-3 the largest branch's own DP model beats
the federated one on its own test set (docs/results.md). This probe asks which change
would close that gap, on the *tuning* seeds only (the reported seeds 0-4 stay unseen):

* ``baseline``: the mechanism as it ships;
* ``personal-head:g``: every branch also gets its own copy of the output layer (33
  parameters), released in the same noised sum: a customer's gradient counts once for the
  shared model and once for its branch's copy, clipped *together* to the same bound, so
  the sensitivity, the noise and epsilon do not change (each customer sits in one branch).
  A branch scores with the shared layer plus ``g`` times its own accumulated copy;
* ``personal-all:g``: the same for every parameter (a full personal offset);
* ``personal-scaled:g``: the full offset, each branch scaling its own by ``g * N / N_b``
  (all customers over its own), so the offset moves at the pace of a branch training
  alone: what local-only does, on top of the shared model (``personal-head-scaled:g``:
  the output layer's copy at that pace);
* ``personal-own:g`` / ``personal-own-head:g``: a personal offset (every parameter / the
  output layer) that never enters the secure sum: each branch steps it at ``g`` times the
  pace of training alone with noise it draws itself, of the spread the shared sum's
  honest shares guarantee (the noise of ``cohort - colluders - dropouts`` shares, not of
  all of them: a branch's own noise is honest for its own customers). Clipped together
  with the shared gradient, every coordinate the adversary could see carries at least
  that noise, so epsilon does not change. A branch scores with the shared model plus its
  offset shrunk by the positive-part James-Stein weight ``1 - d v / |offset|^2`` (``v``
  the offset's known noise variance per coordinate): post-processing, so free, and a
  small branch whose offset is mostly noise keeps the shared model
  (``personal-own-raw:g``: the offset unshrunk). Each such row also scores every
  branch with its offset at the weights of ``OFFSET_WEIGHTS`` (``offset_weight_sweep``),
  so a rule that picks a weight per branch can be judged without retraining;
* ``personal-own-large:g``: the unshrunk own-noise offset of every parameter, kept only
  by a branch with at least ``LARGE_BRANCH`` times the mean share of customers (a
  branch's own choice: the others' customers keep the whole clip for the shared model);
* ``server-lr:x``, ``rounds:r``: a larger step, more steps (the noise is re-sized for
  ``r`` rounds, and local-only takes the same steps, as in a real run);
* ``tolerated-dropout:f``: the noise sized for fewer dropped shares (a smaller noise
  multiplier: does the noise decide it?);
* ``ensemble-local`` / ``select-local``: every branch holds out the last
  ``VALIDATION_SHARE`` of its training rows in time (its own training period, never its
  test rows); the federation and the branch's own local-only model (the same DP gradient
  descent alone, with its own noise stream) train on the rest, each at the full epsilon.
  The branch scores ``a * p_fed + (1 - a) * p_local`` (the two models' probabilities, the
  sigmoid of their logits: both fit the same weighted loss from the same prior, so they
  share a scale, and the branches pool on it), with ``a`` in ``MIX_WEIGHTS``
  (``select``: 0 or 1) chosen on its validation slice by AUPRC, ties and a slice without
  fraud going to the federation. The deployed model of a branch then carries epsilon
  ``2 * epsilon`` (basic composition, delta twice) for its own customers, the others'
  ``epsilon``; it never leaves the branch. It is judged against local-only at that same
  total (``versus``) and, as the bar reads, at ``epsilon`` (``versus_bar``);
* ``ensemble-split:e`` / ``select-split:e``: the same with the budget split so that the
  branch's deployed model stays within ``epsilon``: the federation at ``e`` and the
  local model at ``epsilon - e``, each at half of ``delta`` (basic composition);
  judged against local-only at ``epsilon``. The choice of ``a`` reads the validation
  rows without noise: those customers' records decide one of a few weights and train
  nothing; it is not differentially private, which a model that stays in the branch
  (whose records they are) does not need. Each such row also scores every branch at each
  fixed weight of ``MIX_WEIGHTS`` (``mix_weight_sweep``): a weight chosen on the tuning
  seeds, not per branch, is a rule too.

How: the real data, prior, local-only and centralized baselines of ``secagg simulate
--unit record --mechanism distributed`` (the same functions), and the federation as an
in-process stand-in of its rounds: every branch's clipped per-customer gradient sum, one
Gaussian noise of the mechanism's own multiplier on the total (drawn from a keyed stream;
the real run adds a distributed discrete Gaussian whose sum has that spread), the
server's step; no dropouts, no secure aggregation (which changes the sum by nothing but
the noise's discreteness). The per-branch verdicts are those of a real run (the paired,
card-resampled bootstrap). The stand-in's baseline is checked against a real run of the
same seed in docs/results.md.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from secagg.apps.bench import emit, machine_info, probe_seeds

#: the seeds a probe may look at: the built-in defaults' tuning seeds and seven more
#: beyond them (never the reported seeds 0-4)
TUNING_SEEDS = tuple(range(1000, 1010))
VARIANTS = (
    "baseline",
    "personal-head:1",
    "personal-head:3",
    "personal-all:1",
    "personal-scaled:1",
    "personal-head-scaled:1",
    "server-lr:6",
    "rounds:20",
    "tolerated-dropout:0",
    "personal-own:1",
    "personal-own-head:1",
    "personal-own-raw:1",
    "personal-own-large:1",
)

#: the weights at which an own-noise offset is also scored (``offset_weight_sweep``)
OFFSET_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: ``personal-own-large``: a branch with at least this many times the mean share of
#: customers keeps an offset (on the tuning seeds the largest branch has 1.44-2.02 times
#: it, the second largest at most 1.29)
LARGE_BRANCH = 1.5

#: ``ensemble-*`` / ``select-*``: the share of each branch's training rows (the latest in
#: time) held out to choose its mixing weight, and the weights tried
VALIDATION_SHARE = 0.2
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)

#: per seed: the branches' data and the prior; per (seed, variant settings): the baselines
_WORLDS: dict[int, tuple[Any, Any]] = {}
_BASELINES: dict[tuple[int, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
#: per (seed, epsilon, delta): local-only on all training rows; per (seed, federation
#: epsilon): the held-out federation's and local models' scores
_LOCAL_AT: dict[tuple[int, float, float], dict[str, Any]] = {}
_HELD_OUT: dict[tuple[int, float | None], dict[str, Any]] = {}


@dataclass(frozen=True)
class Variant:
    """One probed change: its name, and what it sets."""

    name: str
    personal: str | None = None  # None, "head" or "all"
    gain: float = 0.0  # the personal offset's step, times the server's learning rate
    scaled: bool = False  # each branch scales its offset by N / N_b
    own_noise: bool = False  # the offset stays in the branch, noised by the branch alone
    shrink: bool = False  # score with the James-Stein-shrunk offset
    large_only: bool = False  # only a branch of >= LARGE_BRANCH times the mean size has one
    mix: str | None = None  # "ensemble" or "select": mixed with the branch's local model
    federation_epsilon: float | None = None  # a split budget: the federation's part
    config: tuple[tuple[str, Any], ...] = ()


def parse_variant(text: str) -> Variant:
    """``name`` or ``name:value`` (see the module docstring) as a :class:`Variant`."""
    kind, _, value = text.partition(":")
    number = float(value) if value else math.nan
    if kind == "baseline" and not value:
        return Variant(text)
    if kind in ("personal-head", "personal-all", "personal-scaled", "personal-head-scaled"):
        if number > 0:
            personal = "head" if kind.startswith("personal-head") else "all"
            return Variant(text, personal, number, scaled=kind.endswith("scaled"))
    if kind in ("personal-own", "personal-own-head", "personal-own-raw") and number > 0:
        personal = "head" if kind.endswith("head") else "all"
        return Variant(text, personal, number, True, True, shrink=not kind.endswith("raw"))
    if kind == "personal-own-large" and number > 0:
        return Variant(text, "all", number, True, True, large_only=True)
    if kind in ("ensemble-local", "select-local") and not value:
        return Variant(text, mix=kind.partition("-")[0])
    if kind in ("ensemble-split", "select-split") and number > 0:
        return Variant(text, mix=kind.partition("-")[0], federation_epsilon=number)
    if kind == "server-lr" and number > 0:
        return Variant(text, config=(("server_learning_rate", number),))
    if kind == "rounds" and number >= 1 and number == int(number):
        return Variant(text, config=(("rounds", int(number)),))
    if kind == "tolerated-dropout" and 0 <= number < 1:
        return Variant(text, config=(("tolerated_dropout", number),))
    raise SystemExit(f"error: --variants: cannot read {text!r} (see --help)")


def _unit_gradient_sums(
    model: Any, inputs: Any, targets: Any, loss_fn: Any, clip: float, personal: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The branch's clipped per-customer gradient sum, and the sum for its personal copy
    of the last ``personal`` parameters (None for 0): each customer's shared and
    personal gradients are clipped together to ``clip``.

    :func:`secagg.dp.gradient_sum.clipped_gradient_sum` with one change, which is why it
    is not called: the norm each customer is clipped by counts the personal copy too
    (with ``personal = 0`` the two give the same sum)."""
    import torch
    from torch.func import functional_call, grad, vmap

    from secagg.dp.gradient_sum import CHUNK_UNITS

    trainable = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def unit_loss(params: dict[str, Any], x: Any, y: Any) -> Any:
        return loss_fn(functional_call(model, (params, buffers), (x.unsqueeze(0),)), y.unsqueeze(0))

    per_unit = vmap(grad(unit_loss), in_dims=(None, 0, 0))
    total = torch.zeros(sum(p.numel() for p in trainable.values()), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, inputs.shape[0], CHUNK_UNITS):
            end = start + CHUNK_UNITS
            grads = per_unit(trainable, inputs[start:end], targets[start:end])
            flat = torch.cat([g.reshape(g.shape[0], -1).double() for g in grads.values()], 1)
            squared = flat.pow(2).sum(1)
            if personal:
                squared = squared + flat[:, -personal:].pow(2).sum(1)
            factor = (clip / squared.sqrt().clamp(min=1e-12)).clamp(max=1.0)
            total += (flat * factor[:, None]).sum(0)
    vector = total.numpy()
    return vector, (vector[-personal:].copy() if personal else None)


def _setting(
    seed: int, variant: Variant, base: dict[str, Any]
) -> tuple[Any, list[Any], Any, dict[str, Any]]:
    """The seed's configuration (with the variant's settings), its branches, the prior and
    the real baselines (local-only, centralized), each computed once per seed."""
    import torch

    from secagg.apps.simulation import runner
    from secagg.apps.simulation.config import SimulationConfig

    config = SimulationConfig(
        **{**base, "seed": seed, "unit": "record", "mechanism": "distributed"},
    ).with_changes(**dict(variant.config))
    torch.set_num_threads(1)
    if seed not in _WORLDS:  # the data and the prior do not depend on the variant
        branches, stats = runner.load_data(config)
        fitted = runner.prior_model(config, stats)
        _WORLDS[seed] = (branches, fitted.vector if isinstance(fitted, runner.TunedFit) else fitted)
    branches, prior = _WORLDS[seed]
    if (seed, variant.config) not in _BASELINES:  # local-only takes the variant's steps
        _BASELINES[seed, variant.config] = runner._run_baselines(
            config, branches, runner._quiet, prior
        )
    return config, branches, prior, _BASELINES[seed, variant.config]


def probe_seed(seed: int, variant: Variant, base: dict[str, Any]) -> dict[str, Any]:
    """One seed under one variant: the stand-in federation against the real baselines."""
    from secagg.apps.models.nets import fraud_loss
    from secagg.apps.simulation import runner
    from secagg.crypto.stream import KeyedStream, derive
    from secagg.dp.noise import gaussian
    from secagg.dp.user_level import CustomerLoss

    started = time.process_time()
    config, branches, prior, baselines = _setting(seed, variant, base)
    local = baselines["local-only"]
    central = baselines["centralized (non-private)"]
    trainers = {b.name: runner.BranchTrainer(config, b, "federated", prior) for b in branches}
    counts = {name: int(t.units[0].shape[0]) for name, t in trainers.items()}  # type: ignore[index]
    units_total = sum(counts.values())
    model = next(iter(trainers.values())).flat().astype(np.float64)
    size = model.size if variant.personal == "all" else 33 if variant.personal else 0
    record_clip = config.dp_clip / units_total
    opted = {  # the branches with an offset (their customers are clipped jointly)
        name
        for name, count in counts.items()
        if size and (not variant.large_only or count * len(counts) >= LARGE_BRANCH * units_total)
    }
    offsets = {name: np.zeros(size) for name in opted}
    # the released coordinates a customer's gradient reaches: the shared model and its
    # branch's copy (own noise), or every branch's copy (all in the one noised sum)
    copies = 1 if variant.own_noise else len(branches)
    z = runner._distributed_noise(config, model.size + copies * size, record_clip)
    std = z * record_clip
    own_std = std  # a copy in the noised sum carries every branch's share
    if variant.own_noise:  # the spread the honest shares alone guarantee
        own_std = std * math.sqrt(runner.honest_shares(config) / runner.expected_cohort(config))
    offset_noise = dict.fromkeys(offsets, 0.0)  # per coordinate variance of each offset
    stream = KeyedStream(derive("branch-gap probe noise", f"{seed}/{variant.name}"))
    loss = (
        CustomerLoss(positive_weight=config.positive_weight)
        if branches[0].customers_train is not None
        else fraud_loss(config.positive_weight)
    )

    def branch_model(name: str, shrunk: bool = False) -> np.ndarray:
        vector = model.copy()
        if name in opted:
            weight = 1.0
            if shrunk:  # positive-part James-Stein: the offset's noise energy is known
                energy = float(offsets[name] @ offsets[name])
                weight = max(0.0, 1.0 - size * offset_noise[name] / energy) if energy else 0.0
                weights[name] = weight
            vector[-size:] += weight * offsets[name]
        return vector

    weights: dict[str, float] = {}

    velocity = np.zeros(model.size)
    for _ in range(config.rounds):
        step = np.zeros(model.size)
        personal_steps = {}
        for b in branches:
            trainer = trainers[b.name]
            trainer.load(branch_model(b.name).astype(np.float32))
            shared, own = _unit_gradient_sums(
                trainer.model,
                *trainer.units,
                loss,
                config.dp_clip,
                size if b.name in opted else 0,  # type: ignore[misc]
            )
            step -= shared / units_total
            if own is not None:
                personal_steps[b.name] = -own / units_total
        step += gaussian(std, model.size, stream)
        velocity = config.server_momentum * velocity + step
        model = model + config.server_learning_rate * velocity
        for name, own in personal_steps.items():
            pace = variant.gain * (units_total / counts[name] if variant.scaled else 1.0)
            noised = own + gaussian(own_std, size, stream)
            offsets[name] += pace * config.server_learning_rate * noised
            offset_noise[name] += (pace * config.server_learning_rate * own_std) ** 2
    scores = {}
    for b in branches:
        trainer = trainers[b.name]
        trainer.load(branch_model(b.name, variant.shrink).astype(np.float32))
        scores[b.name] = runner._scores(trainer.model, b.x_test)
    federated = runner.scored(scores, branches)
    verdicts = runner.branch_verdicts(config, branches, federated, local)
    sweep: dict[str, dict[str, Any]] = {}
    if variant.own_noise:  # every branch's offset at one weight: what a rule could pick
        for weight in OFFSET_WEIGHTS:
            swept = {}
            for b in branches:
                vector = model.copy()
                if b.name in opted:
                    vector[-size:] += weight * offsets[b.name]
                trainers[b.name].load(vector.astype(np.float32))
                swept[b.name] = runner._scores(trainers[b.name].model, b.x_test)
            at = runner.scored(swept, branches)
            judged = runner.branch_verdicts(config, branches, at, local)
            sweep[f"{weight:g}"] = {
                "federated_auprc": at["pooled"]["auprc"],
                "branches": {
                    name: [v["difference"], v["low"], v["high"], at["branches"][name]["auprc"]]
                    for name, v in judged.items()
                },
            }
    largest = max(counts, key=lambda name: counts[name])
    judged = [v for v in verdicts.values() if v["judged"]]
    behind = sorted(name for name, v in verdicts.items() if v["judged"] and not v["at_least_local"])
    mine = verdicts[largest]
    return {
        "seed": seed,
        "variant": variant.name,
        "noise_multiplier": z,
        "federated_auprc": federated["pooled"]["auprc"],
        "local_only_auprc": local["pooled"]["auprc"],
        "centralized_auprc": central["pooled"]["auprc"],
        "federated_vs_centralized": federated["pooled"]["auprc"] / central["pooled"]["auprc"],
        "branches_judged": len(judged),
        "branches_at_least_local": sum(v["at_least_local"] for v in judged),
        "branches_behind": behind,
        "largest_branch": largest,
        "largest_branch_share": counts[largest] / units_total,
        "largest_branch_difference": [mine["difference"], mine["low"], mine["high"]],
        "largest_branch_auprc": {
            "federated": federated["branches"][largest]["auprc"],
            "local_only": local["branches"][largest]["auprc"],
        },
        "offset_weights": weights,
        "branch_shares": {name: count / units_total for name, count in counts.items()},
        "branches": {
            name: [v["difference"], v["low"], v["high"], v["judged"]]
            for name, v in verdicts.items()
        },
        "offset_weight_sweep": sweep,
        "cpu_seconds": time.process_time() - started,
    }


def _stand_in_federation(
    config: Any, branches: list[Any], prior: Any, label: str
) -> tuple[np.ndarray, float]:
    """The baseline's stand-in federation (``probe_seed`` with no personal part) on the
    given branches: the final model and the noise multiplier. With the label
    ``baseline`` and every training row it replays the baseline row's model."""
    from secagg.apps.models.nets import fraud_loss
    from secagg.apps.simulation import runner
    from secagg.crypto.stream import KeyedStream, derive
    from secagg.dp.noise import gaussian
    from secagg.dp.user_level import CustomerLoss

    trainers = [runner.BranchTrainer(config, b, "federated", prior) for b in branches]
    units_total = sum(int(t.units[0].shape[0]) for t in trainers)  # type: ignore[index]
    model = trainers[0].flat().astype(np.float64)
    record_clip = config.dp_clip / units_total
    z = runner._distributed_noise(config, model.size, record_clip)
    stream = KeyedStream(derive("branch-gap probe noise", f"{config.seed}/{label}"))
    loss = (
        CustomerLoss(positive_weight=config.positive_weight)
        if branches[0].customers_train is not None
        else fraud_loss(config.positive_weight)
    )
    velocity = np.zeros(model.size)
    for _ in range(config.rounds):
        step = np.zeros(model.size)
        for trainer in trainers:
            trainer.load(model.astype(np.float32))
            shared, _ = _unit_gradient_sums(trainer.model, *trainer.units, loss, config.dp_clip, 0)
            step -= shared / units_total
        step += gaussian(z * record_clip, model.size, stream)
        velocity = config.server_momentum * velocity + step
        model = model + config.server_learning_rate * velocity
    return model, z


def _held_out_split(branch: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """The branch with its latest ``VALIDATION_SHARE`` of training rows removed, and
    those rows (features, labels): its own training period, never its test rows."""
    import dataclasses

    n = branch.num_train
    cut = n - round(VALIDATION_SHARE * n)
    if branch.day_train is not None and np.any(np.diff(branch.day_train) < 0):
        raise SystemExit(f"error: {branch.name}: training rows are not in time order")
    fields = ("x_train", "y_train", "customers_train", "day_train", "typology_train")
    kept = {f: getattr(branch, f)[:cut] for f in fields if getattr(branch, f) is not None}
    return dataclasses.replace(branch, **kept), branch.x_train[cut:], branch.y_train[cut:]


def _budgets(config: Any, variant: Variant) -> tuple[Any, Any]:
    """The federation's and the branch's local model's settings: each at the whole
    (epsilon, delta), or the split ``(e, delta / 2)`` and ``(epsilon - e, delta / 2)``."""
    e = variant.federation_epsilon
    if e is None:
        return config, config
    if not e < config.epsilon:
        raise SystemExit(f"error: {variant.name}: the federation's part must be below epsilon")
    half = config.delta / 2
    return (
        config.with_changes(epsilon=e, delta=half),
        config.with_changes(epsilon=config.epsilon - e, delta=half),
    )


def _local_only_at(config: Any, branches: list[Any], prior: Any) -> dict[str, Any]:
    """Local-only on every training row at the configuration's (epsilon, delta), scored
    as the baselines score it (cached per seed and budget)."""
    from secagg.apps.simulation import runner

    key = (config.seed, float(config.epsilon), float(config.delta))
    if key not in _LOCAL_AT:
        test_scores = {}
        for b in branches:
            trainer = runner.BranchTrainer(config, b, "local", prior)
            trainer.train(config.epochs)
            test_scores[b.name] = runner._scores(trainer.model, b.x_test)
        _LOCAL_AT[key] = runner.scored(test_scores, branches)
    return _LOCAL_AT[key]


def _mixed(fed: np.ndarray, local: np.ndarray, weight: float) -> np.ndarray:
    """``weight * p_fed + (1 - weight) * p_local`` from two models' logits: always a
    probability, so that branches at different weights pool on one scale (the logits of
    one branch and the probabilities of another would not)."""
    from scipy.special import expit

    return weight * expit(fed) + (1 - weight) * expit(local)


def _chosen_weight(labels: np.ndarray, fed: np.ndarray, local: np.ndarray, weights: Any) -> float:
    """The weight of ``weights`` with the best AUPRC on the validation slice; ties, and a
    slice without fraud, go to the larger weight (the federation)."""
    from secagg.apps.models.metrics import average_precision

    if not labels.any():
        return 1.0
    return max(weights, key=lambda w: (average_precision(labels, _mixed(fed, local, w)), w))


def _held_out(
    seed: int, variant: Variant, config: Any, branches: list[Any], prior: Any
) -> dict[str, Any]:
    """The federation on every branch's rows but its validation slice, and each branch's
    local model on the same rows: their logits on the validation slice and the test set
    (cached per seed and budget: ``ensemble`` and ``select`` share them)."""
    import dataclasses

    from secagg.apps.simulation import runner

    key = (seed, variant.federation_epsilon)
    if key in _HELD_OUT:
        return _HELD_OUT[key]
    fed_config, local_config = _budgets(config, variant)
    parts = [_held_out_split(b) for b in branches]
    kept = [p[0] for p in parts]
    model, z = _stand_in_federation(fed_config, kept, prior, f"held-out/{fed_config.epsilon:g}")
    scorer = runner.BranchTrainer(fed_config, kept[0], "federated", prior)
    scorer.load(model.astype(np.float32))
    out: dict[str, Any] = {"z": z, "fed": {}, "local": {}, "val_labels": {}, "local_epsilon": []}
    for b, (part, x_val, y_val) in zip(branches, parts, strict=True):
        out["fed"][b.name] = (
            runner._scores(scorer.model, x_val),
            runner._scores(scorer.model, b.x_test),
        )
        # its own noise stream: not the one the local-only baseline draws
        alone = dataclasses.replace(part, name=f"{b.name}/held-out")
        trainer = runner.BranchTrainer(local_config, alone, "local", prior)
        trainer.train(local_config.epochs)
        out["local"][b.name] = (
            runner._scores(trainer.model, x_val),
            runner._scores(trainer.model, b.x_test),
        )
        out["val_labels"][b.name] = y_val
        out["local_epsilon"].append(trainer.epsilon())
    out["federation_alone"] = runner.scored({n: s[1] for n, s in out["fed"].items()}, branches)
    out["local_model"] = runner.scored({n: s[1] for n, s in out["local"].items()}, branches)
    out["fed_config"], out["local_config"] = fed_config, local_config
    _HELD_OUT[key] = out
    return out


def _judged(
    config: Any, branches: list[Any], scores: dict[str, Any], local: dict[str, Any], largest: str
) -> dict[str, Any]:
    """The per-branch verdicts of ``scores`` against ``local``, counted."""
    from secagg.apps.simulation import runner

    verdicts = runner.branch_verdicts(config, branches, scores, local)
    judged = [v for v in verdicts.values() if v["judged"]]
    mine = verdicts[largest]
    return {
        "branches_judged": len(judged),
        "branches_at_least_local": sum(v["at_least_local"] for v in judged),
        "branches_behind": sorted(
            name for name, v in verdicts.items() if v["judged"] and not v["at_least_local"]
        ),
        "largest_branch_difference": [mine["difference"], mine["low"], mine["high"]],
        "branches": {
            name: [v["difference"], v["low"], v["high"], v["judged"]]
            for name, v in verdicts.items()
        },
    }


def probe_mix(seed: int, variant: Variant, base: dict[str, Any]) -> dict[str, Any]:
    """One seed under ``ensemble-*`` / ``select-*``: each branch mixes the held-out
    federation with its own local model at the weight its validation slice picks, judged
    against local-only at the same total epsilon and at the bar's."""
    from secagg.apps.simulation import runner

    started = time.process_time()
    config, branches, prior, baselines = _setting(seed, variant, base)
    central = baselines["centralized (non-private)"]
    at_bar = baselines["local-only"]
    held = _held_out(seed, variant, config, branches, prior)
    fed_config, local_config = held["fed_config"], held["local_config"]
    split = variant.federation_epsilon is not None
    total = (
        (float(config.epsilon), float(config.delta))
        if split
        else (2.0 * config.epsilon, 2.0 * config.delta)
    )
    same_total = (
        at_bar
        if split
        else _local_only_at(config.with_changes(epsilon=total[0], delta=total[1]), branches, prior)
    )
    counts = {b.name: int(runner.protected_units(config, b)[0].shape[0]) for b in branches}
    largest = max(counts, key=lambda name: counts[name])
    grid = MIX_WEIGHTS if variant.mix == "ensemble" else (0.0, 1.0)
    weights = {
        b.name: _chosen_weight(
            held["val_labels"][b.name], held["fed"][b.name][0], held["local"][b.name][0], grid
        )
        for b in branches
    }
    mixed = runner.scored(
        {
            b.name: _mixed(held["fed"][b.name][1], held["local"][b.name][1], weights[b.name])
            for b in branches
        },
        branches,
    )
    versus = _judged(config, branches, mixed, same_total, largest)
    versus_bar = _judged(config, branches, mixed, at_bar, largest) if not split else versus
    if "sweep" not in held:  # every branch at one fixed weight (against the same total)
        held["sweep"] = {}
        for weight in MIX_WEIGHTS:
            at = runner.scored(
                {
                    b.name: _mixed(held["fed"][b.name][1], held["local"][b.name][1], weight)
                    for b in branches
                },
                branches,
            )
            judged = _judged(config, branches, at, same_total, largest)
            held["sweep"][f"{weight:g}"] = {
                "federated_auprc": at["pooled"]["auprc"],
                "federated_vs_centralized": at["pooled"]["auprc"] / central["pooled"]["auprc"],
                "branches_at_least_local": judged["branches_at_least_local"],
                "branches_judged": judged["branches_judged"],
                "largest_branch_difference": judged["largest_branch_difference"][0],
            }
    local_eps = max(e for e in held["local_epsilon"] if e is not None)
    return {
        "seed": seed,
        "variant": variant.name,
        "noise_multiplier": held["z"],
        "federated_auprc": mixed["pooled"]["auprc"],
        "federation_alone_auprc": held["federation_alone"]["pooled"]["auprc"],
        "local_model_auprc": held["local_model"]["pooled"]["auprc"],
        "local_only_auprc": same_total["pooled"]["auprc"],
        "local_only_at_bar_auprc": at_bar["pooled"]["auprc"],
        "centralized_auprc": central["pooled"]["auprc"],
        "federated_vs_centralized": mixed["pooled"]["auprc"] / central["pooled"]["auprc"],
        **{k: v for k, v in versus.items() if k != "branches"},
        "largest_branch": largest,
        "largest_branch_share": counts[largest] / sum(counts.values()),
        "largest_branch_auprc": {
            "federated": mixed["branches"][largest]["auprc"],
            "local_only": same_total["branches"][largest]["auprc"],
        },
        "versus_bar": {k: v for k, v in versus_bar.items() if k != "branches"},
        "epsilon": {  # per card, basic composition; the federation's is its target
            "federation": float(fed_config.epsilon),
            "local_model": local_eps,
            "branch_customers": float(fed_config.epsilon) + local_eps,
            "other_customers": float(fed_config.epsilon),
            "delta_branch_customers": float(fed_config.delta + local_config.delta),
            "local_only_compared": list(total),
        },
        "mix_weights": weights,
        "validation_frauds": {n: int(y.sum()) for n, y in held["val_labels"].items()},
        "branch_shares": {name: count / sum(counts.values()) for name, count in counts.items()},
        "branches": versus["branches"],
        "mix_weight_sweep": held["sweep"],
        "cpu_seconds": time.process_time() - started,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant, over its seeds: the ratio of means, the verdicts, the largest branch."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name]
        differences = [r["largest_branch_difference"][0] for r in mine]
        out[name] = {
            "seeds": [r["seed"] for r in mine],
            "federated_vs_centralized_of_means": float(
                np.mean([r["federated_auprc"] for r in mine])
                / np.mean([r["centralized_auprc"] for r in mine])
            ),
            "branches_at_least_local": sum(r["branches_at_least_local"] for r in mine),
            "branches_judged": sum(r["branches_judged"] for r in mine),
            "largest_branch_behind_on_seeds": [
                r["seed"] for r in mine if r["largest_branch"] in r["branches_behind"]
            ],
            "largest_branch_mean_difference": float(np.mean(differences)),
            "federated_vs_centralized_worst_seed": float(
                min(r["federated_vs_centralized"] for r in mine)
            ),
        }
        if all("versus_bar" in r for r in mine):  # a mixed row, also against the bar's local
            out[name]["versus_bar"] = {
                "branches_at_least_local": sum(
                    r["versus_bar"]["branches_at_least_local"] for r in mine
                ),
                "branches_judged": sum(r["versus_bar"]["branches_judged"] for r in mine),
                "largest_branch_mean_difference": float(
                    np.mean([r["versus_bar"]["largest_branch_difference"][0] for r in mine])
                ),
            }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=None, help="comma-separated (default 1000-1009)")
    parser.add_argument("--variants", nargs="+", default=None, help="default: all of VARIANTS")
    parser.add_argument("--quick", action="store_true", help="one small seed, two variants")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    base: dict[str, Any] = {}
    seeds = list(TUNING_SEEDS)
    names = list(VARIANTS)
    if args.quick:
        base = {"train_rows": 30_000, "test_rows_per_branch": 3_000, "rounds": 2}
        seeds, names = [1000], ["baseline", "personal-head:1"]
    if args.seeds:
        seeds = probe_seeds(args.seeds)
    variants = [parse_variant(v) for v in (args.variants or names)]
    started = time.perf_counter()
    rows = []
    for seed in seeds:
        for variant in variants:
            probe = probe_mix if variant.mix else probe_seed
            rows.append(probe(seed, variant, base))
            print(  # progress on stderr: a full probe takes about 25 minutes a core
                f"[{len(rows)}/{len(seeds) * len(variants)}] seed {seed} {variant.name}: "
                f"federated / centralized {rows[-1]['federated_vs_centralized']:.3f}, "
                f"{rows[-1]['branches_at_least_local']} of {rows[-1]['branches_judged']} "
                "branches at least local",
                file=sys.stderr,
                flush=True,
            )
    emit(
        {
            "benchmark": "branch_gap",
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - started,
            "machine": machine_info(),
            "world": base or "the defaults of secagg simulate",
            "rows": rows,
            "summary": summarise(rows),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
