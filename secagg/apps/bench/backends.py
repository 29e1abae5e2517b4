"""Backend benchmark: CKKS next to masking and plaintext, through the one interface.

For each (n, d) and backend (``plain``, ``secagg+``, ``ckks`` by default) one
round runs through the backend's sans-I/O sessions, driven in memory by
:func:`secagg.aggregation.run_local_round` (every payload through its bytes, as
over a network). Reported per cell:

* ``client_seconds_median`` / ``_max``: all of one client's work in the round
  (CKKS: encode and encrypt; masking: fixed point, keys, shares, masking and
  unmasking; plain: serialisation);
* ``server_seconds``: all of the server's work (CKKS: parse and add the
  ciphertexts; masking: the protocol, the streaming sum and the unmasking;
  plain: add);
* ``helper_seconds``: the CKKS key holder's (key generation and decryption);
* ``bytes_per_parameter``: a client's largest payload (its contribution)
  divided by d;
* ``bytes_per_parameter_bound`` (CKKS only, ``None`` otherwise): what the
  round's own CKKS parameters make a parameter cost at the least, the packed
  ciphertext's bytes over the values it carries (2 * N * bits of q / 8 over N:
  2 * log2(q) / 8), computed from the parameters the round ran with, so that a
  reader sees how far headers and a short last chunk put the measured figure above
  it (printed as "bound now");
* ``max_abs_error`` and ``error_bound``: the result against the float64 sum,
  and the backend's documented bound.

* ``round_cpu_seconds``: the CPU time of the whole round, every role in this one
  process, the harness included.

Every time is CPU seconds (``time.process_time``; :class:`CPUTimings`) since
2026-12-06, wall seconds before: the roles run one after the other in this one
process, and another job on a shared machine lengthens wall time, not the CPU a
role spends (a run at a 1-minute load of 7-11 read the server's sum of 100 CKKS
uploads at d = 10^6 as 11.3 s of wall time, 3.8 s on the idle machine).

With ``repeats`` > 1 every cell runs that many rounds on the same updates and each
timing is the best (least) of them (``runs`` keeps every round's timings): another
job only ever adds time. The error is the largest of the rounds'.

Updates are uniform in [-1, 1) (``value_bound`` 1, the clip) from the keyed
stream. Every cell checks ``max_abs_error <= error_bound`` and raises
:class:`BenchmarkError` otherwise.

``targets`` holds issue 17's size bar: CKKS at most 20 bytes a parameter at the
documented precision (1e-6 of the clip), judged on the worst CKKS cell of the run
and naming it, so that a reader can recompute the verdict from the cells.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from secagg.aggregation import get_backend
from secagg.aggregation.local import RoundTimings, run_local_round
from secagg.apps.bench import (
    MAX_RUNS,
    MAX_VECTOR_LENGTH,
    emit,
    machine_info,
    print_markdown,
    whole_number,
)
from secagg.crypto.stream import KeyedStream
from secagg.he.params import CKKSParameters
from secagg.protocol.graph_params import MAX_NUM_CLIENTS

NS = (10, 100)
DS = (100_000, 1_000_000)
BACKEND_NAMES = ("plain", "secagg+", "ckks")
QUICK = {"ns": (4,), "ds": (10_000,)}
#: Issue 17: a CKKS upload of at most 20 bytes a parameter (one client's, headers included).
CKKS_BYTES_PER_PARAMETER_LIMIT = 20.0


class BenchmarkError(RuntimeError):
    """A backend returned a sum outside its documented error bound."""


def _options(name: str) -> dict[str, Any]:
    return {} if name == "plain" else {"value_bound": 1.0}


def packed_bytes_per_parameter(params: CKKSParameters) -> float:
    """The least bytes a parameter costs on the wire under ``params``: one packed
    ciphertext's bytes over the values it carries (two a slot, N in all).

    Why: the measured bytes of a cell include envelope headers and the empty slots of a
    vector's last chunk; this is the figure they approach as d grows, from the parameters
    alone, so a change of parameters shows beside the measurement instead of being
    inferred from it."""
    return params.packed_ciphertext_bytes() / params.values_per_ciphertext


def _ckks_parameters(backend: Any, n: int, d: int, details: dict[str, Any]) -> CKKSParameters:
    """The CKKS parameters the cell's round ran with: its spec's, checked against the
    ring and primes its report names (a bound from other parameters would mislead)."""
    params: CKKSParameters = backend.plan(n, d).design.parameters()
    ran = (details.get("poly_modulus_degree"), tuple(details.get("coeff_mod_bit_sizes", ())))
    if ran != (params.poly_modulus_degree, params.coeff_mod_bit_sizes):
        raise BenchmarkError(
            f"ckks n={n} d={d}: the round ran with N, primes {ran}, "
            f"the plan says {(params.poly_modulus_degree, params.coeff_mod_bit_sizes)}"
        )
    return params


class CPUTimings(RoundTimings):
    """:class:`RoundTimings` read from the CPU clock (``time.process_time``).

    Why: the machine the benchmarks run on is shared, and :class:`RoundTimings` times
    each role by the wall clock, which counts the time other jobs hold the cores."""

    clock = staticmethod(time.process_time)


#: The timings of one round, each reported as the best (least) over a cell's rounds.
TIMING_KEYS = (
    "client_seconds_median",
    "client_seconds_max",
    "server_seconds",
    "helper_seconds",
    "round_cpu_seconds",
)


def _timed_round(
    backend: Any, name: str, n: int, d: int, updates: np.ndarray
) -> tuple[dict[str, float], Any, float, float]:
    """One checked round: its timings, its report, its error and its largest payload."""
    timings = CPUTimings()
    started_cpu = time.process_time()
    total, report = run_local_round(backend, updates, timings=timings)
    round_cpu = time.process_time() - started_cpu
    error = float(np.max(np.abs(total - updates.sum(axis=0))))
    if error > report.error_bound:
        raise BenchmarkError(f"{name} n={n} d={d}: error {error:g} > bound {report.error_bound:g}")
    clients = list(timings.client_seconds.values())
    seconds = {
        "client_seconds_median": statistics.median(clients),
        "client_seconds_max": max(clients),
        "server_seconds": timings.server_seconds,
        "helper_seconds": timings.helper_seconds,
        "round_cpu_seconds": round_cpu,
    }
    return seconds, report, error, max(timings.largest_payload.values())


def _cell(name: str, n: int, d: int, updates: np.ndarray, repeats: int = 1) -> dict[str, Any]:
    backend = get_backend(name, **_options(name))
    runs = [_timed_round(backend, name, n, d, updates) for _ in range(repeats)]
    report = runs[-1][1]
    error = max(run[2] for run in runs)
    payload = max(run[3] for run in runs)
    bound = (
        packed_bytes_per_parameter(_ckks_parameters(backend, n, d, report.details))
        if name == "ckks"
        else None
    )
    return {
        "backend": name,
        "n": n,
        "d": d,
        "repeats": repeats,
        **{key: min(run[0][key] for run in runs) for key in TIMING_KEYS},
        "runs": [run[0] for run in runs],
        "bytes_per_parameter": payload / d,
        "bytes_per_parameter_bound": bound,
        "max_abs_error": error,
        "error_bound": report.error_bound,
        "details": report.details,
    }


def plan_grid(ns: Sequence[int], ds: Sequence[int], backends: Sequence[str]) -> None:
    """Plan every cell's round before any work; raises
    :class:`~secagg.errors.ConfigurationError` for one that cannot run.

    Why: ``bench ckks --n 100000000`` raised HEParameterError (no CKKS ring reaches the
    precision for that many clients) with a traceback, after the plaintext cells had run."""
    for n in ns:
        for d in ds:
            for name in backends:
                spec = get_backend(name, **_options(name)).plan(n, d)
                round_config = getattr(spec, "round_config", None)
                if round_config is not None:  # SecAgg+: k and t, as its server will pick
                    round_config()


def memory_bytes(n: int, d: int) -> int:
    """A lower bound on the memory of an (n, d) cell: the clients' float64 updates."""
    return 8 * n * d


