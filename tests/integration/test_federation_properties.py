"""Whole federations drawn at random, run through the runtime, checked against an oracle.

The protocol's state machines have their own property tests (tests/protocol/); this one
draws a *whole federation* (3 to 10 branches, SecAgg or SecAgg+ with the config's own
k and t, the masking, plain or CKKS backend, no DP or central or distributed DP, client
sampling on or off, 1 to 3 rounds, random updates of a small model) and a fault schedule
(a branch vanishes at a random phase of a random round and is back for the next one, or
sends one of its round's messages twice), runs it through the real server, branches and
simulated network (:class:`~secagg.runtime.simnet.SimulatedNetwork`), and holds every
round to a plain oracle:

* without noise, a complete round's aggregate is the sum of the clipped updates of
  exactly the branches the server lists as contributors: bit for bit for masking (the
  oracle encodes each update with the branch's own rounding stream and sums the ring
  words), within the float sum's rounding for plain and within the documented bound for
  CKKS; with noise, the released sum minus that oracle is finite and within ten standard
  deviations of the documented noise (loose on purpose: no flaky statistics);
* the contributors are the sampled branches that did not vanish before their input left,
  and the round completes or aborts exactly as the protocol's threshold rules say, given
  the threshold and neighbour graph the server announced (survivors that fall apart in
  the graph abort it: tests/protocol/test_survivor_connectivity.py);
* the ledger's rounds, statuses and epsilons equal an independent replay through the
  accountants' public API, and ``secagg audit verify`` passes.

Each branch's updates are fixed before the run (a trainer stub that returns the drawn
update whatever the model), and the branches' rounding streams are keyed by a replay
seed, so the oracle can encode exactly what each branch encoded.
"""

from __future__ import annotations

import math
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secagg.aggregation import decode_spec
from secagg.aggregation.keyholder_policy import MIN_CONTRIBUTIONS_FLOOR
from secagg.aggregation.policy import BranchPolicy
from secagg.apps.cli import main
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.accountants import DiscreteGaussianAccountant, PerClientAccountant
from secagg.dp.clipping import clip_l2
from secagg.dp.distributed import assumed_colluders, honest_noise_contributors
from secagg.encoding import FixedPoint
from secagg.errors import SecAggError
from secagg.ledger import load_public_key, verify_ledger
from secagg.protocol import decode as decode_protocol
from secagg.protocol.config import DEFAULT_DROPOUT_FRACTION
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import KeyDirectory, RoundSetup, ShareDelivery, UnmaskingRequest
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import (
    build_server,
    key_holder_idle,
    key_holder_service,
    make_key_holder_key,
)
from secagg.runtime.server import RoundResult
from secagg.runtime.simnet import MASKING_PHASES, SINGLE_PHASE, DropoutEvent, SimulatedNetwork
from secagg.runtime.wire import Relay, RoundEnd, RoundStart, decode_message

MASKING = ("secagg", "secagg+")
CLIP = 1.0
Z = 1.0
DELTA = 1e-3
#: generous bounds, never waited out by a passing run: a vanished branch's phase closes
#: as soon as the server sees it gone, and every branch exits at the federation's end
PHASE_SECONDS = 60.0
JOIN_SECONDS = 120.0


