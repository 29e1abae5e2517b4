"""Accountants behind one interface, with one vocabulary (Opacus's ``IAccountant`` shape).

Every epsilon the engine prints, signs or re-checks comes from an
:class:`Accountant`: one object per guarantee, ``step`` once per released round
with what really ran, ``epsilon()`` the spend so far at its fixed ``delta``.
Three mechanisms, three implementations:

* :class:`PerClientAccountant`: client-level DP-FedAvg as the server runs it, each
  client charged for the rounds it was in (adaptive-clipping rounds included), the
  claim that of the most-charged client; no amplification by sampling is credited,
  because the cohort is not secret (its members see each other);
* :class:`GaussianAccountant`: the Poisson-subsampled Gaussian (the plan's figure
  where the sampling would stay secret, and ledgers written before per-client
  charging), through Google's dp_accounting, composed incrementally (the closed
  form when every client is sampled);
* :class:`DiscreteGaussianAccountant`: the distributed discrete Gaussian, each round
  charged at the honest noise shares really in the sum, composed at the worst
  per-round bound of the counts the rounds had (Kairouz, Liu and Steinke 2021);
* :class:`RecordLevelAccountant`: a branch's DP-SGD history, through Opacus's
  accountant (what the branch itself ran).

:data:`ACCOUNTANTS` is the one vocabulary of accountant names, each with the
mechanisms it can account; configs, the ledger and ``secagg audit verify`` use
these names and nothing else. The server's mechanisms
(:mod:`secagg.dp.release`) and the ledger's replay (:mod:`secagg.ledger.replay`)
hold the same classes, so the auditor recomputes with the code that claimed.

The central and distributed accountants cost constant time per round (reliability
review D7: the server asks after every round, the audit after every row); a
branch's DP-SGD history is replayed whole, as Opacus does.
"""

from __future__ import annotations

import abc
import functools
import math
import numbers
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from secagg.dp._checks import _delta
from secagg.errors import ConfigurationError

#: name -> (what it is, the mechanisms it accounts)
ACCOUNTANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pld": ("privacy loss distributions (dp_accounting), tight", ("central",)),
    "rdp": ("Renyi DP, a looser upper bound", ("central", "dpsgd")),
    "prv": ("privacy random variables (Opacus), tight", ("dpsgd",)),
    "ddg-kls21": ("the distributed discrete Gaussian's RDP bound", ("distributed",)),
}


def check_accountant(name: str, mechanism: str) -> str:
    """``name`` if it accounts ``mechanism``; otherwise a ConfigurationError naming both."""
    if name not in ACCOUNTANTS or mechanism not in ACCOUNTANTS[name][1]:
        fits = [n for n, (_, mechanisms) in ACCOUNTANTS.items() if mechanism in mechanisms]
        raise ConfigurationError(
            f"accountant {name!r} does not account the {mechanism} mechanism; choose one of {fits}"
        )
    return name


class Accountant(abc.ABC):
    """One guarantee's running accountant: ``step`` per released round, then ``epsilon``."""

    name: str
    unit: str
    delta: float

    @property
    @abc.abstractmethod
    def rounds(self) -> int:
        """Rounds (or DP-SGD runs) charged so far."""

    @abc.abstractmethod
    def epsilon(self) -> float:
        """Epsilon spent so far at :attr:`delta` (0.0 before the first round)."""


class GaussianAccountant(Accountant):
    """Client-level DP-FedAvg: ``step(z, q)`` per round (``count_noise_stddev`` with
    adaptive clipping). A thin face on :class:`~secagg.dp.accounting.PrivacyAccountant`."""

    unit = "client"

    def __init__(self, delta: float, name: str = "pld") -> None:
        from secagg.dp.accounting import PrivacyAccountant  # dp_accounting: on first use

        self.name = check_accountant(name, "central")
        self.delta = delta
        self.inner = PrivacyAccountant(delta, name, unit="client")
        self._unbounded = False  # a round released without noise: no guarantee at all

    def step(
        self,
        noise_multiplier: float,
        sample_rate: float,
        *,
        count_noise_stddev: float | None = None,
    ) -> None:
        if noise_multiplier <= 0:
            self._unbounded = True
            return
        self.inner.step(noise_multiplier, sample_rate, count_noise_stddev=count_noise_stddev)

    @property
    def rounds(self) -> int:
        return self.inner.rounds

    def epsilon(self) -> float:
        return math.inf if self._unbounded else float(self.inner.epsilon())


