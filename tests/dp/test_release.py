"""The DP front door: what each mechanism releases, and what it charges."""

from __future__ import annotations

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.central import CentralGaussian
from secagg.dp.config import DPSettings
from secagg.dp.release import Mechanism, RecordReport, mechanism_for

SEED = b"s" * 16


def _mechanism(**dp: object):
    return mechanism_for(
        DPSettings(**dp),
        dimension=50,
        bits=32,
        sample_rate=0.5,
        expected_clients=4.0,
        corrupt_fraction=0.25,
        seed=SEED,
    )


def test_central_release_is_central_gaussian_and_the_accountant() -> None:
    mechanism = _mechanism(clip=2.0, noise_multiplier=0.8, delta=1e-5)
    total = np.linspace(-1, 1, 50)
    out = mechanism.release(total, contributors=3, participants=4, noise_added=0.0)
    expected = CentralGaussian(2.0, 0.8, 4.0).mean(total, KeyedStream(SEED))
    np.testing.assert_array_equal(out.mean, expected)
    accountant = PrivacyAccountant(1e-5, "pld")
    accountant.step(0.8, 1.0)  # no cohort named: charged to every client, unamplified
    assert out.epsilon == pytest.approx(accountant.epsilon())


def test_central_noise_the_backend_added_is_not_added_twice() -> None:
    mechanism = _mechanism(clip=2.0, noise_multiplier=0.8, delta=1e-5)
    total = np.ones(50)
    out = mechanism.release(total, contributors=3, participants=4, noise_added=1.6)
    np.testing.assert_array_equal(out.mean, total / 4.0)
    assert mechanism.backend_noise_stddev == pytest.approx(1.6)


@pytest.mark.parametrize("mechanism", ["central", "distributed"])
def test_zero_noise_with_client_level_dp_is_refused(mechanism: str) -> None:
    """A [dp] section promises an epsilon; z = 0 has none (DP review: it was accepted)."""
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="noise_multiplier = 0"):
        _mechanism(mechanism=mechanism, noise_multiplier=0.0)


def test_distributed_counts_only_honest_shares_and_restores_them() -> None:
    mechanism = _mechanism(mechanism="distributed", noise_multiplier=1.0, delta=1e-5)
    options = mechanism.round_options(4)
    assert options["noise_share"].mechanism.dimension == 50
    out = mechanism.release(np.ones(50), contributors=3, participants=4, noise_added=0.0)
    # 3 survivors less the 2 colluders the protocol tolerates at n = 4 (the same count)
    assert out.store["noise_contributors"] == 1
    assert out.store["parameters"]["noise_multiplier"] == 1.0  # what the round ran with
    again = _mechanism(mechanism="distributed", noise_multiplier=1.0, delta=1e-5)
    again.restore(out.store)
    assert again.epsilon() == pytest.approx(out.epsilon)


def test_record_level_claims_the_worst_branch() -> None:
    mechanism = _mechanism(unit="record", mechanism="dpsgd")
    from secagg.dp.accountants import opacus_epsilon

    # each branch's figure is what its history gives (the server replays it)
    short, long = ((1.0, 0.01, 10),), ((1.0, 0.01, 1000),)
    worst = opacus_epsilon("rdp", long, 1e-5)
    mechanism.take_report("a", RecordReport("rdp", 1e-5, opacus_epsilon("rdp", short, 1e-5), short))
    mechanism.take_report("b", RecordReport("rdp", 1e-5, worst, long))
    out = mechanism.release(np.ones(50) * 2, contributors=2, participants=2, noise_added=0.0)
    np.testing.assert_array_equal(out.mean, np.ones(50))  # FedAvg over contributors
    assert out.epsilon is None and mechanism.ledger_claim(None) == worst
    block = mechanism.ledger_block({})
    assert set(block["client_reports"]) == {"a", "b"}


def test_without_dp_only_the_clip_and_fedavg() -> None:
    mechanism = Mechanism(clip=1.0)
    assert np.linalg.norm(mechanism.prepare(np.full(4, 3.0))) == pytest.approx(1.0)
    out = mechanism.release(np.full(4, 6.0), contributors=3, participants=3, noise_added=0.0)
    np.testing.assert_array_equal(out.mean, np.full(4, 2.0))
    assert Mechanism().prepare(np.full(4, 3.0))[0] == 3.0


