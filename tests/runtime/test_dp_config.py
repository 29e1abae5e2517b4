"""The federation's DP configuration refuses what its accountant would misstate
(DP review: delta >= 1/N), and every ledger row says how the cohort was drawn, which
datasets are neighbours and whom the round was charged to."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from secagg.aggregation import ToParty
from secagg.errors import ConfigurationError
from secagg.ledger.chain import Ledger, LedgerKey
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i}" for i in range(4)]


def _data(sampling: dict[str, object], **dp: object) -> dict[str, object]:
    return {
        "federation": {"name": "acct", "clients": NAMES, "dimension": 4, "rounds": 1},
        "sampling": sampling,
        "backend": {"name": "secagg", "value_bound": 1.0},
        "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-3} | dp,
    }


def test_fixed_size_cohorts_with_client_level_dp_are_accepted_and_not_amplified() -> None:
    """Charged as Poisson at q = m/N they understated epsilon (3.0 vs 9.7 in the review),
    so they were refused. No cohort is charged as Poisson any more (each client pays for
    the rounds it was in), so a fixed-size cohort costs what any other does."""
    config = FederationConfig.from_dict(_data({"kind": "fixed", "count": 2}))
    assert config.sample_rate == 0.5 and config.mechanism().accounted_rate == 1.0  # type: ignore[attr-defined]
    FederationConfig.from_dict(_data({"kind": "poisson", "rate": 0.5}))
    without_dp = _data({"kind": "fixed", "count": 2})
    del without_dp["dp"]
    FederationConfig.from_dict(without_dp)


@pytest.mark.parametrize("delta", [0.25, 0.5])
def test_delta_not_below_one_over_the_population_is_refused(delta: float) -> None:
    with pytest.raises(ConfigurationError, match=r"dp\.delta"):
        FederationConfig.from_dict(_data({"kind": "poisson", "rate": 1.0}, delta=delta))


@pytest.mark.parametrize(
    ("mechanism", "adjacency"),
    [("central", "zero-out one client's update"), ("distributed", "zero-out one client's update")],
)
def test_ledger_rows_record_sampling_population_and_adjacency(
    tmp_path: Path, mechanism: str, adjacency: str
) -> None:
    config = FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": 1.0}, mechanism=mechanism)
        | {"backend": {"name": "secagg+", "value_bound": 1.0}}
    )
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 10, "rounds": 1}, daemon=True
        ).start()
    ledger = Ledger(tmp_path / "l.sqlite", LedgerKey.generate())
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger)
    (result,) = server.run(wait_for_clients=120)
    assert result.status == "complete", result.reason
    block = ledger.entries()[0]["dp"]
    assert block["sampling"] == {
        "kind": "poisson",
        "rate": 1.0,
        "population": len(NAMES),
        "seeded": False,  # no federation.seed: the cohort came from the OS CSPRNG
    }
    assert block["adjacency"] == adjacency


def _one_round(tmp_path: Path, rate: float, mechanism: str = "central") -> list[dict]:
    config = FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": rate}, mechanism=mechanism)
        | {"backend": {"name": "secagg+", "value_bound": 1.0}}
    )
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        threading.Thread(target=client.run, kwargs={"idle_timeout": 10}, daemon=True).start()
    ledger = Ledger(tmp_path / f"{rate}-{mechanism}.ledger", LedgerKey.generate())
    store = ServerStore(tmp_path / f"{rate}-{mechanism}.sqlite")
    FederationServer(config, hub, store, ledger=ledger).run(wait_for_clients=120, max_attempts=1)
    return ledger.entries()


def test_no_epsilon_is_amplified_so_every_row_lists_who_took_part(tmp_path: Path) -> None:
    """DP review: the ledger published linkable per-round participant hashes beside an
    epsilon amplified by secret sampling; the hashes were then withheld. No epsilon is
    amplified now (a round's members see each other), and the per-client charge is
    checkable only from the hashes: every row lists them, sampled or not."""
    for rate in (0.75, 1.0):
        rows = [row for row in _one_round(tmp_path, rate=rate) if row["status"] == "complete"]
        for row in rows:
            assert len(row["participants"]["identity_hashes"]) == row["participants"]["count"]
            assert row["dp"]["sample_rate"] == 1.0 and row["dp"]["composition"] == "per_client"


def test_distributed_dp_claims_no_amplification_from_a_cohort_the_server_draws() -> None:
    """The untrusted server draws the cohort (and sees it): the distributed epsilon is
    the un-amplified one whatever the sampling rate, and says so in its ledger block."""
    sampled = FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": 0.5}, mechanism="distributed")
    ).mechanism()
    assert sampled.accountant.sample_rate == 1.0  # type: ignore[attr-defined]
    assert sampled.ledger_block({"noise_contributors": 2})["sample_rate"] == 1.0


def test_a_sampled_round_is_charged_to_its_members_and_verify_agrees(tmp_path: Path) -> None:
    """DP audit (2026-12-03): a sampled round's members see it, so it is charged to them
    as the Gaussian it is, and the claim is the most charged client's; the auditor's
    replay from the rows' identity hashes agrees."""
    from secagg.dp.accountants import PerClientAccountant
    from secagg.ledger.verify import verify_ledger

    config = FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": 0.75}, accountant="rdp")
        | {"backend": {"name": "secagg+", "value_bound": 1.0}}
        | {"federation": {"name": "acct", "clients": NAMES, "dimension": 4, "rounds": 3}}
    )
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        threading.Thread(target=client.run, kwargs={"idle_timeout": 30}, daemon=True).start()
    key = LedgerKey.generate()
    ledger = Ledger(tmp_path / "sampled.ledger", key)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"), ledger=ledger)
    server.run(wait_for_clients=120, max_attempts=12)
    rows = [row for row in ledger.entries() if row["status"] == "complete"]
    assert rows, "no round completed"
    accountant = PerClientAccountant(1e-3, "rdp")
    for row in rows:
        accountant.step(1.0, row["participants"]["identity_hashes"])
        assert row["privacy"]["epsilon"] == pytest.approx(accountant.epsilon(), rel=1e-12)
    ledger.close()
    result = verify_ledger(tmp_path / "sampled.ledger", key.public_key)
    assert result.ok, result.first_failure
    assert result.notes == []


