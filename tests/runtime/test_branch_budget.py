"""A branch enforces its own privacy budget (``[branch] epsilon_budget`` and ``delta``).

Before, the number of rounds, and so the epsilon a branch's customers lose, was the
server's alone: each round was checked on its own, and a server could run round after
acceptable round until any epsilon was lost. Now the branch takes only rounds whose
noise share it adds itself, charges each under its own assumptions, refuses before
training the round that would cross its budget, and keeps the spend in its state file.

The oracle: the rounds that fit are counted with the DDG bound the server uses
(:func:`~secagg.dp.ddg_accounting.ddg_epsilon`, k identical rounds multiplied, not the
branch's running sum of curves), at the honest shares the test counts by hand from the
branch's assumptions. The branch's figure is also held between the exact (continuous)
Gaussian of the same noise, k rounds composed into one at z / sqrt(k) (Balle and Wang,
ICML 2018, Theorem 8, computed here), and that figure plus :data:`RDP_SLACK`: the RDP
conversion and the rounding's inflation cost about 8 % here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from _branch_certs import branch_certificates
from _endpoints import RecordingHub, SentMessages
from _gaussian import exact_gaussian_epsilon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import encode_spec
from secagg.dp.ddg_accounting import DDG_ORDERS, ddg_epsilon
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import ConfigurationError, PolicyRefused
from secagg.runtime.branch_state import BranchStateError
from secagg.runtime.client import BranchIdentity, BranchRefused, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import branch_identity
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, Relay, RoundStart, decode_message, encode_message

D = 12
NAMES = [f"branch-{i:02d}" for i in range(5)]
Z = 3.0
DELTA = 1e-5
FEDERATION = "budget-fed"
#: the branch's DDG figure may lie this much (relative) above the exact Gaussian's
RDP_SLACK = 0.15
#: honest shares in a certified round of 5 under the default assumptions, counted by
#: hand: the corrupt fraction 0.05 gives floor(0.25) = 0 colluders, min_colluders = 2
#: gives 2; the dropout fraction 0.1 gives floor(0.5) = 0 dropouts: 5 - 2 - 0 = 3; but
#: the branch unmasks with 4 of its 5 holders surviving (its minimum threshold, active
#: variant), and the server chooses who drops: 4 - 2 = 2 (review, 2026-12-05: was 3)
HONEST_OF_5 = 2


def _mechanism(z: float = Z, clients: int = 5) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        dimension=D, clip=1.0, noise_multiplier=z, expected_clients=clients
    )


def _record_level_mechanism() -> DistributedDiscreteGaussian:
    """Noise sized for one protected unit (clip 0.1) of an update of norm up to 1."""
    return DistributedDiscreteGaussian(
        dimension=D, clip=0.1, noise_multiplier=Z, expected_clients=5, vector_bound=1.0
    )


def _oracle_epsilon(mechanism: DistributedDiscreteGaussian, rounds: int, honest: int) -> float:
    """The server's DDG bound for ``rounds`` identical rounds (not the branch's code)."""
    return ddg_epsilon(
        l2_sensitivity=mechanism.sensitivity,
        l1_sensitivity=mechanism.l1_sensitivity,
        local_stddev=float(mechanism.local_sigma),
        noise_contributors=honest,
        dimension=mechanism.padded,
        sample_rate=1.0,
        rounds=rounds,
        delta=DELTA,
    )


def _oracle_rounds(mechanism: DistributedDiscreteGaussian, budget: float, honest: int) -> int:
    rounds = 0
    while _oracle_epsilon(mechanism, rounds + 1, honest) <= budget:
        rounds += 1
    return rounds


def _continuous_figure(mechanism: DistributedDiscreteGaussian, rounds: int, honest: int) -> float:
    """k rounds of the same noise as one continuous Gaussian: the clip over the summed
    honest noise's std (unscaled), times sqrt(k)."""
    std = math.sqrt(honest) * mechanism.local_sigma / mechanism.scale
    return exact_gaussian_epsilon(rounds * (mechanism.clip / std) ** 2, DELTA)


