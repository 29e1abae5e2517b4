"""A branch's own privacy budget: the epsilon its customers may lose, kept by the branch.

Why this exists
---------------
Each round a branch takes is checked on its own (:mod:`secagg.aggregation.policy`: the
clip, the noise multiplier, the threshold, the backend), but the *number* of rounds,
and so the epsilon the branch's customers lose, was the server's alone
(``dp.epsilon_budget`` is in the server's config). A malicious or buggy server could run
round after round, each acceptable by itself, until the customers had lost any epsilon.
With ``[branch] epsilon_budget`` (and its ``delta``) the branch keeps the count itself:

* it takes only rounds whose noise it can account for itself, those in which it adds its
  **own** distributed-DP noise share (:meth:`RoundSpec.own_noise_share
  <secagg.aggregation.base.RoundSpec.own_noise_share>`): whole-update shares, or
  record-level ones when it set ``record_sensitivity``. Any other round (no share; noise
  the server or a CKKS key holder adds; a record-level share sized for one unit of a
  branch that protects its whole update) is refused as a policy refusal naming
  ``branch.epsilon_budget``;
* it charges a round with what it can verify or chooses to assume: the spec's mechanism
  (its sensitivity and the integer std of each share: the noise multiplier split over
  the spec's expected clients), and the honest shares in the sum counted from its
  **own** assumptions (:func:`honest_shares`: the round's cohort, capped by its
  ``expected_clients``, less the colluders and dropouts its ``corrupt_fraction``,
  ``min_colluders`` and ``dropout_fraction`` assume, never more than its own minimum
  threshold less those colluders, since the server chooses who drops; at least its own
  share). Only a
  round whose parties are certified (the active variant) counts the others: in any other
  the server could fill the round with parties of its own, and only the branch's own
  share is counted. **No**
  amplification by sampling is credited: the branch cannot verify the server's sampling;
* rounds compose with the accountant the server uses for distributed DP, the distributed
  discrete Gaussian's RDP bound (Kairouz, Liu and Steinke 2021;
  :mod:`secagg.dp.ddg_accounting`), so the figures are comparable: each round's RDP curve
  at :data:`~secagg.dp.ddg_accounting.DDG_ORDERS` is added to the branch's running sum
  (RDP adds across rounds whatever parameters each had), converted to epsilon at the
  branch's delta. Every sum is rounded up and the epsilon is raised by
  :data:`ROUND_UP` (relative), so float error never shows less than was spent;
* before training (a DP-SGD hook must not spend on a round that will be refused) the
  branch computes its epsilon after the round; above the budget it refuses the round,
  naming ``branch.epsilon_budget`` with the spent, this round's and the budget's
  figures. Otherwise the charge is written to the branch's state file
  (:class:`~secagg.runtime.branch_state.RoundMark`, atomically) before anything is
  trained or sent, in the same atomic write as the round's number (one write a round): a
  crash after the masked input left cannot lose the charge, and a round charged that then
  aborts (or whose training fails) stays charged, the safe side.

A branch without a state file keeps its spend in memory only (a restart starts again
from nothing; it logs a warning at start), which ``secagg client`` refuses: the server
decides when a branch process stops, and a service manager restarts it. A state file
that cannot be read stops the branch, never resets its spend, and one that records more
than the budget (a budget lowered since) stops it at start (:class:`BudgetSpent`).

The branch's figure is an upper bound under its own assumptions, without the server's
sampling amplification. Its corrupt fraction is of the cohort it was told about,
``max(round, expected_clients)``: a server that samples a round from that cohort may
pack every colluder of it into the round, so all of them are counted (a round of 20 from
an ``expected_clients`` of 100 at 5 %: 5 colluders, not the 1 of the round's own 5 %;
review of colluders, 2026-12-07). A branch that does not set ``expected_clients`` knows
no cohort beyond the round, and a server sampling from a larger federation may then lie
*below* the ledger (12 branches, 3 colluders, a cohort of 6: the ledger counts 3 honest
shares, the branch under corrupt_fraction 0.25 four); such a branch sets
``expected_clients`` to the federation, or ``min_colluders`` to the colluders it assumes
in it (review of the
branch budget, 2026-12-05). What a DP-SGD training hook reports (its
:class:`~secagg.dp.release.RecordReport`) is not composed into this budget: DP-SGD's
epsilon bounds the same uploads for its own unit with its own accountant (the hook's
target), and adding the two would count one release twice; the budget covers the noise
shares (docs/privacy.md, "A branch's own budget").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from secagg.aggregation.base import RoundSpec
from secagg.aggregation.policy import BranchPolicy
from secagg.dp.ddg_accounting import DDG_ORDERS, ddg_round_rdp, rdp_epsilon
from secagg.dp.display import shown
from secagg.errors import ConfigurationError, PolicyRefused
from secagg.protocol.graph_params import tolerated_colluders, tolerated_dropouts

log = logging.getLogger("secagg.client")

#: relative amount every epsilon of the budget is raised by: the RDP conversion's float
#: error is far below it, so the figure compared and shown is never below the bound
ROUND_UP = 1e-9
#: the ``branch.`` key every refusal of the budget names
BUDGET_KEY = "branch.epsilon_budget"


@dataclass(frozen=True)
class PrivacySpend:
    """What a branch has spent: the rounds charged and the sum of their RDP curves at
    :data:`~secagg.dp.ddg_accounting.DDG_ORDERS` (empty: no round). Independent of any
    delta, so a branch that changes its delta keeps its spend and reads it at the new one."""

    rounds: int = 0
    rdp: tuple[float, ...] = ()

    def plus(self, curve: tuple[float, ...]) -> PrivacySpend:
        """This spend with one more round of ``curve``; each sum rounded up (one ulp), so
        the running sum is never below the exact one however many rounds it holds."""
        total = self.rdp or (0.0,) * len(curve)
        return PrivacySpend(
            self.rounds + 1,
            tuple(math.nextafter(a + b, math.inf) for a, b in zip(total, curve, strict=True)),
        )

    def epsilon(self, delta: float) -> float:
        """Epsilon at ``delta``, rounded up (0.0 before any round)."""
        if not self.rdp:
            return 0.0
        return _up(rdp_epsilon(self.rdp, delta))

    def to_dict(self) -> dict[str, Any]:
        """The state file's form (JSON floats read back exactly)."""
        return {"rounds": self.rounds, "orders": list(DDG_ORDERS), "rdp": list(self.rdp)}

    @classmethod
    def from_dict(cls, data: object) -> PrivacySpend:
        """Read back :meth:`to_dict`; anything else is a ValueError (the state file is then
        refused: a spend guessed or reset protects nothing)."""
        if not isinstance(data, Mapping) or set(data) != {"rounds", "orders", "rdp"}:
            raise ValueError("spent is not a branch's privacy spend")
        rounds, orders, rdp = data["rounds"], data["orders"], data["rdp"]
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ValueError(f"spent.rounds is {rounds!r}, not a count")
        if orders != list(DDG_ORDERS):
            raise ValueError("spent is recorded at other Renyi orders than this release's")
        if not isinstance(rdp, list) or len(rdp) != (len(DDG_ORDERS) if rounds else 0):
            raise ValueError("spent.rdp is not a curve at the Renyi orders")
        for value in rdp:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"spent.rdp holds {value!r:.40}, not a number")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"spent.rdp holds {value!r}, not a number >= 0")
        return cls(rounds, tuple(float(value) for value in rdp))


