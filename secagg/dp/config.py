"""The privacy unit and the DP part of a federation's configuration.

Every guarantee is a guarantee *about something*: the engine never reports an
epsilon without its unit.

* ``PrivacyUnit.RECORD``: one record inside a client (a bank's customer or
  transaction). Each branch trains with DP-SGD (:mod:`secagg.dp.dpsgd`); the
  epsilon composes over all of that branch's local steps across rounds.
* ``PrivacyUnit.CLIENT``: a whole client (a branch) with all its data:
  DP-FedAvg, noise on the sum of clipped updates, central
  (:mod:`secagg.dp.central`) or distributed (:mod:`secagg.dp.distributed`).

Client-level DP with few clients is expensive, and a user choosing it should
see how expensive before any data moves: the noise added to the sum has a
fixed scale ``z * C`` while the signal, the sum of ``m`` clipped updates, has
norm at most ``m * C``. Per round the noise vector's norm is about
``z * C * sqrt(d)``, so the noise-to-signal ratio on the mean update is at
least ``z * sqrt(d) / m``: with 8 branches per round, z = 1 and a 10 000
parameter model it is 12.5. :class:`DPConfig` warns with these numbers
(:class:`PrivacyCostWarning`) and the accountant's epsilon for the plan.
"""

from __future__ import annotations

import enum
import math
import numbers
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from secagg.dp._checks import _count, _delta, _positive
from secagg.dp.adaptive import MAX_CLIP_LEARNING_RATE
from secagg.dp.display import shown
from secagg.errors import ConfigurationError

if TYPE_CHECKING:
    from secagg.dp.distributed import DistributedDiscreteGaussian


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


#: The largest noise multiplier anywhere: the accountants' calibration bracket's upper
#: end, ``[dp] noise_multiplier``'s cap and ``secagg simulate``'s. Why: at z = 10^4 the
#: noise's std is 10^4 clips per coordinate, so the released sum is noise and the model
#: learns nothing; past it a federation file loaded (``noise_multiplier = 1e30``) that
#: simulate refused, for a run whose every round is noise (upper-bounds review,
#: 2026-12-05). A study that wants an untrained model sets no [dp] at all.
MAX_NOISE_MULTIPLIER: Final = 1e4


class PrivacyUnit(enum.StrEnum):
    """What one DP guarantee protects."""

    RECORD = "record"
    CLIENT = "client"


class PrivacyCostWarning(UserWarning):
    """A configuration whose privacy or accuracy cost deserves a second look."""


