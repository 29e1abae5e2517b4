"""Masking benchmark: what secure aggregation costs next to a plaintext sum.

For every cell of the grid (clients n, vector length d, dropout fraction, graph)
the real :class:`~secagg.protocol.Client` and :class:`~secagg.protocol.Server`
objects run a round, and the benchmark reports

* client masking time: one client's handling of its share delivery, which opens
  its neighbours' sealed shares and produces the masked vector (median over all
  clients);
* server time: summing the masked inputs as they arrive, closing the phase, and
  unmasking (reconstructing secrets, checking them, removing every mask);
* server peak memory (tracemalloc: Python objects and numpy buffers allocated by
  the server's own calls, in a separate traced replay so timings are untraced);
* measured in the same run: the plaintext float32 sum of the same vectors (one
  vector at a time into a float32 buffer), the raw AES-CTR rate of the PRG and
  the time of one vector addition, and from them the unmasking *bound*: the
  keystream the server must expand (each survivor's self-mask, each pair mask
  between a dropped client and a surviving neighbour) at the raw AES-CTR rate,
  plus one addition per expanded vector.

The clients' vectors are float32 values; the protocol sums their 32-bit patterns
(masking does not care what the words mean), so the secure and plaintext sums
read exactly the same memory. Every cell checks the unmasked sum against numpy's
modular sum of the included clients and fails loudly if it differs.

To keep the expensive complete graph at n = 1000 affordable, the clients run once
per (n, d, graph, tolerated dropout) and the server is replayed from a copy taken
after key sharing for each dropout level (dropouts happen before the masked
input, so the replays are genuine rounds). Dropout 0 and 0.1 use the default
parameters (tolerating 10%); dropout 0.3 uses parameters chosen to tolerate 30%,
as a deployment expecting that much dropout would.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import secrets
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import numpy as np

from secagg.crypto.prg import expand_into
from secagg.protocol import Client, RoundConfig, Server, ServerPhase
from secagg.protocol.messages import MaskedInput, ServerMessage, ShareDelivery

DEFAULT_TOLERATED_DROPOUT = 0.10
GRID: dict[str, tuple[Any, ...]] = {
    "ns": (100, 1000),
    "ds": (100_000, 1_000_000),
    "dropouts": (0.0, 0.1, 0.3),
    "graphs": ("complete", "harary"),
}
QUICK_GRID: dict[str, tuple[Any, ...]] = {
    "ns": (20, 50),
    "ds": (10_000,),
    "dropouts": (0.0, 0.1, 0.3),
    "graphs": ("complete", "harary"),
}
TARGETS = {
    "server_vs_plaintext": 4.0,  # n=100, d=1e6, no dropout
    "unmasking_vs_bound": 1.5,  # SecAgg+, 10% dropout
    "server_peak_bytes": 1 << 30,  # n=1000, d=1e6
    "client_masking_seconds": 0.5,  # SecAgg+, n=1000, d=1e6
}


def _log(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _random_floats(n: int, d: int) -> np.ndarray:
    """n x d float32 values in [-1, 1), drawn from the AES-CTR PRG (fast, no numpy.random)."""
    words = expand_into(os.urandom(16), np.empty(n * d, dtype=np.uint32))
    floats = words.view(np.float32)
    np.multiply(words >> np.uint32(8), np.float32(2.0**-23), out=floats, casting="unsafe")
    floats -= np.float32(1.0)
    return floats.reshape(n, d)


def _aes_rate(d: int, seconds: float = 0.3) -> float:
    """Raw PRG throughput in bytes per second over a d-word buffer."""
    buf = np.empty(d, dtype=np.uint32)
    seed = os.urandom(16)
    expand_into(seed, buf)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        expand_into(seed, buf)
        done += buf.nbytes
    return done / (time.perf_counter() - start)


def _add_seconds(d: int, repeats: int = 20) -> float:
    """Time of one in-place addition of a d-word vector (from memory) into an accumulator."""
    acc = np.zeros(d, dtype=np.uint32)
    vec = expand_into(os.urandom(16), np.empty(d, dtype=np.uint32))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.add(acc, vec, out=acc)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plaintext_seconds(floats: np.ndarray, included: Sequence[int]) -> float:
    """The baseline: the same vectors as float32, summed one at a time."""
    total = np.zeros(floats.shape[1], dtype=np.float32)
    start = time.perf_counter()
    for p in included:
        np.add(total, floats[p], out=total)
    return time.perf_counter() - start


class _Traced:
    """Peak tracemalloc bytes over several separately traced stretches of server work."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.retained = 0
        self.peak = 0

    def __enter__(self) -> _Traced:
        if self.enabled:
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.peak = max(self.peak, self.retained + peak)
        self.retained += current


