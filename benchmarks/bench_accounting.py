"""Accounting benchmark (reliability review D7): what epsilon costs per round, and what
``secagg audit verify`` costs per ledger; prints JSON on stdout.

python benchmarks/bench_accounting.py            # T = 1, 100, 1 000; 1 000-row ledgers
python benchmarks/bench_accounting.py --quick    # T = 1, 100; 100-row ledgers, seconds
python benchmarks/bench_accounting.py --out benchmarks/results/accounting.json
python benchmarks/bench_accounting.py --markdown benchmarks/results/accounting.json

Per round: for each sample rate q (1, the config default, and 0.1) and round number T,
an accountant that has composed T - 1 rounds (rebuilt from its ledger history, as after
a restart) is charged one more round and asked for epsilon, as the server does after
every round: ``step`` + ``epsilon()``, median of several repetitions. Beside it, in the
same run, the from-scratch computation the accountant did before (the whole history
as one dp_accounting event, ``PrivacyAccountant.reference_epsilon``), timed once; since
2026-12-06 it takes a sampled round's PLD from the cache the running accountant has just
filled, as ``audit verify``'s fallback does after replaying a ledger. The central
Gaussian mechanism at z = 1.1, delta = 1e-5, with the PLD accountant. Every time is
taken twice: wall seconds and this process's CPU seconds (``time.process_time``), since
on a shared machine the wall time measures the load as much as the code (a run at load
average 9 on the 2 cores took 2-4x its CPU time).

Per ledger: 1 000-row ledgers written as the server writes them (the claims come from
the server's own mechanism, stepped once per released round; rows signed and appended
to a SQLite ledger) for central DP at q = 1 and q = 0.1 and for distributed DP (the
discrete Gaussian, 20 clients, d = 16), then ``verify_ledger`` is timed on each: chain,
signatures and every epsilon claim replayed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secagg.apps.bench import emit, machine_info, print_markdown
from secagg.dp.accounting import PrivacyAccountant
from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.verify import verify_ledger

Z, DELTA, CLIENTS, DIMENSION = 1.1, 1e-5, 20, 16
RATES = (1.0, 0.1)
ROUNDS = (1, 100, 1000)
QUICK_ROUNDS = (1, 100)
LEDGER_ROWS = 1000
QUICK_LEDGER_ROWS = 100


def _progress(message: str, enabled: bool) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def per_round(q: float, rounds: int, repetitions: int, reference: bool) -> dict[str, Any]:
    """The cost of the T-th round's ``step`` + ``epsilon()`` (and of the old way)."""
    history = [] if rounds == 1 else [{**_entry(q), "count": rounds - 1}]
    times, cpu_times, value = [], [], 0.0
    for _ in range(repetitions):
        accountant = PrivacyAccountant.from_history(history, DELTA) if history else None
        if accountant is None:
            accountant = PrivacyAccountant(DELTA)
        accountant.epsilon()  # the T - 1 rounds: composed before this round
        start, cpu_start = time.perf_counter(), time.process_time()
        accountant.step(Z, q)
        value = accountant.epsilon()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    cell: dict[str, Any] = {
        "sample_rate": q,
        "rounds": rounds,
        "epsilon": value,
        "incremental_seconds": statistics.median(times),
        "incremental_seconds_runs": times,
        "incremental_cpu_seconds": statistics.median(cpu_times),
    }
    if reference:
        start, cpu_start = time.perf_counter(), time.process_time()
        cell["from_scratch_epsilon"] = accountant.reference_epsilon()
        cell["from_scratch_seconds"] = time.perf_counter() - start
        cell["from_scratch_cpu_seconds"] = time.process_time() - cpu_start
    return cell


def _entry(q: float) -> dict[str, Any]:
    accountant = PrivacyAccountant(DELTA)
    accountant.step(Z, q)
    return accountant.history[0]