def _between_budget(mechanism: DistributedDiscreteGaussian, fit: int) -> float:
    """A budget halfway between the oracle's figures for ``fit`` and ``fit + 1`` rounds."""
    low = _oracle_epsilon(mechanism, fit, HONEST_OF_5)
    return (low + _oracle_epsilon(mechanism, fit + 1, HONEST_OF_5)) / 2


def _spec(
    mechanism: DistributedDiscreteGaussian | None,
    clients: int = 5,
    identities: tuple[bytes, ...] | None = None,
) -> bytes:
    """A masking round's spec; with ``identities`` (one certificate per party) the active
    variant's, whose parties the branch verifies against its CA."""
    share = None if mechanism is None else NoiseShareRound(mechanism, os.urandom(16))
    backend = MaskingBackend(graph="harary", value_bound=1.0, active=identities is not None)
    return encode_spec(backend.plan(clients, D, noise_share=share, identities=identities))


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The branches' CA and certificates: an active round lists them, and only such a
    round counts other parties' noise shares."""
    return branch_certificates(tmp_path_factory.mktemp("budget-certs"), NAMES)


def _identities(ders: dict[str, bytes]) -> tuple[bytes, ...]:
    return tuple(ders[name] for name in NAMES)


def _start(number: int, spec: bytes) -> bytes:
    model = np.zeros(D, np.float32)
    return encode_message(RoundStart(number, 0, spec, model, clip=1.0, federation=FEDERATION))


class _Branch:
    """A branch driven message by message (no server): what it trained and sent."""

    def __init__(
        self, policy: BranchPolicy, state: Path | None, identity: BranchIdentity | None = None
    ) -> None:
        self.trained: list[int] = []
        self.sent = SentMessages()
        self.client = FederationClient(
            NAMES[0],
            self._train,
            self.sent,
            policy=policy,
            state=state,  # type: ignore[arg-type]
            identity=identity,
        )
        self._round = 0

    def _train(self, model: np.ndarray) -> np.ndarray:
        self.trained.append(self._round)
        return np.full_like(model, 0.01)

    def start(self, number: int, spec: bytes) -> None:
        self._round = number
        self.client.handle(_start(number, spec))

    def leaves(self, number: int) -> list[str]:
        return [m.reason for m in self.sent.sent if isinstance(m, Leave) and m.round == number]

    def relays(self, number: int) -> int:
        return sum(1 for m in self.sent.sent if isinstance(m, Relay) and m.round == number)


def _policy(budget: float, **more: object) -> BranchPolicy:
    return BranchPolicy(epsilon_budget=budget, delta=DELTA, **more)  # type: ignore[arg-type]


# --- over the simulated network: the server runs more rounds than the budget allows ------


def _federation_config(rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": FEDERATION, "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "active": True},
            "deadlines": {"phase_seconds": 20.0},
            "dp": {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": Z, "delta": 1e-3},
        }
    )