@dataclass(frozen=True)
class ClientLevelCost:
    """What client-level DP costs for a given plan; the numbers behind the warning."""

    expected_clients: float
    noise_multiplier: float
    epsilon: float
    delta: float
    rounds: int
    relative_noise_on_mean: float  # noise std / clip, per coordinate, on the mean update
    noise_to_signal: float | None  # noise norm / largest possible signal norm (needs d)
    #: distributed DP: the worst epsilon of a run in which up to ``tolerated_dropouts``
    #: of each round's expected clients drop out (their noise shares with them); None
    #: or equal to ``epsilon`` where dropouts cost nothing more (central DP, or a
    #: tolerance below one client)
    epsilon_with_dropouts: float | None = None
    tolerated_dropouts: int = 0
    #: "client", or "record" for record-level distributed DP: its epsilon is per
    #: protected unit, and the client-level noise figures do not describe it
    unit: str = "client"
    #: distributed DP with Poisson-drawn cohorts: the fewest clients some round draws,
    #: with probability at least 1 - MOST_ROUNDS_TAIL over the planned rounds
    #: (:func:`~secagg.dp.plan_figures.likely_cohort_range`), which
    #: ``epsilon_with_dropouts`` covers; None where the cohort is fixed
    fewest_cohort: int | None = None

    def describe(self) -> str:
        """The warning's text. Why both epsilons: each distributed round is charged at
        the honest shares it kept, so a run within the tolerated dropouts can spend
        more than one with every share present; stating only the latter understated
        what the federation agreed to (review, 2026-12-06: "plan spends epsilon =
        2.03" before a run that signed 2.980)."""
        # noise down, epsilon and delta up: the side a reader may rely on
        spends = (
            f"the plan spends epsilon = {shown(self.epsilon, 3, significant=True)} "
            f"(delta = {shown(self.delta, 6, significant=True)})"
        )
        rounds = f"over {self.rounds} " + ("round" if self.rounds == 1 else "rounds")
        if self.unit == "record":
            text = (
                f"record-level distributed DP with {self.expected_clients:g} expected clients "
                f"per round: {spends} per protected unit {rounds}"
            )
        else:
            text = (
                f"client-level DP with {self.expected_clients:g} expected clients per round: "
                "noise std on the mean update is "
                f"{shown(self.relative_noise_on_mean, 3, significant=True, lower=True)} x the "
                f"clip per coordinate, and {spends} {rounds}"
            )
        worse = self.epsilon_with_dropouts
        conditions = []
        if self.tolerated_dropouts > 0:
            conditions.append(
                f"each round loses up to {self.tolerated_dropouts} of "
                f"{round(self.expected_clients)} expected clients (the dropouts the backend "
                "tolerates)"
            )
        if self.fewest_cohort is not None:
            from secagg.dp.plan_figures import MOST_ROUNDS_TAIL

            # a Poisson cohort smaller than expected keeps fewer shares (review,
            # 2026-12-06: 100 clients at q = 0.5, 10 rounds: "up to 22.7", and 24.0 or
            # more in 87 % of runs with no dropout beyond the tolerance)
            conditions.append(
                f"every round's randomly drawn cohort holds at least {self.fewest_cohort} "
                f"clients (all {self.rounds} do with probability at least "
                f"{1 - MOST_ROUNDS_TAIL:.0%})"
            )
        if conditions and worse is not None and worse != self.epsilon:
            text += (
                " with every noise share present, and up to epsilon = "
                f"{shown(worse, 3, significant=True)} if " + " and ".join(conditions) + "; a "
                "round is charged at the noise shares it kept"
            )
        if self.noise_to_signal is not None and self.unit != "record":
            text += (
                "; the noise vector is "
                f"{shown(self.noise_to_signal, 3, significant=True, lower=True)} x the norm of "
                "the largest possible mean update"
            )
        return text


def client_level_cost(
    *,
    num_clients: int,
    sample_rate: float,
    noise_multiplier: float,
    rounds: int,
    delta: float,
    dimension: int | None = None,
    accountant: str = "pld",
    epsilon: float | None = None,
    epsilon_with_dropouts: float | None = None,
    tolerated_dropouts: int = 0,
    unit: str = "client",
    fewest_cohort: int | None = None,
) -> ClientLevelCost:
    """The accuracy and privacy cost of client-level DP-FedAvg for a plan.

    ``epsilon`` overrides the central DP-FedAvg figure (the distributed
    mechanism's own bound is larger; :class:`DPConfig` passes it), and
    ``epsilon_with_dropouts`` is the distributed mechanism's worst figure when up to
    ``tolerated_dropouts`` of the expected clients drop out of each round.
    """
    if num_clients < 1:
        raise ConfigurationError("num_clients must be at least 1")
    expected = sample_rate * num_clients
    eps = epsilon
    if eps is None:
        from secagg.dp.accounting import federation_epsilon

        eps = federation_epsilon(
            noise_multiplier, sample_rate, rounds, delta, num_clients, accountant=accountant
        )
    relative = noise_multiplier / expected
    ratio = None if dimension is None else noise_multiplier * math.sqrt(dimension) / expected
    return ClientLevelCost(
        expected,
        noise_multiplier,
        eps,
        delta,
        rounds,
        relative,
        ratio,
        epsilon_with_dropouts=epsilon_with_dropouts,
        tolerated_dropouts=tolerated_dropouts,
        unit=unit,
        fewest_cohort=fewest_cohort,
    )


