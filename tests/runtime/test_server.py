"""secagg.runtime.server (with the client, key holder, store and config) over the in-process
transport: rounds, DP, dropouts, recovery, the ledger."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _idle_clock import IdleSkippingHub

from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.stream import KeyedStream
from secagg.dp.clipping import clip_l2
from secagg.dp.display import shown
from secagg.dp.noise import gaussian
from secagg.errors import ConfigurationError
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore, StoreCorrupted
from secagg.runtime.wire import Relay, encode_message
from secagg.transport.inprocess import InProcessHub

D = 40
NAMES = [f"branch-{i:02d}" for i in range(8)]
#: seconds a round waits for a client that never answers its start: well above what the
#: others need to answer it on a busy machine (a fraction of a second when idle); waited
#: on an IdleSkippingHub's clock, so they cost no real time once the others have answered
SILENT_WAIT = 5.0


def _config(
    backend: str = "secagg+",
    phase_seconds: float = 30.0,
    training_seconds: float | None = None,
    **federation: object,
) -> FederationConfig:
    """A federation of NAMES. The phase deadline is generous: a phase closes as soon as
    everyone answered, so only tests with a deliberately silent client wait it out (the
    first phase's, ``training_seconds``, where it never answers the round's start)."""
    data = {
        "federation": {
            "name": "test",
            "clients": NAMES,
            "dimension": D,
            "rounds": 3,
            "seed": 7,
            "replay_noise": True,  # the references below replay the server's noise
        }
        | federation,
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": backend, "value_bound": 1.0},
        "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
        "deadlines": {"phase_seconds": phase_seconds}
        | ({} if training_seconds is None else {"training_seconds": training_seconds}),
    }
    return FederationConfig.from_dict(data)


def _targets() -> dict[str, np.ndarray]:
    return {n: np.linspace(-1, 1, D) * 0.05 * (i + 1) for i, n in enumerate(NAMES)}


#: these tests' servers are the tests' own: the branches accept the plain baseline too
TEST_POLICY = BranchPolicy(allow_plain=True)


def _start_clients(
    hub: InProcessHub, names: list[str], rounds: int, policy: BranchPolicy = TEST_POLICY
) -> list[threading.Thread]:
    targets = _targets()
    threads = []
    for name in names:
        client = FederationClient(
            name, lambda m, t=targets[name]: t - m, hub.connect(name), policy=policy
        )
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": 10, "rounds": rounds}, daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def _reference(config: FederationConfig, rounds: int) -> np.ndarray:
    """Plain FedAvg with the same seeded noise: what the secure federation must compute."""
    assert config.dp is not None
    label = b"secagg/v1/test-seed/noise" + str(config.seed).encode()
    noise = KeyedStream(hashlib.sha256(label).digest()[:16])
    model = np.zeros(D)
    targets = _targets()
    for _ in range(rounds):
        sent = model.astype(np.float32).astype(np.float64)  # the model travels as float32
        total = sum(clip_l2(targets[n] - sent, config.dp.clip).vector for n in NAMES)
        total = total + gaussian(config.dp.noise_multiplier * config.dp.clip, D, noise)
        model = model + total / config.expected_clients
    return model


def test_three_secure_dp_rounds_match_plain_fedavg(tmp_path: Path) -> None:
    config = _config()
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=3)
    store = ServerStore(tmp_path / "state.sqlite")
    server = FederationServer(config, hub, store)
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete"] * 3
    assert all(r.contributed == tuple(NAMES) for r in results)
    # encoding error: under one unit of 1/scale per client and round, over the expected count
    scale = 2.0**27  # largest_safe_scale(8, 1.0, 32)
    tolerance = 3 * len(NAMES) / scale
    assert np.max(np.abs(server.model - _reference(config, 3))) < tolerance
    assert results[-1].epsilon is not None and results[-1].epsilon > results[0].epsilon  # type: ignore[operator]
    assert [r["status"] for r in store.rounds()] == ["complete"] * 3


def test_a_silent_client_is_a_dropout_and_the_round_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The silent client is waited out in the first phase only, on the hub's clock: its
    deadline passes once the seven others have answered and wait (it took 5 s of real
    time, and a deadline short enough to be cheap was a race for the others)."""
    config = _config(rounds=1, training_seconds=SILENT_WAIT)
    hub = IdleSkippingHub()
    _start_clients(hub, NAMES[:-1], rounds=1)
    hub.connect_silent(NAMES[-1])  # connected, never answers
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), clock=hub.clock)
    with caplog.at_level(logging.DEBUG, logger="secagg.server"):  # deadlines log at DEBUG
        (result,) = server.run(wait_for_clients=120)
    assert result.status == "complete"
    assert result.contributed == tuple(NAMES[:-1])
    assert "deadline" in caplog.text
    assert hub.skipped > 0  # the deadline passed on the clock, not in a real wait