def test_the_branch_takes_the_rounds_that_fit_then_refuses_and_sends_nothing_of_it(
    tmp_path: Path, certified: tuple[Path, dict[str, bytes]]
) -> None:
    ca, ders = certified
    mechanism = _mechanism()
    fit = 3
    budget = _between_budget(mechanism, fit)
    assert _oracle_rounds(mechanism, budget, HONEST_OF_5) == fit
    rounds = fit + 1  # the server runs one round more than the branch's budget allows
    hub = RecordingHub()
    state = tmp_path / "branch.state"
    outcome: dict[str, BaseException | None] = {}
    clients = []
    threads = []
    for i, name in enumerate(NAMES):
        policy = _policy(budget) if i == 0 else BranchPolicy()
        client = FederationClient(
            name,
            lambda m, i=i: np.full_like(m, 0.01 * (i + 1)),
            hub.connect(name),
            policy=policy,
            state=state if i == 0 else None,
            identity=branch_identity(ca, name),
        )

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=60, rounds=rounds)
                outcome[name] = None
            except BaseException as exc:  # the test inspects what stopped the branch
                outcome[name] = exc

        clients.append(client)
        threads.append(threading.Thread(target=run, daemon=True))
    for thread in threads:
        thread.start()
    store = ServerStore(tmp_path / "server.sqlite")
    server = FederationServer(_federation_config(rounds), hub, store, identity_of=ders.get)
    results = server.run(wait_for_clients=60, max_attempts=rounds)  # round 4: no retry
    for thread in threads:
        thread.join(timeout=120)
    assert all(not thread.is_alive() for thread in threads)
    # the rounds that fit: complete, with the budgeted branch's masked input in the sum
    assert [r.status for r in results[:fit]] == ["complete"] * fit, results
    assert all(NAMES[0] in r.contributed for r in results[:fit]), results
    # the next: refused before training, naming the key, with the three figures
    refusal = outcome[NAMES[0]]
    assert isinstance(refusal, BranchRefused), refusal
    assert refusal.setting == "branch.epsilon_budget" and refusal.round == fit + 1
    assert "spent" in str(refusal) and "this round" in str(refusal) and "budget" in str(refusal)
    assert all(outcome[name] is None for name in NAMES[1:]), outcome
    budgeted = clients[0]
    assert budgeted.stats.rounds_started == fit + 1 and budgeted.stats.rounds_refused == 1
    # nothing of its update left in the refused round: its leave only
    sent = [decode_message(p) for who, p in hub.received if who == NAMES[0]]
    refused_round = [m for m in sent if m.round == fit + 1]
    assert [type(m) for m in refused_round] == [Leave], refused_round
    assert refused_round[0].reason == "refused by its policy: branch.epsilon_budget"
    assert all(any(isinstance(m, Relay) and m.round == r for m in sent) for r in range(1, fit + 1))
    # its figure: the oracle's (rounded up), at least the exact Gaussian's, within slack
    spent = budgeted.stats.epsilon_spent
    oracle = _oracle_epsilon(mechanism, fit, HONEST_OF_5)
    assert spent is not None and oracle <= spent <= oracle * (1 + 1e-8) <= budget
    continuous = _continuous_figure(mechanism, fit, HONEST_OF_5)
    assert continuous <= spent <= continuous * (1 + RDP_SLACK)
    assert budgeted.stats.epsilon_budget == budget and budgeted.stats.privacy_delta == DELTA
    # kept in the state file: a restarted branch reads the same spend
    assert json.loads(state.read_text())["spent"]["rounds"] == fit
    again = FederationClient(
        NAMES[0], lambda m: m, SentMessages(), policy=_policy(budget), state=state
    )  # type: ignore[arg-type]
    assert again.stats.epsilon_spent == spent


# --- message by message -----------------------------------------------------------------


def test_a_restarted_branch_keeps_its_spend(
    tmp_path: Path, certified: tuple[Path, dict[str, bytes]]
) -> None:
    ca, ders = certified
    identity = branch_identity(ca, NAMES[0])
    mechanism = _mechanism()
    fit = 3
    budget = _between_budget(mechanism, fit)
    state = tmp_path / "branch.state"
    spec = _spec(mechanism, identities=_identities(ders))
    first = _Branch(_policy(budget), state, identity)
    first.start(1, spec)
    first.start(2, spec)
    assert first.trained == [1, 2]
    restarted = _Branch(_policy(budget), state, identity)  # a new process, the same file
    assert restarted.client.stats.epsilon_spent == first.client.stats.epsilon_spent
    restarted.start(3, spec)
    assert restarted.trained == [3]
    with pytest.raises(BranchRefused) as caught:
        restarted.start(4, spec)
    assert caught.value.setting == "branch.epsilon_budget"
    assert restarted.trained == [3] and restarted.relays(4) == 0
    assert restarted.leaves(4) == ["refused by its policy: branch.epsilon_budget"]
    # forgetful without a state file: the same branch would have taken round 4 afresh
    forgetful = _Branch(_policy(budget), None, identity)
    forgetful.start(4, spec)
    assert forgetful.trained == [4]


