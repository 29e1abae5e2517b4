"""The synthetic card-transaction world: cards with histories, rare fraud, time and drift."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.apps.models.synthetic import (
    CHANNELS,
    FEATURE_NAMES,
    MERCHANT_CATEGORIES,
    TYPOLOGIES,
    WORLDS,
    BranchData,
    _draw_world,
    generate_branches,
)
from secagg.errors import ConfigurationError

SMALL = {"total_train_rows": 24_000, "test_rows_per_branch": 3_000}
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@pytest.fixture(scope="module")
def branches() -> list[BranchData]:
    return generate_branches(8, seed=3, **SMALL)


def test_reproducible_per_seed_and_a_different_world_per_seed(
    branches: list[BranchData],
) -> None:
    again = generate_branches(8, seed=3, **SMALL)
    other = generate_branches(8, seed=4, **SMALL)
    for a, b in zip(branches, again, strict=True):
        assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
        assert np.array_equal(a.customers_train, b.customers_train)
    # not only other noise: other mixes, another size law, other typology profiles
    assert [b.typology_mix for b in branches] != [b.typology_mix for b in other]
    assert [b.num_train for b in branches] != [b.num_train for b in other]
    sizes = [b.num_train for b in branches]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]
    assert abs(sum(sizes) - SMALL["total_train_rows"]) < 100

    # the world itself is drawn per seed: profiles, size law, which typologies are common
    worlds = [_draw_world(8, "standard", 0.25, 0.3, np.random.default_rng(s)) for s in (5, 6)]
    assert worlds[0].zipf != worlds[1].zipf
    assert not np.allclose(worlds[0].typology_base, worlds[1].typology_base, atol=0.05)
    for a, b in zip(worlds[0].typologies, worlds[1].typologies, strict=True):
        assert abs(a.amount_mu - b.amount_mu) > 0.01 and a.mcc != b.mcc
    for c, d in zip(worlds[0].segments, worlds[1].segments, strict=True):
        assert c.amount_mu != d.amount_mu and c.channel != d.channel


def test_rare_fraud_on_cards_with_several_transactions(branches: list[BranchData]) -> None:
    for b in branches:
        assert 0.0005 <= b.fraud_rate <= 0.003
        assert (
            b.x_train.shape == (b.num_train, len(FEATURE_NAMES)) and b.x_train.dtype == np.float32
        )
        assert np.all(np.isfinite(b.x_train)) and np.all(np.isfinite(b.x_test))
        assert b.customers_train is not None and b.customers_train.size == b.num_train
        _, per_card = np.unique(b.customers_train, return_counts=True)
        assert per_card.mean() > 3 and per_card.max() > 10  # cards have histories
        assert b.amount_test is not None and np.all(b.amount_test > 0)
        assert b.typology_test is not None and b.typology_test.dtype == np.int8
        assert np.array_equal(b.typology_test >= 0, b.y_test == 1)
        assert b.typology_train is not None
        assert np.array_equal(b.typology_train >= 0, b.y_train == 1)
        assert set(np.unique(b.typology_test)) <= set(range(-1, len(TYPOLOGIES)))
        summary = b.summary()
        assert summary["train_frauds"] == int(b.y_train.sum()) >= 2
        assert summary["train_customers"] == np.unique(b.customers_train).size
    # pooled, the rate is what real card data shows, not a few percent
    y = np.concatenate([b.y_train for b in branches])
    assert 0.0003 < y.mean() < 0.004
    # non-IID: each branch's top typology dominates its mix, and they differ
    assert np.mean([max(b.typology_mix) for b in branches]) > 0.5
    assert len({int(np.argmax(b.typology_mix)) for b in branches}) >= 2
    # dataclasses.replace still works on the new fields
    assert dataclasses.replace(branches[0], prior_releases=((1.0, 0.1, 3),)).amount_test is not None


def test_the_test_period_follows_the_training_period(branches: list[BranchData]) -> None:
    for b in branches:
        assert b.day_train is not None and b.day_test is not None
        assert b.day_train.max() <= b.day_test.min()
        assert np.floor(b.day_train).max() <= np.floor(b.day_test).min()
        assert np.all(np.diff(b.day_train) >= 0) and np.all(np.diff(b.day_test) >= 0)
    # drift: the online and contactless share grows between the periods
    x_train = np.concatenate([b.x_train for b in branches])
    x_test = np.concatenate([b.x_test for b in branches])
    digital = [COL["channel_online"], COL["channel_contactless"]]
    assert x_test[:, digital].sum(1).mean() > x_train[:, digital].sum(1).mean() + 0.02


def test_behavioural_features_follow_each_cards_history(branches: list[BranchData]) -> None:
    b = branches[1]
    assert b.customers_train is not None and b.day_train is not None
    card, day, x = b.customers_train, b.day_train, b.x_train
    mcc = np.argmax(x[:, COL["mcc_grocery"] : COL["mcc_grocery"] + len(MERCHANT_CATEGORIES)], 1)
    channel = np.argmax(x[:, COL["channel_chip"] : COL["channel_chip"] + len(CHANNELS)], 1)
    rng = np.random.default_rng(0)
    sample = np.r_[rng.choice(b.num_train, 300, replace=False), np.flatnonzero(b.y_train)]
    for i in sample:
        mine = card == card[i]
        earlier = mine & (day < day[i])
        assert x[i, COL["count_24h"]] == np.sum(earlier & (day > day[i] - 1.0))
        assert x[i, COL["new_mcc"]] == float(not np.any(earlier & (mcc == mcc[i])))
        assert x[i, COL["new_channel"]] == float(not np.any(earlier & (channel == channel[i])))
        assert x[i, COL["log_history"]] == pytest.approx(np.log1p(earlier.sum()), abs=1e-5)
        if earlier.any():
            gap = 24 * (day[i] - day[earlier].max())
            assert x[i, COL["log_gap_hours"]] == pytest.approx(np.log1p(gap), abs=1e-4)
    # fraud bursts raise the 24 h count: compromised cards transact in quick succession
    x = np.concatenate([b.x_train for b in branches])
    y = np.concatenate([b.y_train for b in branches]) == 1
    assert x[y, COL["count_24h"]].mean() > x[~y, COL["count_24h"]].mean()


def test_every_branch_has_fraud_to_learn_and_to_score_even_when_small() -> None:
    for seed, world in ((0, "standard"), (1, "standard"), (2, "hard")):
        for b in generate_branches(
            8, seed=seed, world=world, total_train_rows=1_000, test_rows_per_branch=2_000
        ):
            assert int(b.y_train.sum()) >= 2 and int(b.y_test.sum()) >= 2
            assert np.all(np.isfinite(b.x_train)) and np.all(np.isfinite(b.x_test))


def test_the_hard_world_holds_one_typology_out_of_all_but_one_branch() -> None:
    assert WORLDS == ("standard", "hard", "many")
    for seed in range(3):
        bs = generate_branches(8, seed=seed, world="hard", **SMALL)
        # the held-out typology: half of one branch's training fraud, none of the others'
        mixes = np.array([b.typology_mix for b in bs])
        held = [
            t
            for t in range(len(TYPOLOGIES))
            if np.sum(mixes[:, t] == 0.5) == 1 and np.sum(mixes[:, t] == 0.0) == len(bs) - 1
        ]
        assert len(held) == 1
        (holder,) = np.flatnonzero(mixes[:, held[0]])
        for i, b in enumerate(bs):  # in the rows: trained on by the holder only, tested by all
            assert b.typology_train is not None and b.typology_test is not None
            assert np.any(b.typology_train == held[0]) == (i == holder)
            assert np.any(b.typology_test == held[0])
        assert all(int(b.y_test.sum()) >= 2 for b in bs)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 2"):
        generate_branches(1)
    with pytest.raises(ConfigurationError, match="fraud_rate_range"):
        generate_branches(4, fraud_rate_range=(0.0, 0.1))
    with pytest.raises(ConfigurationError, match="100 rows"):
        generate_branches(4, total_train_rows=50)
    with pytest.raises(ConfigurationError, match="standard"):
        generate_branches(4, world="easy")
    with pytest.raises(ConfigurationError, match="test_rows_per_branch"):
        generate_branches(4, test_rows_per_branch=10)
    with pytest.raises(ConfigurationError, match="emerging_share"):
        generate_branches(4, emerging_share=1.5)
    with pytest.raises(ConfigurationError, match="concentrations"):
        generate_branches(4, typology_concentration=0.0)
    with pytest.raises(ConfigurationError, match="transactions_per_card"):
        generate_branches(4, transactions_per_card=0.5)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"typology_concentration": float("nan")}, "concentrations must be positive"),
        ({"segment_concentration": float("nan")}, "concentrations must be positive"),
        ({"segment_concentration": float("inf")}, "concentrations must be positive"),
        ({"seed": -1}, r"seed must be an integer >= 0, not -1"),
        ({"num_branches": 2.5}, r"num_branches must be an integer, not 2\.5"),
        ({"test_rows_per_branch": 50.5}, r"test_rows_per_branch must be an integer"),
    ],
)
def test_arguments_numpy_would_choke_on_are_refused(kwargs: dict, error: str) -> None:
    """A NaN or infinite concentration raised numpy's "Probabilities contain NaN", a
    negative seed its "expected non-negative integer", 2.5 branches or 50.5 test rows a
    TypeError from deep in the generator."""
    args = {"num_branches": 2, "total_train_rows": 400, "test_rows_per_branch": 50, **kwargs}
    with pytest.raises(ConfigurationError, match=error):
        generate_branches(**args)


# --- the many world: ~1 000 small participants, realistic fraud, no floor per participant


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    participants=st.integers(2, 60),
    rows_each=st.integers(100, 400),
    test_rows=st.integers(50, 300),
)
def test_many_world_guarantees(
    seed: int, participants: int, rows_each: int, test_rows: int
) -> None:
    """Whatever the seed and size: every participant has the generator's 100 training rows
    at least and exactly ``test_rows`` test rows, none holds a large share (no Zipf
    head), labels are the plain binomial draw (no floor of 2 per participant) and yet the
    pooled training and test periods hold 2 frauds each: a network can always learn and be
    scored, and a participant without a fraud is the normal case, not an artefact."""
    total = participants * rows_each
    bs = generate_branches(
        participants,
        seed=seed,
        world="many",
        total_train_rows=total,
        test_rows_per_branch=test_rows,
    )
    assert len(bs) == participants
    assert len({b.name for b in bs}) == participants
    sizes = np.array([b.num_train for b in bs])
    assert sizes.min() >= 100
    # log-normal sizes around the mean (sd 0.5 in log space): no participant is a bank
    assert sizes.max() <= 10 * max(rows_each, 100)
    assert abs(sizes.sum() - total) <= 100 * participants
    for b in bs:
        assert b.y_test.size == test_rows and b.x_train.shape[0] == b.num_train
        assert np.all(np.isfinite(b.x_train)) and np.all(np.isfinite(b.x_test))
        assert b.typology_train is not None and b.typology_test is not None
        assert np.array_equal(b.typology_train >= 0, b.y_train == 1)
        assert np.array_equal(b.typology_test >= 0, b.y_test == 1)
        assert b.day_train is not None and b.day_test is not None
        assert b.day_train.max() <= b.day_test.min()
        assert 0.0005 <= b.fraud_rate <= 0.003
    assert sum(int(b.y_train.sum()) for b in bs) >= 2
    assert sum(int(b.y_test.sum()) for b in bs) >= 2


def test_many_world_has_realistic_fraud_and_mostly_fraud_free_participants() -> None:
    """At the scale of examples/many_participants.toml (shrunk to 300 participants):
    the pooled fraud rate is what real card data shows (the standard world's floor of 2
    a period would multiply it several times here), most participants have no fraud in
    either period, and the pooled test set holds enough frauds to score a model."""
    bs = generate_branches(
        300, seed=7, world="many", total_train_rows=90_000, test_rows_per_branch=200
    )
    train = np.array([int(b.y_train.sum()) for b in bs])
    test = np.array([int(b.y_test.sum()) for b in bs])
    rows = sum(b.num_train for b in bs)
    assert 0.0005 <= train.sum() / rows <= 0.003
    assert (train == 0).mean() > 0.4 and (test == 0).mean() > 0.4
    assert test.sum() >= 30 and train.sum() >= 50
    floored = generate_branches(300, seed=7, total_train_rows=90_000, test_rows_per_branch=200)
    assert sum(int(b.y_test.sum()) for b in floored) >= 600  # 2 each: 1.0 %, not real


def test_many_world_shares_the_standard_worlds_profiles_and_mixes() -> None:
    """Same seed, same participants: the many world changes the sizes and the fraud
    floor, not the population (segment and typology mixes, rates); and the standard
    world did not change when the many world was added (its draws come from their own
    stream)."""
    many = generate_branches(
        20, seed=11, world="many", total_train_rows=4_000, test_rows_per_branch=100
    )
    standard = generate_branches(20, seed=11, total_train_rows=4_000, test_rows_per_branch=100)
    for m, s in zip(many, standard, strict=True):
        assert m.name == s.name
        assert m.typology_mix == s.typology_mix and m.segment_mix == s.segment_mix
        assert m.fraud_rate == s.fraud_rate
    assert [b.num_train for b in many] != [b.num_train for b in standard]
    again = generate_branches(
        20, seed=11, world="many", total_train_rows=4_000, test_rows_per_branch=100
    )
    for a, b in zip(many, again, strict=True):
        assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)


def test_many_world_tiny_network_gets_the_network_floor() -> None:
    """Two participants of 100 rows at the lowest rate expect 0.1 training frauds: the
    network floor still gives the pooled training and test periods 2 each."""
    for seed in range(5):
        bs = generate_branches(
            2,
            seed=seed,
            world="many",
            total_train_rows=200,
            test_rows_per_branch=50,
            fraud_rate_range=(0.0005, 0.0005),
        )
        assert sum(int(b.y_train.sum()) for b in bs) >= 2
        assert sum(int(b.y_test.sum()) for b in bs) >= 2