def run_benchmark(
    *,
    ns: Sequence[int] = NS,
    ds: Sequence[int] = DS,
    backends: Sequence[str] = BACKEND_NAMES,
    progress: bool = True,
    repeats: int = 1,
) -> dict[str, Any]:
    """Run every (n, d, backend) cell, ``repeats`` rounds each (timings: the best);
    returns a JSON-ready dict."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cells = []
    for n in ns:
        for d in ds:
            updates = KeyedStream().uniform(n * d).reshape(n, d) * 2 - 1
            for name in backends:
                cell = _cell(name, n, d, updates, repeats)
                plain = next(
                    (c for c in cells if c["backend"] == "plain" and c["n"] == n and c["d"] == d),
                    None,
                )
                if plain is not None and plain["server_seconds"] > 0:
                    cell["server_vs_plain"] = cell["server_seconds"] / plain["server_seconds"]
                cells.append(cell)
                if progress:
                    print(
                        f"n={n} d={d} {name}: client {cell['client_seconds_median']:.3f} s, "
                        f"server {cell['server_seconds']:.3f} s, "
                        f"key holder {cell['helper_seconds']:.3f} s, "
                        f"{cell['bytes_per_parameter']:.1f} B/param, "
                        f"error {cell['max_abs_error']:.2e}",
                        file=sys.stderr,
                        flush=True,
                    )
            del updates
    return {
        "benchmark": "backends",
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "machine": machine_info(),
        "repeats": repeats,
        "clock": "cpu",
        "method": (__doc__ or "").split("\n\n", 1)[1],
        "cells": cells,
        "targets": targets(cells),
    }


def targets(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 17's CKKS size bar against the worst CKKS cell of the run (none without one)."""
    ckks = [c for c in cells if c["backend"] == "ckks"]
    if not ckks:
        return []
    worst = max(ckks, key=lambda c: c["bytes_per_parameter"])
    value = worst["bytes_per_parameter"]
    limit = CKKS_BYTES_PER_PARAMETER_LIMIT
    return [
        {
            "target": "ckks_bytes_per_parameter",
            "metric": "bytes_per_parameter",
            "limit": limit,
            "value": value,
            "ratio_to_limit": value / limit,
            "cells": len(ckks),
            "worst_cell": {"n": worst["n"], "d": worst["d"]},
            "pass": value <= limit,
        }
    ]


