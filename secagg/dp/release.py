"""One DP front door per side: prepare an update on the client, release a sum on the server.

Theory of operation
-------------------
A federation's ``[dp]`` settings build one :class:`Mechanism` (:func:`mechanism_for`).
The runtime holds it and never asks which one it is:

* on the **client**, :meth:`Mechanism.prepare` is the one clip (L2, to
  ``dp.clip``) every update goes through before it enters a round;
* when the server **plans** a round, :meth:`Mechanism.round_options` gives the
  backend what the mechanism needs inside the round (the distributed
  discrete Gaussian: each client's noise share, added before masking) and
  :attr:`Mechanism.backend_noise_stddev` the noise to add where the sum is
  first decrypted (CKKS: the key holder), so nobody sees an un-noised sum there;
* on **release**, :meth:`Mechanism.release` turns the backend's sum into the
  mean update: it adds whatever central noise the backend did not add
  (:class:`~secagg.dp.central.CentralGaussian`), divides by the mechanism's
  denominator (client level: the *expected* cohort ``q * N``, a public constant;
  otherwise the contributors, plain FedAvg), steps the accountant and returns
  the epsilon spent so far with the figures the store and the ledger keep.

Accountants stay behind the mechanism: the central mechanism charges each client
for the rounds it was in (:class:`~secagg.dp.accountants.PerClientAccountant`: a
round's members see each other, so no amplification by sampling is claimed; the
server names the cohort with :meth:`Mechanism.begin_round`), the distributed one
its own RDP bound at the worst of the honest share counts the rounds had, and
record-level DP (DP-SGD inside each branch) the branches' own accountants, whose
reports it keeps; the release's claim is the worst branch's.
"""

from __future__ import annotations

import collections
import copy
import logging
import math
import numbers
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from secagg.crypto.stream import KeyedStream
from secagg.dp.accountants import (
    ACCOUNTANTS,
    PER_CLIENT,
    DiscreteGaussianAccountant,
    PerClientAccountant,
    RecordLevelAccountant,
    distinct_runs,
    history_extends,
    history_runs,
    prv_replay_points,
)
from secagg.dp.adaptive import AdaptiveClipping, append_report, split_report, unclipped_report
from secagg.dp.central import CentralGaussian
from secagg.dp.clipping import clip_l2
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.dp.distributed import (
    DistributedDiscreteGaussian,
    NoiseShareRound,
    assumed_colluders,
    honest_noise_contributors,
)
from secagg.errors import ConfigurationError, MalformedMessage, SecAggError

log = logging.getLogger("secagg.dp")

#: accountant names of the record-level reports a branch may send (Opacus's)
RECORD_ACCOUNTANTS = tuple(n for n, (_, kinds) in ACCOUNTANTS.items() if "dpsgd" in kinds)


@dataclass(frozen=True)
class Release:
    """What one round released: the mean update, and the privacy it cost."""

    mean: np.ndarray
    epsilon: float | None  # cumulative client-level epsilon; None: not accounted here
    store: dict[str, Any] = field(default_factory=dict)  # kept with the round, for restarts


#: what one record-level DP-SGD item can be (see :class:`RecordReport`)
RECORD_UNITS = ("record", "customer", "transaction")

_RECORD_ADJACENCY = {
    "customer": "add/remove one customer (all their rows) of a branch (user-level DP-SGD)",
    "transaction": "add/remove one transaction row of a branch (DP-SGD); a customer with "
    "k rows is protected only at group-privacy k",
    "record": "add/remove one record of a branch (its DP-SGD)",
}


def record_adjacency(units: Iterable[str]) -> str:
    """The ledger's adjacency sentence for the units the branches reported."""
    seen = sorted(set(units))
    if len(seen) == 1:
        return _RECORD_ADJACENCY[seen[0]]
    return _RECORD_ADJACENCY["record"] + (
        f"; branches report different units: {', '.join(seen)}" if seen else ""
    )


#: relative float noise between two computations of one figure by the same code (as
#: ``audit verify``'s ``FLOAT_NOISE``): all an RDP epsilon may fall by when its history
#: grows (each run adds RDP at every order, so the bound itself only grows)
RECORD_FLOAT_NOISE = 1e-8
#: the ``eps_error`` Opacus's PRV accountant states its epsilon to (``get_epsilon``'s
#: default, which :func:`~secagg.dp.accountants.opacus_epsilon` uses): an absolute
#: tolerance (see :func:`record_epsilon_drop_allowed`)
PRV_EPSILON_ERROR = 0.01


def record_epsilon_drop_allowed(accountants: tuple[str, str], before: float, after: float) -> bool:
    """A branch's record-level epsilon may go from ``before`` to ``after`` when its
    history extends the one ``before`` was computed on: it does not fall, or falls by
    no more than the accountant's own error. ``accountants``: the two reports'.

    Why a tolerance: Opacus's PRV accountant states an upper bound, its discretised
    estimate plus ``eps_error`` (0.01), on a grid it sizes from the whole history, so a
    longer history (above all a new run) can come out a little *below* the shorter
    one's: measured up to 1.6e-5 (random honest histories; 5.7e-6 for
    ``(1.5, 0.02, 2)`` then ``(1.65, 0.001, 2)``), and any drop within ``eps_error`` is
    two valid bounds ordered by the grid. The server refused such a branch's rounds
    (any drop was taken for a rewind). A drop never lowers what is claimed: the server
    and ``audit verify`` keep the larger figure. RDP, or two reports by different
    accountants, get float noise only; a drop beyond it is refused as before."""
    if not after < before:
        return True
    if math.isinf(before) or not math.isfinite(after):
        return False
    if accountants == ("prv", "prv"):
        return before - after <= PRV_EPSILON_ERROR
    return before - after <= RECORD_FLOAT_NOISE * max(1.0, abs(before))


def _same_delta(branch: float, federation: float) -> bool:
    """A branch's DP-SGD delta is the one the ledger rows print: never above it, by any
    amount, and below it by float noise only (1e-9 relative), ``audit verify``'s rule.

    Why: the row prints the federation's delta beside the worst branch's epsilon, so a
    branch that accounted at a larger delta (a smaller epsilon) made the server sign a
    claim that does not hold at the printed delta (and verify failed the ledger for
    good); at a smaller one the row would not state what the branch accounted."""
    return branch <= federation and federation - branch <= 1e-9 * federation


#: the most runs (merged ``(z, q, steps)`` entries) and DP-SGD steps of a branch's history
#: the server replays (:func:`_past_replay_caps`). Why: Opacus's PRV grows its grid with
#: the square root of the steps (measured on 2 cores: 1-16 s at 10^5 steps, 20-30 s at
#: 10^7, and 1.1 GiB it could not allocate at 4 * 10^9, the wire's largest count) and with
#: every distinct run (the wire allows 10^5), so a hostile report could stall or exhaust
#: the server. An honest trainer's history holds a few runs (the releases before training,
#: then one per noise multiplier and rate) of thousands of steps. RDP's replay costs about
#: 9 ms a run whatever the steps (32 runs of 1 000 steps: 0.28 s of CPU), so these two
#: caps bound it; PRV's is bounded further (:data:`MAX_PRV_REPLAYED_RUNS`).
MAX_REPLAYED_RUNS = 32
MAX_REPLAYED_STEPS = 10**6
#: the most distinct ``(z, q)`` pairs of a history the server replays by Opacus's PRV
#: accountant (:func:`~secagg.dp.accountants.distinct_runs`: PRV is asked each pair once,
#: its steps composed by one Fourier power). Why: the server replays the round's reports
#: one after another in its own thread once the round's phases are over (the round's end
#: waits for their sum), and a branch waits for that end ROUND_GRACE_SECONDS (30 s) past
#: the round's deadline, or its idle timer past its last answered payload if that is
#: longer (tests/runtime/test_record_replay_schedule.py); within the RDP caps a PRV replay
#: took minutes (one run of 10^6 steps over 500 s; 32 runs of 1 000 steps 52.9 s of CPU),
#: and every pair costs a discretisation of the whole grid plus a fixed 0.02-0.1 s (the
#: mean Opacus integrates). The grid itself is held by :data:`MAX_PRV_REPLAYED_POINTS`.
#: Until 2026-12-07 the runs (consecutive entries merged only) were counted, and runs x
#: steps were held to 20 000, a stand-in for the grid that refused an honest branch of
#: 50 000 rows at batch 256, 3 local epochs a round, from round 18 (2 runs of 10 584
#: steps, its grid 1.2 million points, a replay of 0.8 s of CPU), so no such branch could
#: run 30 rounds with PRV, and one of 100 000 rows not even the simulator's default 10.
MAX_PRV_REPLAYED_RUNS = 8
#: the most grid points (distinct runs times the domain's size, :func:`~secagg.dp.
#: accountants.prv_replay_points`) of a history the server replays by PRV: the bound of
#: its replay's time, whatever its steps. Why: Opacus's grid is its domain ``[-L, L]``
#: (``L`` its RDP bound of the history at ``delta / 4000``, plus 3) at a mesh that shrinks
#: with the square root of the steps (its error bound needs it), each distinct run
#: discretised and Fourier-composed on it, so the replay costs 0.3-0.85 us of CPU a point
#: (by how the grid's size factors for the FFT; one run of 2 000 steps at z 0.5, q 0.1
#: took 8.2 s: 7.7 million points). Measured on the 2 cores under a load of 6-11 (CPU
#: time, a cold epsilon memo): the largest history inside of each of 1, 2, 3, 4, 6 or 8
#: distinct runs at z 0.3 to 10 and q 0.001 to 1 (66 histories), and 4 whose grid's
#: size is twice a prime (the slowest FFT), replayed in 0.62 to 1.68 s (the most: 2 runs
#: at z 0.7, q 0.001, 21 218 steps each; one of 112 900 steps, its grid 2 x 999 233
#: points, as long), below the 1.9 s the 1.5 million points measured under a load of
#: 5-6. An honest branch's history is inside: a branch of 100 000 rows at batch 256, 3
#: local epochs a round, after its feature statistics' release, calibrated to epsilon 3
#: over 30 rounds (z 0.953), reaches 1.81 million points at round 30 (1.0 s of CPU), and
#: 1.16 million over the default 10 rounds (z 0.740); one of 50 000 rows 1.28 million over
#: 30 rounds. Until 2026-12-07 the cap was 1.5 million (that branch of 100 000 rows past
#: it from round 24 of 30) and the runs were counted as they stood, not their pairs.
MAX_PRV_REPLAYED_POINTS = 2_000_000
#: the seconds of a busy server's clock one contributor's DP-SGD report may cost its
#: replay after a round's phases (:meth:`Mechanism.replay_seconds`): what the server adds
#: to the deadline it tells the round's branches, and the launcher to the key holder's
#: idle timer (:func:`~secagg.runtime.launch.key_holder_idle`). Why: the replays run one
#: after another (in a background thread from each report's arrival), and the round's
#: end, told to nobody before, waits for those still under way once the phases are over
#: (:meth:`RecordRelease._replay_pending`); the parties waited for that end by bounds
#: that left them out (until 2026-12-07, when the replays all ran after the phases): a
#: branch gave up "past the round deadline" and a key holder sized by the launcher went
#: idle while the server was at work (tests/runtime/test_record_replay_waits.py).
#: Within the caps above the worst replay measured 1.68 s of CPU (PRV) and 1.7 s (RDP's
#: curve units) on 2 cores under a load of 6-11; 5 s leaves that room again for a
#: server busier or slower still.
REPLAY_SECONDS_PER_REPORT = 5.0
#: what a branch refused by a PRV cap can do, named in each such refusal. Why: a branch's
#: history only grows, so a PRV branch past a cap (before 2026-12-07's grid cap, an honest
#: one of 50 000 rows at batch 256, 3 local epochs a round: round 18) is a dropout of
#: every later round, and was warned of the cap but not of a way on. RDP's replay costs a
#: curve a run, whatever the steps, and its bound is looser than PRV's (that branch at
#: round 18: RDP 3.33 beside PRV's 2.98 of round 17), so the switch keeps the server's
#: and ``audit verify``'s rule that a branch's epsilon does not go down
_PRV_REMEDY = (
    "; a branch that trains this long accounts with 'rdp' (a trainer with "
    "accountant='rdp' and its history so far as prior_releases: the server replays up to "
    f"{MAX_REPLAYED_RUNS} runs and {MAX_REPLAYED_STEPS:g} steps of it, a looser figure for "
    "the same training)"
)
#: the noise multiplier the arrival check sizes a PRV domain at, in place of any larger
#: one (more noise only shrinks the domain: a bound, never an understatement). Why:
#: Opacus's RDP curve at ``q = 0.5`` costs more as ``z`` grows (0.16 s of CPU at z 10,
#: 0.8 s at 10^4), and the check runs inside a phase of the round
_ARRIVAL_NOISE_FOR_DOMAIN = 10.0


