"""``secagg audit verify``: the chain, every signature, and every epsilon claim.

The epsilon check does not trust the claimed numbers: it replays the recorded
mechanism parameters of every completed round through the same accountants the
server's mechanisms hold (:mod:`secagg.dp.accountants`: the Gaussian for central
noise, the distributed discrete Gaussian's bound for noise added by the clients,
Opacus's for each branch's DP-SGD)
and compares the cumulative epsilon each row claims with what follows. Each row is
replayed with its *own* recorded parameters (noise multiplier, sampling rate,
accountant, delta): a federation restarted under another config changes them between
rows, and the history is the ledger's, never the current config's.

Beside the replay, every row's DP block must be consistent with itself (DP review
M1, C1, L1):

* the delta the row prints (``privacy.delta``) is the one its block accounts at, and
  for record-level DP every branch accounts at that delta too;
* a client-level round accounted with Poisson amplification (sample rate below 1)
  must have drawn its cohort by Poisson sampling (``dp.sampling.kind``), at that rate,
  and not from the config's seed (``dp.sampling.seeded``): a seeded cohort is
  predictable by anyone holding the config, and amplification needs a secret one. Only
  a replay whose noise was seeded too (``noise_seeded``, a simulation's) may claim it,
  and that round is reported as not private on both counts;
* the recorded noise std is the noise multiplier times the clip (the replayed z is
  the noise that was added);
* a branch's DP-SGD history only grows: each report extends the previous one, and its
  epsilon never goes down by more than its accountant's error (Opacus's PRV: 0.01; the
  larger figure is kept, and a report may carry it in place of its own);
* a completed round without a DP block in a ledger that has DP elsewhere (or under a
  config with DP) released without noise: from it on the epsilon is infinite;
* an aborted round released nothing, so its row records the model the row before it
  did (unless its sum was revealed, which charges it): a moved model in a row charged
  nothing fails (DP audit t6).

Central rows in the format before 2026-12-03 claim amplification by sampling, which the
engine no longer credits (a round's members see one another; its size is published).
The row version did not change, so such a row cannot be told from a forged one: a
ledger whose latest claim rests on them is reported not private, with the epsilon of
its central rounds charged to every client, unamplified, and a config's budget is held
to that figure (DP audit t2).

A ledger without any DP block (and no config with DP) is a federation that released
without differential privacy: it claims no epsilon, so there is nothing to replay, but
its completed rounds are not private all the same (:attr:`AuditResult.
released_without_dp`), and that, not seeded noise, is the reason given.

Given the federation's config as :class:`ExpectedPrivacy` (plain values: the ledger
layer never imports the runtime), every DP row must also account at the config's
delta, unit and mechanism, and record the config's sampling kind, rate and
population. A noise multiplier below the config's and another clip may differ (a
restart under a new config): they are replayed as recorded and listed in
:attr:`AuditResult.notes`; a noise multiplier above the config's fails (more noise
claimed than the config runs, a smaller epsilon). Without a config the recorded noise
multipliers are the ledger's word, and :meth:`AuditResult.ledgers_word` says so.

The ledger must begin at round 1: the server numbers rounds from 1 and writes a row
for every one (aborted ones included; a restart resumes the numbering and rebuilds a
missing row from its state), so a well-formed chain whose first row is round 5 is a
ledger begun mid-federation (the old one lost, or a fresh one started) whose epsilon
covers rounds 5 on only, while rounds 1-4 released models too: it fails, naming the
missing rounds. An auditor who holds the earlier rounds' record elsewhere declares it
(``first_round``, ``--first-round``): the ledger must then begin there, and every
epsilon it prints is labelled as covering the rounds from it on only. Rows claim the
federation's cumulative epsilon, the earlier rounds included, so a ledger split in two
(an archive of its first rows and the live tail, or a ledger begun afresh mid-way) is
verified with the earlier one (``prior_ledger``, ``--prior-ledger``): it is checked as a
ledger and replayed first, never taken on the tail's word, and every epsilon printed is
then the federation's.

Two more verdicts sit beside it. A head the auditor kept from an earlier audit
(``expect_head``) must still be in the chain: the signatures alone accept a ledger cut
back to an earlier signed head. And a round whose DP noise was drawn from a seeded,
replayable stream (``noise_seeded`` in its row, a simulation's) is reported as not
private: anyone with the seed regenerates the noise and subtracts it, whatever epsilon
the accountant computes (security review M1). Only a row with a DP block has DP noise
to seed: the flag on a row without one (simulations without DP wrote it from their
replay setting) is noted, not reported as seeded noise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secagg.dp.display import shown
from secagg.errors import ConfigurationError
from secagg.ledger.chain import (
    AnchorCheck,
    ChainReport,
    ChainRow,
    LedgerError,
    LedgerKeptChanging,
    NotALedger,
    OptionMistake,
    check_expected_head,
    log_named,
    read_chain,
)
from secagg.ledger.entry import Reconstruction, rebuilt, row_shape_problem
from secagg.ledger.replay import EpsilonReplay
from secagg.ledger.row_checks import (
    FLOAT_NOISE,
    ExpectedPrivacy,
    _agrees,
    _amplified,
    _below_replay,
    _check_against,
    _check_consistency,
    _check_model_moved,
    _check_noise_shares,
    _claimed,
    _claims_amplification,
    _round_list,
    _same,
    _UnamplifiedCharge,
    accounted_delta,
    charges_a_round,
    noise_seeded,
    rebuilt_line,
    sampling_seeded,
)

#: a claim this much (relative) below its replay, within :data:`FLOAT_NOISE`, is noted
#: as understated (below it, float noise far under any digit shown)
_UNDERSTATED = 1e-12


@dataclass
class AuditResult:
    chain: ChainReport
    epsilons: list[tuple[int, float | None]] = field(default_factory=list)  # (seq, recomputed)
    failure: str | None = None
    anchor: AnchorCheck | None = None  # set when an expected head was given and checked
    seeded: list[tuple[int, Any]] = field(default_factory=list)  # (seq, round): seeded noise
    #: (seq, round): replayed rounds (seeded noise) that also claim amplification by a
    #: cohort drawn from the config's seed; every one of them is in ``seeded`` too
    seeded_sampling: list[tuple[int, Any]] = field(default_factory=list)
    unrecorded: int = 0  # rows older than the noise_seeded field (row version < 2)
    unrecorded_prior: int = 0  # how many of them are the prior ledger's
    #: ledgers whose central rows claim amplification by sampling (written before
    #: 2026-12-03): the epsilon of their central rounds charged to every client,
    #: unamplified, which is what holds against the cohorts' own members
    unamplified_epsilon: float | None = None
    #: ledgers charged per client: how many clients the rows name and the most rounds
    #: any one was charged for (rounds charged to every client included)
    per_client: dict[str, Any] | None = None
    #: (seq, round): completed rounds released without a DP block (epsilon infinite in
    #: a DP ledger; no epsilon at all in a ledger without DP, see released_without_dp)
    unnoised: list[tuple[int, Any]] = field(default_factory=list)
    #: (seq, round): the first row with a DP block whose replayed epsilon is infinite
    #: (its round added no noise: noise multiplier 0); no finite epsilon holds from it
    #: on. Why: such a ledger claims "inf" truthfully, so every claim followed and it
    #: was VERIFIED, private, exit 0, where a round without a DP block is NOT PRIVATE
    noiseless: list[tuple[int, Any]] = field(default_factory=list)
    #: some row has a DP block or the config given has DP. False: the federation ran
    #: without DP, so its rows claim no epsilon and "cumulative epsilon" means nothing
    dp_claimed: bool = False
    #: DP rows checked against the expected config (0 without one), the prior ledger's
    #: included: :attr:`checked_against_config_prior` of them are the prior's
    checked_against_config: int = 0
    checked_against_config_prior: int = 0
    #: client-level DP rows without a ``dp.sampling`` record (older rows): kind unchecked;
    #: the prior ledger's included, :attr:`without_sampling_prior` of them
    without_sampling: int = 0
    without_sampling_prior: int = 0
    #: DP rows (the prior ledger's included) that record a noise multiplier (central and
    #: distributed rows; a record-level row's are in its branches' reports): replayed as
    #: recorded, since nothing in a ledger shows the noise that was drawn. Without a
    #: config that figure is the ledger's word; with one, none may exceed the config's
    #: (:attr:`config_noise_multiplier`)
    noise_multiplier_rows: int = 0
    #: the config's noise multiplier every row's was held to (None: no config given)
    config_noise_multiplier: float | None = None
    #: charged distributed rows: each counts its honest noise shares from the corrupt
    #: fraction it records (none recorded: the fewest colluders), which only a config
    #: pins (:attr:`config_corrupt_fraction`)
    distributed_rows: int = 0
    #: whether a config's corrupt fraction held every distributed row's
    config_corrupt_fraction: bool = False
    #: informational lines (parameters that differ from the config, replayed as recorded)
    notes: list[str] = field(default_factory=list)
    #: record-level ledgers: each branch's (identity hash) latest re-derived epsilon
    record_level: dict[str, float] = field(default_factory=dict)
    #: (seq, round): completed central rows (written before 2026-12-03) that claim
    #: amplification by sampling, in a ledger whose latest claim still rests on it (no
    #: per-client row after them). The engine no longer credits that amplification (a
    #: round's members see one another, its size is published) and a forged "old" row
    #: cannot be told from a genuine one (the row version did not change), so such a
    #: ledger is not private: :attr:`unamplified_epsilon` is what holds (DP audit t2)
    amplified: list[tuple[int, Any]] = field(default_factory=list)
    #: with ``--config``'s ``epsilon_budget``: the epsilon the last row checked was held
    #: to (its replayed claim, or the unamplified charge where the claim credits
    #: amplification by sampling), so the report compares the same figure
    budget_epsilon: float | None = None
    #: central rows whose claim matched only the from-scratch accountant (written
    #: before accounting became incremental; see :meth:`EpsilonReplay.older_claim`)
    from_scratch: int = 0
    #: (seq, round, claimed, replayed): rows whose claim lies below the epsilon their
    #: mechanism replays to, within :data:`FLOAT_NOISE` (beyond it verify fails).
    #: Accepted, since replay arithmetic may differ from the server's in the last
    #: digits, but noted: every figure verify and the report print is then the replay's
    understated: list[tuple[int, Any, float, float]] = field(default_factory=list)
    #: the round the ledger must begin at (``first_round``): 1, or the round an auditor
    #: declared the ledger begins at because the rounds before it are accounted in
    #: another record; then every epsilon here covers the rounds from it on only
    first_round: int = 1
    #: ``--prior-ledger``: the archived ledger holding this chain's earlier rounds (its
    #: path, rows and head), replayed before this file's rows so that every epsilon here
    #: is the federation's from :attr:`first_round` on, theirs included; None without one
    prior_ledger: str | None = None
    prior_rows: int = 0
    prior_head: str | None = None
    #: the prior ledger's last epsilon (the larger of its claim and replay) and the
    #: delta its last charged DP row accounts at (:meth:`claim_delta`'s rule): what
    #: holds when this file has no rows yet (a ledger just begun afresh)
    prior_epsilon: float | None = None
    prior_delta: float | None = None
    #: record level: each branch's (identity hash) latest report's delta in the prior
    #: ledger (None: not a finite one): a branch that last reported there may be the
    #: worst, and this file's claim then holds at its delta (:meth:`claim_delta`)
    prior_report_deltas: dict[str, float | None] = field(default_factory=dict)
    #: the prior ledger's last round number: where its spend ends (the report's plot
    #: starts there, and its text names rounds first_round..this)
    prior_last_round: Any = None
    #: the prior ledger's last DP block: what describes the federation in a report of a
    #: ledger with no row yet
    prior_dp: dict[str, Any] | None = None
    #: (seq, round, provenance): rows rebuilt after the fact (``reconstructed: true``),
    #: with why and from what (None: a row written before the record existed)
    rebuilt: list[tuple[int, Any, Reconstruction | None]] = field(default_factory=list)
    #: seqs of this file's rows that charge nothing and claim every charged round at
    #: their own delta (a delta other than the epsilon's before them): each states its
    #: epsilon at its delta, so :meth:`claim_delta` and the delta notes read it so
    restated: set[int] = field(default_factory=set)

    #: ``epsilons`` by seq (a report asks once per row), and the ``epsilons`` it was
    #: built from: rebuilt whenever they differ, not only when the length does (an
    #: entry replaced in place kept showing the figure it replaced)
    _replayed: dict[int, float | None] = field(default_factory=dict, repr=False, compare=False)
    _replayed_from: list[tuple[int, float | None]] = field(
        default_factory=list, repr=False, compare=False
    )

    def shown_epsilon(self, seq: int, claimed: float | None) -> float | None:
        """What a reader is shown for row ``seq``: the larger of its ``claimed`` epsilon
        and the replayed one (a claim within the tolerance below the replay would read
        less than the mechanism spent; a claim the older accountant wrote may lie above)."""
        # a list comparison (in C, identity first): 2 000 rows cost microseconds a call
        if self._replayed_from != self.epsilons:
            self._replayed_from = list(self.epsilons)
            self._replayed = dict(self.epsilons)
        replayed = self._replayed.get(seq)
        if claimed is None or replayed is None:
            return claimed if replayed is None else replayed
        return max(claimed, replayed)

    def claim_delta(self) -> float | None:
        """The delta the ledger's cumulative epsilon holds at: the one the last charged
        DP row accounts at (a completed round's, or an aborted one's whose sum was
        revealed: the rows whose replay composes the epsilon), this file's, else the
        prior ledger's (:attr:`prior_delta`); None when no such row records one.
        ``audit verify`` (text and ``--json``) and ``audit report`` print this, and
        only this, beside the epsilon.

        Why one rule, read from the charged rows: both commands took ``privacy.delta``
        from the last row, and a row that charges nothing carries the last epsilon on
        without any accountant composing it at its delta. A re-signed ledger of rounds
        accounted at 1e-5 whose last, aborted row printed 1e-12 (without a DP block, or
        with one at 1e-12) was VERIFIED as "epsilon 4.090 at delta 1e-12", where those
        rounds spend far more; one whose last row printed none read "delta not
        recorded" beside an epsilon the replay had just derived at 1e-5.

        Record-level DP: a row that charges nothing but carries branches' reports (an
        aborted round, the branches having trained) states the worst branch's epsilon
        so far, each branch's at the delta its report accounts at; after the last
        charged row, such a row's figure is the claim, at the largest delta of the
        branches' latest reports (an epsilon at a delta holds at any larger one: the
        safe side). Why: a ledger whose rounds all aborted claimed the branches'
        epsilon and read "its delta is not recorded: no DP block records one", where
        every row's block and every report recorded it.

        A charged record-level row is no different: its epsilon is the worst branch's
        latest, and that branch may have last reported in an earlier row at a larger
        delta than this row's (a branch absent from this round, after a restart under a
        smaller delta). The claim is then at the larger of the row's delta and the
        branches' latest reports' (:func:`_record_claim_delta`). Why: rounds at 1e-3
        then one at 1e-5 without the worst branch VERIFIED as "epsilon 4.53 at delta
        1e-05", where 4.53 is that branch's figure at 1e-3."""
        for index in range(len(self.chain.rows) - 1, -1, -1):
            row = self.chain.rows[index]
            entry = row.entry
            dp = entry.get("dp") if isinstance(entry, dict) else None
            if isinstance(dp, dict) and (charges_a_round(entry) or row.seq in self.restated):
                if dp.get("unit") == "record" and dp.get("mechanism") != "distributed":
                    return _record_claim_delta(
                        dp, self.chain.rows[: index + 1], self.prior_report_deltas
                    )
                return accounted_delta(dp)
            if isinstance(dp, dict) and _branch_reports(dp):
                return _reports_delta(self.chain.rows[: index + 1], self.prior_report_deltas)
        return self.prior_delta

    @property
    def ok(self) -> bool:
        """The ledger is intact and every claim follows (integrity, not privacy)."""
        return self.chain.ok and self.failure is None

    @property
    def private(self) -> bool:
        """Intact, no round's noise came from a replayable stream, none went unnoised, and
        the claim does not rest on amplification by sampling the engine no longer credits."""
        return (
            self.ok
            and not self.seeded
            and not self.seeded_sampling
            and not self.unnoised
            and not self.noiseless
            and not self.amplified
        )

    @property
    def released_without_dp(self) -> bool:
        """The federation ran without DP and released rounds: not private because no
        epsilon was ever claimed, a different reason from seeded noise or from noise
        missing in a ledger that claims DP (whose epsilon turns infinite)."""
        return not self.dp_claimed and bool(self.unnoised)

    @property
    def excluded_rounds(self) -> str | None:
        """``rounds 1-4`` (``round 1``): the rounds before :attr:`first_round`, which this
        ledger's epsilon does not cover; None when it begins at round 1."""
        return _rounds_before(self.first_round)

    @staticmethod
    def _whose(total: int, prior: int) -> str:
        """`` (M of this file, K of the prior ledger)``: which rows a count covers."""
        return f" ({total - prior} of this file, {prior} of the prior ledger)"

    def ledgers_word(self) -> list[str]:
        """What the verdict took on the ledger's word, one line each: the recorded noise
        multipliers when no config held them, the corrupt fraction of distributed rows
        when no config gave one (a smaller one counts more noise shares honest: the rows
        a server would have written at 0 for a run at 0.25 verified at a smaller epsilon,
        nothing said), and the branches' DP-SGD histories of a record-level ledger, which
        no config holds ([] when none applies).

        Why: the replay takes each row's z as recorded; without ``--config`` a re-signed
        ledger recording z = 10 for a run at z = 1 VERIFIED, the output saying nothing of
        what that verdict rests on. A record-level DP-SGD ledger said nothing either,
        with ``--config`` or without: its epsilon is replayed from the (noise multiplier,
        sample rate, steps) each branch reported, which the key holder writes into the
        rows, and one re-signed with every branch at z = 5 for a run at z = 1 VERIFIED
        at epsilon 0.1424 for 1.4514, nothing saying where those histories came from.

        [] for a FAILED ledger (:attr:`ok` false): no verdict rests on anything there, and
        ``--json``'s ``on_the_ledgers_word`` read "replayed as recorded" beside ``"verdict":
        "FAILED"`` for rows whose claims had just failed their replay, as if the verdict
        had vouched for them on trust (review of the audit command's edges, 2026-12-06).
        The text output and ``audit report`` printed these lines for a verified ledger
        only; now every consumer has the same rule from here."""
        if not self.ok:
            return []
        said: list[str] = []
        if self.noise_multiplier_rows and self.config_noise_multiplier is None:
            rows = self.noise_multiplier_rows
            said.append(
                f"the noise multiplier {rows} DP row{'s' if rows > 1 else ''} "
                f"record{'' if rows > 1 else 's'}, replayed as recorded (nothing in a "
                "ledger shows the noise that was drawn): no --config held it to the "
                "federation's, which fails a row recording more noise than the config runs"
            )
        if self.distributed_rows and not self.config_corrupt_fraction:
            rows = self.distributed_rows
            said.append(
                f"the corrupt fraction {rows} distributed DP row{'s' if rows > 1 else ''} "
                f"record{'' if rows > 1 else 's'} (or, where none is recorded, the fewest "
                "colluders the rule assumes), from which each round's honest noise shares are "
                "counted: a smaller fraction counts more shares honest and reads as a smaller "
                "epsilon; no --config held it to the federation's"
            )
        if self.record_level:
            branches = len(self.record_level)
            said.append(
                f"the DP-SGD histories (noise multiplier, sample rate, steps) of the "
                f"{branches} branch{'es' if branches > 1 else ''} the rows report, replayed "
                "as recorded: each branch trains in its own process and no --config holds "
                "them, so a row recording more noise or a smaller sample rate than a branch "
                "ran reads as a smaller epsilon; each branch can compare its own history "
                "with its row's (the operator, who holds the salt, names its identity hash)"
            )
        return said

    def config_rows_line(self) -> str:
        """``N DP rows match`` with, beside a prior ledger, how many are this file's and
        how many the prior's. Why: the count covers both, and next to "3 rows (after
        the prior ledger's 3)" a bare 6 read as this file's."""
        whose = (
            ""
            if self.prior_ledger is None
            else self._whose(self.checked_against_config, self.checked_against_config_prior)
        )
        return f"{self.checked_against_config} DP rows{whose} match"

    def unrecorded_line(self) -> str:
        """``N rows`` without the noise_seeded field (with the split beside a prior
        ledger, as above: the count covers both files' rows)."""
        whose = (
            "" if self.prior_ledger is None else self._whose(self.unrecorded, self.unrecorded_prior)
        )
        return f"{self.unrecorded} rows{whose}"

    def without_sampling_line(self) -> str:
        """``N client-level rows`` (with the split beside a prior ledger, as above)."""
        whose = (
            ""
            if self.prior_ledger is None
            else self._whose(self.without_sampling, self.without_sampling_prior)
        )
        return f"{self.without_sampling} client-level rows{whose}"

    def prior_rounds(self) -> str | None:
        """``rounds 1-3 (3 rows) of the prior ledger P``: where the rounds this file does
        not hold but every epsilon here counts are; None without a prior ledger's rows."""
        if not self.prior_rows:
            return None
        first, last = self.first_round, self.prior_last_round
        span = f"round {first}" if first == last else f"rounds {first}-{last}"
        return f"{span} ({self.prior_rows} rows) of the prior ledger {self.prior_ledger}"

    @property
    def first_failure(self) -> str | None:
        return self.chain.failure or self.failure

    def rebuilt_lines(self) -> list[str]:
        """One line per rebuilt row: why it was rebuilt, from what, and which of its
        fields the source did not hold (what the row holds there instead)."""
        return [rebuilt_line(number, seq, provenance) for seq, number, provenance in self.rebuilt]

    def rebuilt_json(self) -> list[dict[str, Any]]:
        """The rebuilt rows for ``--json``: provenance None for a row that predates it."""
        return [
            {
                "seq": seq,
                "round": number,
                "provenance": None if provenance is None else provenance.as_row(),
            }
            for seq, number, provenance in self.rebuilt
        ]

    def not_private_reasons(self) -> list[str]:
        """One line per round whose epsilon is no guarantee, oldest first; for a ledger
        without DP one line for all of it (no round claims an epsilon to list)."""
        if self.released_without_dp:
            rounds = _round_list([number for _, number in self.unnoised])
            return [
                "released without differential privacy: no epsilon is claimed and no "
                f"privacy guarantee holds (no row carries a DP block; completed {rounds} "
                "released without noise)"
            ]
        # ordered by round: with a prior ledger the two files' row numbers may repeat
        lines = (
            [
                (
                    number,
                    f"round {number}: completed without a DP block (released without noise); "
                    "epsilon is infinite from this round on",
                )
                for seq, number in self.unnoised
            ]
            + [
                (
                    number,
                    f"round {number}: released with a DP block but no noise (noise multiplier "
                    "0): epsilon is infinite from this round on",
                )
                for seq, number in self.noiseless
            ]
            + [
                (
                    number,
                    f"round {number}: DP noise was seeded (a simulation/replay); its epsilon is "
                    "not a privacy guarantee"
                    + (
                        ", nor is its amplification by sampling (the cohort was drawn from the "
                        "config's seed)"
                        if (seq, number) in self.seeded_sampling
                        else ""
                    ),
                )
                for seq, number in self.seeded
            ]
        )
        out = [line for _, line in sorted(lines, key=lambda item: item[0])]  # stable
        if self.amplified:  # one line for the ledger: its claim, not one round, falls short
            out.append(self._amplified_reason())
        return out

    def _amplified_reason(self) -> str:
        """Why a claim that rests on amplification by sampling is no guarantee, and the
        figure that is: the ledger's central rounds charged to every client, unamplified."""
        rounds = _round_list([number for _, number in self.amplified])
        claimed = None
        if self.epsilons:
            # the larger of the last row's claim and its replay, as every other line
            # shows it: the replay alone read less than a claim above it
            seq, replayed = self.epsilons[-1]
            entry = next((r.entry for r in self.chain.rows if r.seq == seq), None)
            claimed = (
                self.shown_epsilon(seq, _claimed(entry)) if isinstance(entry, dict) else replayed
            )
        # both at their delta (an epsilon means nothing without it), the claim's rule:
        # the central rounds charged unamplified are the same rows, at the same delta
        delta = self.claim_delta()
        at = "" if delta is None else f" at delta {shown(delta, 6, significant=True)}"
        claim = (
            "the claimed epsilon"
            if claimed is None
            else f"the claimed epsilon {shown(claimed, 4, significant=True)}{at}"
        )
        spent = (
            ""
            if self.unamplified_epsilon is None
            else "; unamplified, its central rounds spend epsilon "
            + shown(self.unamplified_epsilon, 4, significant=True)
            + at
        )
        return (
            f"{claim} holds only with amplification by sampling ({rounds}: central rows in "
            "the format before 2026-12-03), which the engine no longer credits: a round's "
            "members see one another and its size is published" + spent
        )