def _prepare(n: int, d: int, graph: str, tolerated: float, floats: np.ndarray) -> dict[str, Any]:
    """Run setup, key sharing and masking once; keep the server before masked inputs."""
    config = RoundConfig.create(n, d, graph=graph, dropout_fraction=tolerated)  # type: ignore[arg-type]
    inputs = floats.view(np.uint32)
    server = Server(config)
    clients = [Client(p, inputs[p]) for p in range(n)]
    memory = _Traced(enabled=True)
    with memory:
        outgoing: list[ServerMessage] = server.start()
    for _ in range(2):  # advertise keys, share keys
        replies = [r for m in outgoing for r in clients[m.recipient].handle(m)]
        with memory:
            outgoing = []
            for reply in replies:
                outgoing.extend(server.handle(reply))
        del replies
    assert server.phase == ServerPhase.MASKED_INPUT
    masked: list[MaskedInput] = []
    masking_times: list[float] = []
    for delivery in outgoing:
        assert isinstance(delivery, ShareDelivery)
        start = time.perf_counter()
        (reply,) = clients[delivery.recipient].handle(delivery)
        masking_times.append(time.perf_counter() - start)
        assert isinstance(reply, MaskedInput)
        masked.append(reply)
    return {
        "config": config,
        "server": server,
        "clients": clients,
        "masked": masked,
        "masking_times": masking_times,
        "early_memory": memory,
    }


def _client_copies(clients: list[Client]) -> list[Client]:
    """Fresh copies of the clients (key objects shared: they are never mutated)."""
    memo: dict[int, Any] = {}
    for c in clients:
        for pair in (c._channel, c._mask):
            if pair is not None:
                memo[id(pair.private)] = pair.private
    return copy.deepcopy(clients, memo)


def _replay(prepared: dict[str, Any], dropped: set[int], traced: bool) -> dict[str, Any]:
    """One genuine round from the saved server state, with ``dropped`` silent at input."""
    server: Server = copy.deepcopy(prepared["server"])
    clients = _client_copies(prepared["clients"])
    memory = _Traced(enabled=traced)
    timings: dict[str, float] = {}
    with memory:
        start = time.perf_counter()
        requests: list[ServerMessage] = []
        for message in prepared["masked"]:
            if message.sender not in dropped:
                requests.extend(server.handle(message))
        timings["sum"] = time.perf_counter() - start
        start = time.perf_counter()
        if not requests:
            requests = server.close_phase()
        timings["close"] = time.perf_counter() - start
    answers = [a for m in requests for a in clients[m.recipient].handle(m)]
    with memory:
        start = time.perf_counter()
        for answer in answers:
            server.handle(answer)
        if server.phase == ServerPhase.UNMASKING:
            server.close_phase()
        timings["unmask"] = time.perf_counter() - start
    return {"server": server, "timings": timings, "memory": memory}


def _keystream_masks(server: Server) -> int:
    """Vectors the server must expand at unmasking: self-masks plus dropout pair masks."""
    report = server.report
    survivors = set(report.included)
    dropped = set(report.responders.get("share_keys", ())) - survivors
    pair = sum(len(server.graph.neighbours(u) & survivors) for u in dropped)
    return len(survivors) + pair


