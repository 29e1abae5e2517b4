"""What a ledger with tampered epsilon claims costs ``secagg audit verify``; prints JSON.

python benchmarks/bench_verify_tampered.py                          # 20 and 100 rows
python benchmarks/bench_verify_tampered.py --rows 20 --scenario under --scenario window
python benchmarks/bench_verify_tampered.py --out benchmarks/results/verify_tampered.json

The ledger: ``--rows`` completed central rounds in the row format before per-client
charging (z = 1.1, q = 0.5, PLD, delta 1e-5), each claiming the epsilon the server's
accountant gave, then altered per scenario and re-signed with the ledger's own key:

* ``under``: every claim halved (fails at row 1); ``last-under``: only the last row's;
* ``over``: every claim times 1.5 (fails at row 1); ``last-over``: only the last row's;
* ``window``: every claim moved just past the tolerance above its replay, onto the
  from-scratch PLD's figure where that lies above the replay (writing it computes
  that figure for every row: tens of seconds at 100 rows). Such a ledger verifies, each
  such row through the fallback, and is the most a signing server can make a ledger cost.

A claim that does not match its replay is checked against the from-scratch PLD
(:meth:`~secagg.ledger.replay.EpsilonReplay.older_claim`, 0.15-0.5 s of CPU a row
since it reuses the cached round PLD, 0.7-1.1 s before, both 2026-12-06);
since 2026-12-06 only a claim *above* its replay is, so ``under`` costs no such
computation. Reported: the verify's process CPU and wall time, its verdict, failure
and ``from_scratch`` count.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secagg.apps.bench import emit, machine_info
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.entry import LedgerEntry
from secagg.ledger.row_checks import RELATIVE_TOLERANCE
from secagg.ledger.verify import verify_ledger

Z, Q, DELTA = 1.1, 0.5, 1e-5
SCENARIOS = ("under", "last-under", "over", "last-over", "window")
DEFAULT_SCENARIOS = ("under", "last-under", "over", "last-over")


def _claim(scenario: str, replayed: float, accountant: PrivacyAccountant, last: bool) -> float:
    """The epsilon a row of ``scenario`` claims where the server's accountant gave
    ``replayed``."""
    if scenario == "under" or (scenario == "last-under" and last):
        return replayed * 0.5
    if scenario == "over" or (scenario == "last-over" and last):
        return replayed * 1.5
    if scenario == "window":
        nudged = math.nextafter(replayed + RELATIVE_TOLERANCE * max(1.0, replayed), math.inf)
        from_scratch = accountant.reference_epsilon()
        if nudged - from_scratch <= RELATIVE_TOLERANCE * max(1.0, from_scratch):
            return nudged
    return replayed


def write_ledger(path: Path, rows: int, scenario: str) -> LedgerKey:
    """The signed ledger of ``rows`` rounds, its claims altered per ``scenario``."""
    key = LedgerKey.generate()
    dp = {
        "unit": "client", "mechanism": "central", "clip": 1.0, "noise_multiplier": Z,
        "noise_std": Z, "sample_rate": Q, "accountant": "pld", "delta": DELTA,
        "adjacency": "add/remove one client",
        "sampling": {"kind": "poisson", "rate": Q, "population": 20, "seeded": False},
    }  # fmt: skip
    accountant = PrivacyAccountant(DELTA, "pld")
    ledger = Ledger(path, key)
    try:
        for number in range(1, rows + 1):
            accountant.step(Z, Q)
            claim = _claim(scenario, accountant.epsilon(), accountant, number == rows)
            entry = LedgerEntry(
                federation="bench", round=number, status="complete", reason=None,
                started_at=None, finished_at=1.0e9 + number, backend={"name": "secagg+"},
                participants=("a", "b", "c"), contributed=3, dropouts={}, dp=dp,
                epsilon=claim, delta=DELTA, model_sha256=f"{number:064x}",
                publish_participants=False,
            )  # fmt: skip
            ledger.append(entry.row(lambda name: name))
    finally:
        ledger.close()
    return key


def run_case(rows: int, scenario: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as folder:
        path = Path(folder) / "ledger.sqlite"
        key = write_ledger(path, rows, scenario)
        cpu, wall = time.process_time(), time.perf_counter()
        result = verify_ledger(path, key.public_key)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "rows": rows,
        "scenario": scenario,
        "verify_cpu_s": round(cpu, 3),
        "verify_wall_s": round(wall, 3),
        "ok": result.ok,
        "failure": result.first_failure,
        "from_scratch": result.from_scratch,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="ledger rows (20 and 100)")
    parser.add_argument(
        "--scenario", choices=SCENARIOS, action="append", help="what is tampered (not window)"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    args = parser.parse_args(argv)
    sizes = args.rows or [20, 100]
    if any(size < 1 for size in sizes):
        parser.error("--rows must be at least 1")
    cases = [run_case(size, name) for size in sizes for name in args.scenario or DEFAULT_SCENARIOS]
    emit({"benchmark": "verify_tampered", "machine": machine_info(), "cases": cases}, args.out)


if __name__ == "__main__":
    main()