#: ``dp.composition`` of a central ledger row charged to its participants only (each
#: client for its own rounds, the claim the most charged client's); rows without it
#: were charged to every client (or, before 2026-12-03, amplified by sampling)
PER_CLIENT = "per_client"


class PerClientAccountant(Accountant):
    """Central DP-FedAvg charged to each client for the rounds it was in.

    Why not the Poisson-subsampled Gaussian: amplification by sampling holds only
    while nobody can tell who was sampled, and here everyone can tell a lot. Each
    round's members see one another (the secure sum's key agreement), and the
    ledger publishes how many took part. Given the cohort, which does not depend on
    anyone's data, a round is a Gaussian release for its members and independent
    of everyone else's data. A client's loss is therefore the composition of the
    Gaussians of its own rounds. That holds whatever the adversary knows about the
    cohorts, and it is checkable from the ledger's identity hashes. Gaussians
    compose by adding precisions (1 / z^2; adaptive clipping's count release adds
    its own), so the state is one precision per client, plus one charged to every
    client (rounds recorded without their members). The claim is the epsilon of
    the largest total, through the named accountant: the exact Gaussian for
    ``pld``, the RDP bound for ``rdp``.

    Which rounds a client is in may depend on earlier rounds (it sits out once its
    next round would cross the budget, or is benched for missing rounds): stopping a
    client at a budget on its summed precision is an individual filter, sound for
    Gaussian DP under fully adaptive composition (Smith and Thakurta 2022; Koskela
    et al. 2022) and for RDP (Feldman and Zrnic 2021).
    """

    unit = "client"

    def __init__(self, delta: float, name: str = "pld") -> None:
        self.name = check_accountant(name, "central")
        self.delta = _delta(delta)  # refused here, not at the first epsilon
        self.everyone = 0.0  # precision charged to every client
        self.own: dict[str, float] = {}  # client -> precision of its own rounds
        self._rounds = 0
        self._unbounded = False  # a round released without noise: no guarantee at all
        self._epsilons: dict[float, float] = {}

    @staticmethod
    def precision(noise_multiplier: float, count_noise_stddev: float | None = None) -> float:
        """One round's precision: 1 / z^2, plus the adaptive count's (1/2 / sigma_b)^2 (a
        client reports ``1[unclipped] - 1/2``, so it moves the count by 1/2: multiplier
        ``2 sigma_b``); inf without noise."""
        from secagg.dp.accounting import DEFAULT_COUNT_SENSITIVITY

        # a number or nothing: NaN came back as a NaN precision (a claim of NaN), a str
        # as a TypeError
        _number("noise_multiplier", noise_multiplier)
        if count_noise_stddev is not None:
            _number("count_noise_stddev", count_noise_stddev)
        if noise_multiplier <= 0 or (count_noise_stddev is not None and count_noise_stddev <= 0):
            return math.inf
        try:
            total = 1.0 / float(noise_multiplier) ** 2
            if count_noise_stddev is not None:
                total += (DEFAULT_COUNT_SENSITIVITY / float(count_noise_stddev)) ** 2
        except ArithmeticError:  # noise too small to represent: no guarantee at all
            return math.inf
        return total

    def step(
        self,
        noise_multiplier: float,
        members: Iterable[str] | None = None,
        *,
        count_noise_stddev: float | None = None,
    ) -> None:
        """Charge one round to ``members`` (None: to every client)."""
        self.charge(self.precision(noise_multiplier, count_noise_stddev), members)

    def charge(self, precision: float, members: Iterable[str] | None = None) -> None:
        """Charge one round of ``precision`` (see :meth:`precision`) to ``members``.

        Checked before anything is counted: a negative precision lowered a client's
        total (an understated claim), NaN poisoned it for good, and a str of members
        was charged letter by letter."""
        if isinstance(precision, bool) or not isinstance(precision, numbers.Real):
            raise ConfigurationError(f"precision must be a number >= 0, not {precision!r}")
        if not precision >= 0:  # also NaN
            raise ConfigurationError(f"precision must be a number >= 0, not {precision!r}")
        if isinstance(members, str | bytes):
            raise ConfigurationError(
                f"members is a collection of client names, not one string {members!r}"
            )
        members = None if members is None else set(members)
        self._rounds += 1
        if math.isinf(precision):
            self._unbounded = True
            return
        if members is None:
            self.everyone += precision
            return
        for name in members:
            self.own[name] = self.own.get(name, 0.0) + precision

    @property
    def rounds(self) -> int:
        return self._rounds

    def most_charged(self) -> float:
        """The largest precision any client has been charged."""
        return self.everyone + max(self.own.values(), default=0.0)

    def epsilon_of(self, precision: float) -> float:
        """The epsilon of Gaussians composed to ``precision`` (0: nothing released)."""
        if self._unbounded or math.isinf(precision):
            return math.inf
        if precision <= 0:
            return 0.0
        found = self._epsilons.get(precision)
        if found is None:
            from secagg.dp.accounting import PrivacyAccountant  # dp_accounting: on first use

            single = PrivacyAccountant(self.delta, self.name, unit="client")
            single.step(precision**-0.5, 1.0)
            found = self._epsilons[precision] = float(single.epsilon())
            if len(self._epsilons) > 256:  # each round adds a few: keep the newest
                self._epsilons.pop(next(iter(self._epsilons)))
        return found

    def epsilon(self) -> float:
        return self.epsilon_of(self.most_charged())

    def client_epsilon(self, name: str, extra: float = 0.0) -> float:
        """One client's epsilon, with ``extra`` precision on top (a round to come)."""
        return self.epsilon_of(self.everyone + self.own.get(name, 0.0) + extra)

    def epsilon_after(self, precision: float, members: Iterable[str] | None) -> float:
        """The claim once one more round of ``precision`` is charged to ``members``
        (None: to every client); the accountant is not charged."""
        if members is None:
            return self.epsilon_of(self.most_charged() + precision)
        touched = max((self.own.get(name, 0.0) for name in members), default=None)
        if touched is None:
            return self.epsilon()
        return self.epsilon_of(max(self.most_charged(), self.everyone + touched + precision))


