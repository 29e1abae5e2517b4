"""``secagg bench scale``: thousands of clients in one round, in-process and on Ray, side by side.

For every client count n (default 1,000 and 5,000; d = 1e4, SecAgg+ with its default
neighbour count, 5 % of the clients vanishing at a random phase of the round, one
round) the benchmark runs the *same* round twice through the real runtime
(:func:`~secagg.runtime.ray_engine.run_clients`: a real federation server, real
clients, the seeded dropout schedule):

* **in-process**: one thread per client in one Python process (the simulator's
  default engine);
* **Ray**: the clients spread over ``workers`` Ray actors (local Ray instance, one
  CPU each), the server in the driver.

Each run happens in a fresh Python process (``--cell``), so the peak resident memory
it reports is that run's alone: the driver's (in-process: everything), and each Ray
worker's. Both runs drop the same clients at the same phases, and the rounds'
models must be identical bit for bit (the masks are fresh randomness but cancel
exactly); the benchmark fails loudly otherwise.

Then **slice-parallel unmasking** (``--unmask`` cell): the masks the server of such
a round expands at its close (each survivor's self-mask, each pair mask between a
dropped client and a surviving neighbour, counted from the round's parameters) are
removed from a d-word accumulator single-threaded, by threads, and by
:class:`~secagg.runtime.ray_slices.RayUnmasker` with 1..workers Ray workers, each
holding only its coordinate slice; reported per worker count: wall and CPU seconds,
the speed-up over one worker and each worker's peak memory. At d = 1e4 the whole
unmasking is milliseconds and Ray's task overhead dominates; the benchmark also
measures a d = 1e6 row (``--unmask-d``), where the slices pay.

Machine facts and the commands' parameters are in the JSON. Progress goes to
stderr; the JSON to stdout (and ``--out``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secagg.apps.bench import (
    MAX_VECTOR_LENGTH,
    MAX_WORKERS,
    emit,
    machine_info,
    whole_number,
)
from secagg.apps.json_output import dumps, loads
from secagg.protocol.graph_params import MAX_NUM_CLIENTS

NS = (1000, 5000)
D = 10_000
DROPOUT = 0.05
#: the largest vanishing share a cell takes (``secagg bench scale --dropout``'s bound)
MAX_DROPOUT = 0.5
SEED = 2026
UNMASK_DS = (10_000, 1_000_000)
QUICK = {"ns": (60,), "d": 1_000, "unmask_ds": (1_000, 200_000)}
#: generous: a phase at n = 5000 on a busy 2-core machine takes minutes, never hours
PHASE_SECONDS = 1800.0


class ScaleBenchmarkError(RuntimeError):
    """A cell failed, or the engines' rounds differ."""


def _log(message: str) -> None:
    print(f"[bench scale] {message}", file=sys.stderr, flush=True)