@dataclass(frozen=True)
class Plan:
    """One drawn federation: its shape, its updates and its faults."""

    branches: int
    backend: str  # "secagg" | "secagg+" | "plain" | "ckks"
    mechanism: str  # "off" | "central" | "distributed"
    rate: float  # Poisson sampling rate; 1.0: everyone, every round
    rounds: int
    dimension: int
    learning_rate: float
    dropout_fraction: float
    seed: int
    #: updates[round - 1][branch index]: what the branch's trainer returns in that round
    updates: tuple[tuple[tuple[float, ...], ...], ...]
    #: ((round, branch index), phase index): the branch sends nothing from that message on
    vanish: tuple[tuple[tuple[int, int], int], ...] = ()
    #: ((round, branch index), message index): the branch sends that message twice
    duplicate: tuple[tuple[tuple[int, int], int], ...] = ()
    #: ((round, branch index), message index): the branch sends that message of the
    #: round before again, with its first message of this round (a stale retransmission)
    replay: tuple[tuple[tuple[int, int], int], ...] = ()
    #: ((round, branch index), message index): the branch goes silent with that message
    #: in flight, and it arrives (the branch back) only once the server has moved on
    straggle: tuple[tuple[tuple[int, int], int], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f"b{i:02d}" for i in range(self.branches)]

    @property
    def phases(self) -> tuple[str, ...]:
        return MASKING_PHASES if self.backend in MASKING else SINGLE_PHASE

    def vanished(self, number: int) -> dict[str, int]:
        """Who fell silent in round ``number``, and from which message on: the branches
        that vanished, and the stragglers (their late message must count for nothing)."""
        silent = (*self.vanish, *self.straggle)
        return {self.names[b]: phase for (r, b), phase in silent if r == number}


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    backend = draw(st.sampled_from(["secagg", "secagg+", "secagg+", "plain", "ckks"]))
    mechanisms = ["off", "central"] + (["distributed"] if backend in MASKING else [])
    mechanism = draw(st.sampled_from(mechanisms))
    branches = draw(st.integers(3, 10))
    rounds = draw(st.integers(1, 3))
    dimension = draw(st.integers(1, 6))
    # mostly near the clip, sometimes far beyond it (clipping then does all the work)
    value = st.one_of(
        st.floats(-1.5, 1.5, allow_nan=False),
        st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
    )
    updates = tuple(
        tuple(
            tuple(draw(st.lists(value, min_size=dimension, max_size=dimension)))
            for _ in range(branches)
        )
        for _ in range(rounds)
    )
    phases = len(MASKING_PHASES) if backend in MASKING else len(SINGLE_PHASE)
    cells = [(r, b) for r in range(1, rounds + 1) for b in range(branches)]
    faulty = draw(st.lists(st.sampled_from(cells), unique=True, max_size=min(6, len(cells))))
    faults: dict[str, list[tuple[tuple[int, int], int]]] = {
        "vanish": [],
        "duplicate": [],
        "straggle": [],
        "replay": [],
    }
    for cell in faulty:
        index = draw(st.integers(0, phases - 1))
        faults[draw(st.sampled_from(sorted(faults)))].append((cell, index))
    return Plan(
        branches=branches,
        backend=backend,
        mechanism=mechanism,
        rate=draw(st.sampled_from([1.0, 1.0, 0.7])),
        rounds=rounds,
        dimension=dimension,
        learning_rate=draw(st.sampled_from([1.0, 1.0, 0.5, 3.0])),
        dropout_fraction=draw(st.sampled_from([DEFAULT_DROPOUT_FRACTION, 0.5])),
        seed=draw(st.integers(0, 2**16)),
        updates=updates,
        vanish=tuple(faults["vanish"]),
        duplicate=tuple(faults["duplicate"]),
        straggle=tuple(faults["straggle"]),
        replay=tuple(fault for fault in faults["replay"] if fault[0][0] > 1),
    )


# --- the federation ---------------------------------------------------------------------


class _Schedule:
    """The simulated network's dropout schedule, played from the plan instead of a hash."""

    def __init__(self, plan: Plan) -> None:
        self.phases = plan.phases
        self._planned = {(r, plan.names[b]): phase for (r, b), phase in plan.vanish}

    def phase_for(self, round_number: int, name: str) -> int | None:
        return self._planned.get((round_number, name))


