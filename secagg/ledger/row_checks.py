"""The checks of one ledger row's DP block, and the auditor's expectations.

Split out of :mod:`secagg.ledger.verify` (which runs them over a chain and gives the
verdict): each function here looks at one row (its ``dp`` block, its counts, the model
it records) against itself, the row before it or the config the auditor holds
(:class:`ExpectedPrivacy`), and returns the reason it fails, or ``None``. The
tolerances every comparison of a claimed and a replayed epsilon uses live here too, so
the replay (:mod:`secagg.ledger.replay`) and the verdict read the same ones. The
underscored names are internal to :mod:`secagg.ledger`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from secagg.dp.accountants import (
    PER_CLIENT,
    GaussianAccountant,
    PerClientAccountant,
    history_extends,
    history_runs,
)
from secagg.ledger.entry import FROM_STATE, Reconstruction

#: a claim may lie this far (relative) *above* the epsilon its mechanism replays to
#: (older accountant code, other arithmetic: it overstates what was spent, the safe side)
RELATIVE_TOLERANCE = 1e-6
#: ... and only this far *below* it: float noise between two computations of the same
#: accountant (incremental vs from-scratch PLD agree to 1e-8, docs/privacy.md; measured
#: 4e-12 to 4e-10; the server's own claims replay exactly). A claim further below
#: understates epsilon and fails: the tolerance above was once symmetric, so a claim
#: 1e-6 below its replay verified
FLOAT_NOISE = 1e-8
#: recorded parameters that must be equal (deltas, rates, noise std) agree this closely
_PARAMETER_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ExpectedPrivacy:
    """What the federation's config promises, as plain values (``secagg audit verify
    --config`` loads the TOML; the ledger layer never imports the runtime).

    ``delta`` None: the config has no ``[dp]`` section. ``sample_rate`` is the
    accountant's q (fixed cohorts: count / population). ``noise_multiplier``: a row
    recording a larger one fails (it claims more noise than the config runs), a smaller
    one is a note, as is another ``clip``: a restart may change them, and each row is
    replayed with its own.
    """

    delta: float | None
    unit: str | None
    mechanism: str | None
    sampling_kind: str
    sample_rate: float
    population: int
    noise_multiplier: float | None = None
    clip: float | None = None
    #: ``[dp] epsilon_budget``: the hard cap no row's re-derived epsilon may exceed
    epsilon_budget: float | None = None
    #: the config draws its cohorts from ``federation.seed`` (and is not a replay): no
    #: row of it may claim amplification by sampling, even one that predates the
    #: ``dp.sampling.seeded`` flag (the config is then the only record of the seed)
    cohort_seeded: bool = False
    #: distributed DP: the config's model dimension, ring bits, expected clients per
    #: round and corrupt fraction (None: not given, unchecked). The noise share each
    #: client adds is sized from them, so a row that records others (fewer expected
    #: clients: a smaller claim) misstates the mechanism the federation ran
    dimension: int | None = None
    bits: int | None = None
    expected_clients: float | None = None
    corrupt_fraction: float | None = None
    #: ``federation.name`` of the config (None: not given, unchecked). Why: every row
    #: names its federation, and without this another federation's ledger whose DP
    #: figures match the config (a test run's, say) verified as this one's
    federation: str | None = None

    @property
    def dp(self) -> bool:
        return self.delta is not None


def _same_count(recorded: object, expected: int) -> bool:
    """``recorded`` is the integer ``expected``: an int (not a bool) of that value. A
    float, even 4.0, a string or anything else is a row that does not record it."""
    return isinstance(recorded, int) and not isinstance(recorded, bool) and recorded == expected


class ReplayFailure(ValueError):
    """A row's DP block contradicts itself, its history or the expected config."""


#: how a rebuilt row's source reads in verify's and the report's lines
_SOURCES = {FROM_STATE: "the server's state database (its record of the round)"}


def rebuilt_line(number: Any, seq: int, provenance: Reconstruction | None) -> str:
    """``round N (row S) was rebuilt ...``: the one line verify and the report give a
    rebuilt row (the report's is the same sentence)."""
    head = f"round {number} (row {seq}) was rebuilt after the fact"
    if provenance is None:
        return (
            f"{head}; why and from what are not recorded (a row written before rebuilt rows "
            "recorded their provenance), so which of its fields are the round's own is unknown"
        )
    source = _SOURCES.get(provenance.source, repr(provenance.source))
    lacks = "; ".join(f"{name}: {why}" for name, why in provenance.not_recovered.items())
    return (
        f"{head} from {source} (cause: {provenance.cause}). Recovered: "
        f"{', '.join(provenance.recovered) or 'nothing'}. Not recovered: {lacks or 'nothing'}"
    )