def _federation(n: int, d: int, state: Path) -> Any:
    from secagg.runtime.config import FederationConfig

    return FederationConfig.from_dict(
        {
            "federation": {
                "name": f"scale-{n}",
                "clients": [f"c{i:05d}" for i in range(n)],
                "dimension": d,
                "rounds": 1,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "deadlines": {
                "phase_seconds": PHASE_SECONDS,
                "training_seconds": PHASE_SECONDS,
                "round_seconds": 4 * PHASE_SECONDS,
            },
            "server": {"state": str(state)},
        }
    )


def run_cell(
    engine: str, n: int, d: int, dropout: float, seed: int, workers: int
) -> dict[str, Any]:
    """One round of ``n`` demo clients on ``engine``, in this process; its measurements."""
    from secagg.runtime.launch import demo_hook
    from secagg.runtime.ray_engine import hook_clients, run_clients
    from secagg.runtime.simnet import MASKING_PHASES, DropoutSchedule

    with tempfile.TemporaryDirectory(prefix="secagg-scale-") as tmp:
        state = Path(tmp) / "server.sqlite"
        config = _federation(n, d, state)
        clients = hook_clients(
            {name: functools.partial(demo_hook, name, d) for name in config.clients},
            dimension=d,
            # keyed rounding (simulation only): both engines round every update alike,
            # so their rounds must agree bit for bit
            replay_seed=hashlib.sha256(f"secagg/bench/scale/{seed}".encode()).digest(),
        )
        schedule = DropoutSchedule(dropout, seed, MASKING_PHASES) if dropout else None
        began = time.perf_counter()
        cpu = time.process_time()
        run = run_clients(
            config,
            clients,
            state,
            engine=engine,
            schedule=schedule,
            workers=workers if engine == "ray" else None,
            max_attempts=1,
            wait_for_clients=PHASE_SECONDS,
        )
        wall = time.perf_counter() - began
        driver_cpu = time.process_time() - cpu
    if len(run.results) != 1:
        raise ScaleBenchmarkError(f"{engine} n={n}: {len(run.results)} rounds instead of 1")
    result = run.results[0]
    return {
        "engine": engine,
        "n": n,
        "d": d,
        "dropout": dropout,
        "workers": run.workers,
        "status": result.status,
        "reason": result.reason,
        "contributed": len(result.contributed),
        "dropped": len(run.dropouts),
        "model_sha256": hashlib.sha256(np.ascontiguousarray(run.model).tobytes()).hexdigest(),
        "contributed_sha256": hashlib.sha256(
            "\n".join(sorted(result.contributed)).encode()
        ).hexdigest(),
        "wall_seconds": wall,
        "setup_seconds": run.setup_seconds,
        "round_seconds": run.run_seconds,
        # starting (or joining) Ray, and the engine's teardown: what remains of the wall
        "engine_start_stop_seconds": max(0.0, wall - run.setup_seconds - run.run_seconds),
        "driver_cpu_seconds": driver_cpu,
        "driver_peak_rss_mib": run.driver_peak_rss / 2**20,
        "worker_peak_rss_mib": [r / 2**20 for r in run.worker_peak_rss],
        "bytes_sent_per_client": sum(run.bytes_sent.values()) / max(1, n),
    }


def _mask_counts(n: int, dropout: float) -> tuple[int, int, int]:
    """(k, self masks, pair masks) the server of an n-client SecAgg+ round expands when
    ``dropout`` of the clients vanish before their masked input (the expected counts)."""
    from secagg.protocol.config import RoundConfig

    backend = _federation(n, 1, Path("unused.sqlite")).backend
    k = RoundConfig.create(
        n,
        1,
        graph="harary",
        corrupt_fraction=backend.corrupt_fraction,
        dropout_fraction=backend.dropout_fraction,
    ).degree
    dropped = round(dropout * n)
    survivors = n - dropped
    pairs = round(dropped * k * survivors / max(1, n - 1))
    return k, survivors, pairs


def _best_of(
    start: np.ndarray, remove: Callable[[np.ndarray], np.ndarray], repeats: int
) -> tuple[float, float, np.ndarray]:
    """The fastest wall and the fastest CPU seconds of ``remove`` on fresh copies of
    ``start`` (each its own minimum: the fastest wall run need not be the fastest CPU
    run), and its result."""
    best_wall = best_cpu = math.inf
    out = start
    for _ in range(repeats):
        acc = start.copy()
        cpu, began = time.process_time(), time.perf_counter()
        out = remove(acc)
        best_wall = min(best_wall, time.perf_counter() - began)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, out


def run_unmask(
    n: int, ds: Sequence[int], dropout: float, workers: int, repeats: int = 3
) -> dict[str, Any]:
    """Slice-parallel unmasking of an n-client round's masks at each d: single pass,
    threads, and Ray with 1..workers workers (best of ``repeats``); checks equality."""
    from secagg.crypto import prg
    from secagg.runtime.ray_engine import ray_session
    from secagg.runtime.ray_slices import RayUnmasker

    k, self_masks, pair_masks = _mask_counts(n, dropout)
    rows: list[dict[str, Any]] = []
    with ray_session(num_cpus=workers):
        for d in ds:
            add = [os.urandom(16) for _ in range(pair_masks // 2)]
            subtract = [os.urandom(16) for _ in range(self_masks + pair_masks - len(add))]
            start = prg.expand_into(os.urandom(16), np.empty(d, dtype=np.uint32))
            single = _best_of(
                start, functools.partial(prg.accumulate_masks, add=add, subtract=subtract), repeats
            )
            reference = single[2]
            row: dict[str, Any] = {
                "n": n,
                "d": d,
                "k": k,
                "masks": len(add) + len(subtract),
                "keystream_mib": (len(add) + len(subtract)) * d * 4 / 2**20,
                "single_seconds": single[0],
                "single_cpu_seconds": single[1],
                "threads": [],
                "ray": [],
            }
            for w in range(1, workers + 1):
                threads = functools.partial(
                    prg.accumulate_masks, add=add, subtract=subtract, workers=w
                )
                wall, _, out = _best_of(start, threads, repeats)
                if not np.array_equal(out, reference):
                    raise ScaleBenchmarkError(f"threads w={w} changed the sum at d={d}")
                row["threads"].append({"workers": w, "seconds": wall, "speedup": single[0] / wall})
            for w in range(1, workers + 1):
                unmasker = RayUnmasker(w)
                on_ray = functools.partial(unmasker, add=add, subtract=subtract)
                wall, _, out = _best_of(start, on_ray, repeats)
                if not np.array_equal(out, reference):
                    raise ScaleBenchmarkError(f"Ray w={w} changed the sum at d={d}")
                row["ray"].append(
                    {
                        "workers": w,
                        "seconds": wall,
                        "speedup_over_one_worker": None,
                        "speedup_over_single_pass": single[0] / wall,
                        "worker_seconds": [s.seconds for s in unmasker.last],
                        "worker_peak_rss_mib": [s.peak_rss_bytes / 2**20 for s in unmasker.last],
                        "slice_words": [s.stop - s.start for s in unmasker.last],
                        # within one chunk the masks, not the coordinates, are split
                        "worker_masks": [s.masks for s in unmasker.last],
                    }
                )
            one = row["ray"][0]["seconds"]
            for entry in row["ray"]:
                entry["speedup_over_one_worker"] = one / entry["seconds"]
            rows.append(row)
            _log(
                f"unmask n={n} d={d}: {row['masks']} masks, single {single[0]:.3f} s, "
                + ", ".join(f"ray w={e['workers']} {e['seconds']:.3f} s" for e in row["ray"])
            )
    return {"n": n, "dropout": dropout, "rows": rows}


def _child(args: list[str]) -> dict[str, Any]:
    """Run one cell in a fresh Python process (so its peak memory is its own)."""
    command = [sys.executable, "-m", "secagg.apps.bench.scale", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ScaleBenchmarkError(f"cell {' '.join(args)} failed ({done.returncode}): {last}")
    return dict(loads(done.stdout.strip().splitlines()[-1]))


def run_benchmark(
    ns: Sequence[int] = NS,
    d: int = D,
    dropout: float = DROPOUT,
    workers: int | None = None,
    unmask_ds: Sequence[int] = UNMASK_DS,
    seed: int = SEED,
) -> dict[str, Any]:
    """Every cell, each in its own process; the engines compared per n."""
    workers = workers or max(1, len(os.sched_getaffinity(0)))
    began = time.perf_counter()
    cells: list[dict[str, Any]] = []
    for n in ns:
        pair: dict[str, dict[str, Any]] = {}
        for engine in ("inprocess", "ray"):
            _log(f"n={n} d={d} on {engine}...")
            cell = _child(
                ["--cell", engine, "--n", str(n), "--d", str(d), "--dropout", str(dropout),
                 "--seed", str(seed), "--workers", str(workers)]
            )  # fmt: skip
            _log(
                f"n={n} on {engine}: {cell['status']}, {cell['wall_seconds']:.1f} s, "
                f"driver {cell['driver_peak_rss_mib']:.0f} MiB"
            )
            pair[engine] = cell
        same = (
            pair["inprocess"]["model_sha256"] == pair["ray"]["model_sha256"]
            and pair["inprocess"]["contributed_sha256"] == pair["ray"]["contributed_sha256"]
        )
        if not same:
            raise ScaleBenchmarkError(f"n={n}: the engines' rounds differ")
        cells.append(
            {
                "n": n,
                "d": d,
                "dropout": dropout,
                "identical_rounds": same,
                "inprocess": pair["inprocess"],
                "ray": pair["ray"],
                "ray_over_inprocess_wall": pair["ray"]["wall_seconds"]
                / pair["inprocess"]["wall_seconds"],
            }
        )
    unmask = _child(
        ["--unmask", "--n", str(max(ns)), "--dropout", str(dropout), "--workers", str(workers)]
        + [arg for u in unmask_ds for arg in ("--unmask-d", str(u))]
    )
    return {
        "benchmark": "scale",
        "machine": machine_info(),
        "parameters": {
            "ns": list(ns),
            "d": d,
            "dropout": dropout,
            "workers": workers,
            "seed": seed,
            "rounds": 1,
            "backend": "secagg+",
        },
        "cells": cells,
        "unmasking": unmask,
        "seconds": time.perf_counter() - began,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The engines side by side, then the unmasking speed-ups."""
    lines = [
        "| n | d | engine | workers | round | wall s | of which the round s "
        "| driver peak MiB | worker peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cell in result["cells"]:
        for engine in ("inprocess", "ray"):
            c = cell[engine]
            peaks = ", ".join(f"{m:.0f}" for m in c["worker_peak_rss_mib"]) or "-"
            lines.append(
                f"| {c['n']} | {c['d']} | {engine} | {c['workers']} | {c['status']} "
                f"({c['contributed']} in) | {c['wall_seconds']:.1f} | {c['round_seconds']:.1f} | "
                f"{c['driver_peak_rss_mib']:.0f} | {peaks} |"
            )
    lines += [
        "",
        "| n | d | masks | single pass s | Ray workers: s (speed-up over 1 worker) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["unmasking"]["rows"]:
        ray = ", ".join(
            f"{e['workers']}: {e['seconds']:.3f} ({e['speedup_over_one_worker']:.2f}x)"
            for e in row["ray"]
        )
        lines.append(
            f"| {row['n']} | {row['d']} | {row['masks']} | {row['single_seconds']:.3f} | {ray} |"
        )
    return "\n".join(lines) + "\n"


def _dropout_fraction(text: str) -> float:
    """``--dropout``'s value: a finite share in [0, :data:`MAX_DROPOUT`], as
    ``secagg bench scale`` takes it.

    Why: this module's own parser (the cells' entry, and ``python -m
    secagg.apps.bench.scale``) took any float: ``--dropout nan`` ran a round with 7 of
    10 clients gone and printed ``"dropout": NaN``, a token no strict JSON reader takes,
    and ``--dropout inf`` dropped them all (bench review, 2026-12-06)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= MAX_DROPOUT):
        raise argparse.ArgumentTypeError(
            f"{text} is not a share between 0 and {MAX_DROPOUT} (the clients that vanish)"
        )
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    # at least 3 clients, as the CLI; at most what a SecAgg+ round can be planned for
    clients = whole_number(3, MAX_NUM_CLIENTS)
    length = whole_number(1, MAX_VECTOR_LENGTH)
    parser.add_argument("--quick", action="store_true", help="60 clients, d = 1000: seconds")
    parser.add_argument("--n", type=clients, action="append", dest="ns", help="repeatable")
    parser.add_argument("--d", type=length, default=None)
    parser.add_argument("--dropout", type=_dropout_fraction, default=DROPOUT)
    parser.add_argument(
        "--workers",
        type=whole_number(1, MAX_WORKERS),
        default=None,
        help="Ray workers (default: CPUs)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--unmask-d", type=length, action="append", dest="unmask_ds")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--markdown", metavar="JSON", help="print an earlier run as Markdown")
    parser.add_argument("--cell", choices=("inprocess", "ray"), help=argparse.SUPPRESS)
    parser.add_argument("--unmask", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.markdown:
        from secagg.apps.bench import print_markdown

        print_markdown(args.markdown, markdown_table)
        return
    workers = args.workers or max(1, len(os.sched_getaffinity(0)))
    if args.cell or args.unmask:
        # one cell measures one n: a missing --n was a TypeError traceback, a second
        # one was ignored without a word
        if len(args.ns or ()) != 1:
            parser.error(f"{'--cell' if args.cell else '--unmask'} takes exactly one --n")
    if args.cell:
        cell = run_cell(args.cell, args.ns[0], args.d or D, args.dropout, args.seed, workers)
        print(dumps(cell, indent=None), flush=True)
        return
    if args.unmask:
        unmask_ds = tuple(args.unmask_ds or UNMASK_DS)  # none given was a TypeError traceback
        unmasking = run_unmask(args.ns[0], unmask_ds, args.dropout, workers)
        print(dumps(unmasking, indent=None), flush=True)
        return
    quick: dict[str, Any] = dict(QUICK) if args.quick else {}
    result = run_benchmark(
        ns=tuple(args.ns or quick.get("ns", NS)),
        d=args.d or quick.get("d", D),
        dropout=args.dropout,
        workers=workers,
        unmask_ds=tuple(args.unmask_ds or quick.get("unmask_ds", UNMASK_DS)),
        seed=args.seed,
    )
    emit(result, args.out)


if __name__ == "__main__":
    main()
