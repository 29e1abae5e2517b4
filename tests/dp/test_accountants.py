"""One accountant interface, one vocabulary: what the server claims is what the audit replays."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import (
    ACCOUNTANTS,
    Accountant,
    DiscreteGaussianAccountant,
    GaussianAccountant,
    PerClientAccountant,
    RecordLevelAccountant,
    check_accountant,
)
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.release import mechanism_for
from secagg.errors import ConfigurationError


def test_one_vocabulary_names_what_each_accountant_accounts() -> None:
    assert set(ACCOUNTANTS) == {"pld", "rdp", "prv", "ddg-kls21"}
    assert check_accountant("pld", "central") == "pld"
    assert check_accountant("prv", "dpsgd") == "prv"
    for name, mechanism in (("prv", "central"), ("pld", "dpsgd"), ("gdp", "central")):
        with pytest.raises(ConfigurationError, match="choose one of"):
            check_accountant(name, mechanism)


def test_gaussian_accountant_is_the_dp_fedavg_accountant_and_zero_noise_is_infinite() -> None:
    accountant = GaussianAccountant(1e-5, "rdp")
    reference = PrivacyAccountant(1e-5, "rdp")
    for _ in range(3):
        accountant.step(1.1, 0.2)
        reference.step(1.1, 0.2)
    assert isinstance(accountant, Accountant) and accountant.rounds == 3
    assert accountant.epsilon() == pytest.approx(reference.epsilon())
    accountant.step(0.0, 0.2)
    assert accountant.epsilon() == math.inf


def test_discrete_gaussian_accountant_composes_at_the_fewest_honest_shares() -> None:
    ddg = DistributedDiscreteGaussian(
        dimension=64, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    accountant = DiscreteGaussianAccountant(ddg, sample_rate=0.5, delta=1e-5)
    assert accountant.epsilon() == 0.0
    for honest in (10, 7, 9):
        accountant.step(honest)
    expected = ddg.epsilon(noise_contributors=7, sample_rate=0.5, rounds=3, delta=1e-5)
    assert accountant.epsilon() == pytest.approx(expected)
    with pytest.raises(ConfigurationError):
        accountant.step(-1)


def test_record_level_accountant_is_opacus_on_the_branch_history() -> None:
    from opacus.accountants import create_accountant

    history = [(1.1, 0.01, 100), (1.1, 0.01, 50)]
    accountant = RecordLevelAccountant("prv", 1e-5, history)
    opacus = create_accountant(mechanism="prv")
    opacus.history = list(history)
    assert accountant.epsilon() == pytest.approx(opacus.get_epsilon(delta=1e-5))
    assert RecordLevelAccountant("rdp", 1e-5).epsilon() == 0.0


def test_the_servers_mechanisms_hold_these_accountants() -> None:
    common = {"dimension": 64, "bits": 32, "sample_rate": 0.5, "expected_clients": 10.0,
              "corrupt_fraction": 0.1}  # fmt: skip
    central = mechanism_for(DPSettings(noise_multiplier=1.0), **common)
    distributed = mechanism_for(DPSettings(mechanism="distributed"), **common)
    assert isinstance(central.accountant, PerClientAccountant)  # type: ignore[attr-defined]
    assert isinstance(distributed.accountant, DiscreteGaussianAccountant)  # type: ignore[attr-defined]


def test_d7_the_distributed_accountant_costs_the_same_at_every_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reliability review D7: the per-round RDP curve is computed once per set of
    parameters (the server asks every round, the audit every row), and each epsilon
    is the one the analysis gives from scratch for the same history."""
    from secagg.dp import ddg_accounting

    ddg = DistributedDiscreteGaussian(
        dimension=64, clip=1.0, noise_multiplier=1.0, expected_clients=10
    )
    ddg_accounting._ddg_round_rdp.cache_clear()
    calls = []
    original = ddg_accounting._ddg_tau
    monkeypatch.setattr(
        ddg_accounting, "_ddg_tau", lambda *args: calls.append(args) or original(*args)
    )
    accountant = DiscreteGaussianAccountant(ddg, sample_rate=1.0, delta=1e-5)
    shares = [10, 9, 10, 8, 10] * 40
    for honest in shares:
        accountant.step(honest)
        accountant.epsilon()
    assert len(calls) == 3  # one curve per fewest-shares value (10, 9, 8), not per round
    assert accountant.rounds == 200 and accountant.honest_shares == shares
    ddg_accounting._ddg_round_rdp.cache_clear()  # from scratch, the old way
    assert accountant.epsilon() == ddg.epsilon(
        noise_contributors=min(shares), sample_rate=1.0, rounds=200, delta=1e-5
    )
    rebuilt = DiscreteGaussianAccountant(ddg, sample_rate=1.0, delta=1e-5)
    rebuilt.honest_shares = shares  # as the audit's replay restores one
    assert rebuilt.epsilon() == accountant.epsilon() and rebuilt.rounds == 200


# --- PerClientAccountant: each client charged for the rounds it was in ------------------


@pytest.mark.parametrize("name", ["pld", "rdp"])
def test_every_client_in_every_round_is_the_unsampled_gaussian(name: str) -> None:
    per_client, reference = PerClientAccountant(1e-5, name), GaussianAccountant(1e-5, name)
    for z in (1.1, 0.9, 2.0, 1.1):
        per_client.step(z, ["a", "b", "c"])
        reference.step(z, 1.0)
        assert per_client.epsilon() == pytest.approx(reference.epsilon(), rel=1e-9)
    assert per_client.rounds == 4