def test_a_round_below_threshold_aborts_and_the_next_one_runs(tmp_path: Path) -> None:
    """Each round's first phase waits out its deadline for six silent clients on the
    hub's clock (two real seconds before), once the two others have answered: the
    deadline, generous, cannot close the phase before they do on a busy machine."""
    config = _config("secagg", rounds=2)  # complete graph: threshold 8
    hub = IdleSkippingHub()
    silent = [hub.connect_silent(n) for n in NAMES[2:]]  # six of eight never answer
    _start_clients(hub, NAMES[:2], rounds=2)
    store = ServerStore(tmp_path / "s.sqlite")
    server = FederationServer(config, hub, store, clock=hub.clock)
    results = server.run(wait_for_clients=120, max_consecutive_aborts=2)
    assert [r.status for r in results] == ["aborted", "aborted"]
    # the deadline closed the phase after the two answering clients, not before them
    below = "2 clients answered in advertise_keys, below the threshold of 8"
    assert all(below in str(r.reason) for r in results), [r.reason for r in results]
    assert np.array_equal(server.model, np.zeros(D))  # no update from an aborted round
    assert all(r["report"]["reason"] for r in store.rounds())
    del silent


def test_malformed_messages_are_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three junk messages are refused, one log line each, and the round completes
    without their sender. The rogue hangs up when the round starts (its end queued after
    its junk, so the server reads the junk first): the round goes on without it at once,
    by the early-close rule. It used to stay silent, and every run of this test waited
    out its 5 s training deadline, which is test_a_silent_client_is_a_dropout_...'s
    subject, not this one's."""
    config = _config(rounds=1)
    hub = InProcessHub()
    _start_clients(hub, NAMES[1:], rounds=1)
    rogue = hub.connect(NAMES[0])
    for junk in (b"", b"garbage", encode_message(Relay(1, b"\x00" * 10))):
        rogue.send(junk)

    def hang_up_at_the_round_start() -> None:
        assert rogue.receive(timeout=120) is not None  # the round's start
        rogue.close()

    threading.Thread(target=hang_up_at_the_round_start, daemon=True).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        (result,) = server.run(wait_for_clients=120)
    assert result.status == "complete" and NAMES[0] not in result.contributed
    assert caplog.text.count("refused a message") >= 3


def test_restart_aborts_the_running_round_and_continues_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    config = _config(rounds=2)
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=2)
    first = FederationServer(config, hub, ServerStore(path))
    (done,) = [first.run_round()]
    assert done.status == "complete"
    checkpoint = first.model.copy()
    first.store.begin_round(2, NAMES)  # the server dies here, mid-round
    first.store.close()
    restarted = FederationServer(config, hub, ServerStore(path))
    assert np.array_equal(restarted.model, checkpoint)
    assert restarted.next_round == 3
    statuses = [(r["number"], r["status"]) for r in restarted.store.rounds()]
    assert statuses == [(1, "complete"), (2, "aborted")]
    assert restarted.store.rounds()[1]["report"]["reason"] == "server restarted mid-round"
    assert restarted.mechanism.accountant.rounds == 1  # type: ignore[attr-defined]


def test_a_corrupted_checkpoint_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "s.sqlite"
    store = ServerStore(path)
    store.begin_round(1, NAMES)
    store.complete_round(1, {}, np.ones(D))
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE checkpoints SET model = ?", (np.zeros(D).tobytes(),))
    db.commit()
    db.close()
    with pytest.raises(StoreCorrupted):
        ServerStore(path).recover()