class _Network(SimulatedNetwork):
    """The simulated network, with the plan's duplicated messages, and a record of what
    the server announced (each round's spec, parties and protocol setup, and whether any
    unmasking request left: from then on the server could see the round's sum)."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(_Schedule(plan))  # type: ignore[arg-type]
        self.duplicates = {(r, plan.names[b]): index for (r, b), index in plan.duplicate}
        self.stragglers = {(r, plan.names[b]): index for (r, b), index in plan.straggle}
        self.replays = {(r, plan.names[b]): index for (r, b), index in plan.replay}
        # held messages: (round, phase index, branch, deliver); let go once the server
        # has opened a later phase of that round (or ended it)
        self._held: list[tuple[int, int, str, Any]] = []
        self._held_lock = threading.Lock()
        self._key_holder = "keyholder" if plan.backend == "ckks" else None
        self.starts: dict[int, dict[str, RoundStart]] = {}
        self.setups: dict[int, RoundSetup] = {}
        self.unmasking: set[int] = set()
        #: round -> the masking phases the server opened (0: advertise_keys, ...)
        self.opened: dict[int, set[int]] = {}
        self._masking = plan.backend in MASKING

    def hold(self, number: int, phase: int, name: str, deliver: Any) -> None:
        """Hold a branch's message of ``phase`` back, the branch gone meanwhile."""
        with self._held_lock:
            self._held.append((number, phase, name, deliver))
        self._vanish(DropoutEvent(number, name, "straggle"))

    def _let_go(self, number: int, opened: float) -> None:
        """Deliver the held messages of round ``number`` whose phase has closed."""
        with self._held_lock:
            due = [h for h in self._held if h[0] == number and h[1] < opened]
            self._held = [h for h in self._held if h not in due]
        for _, _, name, deliver in due:
            self._reappear(name)
            deliver()

    def send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, RoundEnd):
            self._let_go(message.round, math.inf)
        elif isinstance(message, Relay) and name == self._key_holder:
            self._let_go(message.round, 1)  # the decryption request: contributions closed
        if isinstance(message, RoundStart):
            self.starts.setdefault(message.round, {})[name] = message
        elif isinstance(message, Relay) and self._masking:
            try:
                inner = decode_protocol(message.payload)
            except SecAggError:
                inner = None
            if isinstance(inner, RoundSetup):
                self.setups[message.round] = inner
            elif isinstance(inner, UnmaskingRequest):
                self.unmasking.add(message.round)
            opens = {RoundSetup: 0, KeyDirectory: 1, ShareDelivery: 2, UnmaskingRequest: 3}
            if type(inner) in opens:
                self.opened.setdefault(message.round, set()).add(opens[type(inner)])
                self._let_go(message.round, opens[type(inner)])
        super().send(name, payload)

    def connect(self, name: str) -> Any:
        return _Duplicating(self, name, super().connect(name))


class _Duplicating:
    """A branch's endpoint that sends the planned message of a round twice."""

    def __init__(self, network: _Network, name: str, inner: Any) -> None:
        self._network, self.name, self._inner = network, name, inner
        self.round = 0  # the round of the last start this branch read
        self._sent = 0
        self._history: dict[int, list[bytes]] = {}  # round -> what this branch sent in it

    def receive(self, timeout: float | None) -> bytes | None:
        payload = self._inner.receive(timeout)
        if payload is not None:
            try:
                message = decode_message(payload)
            except SecAggError:
                return payload
            if isinstance(message, RoundStart):
                self.round, self._sent = message.round, 0
        return payload

    def send(self, payload: bytes) -> None:
        index, self._sent = self._sent, self._sent + 1
        self._history.setdefault(self.round, []).append(payload)
        stale = self._network.replays.get((self.round, self.name))
        earlier = self._history.get(self.round - 1, [])
        if index == 0 and stale is not None and stale < len(earlier):
            self._inner.send(earlier[stale])
        if self._network.stragglers.get((self.round, self.name)) == index:
            self._network.hold(self.round, index, self.name, lambda: self._inner.send(payload))
            return
        self._inner.send(payload)
        if self._network.duplicates.get((self.round, self.name)) == index:
            self._inner.send(payload)


def _config(plan: Plan, directory: Path) -> FederationConfig:
    backend: dict[str, Any] = {"name": plan.backend, "value_bound": CLIP}
    if plan.backend in MASKING:
        backend["dropout_fraction"] = plan.dropout_fraction
    if plan.backend == "ckks":
        backend["key_holder"] = "keyholder"
    federation: dict[str, Any] = {
        "name": "props",
        "clients": plan.names,
        "dimension": plan.dimension,
        "rounds": plan.rounds,
        "seed": plan.seed,
        "server_learning_rate": plan.learning_rate,
        # without DP there is no noise to seed: the seed then draws SecAgg+'s graph too, so
        # an example replays the same neighbourhoods (with DP the graph is the CSPRNG's)
        "replay_noise": plan.mechanism == "off",
    }
    data: dict[str, Any] = {
        "federation": federation,
        "sampling": {"kind": "poisson", "rate": plan.rate},
        "backend": backend,
        "deadlines": {"phase_seconds": PHASE_SECONDS},
        "server": {"state": str(directory / "state.sqlite"), "quorum_wait_seconds": 60.0},
    }
    if plan.mechanism != "off":
        data["dp"] = {
            "mechanism": plan.mechanism,
            "clip": CLIP,
            "noise_multiplier": Z,
            "delta": DELTA,
        }
    return FederationConfig.from_dict(data)


@dataclass
class Run:
    config: FederationConfig
    results: list[RoundResult]
    models: list[np.ndarray]  # the model before round 1, then after each round
    network: _Network
    ledger: Path
    public_key: Path
    replay_seeds: dict[str, bytes]
    clients: dict[str, FederationClient]
    server_refused: int  # the messages the server refused