#: the most RDP-curve units a history's replay may cost (:func:`_curve_units`), by either
#: accountant (PRV sizes its domain from the same curves). Why: each distinct ``(z, q)``
#: run at a rate strictly between 0 and 1 is one Opacus RDP curve, whose fractional
#: orders' series grows long as the rate nears 0.5 and the noise grows, so a run cost far
#: more than the 9 ms the run cap assumed (measured, CPU time a curve on the 2 cores under
#: load: at most 0.032 s at a rate up to 0.1, any z up to 10^4; above it up to 0.13 s at
#: z <= 10, 0.19 s at z 30; at a rate within 0.02 of 0.5, 0.2 s at z 100 and 0.67-0.83 s
#: at z 10^4, 0.04 s or less past z 30 elsewhere). Within the run cap an RDP report of 32
#: runs at z 10^4, rates within 1e-7 of 0.5, replayed in 20.2 s of CPU (32 runs at z 3,
#: rates 0.468-0.499: 2.35 s), while the branches wait ROUND_GRACE_SECONDS past the
#: deadline. A curve at a rate up to :data:`_LIGHT_CURVE_RATE` counts one unit (so 32 such
#: runs replay as before, in about 1.2 s), any other :data:`_CURVE_UNITS`, one in the costly
#: corner (:data:`_COSTLY_CURVE_NOISE`, :data:`_COSTLY_CURVE_RATE_DISTANCE`)
#: :data:`_COSTLY_CURVE_UNITS`: 32 units replayed in at most 1.7 s of CPU (8 curves at z 30,
#: rates within 1e-6 of 0.5: RDP 1.48 s, PRV 1.51 s; 2 at z 10^4 and q 0.5: 1.66 s). An
#: honest branch's history holds a few curves (the default ``secagg simulate`` branch 1 unit:
#: its noise and rate do not change across rounds, so its runs merge; its statistics'
#: release, at rate 1, is Opacus's closed form).
MAX_REPLAYED_CURVE_UNITS = 32
#: a curve at a rate up to this costs one unit
_LIGHT_CURVE_RATE = 0.1
#: any other curve's units
_CURVE_UNITS = 4
#: a run's curve is costly past this noise multiplier, at a rate this near 0.5
_COSTLY_CURVE_NOISE = 30.0
_COSTLY_CURVE_RATE_DISTANCE = 0.02
_COSTLY_CURVE_UNITS = 16


def _curve_units(runs: Iterable[tuple[float, float, int]]) -> int:
    """The RDP-curve units the replay of ``runs`` costs (:data:`MAX_REPLAYED_CURVE_UNITS`):
    each distinct ``(z, q)`` of steps at a rate strictly between 0 and 1 (Opacus gives
    rates 0 and 1 in closed form; a repeated pair is memoised), by its rate and noise."""
    curves = {(z, q) for z, q, n in runs if n > 0 and 0 < q < 1}
    return sum(
        1
        if q <= _LIGHT_CURVE_RATE
        else _COSTLY_CURVE_UNITS
        if z > _COSTLY_CURVE_NOISE and abs(q - 0.5) < _COSTLY_CURVE_RATE_DISTANCE
        else _CURVE_UNITS
        for z, q in curves
    )


def _past_replay_caps(history: Iterable[tuple[float, float, int]], accountant: str) -> str | None:
    """Why the server will not replay ``history`` by ``accountant`` (:data:`MAX_REPLAYED_RUNS`,
    :data:`MAX_REPLAYED_STEPS`; for PRV :data:`MAX_PRV_REPLAYED_RUNS` of its distinct
    pairs too; by either, :data:`MAX_REPLAYED_CURVE_UNITS`), or None. Counting costs no
    accountant: a pass over the entries, so it runs as a report arrives.

    Why a refusal and not the stated figure: the server kept the stated epsilon of a
    history past the caps, so a report of 33 runs stating 0.01 beside a history that
    gives 1.26 was signed as 0.01 (``audit verify`` failed the row afterwards); nor is
    infinity an answer (verify replays the history to a finite figure and fails that
    claim too). A history the server cannot replay carries no claim it can sign."""
    runs = history_runs(history)
    steps = sum(n for _, _, n in runs)
    if len(runs) > MAX_REPLAYED_RUNS:
        return (
            f"its DP-SGD history holds {len(runs)} runs, more than the {MAX_REPLAYED_RUNS} "
            "runs the server replays"
        )
    if steps > MAX_REPLAYED_STEPS:
        return (
            f"its DP-SGD history holds {steps} steps, more than the {MAX_REPLAYED_STEPS} "
            "steps the server replays"
        )
    pairs = len(distinct_runs(runs))
    if accountant == "prv" and pairs > MAX_PRV_REPLAYED_RUNS:
        return (
            f"its DP-SGD history holds {pairs} distinct noise multipliers and sample rates, "
            f"more than the {MAX_PRV_REPLAYED_RUNS} the server replays by the 'prv' "
            "accountant" + _PRV_REMEDY
        )
    units = _curve_units(runs)
    if units > MAX_REPLAYED_CURVE_UNITS:
        return (
            f"its DP-SGD history needs {units} units of Opacus RDP curves, more than the "
            f"{MAX_REPLAYED_CURVE_UNITS} the server replays (a distinct noise multiplier and "
            f"sample rate up to {_LIGHT_CURVE_RATE:g} costs 1, above it {_CURVE_UNITS}, above "
            f"noise {_COSTLY_CURVE_NOISE:g} at a rate within {_COSTLY_CURVE_RATE_DISTANCE:g} "
            f"of 0.5 {_COSTLY_CURVE_UNITS}: Opacus's curve there costs up to a second)"
        )
    return None


def _past_prv_points(runs: list[tuple[float, float, int]], delta: float) -> str | None:
    """Why the server will not replay ``runs`` by PRV at ``delta`` by the size of its
    grid (:data:`MAX_PRV_REPLAYED_POINTS`), or None; the runs are within the counting
    caps already (:func:`_past_replay_caps`). Costs the runs' RDP curves (milliseconds,
    memoised), sized at no more noise than :data:`_ARRIVAL_NOISE_FOR_DOMAIN`, so an
    upper bound of the replay's own grid. A history PRV cannot evaluate at all (too
    little noise: its replay gives no finite figure) is refused here too."""
    sized = [(min(z, _ARRIVAL_NOISE_FOR_DOMAIN), q, n) for z, q, n in runs]
    # a grid a distinct pair as sent: the clamp may make two pairs one the replay keeps
    grids = len(distinct_runs((z, q, n) for z, q, n in runs if n > 0))
    points = prv_replay_points(sized, delta, grids=grids)
    if not math.isfinite(points):
        return (
            "its DP-SGD history gives no finite epsilon by the 'prv' accountant (too little "
            "noise for it to evaluate; the 'rdp' accountant states a figure)"
        )
    if points > MAX_PRV_REPLAYED_POINTS:
        return (
            f"its DP-SGD history needs a PRV grid of {points:.3g} points, more than the "
            f"{MAX_PRV_REPLAYED_POINTS:.3g} the server replays by the 'prv' accountant (the "
            "grid grows with the history's epsilon and the square root of its steps)" + _PRV_REMEDY
        )
    return None


def _replay_refusal(report: RecordReport) -> str | None:
    """Why the server will not replay ``report``'s history, or None
    (:func:`history_replay_refusal` of its history, accountant and delta)."""
    return history_replay_refusal(report.history, report.accountant, report.delta)


def history_replay_refusal(
    history: Iterable[tuple[float, float, int]], accountant: str, delta: float
) -> str | None:
    """Why the record-level server will not replay a DP-SGD ``history`` by
    ``accountant`` at ``delta``, or None: the counting caps
    (:func:`_past_replay_caps`), a noise multiplier past the most a trainer takes
    (:data:`~secagg.dp.config.MAX_NOISE_MULTIPLIER`) and, for PRV, its grid
    (:func:`_past_prv_points`). No accountant is asked but RDP's curves, so it runs
    as a report arrives and on a restart alike; and before any training, where
    ``secagg simulate`` checks the history its branches will report (a noise its
    refusal names must be one the server replays, not only one the accountant states).

    Why the noise multiplier: Opacus's RDP curve of a run costs more as z grows at a
    rate of 0.5 (1.5 s of CPU at z 10^6, 2.3 s at 10^10, where the RDP caps counted
    9 ms a run), and every trainer of this engine refuses z past 10^4."""
    history = tuple(history)
    past_caps = _past_replay_caps(history, accountant)
    if past_caps is not None:
        return past_caps
    for z, q, steps in history:
        if z > MAX_NOISE_MULTIPLIER and q > 0 and steps > 0:
            return (
                f"its DP-SGD history holds a noise multiplier of {z!r}, past the "
                f"{MAX_NOISE_MULTIPLIER:g} a trainer takes (the server's replay of it grows "
                "with the noise)"
            )
    if accountant == "prv":
        return _past_prv_points(history_runs(history), delta)
    return None


