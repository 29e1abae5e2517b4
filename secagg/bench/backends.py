"""Backend benchmark: CKKS next to masking and plaintext, through the one interface.

For each (n, d) and backend (``plain``, ``secagg+``, ``ckks`` by default) one
round runs through :class:`~secagg.aggregation.RoundAggregator`, streaming:
each client's contribution is encoded, received and released before the next,
as a server would see them arrive. Reported per cell:

* ``client_encode_seconds_median`` / ``_max``: one client's
  ``encoder.encode(update)`` (CKKS: encode and encrypt; masking: fixed point
  and masking; plain: serialisation);
* ``server_receive_seconds``: all ``receive`` calls (CKKS: parse and add the
  ciphertexts; masking: decode and add the masked vector; plain: add);
* ``server_finish_seconds``: ``finish`` (CKKS: the key holder decrypts the
  sum; masking: unmasking; plain: nothing);
* ``bytes_per_parameter``: the contribution's wire size divided by d;
* ``max_abs_error`` and ``error_bound``: the result against the float64 sum,
  and the backend's documented bound;
* ``backend_setup_seconds``: ``start_round`` (CKKS: key generation; masking:
  the key phases), listed apart.

Updates are uniform in [-1, 1) (``value_bound`` 1, the clip) from the keyed
stream. Every cell checks ``max_abs_error <= error_bound`` and raises
:class:`BenchmarkError` otherwise. Client times for large cells are sampled:
every client encodes (the server needs the contributions), all are timed.
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
from secagg.bench import emit, machine_info, print_markdown
from secagg.crypto.stream import KeyedStream

NS = (10, 100)
DS = (100_000, 1_000_000)
BACKEND_NAMES = ("plain", "secagg+", "ckks")
QUICK = {"ns": (4,), "ds": (10_000,)}


class BenchmarkError(RuntimeError):
    """A backend returned a sum outside its documented error bound."""


def _options(name: str) -> dict[str, Any]:
    return {} if name == "plain" else {"value_bound": 1.0}


def _cell(name: str, n: int, d: int, updates: np.ndarray) -> dict[str, Any]:
    backend = get_backend(name, **_options(name))
    start = time.perf_counter()
    round_ = backend.start_round(n, d)
    setup = time.perf_counter() - start
    encode_times, receive_total, wire_bytes = [], 0.0, 0
    for party in range(n):
        encoder = round_.encoder(party)
        start = time.perf_counter()
        blob = encoder.encode(updates[party])
        encode_times.append(time.perf_counter() - start)
        wire_bytes = max(wire_bytes, len(blob))
        start = time.perf_counter()
        round_.receive(party, blob)
        receive_total += time.perf_counter() - start
        del blob
    start = time.perf_counter()
    total, report = round_.finish()
    finish = time.perf_counter() - start
    error = float(np.max(np.abs(total - updates.sum(axis=0))))
    if error > report.error_bound:
        raise BenchmarkError(f"{name} n={n} d={d}: error {error:g} > bound {report.error_bound:g}")
    return {
        "backend": name,
        "n": n,
        "d": d,
        "backend_setup_seconds": setup,
        "client_encode_seconds_median": statistics.median(encode_times),
        "client_encode_seconds_max": max(encode_times),
        "server_receive_seconds": receive_total,
        "server_finish_seconds": finish,
        "server_seconds": receive_total + finish,
        "bytes_per_parameter": wire_bytes / d,
        "max_abs_error": error,
        "error_bound": report.error_bound,
        "details": report.details,
    }


def run_benchmark(
    *,
    ns: Sequence[int] = NS,
    ds: Sequence[int] = DS,
    backends: Sequence[str] = BACKEND_NAMES,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every (n, d, backend) cell; returns a JSON-ready dict."""
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cells = []
    for n in ns:
        for d in ds:
            updates = KeyedStream().uniform(n * d).reshape(n, d) * 2 - 1
            for name in backends:
                cell = _cell(name, n, d, updates)
                plain = next(
                    (c for c in cells if c["backend"] == "plain" and c["n"] == n and c["d"] == d),
                    None,
                )
                if plain is not None and plain["server_seconds"] > 0:
                    cell["server_vs_plain"] = cell["server_seconds"] / plain["server_seconds"]
                cells.append(cell)
                if progress:
                    print(
                        f"n={n} d={d} {name}: client {cell['client_encode_seconds_median']:.3f} s, "
                        f"server {cell['server_receive_seconds']:.3f} + "
                        f"{cell['server_finish_seconds']:.3f} s, "
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
        "method": (__doc__ or "").split("\n\n", 1)[1],
        "cells": cells,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """A finished run as a Markdown table."""
    head = (
        "| n | d | backend | client encode (s) | server receive (s) | server finish (s) | "
        "bytes / parameter | max abs error (clip = 1) | documented bound |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = [
        f"| {c['n']} | {c['d']:,} | {c['backend']} | {c['client_encode_seconds_median']:.3f} | "
        f"{c['server_receive_seconds']:.3f} | {c['server_finish_seconds']:.3f} | "
        f"{c['bytes_per_parameter']:.1f} | {c['max_abs_error']:.2e} | {c['error_bound']:.2e} |"
        for c in result["cells"]
    ]
    return head + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 4, d = 10 000: seconds")
    parser.add_argument("--n", type=int, action="append", dest="ns")
    parser.add_argument("--d", type=int, action="append", dest="ds")
    parser.add_argument("--backend", action="append", dest="backends", choices=BACKEND_NAMES)
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
    result = run_benchmark(**grid, progress=not args.no_progress)
    emit(result, args.out)


if __name__ == "__main__":
    main()