class DiscreteGaussianAccountant(Accountant):
    """The distributed discrete Gaussian: ``step(honest_shares)`` per round.

    Every round is charged, order by order, the largest per-round RDP of the honest
    share counts the rounds had (:func:`~secagg.dp.ddg_accounting.ddg_epsilon`), so
    the state is those distinct counts and the round count: :meth:`epsilon` costs
    about the same at round 1 000 as at round 1 (each count's curve is cached by the
    DDG analysis, and a federation's rounds have few distinct counts).

    Why not the fewest count alone (as before 2026-12-05): the bound is not monotone
    in the count (its ``tau`` term grows with it), so at a local std of 1 and a large
    model a round with more shares can cost more than one with fewer, and charging
    both at the fewest understated the pair. Where fewer shares cost more at every
    order (a local std of 2 or more) the figure is the fewest count's, as before."""

    name = "ddg-kls21"
    unit = "client"

    def __init__(self, mechanism: Any, *, sample_rate: float, delta: float) -> None:
        self.mechanism = mechanism  # a DistributedDiscreteGaussian
        self.sample_rate = sample_rate
        self.delta = delta
        self._shares: list[int] = []
        self._counts: set[int] = set()  # the distinct counts: what epsilon composes

    @property
    def honest_shares(self) -> list[int]:
        """The honest shares of every charged round, oldest first (a copy)."""
        return list(self._shares)

    @honest_shares.setter
    def honest_shares(self, shares: list[int]) -> None:
        self._shares, self._counts = [], set()
        for count in shares:
            self.step(count)

    def step(self, honest_shares: int) -> None:
        """Charge one round summed with ``honest_shares`` honest noise shares.

        A count is a whole number (a Python or NumPy integer) or a ConfigurationError,
        nothing charged: ``int()`` turned 3.5 into 3 and ``True`` into 1 (counts no
        round has), and NaN or infinity escaped as a plain ValueError/OverflowError.
        The counts come from the server's own rule or its stored rounds (a restart);
        the audit's replay checks a row's count before it charges it."""
        if isinstance(honest_shares, bool) or not isinstance(honest_shares, numbers.Integral):
            raise ConfigurationError(
                f"honest noise shares must be a whole number, not {honest_shares!r}"
            )
        if honest_shares < 0:
            raise ConfigurationError("honest noise shares cannot be negative")
        count = int(honest_shares)
        self._shares.append(count)
        self._counts.add(count)

    @property
    def rounds(self) -> int:
        return len(self._shares)

    def epsilon(self) -> float:
        if not self._counts:
            return 0.0
        return float(
            self.mechanism.epsilon(
                noise_contributors=sorted(self._counts),
                sample_rate=self.sample_rate,
                rounds=len(self._shares),
                delta=self.delta,
            )
        )