def _run(plan: Plan, directory: Path) -> Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small federation's privacy-cost warning
        config = _config(plan, directory)
    network = _Network(plan)
    pin = None
    threads = []
    if config.backend.key_holder is not None:
        key = directory / "holder.key"
        pin = make_key_holder_key(config, key)
        holder = key_holder_service(config, network.connect("keyholder"), {"key": str(key)})
        threads.append(
            threading.Thread(
                target=holder.run, kwargs={"idle_timeout": key_holder_idle(config)}, daemon=True
            )
        )
    policy = BranchPolicy(
        allow_plain=plan.backend == "plain",
        key_holder_fingerprint=pin,
        dropout_fraction=config.backend.dropout_fraction,
        corrupt_fraction=config.backend.corrupt_fraction,
    )
    replay_seeds = {
        name: derive(f"props/rounding/{name}/".encode(), plan.seed) for name in plan.names
    }
    clients: dict[str, FederationClient] = {}
    for index, name in enumerate(plan.names):
        endpoint = network.connect(name)

        def train(model: np.ndarray, index: int = index, endpoint: Any = endpoint) -> np.ndarray:
            # the drawn update of the round the branch is in, whatever the model (its own
            # count of rounds would not do: a branch left out of a round skips it)
            return np.asarray(plan.updates[endpoint.round - 1][index], dtype=np.float64)

        client = FederationClient(
            name, train, endpoint, policy=policy, replay_seed=replay_seeds[name]
        )
        clients[name] = client
        threads.append(
            threading.Thread(target=client.run, kwargs={"idle_timeout": JOIN_SECONDS}, daemon=True)
        )
    for thread in threads:
        thread.start()
    models: list[np.ndarray] = [np.zeros(plan.dimension)]

    def observe(result: RoundResult, model: np.ndarray) -> None:
        models.append(model)

    ledger = directory / "ledger.sqlite"
    public_key = directory / "ledger.pub.pem"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = build_server(
            config,
            network,
            directory / "state.sqlite",
            observer=observe,
            ledger_path=ledger,
            export_key_to=public_key,
        )
        results = server.run(
            wait_for_clients=JOIN_SECONDS,
            max_consecutive_aborts=plan.rounds,
            max_attempts=plan.rounds,
        )
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
        assert not thread.is_alive(), "a party did not leave at the federation's end"
    server.store.close()
    assert server.ledger is not None
    server.ledger.close()
    return Run(
        config,
        results,
        models,
        network,
        ledger,
        public_key,
        replay_seeds,
        clients,
        server.refused_messages,
    )


# --- the oracle ---------------------------------------------------------------------------


def _clipped(plan: Plan, number: int, name: str) -> np.ndarray:
    """What the branch's update is after the one clip (L2 under DP; else each coordinate
    cut to the value bound)."""
    update = np.asarray(plan.updates[number - 1][plan.names.index(name)], dtype=np.float64)
    if plan.mechanism != "off":
        update = clip_l2(update, CLIP).vector
    return np.clip(update, -CLIP, CLIP)


def _rounding(seed: bytes, name: str, number: int) -> KeyedStream:
    """The branch's rounding stream in round ``number``, keyed by its replay seed as
    :class:`FederationClient` keys it."""
    return KeyedStream(derive(f"secagg/v1/rounding-replay/{name}/{number}/".encode(), seed))