def markdown_table(result: dict[str, Any]) -> str:
    """A finished run as a Markdown table."""
    head = (
        "| n | d | backend | client (s, median) | server (s) | key holder (s) | "
        "round CPU (s) | bytes / parameter | bound now (bytes / parameter) | "
        "max abs error (clip = 1) | documented bound |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    repeats = result.get("repeats", 1)
    clock = "CPU" if result.get("clock") == "cpu" else "wall"  # wall before 2026-12-06
    best = f", the best of {repeats} rounds per cell" if repeats > 1 else ""
    head = f"Seconds: {clock} seconds{best}.\n\n" + head

    def cpu(cell: dict[str, Any]) -> str:
        value = cell.get("round_cpu_seconds")  # absent from runs before 2026-12-06
        return "-" if value is None else f"{value:.3f}"

    def bound(cell: dict[str, Any]) -> str:
        value = cell.get("bytes_per_parameter_bound")  # absent from runs before 2026-12-06
        return "-" if value is None else f"{value:.2f}"

    rows = [
        f"| {c['n']} | {c['d']:,} | {c['backend']} | {c['client_seconds_median']:.3f} | "
        f"{c['server_seconds']:.3f} | {c['helper_seconds']:.3f} | {cpu(c)} | "
        f"{c['bytes_per_parameter']:.2f} | {bound(c)} | {c['max_abs_error']:.2e} | "
        f"{c['error_bound']:.2e} |"
        for c in result["cells"]
    ]
    lines = [
        f"\n{t['target']}: worst {t['value']:.2f} (n = {t['worst_cell']['n']}, "
        f"d = {t['worst_cell']['d']:,}) against at most {t['limit']:g}: "
        f"{'pass' if t['pass'] else 'FAIL'}"
        for t in result.get("targets", ())
    ]
    return head + "\n".join(rows) + "\n" + "".join(line + "\n" for line in lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 4, d = 10 000: seconds")
    # bounded as ``secagg bench ckks`` bounds them. Why: --n 2 ran a round of two
    # clients, --d 0 was a ConfigurationError traceback (bench review, 2026-12-07)
    parser.add_argument("--n", type=whole_number(3, MAX_NUM_CLIENTS), action="append", dest="ns")
    parser.add_argument("--d", type=whole_number(1, MAX_VECTOR_LENGTH), action="append", dest="ds")
    parser.add_argument("--backend", action="append", dest="backends", choices=BACKEND_NAMES)
    parser.add_argument(
        "--repeats",
        type=whole_number(1, MAX_RUNS),
        default=1,
        help="rounds per cell, each timing the best of them (>= 1; default 1)",
    )
    parser.add_argument("--out", metavar="FILE")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--markdown", metavar="JSON", help="print an earlier run as a table")
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.markdown, markdown_table)
        return
    grid: dict[str, Any] = dict(QUICK) if args.quick else {}
    for key in ("ns", "ds", "backends"):
        if getattr(args, key):
            grid[key] = tuple(getattr(args, key))
    result = run_benchmark(**grid, progress=not args.no_progress, repeats=args.repeats)
    emit(result, args.out)


if __name__ == "__main__":
    main()