@dataclass(frozen=True)
class DPConfig:
    """The DP choices of a federation: unit, mechanism, clip, noise, plan, accountant.

    ``mechanism`` is ``"central"`` (the server adds Gaussian noise) or
    ``"distributed"`` (clients add discrete Gaussian shares before masking)
    for client-level DP, and ``"dpsgd"`` for record-level DP. ``sample_rate``
    is the Poisson sampling rate of clients per round (client level) and
    ``rounds`` the planned number of rounds; ``delta`` should be well below
    one over the number of units protected.
    """

    unit: PrivacyUnit
    noise_multiplier: float
    clip: float
    delta: float
    num_clients: int
    sample_rate: float = 1.0
    rounds: int = 1
    mechanism: str = "central"
    accountant: str = "pld"
    adaptive_clipping: bool = False
    dimension: int | None = None
    bits: int = 32
    warn_noise_to_signal: float = 1.0
    #: distributed: the colluders whose noise shares the accountant discounts
    #: (:func:`secagg.dp.distributed.assumed_colluders`), so the plan matches the rounds
    corrupt_fraction: float = 0.0
    #: distributed: the fraction of each round's cohort whose dropping the federation
    #: tolerates (``backend.dropout_fraction``): their noise shares leave with them, so
    #: the plan also states the epsilon of a run that loses them
    dropout_fraction: float = 0.0
    #: record-level distributed DP: what one protected unit moves a client's vector by
    #: (the noise's sensitivity; ``clip`` then bounds the whole vector), as
    #: ``dp.record_clip``; None otherwise
    record_clip: float | None = None
    #: how each round's cohort is drawn: "poisson" (each client at ``sample_rate``, so a
    #: cohort may come out smaller than expected) or "fixed" (``sample_rate *
    #: num_clients`` clients every round). Distributed DP's plan bounds a Poisson
    #: cohort's shares with high probability (:meth:`planned_epsilon_with_dropouts`);
    #: "poisson" is the default because it is the safe side for either
    sampling: str = "poisson"

    def __post_init__(self) -> None:
        self._check_fields()
        object.__setattr__(self, "unit", PrivacyUnit(self.unit))
        client = self.unit is PrivacyUnit.CLIENT
        allowed = ("central", "distributed") if client else ("dpsgd", "distributed")
        if self.mechanism not in allowed:
            raise ConfigurationError(
                f"a {self.unit.value}-level guarantee uses mechanism {' or '.join(allowed)}, "
                f"not {self.mechanism!r}"
            )
        record_distributed = not client and self.mechanism == "distributed"
        if (self.record_clip is not None) != record_distributed:
            raise ConfigurationError(
                "record_clip goes with record-level distributed DP, and that mechanism needs it"
            )
        if self.record_clip is not None:
            _positive("record_clip", self.record_clip)
        if self.adaptive_clipping and self.mechanism == "distributed":
            raise ConfigurationError(
                "adaptive clipping needs the server to noise the clip count: use the central "
                "mechanism with it (the distributed mechanism takes a fixed clip)"
            )
        if self.mechanism == "distributed" and self.dimension is None:
            raise ConfigurationError(
                "the distributed mechanism's epsilon depends on the model size: give dimension"
            )
        if not 0 < self.delta < 1:
            raise ConfigurationError("delta must lie strictly between 0 and 1")
        if self.unit is PrivacyUnit.CLIENT and self.delta >= 1 / self.num_clients:
            raise ConfigurationError(
                f"delta {self.delta:g} is not below 1/{self.num_clients} clients: the guarantee "
                "would allow releasing one client's data outright"
            )
        if self.unit is PrivacyUnit.CLIENT:
            cost = self.client_level_cost()
            if (
                cost.noise_to_signal is not None
                and cost.noise_to_signal > self.warn_noise_to_signal
            ):
                warnings.warn(cost.describe(), PrivacyCostWarning, stacklevel=3)
            elif cost.expected_clients < 50:
                warnings.warn(cost.describe(), PrivacyCostWarning, stacklevel=3)
        elif record_distributed:
            # each round is charged at the noise shares it kept, as at client level: a run
            # within the tolerated dropouts can spend more than the plan with every share,
            # and nothing said so before its rows did (the plan was client level only)
            cost = self.client_level_cost()
            worse = cost.epsilon_with_dropouts
            if worse is not None and worse > cost.epsilon:  # dropouts, or a smaller cohort
                warnings.warn(cost.describe(), PrivacyCostWarning, stacklevel=3)

    def _check_fields(self) -> None:
        """Each field's type and range, naming the field.

        Why: the checks below compare and divide, so a wrong type or range failed as
        a bare TypeError, ZeroDivisionError or ``math domain error``, or passed: clip
        was never read here, so ``clip=-1`` (or NaN, or None) planned an epsilon that
        rests on a sensitivity the rounds cannot have."""
        if self.unit not in tuple(PrivacyUnit):
            raise ConfigurationError(
                f"unit must be one of {', '.join(u.value for u in PrivacyUnit)}, not {self.unit!r}"
            )
        _positive("noise_multiplier", self.noise_multiplier)
        _positive("clip", self.clip)
        _delta(self.delta)
        _count("num_clients", self.num_clients, 1)
        if not isinstance(self.adaptive_clipping, bool):
            raise ConfigurationError(
                f"adaptive_clipping must be True or False, not {self.adaptive_clipping!r}"
            )
        if self.dimension is not None:
            _count("dimension", self.dimension, 1)
        ratio = self.warn_noise_to_signal  # inf: never warn on the ratio
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not ratio > 0:
            raise ConfigurationError(
                f"warn_noise_to_signal must be a positive number, not {ratio!r}"
            )
        fraction = self.corrupt_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0 <= fraction < 1
        ):
            raise ConfigurationError(f"corrupt_fraction must lie in [0, 1), not {fraction!r}")
        dropout = self.dropout_fraction
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, numbers.Real)
            or not 0 <= dropout < 1
        ):
            raise ConfigurationError(f"dropout_fraction must lie in [0, 1), not {dropout!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigurationError(
                f"sampling must be one of {', '.join(SAMPLINGS)}, not {self.sampling!r}"
            )

    @property
    def expected_clients(self) -> float:
        """The public denominator of the DP mean: sample rate times population."""
        return self.sample_rate * self.num_clients

    def client_level_cost(self) -> ClientLevelCost:
        distributed = self.mechanism == "distributed"
        return client_level_cost(
            num_clients=self.num_clients,
            sample_rate=self.sample_rate,
            noise_multiplier=self.noise_multiplier,
            rounds=self.rounds,
            delta=self.delta,
            dimension=self.dimension,
            accountant=self.accountant,
            epsilon=self.planned_epsilon(),
            epsilon_with_dropouts=self.planned_epsilon_with_dropouts() if distributed else None,
            tolerated_dropouts=self._tolerated_dropouts() if distributed else 0,
            unit=self.unit.value,
            fewest_cohort=self._fewest_random_cohort() if distributed else None,
        )

    def _cohort_range(self) -> tuple[int, int]:
        """The fewest and the most clients a round of the plan draws: the expected cohort
        both ways where it is fixed, else the range every round's Poisson draw stays in
        with probability at least ``1 - MOST_ROUNDS_TAIL``
        (:func:`~secagg.dp.plan_figures.likely_cohort_range`)."""
        if self.sampling == "fixed" or self.sample_rate >= 1:
            return self._expected_cohort(), self._expected_cohort()
        from secagg.dp.plan_figures import likely_cohort_range

        return likely_cohort_range(self.num_clients, self.sample_rate, self.rounds)

    def _fewest_random_cohort(self) -> int | None:
        """The fewest clients of :meth:`_cohort_range` where a round may draw fewer than
        expected (Poisson), else None."""
        fewest, _ = self._cohort_range()
        return fewest if fewest < self._expected_cohort() else None

    def _expected_cohort(self) -> int:
        """The expected cohort as a count: the distributed mechanism's public denominator."""
        return max(1, round(self.expected_clients))

    def _tolerated_dropouts(self) -> int:
        """The clients of the expected cohort whose dropping the protocol tolerates
        (:func:`~secagg.protocol.graph_params.tolerated_dropouts`: ``floor(fraction n)``
        with the protocol's nudge, so 29 of 100 at 0.29, as SecAgg+ is sized, not the 28
        of ``floor(0.29 * 100)`` in floats)."""
        from secagg.protocol.graph_params import tolerated_dropouts

        return tolerated_dropouts(self._expected_cohort(), self.dropout_fraction)

    def _ddg(self) -> DistributedDiscreteGaussian:
        from secagg.dp.distributed import DistributedDiscreteGaussian

        assert self.dimension is not None
        record = self.record_clip is not None
        return DistributedDiscreteGaussian(  # as secagg.dp.release.DistributedRelease's
            dimension=self.dimension,
            clip=self.record_clip if record else self.clip,
            noise_multiplier=self.noise_multiplier,
            expected_clients=self._expected_cohort(),
            bits=self.bits,
            vector_bound=self.clip if record else 0.0,
        )

    def planned_epsilon_with_dropouts(self) -> float:
        """Epsilon after the planned rounds when up to ``dropout_fraction`` of each
        round's expected cohort drops out: the most a run within the tolerance is charged.

        Distributed: every round keeps between the planned honest shares less the
        tolerated dropouts (:func:`~secagg.dp.distributed.planned_honest_shares`, the
        count the simulator sizes the noise for) and all of them, and the accountant
        charges each round the worst per-round bound of the counts the rounds had; the
        bound is not monotone in the count, so this bounds every count of that range
        from above (:func:`~secagg.dp.ddg_accounting.ddg_epsilon_within`, at the cost of
        two counts: each count's own would cost 10^9 terms at 100 000 clients).
        Central: the server adds the whole noise, so a dropout takes away signal,
        not noise, and this is :meth:`planned_epsilon`.

        Poisson-drawn cohorts (``sampling``, ``sample_rate < 1``): a cohort drawn smaller
        than expected keeps fewer shares than the expected one less its dropouts, so the
        counts range over every cohort of :meth:`_cohort_range`, the draws all rounds
        stay within with probability at least ``1 - MOST_ROUNDS_TAIL`` (as the central
        plan counts the rounds its most sampled client likely takes part in). Why: the
        expected cohort alone was the figure of fewer than half the runs it promised (100
        clients at q = 0.5 over 10 rounds, 10 % dropouts: "up to 22.7", while some round
        draws 45 or fewer, charged 24.0 or more, with probability 0.87;
        tests/dp/test_plan_random_cohort.py).
        """
        if self.mechanism != "distributed":
            return self.planned_epsilon()
        fewest, most = self._honest_share_range()
        return self._ddg().epsilon_within(
            fewest=fewest,
            most=most,
            # the (untrusted) server draws the cohort: no amplification by sampling
            sample_rate=1.0,
            rounds=self.rounds,
            delta=self.delta,
        )

    def _honest_share_range(self) -> tuple[int, int]:
        """The fewest and the most honest shares a round of the plan keeps: over every
        cohort of :meth:`_cohort_range`, from its tolerated dropouts gone to none.

        Each cohort's counts are taken, not the range's ends alone: a cohort one larger
        can assume one more colluder *and* tolerate one more dropout, so the fewest
        honest shares are not always the fewest cohort's. A range wider than
        :data:`_MOST_COHORTS_COUNTED` (10^8 clients and more) takes the ends' bounds
        instead: the fewest cohort less the largest cohort's colluders and dropouts,
        and the largest cohort less the fewest's colluders (both counts only grow with
        the cohort), which covers every count between."""
        from secagg.dp.distributed import assumed_colluders, honest_share_range
        from secagg.protocol.graph_params import tolerated_dropouts

        smallest, largest = self._cohort_range()
        population = self.num_clients
        corrupt, dropout = self.corrupt_fraction, self.dropout_fraction
        if largest - smallest > _MOST_COHORTS_COUNTED:
            fewest = smallest - assumed_colluders(largest, corrupt, population)
            fewest -= tolerated_dropouts(largest, dropout)
            most = largest - assumed_colluders(smallest, corrupt, population)
            return max(1, fewest), max(1, most)
        # every cohort's counts, without a call for each (honest_share_range)
        return honest_share_range(smallest, largest, corrupt, dropout, population=population)

    def planned_epsilon(self) -> float:
        """Epsilon after the planned rounds (client level, all planned noise present).

        Central: the most charged client's, each client charged for the rounds it
        is in, unamplified (:func:`~secagg.dp.accounting.federation_epsilon`: with
        sampling, over the rounds the most sampled client likely takes part in).
        Distributed: the distributed discrete Gaussian's RDP bound for the
        planned cohort less its assumed colluders, at sample rate 1 (the untrusted
        server draws the cohort), which is larger (rounding, the sum of discrete
        Gaussians); dropouts raise it further (:meth:`planned_epsilon_with_dropouts`
        within the tolerated fraction), and the runtime reports that honest figure
        round by round.
        """
        if self.mechanism == "distributed":
            from secagg.dp.distributed import planned_honest_shares

            honest = planned_honest_shares(
                self._expected_cohort(), self.corrupt_fraction, population=self.num_clients
            )
            return self._ddg().epsilon(
                noise_contributors=honest,
                # the (untrusted) server draws the cohort: no amplification by sampling
                sample_rate=1.0,
                rounds=self.rounds,
                delta=self.delta,
            )
        from secagg.dp.accounting import federation_epsilon

        return federation_epsilon(
            self.noise_multiplier,
            self.sample_rate,
            self.rounds,
            self.delta,
            self.num_clients,
            self.accountant,
        )