@pytest.mark.parametrize("name", ["pld", "rdp"])
def test_the_claim_is_the_most_charged_clients(name: str) -> None:
    accountant = PerClientAccountant(1e-5, name)
    schedule = [["a", "b"], ["b"], ["c"], ["b", "c"], ["a"]]
    for members in schedule:
        accountant.step(1.5, members)
    counts = {n: sum(n in m for m in schedule) for n in "abc"}  # a 2, b 3, c 2
    for client, rounds in counts.items():
        reference = GaussianAccountant(1e-5, name)
        for _ in range(rounds):
            reference.step(1.5, 1.0)
        assert accountant.client_epsilon(client) == pytest.approx(reference.epsilon(), rel=1e-9)
    assert accountant.epsilon() == accountant.client_epsilon("b")
    assert accountant.client_epsilon("d") == 0.0


def test_a_round_charged_to_everyone_counts_for_clients_not_yet_seen() -> None:
    accountant = PerClientAccountant(1e-5)
    accountant.step(1.0, None)
    accountant.step(1.0, ["a"])
    reference = GaussianAccountant(1e-5)
    reference.step(1.0, 1.0)
    assert accountant.client_epsilon("new") == pytest.approx(reference.epsilon())
    reference.step(1.0, 1.0)
    assert accountant.epsilon() == pytest.approx(reference.epsilon())


def test_adaptive_rounds_add_the_count_releases_precision() -> None:
    """Andrew et al.: the update at z_delta and the count at sigma_b compose to one
    Gaussian; the per-client charge is that Gaussian's, as the Poisson path's at q = 1."""
    accountant, reference = PerClientAccountant(1e-5, "rdp"), GaussianAccountant(1e-5, "rdp")
    accountant.step(1.2, ["a"], count_noise_stddev=3.0)
    reference.step(1.2, 1.0, count_noise_stddev=3.0)
    assert accountant.epsilon() == pytest.approx(reference.epsilon(), rel=1e-9)


def test_asking_after_a_round_charges_nothing_and_no_noise_is_infinite() -> None:
    accountant = PerClientAccountant(1e-5)
    accountant.step(1.0, ["a", "b"])
    before, own = accountant.epsilon(), dict(accountant.own)
    after = accountant.epsilon_after(1.0, ["a"])
    assert after > before and accountant.epsilon() == before and accountant.own == own
    assert accountant.epsilon_after(1.0, ["z"]) == before  # a fresh client stays below "a"
    assert accountant.epsilon_after(1.0, []) == before
    accountant.step(0.0, ["c"])
    assert math.isinf(accountant.epsilon())


def test_the_per_client_accountant_refuses_the_opacus_names() -> None:
    with pytest.raises(ConfigurationError, match="choose one of"):
        PerClientAccountant(1e-5, "prv")


_NAMES = ["a", "b", "c", "d", "e", "f"]


@settings(max_examples=40, deadline=None)
@given(
    schedule=st.lists(
        st.tuples(
            st.sampled_from([0.8, 1.0, 1.7, 3.0]),
            st.one_of(st.none(), st.sets(st.sampled_from(_NAMES), min_size=1)),
        ),
        min_size=1,
        max_size=12,
    ),
    name=st.sampled_from(["pld", "rdp"]),
)
def test_the_claim_is_the_worst_clients_own_composition(
    schedule: list[tuple[float, set[str] | None]], name: str
) -> None:
    """Random schedules of rounds (each charged to a random cohort, or to everyone):
    the claim equals the largest of the clients' own compositions, each recomputed from
    scratch with the Poisson-path accountant at q = 1 over that client's rounds only."""
    accountant = PerClientAccountant(1e-5, name)
    for z, members in schedule:
        accountant.step(z, None if members is None else sorted(members))
    worst = 0.0
    for client in _NAMES:
        own = GaussianAccountant(1e-5, name)
        for z, members in schedule:
            if members is None or client in members:
                own.step(z, 1.0)
        assert accountant.client_epsilon(client) == pytest.approx(own.epsilon(), rel=1e-9)
        worst = max(worst, own.epsilon())
    assert accountant.epsilon() == pytest.approx(worst, rel=1e-9)
    assert accountant.rounds == len(schedule)


# --- argument checks (hostile-user audit 2026-12-04) ---------------------------


@pytest.mark.parametrize("precision", [-1.0, math.nan, "1", None])
def test_a_charge_that_is_not_a_precision_is_refused_and_charges_nothing(
    precision: object,
) -> None:
    # before: -1 lowered the client's total (an understated claim), NaN poisoned it for
    # good, and both counted a round; "1" and None raised TypeError after counting it
    accountant = PerClientAccountant(1e-5)
    accountant.step(1.0, ["a"])
    before = accountant.epsilon()
    with pytest.raises(ConfigurationError, match="precision"):
        accountant.charge(precision, ["a"])  # type: ignore[arg-type]
    assert accountant.rounds == 1
    assert accountant.epsilon() == before


def test_members_given_as_one_string_are_refused_not_split_into_letters() -> None:
    # before: step(1.0, "ab") charged clients "a" and "b"
    accountant = PerClientAccountant(1e-5)
    with pytest.raises(ConfigurationError, match="members"):
        accountant.step(1.0, "ab")
    assert accountant.rounds == 0


@pytest.mark.parametrize("delta", [1, 0, 1.5, "1e-5"])
def test_the_per_client_accountant_checks_delta_when_built(delta: object) -> None:
    # before: taken, and refused only at the first epsilon
    with pytest.raises(ConfigurationError, match="delta"):
        PerClientAccountant(delta)  # type: ignore[arg-type]


@pytest.mark.parametrize(("z", "count"), [(math.nan, None), (1.0, math.nan), ("1", None)])
def test_a_precision_of_no_number_is_refused(z: object, count: object) -> None:
    # before: NaN came back as a NaN precision, "1" as a TypeError
    with pytest.raises(ConfigurationError):
        PerClientAccountant.precision(z, count)  # type: ignore[arg-type]