def _answered(plan: Plan, run: Run, result: RoundResult) -> list[set[str]]:
    """Who answered each phase of the round (as far as it got), by the protocol's rules.

    A branch stops answering when it falls silent (it vanished or straggles) and, in a
    masking round, when its own privacy rule makes it leave: fewer than t - 1 keyed
    neighbours at ``share_keys``, fewer than t - 1 neighbours' shares at
    ``masked_input``, fewer than t of its share holders among the survivors at
    ``unmasking`` (secagg/protocol/client.py), given the threshold and graph the server
    announced. ``answered[k]`` is who answered phase k; the round runs a phase only
    while t answered the one before."""
    participants = list(result.participants)
    silent = plan.vanished(result.number)
    if plan.backend not in MASKING:
        return [{n for n in participants if n not in silent}]
    setup = run.network.setups[result.number]
    t = setup.threshold
    graph = NeighbourGraph(setup.num_clients, setup.graph, setup.degree, setup.graph_seed)
    party = {name: i for i, name in enumerate(participants)}

    def neighbours(name: str, among: set[str]) -> int:
        return len({participants[i] for i in graph.neighbours(party[name])} & (among - {name}))

    def holders(name: str, among: set[str]) -> int:
        return len({participants[i] for i in graph.holders(party[name])} & among)

    def speaks(name: str, phase: int) -> bool:
        return silent.get(name, len(MASKING_PHASES)) > phase

    advertised = {n for n in participants if speaks(n, 0)}
    answered = [advertised]
    if len(advertised) < t:
        return answered
    shared = {n for n in advertised if speaks(n, 1) and neighbours(n, advertised) + 1 >= t}
    answered.append(shared)
    if len(shared) < t:
        return answered
    masked = {n for n in shared if speaks(n, 2) and neighbours(n, shared) + 1 >= t}
    answered.append(masked)
    if len(masked) < t:
        return answered
    if not graph.connects(party[n] for n in masked):
        return answered  # survivors in pieces of the graph: aborted before any share is asked
    if plan.mechanism == "distributed" and _honest_shares(plan, run, result, masked) == 0:
        return answered  # no honest noise share: aborted before any unmasking request
    answered.append({n for n in masked if speaks(n, 3) and holders(n, masked) >= t})
    return answered


def _honest_shares(plan: Plan, run: Run, result: RoundResult, inputs: set[str]) -> int:
    """The noise shares of ``inputs`` the accountant may count honest: the masked inputs
    less the colluders assumed for the round's cohort (drawn from the whole population
    when the cohort is sampled)."""
    population = len(run.config.clients) if plan.rate < 1 else None
    colluders = assumed_colluders(
        len(result.participants), run.config.backend.corrupt_fraction, population
    )
    return honest_noise_contributors(len(inputs), colluders)


def _expected_completion(plan: Plan, run: Run, result: RoundResult) -> bool:
    """Whether the protocol's rules let the round complete, given who fell silent when."""
    if len(result.participants) < 2:
        return False
    answered = _answered(plan, run, result)
    if plan.backend not in MASKING:
        # plain releases any non-empty sum (its updates travel in clear anyway); the CKKS
        # key holder decrypts a sum of at least MIN_CONTRIBUTIONS_FLOOR (2)
        least = 1 if plan.backend == "plain" else MIN_CONTRIBUTIONS_FLOOR
        return len(answered[0]) >= least
    t = run.network.setups[result.number].threshold
    if len(answered) < len(MASKING_PHASES) or len(answered[-1]) < t:
        return False
    setup = run.network.setups[result.number]
    graph = NeighbourGraph(setup.num_clients, setup.graph, setup.degree, setup.graph_seed)
    index = {name: i for i, name in enumerate(result.participants)}
    shared, masked, unmasked = ({index[n] for n in group} for group in answered[1:])
    # the server rebuilds every survivor's self-mask and every dropped party's mask key
    # that a survivor's input carries, each from t shares
    for owner in shared:
        needed = owner in masked or bool(graph.neighbours(owner) & masked)
        if needed and len(graph.holders(owner) & unmasked) < t:
            return False
    return True


def _expected_contributors(plan: Plan, run: Run, result: RoundResult) -> tuple[str, ...]:
    """The sampled branches whose input reached the server (masking: the masked input,
    the third message; plain and CKKS: the one contribution)."""
    answered = _answered(plan, run, result)
    sent = answered[2] if plan.backend in MASKING else answered[0]
    return tuple(n for n in result.participants if n in sent)