class BudgetSpent(ConfigurationError):
    """A branch started with a budget below what its state file says it has spent (the
    budget was lowered): it stops at start with one line (``secagg client`` exits 2)
    rather than dial, be counted into rounds and refuse each one."""


class SpendStore(Protocol):
    """Where a branch keeps its spend: its state file
    (:class:`~secagg.runtime.branch_state.RoundMark`) or, without one, its memory."""

    spent: PrivacySpend | None

    def charge(self, spend: PrivacySpend) -> None:
        """Keep ``spend`` (durably, for a file) before returning; unchanged on failure."""


class MemorySpend:
    """A branch's spend without a state file: kept while the process runs."""

    def __init__(self) -> None:
        self.spent: PrivacySpend | None = None

    def charge(self, spend: PrivacySpend) -> None:
        self.spent = spend


@dataclass(frozen=True)
class RoundCharge:
    """One round's charge, computed before training: its curve, what it assumed and the
    epsilons before and after it (rounded up)."""

    round: int
    curve: tuple[float, ...]
    honest_shares: int
    spent_before: float
    alone: float  # this round's own epsilon at the budget's delta
    spent_after: float


def honest_shares(
    policy: BranchPolicy,
    num_clients: int,
    *,
    certified: bool = True,
    fewest_in_sum: int | None = None,
    drawn_from: int = 0,
) -> int:
    """The noise shares a branch counts on in a round of ``num_clients``, from its own
    assumptions only: the cohort, capped by its ``expected_clients`` (a round larger than
    that is refused anyway); less the colluders it assumes (its corrupt fraction of the
    cohort it was told about, ``max(round, expected_clients)``, all of them possibly in
    this round since the server draws it, and at least ``min_colluders`` of the others:
    the protocol's own count, up to ``n - 1`` as the DP layer counts them, since the
    protected branch is honest); less the dropouts
    its ``dropout_fraction`` assumes (their shares never arrive). At least one: its own.

    The same rule as the threshold the branch computes itself
    (:class:`~secagg.protocol.config.ClientPolicy`), so its privacy and its security rest
    on one set of assumptions, none of them the server's.

    ``certified``: whether the round's parties are certified (the active variant: every
    party a distinct certificate of the branch's CA, verified before anything is sent).
    Without that the other parties are whoever the server says they are: it can fill a
    round with parties of its own (a Sybil round) that add no noise, and a corrupt
    fraction of the *cohort* then says nothing about how many shares are honest. So an
    uncertified round counts this branch's own share only.

    ``fewest_in_sum``: the fewest parties whose inputs the sum can hold
    (:meth:`RoundSpec.fewest_in_sum <secagg.aggregation.base.RoundSpec.fewest_in_sum>`:
    the smallest threshold this branch accepts). The dropouts a branch assumes bind
    nobody: a hostile server leaves out whom it likes, down to that floor, and keeps its
    colluders in. So at most ``fewest_in_sum`` less the colluders are counted (a round of
    5 under the defaults: threshold 4, 2 colluders, 2 shares, not the 3 its dropout
    fraction alone leaves). Review of the branch budget, 2026-12-05."""
    if not certified:
        return 1
    n = int(num_clients)
    # the cohort the branch was told about: its colluders are that cohort's, whatever
    # round the server draws from it (a hostile server puts all of them in a round of
    # 20 from 100: 5 at 5 %, where 5 % of the round counted 1, or min_colluders' 2)
    # ``drawn_from``: the population the round names (its spec's; 0: none), whose
    # colluders its protocol is sized for and the branch's own threshold counts: a round
    # named as drawn from 100 counted 2 colluders of its 20 here, 8 honest shares where
    # its threshold assumes 5 colluders and leaves 5 (review of colluders, 2026-12-07)
    cohort = max(n, policy.expected_clients or 0, int(drawn_from))
    if policy.expected_clients is not None:
        n = min(n, policy.expected_clients)
    if n <= 1:
        return 1
    colluders = min(
        max(
            tolerated_colluders(cohort, policy.corrupt_fraction, policy.min_colluders),
            policy.min_colluders,
        ),
        n - 1,
    )
    # the protocol's count (its 1e-14 nudge: 0.29 * 100 is 28.999... in floats, and a
    # plain floor assumed 28 dropouts where the round is sized for 29, one honest share
    # too many)
    dropouts = tolerated_dropouts(n, policy.dropout_fraction)
    counted = n - colluders - dropouts
    if fewest_in_sum is not None:
        counted = min(counted, fewest_in_sum - colluders)
    return max(1, counted)