def test_without_a_state_file_the_spend_is_in_memory_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="secagg.client"):
        _Branch(_policy(1.0), None)
    assert any("in memory only" in r.getMessage() for r in caplog.records)


ORDERS = list(DDG_ORDERS)


@pytest.mark.parametrize(
    "spent",
    [
        None,  # version 3 records a spend
        "spent",
        {"rounds": 1, "orders": [2, 3], "rdp": [0.1, 0.2]},  # other orders than these
        {"rounds": 1, "rdp": [0.0] * len(ORDERS)},
        {"rounds": -1, "orders": ORDERS, "rdp": [0.0] * len(ORDERS)},
        {"rounds": True, "orders": ORDERS, "rdp": [0.0] * len(ORDERS)},
        {"rounds": 1, "orders": ORDERS, "rdp": [0.0] * 3},
        {"rounds": 1, "orders": ORDERS, "rdp": [-1.0] * len(ORDERS)},
        {"rounds": 1, "orders": ORDERS, "rdp": [math.nan] * len(ORDERS)},
        {"rounds": 1, "orders": ORDERS, "rdp": [math.inf] * len(ORDERS)},
        {"rounds": 1, "orders": ORDERS, "rdp": ["0.1"] * len(ORDERS)},
        {"rounds": 1, "orders": ORDERS, "rdp": [0.0] * len(ORDERS), "epsilon": 0},
    ],
)
def test_an_unreadable_spend_stops_the_branch_and_is_not_reset(
    tmp_path: Path, spent: object
) -> None:
    state = tmp_path / "branch.state"
    _Branch(_policy(5.0), state).start(1, _spec(_mechanism()))
    data = json.loads(state.read_text())
    assert data["version"] == 3 and data["spent"]["orders"] == ORDERS
    state.write_text(json.dumps({**data, "spent": spent}))
    before = state.read_bytes()
    with pytest.raises(BranchStateError, match="cannot read this branch's state"):
        _Branch(_policy(5.0), state)
    assert state.read_bytes() == before  # nothing reset


def test_a_torn_state_file_stops_the_branch(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    _Branch(_policy(5.0), state).start(1, _spec(_mechanism()))
    whole = state.read_bytes()
    for cut in (len(whole) // 3, len(whole) - 2):
        state.write_bytes(whole[:cut])
        with pytest.raises(BranchStateError, match="cannot read this branch's state"):
            _Branch(_policy(5.0), state)


def test_the_spend_survives_a_restart_without_a_budget(tmp_path: Path) -> None:
    """A branch restarted without its budget still carries the spend in every write: it is
    there when the budget is set again."""
    state = tmp_path / "branch.state"
    spec = _spec(_mechanism())
    budgeted = _Branch(_policy(50.0), state)
    budgeted.start(1, spec)
    spent = budgeted.client.stats.epsilon_spent
    plain = _Branch(BranchPolicy(), state)
    plain.start(2, spec)
    assert plain.client.stats.epsilon_spent is None
    assert _Branch(_policy(50.0), state).client.stats.epsilon_spent == spent


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        (_spec(None), {}),  # a masking round without any noise share
        # a record-level share (sized for one unit) to a branch protecting its whole update
        (_spec(_record_level_mechanism()), {}),
    ],
    ids=["no-share", "record-level-share-whole-update"],
)
def test_a_round_without_its_own_noise_share_is_refused_with_a_budget(
    spec: bytes, policy: dict[str, object]
) -> None:
    branch = _Branch(_policy(10.0, **policy), None)
    with pytest.raises(BranchRefused) as caught:
        branch.start(1, spec)
    assert caught.value.setting == "branch.epsilon_budget"
    assert branch.trained == [] and branch.relays(1) == 0
    assert branch.leaves(1) == ["refused by its policy: branch.epsilon_budget"]
    without = _Branch(BranchPolicy(), None)  # no budget: taken as before
    without.start(1, spec)
    assert without.trained == [1]