def _noiseless_run(history: Iterable[tuple[float, float, int]]) -> str | None:
    """Why ``history`` gives no finite epsilon, by a look at its entries (no accountant),
    or None: a run of steps that sampled records (``q > 0``) with no noise (``z == 0``)
    releases them in clear, which no accountant bounds (the replay gives inf). Cheap,
    so it runs as a report arrives (:meth:`RecordRelease.report_problem`); a history
    that gives no finite figure for a subtler reason is still refused at the replay."""
    for z, q, steps in history:
        # a z whose square underflows (under 1e-150) is no noise to any accountant either
        if (z == 0 or z * z < 1e-300) and q > 0 and steps > 0:
            return (
                f"its DP-SGD history holds {steps} steps without noise (noise multiplier {z!r}, "
                f"sample rate {q!r}): no finite epsilon"
            )
    return None


def _replayed_epsilon(report: RecordReport) -> float:
    """The epsilon a branch's DP-SGD history gives by its own accountant at its delta
    (what ``audit verify`` replays): inf where no accountant can evaluate it (PRV's
    :class:`~secagg.dp.accounting.PrvCannotEvaluate`, as the verifier replays it, or an
    overflow). The caller has checked the caps (:func:`_past_replay_caps`).

    Why: the server kept the epsilon a report *states*, and the worst branch's stated
    figure is what every record-level row claims and the server signs. A report of
    epsilon 0.5 beside a history of (z 1, q 0.1, 1000 steps), which gives 27.16 by its
    own RDP accountant, was signed as a claim of 0.5; ``audit verify`` failed the ledger
    only afterwards (tests/dp/test_release_record_epsilon_replayed.py).

    The merged runs are replayed, as Opacus's own accountant keeps an honest trainer's
    history (the same floats then): 10^5 entries of one step each are one run, not 10^5.
    ``audit verify`` replays the same runs (since 2026-12-07; it replayed the entries
    as recorded, which agree to float noise, at most 1.5e-10 relative for PRV over 100
    to 300 split entries, but cost PRV 57 ms an entry:
    tests/ledger/test_verify_record_split_entries.py)."""
    try:
        runs = history_runs(report.history)
        return RecordLevelAccountant(report.accountant, report.delta, runs).epsilon()
    except (ConfigurationError, ArithmeticError, RuntimeError, ValueError, MemoryError):
        return math.inf


#: the largest step count a report may carry: the wire's u32 field (a larger count
#: could be accepted here and then fail to encode)
MAX_REPORT_STEPS = 2**32 - 1


def _is_steps(value: object) -> bool:
    """A step count as :class:`RecordReport` holds it: a Python int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPORT_STEPS


def _report_steps(value: object) -> int:
    """A report's step count, exactly: an integer (NumPy's too) or refused, never rounded."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        steps = int(value)
        if _is_steps(steps):
            return steps
    raise MalformedMessage(
        f"record-level history steps must be a whole number in [0, {MAX_REPORT_STEPS}], "
        f"not {value!r}"
    )