def _distributed_config(tmp_path: Path) -> FederationConfig:
    return FederationConfig.from_dict(
        _data({"kind": "poisson", "rate": 1.0}, mechanism="distributed")
        | {"backend": {"name": "secagg+", "value_bound": 1.0}}
        | {"federation": {"name": "acct", "clients": NAMES, "dimension": 4, "rounds": 3}}
    )


def test_a_server_that_dies_after_revealing_a_distributed_sum_is_charged_on_restart(
    tmp_path: Path,
) -> None:
    """DP and network audits (2026-12-03): killed once its unmasking requests were out
    (the noised sum unmasked in its memory), the server recorded the round "aborted:
    server restarted mid-round" on restart and never charged it. The reveal is now kept
    in the store before the requests leave; a restart charges it, and the ledger's row
    for it (aborted, sum_revealed) replays to that charge."""
    from secagg.ledger.verify import verify_ledger

    config = _distributed_config(tmp_path)
    key = LedgerKey.generate()
    store = ServerStore(tmp_path / "s.sqlite")
    ledger = Ledger(tmp_path / "d.ledger", key)
    first = FederationServer(config, InProcessHub(), store, ledger=ledger)
    store.begin_round(1, NAMES)  # what _round does, then the reveal is noted ...
    first._note_reveal(1, contributors=4, participants=4)
    charge = store.rounds()[0]["report"]["revealed"]
    assert charge["noise_contributors"] == 2  # 4 less the 2 assumed colluders
    store.close()  # ... and the process dies before the release
    ledger.close()

    store = ServerStore(tmp_path / "s.sqlite")
    ledger = Ledger(tmp_path / "d.ledger", key)
    again = FederationServer(config, InProcessHub(), store, ledger=ledger)
    (row,) = store.rounds()
    assert row["status"] == "aborted" and "after its sum was revealed" in row["report"]["reason"]
    fresh = config.mechanism()
    fresh.restore(charge)
    assert again.mechanism.epsilon() == pytest.approx(fresh.epsilon())  # type: ignore[attr-defined]
    (entry,) = ledger.entries()
    assert entry["status"] == "aborted" and entry["dp"]["sum_revealed"] is True
    assert entry["dp"]["noise_contributors"] == 2
    assert entry["privacy"]["epsilon"] == pytest.approx(charge["epsilon"])
    ledger.close()
    result = verify_ledger(tmp_path / "d.ledger", key.public_key)
    assert result.ok, result.first_failure
    assert result.epsilons[-1][1] == pytest.approx(charge["epsilon"])


def test_a_round_that_aborts_before_its_reveal_is_not_charged(tmp_path: Path) -> None:
    config = _distributed_config(tmp_path)
    store = ServerStore(tmp_path / "s.sqlite")
    FederationServer(config, InProcessHub(), store)
    store.begin_round(1, NAMES)
    store.close()
    store = ServerStore(tmp_path / "s.sqlite")
    again = FederationServer(config, InProcessHub(), store)
    assert store.rounds()[0]["report"] == {"reason": "server restarted mid-round"}
    assert again.mechanism.epsilon() == 0.0  # type: ignore[attr-defined]