#: a ledger without DP names at most this many of its released rounds in its one reason
_LISTED_ROUNDS = 8


def _round_list(numbers: list[Any]) -> str:
    """``round 2``, ``rounds 1, 2`` or, for many, ``rounds 1, 2, 3, ..., 200 (200 in
    all)``: one readable line however long the ledger."""
    if len(numbers) == 1:
        return f"round {numbers[0]}"
    shown = [str(n) for n in numbers]
    if len(numbers) > _LISTED_ROUNDS:
        shown = [*shown[: _LISTED_ROUNDS - 1], "...", shown[-1]]
        return f"rounds {', '.join(shown)} ({len(numbers)} in all)"
    return f"rounds {', '.join(shown)}"


def noise_seeded(entry: dict[str, Any]) -> bool | None:
    """The row's ``noise_seeded`` flag; None when the row predates the field.

    Rows written before the field existed read as not seeded (the flag's default);
    a value other than true or false is a malformed row.
    """
    if "noise_seeded" not in entry:
        return None
    value = entry["noise_seeded"]
    if not isinstance(value, bool):
        raise ValueError(f"noise_seeded must be true or false, not {value!r}")
    return value


def sampling_seeded(dp: dict[str, Any]) -> bool | None:
    """The DP block's ``sampling.seeded`` flag: the cohort was drawn from the config's
    seed (predictable by anyone holding the config). None when the row predates it.

    A value other than true or false is a malformed row."""
    sampling = dp.get("sampling")
    if not isinstance(sampling, dict) or "seeded" not in sampling:
        return None
    value = sampling["seeded"]
    if not isinstance(value, bool):
        raise ValueError(f"dp.sampling.seeded must be true or false, not {value!r}")
    return value


def charges_a_round(entry: dict[str, Any]) -> bool:
    """The row's round is charged: it completed, or it aborted after the server saw its
    sum (``dp.sum_revealed``). Only such a row composes a round into the epsilon; any
    other carries the previous figure on."""
    dp = entry.get("dp")
    revealed = isinstance(dp, dict) and dp.get("sum_revealed") is True
    return entry.get("status") == "complete" or revealed


def accounted_delta(dp: dict[str, Any]) -> float | None:
    """The delta a DP block accounts at (``dp.delta``), or None when it records none
    (or something that is no finite number: a failed ledger's row, as recorded)."""
    delta = dp.get("delta")
    if not _real(delta) or not math.isfinite(float(delta)):
        return None
    return float(delta)


def _claimed(entry: dict[str, Any]) -> float | None:
    value = entry.get("privacy", {}).get("epsilon")
    if value is None:
        return None
    return math.inf if value == "inf" else float(value)


def _agrees(claimed: float | None, recomputed: float | None) -> bool:
    """A claimed epsilon follows from the replayed one: at most
    :data:`RELATIVE_TOLERANCE` above it (the safe side), at most :data:`FLOAT_NOISE`
    below it. Why one-sided: the tolerance was symmetric, so a row (or a branch's
    DP-SGD report) could claim up to one part in a million less than its mechanism
    spent and verify."""
    if claimed is None or recomputed is None:
        return claimed is None and recomputed is None
    if math.isinf(claimed) or math.isinf(recomputed):
        return claimed == recomputed
    scale = max(1.0, abs(recomputed))
    return -FLOAT_NOISE * scale <= claimed - recomputed <= RELATIVE_TOLERANCE * scale


def _below_replay(claimed: float | None, recomputed: float | None) -> bool:
    """``claimed`` lies below the replayed ``recomputed`` by more than
    :data:`FLOAT_NOISE` (the lower side of :func:`_agrees` fails): both finite numbers.

    Why: no other computation can rescue such a claim, so verify skips the from-scratch
    fallback for it (:meth:`~secagg.ledger.replay.EpsilonReplay.older_claim`, 0.7-1 s of
    PLD a row, all of the verify's time on a tampered ledger). That fallback accepts a
    claim matching a figure ``f`` and then holds the claim to ``max(f, recomputed)``. If
    ``_agrees(claimed, f)`` and ``f >= recomputed``, then ``claimed >= f - FLOAT_NOISE *
    max(1, f)``; the scale grows by at most ``f - recomputed``, so ``claimed`` would lie
    within float noise below ``recomputed`` too, which it does not. So ``f`` is below
    ``recomputed``, the maximum is ``recomputed`` itself and the row fails with the same
    figure and words, whatever ``f`` is (tests/ledger/test_verify_fallback_cost.py
    compares the two verifiers over random ledgers and any ``f``). A claim above its
    replay still takes the fallback: a row the from-scratch code wrote may lie there."""
    if claimed is None or recomputed is None:
        return False
    if not (math.isfinite(claimed) and math.isfinite(recomputed)):
        return False
    return claimed - recomputed < -FLOAT_NOISE * max(1.0, abs(recomputed))


