"""A reproducible generator of per-branch card transactions with rare, non-IID fraud.

Why synthetic: no bank can ship its transactions, and the public card-fraud
dataset (Time, V1..V28, Amount, Class) is PCA-anonymised and has no notion of a
branch. This generator gives every branch a plausible book of business and
makes federation *necessary*: fraud comes in a handful of typologies (card
testing, account takeover, skimming at ATMs, cross-border travel fraud, lost
cards tapped contactless) and each branch sees mostly one or two of them, at
0.1 % to 2 % of its transactions, so no branch alone learns all the patterns.

One row is one customer's scored transaction, with features that summarise the
customer's recent history (distance from home, velocity). One row per customer
makes record-level DP-SGD customer-level DP, the unit a bank must protect.

Features (all numeric, ready for a model):

* ``log_amount``: log(1 + amount in EUR)
* ``hour_sin``, ``hour_cos``: time of day on the circle
* ``mcc_*``: merchant category, one-hot (8 categories)
* ``channel_*``: chip, contactless, online, atm, one-hot
* ``log_distance``: log(1 + km from the customer's home)
* ``velocity``: the customer's transactions in the last 24 h (scaled)
* ``is_foreign``: card used abroad
* ``segment_*``: the customer's segment as the bank knows it, one-hot (what
  is normal for a traveller is suspicious for a retiree)

Synthetic data is not a secret, so numpy's seeded PCG64 generator drives it (the
engine's keys, masks and noise never come from it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from secagg.errors import ConfigurationError

MERCHANT_CATEGORIES = (
    "grocery", "fuel", "restaurant", "travel", "electronics", "online_retail", "cash", "luxury",
)  # fmt: skip
CHANNELS = ("chip", "contactless", "online", "atm")
FEATURE_NAMES = (
    "log_amount", "hour_sin", "hour_cos",
    *(f"mcc_{m}" for m in MERCHANT_CATEGORIES),
    *(f"channel_{c}" for c in CHANNELS),
    "log_distance", "velocity", "is_foreign",
    *(f"segment_{s}" for s in ("students", "families", "retirees", "business", "travellers")),
)  # fmt: skip

SEGMENTS = ("students", "families", "retirees", "business", "travellers")
TYPOLOGIES = ("card_testing", "account_takeover", "atm_skimming", "travel_fraud", "lost_card")


@dataclass(frozen=True)
class _Profile:
    """How one kind of transaction looks: the parameters its features are drawn from."""

    amount_mu: float  # log-normal location of the amount in EUR
    amount_sigma: float
    hour_mu: float  # preferred hour (von Mises centre) and concentration
    hour_kappa: float
    mcc: tuple[float, ...]  # weights over MERCHANT_CATEGORIES
    channel: tuple[float, ...]  # weights over CHANNELS
    distance_mu: float  # log-normal km from home
    distance_sigma: float
    velocity_mean: float  # Poisson mean of transactions in the last 24 h
    foreign: float  # probability the card is used abroad


#: legitimate spending of each customer segment
SEGMENT_PROFILES: dict[str, _Profile] = {
    "students": _Profile(3.0, 0.8, 15, 1.0, (3, 1, 4, 0.5, 1, 3, 1, 0.1), (2, 5, 4, 1),
                         1.0, 0.9, 3.0, 0.03),
    "families": _Profile(3.8, 0.8, 13, 1.5, (6, 3, 2, 0.5, 1, 2, 1, 0.2), (5, 4, 2, 1),
                         1.5, 0.8, 2.5, 0.03),
    "retirees": _Profile(3.4, 0.7, 11, 2.0, (6, 2, 2, 0.5, 0.3, 0.5, 2, 0.2), (7, 2, 0.5, 2),
                         1.0, 0.7, 1.5, 0.02),
    "business": _Profile(4.6, 1.0, 12, 1.5, (1, 3, 4, 3, 2, 2, 0.5, 1), (4, 2, 4, 0.5),
                         2.5, 1.2, 3.5, 0.10),
    "travellers": _Profile(4.2, 0.9, 14, 0.8, (1, 2, 3, 5, 1, 2, 1, 1), (4, 3, 3, 1),
                           4.0, 1.5, 3.0, 0.35),
}  # fmt: skip

#: how each fraud typology looks (overlapping legitimate spending on purpose)
TYPOLOGY_PROFILES: dict[str, _Profile] = {
    # many tiny online payments to see whether a stolen number works
    "card_testing": _Profile(1.2, 0.7, 3, 1.2, (0.2, 0.1, 0.2, 0.1, 1, 6, 0, 0.1),
                             (0.1, 0.1, 8, 0.1), 2.0, 1.5, 9.0, 0.25),
    # a taken-over online account buys resaleable goods
    "account_takeover": _Profile(6.0, 0.8, 2, 0.8, (0.1, 0.1, 0.1, 1, 6, 3, 0, 3),
                                 (0.2, 0.1, 8, 0.1), 3.0, 1.5, 2.5, 0.15),
    # a cloned card empties the account at ATMs far from home, at night
    "atm_skimming": _Profile(5.3, 0.5, 1, 1.0, (0, 0, 0, 0, 0, 0, 8, 0), (0.3, 0, 0, 8),
                             5.0, 1.0, 5.0, 0.40),
    # a compromised card used abroad for travel and luxury
    "travel_fraud": _Profile(5.5, 0.8, 20, 0.8, (0.2, 0.2, 1, 4, 1, 0.5, 1, 4),
                             (3, 1, 3, 1), 7.0, 0.8, 4.0, 0.85),
    # a lost card tapped for small amounts until it is blocked
    "lost_card": _Profile(3.2, 0.4, 18, 1.5, (3, 4, 4, 0, 0.5, 0, 0.3, 0.3),
                          (0.3, 8, 0, 0.2), 2.5, 0.8, 8.0, 0.05),
}  # fmt: skip


@dataclass(frozen=True)
class BranchData:
    """One branch's training and test transactions (features and 0/1 fraud labels)."""

    name: str
    x_train: np.ndarray  # float32 (n, len(FEATURE_NAMES))
    y_train: np.ndarray  # int8 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    fraud_rate: float  # the branch's true rate (observed, for loaded data)
    segment_mix: tuple[float, ...] = ()  # weights over SEGMENTS (synthetic data only)
    typology_mix: tuple[float, ...] = ()  # weights over TYPOLOGIES (synthetic data only)
    #: the customer id of each training row (loaded data with a customer column);
    #: None for synthetic data, where one row is one customer
    customers_train: np.ndarray | None = None
    #: Gaussian releases of these training rows made before training, as accountant
    #: entries (noise multiplier, sample rate, steps): the feature statistics
    prior_releases: tuple[tuple[float, float, int], ...] = ()

    @property
    def num_train(self) -> int:
        return int(self.y_train.size)

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "train_rows": self.num_train,
            "train_frauds": int(self.y_train.sum()),
            "test_rows": int(self.y_test.size),
            "test_frauds": int(self.y_test.sum()),
            "fraud_rate": round(self.fraud_rate, 5),
        }
        if self.customers_train is not None:
            out["train_customers"] = int(np.unique(self.customers_train).size)
        if self.segment_mix:
            out["main_segment"] = SEGMENTS[int(np.argmax(self.segment_mix))]
        if self.typology_mix:
            out["main_typologies"] = [
                TYPOLOGIES[i] for i in np.argsort(self.typology_mix)[::-1][:2]
            ]
        return out


