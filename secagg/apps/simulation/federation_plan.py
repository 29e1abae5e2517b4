"""The federation the simulation's server runs: its configuration and its DP noise.

:func:`federation_config` turns a :class:`~secagg.apps.simulation.config.SimulationConfig`
into the runtime's :class:`~secagg.runtime.config.FederationConfig`: the branches, the
backend and its bounds, the deadlines, and the DP settings with the noise multiplier
sized for the target (client-level central or distributed, record-level distributed).
It is built twice with the same inputs: before training, to refuse a plan no round can
run (:mod:`~secagg.apps.simulation.early_checks`), and for the federation itself; the
privacy parameters the report prints count the same expected cohort and honest shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secagg.apps.simulation.config import SimulationConfig

KEY_HOLDER = "key-holder"


def _client_level_noise(config: SimulationConfig, sample_rate: float | None = None) -> float:
    """The client-level noise multiplier: ``noise_multiplier``, or the smallest that meets
    the epsilon target. The central mechanism charges each branch for the rounds it was
    in and claims the most charged branch's epsilon, so with sampling the noise is sized
    for the rounds the most sampled branch likely takes part in
    (:func:`~secagg.dp.accounting.federation_noise_multiplier`; a branch sampled more
    often sits out once its next round would cross the target, the run's budget). The
    distributed mechanism passes ``sample_rate`` 1: every round counts for everyone."""
    if config.noise_multiplier is not None:
        return config.noise_multiplier
    from secagg.dp.accounting import federation_noise_multiplier

    assert config.epsilon is not None
    q = config.sample_rate if sample_rate is None else sample_rate
    return federation_noise_multiplier(
        config.epsilon, config.delta, q, config.rounds, config.branches
    )


def expected_cohort(config: SimulationConfig) -> int:
    """The expected branches of a round, q * N rounded: the public denominator the
    distributed mechanism sizes each branch's noise share by (as the runtime does)."""
    return max(1, round(config.sample_rate * config.branches))


def honest_shares(config: SimulationConfig) -> int:
    """The noise shares the distributed mechanism counts on in a round
    (:func:`secagg.dp.distributed.planned_honest_shares` of the expected cohort, the
    assumed colluders and the tolerated dropouts). The colluders are the cohort's own
    count at ``sample_rate`` 1 and the whole population's (up to all but one of the
    cohort) below it: the server that draws the cohort can put every colluder it has
    in it, so the count is never the cohort's share of them (docs/privacy.md, the
    distributed row of the sampling table). Each branch's share is sized so that
    these alone carry the whole noise; further shares add noise, and the calibration
    covers them too (up to :func:`most_honest_shares`: the bound's ``tau`` term grows
    with the count, so more shares are not always cheaper)."""
    from secagg.dp.distributed import planned_honest_shares

    return planned_honest_shares(
        expected_cohort(config),
        config.corrupt_fraction,
        config.tolerated_dropout,
        population=config.branches,
    )


def most_honest_shares(config: SimulationConfig) -> int:
    """The noise shares of a round of the expected cohort in which nobody drops: the
    top of the range the distributed noise is calibrated for. Why a range and not
    :func:`honest_shares` alone: the DDG bound is not monotone in the count (its ``tau``
    term grows with it), so noise sized for the fewest shares can fall short for all of
    them (:func:`secagg.dp.distributed.calibrate_noise_multiplier`)."""
    from secagg.dp.distributed import planned_honest_shares

    return planned_honest_shares(
        expected_cohort(config), config.corrupt_fraction, population=config.branches
    )


def _distributed_noise(
    config: SimulationConfig, dimension: int, record_clip: float | None = None
) -> float:
    """The noise multiplier of the distributed DG: the Gaussian one, raised in 2 % steps
    until the DDG's own epsilon meets the target, counting discreteness, rounding
    and only the noise shares of branches that neither collude nor drop out (within
    the tolerated fractions; a round with more dropouts spends more, and says so).

    With client sampling (``sample_rate`` q < 1) the shares are sized for the expected
    cohort q * N, and no amplification by sampling is counted: the server that draws
    the cohort is the party the distributed mechanism does not trust (see
    ``secagg.dp.release.DistributedRelease``). So q < 1 only thins the cohort, and a
    round's honest shares are counted from q * N; a cohort that comes out smaller
    than the tolerated dropout allows spends more, and the server's budget stops the
    run before it crosses the target."""
    from secagg.dp.distributed import calibrate_noise_multiplier

    if config.noise_multiplier is not None:
        return config.noise_multiplier
    assert config.epsilon is not None
    # no ``start``: the calibration finds the central Gaussian's noise at sample rate 1
    # (what _client_level_noise(config, sample_rate=1.0) gave) itself, and an unreachable
    # budget then says this mechanism's own epsilon, not the central Gaussian's (and no
    # "lower sample_rate", which this mechanism never credits)
    return calibrate_noise_multiplier(
        epsilon=config.epsilon,
        delta=config.delta,
        rounds=config.rounds,
        dimension=dimension,
        clip=config.dp_clip if record_clip is None else record_clip,
        expected_clients=expected_cohort(config),
        honest_shares=honest_shares(config),
        most_shares=most_honest_shares(config),
        vector_bound=0.0 if record_clip is None else config.dp_clip,
    )


def federation_config(
    config: SimulationConfig, dimension: int, state: Path, units_total: int = 1
) -> Any:
    """The :class:`FederationConfig` the simulation's server runs. ``units_total``: the
    protected units of all branches (record-level distributed DP's public denominator)."""
    from secagg.dp.config import DPSettings
    from secagg.runtime.config import (
        BackendConfig,
        DeadlineConfig,
        FederationConfig,
        SamplingConfig,
        ServerSettings,
    )

    names = tuple(f"branch-{b + 1:02d}" for b in range(config.branches))
    client_dp = config.unit == "client" and config.private
    bound = config.dp_clip if client_dp else config.update_clip
    if client_dp:
        noise = (
            _distributed_noise(config, dimension)
            if config.mechanism == "distributed"
            else _client_level_noise(config)
        )
        dp = DPSettings(
            unit="client",
            mechanism=config.mechanism,
            clip=config.dp_clip,
            noise_multiplier=noise,
            delta=config.delta,
            # a target epsilon is a hard cap: the server stops before a round crosses it
            epsilon_budget=config.epsilon,
        )
    elif config.record_distributed:
        # a branch's vector is its customers' clipped gradients over all branches'
        # customers: at most dp_clip in norm, and one customer moves it by dp_clip / N
        record_clip = config.dp_clip / units_total
        bound = config.dp_clip
        dp = DPSettings(
            unit="record",
            mechanism="distributed",
            clip=config.dp_clip,
            record_clip=record_clip,
            record_unit=config.protected,  # a transaction when the rows name no customer
            noise_multiplier=_distributed_noise(config, dimension, record_clip),
            delta=config.delta,
            epsilon_budget=config.epsilon,
        )
    elif config.private:
        dp = DPSettings(
            unit="record", mechanism="dpsgd", clip=config.update_clip, delta=config.delta
        )
    else:
        dp = None
    return FederationConfig(
        name="simulation",
        clients=names,
        dimension=dimension,
        rounds=config.rounds,
        server_learning_rate=config.server_learning_rate,
        server_momentum=config.server_momentum,
        server_optimizer=config.server_optimizer,
        **({} if config.server_adam_tau is None else {"server_adam_tau": config.server_adam_tau}),
        seed=config.seed,
        replay_noise=True,  # a simulation replays bit for bit; its ledger says so
        # each branch joins a round with probability q, drawn by the server (q = 1: all)
        sampling=SamplingConfig(kind="poisson", rate=config.sample_rate),
        backend=BackendConfig(
            name=config.backend,
            value_bound=bound,
            dropout_fraction=config.tolerated_dropout,
            corrupt_fraction=config.corrupt_fraction,
            key_holder=KEY_HOLDER if config.backend == "ckks" else None,
        ),
        dp=dp,
        # a branch still training is not a dropout; vanished branches are seen at once;
        # a branch whose protocol gave up (too few live neighbours) is silent: 10 s, and
        # 0.1 s more per expected branch, as every branch's thread shares the simulator's
        # cores (at 1 000 branches a masking phase took over 10 s and rounds aborted)
        deadlines=DeadlineConfig(
            phase_seconds=10.0 + 0.1 * expected_cohort(config),
            training_seconds=900.0,
            round_seconds=3600.0,
        ),
        # the simulated dropouts are drawn afresh each round: a branch that missed two
        # rounds is no more likely to miss the next, so none is left out (benched)
        server=ServerSettings(state=str(state), bench_after_missed_rounds=0),
    )