def test_adaptive_clipping_moves_the_clip_noises_the_count_and_charges_both() -> None:
    from secagg.dp.adaptive import AdaptiveClipping

    mechanism = _mechanism(
        clip=0.1, noise_multiplier=1.0, delta=1e-5, adaptive_clip=True, count_noise_stddev=1.0
    )
    assert mechanism.report_unclipped and mechanism.round_dimension(50) == 51
    assert mechanism.backend_noise_stddev == 0.0  # the server noises update and count apart
    # every client is far above the clip: the count says "all clipped", the clip grows
    client = Mechanism(0.1, report_unclipped=True)
    rows = [client.prepare(np.full(50, 1.0)) for _ in range(4)]
    assert rows[0].shape == (51,) and rows[0][-1] == -0.5
    assert np.linalg.norm(rows[0][:-1]) == pytest.approx(0.1)
    out = mechanism.release(np.sum(rows, axis=0), contributors=4, participants=4, noise_added=0)
    assert out.mean.shape == (50,)
    assert out.store["clip_applied"] == 0.1 and out.store["next_clip"] > 0.1
    assert mechanism.clip == out.store["next_clip"]
    # the two releases compose to exactly the budgeted z = 1 (Andrew et al., Theorem 1)
    reference = PrivacyAccountant(1e-5, "pld")
    reference.step(1.0, 1.0)  # unamplified: no cohort named, every client charged
    assert out.epsilon == pytest.approx(reference.epsilon(), rel=1e-6)
    block = mechanism.ledger_block(out.store)
    assert block["clip"] == 0.1 and block["noise_multiplier"] == 1.0
    expected = AdaptiveClipping(1.0, 4.0, initial_clip=0.1, count_stddev=1.0)
    assert block["adaptive_clipping"]["update_noise_multiplier"] == pytest.approx(
        expected.update_noise_multiplier
    )
    # after a restart the clip continues from the store, not from the initial clip
    again = _mechanism(
        clip=0.1, noise_multiplier=1.0, delta=1e-5, adaptive_clip=True, count_noise_stddev=1.0
    )
    again.restore(out.store)
    assert again.clip == out.store["next_clip"]


def test_adaptive_clipping_refuses_what_it_cannot_account() -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="adaptive_clip"):
        DPSettings(mechanism="distributed", adaptive_clip=True)
    with pytest.raises(ConfigurationError, match="adaptive_clip"):
        DPSettings(unit="record", mechanism="dpsgd", adaptive_clip=True)
    with pytest.raises(ConfigurationError, match="noise_multiplier"):
        DPSettings(noise_multiplier=0.0, adaptive_clip=True)


@pytest.mark.parametrize(
    ("units", "says"),
    [
        (["customer", "customer"], "one customer (all their rows)"),
        (["transaction"], "group-privacy k"),
        (["customer", "transaction"], "different units: customer, transaction"),
    ],
)
def test_record_level_ledger_names_the_unit_the_branches_protect(
    units: list[str], says: str
) -> None:
    """The ledger said 'one record' whatever a record was; a transaction-level branch
    protects a customer with k rows only at group privacy k, and now the row says so."""
    from secagg.dp.release import RecordRelease

    release = RecordRelease(clip=1.0, delta=1e-5, sample_rate=1.0)
    for i, unit in enumerate(units):
        report = RecordReport("prv", 1e-5, 1.0, ((1.0, 0.1, 10),), 1.0, unit)
        release.take_report(f"branch-{i}", report)
    block = release.ledger_block({})
    assert says in block["adjacency"]
    assert [r["unit"] for r in block["client_reports"].values()] == units
    assert RecordReport.from_dict(block["client_reports"]["branch-0"]).unit == units[0]


# --- record-level distributed DP: the noise added once, inside the secure sum --------------