class BranchBudget:
    """The budget of one branch (see the module docstring): :meth:`admit` a round before
    training, :meth:`record` its charge before anything of it leaves."""

    def __init__(self, policy: BranchPolicy, store: SpendStore) -> None:
        if policy.epsilon_budget is None or policy.delta is None:
            raise ValueError("a BranchBudget needs a policy with epsilon_budget and delta")
        self.policy = policy
        self.budget = float(policy.epsilon_budget)
        self.delta = float(policy.delta)
        self._store = store

    @classmethod
    def open(cls, policy: BranchPolicy, mark: SpendStore | None, name: str) -> BranchBudget | None:
        """The budget of ``policy`` kept in ``mark`` (a state file), or in memory with a
        warning when there is none; None without a budget. Logs what was spent so far."""
        if policy.epsilon_budget is None:
            return None
        if mark is None:
            log.warning(
                "%s: branch.epsilon_budget without a state file: the epsilon spent is kept "
                "in memory only, and a restarted branch starts again from 0 (secagg client "
                "--state keeps it)",
                name,
            )
        budget = cls(policy, MemorySpend() if mark is None else mark)
        if budget.spent > budget.budget:
            # a budget lowered below the spend its state file keeps: every round would be
            # refused, each after the server counted the branch in; said once, at start
            raise BudgetSpent(
                f"{BUDGET_KEY} {shown(budget.budget)} is below what {name} has already "
                f"spent: epsilon {shown(budget.spent)} over {budget.rounds} round"
                f"{'' if budget.rounds == 1 else 's'} at delta "
                f"{shown(budget.delta, 4, significant=True)} (its state file), so it could "
                "take no round; raise the budget only if its customers may lose more"
            )
        log.info(
            "%s: epsilon spent %s of its budget %s (delta %s, %d rounds charged)",
            name,
            shown(budget.spent),
            shown(budget.budget),
            shown(budget.delta, 4, significant=True),
            budget.rounds,
        )
        return budget

    @property
    def _spend(self) -> PrivacySpend:
        return self._store.spent or PrivacySpend()

    @property
    def spent(self) -> float:
        """The epsilon spent so far at the budget's delta, rounded up."""
        return self._spend.epsilon(self.delta)

    @property
    def rounds(self) -> int:
        """The rounds charged so far."""
        return self._spend.rounds

    def admit(self, round_number: int, spec: RoundSpec) -> RoundCharge:
        """The charge of round ``round_number`` run by ``spec``, checked against the budget
        before anything is trained; a :class:`~secagg.errors.PolicyRefused` naming
        ``branch.epsilon_budget`` for a round it cannot account for, or one past the
        budget. Nothing is recorded here (:meth:`record`)."""
        mechanism = spec.own_noise_share()
        if mechanism is None:
            raise PolicyRefused(
                BUDGET_KEY,
                "the round carries no distributed noise share of this branch's own, so its "
                "epsilon would rest on noise the server (or a key holder) adds, which this "
                "branch cannot account for; with a budget it takes only rounds where it adds "
                "its own share",
            )
        if mechanism.record_level and self.policy.record_sensitivity is None:
            raise PolicyRefused(
                BUDGET_KEY,
                f"the round's noise is sized for a change of {mechanism.clip:g} per "
                f"protected unit inside an update of norm up to {mechanism.vector_bound:g}; "
                "this branch's budget covers its whole update (set branch.record_sensitivity "
                "to account record-level rounds)",
            )
        # the certificates themselves are verified before the round's session is built
        # (a list that does not verify refuses the round, and nothing is recorded)
        certified = bool(spec.identity_certificates())
        shares = honest_shares(
            self.policy,
            spec.num_clients,
            certified=certified,
            fewest_in_sum=spec.fewest_in_sum(self.policy),
            drawn_from=spec.drawn_from(),
        )
        curve = ddg_round_rdp(
            l2_sensitivity=mechanism.sensitivity,
            l1_sensitivity=mechanism.l1_sensitivity,
            local_stddev=float(mechanism.local_sigma),
            noise_contributors=shares,
            dimension=mechanism.padded,
        )
        before = self._spend
        after = before.plus(curve).epsilon(self.delta)
        alone = PrivacySpend().plus(curve).epsilon(self.delta)
        spent = before.epsilon(self.delta)
        if not after <= self.budget:  # also NaN
            raise PolicyRefused(
                BUDGET_KEY,
                f"round {round_number} would take this branch's epsilon past its budget: "
                f"spent {shown(spent)} over {before.rounds} round"
                f"{'' if before.rounds == 1 else 's'} + this round "
                f"{shown(alone)} (noise multiplier {mechanism.noise_multiplier:g}, "
                f"{shares} honest shares assumed) = {shown(after)} > budget "
                f"{shown(self.budget)} at delta {shown(self.delta, 4, significant=True)}"
                + (
                    ""
                    if certified
                    else "; the round's parties are not certified, so only this branch's "
                    "own share is counted (rounds of the active variant, [backend] active "
                    "= true, count the others under this branch's assumptions)"
                ),
            )
        return RoundCharge(round_number, curve, shares, spent, alone, after)

    def after(self, charge: RoundCharge) -> PrivacySpend:
        """The spend with ``charge`` added, recorded by nobody yet: what a branch with a
        state file writes together with the round's mark
        (:meth:`~secagg.runtime.branch_state.RoundMark.advance`), in one write."""
        return self._spend.plus(charge.curve)

    def record(self, charge: RoundCharge) -> None:
        """Keep ``charge`` (on disk with a state file) before anything of its round leaves;
        :class:`~secagg.runtime.branch_state.BranchStateError` when it cannot be written
        (nothing kept: the branch then stops)."""
        self._store.charge(self.after(charge))


def _up(epsilon: float) -> float:
    """``epsilon`` raised by :data:`ROUND_UP` (relative) and one ulp: the safe side."""
    return math.nextafter(epsilon * (1 + ROUND_UP), math.inf)


__all__ = [
    "BUDGET_KEY",
    "ROUND_UP",
    "BranchBudget",
    "BudgetSpent",
    "MemorySpend",
    "PrivacySpend",
    "RoundCharge",
    "SpendStore",
    "honest_shares",
]