def _check_round(plan: Plan, run: Run, index: int) -> None:
    result = run.results[index]
    before, after = run.models[index], run.models[index + 1]
    complete = _expected_completion(plan, run, result)
    if plan.backend in MASKING and len(result.participants) >= 2:
        # the phases the model runs are the ones the server opened
        ran = len(_answered(plan, run, result))
        assert run.network.opened[result.number] == set(range(ran)), (result, ran)
    assert (result.status == "complete") == complete, (result, plan.vanished(result.number))
    if result.status != "complete":
        assert np.array_equal(before, after), "an aborted round moved the model"
        return
    contributors = _expected_contributors(plan, run, result)
    assert result.contributed == contributors, result
    clipped = [_clipped(plan, result.number, name) for name in contributors]
    oracle = np.sum(clipped, axis=0)
    start = run.network.starts[result.number][contributors[0]]
    spec = decode_spec(start.spec)
    lr = run.config.server_learning_rate
    if plan.mechanism == "off":
        if plan.backend in MASKING:
            # bit for bit: each branch's words as it encoded them, summed in the ring
            fixed = FixedPoint(spec.scale, spec.bits)
            words = [
                fixed.encode(x, _rounding(run.replay_seeds[name], name, result.number))
                for x, name in zip(clipped, contributors, strict=True)
            ]
            total = fixed.decode(np.sum(words, axis=0, dtype=words[0].dtype))
            expected = before + lr * (total / len(contributors))
            assert np.array_equal(after, expected), (after, expected)
            assert np.max(np.abs(total - oracle)) <= len(contributors) / spec.scale
        elif plan.backend == "plain":
            released = (after - before) / lr * len(contributors)
            assert np.allclose(released, oracle, rtol=0, atol=1e-12)
        else:  # ckks: the backend's documented bound on the sum
            from secagg.aggregation.keyholder_policy import noise_floor
            from secagg.he.params import TAIL_Z, choose_parameters

            n = len(run.config.clients)
            params = choose_parameters(n, CLIP, 1e-6 * CLIP)
            bound = params.error_bound(n) + TAIL_Z * noise_floor(params)
            released = (after - before) / lr * len(contributors)
            assert np.max(np.abs(released - oracle)) <= bound + 1e-12
        return
    # noised: the released sum is the mean times the public denominator q * N
    released = (after - before) / lr * run.config.expected_clients
    error = released - oracle
    assert np.all(np.isfinite(error))
    sigma = Z * CLIP
    if plan.mechanism == "distributed":
        ddg = spec.noise_share.mechanism
        shares = len(contributors) / run.config.expected_clients
        sigma *= math.sqrt(max(1.0, shares))
        slack = len(contributors) * math.sqrt(plan.dimension) * 4 / ddg.scale
    else:
        slack = len(contributors) / getattr(spec, "scale", math.inf)
    assert np.max(np.abs(error)) <= 10 * sigma + slack, (error, sigma)


def _check_participants(plan: Plan, run: Run) -> None:
    """Every round's cohort: the clients the seeded Poisson draw picks among those not
    benched (``server.bench_after_missed_rounds``, 2) for missing rounds in a row (all
    of them when that would leave fewer than 2), a branch that vanished being back for
    the next round.

    The draw replays the cohort's documented seeding (a keyed stream from
    ``federation.seed``, one uniform per client and round). A branch missed a round when
    it vanished in a phase the server opened (it then waited for it); the count is kept
    over the rounds that ran the protocol."""
    draws = KeyedStream(derive(b"secagg/v1/test-seed/sampling", plan.seed))
    misses: dict[str, int] = {}
    benched_until: dict[str, int] = {}
    for result in run.results:
        benched = {n for n, until in benched_until.items() if until >= result.number}
        rested = set(plan.names) - benched
        available = rested if len(rested) >= 2 else set(plan.names)
        drawn = draws.uniform(plan.branches)
        expected = [n for n, u in zip(plan.names, drawn, strict=True) if u < plan.rate]
        assert result.participants == tuple(n for n in expected if n in available), (
            result,
            benched_until,
        )
        if len(result.participants) < 2:
            continue
        # the last phase the round ran: whoever did not answer it (nor one before) missed
        last = _answered(plan, run, result)[-1]
        for name in result.participants:
            if name not in last:
                misses[name] = misses.get(name, 0) + 1
                if misses[name] >= 2:
                    benched_until[name] = result.number + misses[name] - 1
            else:
                misses.pop(name, None)


def _charged(plan: Plan, run: Run, result: RoundResult) -> bool:
    """Whether the round released its sum, or (distributed DP, where the unmasked sum is
    the release) let it be seen: an unmasking request left."""
    if result.status == "complete":
        return True
    return plan.mechanism == "distributed" and result.number in run.network.unmasking