def _branch_reports(dp: dict[str, Any]) -> dict[str, Any]:
    """A record-level DP block's branch reports (identity hash -> report); {} for any
    other block, or one that holds none (or no mapping: a failed ledger's, as recorded)."""
    reports = dp.get("client_reports")
    return reports if dp.get("unit") == "record" and isinstance(reports, dict) else {}


def _reports_delta(
    rows: list[ChainRow], before: dict[str, float | None] | None = None
) -> float | None:
    """The largest delta the branches' latest reports in ``rows`` account at (each
    branch's last report wins), or None when none records a finite one: the delta the
    worst branch's epsilon holds at, on the safe side. ``before``: each branch's latest
    report's delta in the rows before ``rows`` (a prior ledger's), which ``rows`` update."""
    latest: dict[str, float | None] = dict(before or {})
    for row in rows:
        dp = row.entry.get("dp") if isinstance(row.entry, dict) else None
        if not isinstance(dp, dict):
            continue
        for identity, report in _branch_reports(dp).items():
            latest[identity] = accounted_delta(report) if isinstance(report, dict) else None
    deltas = [delta for delta in latest.values() if delta is not None]
    return max(deltas) if deltas else None


def _record_claim_delta(
    dp: dict[str, Any], rows: list[ChainRow], before: dict[str, float | None]
) -> float | None:
    """The delta a charged record-level row's epsilon holds at: the larger of the row's
    own delta and the largest delta of the branches' latest reports in ``rows`` (the row
    and those before it; ``before``: the prior ledger's, see :func:`_reports_delta`),
    since the row claims the worst branch's latest figure, which may be an earlier
    report at a larger delta. None when neither records one."""
    deltas = [d for d in (accounted_delta(dp), _reports_delta(rows, before)) if d is not None]
    return max(deltas) if deltas else None