def _record_distributed(**dp: object):
    settings = dict(
        unit="record",
        mechanism="distributed",
        clip=5.0,
        record_clip=0.01,
        noise_multiplier=3.0,
        delta=1e-5,
    )
    return mechanism_for(
        DPSettings(**(settings | dp)),
        dimension=50,
        bits=32,
        sample_rate=1.0,
        expected_clients=8.0,
        corrupt_fraction=0.25,
        seed=SEED,
    )


def test_record_distributed_releases_the_sum_and_accounts_per_customer() -> None:
    from secagg.dp.distributed import DistributedDiscreteGaussian

    mechanism = _record_distributed()
    share = mechanism.round_options(8)["noise_share"].mechanism
    assert share.clip == 0.01 and share.vector_bound == 5.0 and share.record_level
    total = np.linspace(-1, 1, 50)
    out = mechanism.release(total, contributors=7, participants=8, noise_added=0.0)
    np.testing.assert_array_equal(out.mean, total)  # the vectors already add up to the mean
    honest = 7 - 2  # two colluders assumed at 8 clients
    alone = DistributedDiscreteGaussian(
        dimension=50, clip=0.01, noise_multiplier=3.0, expected_clients=8, vector_bound=5.0
    )
    expected = alone.epsilon(noise_contributors=honest, sample_rate=1.0, rounds=1, delta=1e-5)
    assert out.epsilon == pytest.approx(expected)
    block = mechanism.ledger_block(out.store)
    assert block["unit"] == "record" and block["mechanism"] == "distributed"
    assert block["record_clip"] == 0.01 and block["noise_std"] == pytest.approx(0.03)
    assert block["sample_rate"] == 1.0 and block["noise_contributors"] == honest
    assert mechanism.ledger_claim(out.epsilon) == out.epsilon  # the server's, not a branch's
    # record_clip is the clip over the units' count, so the count is public: zero-out
    assert block["adjacency"].startswith("zero-out one protected unit")
    assert block["adjacency"].endswith("the number of units is public")


def test_record_distributed_ledger_rows_replay_to_the_claimed_epsilon() -> None:
    from secagg.ledger.verify import EpsilonReplay

    mechanism = _record_distributed()
    replay = EpsilonReplay()
    for contributors in (8, 6, 7):
        out = mechanism.release(
            np.zeros(50), contributors=contributors, participants=8, noise_added=0.0
        )
        entry = {"status": "complete", "dp": mechanism.ledger_block(out.store)}
        assert replay.feed(entry, dp_expected=True) == pytest.approx(out.epsilon)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (dict(unit="record", mechanism="distributed", clip=5.0), "record_clip"),
        (dict(unit="record", mechanism="dpsgd", clip=5.0, record_clip=0.1), "record_clip"),
        (dict(unit="client", mechanism="distributed", record_clip=0.1), "record_clip"),
        (dict(unit="record", mechanism="distributed", clip=5.0, record_clip=6.0), "below"),
        (
            dict(
                unit="record",
                mechanism="distributed",
                clip=5.0,
                record_clip=0.1,
                noise_multiplier=0.0,
            ),
            "noise_multiplier",
        ),
    ],
)
def test_record_distributed_settings_refuse_what_they_cannot_account(
    settings: dict[str, object], match: str
) -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=match):
        DPSettings(**settings)  # type: ignore[arg-type]


def test_record_distributed_may_carry_an_epsilon_budget_dpsgd_may_not() -> None:
    from secagg.errors import ConfigurationError

    DPSettings(
        unit="record", mechanism="distributed", clip=5.0, record_clip=0.1, epsilon_budget=3.0
    )
    with pytest.raises(ConfigurationError, match="epsilon_budget"):
        DPSettings(unit="record", mechanism="dpsgd", clip=5.0, epsilon_budget=3.0)


def test_a_sampled_distributed_round_counts_the_colluders_the_server_could_pick() -> None:
    """The server draws a sampled cohort and sees it: with 12 clients, 3 of them colluders
    (a corrupt fraction of 0.25), a round of 6 holds at most 3 honest shares, not the 4
    that the cohort's own fraction gave (DP audit, 2026-12-03)."""
    settings = DPSettings(mechanism="distributed", noise_multiplier=1.0, delta=1e-5)
    common = dict(dimension=50, bits=32, expected_clients=6.0, corrupt_fraction=0.25, seed=SEED)
    sampled = mechanism_for(settings, sample_rate=0.5, population=12, **common)
    out = sampled.release(np.ones(50), contributors=6, participants=6, noise_added=0.0)
    assert out.store["noise_contributors"] == 3
    everyone = mechanism_for(settings, sample_rate=1.0, population=6, **common)
    out = everyone.release(np.ones(50), contributors=6, participants=6, noise_added=0.0)
    assert out.store["noise_contributors"] == 4  # the whole population: its own count