class RecordLevelAccountant(Accountant):
    """A branch's DP-SGD: its (noise multiplier, sample rate, steps) history, replayed
    through Opacus's accountant of the same name."""

    unit = "record"

    def __init__(
        self, name: str, delta: float, history: Sequence[tuple[float, float, int]] = ()
    ) -> None:
        self.name = check_accountant(name, "dpsgd")
        self.delta = _delta(delta)
        self.history = dpsgd_runs(history)

    def step(self, noise_multiplier: float, sample_rate: float, steps: int) -> None:
        """Charge one run; a run that cannot have happened is refused, nothing charged."""
        run = (noise_multiplier, sample_rate, steps)
        self.history.extend(dpsgd_runs([run], start=len(self.history)))

    @property
    def rounds(self) -> int:
        return len(self.history)

    def epsilon(self) -> float:
        if not self.history:
            return 0.0
        from secagg.dp.accounting import PrvCannotEvaluate

        try:
            return opacus_epsilon(self.name, self.history, self.delta)
        except PrvCannotEvaluate:
            # no figure PRV can stand behind: none that flatters the history either
            return math.inf


#: guards the one-time install of :func:`memoise_opacus_rdp`'s cache
_RDP_MEMO_LOCK = threading.Lock()
#: at most this many (q, z, orders) RDP curves (a ledger has a few per branch)
_RDP_MEMO_SIZE = 4096


def memoise_opacus_rdp() -> Any:
    """Memoise Opacus's RDP curve of the subsampled Gaussian in this process, once (later
    calls, from any thread, return the same cache); the cache, for its ``cache_info``.

    Why: Opacus's RDP accountant, and the PRV accountant's domain size, compute a run's
    RDP at each of 151 orders (a series each, in pure Python) and multiply it by the
    run's steps; the curve depends only on ``(q, z, orders)``, so a trainer asking its
    epsilon after every round, a calibration search and ``audit verify`` replaying
    every branch report of every row all ask for the same few curves again (a 2 000-row,
    8-branch RDP ledger: 98 s uncached, 14 s with this cache). The cache keeps Opacus's
    own one-step curve and multiplies it by the steps as Opacus does (times 1, then
    times ``steps``: the very floats), so every epsilon is bit for bit Opacus's; a curve
    it computes sums the fractional orders' series a block of terms at a time
    (:mod:`secagg.dp.opacus_rdp_series`: Opacus's floats, 3-4 times faster where the
    series is long, as at a large sample rate). Types
    are part of the key, of each order too (1 and 1.0, 1.5 and ``np.float32(1.5)``,
    ``2**600`` and ``2.0**600`` are equal but Opacus computes them differently), and
    arguments that cannot be hashed go to Opacus whole. Process-wide because Opacus
    looks the function up as a module attribute at each call (its RDP and PRV
    accountants alike); the one cache for the trainers (:mod:`secagg.dp.dpsgd`
    installs it at import), :func:`opacus_epsilon` and so the verifier."""
    from opacus.accountants.analysis import rdp

    from secagg.dp import opacus_rdp_series

    with _RDP_MEMO_LOCK:
        original = rdp.compute_rdp
        installed = getattr(original, "secagg_memo", None)
        if installed is not None:
            return installed

        @functools.lru_cache(maxsize=_RDP_MEMO_SIZE, typed=True)
        def one_step(q: Any, noise_multiplier: Any, orders: Any) -> Any:
            if isinstance(orders, float):
                return original(q=q, noise_multiplier=noise_multiplier, steps=1, orders=orders)
            # Opacus's floats, its fractional orders' series summed in blocks of terms
            return opacus_rdp_series.compute_rdp(
                original, q, noise_multiplier, [order for _, order in orders]
            )

        @functools.wraps(original)
        def compute_rdp(*, q: Any, noise_multiplier: Any, steps: Any, orders: Any) -> Any:
            if not isinstance(orders, float):  # Opacus's test for one order
                try:
                    orders = list(orders)  # an iterator is read once, here
                except TypeError:  # not a sequence of orders: Opacus's own refusal
                    return original(
                        q=q, noise_multiplier=noise_multiplier, steps=steps, orders=orders
                    )
            key = orders if isinstance(orders, float) else tuple((type(a), a) for a in orders)
            try:
                hash((q, noise_multiplier, key))
            except TypeError:  # something unhashable: nothing to key a cache on
                return original(q=q, noise_multiplier=noise_multiplier, steps=steps, orders=orders)
            return one_step(q, noise_multiplier, key) * steps

        compute_rdp.secagg_memo = one_step  # type: ignore[attr-defined]
        rdp.compute_rdp = compute_rdp
        return one_step