def _replayed_epsilons(plan: Plan, run: Run) -> list[float | None]:
    """Each round's cumulative epsilon, replayed through the accountants' public API
    from what ran (who took part, who contributed, whether the sum was revealed)."""
    if plan.mechanism == "off":
        return [None] * len(run.results)
    claims: list[float | None] = []
    last: float | None = None
    if plan.mechanism == "central":
        central = PerClientAccountant(DELTA, "pld")
        for result in run.results:
            if result.status == "complete":
                central.step(Z, members=result.participants)
                last = central.epsilon()
            claims.append(last)
        return claims
    distributed: DiscreteGaussianAccountant | None = None
    for result in run.results:
        if _charged(plan, run, result):
            start = next(iter(run.network.starts[result.number].values()))
            ddg = decode_spec(start.spec).noise_share.mechanism
            if distributed is None:
                distributed = DiscreteGaussianAccountant(ddg, sample_rate=1.0, delta=DELTA)
            sent_input = _answered(plan, run, result)[2]  # the masked inputs summed
            honest = _honest_shares(plan, run, result, sent_input)
            assert honest > 0, "a sum with no honest noise share was revealed"
            distributed.step(honest)
            last = distributed.epsilon()
        claims.append(last)
    return claims


def _check_ledger(plan: Plan, run: Run) -> None:
    audit = verify_ledger(run.ledger, load_public_key(run.public_key))
    assert audit.ok, audit.first_failure
    entries = [row.entry for row in audit.chain.rows]
    assert [(e["round"], e["status"]) for e in entries] == [
        (r.number, r.status) for r in run.results
    ]
    for entry, result in zip(entries, run.results, strict=True):
        assert entry["contributed"] == len(result.contributed), entry
        # each phase's dropouts: who was expected in it and did not answer (a phase the
        # round never ran counts nobody)
        if len(result.participants) < 2:
            continue
        answered = _answered(plan, run, result)
        expected_in = [set(result.participants), *answered[:-1]]
        for phase, count in (entry["dropouts"] or {}).items():
            index = plan.phases.index(phase)
            lost = len(expected_in[index] - answered[index]) if index < len(answered) else 0
            assert count == lost, (entry["round"], entry["dropouts"], answered)
    replays = _replayed_epsilons(plan, run)
    for entry, replayed in zip(entries, replays, strict=True):
        claimed = entry["privacy"]["epsilon"]
        if replayed is None:
            assert claimed is None, entry
        elif math.isinf(replayed):  # JSON has no infinity: the ledger writes "inf"
            assert claimed == "inf", entry
        else:
            # rounded on the safe side only: never below the replay, and not far above
            assert replayed <= claimed <= replayed * (1 + 1e-9) + 1e-12, (
                entry["round"],
                claimed,
                replayed,
            )
    cli = CliRunner().invoke(
        main, ["audit", "verify", str(run.ledger), "--pubkey", str(run.public_key)]
    )
    # 0: verified; 3: verified, but a round was released without DP, or a sum (released,
    # or revealed to the server by an unmasking request) had no honest noise share in it
    # (epsilon infinite): not private
    not_private = any(
        _charged(plan, run, r) and (claim is None or math.isinf(claim))
        for r, claim in zip(run.results, replays, strict=True)
    )
    assert cli.exit_code == (3 if not_private else 0), cli.output


def _updates(branches: int, rounds: int, dimension: int) -> tuple:
    """Updates off the fixed-point grid, some beyond the clip (for the explicit examples)."""
    return tuple(
        tuple(
            tuple(
                ((-1) ** (b + i) * (0.37 + 0.29 * b + 0.11 * i + 0.05 * r))
                for i in range(dimension)
            )
            for b in range(branches)
        )
        for r in range(rounds)
    )