def _draw(
    profile: _Profile, count: int, segments: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``count`` feature rows drawn from one profile, for customers of these segments."""
    out = np.zeros((count, len(FEATURE_NAMES)), dtype=np.float64)
    if count == 0:
        return out.astype(np.float32)
    amount = rng.lognormal(profile.amount_mu, profile.amount_sigma, count)
    out[:, 0] = np.log1p(amount)
    hour = profile.hour_mu + rng.vonmises(0.0, profile.hour_kappa, count) * 24 / (2 * math.pi)
    angle = 2 * math.pi * (hour % 24) / 24
    out[:, 1], out[:, 2] = np.sin(angle), np.cos(angle)
    mcc_p = np.asarray(profile.mcc) / sum(profile.mcc)
    mcc = rng.choice(len(MERCHANT_CATEGORIES), count, p=mcc_p)
    out[np.arange(count), 3 + mcc] = 1.0
    channel_p = np.asarray(profile.channel) / sum(profile.channel)
    channel = rng.choice(len(CHANNELS), count, p=channel_p)
    out[np.arange(count), 3 + len(MERCHANT_CATEGORIES) + channel] = 1.0
    distance = rng.lognormal(profile.distance_mu, profile.distance_sigma, count)
    base = 3 + len(MERCHANT_CATEGORIES) + len(CHANNELS)
    out[:, base] = np.log1p(distance)
    out[:, base + 1] = rng.poisson(profile.velocity_mean, count) / 5.0
    out[:, base + 2] = (rng.random(count) < profile.foreign).astype(np.float64)
    out[np.arange(count), base + 3 + segments] = 1.0
    return out.astype(np.float32)


def _rows(
    count: int,
    fraud_rate: float,
    segment_mix: np.ndarray,
    typology_mix: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    frauds = int(rng.binomial(count, fraud_rate))
    legit_per_segment = rng.multinomial(count - frauds, segment_mix)
    fraud_per_typology = rng.multinomial(frauds, typology_mix)
    parts = [
        _draw(SEGMENT_PROFILES[segment], int(k), np.full(int(k), i), rng)
        for i, (segment, k) in enumerate(zip(SEGMENTS, legit_per_segment, strict=True))
    ]
    for typology, k in zip(TYPOLOGIES, fraud_per_typology, strict=True):
        # fraud hits the branch's own customers
        victims = rng.choice(len(SEGMENTS), int(k), p=segment_mix)
        parts.append(_draw(TYPOLOGY_PROFILES[typology], int(k), victims, rng))
    x = np.concatenate(parts)
    y = np.concatenate([np.zeros(count - frauds, np.int8), np.ones(frauds, np.int8)])
    order = rng.permutation(count)
    return x[order], y[order]


def generate_branches(
    num_branches: int = 8,
    *,
    seed: int = 0,
    total_train_rows: int = 120_000,
    test_rows_per_branch: int = 20_000,
    fraud_rate_range: tuple[float, float] = (0.001, 0.02),
    typology_concentration: float = 0.25,
    segment_concentration: float = 0.8,
    emerging_share: float = 0.3,
) -> list[BranchData]:
    """Per-branch data, the same for the same arguments.

    Branch sizes follow a Zipf-like law (the first branch is the largest);
    fraud rates are log-uniform in ``fraud_rate_range``; segment and typology
    mixes are Dirichlet draws whose concentrations control how non-IID the
    branches are (small = each branch sees few typologies). Each branch's test
    set comes from the branch's own customers, large enough to hold fraud cases
    even at a 0.1 % rate, and its fraud mixes the branch's typologies with a
    uniform share ``emerging_share`` of all of them: fraud rings move from branch
    to branch, so tomorrow's fraud includes patterns this branch has not yet seen.
    """
    if not 0 <= emerging_share <= 1:
        raise ConfigurationError("emerging_share must lie in [0, 1]")
    if num_branches < 2:
        raise ConfigurationError("a federation needs at least 2 branches")
    low, high = fraud_rate_range
    if not 0 < low <= high < 0.5:
        raise ConfigurationError("fraud_rate_range must satisfy 0 < low <= high < 0.5")
    if total_train_rows < 100 * num_branches:
        raise ConfigurationError("total_train_rows must give each branch at least 100 rows")
    if typology_concentration <= 0 or segment_concentration <= 0:
        raise ConfigurationError("Dirichlet concentrations must be positive")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC466]))
    weights = 1.0 / np.arange(1, num_branches + 1) ** 0.8
    sizes = np.maximum(100, np.round(total_train_rows * weights / weights.sum())).astype(int)
    rates = np.exp(rng.uniform(math.log(low), math.log(high), num_branches))
    branches = []
    for b in range(num_branches):
        segment_mix = rng.dirichlet(np.full(len(SEGMENTS), segment_concentration))
        typology_mix = rng.dirichlet(np.full(len(TYPOLOGIES), typology_concentration))
        x_train, y_train = _rows(int(sizes[b]), float(rates[b]), segment_mix, typology_mix, rng)
        test_mix = (1 - emerging_share) * typology_mix + emerging_share / len(TYPOLOGIES)
        x_test, y_test = _rows(test_rows_per_branch, float(rates[b]), segment_mix, test_mix, rng)
        branches.append(
            BranchData(
                name=f"branch-{b + 1:02d}",
                x_train=x_train,
                y_train=y_train,
                x_test=x_test,
                y_test=y_test,
                fraud_rate=float(rates[b]),
                segment_mix=tuple(float(v) for v in segment_mix),
                typology_mix=tuple(float(v) for v in typology_mix),
            )
        )
    return branches
