"""Re-deriving a ledger's cumulative epsilon, row by row (:class:`EpsilonReplay`).

Split out of :mod:`secagg.ledger.verify`, which drives it: the replay steps the same
accountants the server's mechanisms hold (:mod:`secagg.dp.accountants`), once per row,
with that row's own recorded parameters, and says where a row's block contradicts the
history it extends (:class:`~secagg.ledger.row_checks.ReplayFailure`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np

from secagg.dp.accountants import (
    PER_CLIENT,
    DiscreteGaussianAccountant,
    GaussianAccountant,
    PerClientAccountant,
    RecordLevelAccountant,
    distinct_runs,
    dpsgd_runs,
    history_runs,
    opacus_epsilon,
)
from secagg.dp.distributed import ScaleTooCoarse
from secagg.dp.release import MAX_REPLAYED_RUNS, record_epsilon_drop_allowed
from secagg.ledger.row_checks import (
    _PARAMETER_TOLERANCE,
    FLOAT_NOISE,
    RELATIVE_TOLERANCE,
    ReplayFailure,
    _accountant_name,
    _agrees,
    _below,
    _check_reports,
    _extends,
    _number,
    _real,
    _runs,
    _same,
    _same_count,
    accounted_delta,
)


class EpsilonReplay:
    """Re-derives the cumulative epsilon row by row from the recorded parameters.

    Incrementally: the accountants are stepped once per row and compose only that
    row's round onto the rounds before (reliability review D7: a 200-row ledger took
    10 minutes when every row was recomputed from scratch). A restart that changed
    the delta or the accountant rebuilds the accountant once, from every round so far.
    """

    def __init__(self) -> None:
        self._central: list[tuple[float, float]] = []  # every central round's (z, q)
        self._accountant: GaussianAccountant | None = None
        # every central round's (precision, members or None: every client), the replay
        # of rows charged to their participants, and how many such rows there were
        self._charges: list[tuple[float, list[str] | None]] = []
        self._per_client: PerClientAccountant | None = None
        self._per_client_rows = 0
        self._named: set[str] = set()  # every identity hash a per-client row charged
        self._rounds_of: Counter[str] = Counter()  # hash -> rounds charged to it
        self._everyone_rounds = 0  # rounds charged to every client
        self._population: int | None = None  # the largest population a row records
        self._distributed: dict[str, Any] | None = None
        self._ddg: DiscreteGaussianAccountant | None = None
        #: the refusal today's engine gives the ledger's discrete Gaussian (its scale
        #: leaves a clipped update at most one ring unit; rounds before 2026-12-06 ran
        #: with such scales), None if it would plan or take it; and the charged rows
        #: replayed with it. Replayed as recorded, and verify says so in a note
        self.coarse_scale: ScaleTooCoarse | None = None
        self.coarse_rows = 0
        self._current: float | None = None
        self._mechanism: tuple[str, str] | None = None  # (unit, mechanism) of the ledger
        self.latest_reports: dict[str, float] = {}  # identity hash -> recomputed epsilon
        self._histories: dict[str, list[tuple[float, float, int]]] = {}
        self._accountants: dict[str, str] = {}  # identity hash -> its last report's
        self._cache: dict[str, float] = {}
        self.unbounded = False  # a completed round went without DP: infinite from then on
        self._reference: tuple[tuple[int, int], float] | None = None  # ((accountant, rounds), eps)
        #: the last row fed, if it charged nothing: its rounds at its own delta (or None)
        self.restated: float | None = None

    def _record_level(self, dp: dict[str, Any], entry: dict[str, Any]) -> float | None:
        """Each branch's stated DP-SGD history, recomputed with Opacus's accountant;
        the release's epsilon is the worst branch's latest (parallel composition).
        A branch accounts at the row's delta, and its history only grows; a completed
        round holds a report for every contribution (:func:`_check_reports`)."""
        if entry.get("status") == "complete":
            problem = _check_reports(dp, entry)
            if problem is not None:
                raise ReplayFailure(problem)
        row_delta = dp.get("delta")
        reports = dp.get("client_reports", {})
        if not isinstance(reports, dict):
            # an aborted row's null: ``.items()`` on it crashed verify ("cannot be read
            # as a ledger", no row named) and ``audit report`` (a traceback); the server
            # writes an object, empty when no branch reported
            raise ReplayFailure(
                f"records dp.client_reports as {reports!r}, not the branches' reports (an "
                "object, empty when none reported)"
            )
        for identity, report in reports.items():
            name = f"branch {identity[:12]}…"
            # a branch at a larger delta (a smaller epsilon) than the row prints, by any
            # amount, flatters; _same alone let it pass by 1e-9 (relative)
            if not _same(report.get("delta"), row_delta) or _below(row_delta, report.get("delta")):
                raise ReplayFailure(
                    f"{name} accounts at delta {report.get('delta')!r} but the row accounts at "
                    f"delta {row_delta!r}"
                )
            if not isinstance(report.get("accountant"), str):
                raise ReplayFailure(
                    f"{name} names its accountant {report.get('accountant')!r}, not a name"
                )
            history = _runs(report["history"])
            previous = self._histories.get(identity)
            if previous is not None and not _extends(history, previous):
                raise ReplayFailure(
                    f"{name}'s DP-SGD history {history} does not extend its previous one "
                    f"{previous} (a restarted accountant: its record-level epsilon would go "
                    "down)"
                )
            recomputed = self._opacus_epsilon(report)
            accountant = str(report["accountant"])
            before = self.latest_reports.get(identity)
            # the branch keeps its larger figure, as the server does: no row's
            # worst-branch epsilon goes down
            kept = recomputed if before is None else max(before, recomputed)
            stated = report.get("epsilon")
            if stated == "inf" and math.isinf(recomputed):
                # the ledger's spelling of an infinity: a report whose history gives no
                # finite figure, stated as such (servers before 2026-12-07 signed the
                # stated figure). The truth about that release: the row must claim inf
                # too, and the ledger reads NOT PRIVATE (a noiseless release), where it
                # failed as "not a finite number", as if forged
                claimed = math.inf
            elif not _real(stated) or not math.isfinite(stated):
                # float() read a stated "2.23" (or True) as the number it spells; an inf
                # beside a finite replay is no epsilon of what ran
                raise ReplayFailure(
                    f"{name} states epsilon {stated!r}, not a finite number"
                    + (
                        ""
                        if math.isinf(recomputed)
                        else f" (its DP-SGD history gives {recomputed})"
                    )
                )
            else:
                claimed = float(stated)
            # the report's own figure, or the larger one the server kept in its place
            # (a PRV figure a little lower over a longer history: see below)
            if not (_agrees(claimed, recomputed) or _agrees(claimed, kept)):
                older = self._as_recorded(report, claimed, before)
                if older is None:
                    raise ReplayFailure(
                        f"{name} claims record-level epsilon {claimed} but its "
                        f"DP-SGD history gives {recomputed}"
                    )
                recomputed, kept = older
            # a history that extends the previous one spends at least as much: a drop
            # beyond the accountant's error fails (PRV's, 0.01, or float noise; 1e-6
            # was once let through for any), the server's rule
            if before is not None and not record_epsilon_drop_allowed(
                (self._accountants[identity], accountant), before, recomputed
            ):
                raise ReplayFailure(
                    f"{name}'s record-level epsilon goes down from {before} to {recomputed}"
                )
            self._histories[identity] = history
            self._accountants[identity] = accountant
            self.latest_reports[identity] = kept
        return max(self.latest_reports.values()) if self.latest_reports else None

    def _opacus_epsilon(self, report: dict[str, Any]) -> float:
        """A branch's epsilon from its DP-SGD history, through Opacus's accountant.

        Opacus's PRV accountant evaluates ``log(1 - q)`` for a step that samples every
        item (q = 1: a branch's charged feature statistics): -inf, the right limit for
        the comparison it feeds, but numpy printed "divide by zero encountered in log"
        under ``secagg audit verify`` and ``report``, which an auditor reads as a broken
        computation. The value is Opacus's either way: only numpy's divide-by-zero
        report is switched off, around this call only, and per thread (``errstate`` is
        a context variable; ``warnings.catch_warnings`` is not thread-safe).

        The history is replayed as runs (:func:`~secagg.dp.accountants.history_runs`:
        consecutive entries of one ``(z, q)`` merged, as Opacus's own accountant keeps a
        trainer's steps), after each entry is checked; for PRV,
        :func:`~secagg.dp.accountants.opacus_epsilon` then merges every run of one
        ``(z, q)`` wherever it stands (:func:`~secagg.dp.accountants.distinct_runs`,
        composition being commutative), as the server replays it.
        Why: Opacus's PRV composes every entry of the history it is given on its grid,
        so a report split into one-step entries, which the server takes as one run, cost
        verify about 57 ms of CPU an entry (200 entries of (2, 0.01, 1): 11.4 s, where
        the run took 0.06 s; the wire allows 10^5 entries, and each row's report is a new
        history): a branch could make the audit of a ledger take hours. The figures
        agree to float noise (3e-11 relative there), and now equal the server's."""
        key = json.dumps([report["accountant"], report["delta"], report["history"]])
        if key not in self._cache:
            entries = [(float(z), float(q), int(n)) for z, q, n in report["history"]]
            runs = history_runs(dpsgd_runs(entries))  # each entry checked, then merged
            accountant = RecordLevelAccountant(
                str(report["accountant"]), float(report["delta"]), runs
            )
            with np.errstate(divide="ignore"):
                self._cache[key] = accountant.epsilon()
        return self._cache[key]

    def _as_recorded(
        self, report: dict[str, Any], claimed: float, before: float | None
    ) -> tuple[float, float] | None:
        """``(figure, kept)`` where ``claimed`` is what a server before 2026-12-07 signed
        for ``report``: Opacus's PRV of the history's runs as recorded (consecutive
        entries merged only), or the branch's earlier figure it kept above that; None
        otherwise, or where that server could not have signed it.

        Why: since 2026-12-07 PRV is asked a history's distinct ``(z, q)`` runs
        (:func:`~secagg.dp.accountants.distinct_runs`); where a pair repeats apart, that
        figure and Opacus's on the runs as recorded are two upper bounds of one
        composition on one domain, a few parts in 10^8 apart (1.7e-8 relative for (2.756,
        0.3, 1), (0.846, 0.02, 50), (0.694, 0.3, 50), (2.756, 0.3, 50) at delta 1e-3),
        past the float noise a claim may lie below its replay, so a ledger the server
        of the time wrote, and verify then passed, failed. A claim still lies at or
        above one of Opacus's figures of what ran. Asked only for a PRV history of a
        repeated pair in at most :data:`~secagg.dp.release.MAX_REPLAYED_RUNS` runs (no
        server replayed more: 8 runs for PRV from 2026-12-07 04:11, 32 from 02:44; a
        claim before that was the branch's own figure of the same runs), so a hostile
        ledger's alternating runs cost verify at most that many grids here, not one a
        run of 10^5."""
        from secagg.dp.accounting import PrvCannotEvaluate  # as opacus_epsilon: on use

        if report.get("accountant") != "prv":
            return None
        entries = [(float(z), float(q), int(n)) for z, q, n in report["history"]]
        runs = history_runs(dpsgd_runs(entries))
        if len(runs) > MAX_REPLAYED_RUNS or distinct_runs(runs) == runs:
            return None  # no server signed it, or the merged figure is this very one
        key = json.dumps(["prv as recorded", report["delta"], report["history"]])
        if key not in self._cache:
            try:
                with np.errstate(divide="ignore"):
                    self._cache[key] = opacus_epsilon(
                        "prv", runs, float(report["delta"]), distinct=False
                    )
            except PrvCannotEvaluate:
                self._cache[key] = math.inf  # no figure: no claim agrees with it
        figure = self._cache[key]
        kept = figure if before is None else max(before, figure)
        if _agrees(claimed, figure) or _agrees(claimed, kept):
            return figure, kept
        return None

    def _central_round(self, dp: dict[str, Any], participants: Any) -> float:
        """Every central round so far, at this row's delta and accountant (a restart may
        change them: the accountants are rebuilt and replayed).

        A row charged to its participants (``dp.composition = "per_client"``) claims the
        most charged client's epsilon, each client charged for the rounds it was in:
        replayed from the rows' identity hashes, earlier rows without the field charged
        to every client, unamplified (what the server's restart does with them). Other
        rows (written before 2026-12-03) claim the Poisson-subsampled Gaussian of their
        own (z, q), replayed as they were accounted."""
        per_client = self._per_client_charge(dp, participants)
        if per_client is not None:
            return per_client
        delta, name = float(dp["delta"]), _accountant_name(dp)
        # a sampled round is charged at its published cohort's share (charged_rate);
        # rows written before that carry only the design rate q
        z, q = float(dp["noise_multiplier"]), float(dp.get("charged_rate", dp["sample_rate"]))
        self._central.append((z, q))
        accountant = self._accountant
        if accountant is None or accountant.delta != delta or accountant.name != name:
            accountant = GaussianAccountant(delta, name)
            for past_z, past_q in self._central:
                accountant.step(past_z, past_q)  # an adaptive round's two releases compose to z
            self._accountant = accountant
        else:
            accountant.step(z, q)
        return accountant.epsilon()

    def _per_client_charge(self, dp: dict[str, Any], participants: Any) -> float | None:
        """Charge the row to the per-client replay; its claim if the row (or any before
        it) is charged per client, else None (the row claims the older analysis)."""
        delta, name = float(dp["delta"]), _accountant_name(dp)
        adaptive = dp.get("adaptive_clipping")
        if isinstance(adaptive, dict):  # the two releases, as the server charged them
            precision = PerClientAccountant.precision(
                _number(
                    adaptive.get("update_noise_multiplier"),
                    "dp.adaptive_clipping.update_noise_multiplier",
                ),
                _number(
                    adaptive.get("count_noise_stddev"), "dp.adaptive_clipping.count_noise_stddev"
                ),
            )
        else:
            precision = PerClientAccountant.precision(float(dp["noise_multiplier"]))
        members: list[str] | None = None
        if dp.get("composition") == PER_CLIENT:
            members = self._members(dp, participants)
        elif dp.get("composition") is not None:
            raise ReplayFailure(f"records an unknown dp.composition {dp.get('composition')!r}")
        self._charges.append((precision, members))
        self._per_client_rows += members is not None
        if members is None:
            self._everyone_rounds += 1
        else:
            self._rounds_of.update(members)
        if not self._per_client_rows:
            return None
        accountant = self._per_client
        if accountant is None or accountant.delta != delta or accountant.name != name:
            accountant = PerClientAccountant(delta, name)
            for past, who in self._charges:
                accountant.charge(past, who)
            self._per_client = accountant
        else:
            accountant.charge(precision, members)
        return accountant.epsilon()

    def _members(self, dp: dict[str, Any], participants: Any) -> list[str]:
        """The identity hashes a per-client row charges, checked against its own count
        and the ledger's populations: a list that names fewer clients than took part, or
        a ledger that names more distinct clients than any population it records (a
        renamed or invented identity escapes its earlier rounds' charges), fails."""
        published = participants if isinstance(participants, dict) else {}
        hashes = published.get("identity_hashes")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes or [0]):
            raise ReplayFailure(
                "is charged to its participants (dp.composition per_client) but does not "
                "list their identity hashes, so the charge cannot be replayed"
            )
        count = published.get("count")
        if len(set(hashes)) != len(hashes) or count != len(hashes):
            raise ReplayFailure(
                f"lists {len(set(hashes))} distinct identity hashes for a count of {count} "
                "participants: each must be charged once"
            )
        sampling = dp.get("sampling")
        population = sampling.get("population") if isinstance(sampling, dict) else None
        if isinstance(population, int) and not isinstance(population, bool):
            self._population = max(self._population or 0, population)
        self._named.update(hashes)
        if self._population is not None and len(self._named) > self._population:
            raise ReplayFailure(
                f"brings the clients its rows name to {len(self._named)}, more than the "
                f"largest population any row records ({self._population}): a renamed or "
                "invented identity escapes the charges of its earlier rounds"
            )
        return hashes

    @property
    def per_client_rows(self) -> int:
        """Central rows charged to their participants so far (today's format)."""
        return self._per_client_rows

    def per_client_summary(self) -> dict[str, Any] | None:
        """How many clients the per-client rows name, the most rounds any one was
        charged for, and (``every_round_epsilon``) the epsilon of every central round
        charged to every client: None without per-client rows.

        Why the last: a row's identity hashes are the server's word. Whoever holds the
        signing key can spread a client's rounds over other hashes of the population
        (a client in all 4 rounds written as in 2: the claim falls to 2 rounds' epsilon)
        and the ledger still verifies, against ``--config`` too, since nothing outside
        the server knows who took part. Every round charged to every client is the
        figure that holds whoever the rows name, and the auditor who does not take
        the lists on trust reads it here."""
        if not self._per_client_rows:
            return None
        most = max(self._rounds_of.values(), default=0) + self._everyone_rounds
        accountant = self._per_client
        every = None
        if accountant is not None:
            every = accountant.epsilon_of(sum(precision for precision, _ in self._charges))
        return {"clients": len(self._named), "most_rounds": most, "every_round_epsilon": every}

    def older_claim(self, claimed: float | None) -> float | None:
        """``claimed`` (or the value it matches) if the from-scratch PLD accountant that
        wrote rows before accounting became incremental gives it; else None.

        The incremental accountant agrees with that code to 1e-8 on sampled rounds, but
        where every client is sampled it gives the Gaussian's exact epsilon, which the
        discretised PLD exceeds by up to one discretisation step (1e-4) per run of
        identical rounds: such a claim lies in ``[exact, exact + runs * 1e-4]`` and is
        accepted without redoing that PLD (2-50 s a row). Any other mismatch of a
        central row is checked against :meth:`~secagg.dp.accounting.PrivacyAccountant.
        reference_epsilon`, the old computation itself."""
        accountant = self._accountant
        if self._mechanism != ("client", "central") or accountant is None or self.unbounded:
            return None
        if self._per_client_rows:  # written by today's code: the per-client replay only
            return None
        exact = accountant.epsilon()
        if claimed is None or math.isinf(exact) or math.isinf(claimed):
            return None
        if accountant.name == "pld" and all(q == 1.0 for _, q in self._central):
            from secagg.dp.accounting import PLD_VALUE_DISCRETIZATION

            runs = len(accountant.inner.history)
            slack = runs * PLD_VALUE_DISCRETIZATION + RELATIVE_TOLERANCE * max(1.0, exact)
            if exact * (1 - FLOAT_NOISE) <= claimed <= exact + slack:
                return claimed
            return None
        key = (id(accountant), accountant.rounds)
        if self._reference is None or self._reference[0] != key:
            self._reference = (key, float(accountant.inner.reference_epsilon()))
        return self._reference[1] if _agrees(claimed, self._reference[1]) else None

    def _distributed_round(self, dp: dict[str, Any]) -> float:
        from secagg.dp.distributed import DistributedDiscreteGaussian

        params = {k: dp[k] for k in ("clip", "noise_multiplier")} | dict(dp["ddg"])
        if dp.get("record_clip") is not None:  # record level: one unit moves record_clip
            params["record_clip"] = dp["record_clip"]
        # every charged row's, not only the first's: ``params != self._distributed``
        # reads 16.0 (or True) as 16 (or 1), so a later row's figure went unchecked
        for name in ("dimension", "expected_clients", "bits"):
            value = params.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                # int() truncated a forged 40.5 or 4.9 (or parsed "32") into the
                # figure the replay then sized its noise by: the row must record it
                raise ReplayFailure(
                    f"records the discrete Gaussian's {name} as {value!r}, not a whole "
                    "number: the replay cannot size the noise that was added"
                )
        if not _real(params.get("scale")):  # float() parsed a string scale
            raise ReplayFailure(
                f"records the discrete Gaussian's scale as {params.get('scale')!r}, not a "
                "number: the replay cannot size the noise that was added"
            )
        if self._distributed is not None and params != self._distributed:
            raise ReplayFailure(
                "the distributed mechanism's parameters changed mid-ledger "
                f"({self._distributed} -> {params}): the replay composes the discrete "
                "Gaussian at one set of parameters only"
            )
        self._distributed = params
        delta, rate = float(dp["delta"]), float(dp["sample_rate"])
        ddg = self._ddg
        if ddg is None or ddg.delta != delta or ddg.sample_rate != rate:
            if ddg is not None and ddg.sample_rate != rate:
                raise ReplayFailure(
                    f"the distributed mechanism's sample rate changed mid-ledger "
                    f"({ddg.sample_rate:g} -> {rate:g})"
                )
            record_clip = params.get("record_clip")
            # as recorded: a scale today's engine refuses as too coarse still ran in
            # rounds before 2026-12-06, and is charged what its parameters give
            mechanism, self.coarse_scale = DistributedDiscreteGaussian.as_recorded(
                dimension=int(params["dimension"]),
                clip=float(params["clip"] if record_clip is None else record_clip),
                vector_bound=0.0 if record_clip is None else float(params["clip"]),
                noise_multiplier=float(params["noise_multiplier"]),
                expected_clients=int(params["expected_clients"]),
                bits=int(params["bits"]),
                scale=float(params["scale"]),
            )
            recorded_sigma = params.get("local_sigma")
            if recorded_sigma is not None and not _same_count(
                recorded_sigma, mechanism.local_sigma
            ):
                # the accountant sizes the noise from expected_clients: a row that records
                # fewer expected clients beside the share it really drew claims too little.
                # Compared exactly: int() passed a recorded 4.9 (or "4") where 4 is given
                raise ReplayFailure(
                    f"records a local noise share of sigma {recorded_sigma!r}, but its discrete "
                    f"Gaussian parameters give {mechanism.local_sigma} (expected_clients "
                    f"{params['expected_clients']}): the replayed noise is not the noise added"
                )
            planned = mechanism.planned_scale
            if mechanism.scale < planned * (1 - _PARAMETER_TOLERANCE):
                # the server plans every round's scale from these parameters; a coarser
                # one rounds each share's std up to more units than z asks (scale 0.5 at
                # clip 1, 1000 expected clients, d = 16: epsilon 0.36 where the planned
                # scale's noise spends 5.59), so the claim is of noise that did not run
                raise ReplayFailure(
                    f"records a discrete Gaussian scale of {mechanism.scale!r}, below the "
                    f"{planned!r} its parameters plan (the server plans every round's scale "
                    "from dimension, bits, expected clients, clip and noise multiplier): at "
                    "a coarser scale each noise share's std rounds up to more units than the "
                    "noise multiplier asks, so the replayed noise is not the noise added"
                )
            shares = [] if ddg is None else list(ddg.honest_shares)
            ddg = DiscreteGaussianAccountant(mechanism, sample_rate=rate, delta=delta)
            ddg.honest_shares = shares
            self._ddg = ddg
        ddg.step(int(dp["noise_contributors"]))
        self.coarse_rows += self.coarse_scale is not None
        return ddg.epsilon()

    def at_own_delta(self, dp: dict[str, Any]) -> float | None:
        """The rounds charged so far, replayed at the delta and accountant a row that
        charges nothing records, when they differ from the ones the epsilon it carries
        was accounted at; else None (the carried figure is the one at its delta).

        Why: such a row carried the last charged round's claim beside its own delta, so
        after a restart under another delta its (epsilon, delta) was a pair no
        accountant produced. A server now writes the restarted accountant's figure, every
        charged round at the row's delta: the figure this replays. The accountants are
        rebuilt aside: the next charged row composes as before."""
        delta = accounted_delta(dp)
        if delta is None or self._current is None or self.unbounded:
            return None
        name = _accountant_name(dp)
        if dp.get("mechanism") == "central" and dp.get("unit") == "client":
            if self._per_client_rows:
                per_client = self._per_client
                if per_client is None or (per_client.delta, per_client.name) == (delta, name):
                    return None
                restated = PerClientAccountant(delta, name)
                for precision, members in self._charges:
                    restated.charge(precision, members)
                return restated.epsilon()
            central = self._accountant
            if central is None or (central.delta, central.name) == (delta, name):
                return None
            rebuilt_central = GaussianAccountant(delta, name)
            for z, q in self._central:
                rebuilt_central.step(z, q)
            return rebuilt_central.epsilon()
        if dp.get("mechanism") == "distributed":
            ddg = self._ddg
            if ddg is None or ddg.delta == delta:
                return None
            restated_ddg = DiscreteGaussianAccountant(
                ddg.mechanism, sample_rate=ddg.sample_rate, delta=delta
            )
            restated_ddg.honest_shares = list(ddg.honest_shares)
            return restated_ddg.epsilon()
        return None

    def feed(self, entry: dict[str, Any], *, dp_expected: bool = False) -> float | None:
        """The cumulative epsilon after this row. ``dp_expected``: the ledger (or the
        config) has DP, so a completed round without a DP block makes it infinite.
        :attr:`restated`: for a row that charges nothing, the rounds so far at its own
        delta when that differs from the carried figure's (:meth:`at_own_delta`)."""
        self.restated = None
        dp = entry.get("dp")
        complete = entry.get("status") == "complete"
        if dp:
            mechanism = (str(dp.get("unit")), str(dp.get("mechanism")))
            if self._mechanism is not None and mechanism != self._mechanism:
                raise ReplayFailure(
                    f"the ledger changes DP mechanism mid-way ({self._mechanism} -> "
                    f"{mechanism}): their guarantees do not compose in this replay"
                )
            self._mechanism = mechanism
        if complete and not dp and dp_expected:
            self.unbounded = True
        if dp and dp.get("unit") == "record" and dp.get("mechanism") != "distributed":
            value = self._record_level(dp, entry)
        elif dp and (complete or dp.get("sum_revealed") is True):
            # an aborted round whose sum the server saw (distributed DP: that sight is
            # the release) is charged like a completed one
            mechanism = dp.get("mechanism")
            if mechanism == "central" and dp.get("unit") == "client":
                self._current = self._central_round(dp, entry.get("participants"))
            elif mechanism == "distributed":
                self._current = self._distributed_round(dp)
            value = self._current
        else:
            value = self._current
            if dp:
                self.restated = self.at_own_delta(dp)
        return math.inf if self.unbounded else value