def test_a_record_level_branch_accounts_its_record_level_rounds(
    certified: tuple[Path, dict[str, bytes]],
) -> None:
    ca, ders = certified
    mechanism = _record_level_mechanism()
    branch = _Branch(_policy(50.0, record_sensitivity=0.1), None, branch_identity(ca, NAMES[0]))
    branch.start(1, _spec(mechanism, identities=_identities(ders)))
    assert branch.trained == [1]
    figure = _oracle_epsilon(mechanism, 1, HONEST_OF_5)
    spent = branch.client.stats.epsilon_spent
    assert spent is not None and figure <= spent <= figure * (1 + 1e-8)


def test_an_uncertified_round_counts_only_the_branch_s_own_share(
    certified: tuple[Path, dict[str, bytes]],
) -> None:
    """Review of the branch budget (2026-12-05): in a round whose parties are not
    certified the server may fill the cohort with parties of its own that add no noise (a
    Sybil round), so a corrupt fraction of the cohort says nothing about the honest
    shares. Counting 3 of 5 there let the branch take 3 rounds whose noise was one share
    each. Such a round now counts this branch's own share only, and says why; the same
    round with certified parties (the active variant) counts 3 of 5."""
    ca, ders = certified
    mechanism = _mechanism()
    budget = _between_budget(mechanism, 3)
    alone = _oracle_rounds(mechanism, budget, 1)  # the rounds one share pays for
    assert alone < 3
    uncertified = _Branch(_policy(budget), None)
    spec = _spec(mechanism)
    with pytest.raises(BranchRefused) as caught:
        for number in range(1, 5):
            uncertified.start(number, spec)
    assert caught.value.setting == "branch.epsilon_budget"
    assert "not certified" in str(caught.value) and "1 honest shares" in str(caught.value)
    assert uncertified.trained == list(range(1, alone + 1))
    assert uncertified.relays(alone + 1) == 0
    spent = uncertified.client.stats.epsilon_spent
    oracle = _oracle_epsilon(mechanism, alone, 1) if alone else 0.0
    assert spent is not None and oracle <= spent <= oracle * (1 + 1e-8)
    # the same rounds with certified parties: 3 of 5 honest, 3 rounds fit
    active = _Branch(_policy(budget), None, branch_identity(ca, NAMES[0]))
    active_spec = _spec(mechanism, identities=_identities(ders))
    for number in range(1, 4):
        active.start(number, active_spec)
    assert active.trained == [1, 2, 3]
    with pytest.raises(BranchRefused):
        active.start(4, active_spec)


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"epsilon_budget": 1.0}, "branch.epsilon_budget needs branch.delta"),
        ({"delta": 1e-5}, "branch.delta is the delta of branch.epsilon_budget"),
        ({"epsilon_budget": 1.0, "delta": 1.0}, "branch.delta must lie strictly between"),
        ({"epsilon_budget": math.inf, "delta": 1e-5}, "branch.epsilon_budget must be positive"),
        ({"epsilon_budget": 0.0, "delta": 1e-5}, "branch.epsilon_budget must be positive"),
        ({"epsilon_budget": 1.0, "delta": math.nan}, "branch.delta must lie strictly between"),
    ],
)
def test_the_budget_and_its_delta_go_together(section: dict[str, float], said: str) -> None:
    with pytest.raises(ConfigurationError, match="^" + said.replace(".", r"\.")):
        BranchPolicy.from_dict(section)