#: a parameter note lists at most this many of the distinct values rows recorded
_LISTED_VALUES = 6


def _adaptive_clip_moved(rows: list[ChainRow]) -> list[bool]:
    """For each row: its clip is an adaptive clip a round before it moved (an adaptive
    row after an adaptive row), not the configured initial clip."""
    moved, previous = [], False
    for row in rows:
        dp = row.entry.get("dp")
        adaptive = isinstance(dp, dict) and isinstance(dp.get("adaptive_clipping"), dict)
        moved.append(adaptive and previous)
        previous = adaptive if isinstance(dp, dict) else previous  # an aborted row keeps it
    return moved


def _parameter_notes(rows: list[ChainRow], expected: ExpectedPrivacy) -> list[str]:
    """Rounds whose noise multiplier or clip differ from the config's (replayed as recorded).

    An adaptive row's clip (``dp.adaptive_clipping``) is compared only where the adaptive
    rows begin: later it is the clip the round applied, which moves every round by design
    (the config's ``dp.clip`` is the initial one), so every such row differed and the note
    listed every clip the federation ever had, 4 191 characters on one line after 200
    rounds. The values listed are cut to
    :data:`_LISTED_VALUES`, the count of distinct ones said (many restarts, or hostile
    rows, made the line as long)."""
    notes = []
    for label, key, want in (
        ("noise multiplier", "noise_multiplier", expected.noise_multiplier),
        ("clip", "clip", expected.clip),
    ):
        if want is None:
            continue
        other = [
            (row.entry.get("round"), row.entry["dp"].get(key))
            for row, moved in zip(rows, _adaptive_clip_moved(rows), strict=True)
            if row.entry.get("dp")
            and row.entry["dp"].get(key) is not None
            and not (key == "clip" and moved)
            and not _same(row.entry["dp"].get(key), want)
        ]
        if other:
            values = sorted({float(v) for _, v in other})
            # exact: a recorded z 1e-7 below the config's read as the config's at :g
            listed = ", ".join(repr(v) for v in values[:_LISTED_VALUES])
            if len(values) > _LISTED_VALUES:
                listed += f", ... ({len(values)} distinct values)"
            notes.append(
                f"{len(other)} round{'' if len(other) == 1 else 's'} (first: round {other[0][0]}) "
                f"recorded {label} {listed} (config: {float(want)!r}); each is replayed "
                "with its own recorded value"
            )
    return notes


