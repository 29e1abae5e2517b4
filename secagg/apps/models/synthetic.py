"""A reproducible world of bank branches whose cards transact over time, with rare fraud.

Why synthetic: no bank can ship its transactions, and the public card-fraud
dataset (Time, V1..V28, Amount, Class) is PCA-anonymised and has no notion of a
branch or a card. This generator gives every branch a book of cards that behave
like people, and makes federation *necessary*: fraud comes in a handful of
typologies and each branch sees mostly one or two of them.

**Cards with histories.** Each branch has cards (the customers) with a
persistent profile drawn around their segment's: a usual amount, a usual hour, a
few usual merchant categories and channels, a home radius, a usual daily rate of
transactions, and whether the holder takes trips abroad (of 2 to 7 days, to a
usual destination). A card transacts as a Poisson process over a timeline of a
few weeks (about ``transactions_per_card`` transactions each), so one card has
several rows, and a test row's history includes the card's training rows. The
behavioural features are what a bank computes in real time from the card's own
earlier transactions (all of them: labels arrive later), shrunk towards the
segment's defaults while the history is short: how far the amount is from the
card's usual, how far the hour is from its usual hour, whether the merchant
category or channel is new for this card, how far from home against its usual
distance, how many transactions it made in the last 24 hours, how long since its
previous one. Fraud is thus a deviation from *this card's* behaviour, not a
value that is suspicious for everyone: €400 online at 2 am is normal for some
cards.

**Fraud.** A compromised card makes a short burst (1 to 5 transactions) of one
typology, each deviating from the card's behaviour its own way and overlapping
legitimate behaviour on purpose: card testing (tiny online payments minutes
apart), account takeover (large online purchases of resaleable goods at night),
ATM skimming (a cloned card empties the account at ATMs away from home), travel
fraud (a card used abroad for travel and luxury) and a lost card (contactless
taps at small amounts until it is blocked). A branch's fraud rate (share of
transactions) is log-uniform in ``fraud_rate_range``, 0.05 % to 0.3 % by default
as in real card data. Every branch gets at least 2 fraud transactions in its
training period and 2 in its test period: a floor that only binds on small data
(at 0.05 % a period needs 4 000 rows to expect 2 frauds), so that tiny
configurations can still score every branch.

**Time, drift and an out-of-time split.** Each branch's training rows are its
earlier period and its test rows the later one (every test row is later than
every training row). Between the two the world drifts: the legitimate online and
contactless share rises, amounts inflate a little, and the fraud mix moves: an
``emerging_share`` of each branch's test fraud follows the whole network's
typology mix (fraud rings move from branch to branch, so tomorrow's fraud
includes patterns this branch has not seen but others have).

**Seeds draw different worlds.** The seed jitters every segment's and
typology's parameters, the branch size law (Zipf exponent), how concentrated the
branches' typology mixes are, which typologies are common in the network, and
the strength of the drift; a model trained on another seed's world is a useful
but imperfect prior.

**Worlds.** ``standard`` is the above. ``hard`` holds one typology out: exactly
one branch sees it in its training period and none of the others does, but it
appears in every branch's test period, a quarter of its test fraud (an emerging
ring moving across the network), and the drift is twice as strong.
For one seed both worlds share the segment and typology profiles and the branch
sizes.

``many`` is the standard world's behaviour cut into many small participants: the
merchants of a card issuer, the ATMs or the branches of a national network, each
holding a few hundred transactions (``num_branches`` of about 1 000, with
``total_train_rows`` about 300 per participant). Client-level DP needs such a
world: its noise on the mean update shrinks as 1 / (q * N), so 8 branches drown in
it. Sizes are log-normal around the mean (sd 0.5 in log space, at least 100
training rows: no participant is a large bank) instead of the Zipf law, and a
participant's fraud count is the plain binomial draw of its rate, with no floor of
2: at 0.05 % to 0.3 % of a few hundred rows most participants have no fraud at all,
as in reality, and a floor would multiply the network's fraud rate several times.
The only floor is the network's: its pooled training period and its pooled test
period hold at least 2 frauds each (it binds only on tiny configurations). A
participant without a test fraud has no AUPRC of its own; the evaluation pools all
test sets. For one seed it shares the standard world's segment and typology profiles.

Not modelled: label delay, blocking and reissuing a compromised card (it keeps
transacting), merchants as entities, and fraud rings reusing devices or accounts.

Features (all numeric, ready for a model once standardised):

* ``log_amount``: log(1 + amount in EUR)
* ``amount_vs_usual``: ``log_amount`` minus the card's usual (its earlier mean)
* ``hour_sin``, ``hour_cos``: time of day on the circle
* ``hour_gap``: circular distance from the card's usual hour, in half-days (0 to 1)
* ``mcc_*``: merchant category, one-hot (8 categories; ``cash`` is the ATM's)
* ``channel_*``: chip, contactless, online, atm, one-hot
* ``new_mcc``, ``new_channel``: 1 when the card had no earlier transaction in
  this merchant category (channel)
* ``log_distance``: log(1 + km from the card's home)
* ``distance_vs_usual``: ``log_distance`` minus the card's usual
* ``count_24h``: the card's transactions in the previous 24 hours
* ``log_gap_hours``: log(1 + hours since the card's previous transaction)
  (the segment's typical gap for a card's first)
* ``log_history``: log(1 + the card's earlier transactions)
* ``is_foreign``: card used abroad
* ``segment_*``: the card's segment as the bank knows it, one-hot

Synthetic data is not a secret, so numpy's seeded PCG64 generator drives it (the
engine's keys, masks and noise never come from it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from secagg.errors import ConfigurationError

MERCHANT_CATEGORIES = (
    "grocery", "fuel", "restaurant", "travel", "electronics", "online_retail", "cash", "luxury",
)  # fmt: skip
CHANNELS = ("chip", "contactless", "online", "atm")
SEGMENTS = ("students", "families", "retirees", "business", "travellers")
TYPOLOGIES = ("card_testing", "account_takeover", "atm_skimming", "travel_fraud", "lost_card")
WORLDS = ("standard", "hard", "many")
FEATURE_NAMES = (
    "log_amount", "amount_vs_usual", "hour_sin", "hour_cos", "hour_gap",
    *(f"mcc_{m}" for m in MERCHANT_CATEGORIES),
    *(f"channel_{c}" for c in CHANNELS),
    "new_mcc", "new_channel", "log_distance", "distance_vs_usual",
    "count_24h", "log_gap_hours", "log_history", "is_foreign",
    *(f"segment_{s}" for s in SEGMENTS),
)  # fmt: skip

_CASH = MERCHANT_CATEGORIES.index("cash")
_ATM = CHANNELS.index("atm")
_ONLINE = CHANNELS.index("online")
_CONTACTLESS = CHANNELS.index("contactless")
_PRIOR_WEIGHT = 3.0  # pseudo-transactions of the segment's defaults in a card's usual
_MAX_BURST = 5
_HELD_OUT_SHARE = 0.25  # hard world: share of every test period's fraud of the held-out typology
_MANY_SIZE_SIGMA = 0.5  # many world: sd of the participants' log training sizes
_MIN_ROWS = 100  # every participant's fewest training rows (generate_branches refuses fewer)
_NETWORK_MIN_FRAUDS = 2  # many world: the fewest frauds of the pooled training (test) period


@dataclass(frozen=True)
class _Segment:
    """The legitimate behaviour of one customer segment, around which cards are drawn."""

    amount_mu: float  # mean of the cards' usual log-amount (EUR)
    amount_sigma: float  # spread of one card's amounts around its usual
    hour_mu: float  # mean of the cards' usual hour
    hour_kappa: float  # von Mises concentration of one card's hours around its usual
    mcc: tuple[float, ...]  # weights over MERCHANT_CATEGORIES (cash is set by the channel)
    channel: tuple[float, ...]  # weights over CHANNELS
    radius_mu: float  # mean of the cards' usual log-km from home
    rate: float  # mean of the cards' transactions per day
    traveller: float  # share of cards whose holder travels abroad
    abroad: float  # share of such a card's days spent abroad, on trips of 2 to 7 days


@dataclass(frozen=True)
class _Typology:
    """How one fraud typology deviates from the compromised card's behaviour.

    Amount, hour and distance are ``relative * card's usual + offset + noise``: a
    relative typology scales with the card (a takeover spends a multiple of what
    this card spends), an absolute one does not (card testing is always tiny).
    """

    amount_relative: float
    amount_mu: float
    amount_sigma: float
    hour_relative: float
    hour_mu: float
    hour_kappa: float
    mcc: tuple[float, ...]
    channel: tuple[float, ...]
    distance_relative: float
    distance_mu: float
    distance_sigma: float
    foreign: float  # probability a transaction is abroad
    burst: float  # mean transactions per compromised card (1 to 5)
    gap_hours: float  # mean hours between the burst's transactions


#: legitimate behaviour of each segment (jittered per seed)
SEGMENT_PROFILES: dict[str, _Segment] = {
    "students": _Segment(3.0, 0.7, 15, 1.5, (3, 1, 4, 0.5, 1, 3, 0, 0.1), (2, 5, 4, 1),
                         1.0, 0.45, 0.10, 0.20),
    "families": _Segment(3.8, 0.7, 13, 2.0, (6, 3, 2, 0.5, 1, 2, 0, 0.2), (5, 4, 2, 1),
                         1.5, 0.4, 0.10, 0.15),
    "retirees": _Segment(3.4, 0.6, 11, 2.5, (6, 2, 2, 0.5, 0.3, 0.5, 0, 0.2), (7, 2, 0.5, 2),
                         1.0, 0.2, 0.05, 0.15),
    "business": _Segment(4.6, 0.8, 12, 2.0, (1, 3, 4, 3, 2, 2, 0, 1), (4, 2, 4, 0.5),
                         2.5, 0.6, 0.30, 0.15),
    "travellers": _Segment(4.2, 0.8, 14, 1.2, (1, 2, 3, 5, 1, 2, 0, 1), (4, 3, 3, 1),
                           3.0, 0.4, 0.60, 0.25),
}  # fmt: skip

#: how each fraud typology deviates from a card's behaviour (jittered per seed)
TYPOLOGY_PROFILES: dict[str, _Typology] = {
    # tiny online payments minutes apart, to see whether a stolen number works
    "card_testing": _Typology(0.0, 0.8, 0.4, 0.0, 3, 0.8, (0.2, 0.1, 0.2, 0.1, 1, 6, 0, 0.1),
                              (0.1, 0.1, 8, 0), 0.0, 4.5, 1.5, 0.30, 4.5, 0.05),
    # a taken-over online account buys resaleable goods, at night, well above usual
    "account_takeover": _Typology(1.0, 1.8, 0.5, 0.0, 2, 1.2, (0.1, 0.1, 0.1, 1, 6, 3, 0, 3),
                                  (0.2, 0.1, 8, 0), 0.0, 4.0, 1.5, 0.15, 1.8, 2.0),
    # a cloned card empties the account at ATMs away from home, at night
    "atm_skimming": _Typology(0.0, 5.5, 0.3, 0.0, 1, 1.0, (0, 0, 0, 0, 0, 0, 1, 0),
                              (0, 0, 0, 1), 1.0, 2.5, 1.0, 0.40, 2.5, 0.5),
    # a compromised card used abroad for travel and luxury, a time zone away
    "travel_fraud": _Typology(1.0, 0.8, 0.8, 1.0, 7, 0.6, (0.2, 0.2, 1, 4, 1, 0.5, 0, 4),
                              (3, 1, 3, 0.3), 0.0, 6.8, 0.8, 0.85, 2.2, 3.0),
    # a lost card tapped near home for small amounts until it is blocked
    "lost_card": _Typology(0.0, 3.3, 0.3, 1.0, 6, 2.0, (3, 4, 4, 0, 0.5, 0, 0, 0.3),
                           (0.3, 8, 0, 0), 1.0, 1.5, 0.7, 0.03, 4.0, 0.3),
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
    typology_mix: tuple[float, ...] = ()  # training-period weights over TYPOLOGIES (synthetic)
    #: the customer (synthetic: card) id of each training row, or None for loaded data
    #: without a customer column; a customer has several rows
    customers_train: np.ndarray | None = None
    #: the same for each test row: the unit the evaluation's intervals resample (a card's
    #: rows, its burst of frauds above all, are not independent draws)
    customers_test: np.ndarray | None = None
    #: Gaussian releases of these training rows made before training, as accountant
    #: entries (noise multiplier, sample rate, steps): the feature statistics
    prior_releases: tuple[tuple[float, float, int], ...] = ()
    #: the EUR amount of each test row (synthetic data), for the share of fraud amount caught
    amount_test: np.ndarray | None = None
    #: int8 per test row: -1 legitimate, else the index into TYPOLOGIES (synthetic data)
    typology_test: np.ndarray | None = None
    #: the same per training row (synthetic data; for analysis: a branch only learns labels)
    typology_train: np.ndarray | None = None
    #: the time of each row in days since the start of the timeline (float64; its
    #: integer part is the calendar day); rows are in time order (synthetic data)
    day_train: np.ndarray | None = None
    day_test: np.ndarray | None = None

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
                TYPOLOGIES[i]
                for i in np.argsort(self.typology_mix)[::-1][:2]
                if self.typology_mix[i] > 0
            ]
        return out


# --- the world a seed draws ----------------------------------------------------------


@dataclass(frozen=True)
class _World:
    segments: tuple[_Segment, ...]
    typologies: tuple[_Typology, ...]
    zipf: float  # branch training sizes ~ 1 / rank ** zipf
    typology_base: np.ndarray  # how common each typology is in the network
    typology_concentration: float  # total Dirichlet mass of a branch's typology mix
    digital_drift: float  # relative rise of the online and contactless weights in the test period
    inflation: float  # log-amount added in the test period
    emerging_share: float
    held_out: int | None  # hard world: the typology only one branch trains on
    holder: int | None  # ... and that branch


def _jitter_weights(
    weights: tuple[float, ...], sigma: float, rng: np.random.Generator
) -> tuple[float, ...]:
    w = np.asarray(weights, dtype=np.float64) * rng.lognormal(0.0, sigma, len(weights))
    return tuple(float(v) for v in w)


def _draw_world(
    num_branches: int,
    world: str,
    typology_concentration: float,
    emerging_share: float,
    rng: np.random.Generator,
) -> _World:
    segments = tuple(
        dataclasses.replace(
            s,
            amount_mu=s.amount_mu + rng.normal(0, 0.3),
            hour_mu=s.hour_mu + rng.normal(0, 1.5),
            mcc=_jitter_weights(s.mcc, 0.5, rng),
            channel=_jitter_weights(s.channel, 0.4, rng),
            radius_mu=s.radius_mu + rng.normal(0, 0.3),
            rate=s.rate * rng.lognormal(0, 0.3),
            traveller=float(np.clip(s.traveller * rng.lognormal(0, 0.3), 0.0, 0.95)),
        )
        for s in SEGMENT_PROFILES.values()
    )
    typologies = tuple(
        dataclasses.replace(
            t,
            amount_mu=t.amount_mu + rng.normal(0, 0.6),
            amount_sigma=t.amount_sigma * rng.lognormal(0, 0.2),
            hour_mu=t.hour_mu + rng.normal(0, 4.0),
            mcc=_jitter_weights(t.mcc, 0.8, rng),
            channel=_jitter_weights(t.channel, 0.9, rng),
            distance_mu=t.distance_mu + rng.normal(0, 1.0),
            foreign=float(np.clip(t.foreign + rng.normal(0, 0.1), 0.01, 0.95)),
            burst=float(np.clip(t.burst * rng.lognormal(0, 0.3), 1.0, _MAX_BURST)),
            gap_hours=t.gap_hours * rng.lognormal(0, 0.5),
        )
        for t in TYPOLOGY_PROFILES.values()
    )
    hard = world == "hard"
    return _World(
        segments=segments,
        typologies=typologies,
        zipf=float(rng.uniform(0.5, 1.2)),
        typology_base=rng.dirichlet(np.full(len(TYPOLOGIES), 1.5)),
        typology_concentration=typology_concentration * len(TYPOLOGIES) * rng.lognormal(0, 0.4),
        digital_drift=float(rng.uniform(0.2, 0.6)) * (2.0 if hard else 1.0),
        inflation=float(rng.uniform(0.02, 0.08)) * (2.0 if hard else 1.0),
        emerging_share=emerging_share,
        held_out=int(rng.integers(len(TYPOLOGIES))) if hard else None,
        holder=int(rng.integers(num_branches)) if hard else None,
    )


# --- one branch ------------------------------------------------------------------


@dataclass(frozen=True)
class _Cards:
    segment: np.ndarray  # int
    amount: np.ndarray  # usual log-amount
    amount_sigma: np.ndarray
    hour: np.ndarray  # usual hour
    hour_kappa: np.ndarray
    mcc_cum: np.ndarray  # (cards, categories) cumulative probabilities (no cash)
    channel_p: np.ndarray  # (cards, channels) probabilities
    radius: np.ndarray  # usual log-km from home
    rate: np.ndarray  # transactions per day
    trip_days: np.ndarray  # length of the holder's trips abroad (0: stays home)
    trip_every: np.ndarray  # days from one trip's start to the next
    trip_phase: np.ndarray  # days into the cycle at time 0
    trip_km: np.ndarray  # log-km of the usual destination


def _draw_cards(
    count: int, world: _World, segment_mix: np.ndarray, rng: np.random.Generator
) -> _Cards:
    seg = rng.choice(len(SEGMENTS), count, p=segment_mix)
    field = {
        f.name: np.array([getattr(s, f.name) for s in world.segments])
        for f in dataclasses.fields(_Segment)
    }
    mcc = np.empty((count, len(MERCHANT_CATEGORIES)))
    channel = np.empty((count, len(CHANNELS)))
    for i, s in enumerate(world.segments):  # a card's usual categories and channels
        rows = seg == i
        w = np.asarray(s.mcc, dtype=np.float64)
        w[_CASH] = 0.0
        alpha = np.maximum(3.0 * w / w.sum(), 1e-3)
        mcc[rows] = rng.dirichlet(alpha, int(rows.sum()))
        c = np.asarray(s.channel, dtype=np.float64)
        channel[rows] = rng.dirichlet(np.maximum(4.0 * c / c.sum(), 1e-3), int(rows.sum()))
    mcc[:, _CASH] = 0.0
    mcc /= mcc.sum(axis=1, keepdims=True)
    travels = rng.random(count) < field["traveller"][seg]
    trip_days = np.where(travels, rng.uniform(2.0, 7.0, count), 0.0)
    share = np.clip(field["abroad"][seg] * rng.lognormal(0, 0.4, count), 0.02, 0.8)
    trip_every = np.where(travels, trip_days / share, 1.0)
    return _Cards(
        segment=seg,
        amount=field["amount_mu"][seg] + rng.normal(0, 0.5, count),
        amount_sigma=field["amount_sigma"][seg] * rng.lognormal(0, 0.15, count),
        hour=field["hour_mu"][seg] + rng.normal(0, 2.0, count),
        hour_kappa=field["hour_kappa"][seg] * rng.lognormal(0, 0.3, count),
        mcc_cum=np.cumsum(mcc, axis=1),
        channel_p=channel,
        radius=field["radius_mu"][seg] + rng.normal(0, 0.5, count),
        rate=field["rate"][seg] * rng.lognormal(0, 0.5, count),
        trip_days=trip_days,
        trip_every=trip_every,
        trip_phase=rng.random(count) * trip_every,
        trip_km=rng.normal(6.5, 0.8, count),
    )


def _categorical(cum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of cumulative probabilities ``cum`` (rows, categories)."""
    u = rng.random(cum.shape[0]) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