def test_the_federation_config_gives_its_mechanism_the_population() -> None:
    from secagg.runtime.config import FederationConfig

    clients = [f"branch-{i:02d}" for i in range(12)]
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "f2", "clients": clients, "dimension": 8},
            "sampling": {"kind": "poisson", "rate": 0.5},
            "backend": {"name": "secagg+", "value_bound": 1.0, "corrupt_fraction": 0.25},
            "dp": {"unit": "client", "mechanism": "distributed", "noise_multiplier": 1.0,
                   "clip": 1.0, "delta": 1e-5},
        }
    )  # fmt: skip
    mechanism = config.mechanism(seed=SEED)
    out = mechanism.release(np.ones(8), contributors=6, participants=6, noise_added=0.0)
    assert out.store["noise_contributors"] == 3


# --- the central mechanism charges each client for the rounds it was in (DP audit) ------


def _sampled_central(population: int = 10, q: float = 0.5, accountant: str = "rdp"):
    return mechanism_for(
        DPSettings(noise_multiplier=1.2, delta=1e-5, accountant=accountant),
        dimension=8,
        bits=32,
        sample_rate=q,
        expected_clients=q * population,
        corrupt_fraction=0.0,
        seed=SEED,
        population=population,
    )


def _round(mechanism, cohort: list[str]):
    mechanism.begin_round(cohort)
    return mechanism.release(
        np.zeros(8), contributors=len(cohort), participants=len(cohort), noise_added=0
    )


def _gaussian(rounds: int, accountant: str = "rdp", z: float = 1.2) -> float:
    reference = PrivacyAccountant(1e-5, accountant)
    for _ in range(rounds):
        reference.step(z, 1.0)
    return reference.epsilon()


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_a_sampled_round_is_not_amplified_a_cohort_member_sees_it(accountant: str) -> None:
    """A round's members see one another (the secure sum's key agreement) and its size
    is published, so a sampled round is no secret to them: before, a round at q = 0.5
    was charged as the Poisson-subsampled Gaussian, less than what its members can
    tell. Now it is the Gaussian, charged to the round's members only."""
    mechanism = _sampled_central(accountant=accountant)
    out = _round(mechanism, ["a", "b", "c"])
    assert out.epsilon == pytest.approx(_gaussian(1, accountant), rel=1e-9)
    amplified = PrivacyAccountant(1e-5, accountant)
    amplified.step(1.2, 0.5)
    assert out.epsilon > amplified.epsilon() * 1.2
    assert out.store["charged"]["members"] == ["a", "b", "c"]
    block = mechanism.ledger_block(out.store)
    assert block["composition"] == "per_client" and block["sample_rate"] == 1.0
    assert block["adjacency"] == "zero-out one client's update"


def test_the_claim_is_the_most_charged_clients_and_others_are_not_charged() -> None:
    mechanism = _sampled_central()
    for cohort in (["a", "b"], ["a", "c"], ["b", "c", "d"], ["a", "d"]):
        out = _round(mechanism, cohort)
    assert out.epsilon == pytest.approx(_gaussian(3))  # "a" was in 3 of the 4 rounds
    accountant = mechanism.accountant
    assert accountant.client_epsilon("d") == pytest.approx(_gaussian(2))
    assert accountant.client_epsilon("never sampled") == 0.0


def test_a_restart_replays_each_rounds_members() -> None:
    mechanism, stores = _sampled_central(), []
    for cohort in (["a", "b"], ["a", "c"], ["b", "c"]):
        stores.append(_round(mechanism, cohort).store)
    again = _sampled_central()
    for store in stores:
        again.restore(store)
    assert again.accountant.epsilon() == mechanism.accountant.epsilon()
    assert again.accountant.client_epsilon("c") == mechanism.accountant.client_epsilon("c")