def test_off_by_default() -> None:
    assert BranchPolicy().epsilon_budget is None and BranchPolicy().delta is None
    client = FederationClient(NAMES[0], lambda m: m, SentMessages())  # type: ignore[arg-type]
    assert client.stats.epsilon_spent is None and client.stats.epsilon_budget is None


# --- the property: never past the budget, never down --------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    budget=st.floats(0.05, 20.0),
    multipliers=st.lists(st.floats(0.3, 8.0), min_size=1, max_size=8),
    cohort=st.integers(2, 40),
    corrupt=st.floats(0.0, 0.5),
    dropout=st.floats(0.0, 0.5),
    colluders=st.integers(0, 5),
    expected=st.one_of(st.none(), st.integers(2, 40)),
    delta=st.floats(1e-9, 1e-2),
    certified=st.booleans(),
)
def test_the_spend_never_passes_the_budget_and_never_falls(
    budget: float,
    multipliers: list[float],
    cohort: int,
    corrupt: float,
    dropout: float,
    colluders: int,
    expected: int | None,
    delta: float,
    certified: bool,
) -> None:
    from secagg.runtime.branch_budget import BranchBudget, MemorySpend  # new: failed before

    policy = BranchPolicy(
        epsilon_budget=budget,
        delta=delta,
        corrupt_fraction=corrupt,
        dropout_fraction=dropout,
        min_colluders=colluders,
        expected_clients=expected,
    )
    ledger = BranchBudget(policy, MemorySpend())
    # certified parties: any certificate bytes (the branch verifies them when it builds
    # the round's session, after the budget; the budget reads only that they are listed)
    backend = MaskingBackend(graph="harary", value_bound=1.0, active=certified)
    last = ledger.spent
    assert last == 0.0
    for number, z in enumerate(multipliers, start=1):
        clients = cohort if expected is None else min(cohort, expected)
        mechanism = DistributedDiscreteGaussian(
            dimension=D, clip=1.0, noise_multiplier=z, expected_clients=clients
        )
        identities = tuple(b"certificate %d" % i for i in range(clients)) if certified else None
        share = NoiseShareRound(mechanism, bytes(16))
        spec = backend.plan(clients, D, noise_share=share, identities=identities)
        try:
            charge = ledger.admit(number, spec)
        except PolicyRefused as exc:
            assert exc.setting == "branch.epsilon_budget"
            assert ledger.spent == last  # a refusal charges nothing
            continue
        ledger.record(charge)
        assert 1 <= charge.honest_shares <= clients
        assert certified or charge.honest_shares == 1  # a Sybil round: its own share only
        now = ledger.spent
        assert last <= now <= budget
        assert now == charge.spent_after
        # never below the exact Gaussian of the shares it counted (its own at least)
        std = math.sqrt(charge.honest_shares) * mechanism.local_sigma / mechanism.scale
        assert charge.alone >= exact_gaussian_epsilon((mechanism.clip / std) ** 2, delta) * (
            1 - 1e-9
        )
        last = now


def test_the_charge_is_on_disk_before_the_hook_trains(tmp_path: Path) -> None:
    """Recorded before anything of the round is trained or sent: a crash after the masked
    input left (which comes after training) cannot lose the charge."""
    state = tmp_path / "branch.state"
    seen: list[int] = []

    def train(model: np.ndarray) -> np.ndarray:
        seen.append(json.loads(state.read_text())["spent"]["rounds"])
        return np.full_like(model, 0.01)

    policy = _policy(50.0)
    client = FederationClient(NAMES[0], train, SentMessages(), policy=policy, state=state)  # type: ignore[arg-type]
    spec = _spec(_mechanism())
    for number in (1, 2, 3):
        client.handle(_start(number, spec))
    assert seen == [1, 2, 3]