def _delta_note(rows: list[ChainRow], restated: set[int]) -> str | None:
    """A note when the DP rows account at more than one delta, naming each and the round
    it begins at; None for one delta throughout.

    Why: each row is replayed at its own delta, as the server accounted it (a restart
    under a new config rebuilds its accountant over every round at the new delta), so
    the cumulative epsilon holds at the last row's delta only. A larger delta reads as a
    smaller epsilon (rounds 1-3 at 1e-5 claimed 4.09; two more at 0.01 brought the
    cumulative figure down to 3.42, where the five at 1e-5 spend 6.13), and ``audit
    verify`` prints the figure without its delta. ``--config`` holds every row to one
    delta; without it, this note is what says the figure's delta moved. ``restated``:
    ``id()`` of the rows that charge nothing but state every round so far at their own
    delta (counted as accounting at it)."""
    runs: list[tuple[Any, float]] = []  # (first round, delta) of each run of rows at one delta
    reports: dict[str, float | None] = {}  # each branch's latest report's delta (record level)
    claim: float | None = None  # the delta the last charged row's epsilon holds at
    for row in rows:
        dp = row.entry.get("dp")
        for identity, report in (_branch_reports(dp) if isinstance(dp, dict) else {}).items():
            reports[identity] = accounted_delta(report) if isinstance(report, dict) else None
        # charged rows only: one that charges nothing composes nothing at its delta
        # (see AuditResult.claim_delta; _uncharged_delta_note names those that differ)
        states = charges_a_round(row.entry) or id(row) in restated
        delta = accounted_delta(dp) if isinstance(dp, dict) and states else None
        if delta is None:
            continue
        claim = delta
        if _branch_reports(dp):
            # the worst branch's latest report may be an earlier one at a larger delta
            claim = max([delta, *(d for d in reports.values() if d is not None)])
        if not runs or runs[-1][1] != delta:
            runs.append((row.entry.get("round"), delta))
    if len(runs) < 2:
        return None
    last = runs[-1][1] if claim is None else claim
    smallest = min(delta for _, delta in runs)
    # deltas rounded up: a delta printed below the one accounted would flatter
    listed = ", ".join(
        f"delta {shown(delta, 6, significant=True)} from round {number}" for number, delta in runs
    )
    note = (
        f"the rows account at more than one delta ({listed}): each row's epsilon is "
        f"stated at its own delta, so the cumulative epsilon holds at delta "
        f"{shown(last, 6, significant=True)} only"
    )
    if smallest < last:
        note += (
            f"; at delta {shown(smallest, 6, significant=True)} the same rounds spend more "
            "than it says (a larger delta buys a smaller epsilon)"
        )
    return note


def _uncharged_delta_note(rows: list[ChainRow], restated: set[int]) -> str | None:
    """A note when rows that charge nothing (aborted, the sum unseen) record another
    delta than the charged round before them accounted the epsilon they carry at; None
    when none does.

    Why: such a row composes no round, so no accountant states its epsilon at its
    delta; a forged aborted row at delta 1e-12 after rounds at 1e-5 made verify print
    "epsilon 4.090 at delta 1e-12" and this note "holds at delta 1e-12 only". Verify
    and the report now print the charged rows' delta; this says the row's own is not
    the epsilon's. A row in ``restated`` (``id()``; a server's since 2026-12-05) claims
    every round so far at its own delta, so it is no such row: it accounts at it."""
    accounted: float | None = None  # the delta of the last charged DP row so far
    odd: list[tuple[Any, float, float]] = []  # (round, its delta, the epsilon's)
    for row in rows:
        dp = row.entry.get("dp")
        delta = accounted_delta(dp) if isinstance(dp, dict) else None
        if delta is None:
            continue
        if charges_a_round(row.entry) or id(row) in restated:
            accounted = delta
        elif accounted is not None and delta != accounted:
            odd.append((row.entry.get("round"), delta, accounted))
    if not odd:
        return None
    number, delta, accounted = odd[0]
    return (
        f"{_round_list([n for n, _, _ in odd])} charged nothing (aborted, the sum unseen) "
        f"but record{'s' if len(odd) == 1 else ''} another delta than the epsilon carried "
        f"on (round {number} records "
        f"delta {shown(delta, 6, significant=True)}; the epsilon holds at delta "
        f"{shown(accounted, 6, significant=True)}, the last charged round's): no round "
        "composes at a row that charges nothing, so its delta is not the epsilon's"
    )


def _over_budget(
    expected: ExpectedPrivacy | None, spent: float | None, unamplified_spent: float | None
) -> str | None:
    """Why ``spent`` overspends the config's ``epsilon_budget``, or None if it fits.

    No tolerance: the cap is inclusive and anything above it, by however little, is
    over it. A 1e-9 relative slack passed ledgers up to that far over their budget; the
    replay runs the server's own accountants, so an honest ledger needs none. A NaN is
    over it too (nothing shows that it fits)."""
    budget = None if expected is None else expected.epsilon_budget
    if budget is None or spent is None or spent <= budget:
        return None
    if math.isinf(spent):
        figure = "∞ (a round released without noise)"
    else:
        # 6 digits of each, the epsilon up and the budget down: to the nearest a hair's
        # overspend read "epsilon 4.01132 is ABOVE the config's epsilon_budget 4.01132"
        figure = shown(spent, 6, significant=True)
    if unamplified_spent is not None:
        figure += " (unamplified: the claim credits amplification by sampling)"
    return (
        f"epsilon {figure} is ABOVE the config's epsilon_budget "
        f"{shown(budget, 6, significant=True, lower=True)}: the budget was overspent"
    )


