"""The federated rounds over the real runtime: step 4 of ``secagg simulate``.

:func:`run_federation` starts a :class:`~secagg.runtime.server.FederationServer` and one
:class:`~secagg.runtime.client.FederationClient` per branch, as threads over the
simulated network or in Ray actors (:mod:`secagg.apps.simulation.hosted`), plays the
seeded dropout schedule, and evaluates the model after every round. Not a shortcut:
the branches' updates meet only in the chosen aggregation backend, and the server keeps
its database and signed ledger in the run folder. What it returns
(:class:`FederationRun`) is what the run's result and privacy parameters are made of.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from secagg.apps.models.synthetic import BranchData
from secagg.apps.simulation.branch_training import (
    BranchTrainer,
    _record_distributed_units,
    _runs_dpsgd,
    load_trainable,
    starting_model,
    trainable_vector,
)
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.evaluation import evaluate
from secagg.apps.simulation.federation_plan import expected_cohort, federation_config
from secagg.apps.simulation.network import (
    MASKING_PHASES,
    SINGLE_PHASE,
    DropoutSchedule,
    SimulatedNetwork,
)
from secagg.apps.simulation.privacy import composed_epsilon
from secagg.apps.simulation.progress import Progress, _quiet
from secagg.apps.simulation.ray_address import ray_address_source
from secagg.apps.simulation.seeding import _replay_bytes
from secagg.dp.display import shown


class FederationRun(NamedTuple):
    """What :func:`run_federation` returns."""

    rounds: list[dict[str, Any]]
    model: np.ndarray
    dropouts: list[dict[str, Any]]
    trainers: dict[str, BranchTrainer]
    #: the server's reason for stopping before the planned rounds (``dp.epsilon_budget``
    #: reached, ``max_attempts``, aborts in a row, no quorum), else None
    stopped: str | None
    #: the server's client-level DP settings (``[dp]`` of its config), None without them
    server_dp: Any = None
    #: the distributed DP accountant's honest noise shares of each released round
    noise_shares: list[int] | None = None


def run_federation(
    config: SimulationConfig,
    branches: list[BranchData],
    state: Path,
    progress: Progress = _quiet,
    ledger_path: Path | None = None,
    prior: np.ndarray | None = None,
) -> FederationRun:
    """The federated rounds over the real runtime. With ``config.trains == "head"`` the
    federation's model is the prior's output layer: that is all the branches train, send
    and the server averages (the frozen body is the prior's, known to everyone).

    ``config.engine`` says where the branches run: ``inprocess`` (one thread each, here)
    or ``ray`` (in Ray actors, :mod:`secagg.runtime.ray_engine`: started here, or joined
    at ``config.ray_address``, and shut down or left at the end). Both play the same
    dropout schedule, so the same seed gives the same rounds."""
    phases = SINGLE_PHASE if config.backend in ("plain", "ckks") else MASKING_PHASES
    schedule = DropoutSchedule(config.dropout, config.seed, phases) if config.dropout else None
    if config.engine != "ray":
        network = SimulatedNetwork(schedule)
        return _federate(config, branches, state, network, progress, ledger_path, prior)
    from secagg.runtime.ray_engine import RayHub, ray_session

    session = ray_session(config.ray_address, source=ray_address_source(config))
    with session, RayHub(schedule, workers=config.ray_workers) as hub:
        return _federate(config, branches, state, hub, progress, ledger_path, prior)


def _federate(
    config: SimulationConfig,
    branches: list[BranchData],
    state: Path,
    network: SimulatedNetwork,
    progress: Progress,
    ledger_path: Path | None,
    prior: np.ndarray | None,
) -> FederationRun:
    """:func:`run_federation` over ``network``: a :class:`SimulatedNetwork` whose branches
    are threads here, or a :class:`~secagg.runtime.ray_engine.RayHub` whose branches are
    built (trainers included) and run in its client hosts."""
    from secagg.aggregation.policy import BranchPolicy
    from secagg.apps.simulation.hosted import HostedBranch, hosted_epsilons, hosted_trainers
    from secagg.runtime.client import FederationClient
    from secagg.runtime.launch import (
        build_server,
        key_holder_idle,
        key_holder_service,
        make_key_holder_key,
    )
    from secagg.runtime.ray_engine import RayHub
    from secagg.runtime.server import RoundResult

    hub = network if isinstance(network, RayHub) else None
    trainers: dict[str, Any]
    if hub is not None:  # the trainers are built in the Ray workers, not here
        trainers: dict[str, BranchTrainer] = {}
        units_total = (
            _record_distributed_units(config, branches) if config.record_distributed else None
        )
        initial = trainable_vector(
            starting_model(config, branches[0].x_train.shape[1], prior)
        ).astype(np.float64)
    else:
        trainers = {b.name: BranchTrainer(config, b, "federated", prior) for b in branches}
        units_total = None
        if config.record_distributed:
            units_total = sum(int(t.units[0].shape[0]) for t in trainers.values() if t.units)
            for trainer in trainers.values():
                trainer.units_total = units_total
        initial = next(iter(trainers.values())).flat().astype(np.float64)
    fed = federation_config(config, initial.size, state, units_total or 1)
    helper_settings: dict[str, Any] = {}
    pin = None
    if fed.backend.key_holder is not None:  # made before round 1, pinned by every branch
        key_file = Path(f"{state}.key-holder.key")
        key_file.unlink(missing_ok=True)
        pin = make_key_holder_key(fed, key_file)
        helper_settings["key"] = str(key_file)
    # the simulated branches hold the policy a bank would give them for this federation
    own_noise: dict[str, Any] = {}
    if config.record_distributed and fed.dp is not None:
        # each branch checks the noise is sized for what one of its customers moves
        own_noise = {
            "min_noise_multiplier": fed.dp.noise_multiplier,
            "record_sensitivity": fed.dp.record_clip,
            "expected_clients": config.branches,
        }
    policy = BranchPolicy(
        allow_plain=config.backend == "plain",
        key_holder_fingerprint=pin,
        corrupt_fraction=fed.backend.corrupt_fraction,
        dropout_fraction=fed.backend.dropout_fraction,
        **own_noise,
    )
    threads = []
    if hub is not None:
        calibrations = _driver_calibrations(config)
        hub.start(
            {
                b.name: HostedBranch(config, b, prior, policy, units_total, calibrations)
                for b in branches
            },
            rounds=config.rounds,
        )
    for b in () if hub is not None else branches:  # hosted branches run in their hosts
        dpsgd = trainers[b.name].dpsgd
        client = FederationClient(
            b.name,
            trainers[b.name].update_hook(),
            network.connect(b.name),
            policy=policy,
            replay_seed=_replay_bytes(config, "rounding", b.name),
            privacy_report=None if dpsgd is None else trainers[b.name].privacy_report,
        )
        thread = threading.Thread(
            target=client.run,
            kwargs={"idle_timeout": 1800.0, "rounds": config.rounds},
            name=f"client-{b.name}",
            daemon=True,
        )
        threads.append(thread)
    if fed.backend.key_holder is not None:
        holder = key_holder_service(fed, network.connect(fed.backend.key_holder), helper_settings)
        threads.append(
            threading.Thread(
                target=holder.run,
                # silent from its key request to the decryption: every branch's training
                # and encryption; 60 s flat let it leave a large CKKS round (review)
                kwargs={"idle_timeout": key_holder_idle(fed)},
                name="key-holder",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()

    evaluator = starting_model(config, branches[0].x_train.shape[1], prior)
    rounds: list[dict[str, Any]] = []
    clock = {"start": time.perf_counter()}
    sent_before = {b.name: 0 for b in branches}
    received_before = {b.name: 0 for b in branches}

    def observe(result: RoundResult, model: np.ndarray) -> None:
        now = time.perf_counter()
        load_trainable(evaluator, model)
        metrics = evaluate(evaluator, branches)
        record_eps = (
            hosted_epsilons(hub, branches)
            if hub is not None
            else {name: t.epsilon() for name, t in trainers.items()}
        )
        sent = {n: network.bytes_sent[n] - sent_before[n] for n in sent_before}
        received = {n: network.bytes_received[n] - received_before[n] for n in received_before}
        sent_before.update({n: network.bytes_sent[n] for n in sent_before})
        received_before.update({n: network.bytes_received[n] for n in received_before})
        known_eps = [e for e in record_eps.values() if e is not None]
        # epsilon is cumulative: a round that released nothing (aborted) spent nothing
        # new, so it shows what was spent before it, never a blank
        spent_before = rounds[-1]["epsilon_this_run"] if rounds else None
        this_run = (
            result.epsilon
            if result.epsilon is not None
            else (max(known_eps) if known_eps else spent_before)
        )
        row = {
            "round": result.number,
            "status": result.status,
            "reason": result.reason,
            "contributed": list(result.contributed),
            "dropped": sorted(set(result.participants) - set(result.contributed)),
            "seconds": now - clock["start"],
            "pooled": metrics["pooled"],
            "mean_branch_auprc": metrics["mean_branch_auprc"],
            "branch_auprc": {n: m["auprc"] for n, m in metrics["branches"].items()},
            "branches": metrics["branches"],
            "epsilon_client_level": result.epsilon,
            "epsilon_record_level": record_eps,
            # the model released after this round starts from the prior: its epsilon
            # is the prior's and this run's composed; this run's alone (what the
            # ledger and the accountants above record) beside it
            "epsilon": composed_epsilon(config, this_run),
            "epsilon_this_run": this_run,
            "bytes_sent": sent,
            "bytes_received": received,
        }
        rounds.append(row)
        clock["start"] = time.perf_counter()
        eps = row["epsilon"]
        progress(
            "federated",
            len(rounds),
            config.rounds,
            # an aborted round leaves the model as it was: no AUPRC of its own to show
            f"round {result.number} {result.status}"
            + (f": AUPRC {metrics['pooled']['auprc']:.3f}" if result.status == "complete" else "")
            + (f", ε {shown(eps, 2)}" if eps is not None and math.isfinite(eps) else ""),
        )

    progress("federated", 0, config.rounds, "")
    ledger_path = ledger_path or state.with_name(state.stem + ".ledger.sqlite")
    # the simulation's ledger key is fresh: only its public half outlives the run
    server = build_server(
        fed,
        network,
        state,
        initial_model=initial,
        observer=observe,
        ledger_path=ledger_path,
        export_key_to=ledger_path.with_suffix(".pub.pem"),
    )
    try:
        server.run(
            wait_for_clients=60.0, max_consecutive_aborts=config.rounds, max_attempts=config.rounds
        )
    finally:
        # the server's record-level DP-SGD replays still queued (a report of a round that
        # aborted) stop: left running they replayed for nobody after the run (second
        # review of 2026-12-07); a figure read later is computed by its reader
        server.close()
        # closed, the ledger is whole in its main file and says so (out of WAL mode): left
        # to the garbage collector it stayed in WAL mode, which an audit reads as a copy
        # that may lack rows its log held (secagg.ledger.chain.wal_mode_without_log)
        if server.ledger is not None:
            server.ledger.close()
    for thread in threads:
        thread.join(timeout=5.0)
    if hub is not None:  # what the report needs of each branch's trainer, from its host
        trainers = hosted_trainers(hub, branches)
    # in protocol order: two branches vanishing in one phase are logged in whichever
    # order their threads ran, and the same seed must write the same summary
    phases = network.schedule.phases if network.schedule is not None else ()
    rank = {phase: index for index, phase in enumerate(phases)}
    events = sorted(
        network.dropouts, key=lambda e: (e.round, rank.get(e.phase, len(rank)), e.branch)
    )
    dropouts = [{"round": e.round, "branch": e.branch, "phase": e.phase} for e in events]
    _name_aborted_rounds_dropouts(rounds, dropouts)
    # run() clears stop_reason once every planned round is complete
    stopped = server.budget_reached or server.stop_reason
    # the distributed mechanism's honest shares per released round, as its accountant
    # charged them (each round at the largest per-round bound of the distinct counts):
    # what the report's epsilon follows from
    shares = getattr(getattr(server.mechanism, "accountant", None), "honest_shares", None)
    return FederationRun(rounds, server.model.copy(), dropouts, trainers, stopped, fed.dp, shares)


def _driver_calibrations(config: SimulationConfig) -> dict[tuple[Any, ...], Any]:
    """This process's DP-SGD noise calibrations, for the Ray hosts' trainers (see
    :attr:`~secagg.apps.simulation.hosted.HostedBranch.calibrations`); none for a run
    without DP-SGD for a target (nothing was calibrated, and Opacus stays unimported)."""
    if not (_runs_dpsgd(config) and config.epsilon is not None):
        return {}
    from secagg.dp.dpsgd import known_calibrations

    return known_calibrations()


def bytes_per_branch_taking_part(rounds: list[dict[str, Any]]) -> list[float]:
    """Per round, the bytes a branch that took part sent: branches the server did not
    sample (client sampling) send nothing, and averaging them in understated what a
    round costs a branch that is in it."""
    out = []
    for row in rounds:
        sent = [int(v) for v in row["bytes_sent"].values() if v > 0]
        out.append(sum(sent) / len(sent) if sent else 0.0)
    return out


def _name_aborted_rounds_dropouts(
    rounds: list[dict[str, Any]], dropouts: list[dict[str, Any]]
) -> None:
    """An aborted round contributed nothing, so "participants less contributors" named
    every branch as dropped; it names the branches that vanished in it instead (the
    complete list is known only once the federation has ended: a Ray host records a
    dropout after its round)."""
    vanished: dict[int, set[str]] = {}
    for event in dropouts:
        vanished.setdefault(int(event["round"]), set()).add(str(event["branch"]))
    for row in rounds:
        if row["status"] != "complete":
            row["dropped"] = sorted(vanished.get(int(row["round"]), set()))


#: in-process rounds of at least this many expected branches switch threads coarsely
MANY_THREADS = 100


#: the interpreter's thread switch interval then (Python's default: 0.005 s)
COARSE_SWITCH_SECONDS = 0.1


@contextmanager
def _coarse_thread_switching(config: SimulationConfig) -> Iterator[None]:
    """Within this block, with the in-process engine and a round of
    :data:`MANY_THREADS` branches or more, Python switches threads every
    :data:`COARSE_SWITCH_SECONDS` instead of every 5 ms; restored after.

    Why: each branch is a thread, and with 1 000 of them every release of the GIL (a
    numpy, torch or AES call) set off a storm of wake-ups: a round of the many world
    (examples/many_participants.toml, distributed DP) took 118-183 s, two thirds of
    its CPU time in the kernel; at 0.1 s it took 44 s, with the same results (the
    simulation's randomness comes from its seed, not from the thread schedule)."""
    if config.engine != "inprocess" or expected_cohort(config) < MANY_THREADS:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(COARSE_SWITCH_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