def build_ledger(path: Path, rows: int, *, mechanism: str, q: float) -> LedgerKey:
    """A ledger as the server writes it: each row's claim from the server's mechanism."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's privacy-cost warnings
        release = mechanism_for(
            DPSettings(mechanism=mechanism, noise_multiplier=Z, delta=DELTA),
            dimension=DIMENSION,
            bits=32,
            sample_rate=q,
            expected_clients=CLIENTS * q,
            corrupt_fraction=0.1,
        )
    key = LedgerKey.generate()
    ledger = Ledger(path, key)
    names = tuple(f"branch-{i:02d}" for i in range(CLIENTS))
    cohort = max(2, round(CLIENTS * q))  # the expected cohort, rotating through the clients
    for number in range(1, rows + 1):
        members = tuple(names[(number * cohort + i) % CLIENTS] for i in range(cohort))
        release.round_options(cohort)
        release.begin_round(members)  # the central mechanism charges these
        out = release.release(
            np.zeros(DIMENSION), contributors=cohort, participants=cohort, noise_added=0.0
        )
        dp = release.ledger_block(out.store) | {
            "sampling": {"kind": "poisson", "rate": q, "population": CLIENTS, "seeded": False}
        }
        entry = LedgerEntry(
            federation="bench",
            round=number,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=members,
            contributed=cohort,
            dropouts={},
            dp=dp,
            epsilon=out.epsilon,
            delta=DELTA,
            model_sha256=f"{number:064x}",
        )
        ledger.append(entry.row(ledger.key.identity_hash))
    ledger.close()
    return key


def verify_cell(rows: int, mechanism: str, q: float, progress: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.sqlite"
        _progress(f"writing a {rows}-row {mechanism} ledger (q = {q:g})", progress)
        start = time.perf_counter()
        key = build_ledger(path, rows, mechanism=mechanism, q=q)
        written = time.perf_counter() - start
        _progress("  verifying it", progress)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = verify_ledger(path, key.public_key)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return {
        "ledger": f"{mechanism} DP, q = {q:g}",
        "mechanism": mechanism,
        "sample_rate": q,
        "rows": rows,
        "verify_seconds": seconds,
        "verify_cpu_seconds": cpu_seconds,
        "write_seconds": written,
        "ok": result.ok,
        "first_failure": result.first_failure,
        "epsilon": result.epsilons[-1][1] if result.epsilons else None,
    }


def run_benchmark(
    *,
    rounds: Sequence[int] = ROUNDS,
    ledger_rows: int = LEDGER_ROWS,
    repetitions: int = 5,
    reference: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()  # a shared machine: times are upper bounds under this load
    cells = []
    for q in RATES:
        for t in rounds:
            _progress(f"per round: q = {q:g}, T = {t}", progress)
            cells.append(per_round(q, t, repetitions, reference))
    ledgers = [
        verify_cell(ledger_rows, "central", 1.0, progress),
        verify_cell(ledger_rows, "central", 0.1, progress),
        verify_cell(ledger_rows, "distributed", 1.0, progress),
    ]
    return {
        "benchmark": "accounting",
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "machine": machine_info(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "setting": {
            "noise_multiplier": Z,
            "delta": DELTA,
            "accountant": "pld",
            "repetitions": repetitions,
            "clients": CLIENTS,
            "dimension": DIMENSION,
        },
        "method": (__doc__ or "").split("\n\n", 2)[2],
        "per_round": cells,
        "verify": ledgers,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """A finished run as two Markdown tables."""
    load = result.get("load_average", {})
    out = f"load average (1, 5, 15 min) before {load.get('before')}, after {load.get('after')}\n\n"
    out += "wall seconds (CPU seconds where the run recorded them)\n\n"
    out += "| q | T | step + epsilon() | from scratch (reference_epsilon) | epsilon |\n"
    out += "| --- | --- | --- | --- | --- |\n"
    for c in result["per_round"]:
        incremental = _seconds(c["incremental_seconds"], c.get("incremental_cpu_seconds"), 1e3)
        scratch = c.get("from_scratch_seconds")
        scratch_text = (
            "-" if scratch is None else _seconds(scratch, c.get("from_scratch_cpu_seconds"))
        )
        out += (
            f"| {c['sample_rate']:g} | {c['rounds']} | {incremental} | {scratch_text} "
            f"| {c['epsilon']:.4f} |\n"
        )
    out += "\n| ledger | rows | audit verify | verified |\n| --- | --- | --- | --- |\n"
    for c in result["verify"]:
        verify = _seconds(c["verify_seconds"], c.get("verify_cpu_seconds"))
        out += f"| {c['ledger']} | {c['rows']} | {verify} | {c['ok']} |\n"
    return out


def _seconds(wall: float, cpu: float | None, scale: float = 1.0) -> str:
    """``1.20 s (CPU 0.41 s)``: a wall time with the CPU time beside it (runs before
    2026-12-06 recorded wall only); ``scale`` 1e3 says milliseconds."""
    unit = "ms" if scale == 1e3 else "s"
    text = f"{wall * scale:.2f} {unit}"
    return text if cpu is None else f"{text} (CPU {cpu * scale:.2f} {unit})"


#: the most per-round repetitions: each is a few ms to 0.1 s at these settings
MAX_REPETITIONS = 1000


def _repetitions(text: str) -> int:
    """``--repetitions``: a whole count from 1 to :data:`MAX_REPETITIONS`.

    Why: ``--repetitions 0`` ran the setup, then ended in a ``StatisticsError: no median
    for empty data`` traceback at the first cell, and a negative count did the same
    (bench review, 2026-12-06); argparse now says it in one line, exit 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_REPETITIONS:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {MAX_REPETITIONS}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 1, 100; 100-row ledgers")
    parser.add_argument(
        "--repetitions",
        type=_repetitions,
        default=5,
        help=f"per-round timings, their median reported (1 to {MAX_REPETITIONS}; default 5)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the from-scratch timings (slow at q = 1)"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.add_argument("--markdown", metavar="JSON", help="print an earlier run as tables")
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.markdown, markdown_table)
        return
    result = run_benchmark(
        rounds=QUICK_ROUNDS if args.quick else ROUNDS,
        ledger_rows=QUICK_LEDGER_ROWS if args.quick else LEDGER_ROWS,
        repetitions=args.repetitions,
        reference=not args.no_reference,
        progress=not args.no_progress,
    )
    emit(result, args.out)


if __name__ == "__main__":
    main()
