"""DP benchmark: what each privacy step costs a client, next to one plaintext pass.

For each vector length d the benchmark times, on one client's update of d
float values (median of several runs, each on fresh random data):

* ``clip_l2``: L2 clipping (norm, scale, re-check);
* ``encode_fixed_point``: scale, stochastic rounding from the keyed stream, wrap
  into Z_{2^32};
* ``rotate``: the randomized Hadamard rotation (padding to a power of two
  included; the per-round sign vector is built outside the timing, as a client
  does once per round);
* ``discrete_gaussian_noise``: the exact discrete Gaussian sampler, one sample
  per padded coordinate at the scale distributed DP uses (n = 100 clients);
* ``gaussian_noise``: the continuous Gaussian sampler (the server's central
  noise, once per round on the sum; listed for comparison);
* ``distributed_encode``: the distributed discrete Gaussian's whole client
  pipeline (rotate, clip, scale, conditional rounding, noise, wrap);

and, in the same run, the *plaintext pass*: one in-place float32 addition of the
vector into an accumulator (what a plaintext aggregator spends per client), the
fastest of 21 runs, since it is the floor the steps are measured against. Every
step is reported in seconds (median of its runs) and as a ratio to that pass.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from secagg.apps.bench import emit, machine_info, print_markdown
from secagg.crypto.stream import KeyedStream
from secagg.dp.clipping import clip_l2
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.noise import discrete_gaussian, gaussian
from secagg.encoding import FixedPoint, RandomizedHadamard

DIMENSIONS = (100_000, 1_000_000)
QUICK_DIMENSIONS = (10_000,)
CLIENTS = 100  # cohort the noise scale is sized for
CLIP = 1.0
NOISE_MULTIPLIER = 1.0


def _median_seconds(work: Callable[[], Any], runs: int, setup: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(runs):
        setup()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def _update(d: int) -> np.ndarray:
    """A fresh update of norm about 3 (so clipping to 1 does work), from the keyed stream."""
    x = gaussian(3.0 / math.sqrt(d), d)
    return x


def _measure(d: int, runs: int, progress: bool) -> dict[str, Any]:
    """Every step's seconds and ratio to the plaintext pass, for one vector length."""
    mechanism = DistributedDiscreteGaussian(
        dimension=d, clip=CLIP, noise_multiplier=NOISE_MULTIPLIER, expected_clients=CLIENTS
    )
    seed = os.urandom(16)
    rotation = RandomizedHadamard(d, seed)
    fixed = FixedPoint(scale=mechanism.scale, bits=32)
    sigma2 = mechanism.local_sigma**2
    state: dict[str, Any] = {}

    def fresh() -> None:
        state["x"] = _update(d)
        state["acc"] = np.zeros(d, dtype=np.float32)
        state["x32"] = state["x"].astype(np.float32)
        state["clipped"] = clip_l2(state["x"], CLIP).vector

    plain = _median_seconds(lambda: np.add(state["acc"], state["x32"], out=state["acc"]), 21, fresh)
    steps: dict[str, Callable[[], Any]] = {
        "clip_l2": lambda: clip_l2(state["x"], CLIP),
        "encode_fixed_point": lambda: fixed.encode(state["clipped"], KeyedStream()),
        "rotate": lambda: rotation.rotate(state["x"]),
        "discrete_gaussian_noise": lambda: discrete_gaussian(
            sigma2, mechanism.padded, KeyedStream()
        ),
        "gaussian_noise": lambda: gaussian(1.0, d, KeyedStream()),
        "distributed_encode": lambda: mechanism.encode(state["x"], seed),
    }
    cell: dict[str, Any] = {
        "d": d,
        "padded_d": mechanism.padded,
        "scale": mechanism.scale,
        "local_sigma": mechanism.local_sigma,
        # the floor every step is divided by: its fastest run (a median would let a slow
        # spell of the host during the pass make every step look cheaper)
        "plaintext_pass_seconds": min(plain),
        "plaintext_pass_seconds_runs": plain,
    }
    for name, work in steps.items():
        times = _median_seconds(work, runs, fresh)
        cell[f"{name}_seconds"] = statistics.median(times)
        cell[f"{name}_seconds_runs"] = times
        cell[f"{name}_vs_plaintext"] = statistics.median(times) / cell["plaintext_pass_seconds"]
        if progress:
            print(
                f"d={d}: {name} {cell[f'{name}_seconds']:.4f} s "
                f"(x{cell[f'{name}_vs_plaintext']:.0f} plaintext pass)",
                file=sys.stderr,
                flush=True,
            )
    return cell


def run_benchmark(
    *, dimensions: Sequence[int] = DIMENSIONS, runs: int = 5, progress: bool = True
) -> dict[str, Any]:
    """Time each DP step per client for each d; returns a JSON-ready dict."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    cells = []
    for d in dimensions:
        if d < 1:
            raise ValueError("dimensions must be positive")
        cells.append(_measure(d, runs, progress))
    return {
        "benchmark": "dp",
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "machine": machine_info(),
        "setting": {
            "clients": CLIENTS,
            "clip": CLIP,
            "noise_multiplier": NOISE_MULTIPLIER,
            "bits": 32,
            "runs": runs,
        },
        "method": (__doc__ or "").split("\n\n", 1)[1],
        "cells": cells,
    }


STEPS = (
    "clip_l2",
    "encode_fixed_point",
    "rotate",
    "discrete_gaussian_noise",
    "gaussian_noise",
    "distributed_encode",
)


def markdown_table(result: dict[str, Any]) -> str:
    """A finished run as a Markdown table: seconds and ratio to the plaintext pass."""
    cells = result["cells"]
    head = "| step | " + " | ".join(f"d = {c['d']:,}" for c in cells) + " |\n"
    head += "| --- |" + " --- |" * len(cells) + "\n"
    rows = [
        "| plaintext pass (float32 add) | "
        + " | ".join(f"{c['plaintext_pass_seconds'] * 1e3:.3f} ms" for c in cells)
        + " |"
    ]
    for step in STEPS:
        values = " | ".join(
            f"{c[step + '_seconds']:.4f} s (x{c[step + '_vs_plaintext']:.0f})" for c in cells
        )
        rows.append(f"| `{step}` | {values} |")
    return head + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="d = 10 000 only, seconds")
    parser.add_argument("--d", type=int, action="append", dest="dimensions", help="repeatable")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--markdown", metavar="JSON", help="print an earlier run as a table")
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.markdown, markdown_table)
        return
    dims = args.dimensions or (QUICK_DIMENSIONS if args.quick else DIMENSIONS)
    result = run_benchmark(dimensions=dims, runs=args.runs, progress=not args.no_progress)
    emit(result, args.out)


if __name__ == "__main__":
    main()