def test_config_from_toml_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "federation.toml"
    good.write_text(
        '[federation]\nname = "fraud"\nclients = ["a", "b", "c"]\ndimension = 10\nrounds = 2\n'
        '[sampling]\nkind = "poisson"\nrate = 0.5\n[dp]\nclip = 0.5\nnoise_multiplier = 1.0\n'
    )
    config = FederationConfig.load(good)
    assert config.sample_rate == pytest.approx(0.5)
    assert config.dp is not None and config.dp.clip == 0.5
    fixed = good.read_text().replace('kind = "poisson"\nrate = 0.5', 'kind = "fixed"\ncount = 2')
    good.write_text(fixed.replace("[dp]\nclip = 0.5\nnoise_multiplier = 1.0\n", ""))
    assert FederationConfig.load(good).sample_rate == pytest.approx(2 / 3)  # fine without DP
    for text, message in (
        ('[federation]\nname = "x"\nclients = ["a"]\ndimension = 1\n', "at least 2"),
        ('[federation]\nname = "x"\nclients = ["a", "b"]\ndimension = 1\nrouns = 3\n', "rouns"),
        ('[federation]\nname = "x"\nclients = ["a", "a"]\ndimension = 1\n', "repeats"),
        (
            '[federation]\nname = "x"\nclients = ["a", "b"]\ndimension = 1\n'
            '[backend]\nname = "x"\n',
            "backend.name",
        ),
        ("[federation\n", "not valid TOML"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigurationError, match=message):
            FederationConfig.load(bad)


@pytest.mark.integration  # torch training in every branch
def test_torch_models_plug_in_through_a_hook(tmp_path: Path) -> None:
    import torch

    from secagg.dp.dpsgd import flat_parameters
    from secagg.runtime.hooks import torch_hook

    torch.manual_seed(0)  # test data only
    template = torch.nn.Linear(4, 2)
    size = flat_parameters(template).size
    names = NAMES[:4]

    def make(i: int):  # each branch: a few SGD steps on its own regression data
        model = torch.nn.Linear(4, 2)
        x = torch.randn(64, 4)
        y = x @ torch.full((4, 2), 0.1 * (i + 1))

        def train(m: torch.nn.Module) -> None:
            optimizer = torch.optim.SGD(m.parameters(), lr=0.1)
            for _ in range(5):
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(m(x), y).backward()
                optimizer.step()

        return torch_hook(model, train)

    config = FederationConfig.from_dict(
        {
            "federation": {"name": "torch", "clients": names, "dimension": size, "rounds": 2},
            "backend": {"name": "secagg", "value_bound": 1.0},
            "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
            "deadlines": {"phase_seconds": 30.0},
        }
    )
    hub = InProcessHub()
    for i, name in enumerate(names):
        client = FederationClient(name, make(i), hub.connect(name))
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 10, "rounds": 2}, daemon=True
        ).start()
    start = flat_parameters(template).astype(np.float64)
    server = FederationServer(config, hub, ServerStore(tmp_path / "t.sqlite"), start)
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete", "complete"]
    assert not np.allclose(server.model, start)  # the branches' training moved the model
    with pytest.raises(ConfigurationError, match="parameters"):
        make(0)(np.zeros(size + 1))