def test_a_completed_distributed_round_is_charged_once(tmp_path: Path) -> None:
    """The reveal note is replaced by the completed round's report: no double charge."""
    config = _distributed_config(tmp_path)
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), hub.connect(name))
        threading.Thread(target=client.run, kwargs={"idle_timeout": 30}, daemon=True).start()
    store = ServerStore(tmp_path / "s.sqlite")
    server = FederationServer(config, hub, store)
    result = server.run_round()
    assert result.status == "complete", result.reason
    report = store.rounds()[0]["report"]
    assert "revealed" not in report and report["noise_contributors"] == 2
    store.close()
    again = FederationServer(config, InProcessHub(), ServerStore(tmp_path / "s.sqlite"))
    assert again.mechanism.epsilon() == pytest.approx(result.epsilon)  # type: ignore[attr-defined]


def test_a_round_aborted_after_its_reveal_is_charged_at_once(tmp_path: Path) -> None:
    """Review (2026-12-03): an abort in the same process (an unmasking that failed, a
    state write that failed after the sum was unmasked) replaced the reveal note, and
    the round was never charged, not even after a restart."""
    import time

    from secagg.ledger.verify import verify_ledger

    config = _distributed_config(tmp_path)
    key = LedgerKey.generate()
    store = ServerStore(tmp_path / "s.sqlite")
    ledger = Ledger(tmp_path / "a.ledger", key)
    server = FederationServer(config, InProcessHub(), store, ledger=ledger)
    store.begin_round(1, NAMES)
    server.next_round = 2
    server._note_reveal(1, contributors=4, participants=4)
    charge = store.rounds()[0]["report"]["revealed"]
    server._abort(1, NAMES, "too few unmasking shares", time.time(), {}, {})
    (row,) = store.rounds()
    assert row["status"] == "aborted" and row["report"]["revealed"] == charge
    assert server.mechanism.epsilon() == pytest.approx(charge["epsilon"])  # type: ignore[attr-defined]
    (entry,) = ledger.entries()
    assert entry["dp"]["sum_revealed"] is True
    assert entry["privacy"]["epsilon"] == pytest.approx(charge["epsilon"])
    store.close()
    ledger.close()
    restarted = FederationServer(
        config,
        InProcessHub(),
        ServerStore(tmp_path / "s.sqlite"),
        ledger=Ledger(tmp_path / "a.ledger", key),
    )
    assert restarted.mechanism.epsilon() == pytest.approx(charge["epsilon"])  # type: ignore[attr-defined]
    assert verify_ledger(tmp_path / "a.ledger", key.public_key).ok


class _SessionAtTheReveal:
    """A masking session whose unmasking requests are ready to leave, with ``inputs``
    masked inputs in the sum (what ``_hold_at_budget`` is shown)."""

    def __init__(self, inputs: int) -> None:
        self.inputs, self.done, self.aborted = inputs, False, None

    def contributors_before_reveal(self) -> int:
        return self.inputs

    def noise_at_reveal(self) -> float:
        return 0.0  # masking: the server sees the sum as the shares noised it

    def abort(self, reason: str) -> list[object]:
        self.done, self.aborted = True, reason
        return ["abort messages"]


@pytest.mark.parametrize("inputs", [1, 2])
def test_a_distributed_sum_with_no_honest_noise_share_is_never_revealed(
    tmp_path: Path, inputs: int
) -> None:
    """Review of the whole-federation property test (2026-12-05): with no
    ``dp.epsilon_budget``, a distributed round whose masked inputs did not exceed the
    assumed colluders (2 of a cohort of 4) sent its unmasking requests: the server saw a
    sum with no honest noise share, charged epsilon infinite and released it (audit
    verify: NOT PRIVATE). It is now aborted before any request leaves, uncharged."""
    config = _distributed_config(tmp_path)
    store = ServerStore(tmp_path / "s.sqlite")
    server = FederationServer(config, InProcessHub(), store)
    store.begin_round(1, NAMES)
    session = _SessionAtTheReveal(inputs)
    requests = ["unmasking request"]
    out = server._hold_at_budget(1, session, NAMES, requests)  # type: ignore[arg-type]
    assert out == ["abort messages"] and session.aborted is not None
    assert "no honest noise share" in session.aborted and "2 assumed colluder" in session.aborted
    assert "revealed" not in (store.rounds()[0]["report"] or {})
    assert server.mechanism.epsilon() == 0.0  # type: ignore[attr-defined]
    assert server.budget_reached is None  # one round aborted; the federation goes on


def test_a_distributed_sum_with_one_honest_share_is_revealed_and_charged(tmp_path: Path) -> None:
    config = _distributed_config(tmp_path)
    store = ServerStore(tmp_path / "s.sqlite")
    server = FederationServer(config, InProcessHub(), store)
    store.begin_round(1, NAMES)
    session = _SessionAtTheReveal(3)
    # an unmasking request to a branch, as the session makes it (the server reads each
    # request's party since ad75355: a sum only the key holder reveals waits for its send)
    requests = [ToParty(0, b"unmasking request")]
    assert server._hold_at_budget(1, session, NAMES, requests) == requests
    assert session.aborted is None
    assert store.rounds()[0]["report"]["revealed"]["noise_contributors"] == 1