#: Opacus's PRV evaluates ``exp`` of the privacy loss over its domain ``[-L, L]`` (and a
#: few grid steps more): past ``log(float64 max)`` (709.78) that overflows, so a domain
#: must end this far below it (a grid step is under 0.01)
_PRV_LOSS_LIMIT = math.log(sys.float_info.max) - 1.0


def opacus_epsilon(
    name: str,
    history: Sequence[tuple[float, float, int]],
    delta: float,
    *,
    distinct: bool = True,
) -> float:
    """Epsilon of a DP-SGD ``history`` by Opacus's accountant ``name`` at ``delta``, as
    Opacus computes it (its PRV's ``eps_error`` and ``delta_error`` defaults), or
    :class:`~secagg.dp.accounting.PrvCannotEvaluate` where PRV cannot evaluate it.

    Why not ``get_epsilon`` alone: PRV sizes its domain ``L`` by an RDP bound (remark 5.6
    of Gopi et al.); with little noise ``L`` passes 709.78 and ``exp(t)`` overflows in
    its delta computation. It then answered ``inf``, raised "Discrete mean differs
    significantly from continuous mean", or, worst, returned about ``709 + log q``
    whatever the true epsilon: 707.49 for z = 0.01, q = 0.1, one step (PLD: 5 370),
    702.87 for z = 0.02, q = 0.001 (PLD: 1 359), a figure that flatters what ran.
    The domain is sized here first, by Opacus's own function (milliseconds: RDP,
    memoised), and refused beyond the limit, which also spares the evaluation (up to
    minutes at z = 0.005). Within it PRV is what it always was (it agreed with PLD to
    0.02 at epsilon 697). Opacus's OverflowError (z past about 1e154, where Python's
    ``sigma ** 2`` overflows) is a ConfigurationError; any other failure raises as it is.

    The accountant must be one the engine offers (``prv`` or ``rdp``: Opacus's ``gdp``
    is a CLT approximation that read 2.54 where PRV says 2.69), ``delta`` in (0, 1) (1.5
    gave epsilon -7.40) and the history runs that can have happened
    (:func:`dpsgd_runs`); otherwise a ConfigurationError, before Opacus is asked.

    PRV evaluates the history's :func:`distinct_runs` (every entry of one ``(z, q)``
    merged, wherever it stands): its cost is a grid per run, whatever the steps, so a
    history of a few noises and rates in many alternating runs costs what its distinct
    pairs cost (composition is commutative). A history whose pairs are all distinct (an
    honest trainer's) is evaluated as given, so its figure is Opacus's own float.
    ``distinct=False`` asks PRV the runs as given instead, as the engine did before
    2026-12-07: ``audit verify`` checks a ledger written then against that figure, which
    can lie a few parts in 10^8 from the merged one (a grid per run, composed in another
    order), past the float noise it allows a claim below its replay.

    Memoised for the process (:data:`_EPSILON_MEMO`): the same arguments give the same
    float, once computed."""
    # checked before Opacus sees them: it took what it was given (below)
    check_accountant(name, "dpsgd")
    delta = _delta(delta)
    runs = dpsgd_runs(history)
    if name == "prv" and distinct:
        runs = distinct_runs(runs)
    # one key for both ways of asking: runs without a repeated pair are asked as they
    # are either way, and runs with one only when ``distinct`` is False
    key = (name, tuple(runs), delta)
    with _EPSILON_MEMO_LOCK:
        known = _EPSILON_MEMO.get(key)
    if known is not None:
        return known
    value = _evaluated_opacus_epsilon(name, runs, delta)
    with _EPSILON_MEMO_LOCK:
        if len(_EPSILON_MEMO) >= _EPSILON_MEMO_SIZE:  # a long-lived process: oldest out
            del _EPSILON_MEMO[next(iter(_EPSILON_MEMO))]
        _EPSILON_MEMO[key] = value
    return value