def _prior_problem(prior: ChainReport, chain: ChainReport, name: str) -> str | None:
    """Why the prior ledger cannot stand before this one, or None: it fails as a ledger
    itself, or it is signed by another key (with ``--pubkey`` both are checked against
    it; without, each against the key it embeds, which must then be the same)."""
    if not prior.ok:
        return f"the prior ledger {name}: {prior.failure}"
    if prior.public_key != chain.public_key:
        return (
            f"the prior ledger {name} is signed by another key than this ledger: the "
            "earlier rounds of another federation, or a rewritten archive"
        )
    return None


def _not_the_ledger_itself(path: str | Path, prior_ledger: str | Path) -> None:
    """Refuse a ``--prior-ledger`` that is the ledger verified (the same file, or a link
    to it): the auditor's mistake, which read as rounds going back from the last."""
    try:
        same = Path(path).exists() and Path(prior_ledger).samefile(path)
    except OSError:  # a missing prior: read_chain names it
        same = False
    if same:
        reason = (
            f"{prior_ledger} is the ledger itself ({path}): pass the ledger that holds its "
            "earlier rounds"
        )
        raise OptionMistake(f"--prior-ledger {reason}", option="--prior-ledger", reason=reason)


def _other_federation(last: Any, first: Any, name: str) -> str | None:
    """Why this file's first row does not continue the prior ledger's federation, or None.

    Why: a ledger begun afresh continues its prior by round number only, and one key may
    sign two federations' ledgers; another federation's earlier rounds (a smaller spend)
    then verified in place of this one's. Rows of one chain are linked by hash instead."""
    before = last.get("federation") if isinstance(last, dict) else None
    here = first.get("federation") if isinstance(first, dict) else None
    if before == here:
        return None
    return (
        f"names federation {_shown_name(here)} but the prior ledger {name} is federation "
        f"{_shown_name(before)}: "
        "the earlier rounds of another federation, not this one's"
    )


def _not_the_config_federation(entry: Any, expected: ExpectedPrivacy | None) -> str | None:
    """Why a row is not the config's federation's, or None (no config, or no name in it).

    Why: ``--config`` ties the ledger to a federation by its DP figures only, and a ledger
    of another federation under the same figures (a rehearsal, or one begun afresh under
    another name) verified as the config's; every row records the federation's name."""
    if expected is None or expected.federation is None:
        return None
    here = entry.get("federation") if isinstance(entry, dict) else None
    if here == expected.federation:
        return None
    return (
        f"names federation {_shown_name(here)} but the config is federation "
        f"{expected.federation!r}: another federation's rounds"
    )


#: a ledger whose rows name several federations lists at most this many runs of them
_LISTED_FEDERATION_RUNS = 6


def _federations_note(rows: list[ChainRow]) -> str | None:
    """The federations a ledger's rows name, when they name more than one; else None.

    Why: each row records its federation's name, and without ``--config`` nothing read
    it, so a ledger whose rows 1-2 named 'branches' and 3-4 'rehearsal' verified without
    a word. The server writes the name its config has: a federation renamed on a restart
    continues its state and ledger under the new name, which is one federation, and its
    rounds are rightly composed into one claim. That is the only honest way a ledger
    comes to name two, but only the server's word says so: the auditor is told which
    rows name which, and that ``--config`` holds every row to one name. Not a failure:
    every row is replayed into the claim either way, so no round is left out of it."""
    runs: list[tuple[object, object, object]] = []  # (name, first round, last round)
    for row in rows:
        name, number = row.entry.get("federation"), row.entry.get("round")
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], number)
        else:
            runs.append((name, number, number))
    if len({repr(name) for name, _, _ in runs}) < 2:
        return None
    listed = [
        f"{_shown_name(name)} (round {first})"
        if first == last
        else f"{_shown_name(name)} (rounds {first}-{last})"
        for name, first, last in runs[:_LISTED_FEDERATION_RUNS]
    ]
    if len(runs) > _LISTED_FEDERATION_RUNS:
        listed.append(f"... ({len(runs)} runs in all)")
    count = len({repr(name) for name, _, _ in runs})
    return (
        f"the rows name {count} federations: {', '.join(listed)}; every row is replayed "
        "into the one claim, as one federation's (a federation renamed in its config on a "
        "restart writes its new name from then on); that they are one federation is the "
        "server's word: --config holds every row to the config's name"
    )


def _shown_name(value: object) -> str:
    """A row's federation name in verify's notes and failures, which the report prints in
    its prose too: as written when a config could hold it (:data:`~secagg.aggregation.policy.
    FEDERATION_NAME_PATTERN`: letters, digits, ``.``, ``_``, ``-``), else said to be none
    such, cut, every other character shown as ``?``: a hostile name put markdown (a
    link, bold text) into the report's prose, which escapes what rows record."""
    from secagg.aggregation.policy import FEDERATION_NAME_PATTERN

    if isinstance(value, str) and FEDERATION_NAME_PATTERN.fullmatch(value):
        return repr(value)
    text = value if isinstance(value, str) else repr(value)
    safe = "".join(c if c.isalnum() or c in " .-" else "?" for c in text[:40])
    return f"a name no config allows ('{safe}'{'...' if len(text) > 40 else ''})"


def _round_span(rows: list[ChainRow]) -> str:
    """``rounds 1-4`` (``round 3``): the rounds of a run of consecutive rows."""
    first, last = rows[0].entry.get("round"), rows[-1].entry.get("round")
    return f"round {first}" if first == last else f"rounds {first}-{last}"


def _split_hint(
    result: AuditResult, claimed: float | None, recomputed: float | None, *, mine: bool
) -> str:
    """What a failed claim means for a ledger that does not hold every round: with a prior
    ledger, that its rounds were replayed (the claim is not below them by accident of
    this file); with ``--first-round`` alone, that a claim above the replay may count the
    earlier rounds, which only their ledger lets verify replay. Empty otherwise."""
    if result.prior_ledger is not None:
        # with --first-round N too, rounds 1 to N-1 are in neither file: every claim is
        # held to the replay of rounds N on only, which the hint must not hide
        excluded = result.excluded_rounds
        dropped = (
            None
            if excluded is None
            else f"{excluded} excluded (--first-round {result.first_round}): in neither "
            "ledger, so a claim that counts them fails here; a prior ledger from round 1, "
            "without --first-round, replays them"
        )
        replayed = (
            f"rounds {result.first_round} to {result.first_round + result.prior_rows - 1} "
            f"replayed from the prior ledger {result.prior_ledger}"
            if mine and result.prior_rows
            else None
        )
        said = [part for part in (replayed, dropped) if part is not None]
        return f" ({'; '.join(said)})" if said else ""
    if (
        result.prior_ledger is None
        and result.first_round > 1
        and claimed is not None
        and recomputed is not None
        and claimed > recomputed
    ):
        return (
            f" (--first-round {result.first_round}: the replay covers rounds "
            f"{result.first_round} on only; a claim that counts {result.excluded_rounds} "
            "needs their ledger, passed with --prior-ledger, so that they are replayed, "
            "not taken on trust)"
        )
    return ""


def _rounds_before(first_round: int) -> str | None:
    """``round 1`` or ``rounds 1-4``: the rounds before ``first_round``; None for 1."""
    if first_round <= 1:
        return None
    return "round 1" if first_round == 2 else f"rounds 1-{first_round - 1}"


def _coarse_scale_note(replay: EpsilonReplay) -> str | None:
    """Why a distributed ledger's mechanism would be refused today, if it would: its
    scale leaves a clipped update at most one ring unit (refused since 2026-12-06,
    :class:`~secagg.dp.distributed.ScaleTooCoarse`). Those rounds ran, so their rows are
    replayed as recorded and each claim was held to the epsilon the parameters give; the
    auditor reads here that the rounds' updates were mostly rounding."""
    refusal = replay.coarse_scale
    if refusal is None or not replay.coarse_rows:
        return None
    units = refusal.scale * refusal.vector_bound
    rows = "1 charged row" if replay.coarse_rows == 1 else f"{replay.coarse_rows} charged rows"
    return (
        f"{rows} ran the distributed discrete Gaussian at scale {refusal.scale:g}, where a "
        f"clipped update (norm {refusal.vector_bound:g}) spans {units:.3g} <= 1 ring unit: "
        "the engine has refused such a scale since 2026-12-06 (ScaleTooCoarse: rounding to "
        "integers swamps the updates), but these rounds ran with it, so each is replayed "
        "as recorded and its claim held to the epsilon those parameters give (the rounded "
        "update's bound at that granularity, the noise shares as drawn)"
    )