def run_cell(
    prepared: dict[str, Any],
    floats: np.ndarray,
    dropout: float,
    aes_rate: float,
    add_seconds: float,
) -> dict[str, Any]:
    config: RoundConfig = prepared["config"]
    n, d = config.num_clients, config.vector_length
    rng = secrets.SystemRandom()
    dropped = set(rng.sample(range(n), round(dropout * n)))
    timed = _replay(prepared, dropped, traced=False)
    server: Server = timed["server"]
    if server.phase != ServerPhase.COMPLETE:
        return {"status": "aborted", "abort_reason": server.report.abort_reason}
    included = list(server.report.included)
    inputs = floats.view(np.uint32)
    expected = np.zeros(d, dtype=np.uint32)
    for p in included:
        np.add(expected, inputs[p], out=expected)
    if not np.array_equal(server.result(), expected):
        raise AssertionError(f"wrong sum in cell n={n} d={d} dropout={dropout}")
    traced = _replay(prepared, dropped, traced=True)
    early: _Traced = prepared["early_memory"]
    late: _Traced = traced["memory"]
    # the late replay starts from a copy of the state the early phases left behind
    peak = max(early.peak, early.retained + late.peak)
    t = timed["timings"]
    server_total = t["sum"] + t["close"] + t["unmask"]
    plaintext = _plaintext_seconds(floats, included)
    masks = _keystream_masks(server)
    vector_bytes = d * 4
    bound = masks * (vector_bytes / aes_rate + add_seconds)
    return {
        "status": "complete",
        "correct": True,
        "included": len(included),
        "dropped": len(dropped),
        "client_masking_seconds_median": statistics.median(prepared["masking_times"]),
        "client_masking_seconds_max": max(prepared["masking_times"]),
        "server_sum_seconds": t["sum"],
        "server_close_seconds": t["close"],
        "server_unmasking_seconds": t["unmask"],
        "server_total_seconds": server_total,
        "server_peak_bytes": peak,
        "plaintext_float32_sum_seconds": plaintext,
        "server_vs_plaintext": server_total / plaintext,
        "unmasking_keystream_vectors": masks,
        "unmasking_bound_seconds": bound,
        "unmasking_vs_bound": t["unmask"] / bound,
    }