def test_a_spend_another_process_wrote_stops_the_branch(tmp_path: Path) -> None:
    """Two processes over one state file would each overwrite the other's spend: the
    second write finds a spend it did not write and stops, nothing trained."""
    state = tmp_path / "branch.state"
    spec = _spec(_mechanism())
    branch = _Branch(_policy(50.0), state)
    branch.start(1, spec)
    data = json.loads(state.read_text())  # another process charges a round of its own
    data["spent"]["rdp"] = [2 * value for value in data["spent"]["rdp"]]
    state.write_text(json.dumps(data))
    with pytest.raises(BranchStateError, match="another privacy spend"):
        branch.start(2, spec)
    assert branch.trained == [1]
    assert json.loads(state.read_text()) == data  # not written over


def test_a_budgeted_round_is_one_atomic_write_of_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round's number and its charge go to disk in one write (a rename, a file fsync
    and a folder fsync), before the hook trains. Before, two: the mark, then the charge
    (two renames, four fsyncs a round, and a crash between them left a round taken but
    not charged)."""
    import secagg.runtime.branch_state as branch_state

    state = tmp_path / "branch.state"
    writes: list[dict[str, object]] = []
    fsyncs: list[int] = []
    write_json = branch_state.write_json_atomically
    fsync = os.fsync

    def counted_write(path: Path, data: dict[str, object], **options: object) -> None:
        writes.append(dict(data))
        write_json(path, data, **options)  # type: ignore[arg-type]

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        fsync(fd)

    seen: list[tuple[int, int, int]] = []

    def train(model: np.ndarray) -> np.ndarray:
        on_disk = json.loads(state.read_text())
        seen.append((on_disk["last_started"], on_disk["spent"]["rounds"], len(writes)))
        return np.full_like(model, 0.01)

    client = FederationClient(NAMES[0], train, SentMessages(), policy=_policy(50.0), state=state)  # type: ignore[arg-type]
    monkeypatch.setattr(branch_state, "write_json_atomically", counted_write)
    monkeypatch.setattr(os, "fsync", counted_fsync)
    spec = _spec(_mechanism())
    for number in (1, 2, 3):
        before_writes, before_fsyncs = len(writes), len(fsyncs)
        client.handle(_start(number, spec))
        assert len(writes) - before_writes == 1, writes[before_writes:]
        assert len(fsyncs) - before_fsyncs == 2  # the file's and its folder's
    # each round's one write carried both, and was on disk when its hook trained
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert [(w["last_started"], w["spent"]["rounds"]) for w in writes] == [(1, 1), (2, 2), (3, 3)]  # type: ignore[index]
    # a round refused by the budget still writes its number once, with no charge
    refused = _Branch(_policy(1e-6), tmp_path / "refused.state")
    monkeypatch.setattr(branch_state, "write_json_atomically", counted_write)
    before_writes = len(writes)
    with pytest.raises(PolicyRefused):
        refused.start(1, spec)
    assert len(writes) - before_writes == 1 and "spent" not in writes[-1]


def test_a_round_whose_one_write_fails_records_neither_its_number_nor_its_charge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that carries both fails: the branch stops (BranchStateError), nothing
    trained, and the file, its mark and its spend are as before the start."""
    import secagg.runtime.branch_state as branch_state

    state = tmp_path / "branch.state"
    branch = _Branch(_policy(50.0), state)
    spec = _spec(_mechanism())
    branch.start(1, spec)
    before, spent = state.read_bytes(), branch.client.stats.epsilon_spent

    def full_disk(path: Path, data: object, **options: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(branch_state, "write_json_atomically", full_disk)
    with pytest.raises(BranchStateError, match="No space left"):
        branch.start(2, spec)
    assert state.read_bytes() == before and branch.trained == [1]
    mark = branch.client._mark
    assert mark is not None and mark.last == 1 and mark.spent is not None
    assert mark.spent.rounds == 1 and branch.client.stats.epsilon_spent == spent
    assert branch.client._started == 1 and branch.client.stats.rounds_started == 1