def _first_round_problem(number: int, first_round: int) -> str | None:
    """Why a ledger whose first row is round ``number`` does not begin where it must
    (round 1, or the auditor's ``first_round``), or None.

    Why: the chain starts at a genesis hash, so rows cut from the front break it, but a
    new, well-formed chain that begins at round 5 verified, its epsilon covering rounds
    5 on only while rounds 1-4 had released models too. The server numbers rounds from
    1 and writes every one (an aborted round, a restart's rebuilt row included), so an
    honest ledger's first row is round 1."""
    if number == first_round:
        return None
    if number < first_round:
        return (
            f"row 1 is round {number}, but --first-round says this ledger begins at round "
            f"{first_round}: the rounds before it are in this ledger after all, so omit "
            "--first-round (or give the round its first row has)"
        )
    missing = _rounds_before(number)
    if first_round > 1:
        missing = (
            f"round {first_round} is"
            if number == first_round + 1
            else f"rounds {first_round}-{number - 1} are"
        )
        return (
            f"row 1 is round {number}, but --first-round says this ledger begins at round "
            f"{first_round}: {missing} in neither, and released models no epsilon here "
            "covers"
        )
    return (
        f"row 1 is round {number}: {missing} {'is' if number == 2 else 'are'} not in this "
        "ledger (it was begun mid-federation, or its first rows were replaced by a new "
        f"chain), so its epsilon would cover rounds {number} on only while the rounds "
        "before released models too. If another ledger accounts for them, verify that one "
        f"and pass --first-round {number} here (every epsilon is then labelled as covering "
        f"rounds {number} on only)"
    )