#: (accountant, runs, delta) -> :func:`opacus_epsilon`'s figure, for this process. Why: a
#: record-level server replays every branch report's history (RecordRelease.take_report)
#: whose epsilon the branch's trainer has just computed, in the same process when the
#: simulator runs its branches in threads: 0.5-6 s of PRV a report, for the same float.
#: Only figures are kept (a refusal is raised again on the next call).
_EPSILON_MEMO: dict[tuple[Any, ...], float] = {}
_EPSILON_MEMO_LOCK = threading.Lock()
_EPSILON_MEMO_SIZE = 1024


def _evaluated_opacus_epsilon(
    name: str, runs: list[tuple[float, float, int]], delta: float
) -> float:
    """:func:`opacus_epsilon` of checked ``runs``, unmemoised."""
    from secagg.dp.accounting import PrvCannotEvaluate

    where = "; ".join(f"z={z:.4g}, q={q:.4g}, {n} steps" for z, q, n in runs)
    try:
        # a run of no step releases nothing whatever its z (its RDP counts 0 times), so
        # its z is not asked of Opacus, whose series would loop on it
        runs = [(1.0, q, n) if n == 0 and _square_underflows(z) else (z, q, n) for z, q, n in runs]
        if any(_square_underflows(z) and q > 0 for z, q, n in runs):
            # z under 1e-150 (1e-160 hung Opacus's series: _square_underflows); no
            # noise, as below
            raise ZeroDivisionError
        # at least 0: Opacus's conversions go below it where delta is large beside the
        # privacy loss (rdp -0.059, prv -0.087 for z = 5, q = 0.5, one step at delta
        # 0.1, which a trainer of 9 customers may hold), a figure no release has, and
        # a branch's report with it was refused on the wire as malformed; 0 meets such
        # a delta (tests/dp/test_opacus_epsilon_edges.py)
        return max(0.0, _opacus_epsilon(name, runs, delta, where))
    except ZeroDivisionError:
        # a noise multiplier whose square underflows (z = 1e-200): Opacus divides by
        # it; as z = 0, no noise: RDP's epsilon is inf, PRV has no figure
        if name == "rdp":
            return math.inf
        raise PrvCannotEvaluate(
            f"the 'prv' accountant cannot evaluate {where}: a noise multiplier that "
            "small is no noise to it; use accountant='rdp' (which says inf) or more noise",
            history=runs,
        ) from None
    except OverflowError as exc:  # Python floats: sigma ** 2 past 1e308, about z = 1e154
        raise ConfigurationError(
            f"the {name!r} accountant overflows on {where} ({exc}): a noise multiplier "
            "that large spends next to nothing, but Opacus cannot say how little; give "
            "at most 1e4"
        ) from exc
    except RuntimeError as exc:
        # "Cannot compute epsilon": PRV's own failure (a run at sample rate 0 and no
        # noise), escaped as a RuntimeError nobody names
        if name == "prv" and str(exc).startswith(
            ("Discrete mean differs significantly", "Cannot compute epsilon")
        ):
            raise PrvCannotEvaluate(
                f"the 'prv' accountant cannot evaluate {where} ({exc}); use "
                "accountant='rdp' or more noise",
                history=runs,
            ) from exc
        raise


def _opacus_epsilon(
    name: str, runs: list[tuple[float, float, int]], delta: float, where: str
) -> float:
    """:func:`opacus_epsilon` before its errors are named."""
    from opacus.accountants import create_accountant  # torch: on first use

    from secagg.dp.accounting import PrvCannotEvaluate

    memoise_opacus_rdp()
    if name == "prv" and runs:
        from opacus.accountants.analysis.prv import (
            PoissonSubsampledGaussianPRV,
            compute_safe_domain_size,
        )

        # get_epsilon sizes the domain again, from the RDP curves this call cached: 0.08
        # ms (one run of 3 000 steps) to 0.19 ms (three runs) of its 256 to 1 180 ms.
        # Passing this size in would mean copying Opacus's private _get_domain (its mesh
        # and alignment), which could drift from Opacus's own on an upgrade.
        size = compute_safe_domain_size(
            prvs=[PoissonSubsampledGaussianPRV(q, z) for z, q, _ in runs],
            max_self_compositions=[n for _, _, n in runs],
            eps_error=0.01,  # get_epsilon's defaults, which the call below uses
            delta_error=delta / 1000,
        )
        if not size < _PRV_LOSS_LIMIT:
            raise PrvCannotEvaluate(
                f"the 'prv' accountant cannot evaluate {where}: its privacy loss domain "
                f"({size:.4g}) passes where exp overflows ({_PRV_LOSS_LIMIT:.4g}); too "
                "little noise for PRV, use accountant='rdp' or more noise",
                history=runs,
            )
    accountant = create_accountant(mechanism=name)
    accountant.history = runs
    return float(accountant.get_epsilon(delta=delta))