@pytest.mark.integration  # DP-SGD (Opacus) in every branch
def test_dpsgd_branches_report_their_accounting_to_a_ledger_that_verifies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Record-level DP over the runtime: DPSGDHook branches, a signed ledger, an audit."""
    import torch
    from torch.utils.data import TensorDataset

    from secagg.dp.dpsgd import DPSGDTrainer, flat_parameters
    from secagg.ledger import Ledger, LedgerKey, verify_ledger
    from secagg.runtime.hooks import DPSGDHook

    names = NAMES[:3]
    hooks = []
    for i, _ in enumerate(names):
        generator = torch.Generator().manual_seed(i)  # test data only
        x = torch.randn(200, 4, generator=generator)
        y = (x[:, 0] > 0).long()
        model = torch.nn.Linear(4, 2)
        trainer = DPSGDTrainer(
            model,
            TensorDataset(x, y),
            batch_size=20,
            learning_rate=0.1,
            max_grad_norm=1.0,
            noise_multiplier=1.0,
            delta=1e-3,
        )
        hooks.append(DPSGDHook(trainer, epochs=1))
    size = flat_parameters(torch.nn.Linear(4, 2)).size
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "dpsgd", "clients": names, "dimension": size, "rounds": 2},
            "backend": {"name": "secagg", "value_bound": 5.0},
            "dp": {"unit": "record", "mechanism": "dpsgd", "clip": 5.0, "delta": 1e-3},
            "deadlines": {"phase_seconds": 30.0},
        }
    )
    hub = InProcessHub()
    for name, hook in zip(names, hooks, strict=True):
        client = FederationClient(name, hook, hub.connect(name), privacy_report=hook.privacy_report)
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 300, "rounds": 2}, daemon=True
        ).start()
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "d.sqlite"), ledger=ledger)
    with caplog.at_level(logging.INFO, logger="secagg.server"):
        results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete", "complete"]
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    worst = max(hook.trainer.epsilon() for hook in hooks)
    assert audit.epsilons[-1][1] == pytest.approx(worst)
    # the operator's per-round line shows that epsilon too (newcomer review 9: it said "-")
    (last,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round 2 ")]
    # rounded up at 4 significant digits: what was spent is never shown smaller
    assert f"epsilon {shown(worst, 4, significant=True)} (per record, worst branch)" in last, last
    reports = audit.chain.rows[-1].entry["dp"]["client_reports"]
    assert len(reports) == 3 and all(r["history"] for r in reports.values())
    assert not set(reports) & set(names)  # identities are salted hashes, not names


def test_the_plain_baseline_runs_over_the_same_runtime(tmp_path: Path) -> None:
    config = _config("plain", rounds=2)
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=2)
    server = FederationServer(config, hub, ServerStore(tmp_path / "p.sqlite"))
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete", "complete"]
    # no fixed-point rounding at all: equal to plain FedAvg with the same noise
    assert np.max(np.abs(server.model - _reference(config, 2))) < 1e-12


def test_ckks_federation_with_a_key_holder(tmp_path: Path) -> None:
    """Branches encrypt to the key holder's key, the server only adds, the key holder
    decrypts sums of at least two and adds the DP noise itself."""
    from secagg.runtime.launch import key_holder_service, make_key_holder_key

    data = {
        "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": 2, "seed": 7},
        "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
        "deadlines": {"phase_seconds": 30.0},
    }
    config = FederationConfig.from_dict(data)
    hub = InProcessHub()
    key = tmp_path / "compliance.key"
    pin = make_key_holder_key(config, key)  # before round 1: the branches pin it
    holder = key_holder_service(config, hub.connect("compliance"), {"key": str(key)})
    threading.Thread(target=holder.run, kwargs={"idle_timeout": 10}, daemon=True).start()
    _start_clients(hub, NAMES, rounds=2, policy=BranchPolicy(key_holder_fingerprint=pin))
    server = FederationServer(config, hub, ServerStore(tmp_path / "he.sqlite"))
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete", "complete"]
    assert all(r.contributed == tuple(NAMES) for r in results)
    assert holder.decryptions == 2
    # no [dp]: plain FedAvg within CKKS's documented error (2 rounds x 1e-6) plus the
    # key holder's own floor noise at that error bound (it never decrypts exactly)
    expected = np.zeros(D)
    for _ in range(2):
        total = sum(t - expected for t in _targets().values())
        expected = expected + total / config.expected_clients
    assert np.max(np.abs(server.model - expected)) < 2 * 1e-6
    with pytest.raises(ConfigurationError, match="key_holder"):
        FederationConfig.from_dict(data | {"backend": {"name": "ckks"}})


def test_rounds_missing_from_the_ledger_are_reconstructed_on_restart(tmp_path: Path) -> None:
    """A crash between the store's commit and the ledger's append loses no round."""
    from secagg.ledger import Ledger, LedgerKey, verify_ledger

    config = _config(rounds=1)
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=2)
    store = ServerStore(tmp_path / "s.sqlite")
    first = FederationServer(config, hub, store)  # round 1 committed, no ledger row
    # one round and no run(): a server that crashed announces no end to its branches
    assert first.run_round().status == "complete"
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    second = FederationServer(_config(rounds=2), hub, store, ledger=ledger)
    assert [r.status for r in second.run(wait_for_clients=120)] == ["complete"]
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    entries = [row.entry for row in audit.chain.rows]
    assert [e["round"] for e in entries] == [1, 2]
    assert entries[0].get("reconstructed") is True and "reconstructed" not in entries[1]
    assert entries[0]["model_sha256"] == store.checkpoint_digest(1)
    provenance = entries[0]["reconstruction"]  # why, from what, which fields it lacks
    assert provenance["source"] == "state"
    assert provenance["cause"].startswith("no cause recorded: the server stopped between")
    assert "model_sha256" in provenance["recovered"] and "dropouts" in provenance["not_recovered"]
    assert entries[0]["finished_at"] == store.rounds()[0]["finished_at"]
    assert entries[1]["privacy"]["epsilon"] == second.mechanism.accountant.epsilon()  # type: ignore[union-attr]


def test_server_momentum_is_fedavgm_over_the_noised_means(tmp_path: Path) -> None:
    config = _config("plain", rounds=3, server_momentum=0.5)
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=3)
    server = FederationServer(config, hub, ServerStore(tmp_path / "m.sqlite"))
    assert [r.status for r in server.run(wait_for_clients=120)] == ["complete"] * 3
    assert config.dp is not None
    label = b"secagg/v1/test-seed/noise" + str(config.seed).encode()
    noise = KeyedStream(hashlib.sha256(label).digest()[:16])
    model, velocity, targets = np.zeros(D), np.zeros(D), _targets()
    for _ in range(3):
        sent = model.astype(np.float32).astype(np.float64)  # the model travels as float32
        total = sum(clip_l2(targets[n] - sent, config.dp.clip).vector for n in NAMES)
        total = total + gaussian(config.dp.noise_multiplier * config.dp.clip, D, noise)
        velocity = 0.5 * velocity + total / config.expected_clients
        model = model + velocity
    assert np.max(np.abs(server.model - model)) < 1e-12
    with pytest.raises(ConfigurationError, match="server_momentum"):
        _config(server_momentum=1.0)


def test_the_cost_warning_of_client_level_dp_fires_when_a_federation_starts(
    tmp_path: Path,
) -> None:
    """The runtime's [dp] section is dp's one config: its plan is costed before data moves."""
    from secagg.dp.config import DPSettings, PrivacyCostWarning
    from secagg.runtime import config as runtime_config

    assert runtime_config.DPSettings is DPSettings
    config = _config(rounds=1)
    with pytest.warns(PrivacyCostWarning, match="8 expected clients"):
        FederationServer(config, InProcessHub(), ServerStore(tmp_path / "w.sqlite"))


def test_adaptive_clipping_in_a_federation_follows_the_norms_and_the_ledger_verifies(
    tmp_path: Path,
) -> None:
    """dp.adaptive_clip: clients clip to the clip the server sends and report whether
    they were under it; the clip grows toward the median norm; audit verify replays it."""
    from secagg.ledger import Ledger, LedgerKey, verify_ledger

    data = {
        "federation": {"name": "adaptive", "clients": NAMES, "dimension": D, "rounds": 4},
        "backend": {"name": "secagg+", "value_bound": 2.0},
        "dp": {
            "clip": 0.05,
            "noise_multiplier": 0.3,
            "delta": 1e-3,
            "adaptive_clip": True,
            "count_noise_stddev": 0.5,
            "clip_learning_rate": 1.0,
            "accountant": "rdp",
        },
        "deadlines": {"phase_seconds": 30.0},
    }
    config = FederationConfig.from_dict(data)
    hub = InProcessHub()
    _start_clients(hub, NAMES, rounds=4)  # update norms 0.16 .. 1.3: far above 0.05
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "ledger.sqlite", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "a.sqlite"), ledger=ledger)
    results = server.run(wait_for_clients=120)
    assert [r.status for r in results] == ["complete"] * 4
    clips = [row["report"]["clip_applied"] for row in server.store.rounds()]
    assert clips[0] == 0.05 and clips[-1] > 2 * clips[0]  # the clip grew
    audit = verify_ledger(tmp_path / "ledger.sqlite", key.public_key)
    assert audit.ok, audit.first_failure
    with pytest.raises(ConfigurationError, match="adaptive_clip"):
        FederationConfig.from_dict(
            data | {"backend": {"name": "ckks", "value_bound": 2.0, "key_holder": "kh"}}
        )


class _SteppedClock:
    """The server's monotonic clock, which a test steps on, counting the server's reads.

    Why the reads: a step proves something only once the server has looked at the clock
    after it, deciding on a deadline with no answer in between; a fixed sleep guessed it
    (and a test's meaning then depended on the machine's load)."""

    def __init__(self) -> None:
        self._ahead = 0.0
        self._reads = 0
        self._changed = threading.Condition()

    def __call__(self) -> float:
        with self._changed:
            self._reads += 1
            self._changed.notify_all()
            return time.monotonic() + self._ahead

    def step(self, seconds: float) -> None:
        with self._changed:
            self._ahead += seconds

    def await_reads(self, count: int, timeout: float = 120.0) -> bool:
        """Wait until the server has read the clock ``count`` more times."""
        with self._changed:
            target = self._reads + count
            return self._changed.wait_for(lambda: self._reads >= target, timeout)


class _ArrivalsHub(InProcessHub):
    """The in-process transport, saying when the server has taken a message from each of
    ``names``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self._awaited = set(names)
        self.all_arrived = threading.Event()

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None:
            self._awaited.discard(item[0])
            if not self._awaited:
                self.all_arrived.set()
        return item