def _report_number(value: object, name: str) -> float:
    """A report's real number as a float, or refused: no strings or booleans (``float``
    would take ``"1e-5"`` and ``True``), no int too large for a float64. Ranges
    (finite, in (0, 1), ...) are :class:`RecordReport`'s own checks."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        try:
            return float(value)
        except OverflowError:
            pass
    raise MalformedMessage(f"record-level {name} must be a number, not {value!r}")


@dataclass(frozen=True)
class RecordReport:
    """A branch's DP-SGD accounting: the inputs an auditor replays (Opacus's accountant)."""

    accountant: str
    delta: float
    epsilon: float
    history: tuple[tuple[float, float, int], ...]  # (noise multiplier, sample rate, steps)
    max_grad_norm: float | None = None
    #: what one DP-SGD item is: a ``customer`` (user-level DP-SGD over all their rows),
    #: a ``transaction`` row (data without a customer id), or a generic ``record``
    unit: str = "record"

    def __post_init__(self) -> None:
        if self.accountant not in RECORD_ACCOUNTANTS:
            raise MalformedMessage(f"unknown record-level accountant {self.accountant!r}")
        if self.unit not in RECORD_UNITS:
            raise MalformedMessage(f"unknown record-level privacy unit {self.unit!r}")
        if not 0 < self.delta < 1:
            raise MalformedMessage("record-level delta out of (0, 1)")
        if not (self.epsilon >= 0) or math.isnan(self.epsilon):
            raise MalformedMessage("record-level epsilon must be a non-negative number")
        for z, q, steps in self.history:
            if not _is_steps(steps):
                raise MalformedMessage(
                    f"record-level history steps must be a whole number in [0, {MAX_REPORT_STEPS}]"
                    f", not {steps!r}"
                )
            if not (math.isfinite(z) and z >= 0 and 0 <= q <= 1):
                raise MalformedMessage("record-level history entry out of range")
        if self.max_grad_norm is not None and not (
            math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0
        ):
            raise MalformedMessage("record-level max_grad_norm must be positive")

    @classmethod
    def from_dict(cls, report: dict[str, Any]) -> RecordReport:
        """From :meth:`DPSGDTrainer.privacy_report`'s dict (or a ledger row's copy).

        Every number is taken as it is or refused, never coerced: a step count of 3.5
        (or ``"3"``, ``True``, 1e300) was truncated by ``int()``, and a history that
        undercounts its steps makes the server claim less epsilon than was spent.
        Strings and booleans are no numbers here; integers (Python or NumPy) are the
        only step counts; floats must fit a float64 (a huge int raised OverflowError).
        """
        try:
            norm = report.get("max_grad_norm")
            return cls(
                str(report["accountant"]),
                _report_number(report["delta"], "delta"),
                _report_number(report["epsilon"], "epsilon"),
                tuple(
                    (
                        _report_number(z, "history noise multiplier"),
                        _report_number(q, "history sample rate"),
                        _report_steps(n),
                    )
                    for z, q, n in report["history"]
                ),
                None if norm is None else _report_number(norm, "max_grad_norm"),
                str(report.get("unit", "record")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"bad record-level privacy report: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accountant": self.accountant,
            "delta": self.delta,
            "history": [list(entry) for entry in self.history],
            "epsilon": self.epsilon,
            "unit": self.unit,
        }
        if self.max_grad_norm is not None:
            out["max_grad_norm"] = self.max_grad_norm
        return out


class Mechanism:
    """No DP: the clip (if any) bounds updates for the ring; FedAvg over contributors.

    ``report_unclipped`` (adaptive clipping, set by the server's mechanism for the
    round): the client appends ``1[norm <= clip] - 1/2`` as one more coordinate, so
    the count travels through the same secure sum as the update.
    """

    unit: str | None = None
    backend_noise_stddev: float = 0.0
    report_unclipped: bool = False

    def __init__(self, clip: float | None = None, *, report_unclipped: bool = False) -> None:
        self.clip = clip
        self.report_unclipped = report_unclipped

    # --- the client's side -----------------------------------------------------

    def prepare(self, update: np.ndarray) -> np.ndarray:
        """The one clip an update goes through before it enters a round."""
        if self.clip is None:
            return update
        clipped = clip_l2(update, self.clip)
        if self.report_unclipped:
            return append_report(clipped.vector, unclipped_report(clipped.norm, self.clip))
        return clipped.vector

    def round_dimension(self, dimension: int) -> int:
        """The length of what clients send: the model's, plus the count coordinate."""
        return dimension + 1 if self.report_unclipped else dimension

    # --- the server's side -----------------------------------------------------

    def round_options(self, num_participants: int) -> dict[str, Any]:
        """What the backend must carry inside a round (see :meth:`AggregationBackend.plan`)."""
        return {}

    def restore(self, stored: dict[str, Any]) -> None:
        """Replay one completed round's stored figures after a restart."""

    def epsilon_after_next(self, *, contributors: int, participants: int | None) -> float | None:
        """The cumulative epsilon once one more round of ``contributors`` (out of
        ``participants``; None before the cohort is drawn: the best case the design
        allows) is released; None where this server accounts nothing."""
        return None

    def begin_round(self, cohort: Iterable[str]) -> None:
        """The round about to run has these members (the server's names for them):
        what a mechanism that charges each client for its own rounds charges."""

    def charged_outside(self, names: Iterable[str]) -> set[str]:
        """Clients charged for earlier rounds that are not among ``names`` (a mechanism
        that charges each client for its own rounds; others: none)."""
        return set()

    def within_budget(
        self, names: Iterable[str], budget: float, *, round_size: int | None = None
    ) -> list[str]:
        """The clients of ``names`` that may take part in one more round without the
        claim crossing ``budget``: all or none, unless the mechanism charges each
        client for its own rounds (then a client at the budget sits out).
        ``round_size``: the most clients one round can hold (a fixed-count draw's
        ``sampling.count``; None: all of ``names``), whose round with every share is the
        best case asked: a round of every client is none such a run draws."""
        names = list(names)
        contributors = len(names) if round_size is None else min(len(names), round_size)
        after = self.epsilon_after_next(contributors=contributors, participants=None)
        return names if after is None or after <= budget else []

    def reveal_refusal(self, *, contributors: int, participants: int) -> str | None:
        """Why an honest server must not see this round's sum at all, or None.

        Only where seeing the sum is the release (distributed DP): a sum in which no
        noise share can be counted honest would be released without DP (epsilon
        infinite). The ledger would say so and ``audit verify`` would fail it, but an
        honest server does not release it in the first place, whatever its budget: it
        aborts the round before any unmasking request leaves, as it aborts a round below
        threshold, and nothing is learned or charged."""
        return None

    def charge_at_reveal(
        self, *, contributors: int, participants: int, noise_added: float = 0.0
    ) -> dict[str, Any] | None:
        """What to charge for a round whose sum the server is about to see, if that sight
        is itself the release (distributed DP: the noised sum, against the server; central
        DP whose noise the backend adds, ``noise_added`` being at least the planned noise:
        the CKKS key holder's noised sum); None where the release comes later (central
        DP: the trusted server noises the sum first) or nothing is charged. Kept before
        the reveal, so that a server that dies between seeing a sum and releasing it is
        charged on restart."""
        return None

    def charge_at_short_reveal(
        self, *, participants: int, noise_added: float
    ) -> dict[str, Any] | None:
        """What to charge for a round whose sum reached the server with *less* of the
        backend's noise than :meth:`charge_at_reveal` was asked for (``noise_added``:
        what the CKKS key holder says it added, below the plan); None where the backend
        adds none of the noise (the server's own, or the clients' shares, are the noise).

        Why: the charge is kept before the sum is revealed, at the planned noise; a key
        holder that then adds less has released its sum to the server under that less
        noise, and charging the plan's epsilon for it was a number of what did not run."""
        return None

    @classmethod
    def replay_seconds(cls, reports: int) -> float:
        """The longest the server may spend, after a round's phases, replaying the
        privacy reports of ``reports`` contributors before it releases the round and
        tells its end: 0 where the server replays none (every mechanism but record-level
        DP-SGD). A class method so the launcher sizes a party's wait without building
        the mechanism's accountant."""
        return 0.0

    def report_problem(self, identity: str, report: RecordReport) -> str | None:
        """Why this mechanism would not keep ``report`` from ``identity``, found without
        replaying it, or None; changes nothing. Only record-level mechanisms keep reports."""
        return None

    def take_report(self, identity: str, report: RecordReport) -> None:
        """A branch's record-level accounting (only record-level mechanisms keep it)."""

    def restore_reports(self, reports: dict[str, dict[str, Any]]) -> None:
        """Record-level reports found in the ledger after a restart."""

    def start_restored_replays(self) -> None:
        """Begin checking the restored reports where it blocks nobody (record-level only)."""

    def stop_replays_when(self, stop: Callable[[], bool]) -> None:
        """Have the background replays (record-level only) stop once ``stop()`` is true,
        looked at between reports (the server's: a stop recorded for the process)."""

    def look_between_replays(self, look: Callable[[], None]) -> None:
        """Have the replays this mechanism's caller waits for or computes itself
        (record-level only) call ``look()`` before each report's figure; ``look``
        raises to end them (the server's: its stop record's ``StopAsked``)."""

    def stop_replays(self) -> None:
        """Stop the background replays (record-level only): the owner stopped."""

    def replay_backlog(self) -> int:
        """Restored reports whose check the next round's end still waits for."""
        return 0

    def provisional_claim(self, epsilon: float | None) -> float | None:
        """:meth:`ledger_claim` without waiting for any replay (a log line's figure)."""
        return self.ledger_claim(epsilon)

    def require_reports(self, identities: Iterable[str]) -> None:
        """Refuse the round unless each contributor (by identity) is accounted for: a
        no-op for mechanisms whose noise the server or the protocol accounts."""

    def release(
        self, total: np.ndarray, *, contributors: int, participants: int, noise_added: float
    ) -> Release:
        return Release(total / max(1, contributors), None)

    def ledger_block(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        """The ledger's ``dp`` block for a round (None without DP)."""
        return None

    def ledger_claim(self, epsilon: float | None) -> float | None:
        """The cumulative epsilon the ledger claims after a round."""
        return epsilon


class _ClientLevel(Mechanism):
    """Shared by the client-level mechanisms: a fixed public denominator q * N."""

    unit = "client"
    name = ""

    def __init__(
        self,
        *,
        clip: float,
        noise_multiplier: float,
        delta: float,
        sample_rate: float,
        expected_clients: float,
        accountant: str,
        population: int | None = None,
    ) -> None:
        super().__init__(clip)
        self.noise_multiplier = noise_multiplier
        self.delta = delta
        self.sample_rate = sample_rate
        self.expected_clients = expected_clients
        self.accountant_name = accountant
        #: the clients a sampled cohort is drawn from (None: not known, or everyone
        #: takes part); its size is public (the config lists the clients)
        self.population = population if sample_rate < 1 else None

    #: the neighbouring datasets the guarantee is about (recorded in every ledger row).
    #: Zero-out, not add/remove: the config's list of clients, and so their number, is
    #: public (DP audit, 2026-12-03); for these Gaussian mechanisms the epsilon is the same
    adjacency = "zero-out one client's update"
    #: the sampling rate the accountant credits: none. Amplification by sampling needs
    #: a cohort nobody can see, and a round's members see one another (the secure sum's
    #: key agreement) while its size is published (DP audit, 2026-12-03); the central
    #: mechanism charges each client for its own rounds instead (PerClientAccountant),
    #: and the distributed one's untrusted server draws the cohort itself
    accounted_rate = 1.0

    def _block(self, accountant: str) -> dict[str, Any]:
        return {
            "unit": "client",
            "mechanism": self.name,
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "noise_std": self.noise_multiplier * (self.clip or 0.0),
            "sample_rate": self.accounted_rate,
            "accountant": accountant,
            "delta": self.delta,
            "adjacency": self.adjacency,
        }


class CentralRelease(_ClientLevel):
    """Client-level DP-FedAvg with the server's Gaussian noise (McMahan et al. 2018).

    With ``adaptive`` (Andrew et al. 2021, :class:`~secagg.dp.adaptive.AdaptiveClipping`)
    the clip follows a quantile of the clients' update norms: each round's clients
    clip to the current clip and report whether they were under it; the server noises
    the update sum with ``z_delta * C`` and the count with ``sigma_b``, moves the clip,
    and the accountant is charged both releases (together exactly the budgeted ``z``).
    The clip never grows beyond ``clip_cap`` (the ring's value bound).
    """

    name = "central"

    def __init__(
        self,
        *,
        noise: KeyedStream,
        adaptive: AdaptiveClipping | None = None,
        clip_cap: float = math.inf,
        **settings: Any,
    ) -> None:
        super().__init__(**settings)
        self.adaptive = adaptive
        self.clip_cap = _clip_cap(clip_cap)
        self.report_unclipped = adaptive is not None
        if adaptive is not None:
            self.clip = adaptive.clip
        # the first round's clip too, not only the adaptive steps: refused rather than
        # lowered, which would run a round at a clip nobody configured
        # (tests/dp/test_release_clip_cap.py)
        if self.clip is not None and self.clip > self.clip_cap:
            which = "the adaptive clip's initial value" if adaptive is not None else "the clip"
            raise ConfigurationError(
                f"{which} {self.clip:g} is above clip_cap = {self.clip_cap:g} (the ring's "
                "value bound, backend.value_bound): the first round would clip and noise "
                "above what the sum may hold; lower dp.clip or raise backend.value_bound"
            )
        self._gaussian = CentralGaussian(
            self.clip or 1.0, self.noise_multiplier, self.expected_clients
        )
        self._noise = noise
        self._accountant = PerClientAccountant(self.delta, self.accountant_name)
        self._cohort: tuple[str, ...] | None = None  # the round's members (server-set)

    @property
    def backend_noise_stddev(self) -> float:  # type: ignore[override]
        # with adaptive clipping the server noises the count apart from the update
        return 0.0 if self.adaptive is not None else self._gaussian.stddev

    @property
    def accountant(self) -> PerClientAccountant:
        """Each client charged for the rounds it was in; the claim is the most charged."""
        return self._accountant

    def begin_round(self, cohort: Iterable[str]) -> None:
        self._cohort = tuple(sorted(set(cohort)))

    def _charged(self, participants: int | None = None) -> dict[str, Any]:
        """What one round charges, and to whom: kept with the round, so that a restart
        replays each round with the parameters and members it ran with, not the
        current config's. Without a cohort named (:meth:`begin_round`) the round is
        charged to every client."""
        charged: dict[str, Any] = {"noise_multiplier": self.noise_multiplier}
        if self.adaptive is not None:
            charged["noise_multiplier"] = self.adaptive.update_noise_multiplier
            charged["count_noise_stddev"] = self.adaptive.count_stddev
        if participants is not None and self._cohort is not None:
            charged["members"] = list(self._cohort)
        return charged

    def _precision(self, charged: dict[str, Any]) -> float:
        count = charged.get("count_noise_stddev")
        return self._accountant.precision(
            float(charged["noise_multiplier"]), None if count is None else float(count)
        )

    def _step(self, accountant: PerClientAccountant, charged: dict[str, Any]) -> None:
        count = charged.get("count_noise_stddev")
        members = charged.get("members")
        accountant.step(
            float(charged["noise_multiplier"]),
            None if members is None else [str(name) for name in members],
            count_noise_stddev=None if count is None else float(count),
        )

    def _charge(self, charged: dict[str, Any]) -> float:
        self._step(self._accountant, charged)  # z = 0: inf
        return self._accountant.epsilon()

    def epsilon_after_next(self, *, contributors: int, participants: int | None) -> float:
        """The claim once one more round is charged (the accountant is not): to the
        round's members once they are named, else (``participants`` None, before the
        draw) to a client charged nothing yet, the best case."""
        charged = self._charged(participants)
        precision = self._precision(charged)
        accountant = self._accountant
        if participants is None:
            return max(accountant.epsilon(), accountant.epsilon_of(accountant.everyone + precision))
        return accountant.epsilon_after(precision, charged.get("members"))

    def charged_outside(self, names: Iterable[str]) -> set[str]:
        return set(self._accountant.own) - set(names)

    def within_budget(
        self, names: Iterable[str], budget: float, *, round_size: int | None = None
    ) -> list[str]:
        """The clients whose own epsilon stays within ``budget`` after one more round:
        a client at the budget sits out while the others go on (its participation is
        public and independent of the data, so leaving it out costs no privacy).
        ``round_size`` changes nothing: a member's charge does not depend on how many
        others the round holds."""
        precision = self._precision(self._charged())
        return [
            name for name in names if self._accountant.client_epsilon(name, precision) <= budget
        ]

    def restore(self, stored: dict[str, Any]) -> None:
        next_clip = self._restored_clip(stored)  # checked before anything changes
        charged = stored.get("charged")
        if charged is None:
            _refuse_foreign_round(stored, self.name)
            # a round stored before rounds kept their parameters (2026-12-02): released
            # by this mechanism (its epsilon or next clip is stored) with the parameters
            # of its day, which are assumed to be the configured ones
            log.warning("a restored round has no recorded DP parameters: charged as configured")
            charged = self._charged()
        self._step(self._accountant, charged)
        if next_clip is not None:
            assert self.adaptive is not None
            self.adaptive.clip = self.clip = next_clip

    def _restored_clip(self, stored: dict[str, Any]) -> float | None:
        """The adaptive clip a stored round hands on, held to what a round can set now.

        Why: the clip was restored as stored, so a state written before the clip had a
        floor and a ceiling (ce60ce4), or altered, restarted the federation at a clip no
        round may have: 1e-320 (subnormal: clipping keeps no precision there) or 1e300,
        far beyond ``clip_cap`` (the ring's value bound), was the next round's clip; a
        stored NaN, inf, 0 or -1 failed the next round's release only after its sum was
        unmasked ("clip must be positive and finite"), and "0.5" or True passed as 0.5
        or 1. A finite positive clip is clamped into ``[min_clip, min(max_clip,
        clip_cap)]``, as a round's own step is (post-processing: no privacy cost, and
        the next round is noised with the clip it applies); anything else is refused
        before the accountant or the clip changes. None: the round hands on no clip (not
        adaptive)."""
        adaptive = self.adaptive
        if adaptive is None or "next_clip" not in stored:
            return None
        value = stored["next_clip"]
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ConfigurationError(
                f"its adaptive clip for the next round is stored as {value!r}, not a positive "
                "finite number: the state is damaged or altered; restore it from a backup, or "
                "start a new federation"
            )
        assert adaptive.min_clip is not None and adaptive.max_clip is not None
        ceiling = min(adaptive.max_clip, self.clip_cap)
        clip = min(ceiling, max(adaptive.min_clip, float(value)))
        if clip != value:
            log.warning(
                "a restored round's next clip %g lies outside [%g, %g]: continuing at %g",
                value,
                adaptive.min_clip,
                ceiling,
                clip,
            )
        return clip

    def _release_adaptive(self, total: np.ndarray, participants: int) -> Release:
        adaptive = self.adaptive
        assert adaptive is not None
        update_sum, report_sum = split_report(total)
        applied = adaptive.clip
        noised = CentralGaussian(applied, adaptive.update_noise_multiplier, self.expected_clients)
        mean = noised.mean(update_sum, self._noise)
        next_clip = min(
            self.clip_cap, adaptive.update(adaptive.noised_count(report_sum, self._noise))
        )
        adaptive.clip = self.clip = next_clip
        charged = self._charged(participants)
        self._cohort = None  # charged: the next round names its own
        stored = {"clip_applied": applied, "next_clip": next_clip, "charged": charged}
        return Release(mean, self._charge(charged), stored)

    def charge_at_reveal(
        self, *, contributors: int, participants: int, noise_added: float = 0.0
    ) -> dict[str, Any] | None:
        """Where the backend adds the whole central noise (the CKKS key holder: nobody
        sees the sum un-noised), the decrypted sum the server receives is the release:
        its charge, as :meth:`release` stores it, and the claim after it (the accountant
        is not charged). None where the server noises the sum itself (masking, or
        adaptive clipping): the release comes later, after the trusted server's noise.

        Why: a server that died between the key holder's reply and storing the round
        restarted with the round uncharged and ran it again, one release short of the
        federation's epsilon (worktree 165)."""
        stddev = self.backend_noise_stddev
        if stddev <= 0 or noise_added < stddev:
            return None
        charged = self._charged(participants)
        trial = copy.deepcopy(self._accountant)
        self._step(trial, charged)
        return {"charged": charged, "epsilon": trial.epsilon()}

    def charge_at_short_reveal(
        self, *, participants: int, noise_added: float
    ) -> dict[str, Any] | None:
        """The round charged at the noise multiplier the backend's noise amounts to,
        ``noise_added / clip`` (0: epsilon infinite), recorded with the round (its
        ``charged``) so that its ledger row, a restart and ``audit verify`` replay that
        multiplier, not the configured one (:meth:`ledger_block`)."""
        if self.backend_noise_stddev <= 0:
            return None
        charged = self._charged(participants)
        added = float(noise_added) if math.isfinite(noise_added) and noise_added > 0 else 0.0
        clip = float(self.clip or 1.0)
        added = min(added, self.noise_multiplier * clip)  # never charged above the plan
        charged["noise_multiplier"] = added / clip
        trial = copy.deepcopy(self._accountant)
        self._step(trial, charged)
        return {"charged": charged, "epsilon": trial.epsilon(), "noise_added": added}

    def release(
        self, total: np.ndarray, *, contributors: int, participants: int, noise_added: float
    ) -> Release:
        if self.adaptive is not None:
            return self._release_adaptive(total, participants)
        if noise_added < self._gaussian.stddev:  # the backend did not noise the sum
            if noise_added > 0:
                raise ConfigurationError("the backend added part of the central noise")
            total = self._gaussian.noised_sum(total, self._noise)
        charged = self._charged(participants)
        self._cohort = None  # charged: the next round names its own
        return Release(total / self.expected_clients, self._charge(charged), {"charged": charged})

    def ledger_block(self, stored: dict[str, Any]) -> dict[str, Any]:
        block = self._block(self.accountant_name)
        charged = stored.get("charged")
        if "noise_added" in stored and isinstance(charged, dict):
            # charged below the plan (charge_at_short_reveal): the row says what ran,
            # which the replay charges (audit verify notes the multiplier that differs)
            block["noise_multiplier"] = float(charged["noise_multiplier"])
            block["noise_std"] = float(stored["noise_added"])
        if isinstance(charged, dict) and "members" in charged:
            # charged to the round's participants (the row's identity hashes), the claim
            # the most charged client's: what audit verify replays
            block["composition"] = PER_CLIENT
        adaptive = self.adaptive
        if adaptive is not None and "clip_applied" in stored:
            block["clip"] = stored["clip_applied"]
            block["noise_std"] = adaptive.update_noise_multiplier * stored["clip_applied"]
            block["adaptive_clipping"] = {
                "update_noise_multiplier": adaptive.update_noise_multiplier,
                "count_noise_stddev": adaptive.count_stddev,
                "target_quantile": adaptive.target_quantile,
                "learning_rate": adaptive.learning_rate,
                "next_clip": stored["next_clip"],
            }
        return block


class DistributedRelease(_ClientLevel):
    """Client-level DP from the clients' discrete Gaussian shares (Kairouz et al. 2021).

    The server adds nothing; the epsilon counts the honest shares really in each
    sum (survivors minus the assumed colluders) and composes every round at the
    largest per-round bound of the counts the rounds had (usually the fewest: fewer
    shares, less noise; see :class:`~secagg.dp.accountants.DiscreteGaussianAccountant`).
    """

    name = "distributed"
    # an added client would add a noise share too: the analysis covers zero-out
    adjacency = "zero-out one client's update"

    def __init__(
        self,
        *,
        dimension: int,
        bits: int,
        corrupt_fraction: float,
        seeds: KeyedStream | None,
        **settings: Any,
    ) -> None:
        # ``population`` (in settings): the server that draws a sampled cohort can fill
        # it with all of the population's colluders
        super().__init__(**settings)
        self.ddg = self._mechanism(dimension=dimension, bits=bits)
        self.corrupt_fraction = corrupt_fraction
        self._seeds = seeds
        self.accountant = DiscreteGaussianAccountant(
            self.ddg, sample_rate=self.accounted_rate, delta=self.delta
        )

    #: record level: what one protected unit moves a client's vector by (the noise's
    #: sensitivity, ``dp.clip`` then bounds the whole vector); None: client level
    record_clip: float | None = None

    def _mechanism(self, *, dimension: int, bits: int) -> DistributedDiscreteGaussian:
        vector_bound = self.clip or 1.0
        return DistributedDiscreteGaussian(
            dimension=dimension,
            clip=vector_bound if self.record_clip is None else self.record_clip,
            noise_multiplier=self.noise_multiplier,
            expected_clients=max(1, round(self.expected_clients)),
            bits=bits,
            vector_bound=0.0 if self.record_clip is None else vector_bound,
        )

    @property
    def denominator(self) -> float:
        """What the sum is divided by: the public expected cohort (client level), or 1
        when the clients' vectors already add up to the mean (record level)."""
        return self.expected_clients if self.record_clip is None else 1.0

    def round_options(self, num_participants: int) -> dict[str, Any]:
        seed = self._seeds.words(2).tobytes() if self._seeds is not None else os.urandom(16)
        return {"noise_share": NoiseShareRound(self.ddg, seed)}

    def epsilon(self) -> float:
        return self.accountant.epsilon()

    def _parameters(self) -> dict[str, Any]:
        ddg = self.ddg
        return {
            "noise_multiplier": ddg.noise_multiplier,
            "clip": ddg.clip,
            "expected_clients": ddg.expected_clients,
            "bits": ddg.bits,
            "sample_rate": self.accounted_rate,
        }

    def restore(self, stored: dict[str, Any]) -> None:
        _refuse_foreign_round(stored, self.name)
        ran = stored.get("parameters")
        if ran is not None and ran != self._parameters():
            # one accountant composes one mechanism: rounds that ran with other
            # parameters cannot be re-charged with these (that would misstate epsilon)
            raise ConfigurationError(
                f"the distributed-DP parameters changed since a completed round ({ran} -> "
                f"{self._parameters()}): keep [dp] and the sampling as they were for this "
                "federation's state, or start a new federation"
            )
        if "noise_contributors" in stored:
            # as stored: a fractional count is refused by the accountant, not truncated
            self.accountant.step(stored["noise_contributors"])

    def epsilon_after_next(self, *, contributors: int, participants: int | None) -> float:
        """The epsilon one more round of ``contributors`` would bring (not charged)."""
        trial = copy.deepcopy(self.accountant)
        trial.step(
            self._honest(contributors, contributors if participants is None else participants)
        )
        return trial.epsilon()

    def reveal_refusal(self, *, contributors: int, participants: int) -> str | None:
        if self._honest(contributors, participants) > 0:
            return None
        return (
            f"distributed DP: {contributors} contributing branch(es) against "
            f"{self._colluders(participants)} assumed colluder(s) leave no honest noise "
            "share, so revealing the sum would release it without DP (epsilon infinite); "
            "aborted before any unmasking request"
        )

    def charge_at_reveal(
        self, *, contributors: int, participants: int, noise_added: float = 0.0
    ) -> dict[str, Any]:
        """The round's charge as :meth:`release` stores it, and the epsilon after it
        (whatever ``noise_added``: the clients' shares are the noise)."""
        honest = self._honest(contributors, participants)
        trial = copy.deepcopy(self.accountant)
        trial.step(honest)
        return {
            "noise_contributors": honest,
            "assumed_colluders": self._colluders(participants),
            "parameters": self._parameters(),
            "epsilon": trial.epsilon(),
        }

    def _colluders(self, participants: int) -> int:
        """The colluders the round's accountant does not count (the protocol's rule)."""
        return assumed_colluders(participants, self.corrupt_fraction, self.population)

    def _honest(self, contributors: int, participants: int) -> int:
        return honest_noise_contributors(contributors, self._colluders(participants))

    def release(
        self, total: np.ndarray, *, contributors: int, participants: int, noise_added: float
    ) -> Release:
        honest = self._honest(contributors, participants)
        self.accountant.step(honest)
        stored = {
            "noise_contributors": honest,
            # recorded so that an auditor can check the honest count against the row's
            # contributions instead of taking it on trust (DP audit: a row claimed 50
            # honest shares in a sum of 2)
            "assumed_colluders": self._colluders(participants),
            "parameters": self._parameters(),
        }
        return Release(total / self.denominator, self.epsilon(), stored)

    def ledger_block(self, stored: dict[str, Any]) -> dict[str, Any]:
        block = self._block("ddg-kls21")
        ddg = self.ddg
        block["ddg"] = {
            "dimension": ddg.dimension,
            "expected_clients": ddg.expected_clients,
            "bits": ddg.bits,
            "scale": ddg.scale,
            "local_sigma": ddg.local_sigma,
        }
        block["noise_contributors"] = stored.get("noise_contributors")
        # the threat model's numbers behind that count: verify recomputes the colluders
        # from the corrupt fraction, the cohort and the population (the protocol's rule)
        # and refuses more honest shares than the contributions less those colluders
        block["corrupt_fraction"] = self.corrupt_fraction
        if stored.get("assumed_colluders") is not None:  # a store from before: not kept
            block["assumed_colluders"] = stored["assumed_colluders"]
        return block


#: record-level DP with the noise once: each protected unit, as the ledger describes it
_PROTECTED_UNITS = {"customer": "a customer and all their rows", "transaction": "one transaction"}


class RecordDistributedRelease(DistributedRelease):
    """Record-level DP from the clients' discrete Gaussian shares: DP gradient descent.

    Each client sends the sum of its protected units' clipped gradients (each
    customer's clipped to ``record_clip``, the whole scaled by a public constant so
    that the clients' vectors add up to the mean gradient) with its noise share added
    before masking; the server only learns the noised sum, which is the release.
    Against the Kairouz et al. analysis a neighbouring dataset moves one client's
    vector by ``record_clip``, not by the whole vector's bound ``dp.clip`` (see
    :mod:`secagg.dp.distributed`). Every unit of every client is in every round (no
    sampling, so no amplification is claimed); the epsilon is per protected unit and
    counts the honest shares of each round, as the client-level mechanism does.

    Why it exists: DP-SGD inside each branch adds a full noise share per branch, so
    the federation's average carries sqrt(branches) times the noise one pooled DP-SGD
    would need; here the shares add up to the noise once (about that of the honest
    survivors), which is what lets a few hundred fraud cases spread over eight
    branches train at epsilon = 3 (docs/results.md).
    """

    unit = "record"

    def __init__(
        self, *, record_clip: float, record_unit: str = "customer", **settings: Any
    ) -> None:
        """``record_unit``: what one protected unit is, ``"customer"`` (a customer and
        all their rows, clipped together) or ``"transaction"`` (one row, clipped alone,
        when the data name no customer). The ledger's adjacency states it: a row saying
        "customer" for a run that protected single transactions claimed more than ran
        (DP audit, 2026-12-04)."""
        if record_unit not in _PROTECTED_UNITS:
            raise ConfigurationError(
                f"record_unit must be one of {', '.join(_PROTECTED_UNITS)}, not {record_unit!r}"
            )
        self.record_clip = record_clip
        self.record_unit = record_unit
        super().__init__(**settings)

    @property
    def adjacency(self) -> str:  # type: ignore[override]
        # zero-out, not add/remove: every ledger row publishes record_clip, which is the
        # clip over the federation's count of protected units, so that count is public
        # (DP audit, 2026-12-03); for the Gaussian the epsilon is the same
        return (
            f"zero-out one protected unit ({_PROTECTED_UNITS[self.record_unit]}) of a "
            "client; the number of units is public"
        )

    def _parameters(self) -> dict[str, Any]:
        return {**super()._parameters(), "record_clip": self.record_clip}

    def ledger_block(self, stored: dict[str, Any]) -> dict[str, Any]:
        block = super().ledger_block(stored)
        block.update(
            unit="record",
            record_clip=self.record_clip,
            noise_std=self.noise_multiplier * self.record_clip,
        )
        return block


def _restored_figure(report: RecordReport) -> tuple[str | None, float]:
    """A report read back from the ledger: why the server does not replay it
    (:func:`_replay_refusal`) and NaN, or None and its replayed epsilon."""
    refusal = _replay_refusal(report)
    return (refusal, math.nan) if refusal is not None else (None, _replayed_epsilon(report))


class _BackgroundReplays:
    """A thread that computes the replays handed to it, in order, and ends when none is
    left (the next one starts another); each result is a
    :class:`~concurrent.futures.Future` the server's thread reads.

    Why a thread: the replays cost Opacus up to :data:`REPLAY_SECONDS_PER_REPORT` a
    report. In the server's thread they held it from message handling: after a round's
    phases (50 PRV branches: about 28 s that it read nothing,
    tests/runtime/test_record_replay_overlap.py), and on a restart before ``serve``
    binds its port (hundreds of PRV branches: past the parties' redial windows,
    tests/runtime/test_record_restart_replays.py). Only the figure is computed here, from
    a frozen report; what is held, refused and claimed is decided in the server's thread
    (:meth:`RecordRelease._replay_pending`), so the figures are the same replays'. One
    thread, not a pool: a replay holds the interpreter about half its time, and the
    server's own thread must keep its pace. A daemon that ends when idle: a server
    stopped mid-replay exits at once, and no thread is left waiting per mechanism.

    It stops, between two replays, once :meth:`stop` was called or ``stop_when()`` is
    true (:meth:`RecordRelease.stop_replays`, :meth:`RecordRelease.stop_replays_when`).
    Why: a server stopped (closed, a stop recorded for the process, a round that ended
    in an error) left this thread replaying every queued report, up to
    :data:`REPLAY_SECONDS_PER_REPORT` each, for a server that would read none of them
    (tests/runtime/test_record_replays_stop.py). The queued futures are cancelled, never
    given a figure: a reader computes a cancelled one itself (:func:`_figure_of`), and
    nothing is held from them but by the server's thread, so nothing is half recorded."""

    def __init__(self, stop_when: Callable[[], bool] | None = None) -> None:
        self._lock = threading.Lock()
        self._jobs: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._running = False
        self._stopped = False  # stop() called: for good
        #: looked at between replays and at each submit (the process's stop record)
        self.stop_when: Callable[[], bool] = stop_when or (lambda: False)

    def stop(self) -> None:
        """Run no more replays: the queued ones are cancelled at once, the one under way
        (if any) ends as it would, and no later submit starts one."""
        with self._lock:
            self._stopped = True
            self._cancel_queued()

    def _cancel_queued(self) -> None:
        """Cancel every queued job's future (the lock held): its reader computes it."""
        for _, queued in self._jobs:
            queued.cancel()
        self._jobs.clear()

    def _stopping(self) -> bool:
        """Whether to run nothing more (the lock held)."""
        return self._stopped or bool(self.stop_when())

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        """``job`` queued for the thread (started if none runs); its future is cancelled
        where no thread could be started, and the reader computes it itself
        (:func:`_figure_of`).

        Why: ``Thread.start`` can fail (``can't start new thread``: a process at its
        thread limit, or shutting down). It failed with the flag already saying a thread
        ran: the ``RuntimeError`` came out of :meth:`RecordRelease.take_report`, where
        the server has no handler, and no thread was started again, so every later
        replay was waited for forever at a round's end
        (tests/dp/test_release_record_replay_thread.py)."""
        future: Future[Any] = Future()
        with self._lock:
            if self._stopping():  # the owner stopped: its reader, if any, computes it
                future.cancel()
                return future
            self._jobs.append((job, future))
            if not self._running:
                try:
                    threading.Thread(
                        target=self._work, name="secagg-record-replays", daemon=True
                    ).start()
                except RuntimeError as exc:
                    # nothing will run the queue: each queued job is the reader's, and
                    # the next submit tries a thread again
                    log.warning(
                        "record-level replays: no background thread (%s); the server "
                        "replays the reports itself as it reads them",
                        exc,
                    )
                    self._cancel_queued()
                else:
                    self._running = True
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._jobs and self._stopping():
                    self._cancel_queued()
                if not self._jobs:
                    self._running = False
                    return
                job, future = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # re-raised in the server's thread, which reads it
                future.set_exception(exc)


def _look_at_nothing() -> None:
    """The default :meth:`RecordRelease.look_between_replays`: nothing ends the replays."""


def _figure_of(pending: Future[Any] | None, job: Callable[[], Any]) -> Any:
    """``pending``'s result (waited for), or ``job()`` computed here where there is no
    future or it was cancelled (no thread could run it, :meth:`_BackgroundReplays.submit`):
    the same function of the same frozen report either way, so the same figure. A future
    cancelled while it was waited for (the replays stopped: :meth:`_BackgroundReplays.stop`)
    is computed here too."""
    if pending is None or pending.cancelled():
        return job()
    try:
        return pending.result()
    except CancelledError:
        return job()


class UnaccountedContribution(SecAggError):
    """A record-level round holds an update no DP-SGD report accounts for.

    Why a :class:`~secagg.errors.SecAggError`: the server turns one raised by
    :meth:`Mechanism.release` into an abort, so the round releases nothing (the worst
    branch's epsilon would otherwise be claimed for a sum holding an update trained
    without DP-SGD: DP audit, 2026-12-04).

    ``reasons``: each contributor not accounted for (by the identity the server passed
    to :meth:`RecordRelease.take_report`) and why, so the server can keep that branch
    out of later rounds: refused after the sum, it would abort every round it is in."""

    def __init__(self, message: str, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reasons: dict[str, str] = dict(reasons or {})


class RecordRelease(Mechanism):
    """Record-level DP: DP-SGD inside each branch; the server neither noises nor accounts.

    It keeps each branch's latest accounting (by identity hash) for the ledger;
    the release's record-level epsilon is the worst branch's (each branch's
    records are its own, so branches compose in parallel). A round in which fewer
    branches reported than contributed, or in which a branch's report did not extend
    its previous one, is refused at release (:class:`UnaccountedContribution`): the
    claim would not cover every update in the sum.
    """

    unit = "record"

    def __init__(self, *, clip: float, delta: float, sample_rate: float) -> None:
        super().__init__(clip)
        self.delta = delta
        self.sample_rate = sample_rate
        self.latest: dict[str, RecordReport] = {}  # identity hash -> latest report
        self._round: dict[str, RecordReport] = {}  # this round's, by identity hash
        #: this round's branches whose report was refused (it did not extend their last)
        self._refused: dict[str, str] = {}
        #: branches whose latest report is not replayed yet (kept this round, or restored)
        self._unreplayed: set[str] = set()
        #: each branch's report as last replayed and held: the figure its rows recorded,
        #: which the branch's next replay may not fall below (``audit verify``'s rule)
        self._held: dict[str, RecordReport] = {}
        #: restored branches -> the largest epsilon the ledger's rows recorded for them
        self._restored: dict[str, float] = {}
        #: restored branches -> their latest report as read back from the ledger (kept
        #: apart: a report of the round may replace it in ``latest`` before its replay)
        self._read_back: dict[str, RecordReport] = {}
        #: restored branches -> their read-back report's replay under way in the
        #: background (:meth:`start_restored_replays`)
        self._restored_replays: dict[str, Future[tuple[str | None, float]]] = {}
        self._background: _BackgroundReplays | None = None
        #: when the background replays stop (stop_replays_when), and whether stopped
        self._stop_when: Callable[[], bool] | None = None
        self._replays_stopped = False
        #: called before each report's figure is read (look_between_replays)
        self._look: Callable[[], None] = _look_at_nothing
        #: each branch's report kept this round, and its replay under way (take_report)
        self._replays: dict[str, tuple[RecordReport, Future[float]]] = {}

    @classmethod
    def replay_seconds(cls, reports: int) -> float:
        """:data:`REPLAY_SECONDS_PER_REPORT` a contributor: the round's end waits for each
        one's replay (:meth:`_replay_pending`), which may all still be to run when the
        phases end (the reports arriving late, or the phases short)."""
        return max(0, reports) * REPLAY_SECONDS_PER_REPORT

    def report_problem(self, identity: str, report: RecordReport) -> str | None:
        """Why ``report`` cannot be kept, by every check that needs no replay, or None;
        changes nothing. The checks: the delta the rows print (:func:`_same_delta`), a run
        without noise (no finite figure, :func:`_noiseless_run`), the replay caps
        (:func:`_replay_refusal`: runs and steps, the noise multiplier, and for PRV the
        size of its grid, from RDP curves only), and a rewind of the branch's accounting:
        a history that does not extend its previous one (a restarted trainer) or an
        epsilon below it by more than its accountant's error
        (:func:`record_epsilon_drop_allowed`).

        Why apart from :meth:`take_report`: the server asks this as the report ARRIVES,
        before the message's protocol step, and refuses the message, so the branch is a
        dropout of the round (its mask removed as any dropout's). Found only after the
        sum was unmasked, the refusal aborted the whole round, and one enrolled branch
        sending such a report aborted every round it was sampled into (2026-12-07)."""
        if not _same_delta(report.delta, self.delta):
            return (
                f"it accounts at delta {report.delta!r}, the federation's rows at delta "
                f"{self.delta!r}"
            )
        noiseless = _noiseless_run(report.history)
        if noiseless is not None:
            return noiseless
        past_caps = _replay_refusal(report)
        if past_caps is not None:
            return past_caps
        # compared with the branch's last figure as replayed when its round's row was
        # written (or, restored, at the server's first claim); nothing is replayed here,
        # inside a phase (see _replay_pending)
        previous = self.latest.get(identity)
        if previous is not None:
            if not history_extends(history_runs(report.history), history_runs(previous.history)):
                return "its DP-SGD history does not extend its previous report's"
            # a restored branch whose replay is not read yet: the largest figure its rows
            # recorded (its replay, read at the round's end, may only raise it)
            last = max(previous.epsilon, self._restored.get(identity, previous.epsilon))
            if not record_epsilon_drop_allowed(
                (previous.accountant, report.accountant), last, report.epsilon
            ):
                return f"its epsilon went down from {last} to {report.epsilon}"
        return None

    def begin_round(self, cohort: Iterable[str]) -> None:
        """A round starts with no report of its own: only what its contributors send in it
        accounts for them (:meth:`require_reports`, :meth:`release`).

        Why: the round's reports were dropped only by its ledger row (:meth:`ledger_block`),
        so on a server without a ledger (the API's default) a report of round 1 counted
        as one of every later round: a branch that reported once contributed to rounds
        it never reported, its training past the held figure, and each was released as
        accounted for (tests/runtime/test_record_reports_without_ledger.py). Each
        branch's latest report (:attr:`latest`) and what is pending replay are kept."""
        self._round = {}
        self._refused = {}

    def take_report(self, identity: str, report: RecordReport) -> None:
        """Keep a branch's report unless :meth:`report_problem` names a problem with it.
        Such a report is not kept (its epsilon is no cumulative guarantee); the branch
        then counts as unreported and :meth:`release` refuses a round it contributed
        to. A report within its accountant's error below the last is kept with the last
        epsilon: nothing kept, claimed or recorded goes down. Nothing is raised here:
        the server calls this after the message's protocol step, where an exception has
        no handler (it asked :meth:`report_problem` before that step)."""
        problem = self.report_problem(identity, report)
        if problem is not None:
            self._refuse_report(identity, problem)
            return
        self._refused.pop(identity, None)
        self.latest[identity] = report
        self._round[identity] = report
        self._unreplayed.add(identity)  # held to its replay before anything claims it
        # replayed from now on beside the round's remaining phases, off the server's
        # thread; read (and waited for) once they are over (_replay_pending)
        replaced = self._replays.get(identity)
        if replaced is not None:
            # its earlier report (of a round that aborted before its figures were read)
            # is read no more: its replay, if still queued, is not run, or the round's
            # end would wait for it too, past the allowance of one replay a contributor
            # (tests/dp/test_release_record_replaced_report.py)
            replaced[1].cancel()
        self._replays[identity] = (report, self._in_background(lambda: _replayed_epsilon(report)))

    def _refuse_report(self, identity: str, problem: str) -> None:
        """Not kept: the branch counts as unreported until a report that holds."""
        self._refused[identity] = problem
        self._round.pop(identity, None)
        log.warning("record-level report of %s… refused: %s", identity[:12], problem)

    def require_reports(self, identities: Iterable[str]) -> None:
        """Refuse the round unless every one of ``identities`` (the contributors, by the
        identity the server passes to :meth:`take_report`) reported this round and its
        report holds once replayed (:meth:`_replay_pending`).

        Why the replay here: the server calls this once the round's phases are over,
        before :meth:`release`, which matches reports by count only; a contributor
        refused at the replay could otherwise be made up for by the report of a branch
        whose input dropped out of the sum."""
        self._replay_pending()
        missing = sorted(set(identities) - set(self._round))
        if missing:
            reasons = {i: self._refused.get(i, "no DP-SGD report") for i in missing}
            raise UnaccountedContribution(
                f"{len(missing)} contributing branches are not accounted for "
                f"({'; '.join(sorted(set(reasons.values())))}): their updates carry no "
                "record-level guarantee, so the round is not released",
                reasons,
            )

    def release(
        self, total: np.ndarray, *, contributors: int, participants: int, noise_added: float
    ) -> Release:
        """The plain mean, once this round's reports can cover every contribution.

        Only counts reach this method: a round with fewer accepted reports than
        contributors is refused. (The server can match them by identity with
        :meth:`require_reports` first; by count alone, a report from a branch that
        dropped could stand in for a contributor that sent none.)"""
        self._replay_pending()
        if len(self._round) < contributors:
            why = "; ".join(sorted(set(self._refused.values())))
            refused = f"; refused: {len(self._refused)} ({why})" if self._refused else ""
            raise UnaccountedContribution(
                f"{contributors} branches contributed but only {len(self._round)} sent an "
                f"accepted DP-SGD privacy report{refused}: the record-level epsilon would not "
                "cover every update in the sum, so the round is not released"
            )
        released = super().release(
            total, contributors=contributors, participants=participants, noise_added=noise_added
        )
        # the round's reports as held (replayed), kept with the round in the state: a
        # restart that rebuilds its ledger row has them (ledger_block)
        reports = {k: r.as_dict() for k, r in sorted(self._round.items())}
        return replace(released, store={**released.store, "client_reports": reports})

    def restore_reports(self, reports: dict[str, dict[str, Any]]) -> None:
        """Reports recorded in the ledger before a restart (one row's, called row by
        row in ledger order); each branch's latest is replayed once, before anything
        reads it (:meth:`_replay_pending`), and held to no less than the largest figure
        the rows recorded for it: a claim the server signed does not go down."""
        for identity, report in reports.items():
            if isinstance(report, dict) and report.get("epsilon") == "inf":
                # the ledger's spelling of an infinity (a server before 2026-12-07 signed
                # a report's stated figure, inf where the branch's accountant said so):
                # the start failed on it ("record-level epsilon must be a number")
                report = {**report, "epsilon": math.inf}
            restored = RecordReport.from_dict(report)
            self.latest[identity] = restored
            self._read_back[identity] = restored
            stale = self._restored_replays.pop(identity, None)  # an earlier row's report
            if stale is not None:
                stale.cancel()
            self._restored[identity] = max(
                self._restored.get(identity, restored.epsilon), restored.epsilon
            )
            self._unreplayed.add(identity)

    def start_restored_replays(self) -> None:
        """Start replaying, in a background thread, each restored branch's report not
        replayed yet (:meth:`restore_reports`); :meth:`_replay_pending` reads the figures.

        Why: the server restores its ledger's reports as it is built, and ``serve`` binds
        its port after that; replayed there (up to :data:`REPLAY_SECONDS_PER_REPORT` a
        branch), a restart of hundreds of PRV branches was unreachable past its parties'
        redial windows (tests/runtime/test_record_restart_replays.py)."""
        for identity in sorted(self._restored):
            if identity in self._restored_replays:
                continue
            report = self._read_back[identity]
            self._restored_replays[identity] = self._in_background(
                lambda report=report: _restored_figure(report)
            )

    def _in_background(self, job: Callable[[], Any]) -> Future[Any]:
        """``job`` run by this mechanism's replay thread (started at the first)."""
        if self._background is None:
            self._background = _BackgroundReplays(self._stop_when)
            if self._replays_stopped:
                self._background.stop()
        return self._background.submit(job)

    def stop_replays_when(self, stop: Callable[[], bool]) -> None:
        """The background replays stop once ``stop()`` is true, looked at between two
        replays and at each new one (its future then cancelled: the reader computes it,
        :func:`_figure_of`). Why: the server's stop record (a Ctrl-C or SIGTERM that a
        library swallowed) ended the server but not this thread, which kept replaying
        (tests/runtime/test_record_replays_stop.py)."""
        self._stop_when = stop
        if self._background is not None:
            self._background.stop_when = stop

    def look_between_replays(self, look: Callable[[], None]) -> None:
        """``look()`` is called before each report's figure is read, waited for or
        computed here (:meth:`_replay_pending`); it raises to end the replays (the
        server's :func:`~secagg.transport.waiting.raise_if_stop_asked`, passed in: this
        package imports no transport).

        Why: a stop the background thread saw (:meth:`stop_replays_when`) cancelled the
        queued replays, and the server's thread, reading them, computed every cancelled
        one itself (:func:`_figure_of`), up to :data:`REPLAY_SECONDS_PER_REPORT` each,
        without looking at the stop: a SIGTERM swallowed during a restart's rebuild of
        the ledger was noticed only after all the remaining replays
        (tests/runtime/test_record_backfill_stop_looks.py)."""
        self._look = look

    def stop_replays(self) -> None:
        """Run no more replays in the background (the server stopped or was closed): the
        queued ones are cancelled (a later read computes its figure itself), the one
        under way ends as it would. Nothing is held from them: a restart replays the
        ledger's reports again."""
        self._replays_stopped = True
        if self._background is not None:
            self._background.stop()

    def replay_backlog(self) -> int:
        """Restored reports not replayed yet: the next round's end replays them too."""
        return len(self._restored)

    def provisional_claim(self, epsilon: float | None) -> float | None:
        """:meth:`ledger_claim` without waiting for a replay: the worst branch's figure as
        held, or as the ledger's rows recorded it for a restored branch not replayed yet
        (its replay may only raise it). For the server's log line as it is built; what is
        signed is always :meth:`ledger_claim`'s."""
        if not self._unreplayed:
            return self.ledger_claim(epsilon)
        return max(
            (max(r.epsilon, self._restored.get(i, r.epsilon)) for i, r in self.latest.items()),
            default=None,
        )

    def _replay_pending(self) -> None:
        """Hold each branch's latest report (kept this round, or restored from the
        ledger) to what its DP-SGD history gives (:func:`_replayed_epsilon`): that figure,
        or the branch's last held one where the replay lies below it within the
        accountant's error, is what is recorded and claimed, whatever the report states
        (a warning names a branch whose stated figure differs). A report of this round
        whose replay is infinite, or falls below the branch's last figure by more than
        its accountant's error (another accountant, say), is refused: the branch counts
        as unreported (:meth:`require_reports`) and its last report stays its claim.

        Why the replayed figure and not the larger: ``audit verify`` holds each report to
        its replay (no more than 1e-6 above it, no less than float noise below), so a
        stated figure above the replay, kept as the safe side, made the server sign a
        row verify failed; every epsilon signed is the one of what ran. Why refusals:
        verify fails a report whose figure goes down, or that states no finite figure;
        an honest server does not release an update it can state no guarantee for.

        Why the figures are read here and computed elsewhere: a replay costs Opacus's PRV
        up to seconds, and a report arrives inside a phase of the round, whose deadline
        keeps running while the server computes. Each report kept is replayed from its
        arrival in this mechanism's background thread (:meth:`take_report`; a restored
        one from the restart, :meth:`start_restored_replays`), one after another, beside
        the round's remaining phases, so the server's thread goes on reading messages
        (tests/runtime/test_record_replay_overlap.py; until 2026-12-07 they ran here, in
        the server's thread, after the phases: 50 PRV branches of 100 000 rows, about
        28 s in which it read nothing). This runs when the phases are over (the
        contributors' check, the release, the row) and waits for what is still under
        way, once per report (a restored ledger: once per branch, not per row): the
        round's end waits for them, with no deadline of their own, and they abort,
        refuse or leave unchecked nothing (tests/runtime/test_record_replay_schedule.py).
        The parties' waits cover them: the
        deadline the server tells a round's branches, and the key holder's idle timer as
        the launcher sizes it, carry :meth:`replay_seconds` of the round's contributors
        (tests/runtime/test_record_replay_waits.py).
        A ledger written before reports were replayed
        (2026-12-07) may record an understated figure, which a restarted server claimed
        until that branch reported anew."""
        # a look that raises (a stop) ends the replays before anything of the report it
        # stopped at is taken: the recorded figure of a restored branch, its read-back
        # report, a replay under way; a report held is pending no more. Taken first,
        # a later read held that restored branch at its bare replay, below what its
        # rows signed (tests/dp/test_release_record_look_keeps_held.py)
        for identity in sorted(self._unreplayed):
            report = self.latest[identity]
            if identity in self._restored:
                self._look()  # a stop before this report's figure ends the replays here
                # its report as read back first (a signed claim); then, if the branch has
                # reported anew since, that report, held to it as any later one
                restored = self._restored.pop(identity)
                read_back = self._read_back.pop(identity)
                pending = self._restored_replays.pop(identity, None)
                self._hold_restored(identity, read_back, restored, pending)
                if report is read_back:
                    self._unreplayed.discard(identity)
                    continue
            self._look()  # a stop before this report's figure ends the replays here
            before = self._held.get(identity)
            kept, pending = self._replays.pop(identity, (None, None))
            replayed = _figure_of(
                pending if kept is report else None,
                lambda report=report: _replayed_epsilon(report),
            )
            problem = None
            if not math.isfinite(replayed):
                problem = (
                    "its DP-SGD history gives no finite epsilon (no noise, or none its "
                    f"{report.accountant!r} accountant can evaluate)"
                )
            elif before is not None and not record_epsilon_drop_allowed(
                (before.accountant, report.accountant), before.epsilon, replayed
            ):
                problem = (
                    f"its DP-SGD history gives epsilon {replayed!r} by its {report.accountant!r} "
                    f"accountant, below the {before.epsilon!r} recorded for it before (by "
                    f"{before.accountant!r})"
                )
            self._unreplayed.discard(identity)
            if problem is not None:
                self._refuse_report(identity, problem)
                if before is None:
                    del self.latest[identity]
                else:
                    self.latest[identity] = before
                continue
            figure = replayed if before is None else max(before.epsilon, replayed)
            self._keep_held(identity, report, figure)
        self._unreplayed.clear()

    def _hold_restored(
        self,
        identity: str,
        report: RecordReport,
        recorded: float,
        pending: Future[tuple[str | None, float]] | None = None,
    ) -> None:
        """A restored branch's latest report, held to its replay and to no less than
        ``recorded`` (the largest figure its rows signed); one past the replay caps
        (written by an older server) keeps ``recorded``, with a warning. Nothing is
        refused: the rows are signed already, and its claim does not go down.
        ``pending``: its replay under way in the background (:func:`_restored_figure`),
        waited for here; None (or cancelled: no thread ran it): replayed now. The
        caller has looked (:meth:`_replay_pending`): nothing here raises a stop, so none
        ends it with the report taken out of the mechanism and not held."""
        refusal, figure = _figure_of(pending, lambda: _restored_figure(report))
        if refusal is not None:
            log.warning(
                "record-level report of %s… restored from the ledger: the server does not "
                "replay it (%s); the %r its rows recorded is kept (audit verify replays it)",
                identity[:12],
                refusal,
                recorded,
            )
            self._keep_held(identity, report, recorded)
            return
        self._keep_held(identity, report, max(recorded, figure))

    def _keep_held(self, identity: str, report: RecordReport, figure: float) -> None:
        """``report`` held at ``figure``: what is recorded and claimed for the branch
        (a warning where its stated epsilon differs beyond float noise)."""
        stated = report.epsilon
        if not (
            stated == figure
            or (
                math.isfinite(stated)
                and math.isfinite(figure)
                and abs(stated - figure) <= RECORD_FLOAT_NOISE * max(1.0, figure)
            )
        ):
            log.warning(
                "record-level report of %s…: it states epsilon %r, its DP-SGD history gives "
                "%r; %r is recorded and claimed",
                identity[:12],
                stated,
                figure,
                figure,
            )
        held = replace(report, epsilon=figure)
        self.latest[identity] = held
        self._held[identity] = held
        if self._round.get(identity) is report:
            self._round[identity] = held

    def ledger_block(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The row's block: the round's reports as held, and its rebuilt row's (a
        restart, :meth:`FederationServer._backfill_ledger`) from what the state kept
        with the round (``stored["client_reports"]``, :meth:`release`), which then
        count among each branch's latest as a restored row's do.

        Why the state's: the reports lived in this object only until the row took them,
        so a server that crashed between the state's commit of a released round and its
        ledger append rebuilt the row with no report ("epsilon": null beside a sum of 4
        branches' DP-SGD updates), which ``audit verify`` fails for good ("holds DP-SGD
        reports of only 0"), and the rows after it claimed without those reports
        (tests/runtime/test_record_row_rebuilt.py)."""
        kept = stored.get("client_reports")
        rebuilt = not self._round and isinstance(kept, dict) and bool(kept)
        if rebuilt:
            self.restore_reports(kept)  # held to no less than the figures stored
        self._replay_pending()
        reports, self._round = self._round, {}
        if rebuilt:
            reports = {identity: self.latest[identity] for identity in kept}
        self._refused = {}
        return {
            "unit": "record",
            "mechanism": "dpsgd",
            "clip": self.clip,
            "noise_multiplier": None,
            "noise_std": None,
            "sample_rate": self.sample_rate,
            "accountant": "in-clients",
            "delta": self.delta,
            "adjacency": record_adjacency(r.unit for r in reports.values()),
            "client_reports": {k: r.as_dict() for k, r in sorted(reports.items())},
        }

    def ledger_claim(self, epsilon: float | None) -> float | None:
        self._replay_pending()
        return max((r.epsilon for r in self.latest.values()), default=None)


#: what each server-accounted mechanism keeps with a released round (see ``restore``)
_STORED_BY = {
    "central": ("charged", "next_clip", "clip_applied"),
    "distributed": ("noise_contributors", "parameters"),
}


def _released_by(stored: dict[str, Any]) -> str | None:
    """The mechanism that released a stored round, by the figures it kept; None: no DP.

    A central round stored before rounds kept their parameters (2026-12-02) holds only
    its epsilon; a round released without DP holds neither figures nor an epsilon."""
    for name, keys in _STORED_BY.items():
        if any(key in stored for key in keys):
            return name
    return "central" if stored.get("epsilon") is not None else None


def _clip_cap(value: object) -> float:
    """``clip_cap`` if it is a positive number (``inf``: no cap), else a
    :class:`ConfigurationError`. Why: a NaN cap passed every ``min`` it met and made the
    next adaptive clip NaN, and 0 or a negative cap no clip can satisfy."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ConfigurationError(f"clip_cap must be a positive number, not {value!r}")
    return float(value)


def _refuse_foreign_round(stored: dict[str, Any], mechanism: str) -> None:
    """Refuse to charge a stored round that ``mechanism`` did not release.

    Why: a round released without DP noise, or by the other mechanism, was charged
    "as configured" (with a warning), so the ledger claimed an epsilon for sums that
    carried no such noise and ``audit verify`` failed it for good (CLI audit,
    2026-12-04). Only a round this mechanism released is charged again."""
    by = _released_by(stored)
    if by is None:
        raise ConfigurationError(
            "it was released without DP (no noise, no DP parameters recorded), so no "
            "epsilon can be claimed for it: remove [dp], or start a new federation"
        )
    if by != mechanism:
        raise ConfigurationError(
            f"it was released by the {by} mechanism, this config's [dp] mechanism is "
            f"{mechanism}: restore [dp] as it was, or start a new federation"
        )


def mechanism_class(settings: Any) -> type[Mechanism]:
    """The :class:`Mechanism` subclass a federation's ``[dp]`` settings build (None: no
    DP), before any accountant or noise stream exists."""
    if settings is None:
        return Mechanism
    if settings.unit == "record":
        return RecordDistributedRelease if settings.mechanism == "distributed" else RecordRelease
    if settings.mechanism == "distributed":
        return DistributedRelease
    if settings.mechanism == "central":
        return CentralRelease
    raise ConfigurationError(f"dp.mechanism {settings.mechanism!r} is not known")


def mechanism_for(
    settings: Any,
    *,
    dimension: int,
    bits: int,
    sample_rate: float,
    expected_clients: float,
    corrupt_fraction: float,
    seed: bytes | None = None,
    clip_cap: float = math.inf,
    population: int | None = None,
) -> Mechanism:
    """The mechanism of a federation's ``[dp]`` settings (None: no DP).

    ``seed`` keys the central noise and the rotation seeds for tests that replay a
    federation; by default both come from the OS CSPRNG. ``population``: the clients
    cohorts are sampled from, which bounds the colluders a sampled round may hold
    (distributed DP; see :func:`secagg.dp.distributed.assumed_colluders`).
    """
    kind = mechanism_class(settings)
    if kind is Mechanism:
        return Mechanism()
    common: dict[str, Any] = {
        "clip": settings.clip,
        "noise_multiplier": settings.noise_multiplier,
        "delta": settings.delta,
        "sample_rate": sample_rate,
        "expected_clients": expected_clients,
        "accountant": settings.accountant,
        "population": population,
    }
    if kind is RecordDistributedRelease:
        return RecordDistributedRelease(
            record_clip=settings.record_clip,
            record_unit=settings.record_unit,
            dimension=dimension,
            bits=bits,
            corrupt_fraction=corrupt_fraction,
            seeds=KeyedStream(seed) if seed is not None else None,
            **common,
        )
    if kind is RecordRelease:
        return RecordRelease(clip=settings.clip, delta=settings.delta, sample_rate=sample_rate)
    stream = KeyedStream(seed) if seed is not None else KeyedStream()
    if kind is DistributedRelease:
        return DistributedRelease(
            dimension=dimension,
            bits=bits,
            corrupt_fraction=corrupt_fraction,
            seeds=stream if seed is not None else None,
            **common,
        )
    # what is left is the central mechanism: mechanism_class refused any other name
    adaptive = None
    if settings.adaptive_clip:
        adaptive = AdaptiveClipping(
            noise_multiplier=settings.noise_multiplier,
            expected_clients=expected_clients,
            initial_clip=settings.clip,
            target_quantile=settings.target_quantile,
            learning_rate=settings.clip_learning_rate,
            count_stddev=settings.count_noise_stddev,
            # dp.min_clip / dp.max_clip; None keeps the default range around dp.clip
            min_clip=getattr(settings, "min_clip", None),
            max_clip=getattr(settings, "max_clip", None),
        )
    return CentralRelease(noise=stream, adaptive=adaptive, clip_cap=clip_cap, **common)