def prv_replay_points(
    runs: Sequence[tuple[float, float, int]], delta: float, *, grids: int | None = None
) -> float:
    """How many grid points Opacus's PRV accountant works through to give the epsilon
    of ``runs`` (their :func:`distinct_runs`, as :func:`opacus_epsilon` evaluates them) at
    ``delta``: each run's privacy loss is discretised, Fourier-composed and convolved on
    one domain ``[-L, L]`` of Opacus's mesh, so the work is the runs times that domain's
    size. ``grids``: the runs to count, where they are not those of ``runs`` (the arrival
    check sizes the domain at a clamped noise, which can make two of the history's pairs
    one: counted as one, 8 pairs past z 10 at one rate passed as a grid of 1.4 million
    points whose replay works through 9.6 million). ``inf`` where PRV has no
    figure to give (a domain past :data:`_PRV_LOSS_LIMIT`, a run of steps without noise
    or with a noise multiplier whose square underflows, at any rate, or one Opacus
    cannot square).

    Why: the time of a PRV replay is this count times a constant (measured 0.3-0.85 us
    of CPU a point on 2 cores, by how the domain's size factors for the FFT:
    :data:`~secagg.dp.release.MAX_PRV_REPLAYED_POINTS`), and the count follows the
    history's epsilon (``L`` is Opacus's RDP bound of the history at ``delta / 4000``,
    plus 3) times the square root of its steps (Opacus's mesh, which its error bound
    needs: a grid's size grows with the steps so, not with their log). Runs and steps
    alone let one report of 20 000 steps cost 3-8 s as the noise fell and the rate rose.
    This costs the RDP curves of the runs (milliseconds each,
    memoised, and the very curves the replay itself reads), no PRV. The domain is
    Opacus's own (``compute_safe_domain_size``; the mesh and alignment of
    ``PRVAccountant._get_domain``, which tests/dp/test_release_record_prv_grid.py holds
    this to)."""
    from opacus.accountants.analysis.prv import (
        Domain,
        PoissonSubsampledGaussianPRV,
        compute_safe_domain_size,
    )

    delta = _delta(delta)
    runs = distinct_runs((z, q, n) for z, q, n in runs if n > 0)  # as opacus_epsilon asks
    if not runs:
        return 0.0
    if grids is None:
        grids = len(runs)
    if any(z == 0 or _square_underflows(z) for z, q, n in runs):
        # no noise: PRV has no figure (opacus_epsilon's refusal), nor at a rate of 0,
        # where Opacus "cannot compute epsilon" (z 0 or 1e-200 at q 0) though the run
        # sampled nothing: sized as finite, such a report passed the arrival check and
        # its replay, refused after the sum, aborted the round
        return math.inf
    eps_error, delta_error = 0.01, delta / 1000  # get_epsilon's defaults, as opacus_epsilon
    memoise_opacus_rdp()
    try:
        size = compute_safe_domain_size(
            prvs=[PoissonSubsampledGaussianPRV(q, z) for z, q, _ in runs],
            max_self_compositions=[n for _, _, n in runs],
            eps_error=eps_error,
            delta_error=delta_error,
        )
    except (ArithmeticError, ValueError):  # an overflow (z past 1e154), Opacus's series
        return math.inf
    if not size < _PRV_LOSS_LIMIT:  # also NaN
        return math.inf
    steps = sum(n for _, _, n in runs)
    mesh = eps_error / math.sqrt(steps * math.log(12 / delta_error) / 2)
    try:
        return float(grids * Domain.create_aligned(-size, size, mesh).size)
    except RuntimeError:  # Opacus's own alignment check: no domain, so no figure
        return math.inf