def verify_ledger(
    path: str | Path,
    public_key: bytes | None = None,
    expect_head: str | None = None,
    expected: ExpectedPrivacy | None = None,
    *,
    first_round: int = 1,
    prior_ledger: str | Path | None = None,
) -> AuditResult:
    """Check the chain (and, given ``expect_head``, that it still holds that head), then
    replay every epsilon claim, check every DP block for consistency (and, given
    ``expected``, against the federation's config), and collect the rounds with seeded
    noise or none; name the first failure. ``expect_head`` is ``SEQ:HASH`` or ``HASH``
    (a malformed one raises :class:`~secagg.errors.ConfigurationError`). The first row
    must be round ``first_round`` (1 unless the auditor declares the rounds before it
    accounted elsewhere; see :func:`_first_round_problem`).

    ``prior_ledger``: the ledger holding this one's earlier rounds (an archive of its
    first rows, or the ledger a federation kept before it began this one), signed by the
    same key. It is verified as a ledger (from ``first_round``) and its rows are replayed
    before this file's, which must continue it: the next round, and (for the tail of an
    archived chain) the next row, linked to its head. Why: a row's claim is the
    federation's cumulative epsilon, the earlier rounds included, so ``--first-round``
    alone (which replays this file only) could not pass an honest split ledger, and
    taking its claim for the earlier rounds on trust would let it understate them."""
    if isinstance(first_round, bool) or not isinstance(first_round, int) or first_round < 1:
        raise ConfigurationError(
            f"--first-round must be a round number (an integer >= 1), not {first_round!r}"
        )
    prior: ChainReport | None = None
    if prior_ledger is not None:
        _not_the_ledger_itself(path, prior_ledger)
        try:
            prior = read_chain(prior_ledger, public_key, prior=True)
        except NotALedger as exc:  # the wrong file named: a usage mistake, as for the ledger
            raise OptionMistake(
                f"--prior-ledger {exc}", option="--prior-ledger", reason=str(exc)
            ) from None
        except LedgerKeptChanging:  # nothing judged: the audit is to be made again
            raise
        except (LedgerError, ValueError) as exc:
            # the prior is the file at fault: read this one alone, and fail naming the
            # prior (the CLI read "L cannot be read as a ledger: P is not ...")
            chain = read_chain(path, public_key)
            unreadable = f"the prior ledger {prior_ledger} cannot be read as a ledger: {exc}"
            return AuditResult(
                dataclasses.replace(chain, failure=unreadable), first_round=first_round
            )
    after = None
    if prior is not None and prior.ok and prior.head_hash is not None:
        after = (prior.offset + len(prior.rows), prior.head_hash)
    # the prior's rows too: an archive copied after the live file was pruned to a later
    # row overlaps it, and rows both hold byte for byte are read once (chain.read_chain)
    chain = read_chain(path, public_key, after=after, shared=() if prior is None else prior.rows)
    joined = None if prior is None else _prior_problem(prior, chain, str(prior_ledger))
    if joined is not None:
        return AuditResult(dataclasses.replace(chain, failure=joined), first_round=first_round)
    result = AuditResult(chain, first_round=first_round)
    if expected is not None and expected.noise_multiplier is not None:
        result.config_noise_multiplier = float(expected.noise_multiplier)
    result.config_corrupt_fraction = expected is not None and expected.corrupt_fraction is not None
    prior_rows: list[ChainRow] = [] if prior is None else prior.rows
    if prior is not None:
        result.prior_ledger, result.prior_rows = str(prior_ledger), len(prior_rows)
        result.prior_head = prior.head
    # the prior ledger's rows first: every claim here counts them, so they are replayed
    rows: list[ChainRow] = prior_rows + chain.rows
    own = len(prior_rows)  # rows[own:] are this file's

    def where_of(index: int, row: ChainRow, number: object) -> str:
        # a prior row's failure names its file: the CLI's line names only this one
        held = f" of the prior ledger {prior_ledger}" if index < own else ""
        return f"row {row.seq} (round {number}){held}"

    # a row no writer could have written (not an object, a field of the wrong type, a
    # round out of order) fails, naming it; the rows before it are replayed first, so
    # an earlier row's failure is still the one reported
    malformed: str | None = None
    previous_round: int | None = None
    newest: tuple[int, str] | None = None  # the highest row version so far, where it is
    for index, row in enumerate(rows):
        problem = row_shape_problem(row.entry, previous_round)
        if problem is not None:
            number = row.entry.get("round") if isinstance(row.entry, dict) else None
            shown_round = (
                number if isinstance(number, int) and not isinstance(number, bool) else "?"
            )
            if index == own and own and previous_round is not None and shown_round != "?":
                problem += f" (the last round of the prior ledger {prior_ledger})"
            malformed = f"{where_of(index, row, shown_round)}: {problem}"
            rows = rows[:index]
            break
        downgrade = None if newest is None else _version_downgrade(row.entry["version"], *newest)
        if downgrade is not None:
            malformed = f"{where_of(index, row, row.entry['round'])}: {downgrade}"
            rows = rows[:index]
            break
        named = _not_the_config_federation(row.entry, expected)
        if named is not None:
            malformed = f"{where_of(index, row, row.entry.get('round'))}: {named}"
            rows = rows[:index]
            break
        if index == own and own and not chain.offset:  # begun afresh: linked by round only
            problem = _other_federation(prior_rows[-1].entry, row.entry, str(prior_ledger))
            if problem is not None:
                malformed = f"{where_of(index, row, row.entry.get('round'))}: {problem}"
                rows = rows[:index]
                break
        previous_round = row.entry["round"]
        if newest is None or row.entry["version"] > newest[0]:
            held = f" of the prior ledger {prior_ledger}" if index < own else ""
            newest = (row.entry["version"], f"row {row.seq}{held}")
    dp_expected = any(row.entry.get("dp") for row in rows) or (expected is not None and expected.dp)
    result.dp_claimed = dp_expected
    if expect_head is not None and chain.ok:
        anchored = chain
        if prior is not None and chain.offset:
            # the tail of an archived chain: a head kept before the archive may be one of
            # the archived rows, and the chain it belongs to is the two files together
            anchored = dataclasses.replace(chain, rows=prior_rows + chain.rows, offset=0)
        result.anchor = check_expected_head(anchored, expect_head)
        if result.anchor.failure is not None and prior is not None and not chain.offset:
            # begun afresh: a head kept from the prior ledger (when it was the live one) is
            # in that ledger, not this one, and "rewritten and re-signed" was the wrong
            # reason; found there, every row after it in either file was appended since
            in_prior = check_expected_head(prior, expect_head)
            if in_prior.ok:
                result.anchor = AnchorCheck(None, grown_by=in_prior.grown_by + len(chain.rows))
            else:
                result.anchor = AnchorCheck(
                    f"{result.anchor.failure}; nor is it in the prior ledger {prior_ledger} "
                    f"(head {prior.head}): {in_prior.failure}"
                )
        if result.anchor.failure is not None:
            result.failure = result.anchor.failure
            if chain.without_log:  # the rows missing may be in the log not copied
                result.failure += f"; {_read_without_log(path)}"
            return result
    if chain.ok and chain.without_log and result.anchor is None:
        result.failure = (
            f"{_read_without_log(path)}; the file holds {len(chain.rows)} rows, head "
            f"{chain.head}: copy {log_named(path)} with it (or verify the live file in "
            "place); where it is the live file, start and stop its server once (which "
            "leaves WAL mode); or pass the head the server printed when it stopped "
            "(--expect-head)"
        )
        return result
    begins = None if not rows else _first_round_problem(rows[0].entry["round"], first_round)
    if begins is not None:
        result.failure = begins
        return result
    replay = EpsilonReplay()
    result.record_level = replay.latest_reports  # the same dict: filled as rows replay
    seeded_without_dp = 0  # rows flagged noise_seeded that drew no DP noise to seed
    # client-level rows amplified by sampling whose dp.sampling predates its "seeded" flag
    sampling_unrecorded = 0
    # (seq, round) of the completed central rows that claim amplification by sampling
    amplified_seen: list[tuple[int, Any]] = []
    # the central rounds so far charged to every client at rate 1: what holds while the
    # ledger's claim rests on amplification, and what the budget is then held to
    unamplified = _UnamplifiedCharge()
    previous_model: Any = None  # the last model digest a row recorded
    restated_rows: set[int] = set()  # id() of the rows whose claim is at their own delta
    for index, row in enumerate(rows):
        where = where_of(index, row, row.entry.get("round"))
        mine = index >= own  # this file's row (the prior ledger's are replayed, not listed)
        try:
            provenance = Reconstruction.of_row(row.entry)
            if rebuilt(row.entry) and mine:
                result.rebuilt.append((row.seq, row.entry.get("round", row.seq), provenance))
        except ValueError as exc:
            result.failure = f"{where}: its reconstruction record is malformed: {exc}"
            return result
        dp = row.entry.get("dp")
        moved = _check_model_moved(row.entry, previous_model)
        if moved is not None:
            result.failure = f"{where}: {moved}"
            return result
        previous_model = row.entry.get("model_sha256") or previous_model
        try:
            seeded = noise_seeded(row.entry)
            if dp:
                problem = _check_consistency(
                    dp,
                    row.entry.get("privacy") or {},
                    row.entry.get("participants"),
                    replayed_noise=bool(seeded),
                )
                charged = row.entry.get("status") == "complete" or dp.get("sum_revealed") is True
                if problem is None and charged and dp.get("mechanism") == "distributed":
                    problem = _check_noise_shares(row.entry, dp)
                    result.distributed_rows += 1
                result.noise_multiplier_rows += dp.get("noise_multiplier") is not None
                if problem is None and expected is not None:
                    problem = _check_against(dp, expected)
                    result.checked_against_config += 1
                    result.checked_against_config_prior += 0 if mine else 1
                if problem is not None:
                    result.failure = f"{where}: {problem}"
                    return result
                complete = row.entry.get("status") == "complete"  # an aborted one is not charged
                if complete and dp.get("mechanism") == "central" and dp.get("unit") == "client":
                    if _claims_amplification(dp):
                        amplified_seen.append((row.seq, row.entry.get("round", row.seq)))
                    unamplified.add(dp)
                if dp.get("unit") == "client" and not isinstance(dp.get("sampling"), dict):
                    result.without_sampling += 1
                    result.without_sampling_prior += 0 if mine else 1
                elif _amplified(dp):
                    cohort_seeded = sampling_seeded(dp)
                    if cohort_seeded is None:
                        sampling_unrecorded += 1
                    elif cohort_seeded:  # a replay's (refused above otherwise)
                        result.seeded_sampling.append((row.seq, row.entry.get("round", row.seq)))
            recomputed = replay.feed(row.entry, dp_expected=dp_expected)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            result.failure = f"{where}: its privacy claims do not replay: {exc}"
            return result
        infinite = recomputed is not None and math.isinf(recomputed)
        if dp and infinite and not replay.unbounded and not result.noiseless:
            result.noiseless.append((row.seq, row.entry.get("round", row.seq)))
        if seeded is None:
            result.unrecorded += 1
            result.unrecorded_prior += 0 if mine else 1
        elif seeded and dp:
            result.seeded.append((row.seq, row.entry.get("round", row.seq)))
        elif seeded:
            seeded_without_dp += 1
        if mine:
            result.epsilons.append((row.seq, recomputed))
        claimed = _claimed(row.entry)
        if not mine:
            figures = [f for f in (claimed, recomputed) if f is not None]
            result.prior_epsilon = max(figures) if figures else None
            result.prior_last_round = row.entry.get("round")
            result.prior_dp = dp if isinstance(dp, dict) else result.prior_dp
            for identity, report in (_branch_reports(dp) if isinstance(dp, dict) else {}).items():
                delta_of = accounted_delta(report) if isinstance(report, dict) else None
                result.prior_report_deltas[identity] = delta_of
            if isinstance(dp, dict) and charges_a_round(row.entry):
                # the delta its epsilon holds at (see claim_delta; record level: the
                # worst branch's latest report may be at a larger delta than the row's)
                result.prior_delta = (
                    _record_claim_delta(dp, [], result.prior_report_deltas)
                    if _branch_reports(dp)
                    else accounted_delta(dp)
                )
        if not dp and not dp_expected and row.entry.get("status") == "complete":
            # a federation without DP: released with no noise and no epsilon claimed (a
            # claim on such a row still fails below: nothing recorded backs it)
            result.unnoised.append((row.seq, row.entry.get("round", row.seq)))
        if not dp and replay.unbounded:
            # released without noise (or after such a round): no finite claim holds; a
            # row without a DP block may claim nothing, as a no-DP federation's rows do
            complete = row.entry.get("status") == "complete"
            if complete:
                result.unnoised.append((row.seq, row.entry.get("round", row.seq)))
            if claimed is not None and not math.isinf(claimed):
                result.failure = f"{where}: " + (
                    "completed without a DP block in a ledger with DP: it released without "
                    f"noise, so epsilon is infinite, but the row claims {claimed}"
                    if complete
                    else f"claims epsilon {claimed} after a round released without DP "
                    "(epsilon is infinite)"
                )
                return result
            # an infinite epsilon is above any budget: this check used to be skipped
            # here, so a ledger that released without noise read "within" its budget
            overspent = _over_budget(expected, math.inf, None)
            if expected is not None and expected.epsilon_budget is not None:
                result.budget_epsilon = math.inf
            if overspent is not None:
                result.failure = f"{where}: {overspent}"
                return result
            continue
        restated = replay.restated
        if restated is not None and _agrees(claimed, restated):
            # a row that charges nothing, claiming the rounds so far at its own delta
            # (as a server writes it since 2026-12-05): that is the figure it states
            recomputed = restated
            restated_rows.add(id(row))
            if mine:
                result.restated.add(row.seq)
                result.epsilons[-1] = (row.seq, recomputed)
            elif isinstance(dp, dict):
                result.prior_delta = accounted_delta(dp)
        # a claim written by the from-scratch code? Never one below the replay: that
        # fails whatever the from-scratch figure (_below_replay), which costs 0.7-1 s
        if not _agrees(claimed, recomputed) and not _below_replay(claimed, recomputed):
            older = replay.older_claim(claimed)
            if older is not None:
                result.from_scratch += 1
                # never below the incremental replay: the from-scratch figure may lie a
                # hair under it, and the replay is what every figure is held to
                recomputed = older if recomputed is None else max(older, recomputed)
                if mine:
                    result.epsilons[-1] = (row.seq, recomputed)
        if not _agrees(claimed, recomputed):
            below = claimed is not None and recomputed is not None and claimed < recomputed
            result.failure = (
                f"{where}: claims epsilon {claimed} but its recorded mechanism gives "
                f"{recomputed}"
                + (" (the claim is below the mechanism's)" if below else "")
                + _split_hint(result, claimed, recomputed, mine=mine)
            )
            return result
        if (
            claimed is not None
            and recomputed is not None
            and claimed < recomputed
            # replay arithmetic may differ from the server's in the last bits; a gap
            # that no printed figure (at most 6 significant digits) can show is no claim
            # (within FLOAT_NOISE: a claim further below failed above)
            and recomputed - claimed > _UNDERSTATED * max(1.0, abs(recomputed))
        ):
            result.understated.append(
                (row.seq, row.entry.get("round", row.seq), claimed, recomputed)
            )
        if dp and row.entry.get("status") == "complete" and claimed is None:  # nor does the replay
            result.failure = (
                f"{where}: released a round with a DP block but claims no epsilon: nothing "
                "states what its release cost"
            )
            return result
        budget = None if expected is None else expected.epsilon_budget
        # the budget is held to the larger of the claim and the replay (what the report
        # shows): a claim within the tolerance above its replay says the round spent
        # that much, and the replay alone let it pass a budget below it
        figures = [f for f in (claimed, recomputed) if f is not None]
        spent = max(figures) if figures else None
        unamplified_spent = None
        if budget is not None and unamplified.amplified and not replay.per_client_rows:
            # the claim credits amplification the engine no longer does: the budget
            # holds only if the unamplified charge fits (DP audit t2: a claim of 5.84
            # passed a budget of 6 that the unamplified 8.39 overspends). Per-client rows
            # after such rows already charge them to every client, unamplified.
            unamplified_spent = unamplified.epsilon()
            if spent is None or not unamplified_spent <= spent:
                spent = unamplified_spent
            else:
                unamplified_spent = None
        if budget is not None:
            result.budget_epsilon = spent
        overspent = _over_budget(expected, spent, unamplified_spent)
        if overspent is not None:
            result.failure = f"{where}: {overspent}"
            return result
    if malformed is not None:
        result.failure = malformed
        return result
    result.per_client = replay.per_client_summary()
    if expected is not None:
        result.notes = _parameter_notes(rows, expected)
    federations = _federations_note(rows)
    if federations is not None:
        result.notes.append(federations)
    coarse = _coarse_scale_note(replay)
    if coarse is not None:
        result.notes.append(coarse)
    if seeded_without_dp:
        result.notes.append(
            f"{seeded_without_dp} rows say noise_seeded but carry no DP block: they drew no "
            "DP noise, so the flag means nothing there (a simulation without DP wrote it "
            "from its replay setting)"
        )
    for delta_note in (
        _delta_note(rows, restated_rows),
        _uncharged_delta_note(rows, restated_rows),
    ):
        if delta_note is not None:
            result.notes.append(delta_note)
    if sampling_unrecorded:
        result.notes.append(
            f"{sampling_unrecorded} client-level rows claim amplification by sampling but "
            "predate the dp.sampling.seeded record: whether their cohort was drawn from a "
            "seed in the config (predictable, so not amplified) is not recorded"
        )
    delta = unamplified.delta
    if amplified_seen and result.ok and delta is not None:
        result.unamplified_epsilon = unamplified.epsilon()
        result.notes.append(
            f"{len(amplified_seen)} central rows claim amplification by sampling (written "
            "before 2026-12-03): a round's members see one another and its size is "
            "published, so that amplification holds only against an outsider who sees "
            "neither. Charged to every client every round, unamplified, the ledger's "
            "central rounds spend epsilon "
            f"{shown(result.unamplified_epsilon, 4, significant=True)} "
            f"at delta {shown(delta, 6, significant=True)}"
        )
        if not replay.per_client_rows:  # the latest claim still rests on it: not private
            result.amplified = amplified_seen
    if result.understated:
        _, number, claimed, replayed = max(result.understated, key=lambda u: u[3] - u[2])
        result.notes.append(
            f"{len(result.understated)} rows claim an epsilon below the one their recorded "
            f"mechanism replays to, within float noise ({FLOAT_NOISE:g} relative) "
            f"(the largest gap: round {number} claims {claimed!r}, the replay gives "
            f"{replayed!r}): every epsilon verify and the report print is the replay's"
        )
    if prior_rows:
        span = _round_span(prior_rows)
        result.notes.append(
            f"{span} replayed from the prior ledger {prior_ledger} ({len(prior_rows)} rows, "
            f"head {prior.head if prior is not None else None}): every epsilon here is the "
            f"federation's from round {first_round} on, {span} included"
        )
    if chain.shared:
        shared = (
            f"row {chain.offset}"
            if chain.shared == 1
            else (f"rows {chain.offset - chain.shared + 1}-{chain.offset}")
        )
        result.notes.append(
            f"{shared} of this file {'is' if chain.shared == 1 else 'are'} in the prior "
            f"ledger {prior_ledger} too, byte for byte (an archive copied after this file "
            "was pruned to a later row): read once, as the prior ledger's"
        )
    excluded = result.excluded_rounds
    if excluded is not None:
        result.notes.append(
            f"{excluded} not in this ledger (--first-round {first_round}: declared "
            f"accounted elsewhere): every epsilon here covers rounds {first_round} on "
            "only; the federation's epsilon composes it with theirs and is no smaller"
        )
    if result.from_scratch:
        result.notes.append(
            f"{result.from_scratch} rows claim the epsilon of the from-scratch PLD accountant "
            "(written before accounting became incremental): each lies within the PLD "
            "discretisation above the exact value, or was recomputed that way and matches"
        )
    if chain.empty_log and expect_head is None:
        result.notes.append(_read_with_an_empty_log(path))
    if chain.without_log:  # passed only with a head the auditor holds (above)
        result.notes.append(
            f"{_read_without_log(path)}; every row up to the head you expected "
            f"({expect_head}) is in it, rows after it may not be"
        )
    return result


