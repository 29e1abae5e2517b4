"""Ledger memory benchmark: what ``secagg audit verify`` holds in memory per ledger row;
prints JSON on stdout.

python benchmarks/bench_ledger_memory.py                 # 10 000 rows of about 9 KB
python benchmarks/bench_ledger_memory.py --rows 100000   # about 900 MB of rows' text
python benchmarks/bench_ledger_memory.py --out benchmarks/results/ledger_memory.json

A ledger of ``--rows`` completed rounds is written as the server writes one (signed
rows appended to a SQLite ledger, in a temporary folder), each naming ``--branches``
participants by their identity hash (64 hex digits), the bulk of a row: 130 branches
make rows of about 9 KB. Then, each under :mod:`tracemalloc` from a clean start, the
chain is read and checked (:func:`~secagg.ledger.chain.read_chain`) and the whole audit
is run (:func:`~secagg.ledger.verify.verify_ledger`): the peak of Python's allocations
during each, and what the chain's result still holds afterwards (the verified entries,
which the audit's replay and the report read), and the report is built
(:func:`~secagg.ledger.report.build_report`: the audit, the markdown and the PNG).
SQLite's own page cache is not traced.

The audit keeps the rows it read (``AuditResult.chain.rows``: the report, the claim's
delta and the last row's figures read them) and replays them after the read snapshot
is released (docs/audit.md, point 8): its peak is the rows kept plus a little (2 000
rows of 9 KB, 2026-12-06: read_chain kept 5.6 MB, verify_ledger peaked at 5.8 MB).
Streaming the replay inside the read would hold the writer's WAL for the replay too.

Before the rows were streamed (2026-12-06), the check fetched every row's text at once
and kept a fresh copy of every string of every entry: at 10 000 rows of 9 KB its peak
was 270 MB (181 MB kept), both growing with the rows; streamed, 28 MB (28 MB kept).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from secagg.apps.bench import emit, machine_info
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.chain import read_chain
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

ROWS = 10_000
BRANCHES = 130
MB = 2**20


def write_rows(path: Path, rows: int, branches: int) -> LedgerKey:
    """A ledger of ``rows`` completed rounds, each naming ``branches`` participants."""
    key = LedgerKey.generate()
    names = tuple(hashlib.sha256(f"branch-{i}".encode()).hexdigest() for i in range(branches))
    ledger = Ledger(path, key)
    try:
        for number in range(1, rows + 1):
            entry = LedgerEntry(
                federation="memory", round=number, status="complete", reason=None,
                started_at=None, finished_at=1.0e9 + number, backend={"name": "secagg+"},
                participants=names, contributed=branches, dropouts={}, dp=None,
                epsilon=None, delta=None, model_sha256=f"{number:064x}",
            )  # fmt: skip
            ledger.append(entry.row(lambda name: name))
    finally:
        ledger.close()
    return key


def traced(run: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """``run()``'s result, its peak and kept allocations (MB) and its seconds."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = run()
        seconds = time.perf_counter() - started
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / MB, kept / MB, seconds


def run_benchmark(rows: int, branches: int, progress: bool) -> dict[str, Any]:
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="secagg-ledger-memory-") as folder:
        path = Path(folder) / "memory.ledger"
        if progress:
            print(f"writing {rows} rows", file=sys.stderr, flush=True)
        key = write_rows(path, rows, branches)
        db = sqlite3.connect(path)
        text = db.execute("SELECT SUM(LENGTH(entry)) FROM ledger").fetchone()[0]
        db.close()
        if progress:
            print("reading the chain", file=sys.stderr, flush=True)
        chain, chain_peak, chain_kept, chain_seconds = traced(
            lambda: read_chain(path, key.public_key)
        )
        del chain
        if progress:
            print("verifying", file=sys.stderr, flush=True)
        audit, verify_peak, verify_kept, verify_seconds = traced(
            lambda: verify_ledger(path, key.public_key)
        )
        ok = audit.ok
        del audit
        if progress:
            print("building the report", file=sys.stderr, flush=True)
        _, report_peak, report_kept, report_seconds = traced(
            lambda: build_report(path, key.public_key)
        )
        return {
            "benchmark": "ledger_memory",
            "started_at": started_at,
            "machine": machine_info(),
            "load_average": list(os.getloadavg()),
            "method": (__doc__ or "").split("\n\n", 2)[2],
            "rows": rows,
            "branches": branches,
            "file_mb": round(path.stat().st_size / MB, 1),
            "rows_text_mb": round(text / MB, 1),
            "bytes_per_row": round(text / rows),
            "read_chain": {
                "peak_mb": round(chain_peak, 1),
                "kept_mb": round(chain_kept, 1),
                "seconds": round(chain_seconds, 2),
            },
            "verify_ledger": {
                "peak_mb": round(verify_peak, 1),
                "kept_mb": round(verify_kept, 1),
                "seconds": round(verify_seconds, 2),
                "ok": ok,
            },
            "build_report": {
                "peak_mb": round(report_peak, 1),
                "kept_mb": round(report_kept, 1),
                "seconds": round(report_seconds, 2),
            },
        }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"ledger rows (default {ROWS})")
    parser.add_argument(
        "--branches", type=int, default=BRANCHES, help=f"participants a row (default {BRANCHES})"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.branches < 1:
        parser.error("--rows and --branches must be at least 1")
    emit(run_benchmark(args.rows, args.branches, not args.no_progress), args.out)


if __name__ == "__main__":
    main()