def test_a_round_stored_amplified_is_charged_to_everyone_unamplified_on_restart() -> None:
    """A round stored by the older code (charged at q, no members) is replayed as what
    holds: the Gaussian, charged to every client."""
    mechanism = _sampled_central()
    mechanism.restore({"charged": {"noise_multiplier": 1.2, "sample_rate": 0.5}})
    assert mechanism.accountant.client_epsilon("anyone") == pytest.approx(_gaussian(1))
    out = _round(mechanism, ["a", "b"])
    assert out.epsilon == pytest.approx(_gaussian(2))


def test_within_budget_names_who_can_take_one_more_round() -> None:
    mechanism = _sampled_central()
    for cohort in (["a", "b"], ["a", "c"], ["a", "b"]):
        _round(mechanism, cohort)
    budget = _gaussian(3) * 1.001  # "a" (3 rounds) would reach 4, "b" 3, the rest 2 or 1
    assert mechanism.within_budget(["a", "b", "c", "d"], budget) == ["b", "c", "d"]
    assert mechanism.within_budget(["a", "b", "c", "d"], _gaussian(1) * 0.99) == []
    before = mechanism.accountant.epsilon()
    after = mechanism.epsilon_after_next(contributors=2, participants=None)
    assert after == before  # the best case: a fresh client, below the most charged
    mechanism.begin_round(["a", "d"])
    assert mechanism.epsilon_after_next(contributors=2, participants=2) == pytest.approx(
        _gaussian(4)
    )
    assert mechanism.accountant.epsilon() == before  # asking charges nothing


def test_without_a_cohort_named_a_round_is_charged_to_every_client() -> None:
    mechanism = _sampled_central(q=1.0)
    out = mechanism.release(np.zeros(8), contributors=6, participants=6, noise_added=0)
    assert "members" not in out.store["charged"]
    assert "composition" not in mechanism.ledger_block(out.store)
    assert mechanism.accountant.client_epsilon("anyone") == pytest.approx(_gaussian(1))


def test_adaptive_rounds_charge_both_releases_to_their_members() -> None:
    mechanism = _mechanism(
        noise_multiplier=1.0, delta=1e-5, adaptive_clip=True, count_noise_stddev=2.0
    )
    mechanism.begin_round(["a", "b", "c"])
    total = np.zeros(mechanism.round_dimension(50))
    out = mechanism.release(total, contributors=3, participants=3, noise_added=0)
    assert out.epsilon == pytest.approx(_gaussian(1, "pld", z=1.0), rel=1e-6)
    assert mechanism.accountant.client_epsilon("d") == 0.0


def test_a_round_released_without_a_new_cohort_is_charged_to_everyone() -> None:
    """Review of 2026-12-03: the cohort stayed set after its round, so a release that
    did not name its own would have charged the previous round's members only."""
    mechanism = _sampled_central()
    _round(mechanism, ["a", "b"])
    out = mechanism.release(np.zeros(8), contributors=2, participants=2, noise_added=0)
    assert "members" not in out.store["charged"]
    assert mechanism.accountant.client_epsilon("c") == pytest.approx(_gaussian(1))
    assert mechanism.charged_outside(["a", "c"]) == {"b"}


@pytest.mark.parametrize(
    ("record_unit", "says"),
    [("customer", "(a customer and all their rows)"), ("transaction", "(one transaction)")],
)
def test_record_distributed_adjacency_names_the_unit_that_was_clipped(
    record_unit: str, says: str
) -> None:
    """DP audit (2026-12-04): a CSV run without a customer column clips each transaction
    alone, yet every ledger row said "a customer and all their rows"."""
    mechanism = _record_distributed(record_unit=record_unit)
    out = mechanism.release(np.zeros(50), contributors=8, participants=8, noise_added=0.0)
    adjacency = mechanism.ledger_block(out.store)["adjacency"]
    assert says in adjacency and adjacency.startswith("zero-out one protected unit")


def test_a_record_unit_other_than_customer_or_transaction_is_refused() -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"dp\.record_unit"):
        _record_distributed(record_unit="card")