@dataclass
class _Rows:
    card: np.ndarray
    time: np.ndarray  # days
    log_amount: np.ndarray  # log EUR
    hour: np.ndarray
    mcc: np.ndarray
    channel: np.ndarray
    log_km: np.ndarray
    foreign: np.ndarray
    typology: np.ndarray  # -1 legitimate

    @staticmethod
    def concat(parts: list[_Rows]) -> _Rows:
        return _Rows(
            *(
                np.concatenate([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(_Rows)
            )
        )


def _merchant(channel: np.ndarray, mcc_cum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A merchant category per row: cash exactly at ATMs, else from the row's weights."""
    mcc = _categorical(mcc_cum, rng)
    return np.where(channel == _ATM, _CASH, mcc)


def _legit(
    count: int, start: float, length: float, cards: _Cards, world: _World, drift: bool,
    rng: np.random.Generator,
) -> _Rows:  # fmt: skip
    card = rng.choice(cards.rate.size, count, p=cards.rate / cards.rate.sum())
    time = start + length * rng.random(count)
    channel_p = cards.channel_p[card]
    if drift:  # online and contactless spending keeps growing
        channel_p = channel_p.copy()
        channel_p[:, [_ONLINE, _CONTACTLESS]] *= 1.0 + world.digital_drift
    channel = _categorical(np.cumsum(channel_p, axis=1), rng)
    # abroad during the holder's trips, at the card's usual destination
    abroad = (time + cards.trip_phase[card]) % cards.trip_every[card] < cards.trip_days[card]
    log_km = np.where(abroad, cards.trip_km[card], cards.radius[card]) + rng.normal(0, 0.8, count)
    return _Rows(
        card=card,
        time=time,
        log_amount=cards.amount[card]
        + cards.amount_sigma[card] * rng.normal(0, 1, count)
        + (world.inflation if drift else 0.0),
        hour=cards.hour[card] + rng.vonmises(0.0, cards.hour_kappa[card]) * 24 / (2 * math.pi),
        mcc=_merchant(channel, cards.mcc_cum[card], rng),
        channel=channel,
        log_km=log_km,
        foreign=abroad,
        typology=np.full(count, -1, dtype=np.int8),
    )


def _fraud(
    count: int, start: float, length: float, mix: np.ndarray, force: int | None, cards: _Cards,
    world: _World, drift: bool, rng: np.random.Generator,
) -> _Rows:  # fmt: skip
    """``count`` fraud transactions in bursts on compromised cards; ``force``: a
    typology at least one burst must have (ignored with ``count`` 0: none at all, the
    many world's usual participant)."""
    if count == 0:
        return _no_rows()
    typ = rng.choice(len(TYPOLOGIES), count, p=mix)
    size = np.minimum(
        1 + rng.poisson(np.array([t.burst for t in world.typologies])[typ] - 1.0), _MAX_BURST
    )
    ends = np.cumsum(size)
    keep = int(np.searchsorted(ends, count)) + 1  # bursts until count rows are reached
    if force is not None and not np.any(typ[:keep] == force):
        typ[0] = force  # the first burst is kept whatever its size
    typ, size = typ[:keep], size[:keep]
    size[-1] -= int(ends[keep - 1]) - count
    p = world.typologies
    victims = rng.integers(cards.rate.size, size=keep)
    episode = np.repeat(np.arange(keep), size)
    first = np.r_[0, np.cumsum(size)[:-1]]
    rank = np.arange(count) - first[episode]
    t = typ[episode]
    card = victims[episode]
    gap = rng.exponential(np.array([x.gap_hours for x in p])[t] / 24.0)
    gap[rank == 0] = 0.0
    offset = np.cumsum(gap)
    offset -= offset[first][episode]  # time since the burst's first transaction
    span = np.zeros(keep)
    np.maximum.at(span, episode, offset)
    begin = start + rng.random(keep) * np.maximum(length - span, 0.0) * 0.999
    time = np.minimum(begin[episode] + offset, start + length * (1 - 1e-9))

    def arr(name: str) -> np.ndarray:
        return np.array([getattr(x, name) for x in p])[t]

    channel = _categorical(np.cumsum(np.array([x.channel for x in p]), axis=1)[t], rng)
    mcc_w = np.array([x.mcc for x in p], dtype=np.float64)
    mcc_w[:, _CASH] = np.where(mcc_w.sum(axis=1) == mcc_w[:, _CASH], 1.0, 0.0)
    foreign = rng.random(count) < arr("foreign")
    log_km = arr("distance_relative") * cards.radius[card] + rng.normal(
        arr("distance_mu"), arr("distance_sigma")
    )
    log_km = np.where(foreign, np.maximum(log_km, rng.normal(6.8, 0.8, count)), log_km)
    return _Rows(
        card=card,
        time=time,
        log_amount=arr("amount_relative") * cards.amount[card]
        + rng.normal(arr("amount_mu"), arr("amount_sigma"))
        + (world.inflation if drift else 0.0),
        hour=arr("hour_relative") * cards.hour[card]
        + arr("hour_mu")
        + rng.vonmises(0.0, arr("hour_kappa")) * 24 / (2 * math.pi),
        mcc=_merchant(channel, np.cumsum(mcc_w, axis=1)[t], rng),
        channel=channel,
        log_km=log_km,
        foreign=foreign,
        typology=t.astype(np.int8),
    )


def _no_rows() -> _Rows:
    """No transactions, with the dtypes of a draw (concatenated with the others)."""
    return _Rows(
        card=np.zeros(0, dtype=np.int64),
        time=np.zeros(0),
        log_amount=np.zeros(0),
        hour=np.zeros(0),
        mcc=np.zeros(0, dtype=np.int64),
        channel=np.zeros(0, dtype=np.int64),
        log_km=np.zeros(0),
        foreign=np.zeros(0, dtype=bool),
        typology=np.zeros(0, dtype=np.int8),
    )


def _grouped_before(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per row of card-sorted data, the sum of ``values`` over the card's earlier rows."""
    total = np.cumsum(values, axis=0)
    return total - values - (total[start] - values[start])


def _features(rows: _Rows, cards: _Cards, world: _World) -> np.ndarray:
    """The feature matrix of ``rows`` sorted by (card, time), from each card's history."""
    n = rows.card.size
    idx = np.arange(n)
    new_card = np.r_[True, rows.card[1:] != rows.card[:-1]]
    start = np.maximum.accumulate(np.where(new_card, idx, 0))
    earlier = (idx - start).astype(np.float64)
    seg = cards.segment[rows.card]
    seg_amount = np.array([s.amount_mu for s in world.segments])[seg]
    seg_hour = np.array([s.hour_mu for s in world.segments])[seg]
    seg_radius = np.array([s.radius_mu for s in world.segments])[seg]
    seg_rate = np.array([s.rate for s in world.segments])[seg]
    k = _PRIOR_WEIGHT

    log_amount = np.log1p(np.exp(rows.log_amount))
    usual_amount = (k * np.log1p(np.exp(seg_amount)) + _grouped_before(log_amount, start)) / (
        k + earlier
    )
    hour = rows.hour % 24
    angle = 2 * math.pi * hour / 24
    circle = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    seg_angle = 2 * math.pi * seg_hour / 24
    prior = k * np.stack([np.sin(seg_angle), np.cos(seg_angle)], axis=1)
    usual = prior + _grouped_before(circle, start)
    usual_angle = np.arctan2(usual[:, 0], usual[:, 1])
    hour_gap = np.abs(np.angle(np.exp(1j * (angle - usual_angle)))) / math.pi
    log_distance = np.log1p(np.exp(rows.log_km))
    usual_distance = (k * np.log1p(np.exp(seg_radius)) + _grouped_before(log_distance, start)) / (
        k + earlier
    )
    # transactions of the card in the previous 24 h: rows are sorted by (card, time)
    width = float(rows.time.max()) + 2.0
    key = rows.card * width + rows.time
    count_24h = idx - np.searchsorted(key, key - 1.0, side="left")
    gap_days = np.where(new_card, 1.0 / seg_rate, rows.time - np.r_[rows.time[0], rows.time[:-1]])

    def first_in(category: np.ndarray) -> np.ndarray:
        order = np.lexsort((rows.time, category, rows.card))
        c, r = rows.card[order], category[order]
        first = np.r_[True, (c[1:] != c[:-1]) | (r[1:] != r[:-1])]
        out = np.empty(n)
        out[order] = first
        return out

    x = np.zeros((n, len(FEATURE_NAMES)))
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    x[:, col["log_amount"]] = log_amount
    x[:, col["amount_vs_usual"]] = log_amount - usual_amount
    x[:, col["hour_sin"]], x[:, col["hour_cos"]] = circle[:, 0], circle[:, 1]
    x[:, col["hour_gap"]] = hour_gap
    x[idx, col["mcc_grocery"] + rows.mcc] = 1.0
    x[idx, col["channel_chip"] + rows.channel] = 1.0
    x[:, col["new_mcc"]] = first_in(rows.mcc)
    x[:, col["new_channel"]] = first_in(rows.channel)
    x[:, col["log_distance"]] = log_distance
    x[:, col["distance_vs_usual"]] = log_distance - usual_distance
    x[:, col["count_24h"]] = count_24h
    x[:, col["log_gap_hours"]] = np.log1p(24.0 * gap_days)
    x[:, col["log_history"]] = np.log1p(earlier)
    x[:, col["is_foreign"]] = rows.foreign
    x[idx, col["segment_students"] + seg] = 1.0
    return x.astype(np.float32)


def _branch(
    name: str, train_rows: int, test_rows: int, rate: float, segment_mix: np.ndarray,
    train_mix: np.ndarray, test_mix: np.ndarray, force_train: int | None,
    force_test: int | None, transactions_per_card: float, world: _World,
    rng: np.random.Generator, frauds: tuple[int, int] | None = None,
) -> BranchData:  # fmt: skip
    """One branch's rows; ``frauds``: its (training, test) fraud counts drawn by the
    caller (the many world), else drawn here with a floor of 2 a period."""
    total = train_rows + test_rows
    cards = _draw_cards(max(2, math.ceil(total / transactions_per_card)), world, segment_mix, rng)
    days_per_row = 1.0 / float(cards.rate.sum())
    train_days, test_days = train_rows * days_per_row, test_rows * days_per_row
    if frauds is None:
        # at least 2 frauds a period: binds only where rate * rows is below about 2
        train_frauds = max(2, int(rng.binomial(train_rows, rate)))
        test_frauds = max(2, int(rng.binomial(test_rows, rate)))
    else:
        train_frauds, test_frauds = frauds
    rows = _Rows.concat(
        [
            _legit(train_rows - train_frauds, 0.0, train_days, cards, world, False, rng),
            _fraud(train_frauds, 0.0, train_days, train_mix, force_train, cards, world, False, rng),
            _legit(test_rows - test_frauds, train_days, test_days, cards, world, True, rng),
            _fraud(
                test_frauds, train_days, test_days, test_mix, force_test, cards, world, True, rng
            ),
        ]
    )
    order = np.lexsort((rows.time, rows.card))
    rows = _Rows(*(getattr(rows, f.name)[order] for f in dataclasses.fields(_Rows)))
    x = _features(rows, cards, world)
    by_time = np.argsort(rows.time, kind="stable")
    train, test = by_time[:train_rows], by_time[train_rows:]
    label = (rows.typology >= 0).astype(np.int8)
    return BranchData(
        name=name,
        x_train=x[train],
        y_train=label[train],
        x_test=x[test],
        y_test=label[test],
        fraud_rate=rate,
        segment_mix=tuple(float(v) for v in segment_mix),
        typology_mix=tuple(float(v) for v in train_mix),
        customers_train=rows.card[train].astype(np.int64),
        customers_test=rows.card[test].astype(np.int64),
        amount_test=np.exp(rows.log_amount[test]),
        typology_test=rows.typology[test],
        typology_train=rows.typology[train],
        day_train=rows.time[train],
        day_test=rows.time[test],
    )


def generate_branches(
    num_branches: int = 8,
    *,
    seed: int = 0,
    total_train_rows: int = 120_000,
    test_rows_per_branch: int = 20_000,
    world: str = "standard",
    fraud_rate_range: tuple[float, float] = (0.0005, 0.003),
    typology_concentration: float = 0.25,
    segment_concentration: float = 0.8,
    emerging_share: float = 0.3,
    transactions_per_card: float = 10.0,
) -> list[BranchData]:
    """Per-branch data, the same for the same arguments (see the module docstring).

    Branch training sizes follow a Zipf-like law (the first branch is the largest,
    the exponent drawn per seed in [0.5, 1.2]) summing to about
    ``total_train_rows``; every branch's test period has ``test_rows_per_branch``
    rows. A branch has about ``(its train + test rows) / transactions_per_card``
    cards. Fraud rates are log-uniform in ``fraud_rate_range`` (the realised
    counts are at least 2 per period). Segment and typology mixes are Dirichlet
    draws whose concentrations (per category; the typology one jittered per seed
    and centred on the network's common typologies) control how non-IID the
    branches are. ``world`` is one of :data:`WORLDS`.
    """
    if world not in WORLDS:
        raise ConfigurationError(f"world must be one of {WORLDS}, not {world!r}")
    for name, value in (
        ("num_branches", num_branches),
        ("test_rows_per_branch", test_rows_per_branch),
        ("seed", seed),
    ):  # numpy's errors for 2.5 branches or seed -1 name nothing the caller passed
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigurationError(f"{name} must be an integer, not {value!r}")
    if seed < 0:
        raise ConfigurationError(f"seed must be an integer >= 0, not {seed!r}")
    if not 0 <= emerging_share <= 1:
        raise ConfigurationError("emerging_share must lie in [0, 1]")
    if num_branches < 2:
        raise ConfigurationError("a federation needs at least 2 branches")
    low, high = fraud_rate_range
    if not 0 < low <= high < 0.5:
        raise ConfigurationError("fraud_rate_range must satisfy 0 < low <= high < 0.5")
    if total_train_rows < 100 * num_branches:
        raise ConfigurationError("total_train_rows must give each branch at least 100 rows")
    if test_rows_per_branch < 50:
        raise ConfigurationError("test_rows_per_branch must be at least 50")
    if not all(0 < c < math.inf for c in (typology_concentration, segment_concentration)):
        raise ConfigurationError("Dirichlet concentrations must be positive and finite")
    if not transactions_per_card >= 1:
        raise ConfigurationError("transactions_per_card must be at least 1")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC466]))
    w = _draw_world(num_branches, world, typology_concentration, emerging_share, rng)
    # the many world's own draws come from their own stream: the shared ones (profiles,
    # rates, mixes) stay those of the standard world of the same seed
    many = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC466, 1]))
    if world == "many":
        weights = many.lognormal(0.0, _MANY_SIZE_SIGMA, num_branches)
    else:
        weights = 1.0 / np.arange(1, num_branches + 1) ** w.zipf
    sizes = np.maximum(_MIN_ROWS, np.round(total_train_rows * weights / weights.sum())).astype(int)
    rates = np.exp(rng.uniform(math.log(low), math.log(high), num_branches))
    segment_mixes = rng.dirichlet(np.full(len(SEGMENTS), segment_concentration), num_branches)
    mixes = rng.dirichlet(
        np.maximum(w.typology_concentration * w.typology_base, 1e-3), num_branches
    )
    h = w.held_out
    if h is not None:  # only the holder trains on the held-out typology
        mixes[:, h] = 0.0
        empty = mixes.sum(axis=1) < 1e-9  # a draw all of the held-out typology
        mixes[empty] = np.where(np.arange(len(TYPOLOGIES)) == h, 0.0, w.typology_base)
        mixes /= mixes.sum(axis=1, keepdims=True)
        mixes[w.holder] *= 0.5  # half of the holder's training fraud
        mixes[w.holder, h] = 0.5
    # tomorrow's fraud: the branch's own typologies and an emerging share of the
    # network's (fraud rings move from branch to branch), weighted by fraud volume
    volume = rates * sizes
    network = volume @ mixes / volume.sum()
    test_mixes = (1 - w.emerging_share) * mixes + w.emerging_share * network
    if h is not None:  # the emerging ring reaches every branch
        test_mixes = (1 - _HELD_OUT_SHARE) * test_mixes
        test_mixes[:, h] += _HELD_OUT_SHARE
    frauds = _network_frauds(sizes, test_rows_per_branch, rates, many) if world == "many" else None
    return [
        _branch(
            f"branch-{b + 1:02d}",
            int(sizes[b]),
            test_rows_per_branch,
            float(rates[b]),
            segment_mixes[b],
            mixes[b],
            test_mixes[b],
            h if b == w.holder else None,
            h,
            transactions_per_card,
            w,
            rng,
            None if frauds is None else (int(frauds[0][b]), int(frauds[1][b])),
        )
        for b in range(num_branches)
    ]


def _network_frauds(
    sizes: np.ndarray, test_rows: int, rates: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The many world's (training, test) fraud counts per participant: binomial at its
    rate, no floor per participant (most of them have none, as in reality), and at
    least :data:`_NETWORK_MIN_FRAUDS` in each pooled period, the missing ones given to
    participants drawn in proportion to their rows (binds only on tiny networks; a
    network without a fraud could neither learn nor be scored)."""
    counts = []
    for rows in (sizes, np.full(sizes.size, test_rows)):
        drawn = rng.binomial(rows, rates)
        while drawn.sum() < _NETWORK_MIN_FRAUDS:
            b = int(rng.choice(rows.size, p=rows / rows.sum()))
            if drawn[b] < rows[b]:
                drawn[b] += 1
        counts.append(drawn)
    return counts[0], counts[1]