#: the minimised cases that failed while the oracle was being written (each was the
#: oracle's mistake, not the runtime's; kept because each pins a path few draws reach),
#: and hand-written ones that put every kind of fault into one federation
EXAMPLES = [
    # a distributed round whose sum would have no honest noise share (2 contributors
    # less 2 assumed colluders): until 2026-12-05 revealed, charged at epsilon infinite
    # and failed by audit verify; now aborted before any unmasking request, uncharged
    Plan(
        branches=3,
        backend="secagg",
        mechanism="distributed",
        rate=1.0,
        rounds=2,
        dimension=1,
        learning_rate=1.0,
        dropout_fraction=0.5,
        seed=0,
        updates=_updates(3, 2, 1),
        duplicate=(((1, 0), 0), ((1, 1), 0), ((1, 2), 0)),
        straggle=(((2, 0), 0), ((2, 1), 3)),
    ),
    # a distributed round of a sampled cohort with no honest share: until 2026-12-05
    # released with its infinite epsilon written "inf"; now aborted before the reveal
    Plan(
        branches=4,
        backend="secagg",
        mechanism="distributed",
        rate=0.7,
        rounds=1,
        dimension=1,
        learning_rate=1.0,
        dropout_fraction=0.5,
        seed=0,
        updates=_updates(4, 1, 1),
        vanish=(((1, 0), 0),),
    ),
    # found by the property (every branch refuses nothing an honest server sends): round
    # 2 samples b01 alone and aborts before any start went out, but the server still sent
    # b01 the round's end, which it refused ("the end of round 2, but this branch's round
    # is 1"); the server now ends only rounds it announced
    Plan(
        branches=3,
        backend="secagg",
        mechanism="off",
        rate=0.7,
        rounds=2,
        dimension=1,
        learning_rate=1.0,
        dropout_fraction=0.1,
        seed=8,
        updates=_updates(3, 2, 1),
    ),
    # found by the property (it failed 9 runs in 15 with a CSPRNG graph: the oracle had
    # only the silent branches drop out): on SecAgg+'s graph two survivors of the masked
    # input see fewer than t of their share holders among the survivors and, by their
    # own privacy rule, refuse to unmask; the round aborts and the ledger counts them
    # as unmasking dropouts (this seed's graph has them leave)
    Plan(
        branches=6,
        backend="secagg+",
        mechanism="off",
        rate=1.0,
        rounds=1,
        dimension=2,
        learning_rate=1.0,
        dropout_fraction=0.1,
        seed=50,
        updates=_updates(6, 1, 2),
        straggle=(((1, 4), 2), ((1, 3), 0), ((1, 1), 0)),
    ),
    # SecAgg+ on a sparse graph (10 branches, k = 4, t = 3): inputs lost before and after
    # the masked input, a late masked input, a duplicate and a stale retransmission
    Plan(
        branches=10,
        backend="secagg+",
        mechanism="off",
        rate=1.0,
        rounds=2,
        dimension=3,
        learning_rate=0.5,
        dropout_fraction=DEFAULT_DROPOUT_FRACTION,
        seed=11,
        updates=_updates(10, 2, 3),
        vanish=(((1, 0), 2), ((1, 1), 3), ((2, 5), 1)),
        duplicate=(((1, 3), 1),),
        straggle=(((1, 2), 2), ((2, 4), 3)),
        replay=(((2, 6), 2),),
    ),
    # plain: a stale contribution of round 1 arrives first in round 2 (refused), a late
    # one after the round ended
    Plan(
        branches=4,
        backend="plain",
        mechanism="off",
        rate=1.0,
        rounds=2,
        dimension=2,
        learning_rate=1.0,
        dropout_fraction=DEFAULT_DROPOUT_FRACTION,
        seed=3,
        updates=_updates(4, 2, 2),
        straggle=(((2, 1), 0),),
        replay=(((2, 0), 0), ((2, 2), 0)),
    ),
    # CKKS with the key holder's central noise: a straggler arrives during the decryption
    Plan(
        branches=5,
        backend="ckks",
        mechanism="central",
        rate=1.0,
        rounds=2,
        dimension=4,
        learning_rate=1.0,
        dropout_fraction=DEFAULT_DROPOUT_FRACTION,
        seed=5,
        updates=_updates(5, 2, 4),
        vanish=(((1, 4), 0),),
        straggle=(((2, 0), 0),),
        duplicate=(((2, 1), 0),),
    ),
]


def check(plan: Plan, run: Run) -> None:
    """Every property of one run of ``plan``."""
    assert [r.number for r in run.results] == list(range(1, plan.rounds + 1))
    _check_participants(plan, run)
    # an honest server sends no branch anything it must refuse, whatever the faults
    refused = {n: c.stats.refused_messages for n, c in run.clients.items()}
    assert not any(refused.values()), refused
    # and the server refuses at most the extra messages the faults sent (a duplicate, a
    # stale or a late one), none at all without them
    extra = len(plan.duplicate) + len(plan.replay) + len(plan.straggle)
    assert run.server_refused <= extra, (run.server_refused, extra)
    for index in range(len(run.results)):
        _check_round(plan, run, index)
    _check_ledger(plan, run)


def _with_examples(test: Any) -> Any:
    for plan in reversed(EXAMPLES):
        test = example(plan=plan)(test)
    return test


@settings(
    max_examples=50,  # 60 before; the protocol's random dropout schedules keep >= 50
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@_with_examples
@given(plan=plans())
def test_random_federations_release_exactly_the_survivors_sum(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as directory:
        check(plan, _run(plan, Path(directory)))