def run_benchmark(
    *,
    ns: Sequence[int] = GRID["ns"],
    ds: Sequence[int] = GRID["ds"],
    dropouts: Sequence[float] = GRID["dropouts"],
    graphs: Sequence[str] = GRID["graphs"],
    bits: int = 32,
    repeats: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the grid; returns a JSON-ready dict with every cell and the target checks."""
    if bits != 32:
        raise ValueError("the benchmark compares with float32 sums: bits must be 32")
    started = time.perf_counter()
    cells: list[dict[str, Any]] = []
    rates: dict[int, dict[str, float]] = {}
    for d in sorted(set(ds)):
        rates[d] = {"aes_ctr_bytes_per_second": _aes_rate(d), "add_seconds": _add_seconds(d)}
        _log(f"d={d}: AES-CTR {rates[d]['aes_ctr_bytes_per_second'] / 1e9:.2f} GB/s", progress)
    for n in ns:
        for d in ds:
            floats = _random_floats(n, d)
            for graph in graphs:
                levels: dict[float, list[float]] = {}
                for dropout in dropouts:
                    tolerated = max(DEFAULT_TOLERATED_DROPOUT, dropout)
                    levels.setdefault(tolerated, []).append(dropout)
                for tolerated, cell_dropouts in levels.items():
                    t0 = time.perf_counter()
                    prepared = _prepare(n, d, graph, tolerated, floats)
                    config: RoundConfig = prepared["config"]
                    _log(
                        f"n={n} d={d} {graph} (k={config.degree}, t={config.threshold}): "
                        f"clients done in {time.perf_counter() - t0:.1f} s",
                        progress,
                    )
                    for dropout in cell_dropouts:
                        for rep in range(repeats):
                            t1 = time.perf_counter()
                            result = run_cell(
                                prepared,
                                floats,
                                dropout,
                                rates[d]["aes_ctr_bytes_per_second"],
                                rates[d]["add_seconds"],
                            )
                            cell = {
                                "n": n,
                                "d": d,
                                "graph": graph,
                                "dropout": dropout,
                                "repeat": rep,
                                "tolerated_dropout": tolerated,
                                "k": config.degree,
                                "threshold": config.threshold,
                                **rates[d],
                                **result,
                            }
                            cells.append(cell)
                            _log(
                                f"  dropout={dropout}: {result['status']}, server "
                                f"{result.get('server_total_seconds', 0):.3f} s, plaintext "
                                f"{result.get('plaintext_float32_sum_seconds', 0):.3f} s "
                                f"({time.perf_counter() - t1:.1f} s)",
                                progress,
                            )
                    del prepared
            del floats
    return {
        "benchmark": "masking",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "memory_method": "tracemalloc peak over the server's own calls (separate traced replay)",
        "seconds": time.perf_counter() - started,
        "cells": cells,
        "targets": _targets(cells),
    }


def _find(cells: list[dict[str, Any]], **where: Any) -> dict[str, Any] | None:
    for cell in cells:
        if all(cell.get(k) == v for k, v in where.items()) and cell.get("status") == "complete":
            return cell
    return None


def _targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's four targets, where the grid contains their cells."""
    out: list[dict[str, Any]] = []
    checks = [
        (
            "server work <= 4x plaintext float32 sum (n=100, d=1e6, no dropout, SecAgg+)",
            {"n": 100, "d": 1_000_000, "dropout": 0.0, "graph": "harary"},
            "server_vs_plaintext",
            TARGETS["server_vs_plaintext"],
        ),
        (
            "server work <= 4x plaintext float32 sum (n=100, d=1e6, no dropout, SecAgg)",
            {"n": 100, "d": 1_000_000, "dropout": 0.0, "graph": "complete"},
            "server_vs_plaintext",
            TARGETS["server_vs_plaintext"],
        ),
        (
            "unmasking <= 1.5x AES-CTR + one-add bound (SecAgg+, 10% dropout, n=1000, d=1e6)",
            {"n": 1000, "d": 1_000_000, "dropout": 0.1, "graph": "harary"},
            "unmasking_vs_bound",
            TARGETS["unmasking_vs_bound"],
        ),
        (
            "unmasking <= 1.5x AES-CTR + one-add bound (SecAgg+, 10% dropout, n=100, d=1e6)",
            {"n": 100, "d": 1_000_000, "dropout": 0.1, "graph": "harary"},
            "unmasking_vs_bound",
            TARGETS["unmasking_vs_bound"],
        ),
        (
            "server peak memory < 1 GB (n=1000, d=1e6, SecAgg+)",
            {"n": 1000, "d": 1_000_000, "graph": "harary"},
            "server_peak_bytes",
            TARGETS["server_peak_bytes"],
        ),
        (
            "server peak memory < 1 GB (n=1000, d=1e6, SecAgg)",
            {"n": 1000, "d": 1_000_000, "graph": "complete"},
            "server_peak_bytes",
            TARGETS["server_peak_bytes"],
        ),
        (
            "client masking < 0.5 s (SecAgg+, n=1000, d=1e6)",
            {"n": 1000, "d": 1_000_000, "graph": "harary"},
            "client_masking_seconds_median",
            TARGETS["client_masking_seconds"],
        ),
    ]
    for name, where, metric, limit in checks:
        matching = [
            c
            for c in cells
            if all(c.get(k) == v for k, v in where.items()) and c.get("status") == "complete"
        ]
        if not matching:
            continue
        value = max(c[metric] for c in matching)
        out.append(
            {
                "target": name,
                "metric": metric,
                "value": value,
                "limit": limit,
                "pass": value <= limit,
            }
        )
    return out


def markdown_table(result: dict[str, Any]) -> str:
    """The cells of a finished run as a Markdown table (for docs and reviews)."""
    head = (
        "| n | d | graph | k / t | dropout | client mask (s) | server total (s) | "
        "unmask (s) | plaintext (s) | server / plaintext | unmask / bound | server peak (MB) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for c in result["cells"]:
        if c["status"] != "complete":
            rows.append(
                f"| {c['n']} | {c['d']} | {c['graph']} | {c['k']} / {c['threshold']} | "
                f"{c['dropout']} | aborted: {c.get('abort_reason')} |||||||"
            )
            continue
        rows.append(
            f"| {c['n']} | {c['d']:,} | {c['graph']} | {c['k']} / {c['threshold']} | "
            f"{c['dropout']} | {c['client_masking_seconds_median']:.3f} | "
            f"{c['server_total_seconds']:.3f} | {c['server_unmasking_seconds']:.3f} | "
            f"{c['plaintext_float32_sum_seconds']:.3f} | {c['server_vs_plaintext']:.1f} | "
            f"{c['unmasking_vs_bound']:.2f} | {c['server_peak_bytes'] / 2**20:.1f} |"
        )
    return head + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, seconds")
    parser.add_argument("--n", type=int, action="append", dest="ns")
    parser.add_argument("--d", type=int, action="append", dest="ds")
    parser.add_argument("--dropout", type=float, action="append", dest="dropouts")
    parser.add_argument("--graph", choices=["complete", "harary"], action="append", dest="graphs")
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument(
        "--markdown", metavar="JSON", help="print an earlier run's JSON file as a Markdown table"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as fh:
            print(markdown_table(json.load(fh)), end="")
        return
    grid: dict[str, Any] = dict(QUICK_GRID if args.quick else GRID)
    for name in ("ns", "ds", "dropouts", "graphs"):
        if getattr(args, name):
            grid[name] = tuple(getattr(args, name))
    result = run_benchmark(**grid)
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