#: how a plan's cohorts are drawn (:attr:`DPConfig.sampling`): the runtime's sampling kinds
SAMPLINGS = ("poisson", "fixed")
#: the most cohort sizes :meth:`DPConfig._honest_share_range` counts one by one
_MOST_COHORTS_COUNTED = 100_000


#: the mechanisms of each unit (record level: DP-SGD inside each client)
MECHANISMS = {"client": ("central", "distributed"), "record": ("dpsgd", "distributed")}
#: the central mechanism's accountants (the vocabulary: secagg.dp.accountants.ACCOUNTANTS)
ACCOUNTANTS = ("pld", "rdp")


#: what one protected unit of record-level DP with the noise once (dp.record_unit) is
RECORD_UNITS = ("customer", "transaction")


@dataclass(frozen=True)
class DPSettings:
    """A federation's ``[dp]`` section: the one DP configuration of the runtime.

    It builds the round's mechanism (:func:`secagg.dp.release.mechanism_for`) and,
    for client-level DP, the :class:`DPConfig` of the plan, whose
    :class:`PrivacyCostWarning` fires before any data moves.
    """

    unit: str = "client"
    mechanism: str = "central"
    clip: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5
    accountant: str = "pld"
    # adaptive clipping (Andrew et al. 2021): dp.clip is then the initial clip
    adaptive_clip: bool = False
    target_quantile: float = 0.5
    clip_learning_rate: float = 0.2
    count_noise_stddev: float | None = None  # default: expected clients / 20
    # the adaptive clip's floor and ceiling (None: dp.clip divided and multiplied by 10^6,
    # secagg.dp.adaptive.DEFAULT_CLIP_RANGE); backend.value_bound caps the clip as well
    min_clip: float | None = None
    max_clip: float | None = None
    # a hard cap: the server stops before a round would take epsilon above it
    epsilon_budget: float | None = None
    #: unit = "record", mechanism = "distributed": the most one protected unit (a
    #: customer) moves a client's update, the noise's sensitivity; dp.clip then bounds
    #: the whole update (see secagg.dp.release.RecordDistributedRelease)
    record_clip: float | None = None
    #: with record_clip: what one protected unit is, "customer" (a card and all its rows:
    #: the branch clips each customer's gradients together) or "transaction" (one row,
    #: clipped alone, when the data name no customer); the ledger's adjacency says which
    record_unit: str = "customer"

    def __post_init__(self) -> None:
        _require(self.unit in MECHANISMS, "dp.unit must be 'client' or 'record'")
        _require(
            self.record_unit in RECORD_UNITS,
            f"dp.record_unit must be one of {', '.join(RECORD_UNITS)}",
        )
        _require(
            self.epsilon_budget is None
            or (
                not isinstance(self.epsilon_budget, bool)
                and isinstance(self.epsilon_budget, int | float)
                and math.isfinite(self.epsilon_budget)
                and self.epsilon_budget > 0
            ),
            "dp.epsilon_budget must be a positive number",
        )
        _require(
            self.epsilon_budget is None or self.server_accounts,
            "dp.epsilon_budget caps the server's epsilon; with unit = 'record' and "
            "mechanism = 'dpsgd' each branch's DP-SGD keeps its own budget",
        )
        if self.unit == "client":
            _require(
                self.mechanism in MECHANISMS["client"],
                "dp.mechanism: with dp.unit = 'client' choose 'central' (the server adds "
                "Gaussian noise) or 'distributed' (each client adds its discrete "
                "Gaussian share before masking)",
            )
        else:
            _require(
                self.mechanism in MECHANISMS["record"],
                "dp.mechanism: with dp.unit = 'record' choose 'dpsgd' (DP-SGD inside each "
                "client; the server then neither noises nor accounts, and dp.clip only "
                "bounds updates for the ring) or 'distributed' (each client sends its "
                "customers' clipped gradient sum with a discrete Gaussian share)",
            )
        record_distributed = self.unit == "record" and self.mechanism == "distributed"
        _require(
            (self.record_clip is not None) == record_distributed,
            "dp.record_clip (what one customer moves an update by) goes with dp.unit = "
            "'record' and dp.mechanism = 'distributed', and that mechanism needs it",
        )
        if self.record_clip is not None:
            _require(
                math.isfinite(self.record_clip) and 0 < self.record_clip < self.clip,
                "dp.record_clip must be positive and below dp.clip (the whole update's bound)",
            )
            _require(self.noise_multiplier > 0, "dp.noise_multiplier must be > 0")
        _require(math.isfinite(self.clip) and self.clip > 0, "dp.clip must be positive")
        _require(
            math.isfinite(self.noise_multiplier)
            and 0 <= self.noise_multiplier <= MAX_NOISE_MULTIPLIER,
            f"dp.noise_multiplier must be a number in [0, {MAX_NOISE_MULTIPLIER:g}], not "
            f"{self.noise_multiplier!r}: at {MAX_NOISE_MULTIPLIER:g} the noise is already "
            f"{MAX_NOISE_MULTIPLIER:g} clips per coordinate, so the model learns nothing",
        )
        _require(
            self.unit != PrivacyUnit.CLIENT or self.noise_multiplier > 0,
            "dp.noise_multiplier = 0 adds no noise, so there is no epsilon to promise; "
            "a [dp] section is a guarantee: give a positive noise_multiplier, or leave "
            "[dp] out for a federation without DP",
        )
        _require(0 < self.delta < 1, "dp.delta must lie in (0, 1)")
        _require(
            self.accountant in ACCOUNTANTS,
            "dp.accountant must be 'pld' or 'rdp' (the central mechanism's; the distributed "
            "one and DP-SGD bring their own, see secagg.dp.accountants)",
        )
        if self.adaptive_clip:
            _require(
                self.unit == PrivacyUnit.CLIENT and self.mechanism == "central",
                "dp.adaptive_clip needs unit = 'client' and mechanism = 'central': the server "
                "noises the clip count (the distributed mechanism takes a fixed clip)",
            )
            _require(self.noise_multiplier > 0, "dp.adaptive_clip needs dp.noise_multiplier > 0")
        # the adaptive clip's keys are checked without adaptive_clip too: ``target_quantile
        # = 2**70`` or ``clip_learning_rate = -1`` loaded as a config holding them, to take
        # effect the day adaptive_clip was turned on (config fuzz, 2026-12-05)
        _require(
            0 < self.target_quantile < 1,
            f"dp.target_quantile must lie in (0, 1), not {self.target_quantile!r}",
        )
        _require(  # past it the clip's geometric step overflows math.exp (see the constant)
            math.isfinite(self.clip_learning_rate)
            and 0 < self.clip_learning_rate <= MAX_CLIP_LEARNING_RATE,
            f"dp.clip_learning_rate must lie in (0, {MAX_CLIP_LEARNING_RATE:g}], not "
            f"{self.clip_learning_rate!r}: one round moves the clip by a factor of up to "
            "exp(clip_learning_rate * max(target_quantile, 1 - target_quantile))",
        )
        _require(
            self.count_noise_stddev is None
            or (math.isfinite(self.count_noise_stddev) and self.count_noise_stddev > 0),
            f"dp.count_noise_stddev must be positive, not {self.count_noise_stddev!r}",
        )
        self._check_clip_range()

    def _check_clip_range(self) -> None:
        """``dp.min_clip`` and ``dp.max_clip``: the adaptive clip's floor and ceiling.

        Refused beside a fixed clip, unlike the adaptive clip's other keys: a floor or
        a ceiling there reads as a bound on ``dp.clip`` that nothing would apply. With
        adaptive clipping each is a finite number, the floor a normal float (below 2.2e-308
        a clip loses its precision on the way to 0: :class:`~secagg.dp.adaptive.AdaptiveClipping`),
        and ``min_clip <= clip <= max_clip``: ``clip`` is the first round's clip."""
        for key in ("min_clip", "max_clip"):
            value = getattr(self, key)
            if value is None:
                continue
            _require(
                self.adaptive_clip,
                f"dp.{key} = {value!r} bounds the adaptive clip, and dp.adaptive_clip is off: "
                f"with a fixed clip every round clips to dp.clip; remove dp.{key} or set "
                "dp.adaptive_clip = true",
            )
            _require(
                math.isfinite(value) and value >= sys.float_info.min,
                f"dp.{key} must be a positive finite number (at least {sys.float_info.min:g}), "
                f"not {value!r}",
            )
        if self.min_clip is not None:
            _require(
                self.min_clip <= self.clip,
                f"dp.min_clip = {self.min_clip:g} is above dp.clip = {self.clip:g}, the "
                "adaptive clip's first value: the floor must be at most dp.clip",
            )
        if self.max_clip is not None:
            _require(
                self.max_clip >= self.clip,
                f"dp.max_clip = {self.max_clip:g} is below dp.clip = {self.clip:g}, the "
                "adaptive clip's first value: the ceiling must be at least dp.clip",
            )

    @property
    def server_accounts(self) -> bool:
        """Whether the server's mechanism accounts the epsilon (not DP-SGD in clients)."""
        return self.unit == PrivacyUnit.CLIENT or self.mechanism == "distributed"

    @property
    def bounds_updates(self) -> bool:
        """The clip bounds what enters the sum, so updates must fit the ring whole
        (client level: it is the sensitivity; record-level distributed: the vector's)."""
        return self.server_accounts

    @property
    def round_options(self) -> tuple[str, ...]:
        """What the backend must carry inside a round for this mechanism."""
        return ("noise_share",) if self.mechanism == "distributed" else ()

    def plan(
        self,
        *,
        num_clients: int,
        sample_rate: float,
        rounds: int,
        dimension: int,
        bits: int,
        corrupt_fraction: float = 0.0,
        dropout_fraction: float = 0.0,
        sampling: str = "poisson",
    ) -> DPConfig | None:
        """The plan the server accounts (warns with its cost): client level, or record
        level with the distributed mechanism; None for DP-SGD in the branches (each
        accounts itself) or z = 0.

        ``dropout_fraction``: the backend's tolerated dropouts, whose noise shares a
        distributed round loses; the warning states the epsilon with them gone too.
        Record-level distributed DP had no plan: a run within those dropouts could spend
        more than its operator was ever told (tests/dp/test_record_distributed_plan.py).
        ``sampling``: the federation's ``sampling.kind``; "poisson" (the default) plans
        for cohorts drawn smaller than expected too, the safe side for either kind."""
        if not self.server_accounts or self.noise_multiplier <= 0:
            return None
        return DPConfig(
            adaptive_clipping=self.adaptive_clip,
            unit=PrivacyUnit(self.unit),
            record_clip=self.record_clip,
            noise_multiplier=self.noise_multiplier,
            clip=self.clip,
            delta=self.delta,
            num_clients=num_clients,
            sample_rate=sample_rate,
            rounds=rounds,
            mechanism=self.mechanism,
            accountant=self.accountant,
            dimension=dimension,
            bits=bits,
            corrupt_fraction=corrupt_fraction,
            dropout_fraction=dropout_fraction,
            sampling=sampling,
        )