def _real(value: object) -> bool:
    """A JSON number as the writer records it: an int or float, not a bool (nor a
    string ``float()`` would parse)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object, what: str) -> float:
    """``value`` as a float if the row records it as a finite number; else
    :class:`ReplayFailure` naming ``what``. Why: ``float()`` read ``"1.5"`` (and ``True``)
    as the number, so a row recording a figure as a string verified as if it held it."""
    if not _real(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ReplayFailure(f"records {what} as {value!r}, not a finite number")
    return float(value)  # type: ignore[arg-type]


def _accountant_name(dp: dict[str, Any]) -> str:
    """The row's ``dp.accountant``, which must be a name. Why: ``str()`` read 5 (or
    None, a list) as the name ``'5'`` and refused it as an unknown accountant, naming
    neither the field nor that the row recorded no name at all."""
    name = dp.get("accountant")
    if not isinstance(name, str):
        raise ReplayFailure(f"records dp.accountant as {name!r}, not an accountant's name")
    return name


def _same(a: Any, b: Any) -> bool:
    """Two recorded parameters (numbers) are equal up to float noise. A recorded value
    that is not a number (a string, a bool) is never the same as anything: ``float()``
    once read ``"1e-05"`` as the delta it spells."""
    if a is None or b is None:
        return a is None and b is None
    if not (_real(a) and _real(b)):
        return False
    a, b = float(a), float(b)
    return abs(a - b) <= _PARAMETER_TOLERANCE * max(abs(a), abs(b), 1e-300)


def _below(a: Any, b: Any) -> bool:
    """``a`` lies below ``b``, by however little (both recorded numbers; False if either
    is missing).

    Why: :func:`_same`'s tolerance is for float noise, and noise must not flatter. Where
    one side of a pair is the safe one (a printed delta at or above the accounted one, a
    noise std at or above z x clip, an accounted sampling rate at or above the recorded
    one), :func:`_same` alone let the other side pass by up to 1e-9 (relative); the
    writer computes both sides from the same floats, so an honest row is exact there."""
    if a is None or b is None:
        return False
    if not (_real(a) and _real(b)):
        return True  # not a number: nothing shows it is not below (callers fail it)
    return float(a) < float(b)


#: kept under their old names (the rule now lives beside the accountants, shared with
#: the server's record-level mechanism)
_runs = history_runs
_extends = history_extends


def _check_consistency(
    dp: dict[str, Any],
    privacy: dict[str, Any],
    participants: Any = None,
    *,
    replayed_noise: bool = False,
) -> str | None:
    """What a DP block says about itself must hold, whatever the config.

    ``replayed_noise``: the row's noise was seeded (``noise_seeded``), so it is reported
    as not private anyway, and a claim of amplification by a seeded cohort is only one
    more reason (a simulation's replay); without it such a claim fails."""
    # the printed delta may not lie below the one the epsilon holds at, by any amount
    printed, accounted = privacy.get("delta"), dp.get("delta")
    if not _same(printed, accounted) or _below(printed, accounted):
        return (
            f"prints delta {privacy.get('delta')} but its DP block accounts at delta "
            f"{dp.get('delta')}"
        )
    unrecorded = _sampling_unrecorded(dp)
    if unrecorded is not None:
        return unrecorded
    for out_of_scope in (_adaptive_out_of_scope, _record_clip_out_of_scope):
        problem = out_of_scope(dp)
        if problem is not None:
            return problem
    sampling = dp.get("sampling")
    population = sampling.get("population") if isinstance(sampling, dict) else None
    if dp.get("unit") == "client" and isinstance(population, int) and accounted is not None:
        # the server refuses such a config (secagg.dp.config): at delta >= 1/N the
        # guarantee allows releasing one client's data outright, whatever the epsilon
        # (a row at delta 0.3 of 4 clients verified with a small epsilon)
        if float(accounted) >= 1 / population:
            return (
                f"accounts at delta {accounted} but its cohort was drawn from {population} "
                f"clients: a delta of at least 1/{population} allows releasing one client's "
                "data outright, so no epsilon at it is a guarantee"
            )
    if dp.get("unit") != "client" and dp.get("mechanism") != "distributed":
        # record-level DP-SGD: the branches account (and sample) inside themselves;
        # every distributed row, record level included, gets the checks below (the DP
        # audit amplified record-level distributed rows at rate 0.1 and they verified)
        return None
    sampling = dp.get("sampling")
    rate = float(dp["sample_rate"])
    if isinstance(sampling, dict):
        seeded_cohort = sampling_seeded(dp)  # a malformed flag fails whatever the rate
        kind = sampling.get("kind")
        if kind != "poisson" and rate < 1:
            return (
                f"is accounted with Poisson amplification at sample rate {rate:g} but its "
                f"cohort was drawn by {kind!r} sampling (a fixed-size cohort is not Poisson: "
                "its epsilon is understated)"
            )
        recorded_rate = sampling.get("rate")
        # 1: no amplification claimed; an accounted rate below the sampled one flatters
        if rate < 1 and (not _same(recorded_rate, rate) or _below(rate, recorded_rate)):
            return (
                f"is accounted at sample rate {rate:g} but records sampling at rate "
                f"{sampling.get('rate')}"
            )
        if rate < 1 and seeded_cohort and not replayed_noise:
            return (
                f"claims amplification by sampling at rate {rate:g}, but its cohort was drawn "
                "from the config's federation.seed (dp.sampling.seeded): anyone holding the "
                "config predicts who was sampled, so only the un-amplified epsilon holds"
            )
    if rate < 1 and dp.get("mechanism") == "distributed":
        return (
            f"claims amplification by sampling at rate {rate:g}, but with distributed DP the "
            "untrusted server draws (and sees) the cohort: only the un-amplified epsilon holds"
        )
    problem = _check_charged_rate(dp, participants, rate)
    if problem is not None:
        return problem
    hashes = participants.get("identity_hashes") if isinstance(participants, dict) else None
    if rate < 1 and isinstance(hashes, list) and hashes:
        return (
            f"publishes who took part beside an epsilon amplified by secret sampling at rate "
            f"{rate:g}: the amplification does not survive a public list of the sampled"
        )
    z, clip, std = dp.get("noise_multiplier"), dp.get("clip"), dp.get("noise_std")
    if dp.get("record_clip") is not None:  # record level: the noise is z x what one unit moves
        clip = dp["record_clip"]
    adaptive = dp.get("adaptive_clipping")
    if isinstance(adaptive, dict):
        z = adaptive.get("update_noise_multiplier")
        if not _real(z):
            return (
                f"records dp.adaptive_clipping.update_noise_multiplier as {z!r}, not a "
                "number: the replay cannot charge the noise that was added"
            )
        problem = _check_adaptive_total(dp, adaptive)
        if problem is not None:
            return problem
    if None in (z, clip, std):
        # every client-level and distributed row the server writes records all three:
        # without one the check below was skipped, and the replayed z was the row's word
        return (
            f"records noise_std {std!r}, noise multiplier {z!r} and clip {clip!r}: without "
            "all three the noise added cannot be checked against z x clip"
        )
    # less noise than z x clip (by any amount) is less than the replay assumes
    if None not in (z, clip, std) and (
        not _same(std, float(z) * float(clip)) or _below(std, float(z) * float(clip))
    ):
        return (
            # exact figures: within 6 digits the two sides of a 1e-7 gap read the same
            f"records noise std {float(std)!r} but noise multiplier {float(z)!r} x clip "
            f"{float(clip)!r} = {float(z) * float(clip)!r}: the replayed epsilon is not that "
            "of the noise added"
        )
    return None


def _adaptive_out_of_scope(dp: dict[str, Any]) -> str | None:
    """Why a row records adaptive clipping where nothing charges it, or None.

    Why: adaptive clipping releases a noised count of the unclipped clients beside the
    update, and only client-level central DP runs it (the config has refused it
    elsewhere since it exists) and only its replay charges that count (the two releases
    compose to the row's total noise multiplier). A record-level DP-SGD row is replayed
    from the branches' reports and a distributed row from its discrete Gaussian: such a
    row recording ``dp.adaptive_clipping`` said a count release ran and verified with
    it charged nothing."""
    if dp.get("adaptive_clipping") is None:
        return None
    unit, mechanism = dp.get("unit"), dp.get("mechanism")
    if (unit, mechanism) == ("client", "central"):
        return None
    return (
        f"records adaptive clipping (dp.adaptive_clipping) on a row of unit {unit!r}, "
        f"mechanism {mechanism!r}: only client-level central DP runs it (the server noises "
        "the clip count), and nothing here charges its count release, so the row's "
        "epsilon leaves out a release it says ran"
    )


def _record_clip_out_of_scope(dp: dict[str, Any]) -> str | None:
    """Why a row records ``record_clip`` though it is not record level, or None.

    Why: ``record_clip`` is what one protected unit moves a client's vector by, and the
    noise check and the replay take it for the sensitivity on any row. A client-level
    row protects a whole client, whose update moves by up to ``dp.clip``: with a
    ``record_clip`` of 0.01 beside clip 1, a central row's noise std was held to
    ``z x 0.01`` and charged as ``z x 1`` (a hundredth of the noise its claim is the
    epsilon of), a distributed row's discrete Gaussian replayed at sensitivity 0.01.
    The server writes it on record-level rows only."""
    record_clip = dp.get("record_clip")
    if record_clip is None or dp.get("unit") == "record":
        return None
    return (
        f"records record_clip {record_clip!r} on a row of unit {dp.get('unit')!r}: only a "
        "record-level row's noise is sized to what one record moves; a client's update "
        f"moves by up to its clip {dp.get('clip')!r}, so an epsilon charged for the record "
        "clip understates what the noise gives"
    )


def _check_adaptive_total(dp: dict[str, Any], adaptive: dict[str, Any]) -> str | None:
    """An adaptive-clipping row's total noise multiplier (``dp.noise_multiplier``) must be
    what its two releases compose to, or None.

    Why: the round releases the update sum (multiplier ``z_delta``,
    ``update_noise_multiplier``) and the clip count (sensitivity 1/2, std ``sigma_b``,
    ``count_noise_stddev``, so multiplier ``2 sigma_b``), which compose to the one
    Gaussian ``z = (z_delta^-2 + (2 sigma_b)^-2)^-1/2`` (:mod:`secagg.dp.adaptive`); the
    server records the ``z`` it split. A per-client row is replayed from the two
    releases, so nothing read the total: a row recording any ``z`` verified, and with
    ``--config`` one recording the config's ``z`` kept the noise-multiplier note quiet
    whatever its releases were (and an older row, replayed at its total, could claim
    the epsilon of a ``z`` it never had). Both ways fail: the writer computes the split
    from the total, so an honest row agrees to float noise."""
    z_delta, sigma_b = adaptive.get("update_noise_multiplier"), adaptive.get("count_noise_stddev")
    for name, value in (("update_noise_multiplier", z_delta), ("count_noise_stddev", sigma_b)):
        if not (_real(value) and math.isfinite(float(value)) and float(value) > 0):
            return (
                f"records dp.adaptive_clipping.{name} as {value!r}, not a positive finite "
                "number: its total noise multiplier cannot be checked against its releases"
            )
    # the composition the replay charges a per-client row (precision 1 / z^2 adds up)
    composed = PerClientAccountant.precision(float(z_delta), float(sigma_b)) ** -0.5
    total = dp.get("noise_multiplier")
    if _same(total, composed):
        return None
    return (
        # exact figures: a total 1e-7 off reads as the composed one at 6 digits
        f"records total noise multiplier {total!r}, but its two releases compose to "
        f"{composed!r} (update noise multiplier z_delta {float(z_delta)!r}, count noise "
        f"std sigma_b {float(sigma_b)!r}: z = (z_delta^-2 + (2 sigma_b)^-2)^-1/2)"
    )


#: what every ``dp.sampling`` the server writes holds since 2026-12-02, and the checks
#: read (``seeded``, since 2026-12-03 15:00, matters only to an amplified row: one
#: without it is noted, as before)
_SAMPLING_RECORD = ("kind", "rate", "population")


def _sampling_unrecorded(dp: dict[str, Any]) -> str | None:
    """Why a row that only a writer of ``dp.sampling`` could have written lacks (part of)
    it, or None.

    Why: a row without the record skips the sampling kind/rate checks, the
    ``delta >= 1/N`` check and the population bound on the identities it charges (a
    per-client row at delta 0.3 among 4 clients verified once its record was dropped).
    Older rows lack it and still verify; row version 2 (since 2026-12-02 00:46)
    predates the record, so it cannot tell them apart (version 3, since 2026-12-05,
    does: :func:`~secagg.ledger.entry.row_shape_problem` requires the record of every
    such DP row), but a row charged per client
    (``dp.composition``, since 2026-12-03 21:23) or a distributed row recording its
    ``corrupt_fraction`` (since 2026-12-04) was written after the server recorded all
    of kind, rate and population on every DP row."""
    if dp.get("composition") == PER_CLIENT:  # another value fails in the replay, named
        marker = f"is charged per client (dp.composition {PER_CLIENT!r})"
    elif dp.get("mechanism") == "distributed" and "corrupt_fraction" in dp:
        marker = "records its corrupt_fraction (a distributed row)"
    else:
        return None
    sampling = dp.get("sampling")
    if not isinstance(sampling, dict):
        missing = "no dp.sampling"
    else:
        lacking = [name for name in _SAMPLING_RECORD if name not in sampling]
        if not lacking:
            return None
        missing = "a dp.sampling without " + ", ".join(lacking)
    return (
        f"{marker} but records {missing}: every row written since then records how its "
        "cohort was drawn (kind, rate, population), which the sampling, delta and "
        "population checks read"
    )


def _check_charged_rate(dp: dict[str, Any], participants: Any, rate: float) -> str | None:
    """A sampled central round's ``charged_rate`` must be at least the larger of q and its
    published cohort's share of the clients it was drawn from (``drawn_from``, else the
    population): less understates what the published count gives away. A rate the row
    gives no count or pool for cannot be checked, and fails."""
    if "charged_rate" not in dp:
        return None
    charged = dp["charged_rate"]
    if isinstance(charged, bool) or not isinstance(charged, int | float) or not 0 < charged <= 1:
        return f"records charged_rate {charged!r}, not a rate in (0, 1]"
    if rate >= 1:
        return f"records charged_rate {charged:g} but no sampling (sample rate {rate:g})"
    count, pool, population = _cohort(dp, participants)
    if not (isinstance(count, int) and isinstance(pool, int) and pool > 0):
        return (
            f"records charged_rate {charged:g} without the cohort's size and the number of "
            "clients it was drawn from, so the rate cannot be checked"
        )
    if isinstance(population, int) and pool > population:
        return f"was drawn from {pool} clients, more than the population of {population}"
    share = max(rate, min(1.0, count / pool))
    if charged < share:  # by any amount: a lower rate claims a smaller epsilon
        low, high = (f"{charged:g}", f"{share:g}")
        if low == high:  # a hair below: exact figures, or the line contradicts itself
            low, high = repr(float(charged)), repr(float(share))
        return (
            f"is charged at rate {low}, but it publishes a cohort of {count} of the "
            f"{pool} clients it was drawn from: it must be charged at least {high}"
        )
    return None


def _cohort(dp: dict[str, Any], participants: Any) -> tuple[Any, Any, Any]:
    """A row's published cohort size, the pool it was drawn from (``drawn_from``, else the
    population) and the population, as recorded (unchecked: any may be missing)."""
    count = participants.get("count") if isinstance(participants, dict) else None
    sampling = dp.get("sampling")
    population = sampling.get("population") if isinstance(sampling, dict) else None
    return count, dp.get("drawn_from", population), population


def _check_noise_shares(entry: dict[str, Any], dp: dict[str, Any]) -> str | None:
    """A charged distributed row's honest noise shares must follow from what the row
    itself records: no more than its contributions (a sum-revealed aborted row: its
    participants) less the colluders the protocol's rule assumes for its cohort.

    Why: the accountant's epsilon rests on that count, and the row's own
    ``noise_contributors`` was taken on trust (DP audit: a row with 2 contributions of
    4 claimed 50 honest shares, epsilon 0.87 where the server's rule gives none). The
    colluders are recomputed from the row's corrupt fraction, cohort and (sampled
    rounds) population with :func:`~secagg.dp.distributed.assumed_colluders`; a row
    written before ``dp.corrupt_fraction`` was recorded is held to the fewest the rule
    ever assumes (corrupt fraction 0), so dropping the field buys nothing."""
    from secagg.dp.distributed import assumed_colluders, honest_noise_contributors

    shares = dp.get("noise_contributors")
    if isinstance(shares, bool) or not isinstance(shares, int) or shares < 0:
        return f"records noise_contributors {shares!r}, not a count of noise shares"
    participants = entry.get("participants")
    count = participants.get("count") if isinstance(participants, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return f"records {shares} honest noise shares but no participant count to check them"
    fraction = dp.get("corrupt_fraction", 0.0)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        return f"records corrupt_fraction {fraction!r}, not a fraction in [0, 1)"
    sampling = dp.get("sampling")
    population = None
    if isinstance(sampling, dict) and float(sampling.get("rate", 1.0)) < 1:
        population = sampling.get("population")  # the server drew the cohort from it
        if isinstance(population, bool) or not isinstance(population, int):
            population = None
    colluders = assumed_colluders(count, float(fraction), population)
    recorded = dp.get("assumed_colluders")
    if recorded is not None:
        if isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < colluders:
            return (
                f"records {recorded!r} assumed colluders, but the protocol's rule assumes "
                f"{colluders} in a cohort of {count} at corrupt fraction {fraction:g}"
            )
        colluders = recorded
    charged_without_release = entry.get("status") != "complete"  # sum revealed, then aborted
    contributed = count if charged_without_release else entry.get("contributed")
    if isinstance(contributed, bool) or not isinstance(contributed, int) or contributed < 0:
        return f"records {shares} honest noise shares but no count of contributions"
    allowed = honest_noise_contributors(min(contributed, count), colluders)
    if shares > allowed:
        return (
            f"counts {shares} honest noise shares, but {contributed} of {count} participants "
            f"contributed and the protocol assumes {colluders} colluders: at most {allowed} "
            "shares are honest, so its epsilon is understated"
        )
    return None


class _UnamplifiedCharge:
    """The ledger's completed central rounds charged to every client at rate 1: what a
    ledger whose claims credit amplification by sampling spends without it. The engine
    no longer credits that amplification, so this is the figure such a ledger is
    reported with and ``--config``'s budget is held to (DP audit t2). The accountant
    is stepped only when asked, and incrementally (a long ledger stays linear)."""

    def __init__(self) -> None:
        self.amplified = False  # some row so far claims amplification by sampling
        self._rounds: list[tuple[float, float, str]] = []  # (z, delta, accountant)
        self._accountant: GaussianAccountant | None = None
        self._charged = 0  # rounds the accountant holds

    @property
    def delta(self) -> float | None:
        """The delta :meth:`epsilon` accounts at (the latest central round's)."""
        return self._rounds[-1][1] if self._rounds else None

    def add(self, dp: dict[str, Any]) -> None:
        """One completed central client-level round (its z as the replay composes it)."""
        self.amplified = self.amplified or _claims_amplification(dp)
        delta, name = float(dp["delta"]), str(dp.get("accountant", "pld"))
        self._rounds.append((float(dp["noise_multiplier"]), delta, name))

    def epsilon(self) -> float:
        """Every round so far at the latest row's delta and accountant (a restart may
        change them: then rebuilt from all rounds, as the replay does)."""
        _, delta, name = self._rounds[-1]
        accountant = self._accountant
        if accountant is None or accountant.delta != delta or accountant.name != name:
            accountant, self._charged = GaussianAccountant(delta, name), 0
            self._accountant = accountant
        for z, _, _ in self._rounds[self._charged :]:
            accountant.step(z, 1.0)
        self._charged = len(self._rounds)
        return accountant.epsilon()


def _check_model_moved(entry: dict[str, Any], previous_model: Any) -> str | None:
    """An aborted round released nothing, so its row records the model the previous
    row left: the model only moves in a completed round. A row that says "aborted"
    (charged nothing) beside a new model released uncharged (DP audit t6). A round
    whose sum the server saw before aborting (``dp.sum_revealed``) is charged anyway
    and not held to this; a row without a digest, or the first row, has nothing to
    compare."""
    if entry.get("status") == "complete":
        return None
    dp = entry.get("dp")
    if isinstance(dp, dict) and dp.get("sum_revealed") is True:
        return None
    model = entry.get("model_sha256")
    if model is None or previous_model is None or model == previous_model:
        return None
    return (
        f"is aborted (charged nothing) but its model digest {str(model)[:12]}… differs from "
        f"the previous row's {str(previous_model)[:12]}…: the model changed in a round that "
        "released nothing"
    )


def _check_reports(dp: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """A completed record-level DP-SGD round holds a branch report for every update in
    its sum: at least ``contributed`` reports, each from a listed participant (when the
    row lists them).

    Why: the row's claim is the worst *reporting* branch's epsilon, so a contributor
    without a report released an update no claim covers (DP audit: dropping one
    participant's report, or all of them, still verified, the latter as private with
    no epsilon at all)."""
    reports = dp.get("client_reports")
    if not isinstance(reports, dict):
        return "is a record-level DP-SGD row without its branches' client_reports"
    contributed = entry.get("contributed")
    if isinstance(contributed, bool) or not isinstance(contributed, int):
        return "is a record-level DP-SGD row without a count of contributions"
    participants = entry.get("participants")
    hashes = participants.get("identity_hashes") if isinstance(participants, dict) else None
    reporting = set(reports)
    if isinstance(hashes, list):
        strangers = reporting - set(hashes)
        if strangers:
            return (
                f"holds DP-SGD reports of {len(strangers)} branches that are not among its "
                "participants"
            )
    if len(reporting) < contributed:
        return (
            f"released a sum of {contributed} branches' updates but holds DP-SGD reports of "
            f"only {len(reporting)}: an update without a report is covered by no "
            "record-level epsilon"
        )
    return None


def _amplified(dp: dict[str, Any]) -> bool:
    """The client-level DP block is accounted with amplification by sampling (q < 1)."""
    return dp.get("unit") == "client" and float(dp["sample_rate"]) < 1


def _claims_amplification(dp: dict[str, Any]) -> bool:
    """A central client-level row whose claim is charged below rate 1: amplified by
    sampling (``charged_rate`` where recorded, else the sample rate). A row charged at
    rate 1 claims what holds unamplified, whatever its sample rate."""
    return _amplified(dp) and float(dp.get("charged_rate", dp["sample_rate"])) < 1


def _check_against(dp: dict[str, Any], expected: ExpectedPrivacy) -> str | None:
    """A DP row against the federation's config (delta, unit, mechanism, sampling, and a
    noise multiplier no larger than the config's)."""
    if not expected.dp:
        return "records a DP block but the federation's config has no [dp] section"
    # a row accounted at a larger delta than the config's promises less, by any amount
    if not _same(dp.get("delta"), expected.delta) or _below(expected.delta, dp.get("delta")):
        return f"accounts at delta {dp.get('delta')} but the config's delta is {expected.delta:g}"
    if (dp.get("unit"), dp.get("mechanism")) != (expected.unit, expected.mechanism):
        return (
            f"records unit {dp.get('unit')!r}, mechanism {dp.get('mechanism')!r}, but the "
            f"config has unit {expected.unit!r}, mechanism {expected.mechanism!r}"
        )
    recorded_z = dp.get("noise_multiplier")
    if expected.noise_multiplier is not None and _below(expected.noise_multiplier, recorded_z):
        # the flattering direction, by any amount: more noise recorded than the config
        # runs replays to a smaller epsilon (a ledger recording z = 10 for a run at z = 1
        # verified against the config, only noted). Below the config's is a note (a
        # restart under another config; the replay of the smaller z spends more)
        return (
            f"records noise multiplier {recorded_z!r}, above the config's "
            f"{float(expected.noise_multiplier)!r}: it claims more noise than the config "
            "runs, so a smaller epsilon than the config's noise spends (a federation that "
            "lowered its noise multiplier on a restart verifies against the config with "
            "the largest one it ran; rows below it are noted)"
        )
    if dp.get("sample_rate") != 1.0 and (
        not _same(dp.get("sample_rate"), expected.sample_rate)
        or _below(dp.get("sample_rate"), expected.sample_rate)
    ):
        return (
            f"is accounted at sample rate {dp.get('sample_rate')} but the config's rate is "
            f"{expected.sample_rate:g}"
        )
    if expected.cohort_seeded and _amplified(dp):
        return (
            f"claims amplification by sampling at rate {dp['sample_rate']:g}, but the "
            "config draws every cohort from its federation.seed: anyone holding the config "
            "predicts who was sampled, so only the un-amplified epsilon holds"
        )
    if dp.get("mechanism") == "distributed":
        problem = _distributed_against(dp, expected)
        if problem is not None:
            return problem
    sampling = dp.get("sampling")
    sampled = dp.get("unit") == "client" or dp.get("mechanism") == "distributed"
    if sampled and expected.sample_rate < 1 and not isinstance(sampling, dict):
        # the comparison below was skipped: a row that does not say how its cohort was
        # drawn cannot be held to a config that samples
        return (
            f"records no dp.sampling but the config samples ({expected.sampling_kind!r} at "
            f"rate {expected.sample_rate:g} of {expected.population} clients): its sampling "
            "kind, rate and population cannot be checked against it"
        )
    if isinstance(sampling, dict):
        if sampling.get("kind") != expected.sampling_kind:
            return (
                f"records {sampling.get('kind')!r} sampling but the config samples "
                f"{expected.sampling_kind!r}"
            )
        if not _same(sampling.get("rate"), expected.sample_rate) or _below(
            sampling.get("rate"), expected.sample_rate
        ):
            return (
                f"records sampling at rate {sampling.get('rate')} but the config's rate is "
                f"{expected.sample_rate:g}"
            )
        if sampling.get("population") != expected.population:
            return (
                f"records a population of {sampling.get('population')} clients but the "
                f"config has {expected.population}"
            )
    return None


def _distributed_against(dp: dict[str, Any], expected: ExpectedPrivacy) -> str | None:
    """A distributed row's discrete Gaussian against the config: the dimension, ring
    bits and expected clients its noise shares were sized from, and the corrupt
    fraction its honest-share count assumes (each checked when the config gives it)."""
    ddg = dp.get("ddg") if isinstance(dp.get("ddg"), dict) else {}
    want_clients = (
        None if expected.expected_clients is None else max(1, round(expected.expected_clients))
    )
    for label, recorded, want in (
        ("dimension", ddg.get("dimension"), expected.dimension),
        ("ring bits", ddg.get("bits"), expected.bits),
        ("expected clients", ddg.get("expected_clients"), want_clients),
    ):
        # as recorded: ``!=`` read a recorded 16.0 (or True) as 16 (or 1)
        if want is not None and not _same_count(recorded, want):
            return (
                f"records a discrete Gaussian of {label} {recorded!r}, but the config's is "
                f"{want}: its noise shares were not sized as the federation promised"
            )
    assumed = dp.get("corrupt_fraction", expected.corrupt_fraction)
    # fewer corrupt clients than the config assumes counts more shares honest
    if expected.corrupt_fraction is not None and (
        not _same(assumed, expected.corrupt_fraction) or _below(assumed, expected.corrupt_fraction)
    ):
        return (
            f"assumes corrupt fraction {dp.get('corrupt_fraction')} but the config's is "
            f"{expected.corrupt_fraction:g}"
        )
    return None