def test_a_slow_trainer_gets_the_training_deadline_even_after_others_answered(
    tmp_path: Path,
) -> None:
    """The phase after the round start includes local training: its deadline holds for the
    whole phase, not only until the first fast branch answers.

    The slow trainer answers 1.5 phase deadlines after the server took the fast ones'
    answers, on the server's clock: it waits until the server has taken them and read its
    clock twice since (they are handled), steps the clock on by 1.5 phase deadlines, and
    answers once the server has read the clock twice more (a deadline check of the
    stepped time, with no answer of its own in between). Before 2026-12-06 it slept those
    7.5 s in real time (and before that 10 s from its own start, which on a busy machine
    whose fast branches started late was less than a phase deadline after their answers,
    and tested nothing). A server whose first phase closed at ``phase_seconds`` (not
    ``training_seconds``), or whose deadline restarted at a fast answer, drops it."""
    phase_seconds = 5.0
    data = {
        "federation": {"name": "slow", "clients": NAMES[:4], "dimension": D, "rounds": 1},
        "backend": {"name": "secagg", "value_bound": 1.0},
        # the later phases' deadline must hold all four on a busy machine (1 s was a
        # race there), and stay well below the slow trainer's time
        "deadlines": {"phase_seconds": phase_seconds, "training_seconds": 60.0},
    }
    config = FederationConfig.from_dict(data)
    hub = _ArrivalsHub(NAMES[:3])
    clock = _SteppedClock()
    targets = _targets()

    for name in NAMES[:3]:
        branch = FederationClient(
            name, lambda m, t=targets[name]: t - m, hub.connect(name), policy=TEST_POLICY
        )
        threading.Thread(
            target=branch.run, kwargs={"idle_timeout": 30, "rounds": 1}, daemon=True
        ).start()

    def slow(model: np.ndarray) -> np.ndarray:
        assert hub.all_arrived.wait(120), "the fast branches' answers never reached the server"
        assert clock.await_reads(2), "the server stopped reading its clock"
        clock.step(1.5 * phase_seconds)  # past the phase deadline of every fast answer
        assert clock.await_reads(2), "the server stopped reading its clock"
        return np.zeros_like(model)

    client = FederationClient(NAMES[3], slow, hub.connect(NAMES[3]))
    threading.Thread(
        target=client.run, kwargs={"idle_timeout": 30, "rounds": 1}, daemon=True
    ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "slow.sqlite"), clock=clock)
    (result,) = server.run(wait_for_clients=120, max_attempts=1)  # a broken one: no retry
    assert (result.status, result.contributed) == ("complete", tuple(NAMES[:4])), result