def _version_downgrade(version: int, newest: int, where: str) -> str | None:
    """Why a row of ``version`` after a row of version ``newest`` (``where``: that row)
    fails, or None when its version is no lower.

    Why: a row's version is the layout of the secagg that wrote it (docs/audit.md: 3
    since 2026-12-05, 2 since 2026-12-02, 1 before) and rows are written in order, so a
    ledger's versions never go down. Each was read on its own, and an older layout is
    held to fewer checks (a version-2 central row without ``dp.sampling`` skips its
    sampling, population and ``delta < 1/N`` checks; a version-1 row need not state
    ``noise_seeded``): rows after version-3 ones rewritten as version 2 without their
    sampling record, at a delta that allows releasing a client's data outright,
    verified."""
    if version >= newest:
        return None
    return (
        f"is row version {version} after version {newest} ({where}): a row's version is "
        "the layout of the secagg that wrote it and rows are written in order, so versions "
        f"never go down; version {version} is held to fewer checks than {newest} (rewritten "
        "in the older layout, or written by a secagg older than the one before it)"
    )


def _read_with_an_empty_log(path: str | Path) -> str:
    """What an empty log no process holds says of the file beside it: nothing
    (:attr:`ChainReport.empty_log`).

    Why a note and not a failure: nothing in the files tells the short copy from two
    honest ledgers, a server killed after it folded its log in (read in place) and a
    copy of a running server's file and log (its log is empty after each fold), and
    failing those would fail the copy the docs ask for; the note says what the verdict
    rests on, and ``--expect-head`` settles it. It was silent: a main file copied alone
    while its log held rows, then opened by a program that left an empty log beside it,
    verified two rounds short (tests/ledger/test_verify_empty_log.py)."""
    name = Path(path).name
    return (
        f"{name} is in WAL mode and was read with an empty {log_named(path)} that no "
        "process has open: whole if it is the file of a server killed after it folded "
        "its log in, read in place, or a copy of the file and its log taken at one "
        "moment; an empty log vouches for nothing "
        "else (one copied after the file, or left by a program that opened a file copied "
        "alone), and rows its writer's log held then are missing with nothing to show it: "
        "pass the head the server printed (--expect-head) to be sure"
    )


def _read_without_log(path: str | Path) -> str:
    """Why a ledger file read without its log may lack rows (:attr:`ChainReport.without_log`).

    Why verify says it: such a copy's rows and signed head agree with each other, so
    the chain alone verified it, short of the rows its log held, at a smaller epsilon
    than the rounds that ran (a main file copied from a running or killed server)."""
    # the live file can be so too (review of 2026-12-07): another program holding it
    # read-write when the server stopped keeps it in WAL mode and, closing last, folds
    # the log in and deletes it; a kill between SQLite's deletion of the log and its
    # rewrite of the header; a close by an older secagg. Said, so an auditor reading it
    # in place is not told only to copy a log that is no longer there
    return (
        f"read without its log: the file is in WAL mode (its writer was running, or was "
        f"killed, when it was copied) and there is no {log_named(path)} beside it: rows an "
        "append committed to that log since the writer last folded it in are not in this file, "
        "and nothing in the file shows whether there are any (read in place: a file "
        "another program held open read-write when its server stopped, one whose server "
        "was killed while leaving WAL mode, or one last closed by a secagg before "
        "2026-12-07)"
    )