def dpsgd_runs(history: Iterable[Any], start: int = 0) -> list[tuple[float, float, int]]:
    """A DP-SGD history as ``(noise multiplier, sample rate, steps)`` floats and ints,
    each entry checked: a noise multiplier finite and at least 0 (0: no noise, epsilon
    infinite), a sample rate in [0, 1], steps an integer count at least 0. Otherwise a
    ConfigurationError naming the entry (``start`` + its index) and what is wrong.

    Why: the history was passed through ``float`` and ``int``, so 100.9 steps read as
    100 (the epsilon of fewer steps), -50 steps after 100 subtracted privacy loss
    (epsilon -29.99), and Opacus's series never ends for a NaN or infinite noise
    multiplier or a NaN rate (the call hung). Every figure stated for a branch goes
    through here: the trainers', the server's and ``audit verify``'s."""
    runs: list[tuple[float, float, int]] = []
    for index, entry in enumerate(history, start=start):
        try:
            z, q, n = entry
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"DP-SGD history entry {index} must be (noise multiplier, sample rate, steps), "
                f"not {entry!r}"
            ) from None
        if not (_real(z) and math.isfinite(z) and z >= 0):
            raise ConfigurationError(
                f"DP-SGD history entry {index}: the noise multiplier must be a finite number "
                f">= 0, not {z!r}"
            )
        if not (_real(q) and 0 <= q <= 1):  # also refuses NaN
            raise ConfigurationError(
                f"DP-SGD history entry {index}: the sample rate must be a number in [0, 1], "
                f"not {q!r}"
            )
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ConfigurationError(
                f"DP-SGD history entry {index}: steps must be an integer count >= 0, not {n!r}"
            )
        runs.append((float(z), float(q), int(n)))
    return runs


def _square_underflows(z: float) -> bool:
    """A noise multiplier above 0 with z^2 below 1e-300 (z under 1e-150): no noise to
    any figure (RDP's epsilon is past 1e299 there), and at z near 1.5e-154 and below
    Opacus's fractional-order series divides ``i^2 - i`` by ``2 z^2`` past the float
    range, adds the infinities into a NaN and never ends (z = 1e-160 hung; z = 1e-200,
    whose square is 0, raised ZeroDivisionError)."""
    return 0 < z and z * z < 1e-300


def _real(value: object) -> bool:
    """A real number, not a bool (NaN passes: each caller's range test refuses it)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def history_runs(history: Iterable[Sequence[Any]]) -> list[tuple[float, float, int]]:
    """A DP-SGD history as runs: consecutive steps with the same (z, q) merged, as
    Opacus's accountants keep it (two reports of the same training compare equal
    however the branch split its steps into entries)."""
    runs: list[tuple[float, float, int]] = []
    for z, q, n in history:
        z, q, n = float(z), float(q), int(n)
        if runs and runs[-1][:2] == (z, q):
            runs[-1] = (z, q, runs[-1][2] + n)
        elif n:
            runs.append((z, q, n))
    return runs


def distinct_runs(runs: Iterable[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """``runs`` with every run of one ``(z, q)`` merged into the first of them, wherever
    it stands (steps added; a run of no step kept, as Opacus keeps it), in the order the
    pairs first appear: a history of no repeated pair comes back as it was.

    Why: Opacus's PRV accountant discretises each run's privacy loss on one grid and
    composes the run's steps by one Fourier power (its ``compose_heterogeneous``), so a
    run costs a grid whatever its steps, and a history whose runs alternate between a
    few pairs cost a grid per run where one per distinct pair gives the same
    composition (composition is commutative; the domain Opacus sizes is the same, from
    the same single-step curves and the same total steps). Its figure agrees with
    Opacus's on the history as given to within Opacus's own ``eps_error``
    (tests/dp/test_prv_distinct_runs.py)."""
    merged: dict[tuple[float, float], int] = {}
    for z, q, n in runs:
        merged[(z, q)] = merged.get((z, q), 0) + n
    return [(z, q, n) for (z, q), n in merged.items()]


def history_extends(
    new: list[tuple[float, float, int]], old: list[tuple[float, float, int]]
) -> bool:
    """``new`` is ``old`` with more steps: same runs, the last possibly longer, more after.

    Why: a branch's epsilon is cumulative only if each report continues the training
    the previous one accounted; a restarted accountant reports a smaller epsilon. The
    server (refusing such a report) and ``audit verify`` (failing such a row) share
    this one rule."""
    if not old:
        return True
    if len(new) < len(old) or new[: len(old) - 1] != old[:-1]:
        return False
    last_new, last_old = new[len(old) - 1], old[-1]
    if last_new[:2] != last_old[:2] or last_new[2] < last_old[2]:
        return False
    return len(new) == len(old) or last_new[2] == last_old[2]


def _number(name: str, value: object) -> None:
    """A real number (not a bool, not NaN), or a ConfigurationError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number, not {value!r}")
