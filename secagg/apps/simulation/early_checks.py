"""The refusals a run makes once its data is known, before the prior's fit and any
baseline trains.

Each check asks what a later stage would refuse (a DP-SGD target no noise meets, a
noise the accountant cannot state, a delta not below 1 / n of the protected units, a
composed delta that is no guarantee, a round the federation's plan cannot run) and
refuses it now, in one line naming the flag or key. Why here: the stages that would
otherwise find out run after the data, the prior (about a minute at the default size)
and every baseline, and their own words named no flag. Each check builds what the
stage builds (the same calibration, memoised; the same federation configuration), so
a run that passes gets the same figures.
"""

from __future__ import annotations

import math
from pathlib import Path

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import (
    _calibration_refused,
    _dpsgd_data,
    _record_distributed_units,
    _runs_dpsgd,
    protected_units,
    starting_model,
    trainable_vector,
)
from secagg.apps.simulation.config import REAL_CAPS, SimulationConfig, key
from secagg.apps.simulation.federation_plan import federation_config
from secagg.errors import BudgetUnreachable, ConfigurationError


def check_dpsgd_calibration(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Calibrate every branch's DP-SGD noise for ``config.epsilon`` now, before the prior
    is fitted and any baseline trains, and refuse a target no noise meets as the
    trainers would (one line naming the flag or key).

    Why: the trainers calibrate when they are built, after the data, the prior fit and
    (for the federation's) the baselines: ``--epsilon 1e-6`` with the feature
    statistics charged was refused only after the prior's fit. The calibration is
    memoised, so the trainers built later get the same noise without a second search:
    the run's figures are unchanged.

    With a noise multiplier or a target, ``delta`` is checked against each branch's
    protected units here too, by the trainers' rule (below ``1 / n``: a larger one
    allows publishing a whole unit): ``--delta 0.999`` was refused by a trainer, after
    the prior's fit, in the DP engine's words naming no flag."""
    if not _runs_dpsgd(config):
        return
    from secagg.dp.dpsgd import calibrated_noise_multiplier

    for branch in branches:
        dataset, _, batch = _dpsgd_data(config, branch)
        n = len(dataset)
        if not config.delta < 1 / n:
            raise ConfigurationError(
                f"{key('delta', config.delta)} is not below 1 / n = {1 / n:.3g} for "
                f"{branch.name}'s n = {n} {config.protected}s: a larger delta allows "
                f"publishing a whole {config.protected}; choose a smaller one"
            )
        if config.epsilon is None:
            _check_noise_accountable(config, branch, n, batch)
            continue
        try:
            calibrated_noise_multiplier(
                dataset,
                target_epsilon=config.epsilon,
                epochs=config.epochs,
                batch_size=batch,
                delta=config.delta,
                prior_releases=branch.prior_releases,
            )
        except ConfigurationError as exc:
            raise _calibration_refused(config, branch, exc) from None


def check_record_distributed_delta(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Refuse a record-level distributed ``delta`` not below ``1 / N``, ``N`` the
    protected units of all branches (one line naming the flag or key, before any
    training): the rule DP-SGD's trainers apply per branch, for the dataset this
    mechanism protects a unit in, the union of the branches' (its noise is sized for
    one unit among all ``N``). ``1 / N`` is below every branch's ``1 / n``, so the
    local-only baseline, which protects a unit among its branch's ``n``, is held to it too.

    Why: ``--unit record --mechanism distributed --delta 0.5`` ran and printed
    "epsilon = 2.864 (customer-level, delta = 0.5)": a delta that allows publishing
    a whole customer's rows, no guarantee (simulate audit, 2026-12-05); DP-SGD refused
    it (:func:`check_dpsgd_calibration`), this mechanism asked only ``delta < 1``."""
    if not config.record_distributed:
        return
    n = _record_distributed_units(config, branches)
    if not config.delta < 1 / n:
        raise ConfigurationError(
            f"{key('delta', config.delta)} is not below 1 / n = {1 / n:.3g} for the "
            f"n = {n} {config.protected}s of all {len(branches)} branches (record-level "
            f"distributed DP protects one among them all): a larger delta allows "
            f"publishing a whole {config.protected}; choose a smaller one"
        )


def check_composed_delta(config: SimulationConfig, branches: list[BranchData]) -> None:
    """Refuse a prior's delta whose composition with this run's is no privacy guarantee
    for a record-level run: the composed delta (``prior_delta + delta``, basic
    composition) must be below ``1 / n`` of each branch's ``n`` protected units, the
    rule the DP-SGD trainers apply to ``delta`` alone (a larger one allows publishing a
    whole unit); for record-level distributed DP, below ``1 / N`` of all branches'
    ``N`` units, the dataset it protects a unit in (as
    :func:`check_record_distributed_delta`). One line naming the flag or key, before
    any training.

    Why: ``--prior-delta 0.9`` was accepted (only ``prior_delta + delta < 1`` was
    asked) and every epsilon was printed at delta = 0.90001: honest, and meaningless.
    The client level's rule (below ``1 / branches``) needs no data and is checked at
    load (:meth:`SimulationConfig._check_round_plan`)."""
    cost = config.prior_cost
    if cost is None or config.unit != "record" or cost[1] == 0:
        return
    composed = cost[1] + config.delta
    # record-level distributed DP protects a unit among all branches' (see
    # check_record_distributed_delta); DP-SGD one among its own branch's
    datasets = (
        [(f"all {len(branches)} branches'", _record_distributed_units(config, branches))]
        if config.record_distributed
        else [
            (
                f"{branch.name}'s",
                len(_dpsgd_data(config, branch)[0])
                if _runs_dpsgd(config)
                else int(protected_units(config, branch)[0].shape[0]),
            )
            for branch in branches
        ]
    )
    for whose, n in datasets:
        if not composed < 1 / n:
            named = (
                key("prior_delta", config.prior_delta)
                if config.prior_delta is not None
                else f"{key('prior_delta')} (by default {key('delta')})"
            )
            raise ConfigurationError(
                f"{named}: the composed delta ({key('prior_delta')} + {key('delta')}) = "
                f"{composed:g} is not "
                f"below 1 / n = {1 / n:.3g} for {whose} n = {n} "
                f"{config.protected}s: a larger delta allows publishing a whole "
                f"{config.protected}, no guarantee; choose a smaller one"
            )


def _check_noise_accountable(
    config: SimulationConfig, branch: BranchData, n: int, batch: int
) -> None:
    """Refuse ``noise_multiplier`` now if the trainers' accountant (PRV, what simulate's
    DP-SGD uses) could not state the epsilon of this branch's training, or the
    record-level server would not replay the history the branch reports
    (:func:`~secagg.dp.release.history_replay_refusal`: its PRV grid), naming the flag
    and the smallest noise that passes both.

    Why: a trainer checks it only when it trains (``DPSGDTrainer._check_accountable``):
    ``--noise-multiplier 0.01`` was refused during local-only training, after the prior's
    fit (40 s at the defaults), in the DP engine's words, which suggested
    ``accountant='rdp'`` (no setting of simulate). The check asks the server's own
    arrival check of the whole run's history (the local-only fit's, and the federated
    trainer's after its last round: the same ``(z, q, steps)``), milliseconds: it sizes
    PRV's privacy loss domain as the trainer's own check does first (a domain past the
    accountant's limit is refused there too), then its grid; the evaluation itself is
    left to the trainers."""
    from secagg.dp.dpsgd import _batches, _prior_entries
    from secagg.dp.release import history_replay_refusal

    assert config.noise_multiplier is not None
    q = 1 / _batches(n, batch)
    steps = config.epochs * int(1 / q)
    prior = _prior_entries(branch.prior_releases)

    def accountable(z: float) -> bool:
        """The accountant states the run's epsilon and the record-level server replays
        the history the branch reports (its PRV grid, not only its domain: a noise that
        passed the domain alone made every branch a dropout)."""
        return history_replay_refusal([*prior, (z, q, steps)], "prv", config.delta) is None

    if accountable(config.noise_multiplier):
        return
    low, high = config.noise_multiplier, max(1.0, 2 * config.noise_multiplier)
    cap = REAL_CAPS["noise_multiplier"]
    while not accountable(high):  # more noise: a smaller domain
        if high >= cap:
            raise ConfigurationError(
                f"{key('noise_multiplier', config.noise_multiplier)}: no noise up to "
                f"{cap:g} lets the accountant state the epsilon of {branch.name}'s "
                f"{steps} DP-SGD steps (q = {q:.3g}): train fewer epochs"
            )
        low, high = high, min(2 * high, cap)
    for _ in range(40):  # the smallest accountable z, rounded up (never flattering)
        mid = (low + high) / 2
        low, high = (low, mid) if accountable(mid) else (mid, high)
        if high - low <= 1e-3 * high:
            break
    scale = 10.0 ** (math.floor(math.log10(high)) - 1)
    least = float(f"{math.ceil(high / scale) * scale:.2g}")  # two digits, rounded up
    raise ConfigurationError(
        f"{key('noise_multiplier', config.noise_multiplier)} is too little noise for the "
        f"accountant to state, and the server to replay, the epsilon of {branch.name}'s "
        f"{steps} DP-SGD steps "
        f"(q = {q:.3g}): give at least {least:g} (at most {cap:g})"
    )


def _check_federation_plan(
    config: SimulationConfig, branches: list[BranchData], state: Path
) -> None:
    """Build the federation's configuration (which plans its round) from the real model
    size and protected units before the prior is fitted and any baseline trains: the
    load-time plan uses stand-ins, and a setting only the real ones refuse (record-level
    distributed DP's clip against the ring: ``clip = 1e12``) failed after the data, the
    prior and every baseline (review of 2026-12-04); a client-level budget no noise meets
    (``--unit client --epsilon 1e-9``) was refused only after the prior's fit, a minute
    at the default size. The trained size is ``config.trains``'s share of the model,
    whatever the prior's values: no prior is needed to know it. A
    :class:`ConfigurationError` names what no round can run."""
    size = trainable_vector(starting_model(config, branches[0].x_train.shape[1], None)).size
    units_total = _record_distributed_units(config, branches) if config.record_distributed else 1
    try:
        federation_config(config, size, state, units_total)
    except BudgetUnreachable as exc:
        if config.epsilon is None:
            raise
        # the budget is what no noise meets: name it, not the updates' bound (which
        # the message named, "the updates' bound is --clip = 10", for --epsilon 1e-9)
        raise ConfigurationError(
            f"{key('epsilon', config.epsilon)}: no federation round can run with these "
            f"settings (checked before training): {exc}"
        ) from None
    except ConfigurationError as exc:
        dp_bound = config.record_distributed or (config.unit == "client" and config.private)
        name, bound = ("clip", config.dp_clip) if dp_bound else ("update_clip", config.update_clip)
        raise ConfigurationError(
            f"no federation round can run with these settings (checked before training): "
            f"{exc} (the updates' bound is {key(name)} = {bound:g})"
        ) from None
