"""What both sides of the peer benchmark share: the cells, the data, the clocks, the record.

Both round drivers (``flower_round.py`` and ``ours_round.py``) import this file,
so that the two systems are handed the very same client vectors and the very
same dropped clients for a given seed, and report the same fields measured with
the same clocks. Nothing here imports Flower or secagg: the parent (``run.py``)
can load it even when the ``peers`` extra is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The protocol stages, in order, under Flower's names; our phases map onto them
#: one to one (RoundSetup -> AdvertiseKeys is "setup", and so on).
STAGES = ("setup", "share_keys", "collect_masked_vectors", "unmask")

#: Spread of the fake model updates: float32 N(0, 0.05^2), as in the review.
UPDATE_STD = 0.05
#: Our fixed-point scale: 2^18 units per 1.0, i.e. Flower's quantisation step 16 / 2^22.
OUR_SCALE_BITS = 18


@dataclass(frozen=True)
class Cell:
    """One configuration both systems run: n clients, d parameters, k neighbours, t shares.

    ``k`` counts neighbours without the client itself (ours); Flower's
    ``num_shares`` counts the client too, so Flower gets ``k + 1``. ``complete``
    means the complete graph: Flower ``num_shares=1.0`` and
    ``reconstruction_threshold=t / n`` (a fraction, Flower's SecAgg mode), ours
    the complete graph with the same t.
    """

    name: str
    n: int
    d: int
    k: int
    t: int
    dropout: float
    complete: bool = False
    #: ABBA pairs run by default for this cell (the complete graph is slow in Flower)
    default_pairs: int = 3

    @property
    def dropped_count(self) -> int:
        return math.floor(self.dropout * self.n + 1e-9)

    def describe(self) -> str:
        graph = "complete graph" if self.complete else "SecAgg+"
        return (
            f"{graph} n={self.n}, d={self.d:g}, k={self.k} (Flower num_shares="
            f"{'1.0' if self.complete else self.k + 1}), t={self.t}, "
            f"{self.dropout:.0%} drop ({self.dropped_count} clients)"
        )


CELLS: dict[str, Cell] = {
    # the cell: Flower's fl-dp-sa values num_shares=7, threshold=4
    "issue": Cell("issue", n=100, d=100_000, k=6, t=4, dropout=0.10),
    "k20": Cell("k20", n=100, d=100_000, k=20, t=11, dropout=0.10),
    # Flower's SecAgg (num_shares=1.0, threshold 0.5 -> t = 50); about 3 minutes of Flower CPU
    "complete": Cell(
        "complete", n=100, d=10_000, k=99, t=50, dropout=0.10, complete=True, default_pairs=1
    ),
}
QUICK_CELLS: dict[str, Cell] = {
    "quick": Cell("quick", n=10, d=1_000, k=6, t=4, dropout=0.10, default_pairs=1),
}


def client_updates(n: int, d: int, seed: int) -> np.ndarray:
    """The n clients' float32 updates for this seed: benchmark data, not secrets."""
    rng = np.random.default_rng([seed, 0])
    return rng.normal(0.0, UPDATE_STD, size=(n, d)).astype(np.float32)


def dropped_clients(n: int, count: int, seed: int) -> list[int]:
    """Which client indices vanish before their masked input (the same for both systems)."""
    rng = np.random.default_rng([seed, 1])
    return sorted(int(i) for i in rng.choice(n, size=count, replace=False))


@dataclass
class Clock:
    """CPU (``process_time``: every thread of the process) and wall time, accumulated."""

    cpu: float = 0.0
    wall: float = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu += time.process_time() - c0
            self.wall += time.perf_counter() - w0

    def add(self, other: Clock) -> None:
        self.cpu += other.cpu
        self.wall += other.wall


@dataclass
class StageRecord:
    """One stage of one round: who spent what, and how many bytes moved."""

    stage: str
    #: the whole stage as the server side ran it (includes everything below)
    total: Clock = field(default_factory=Clock)
    #: the clients' protocol work, summed over clients
    clients: Clock = field(default_factory=Clock)
    #: message (de)serialisation in both directions
    serde: Clock = field(default_factory=Clock)
    #: work that belongs to neither protocol: Flower's fake training and legacy
    #: FitIns/FitRes conversion inside call_next, its ClientApp wrapper, FedAvg
    excluded: Clock = field(default_factory=Clock)
    bytes_down: int = 0
    bytes_up: int = 0
    #: clients that answered in this stage
    replies: int = 0

    def server(self) -> Clock:
        """Stage time minus clients, serde and excluded work: the server's own protocol work."""
        return Clock(
            self.total.cpu - self.clients.cpu - self.serde.cpu - self.excluded.cpu,
            self.total.wall - self.clients.wall - self.serde.wall - self.excluded.wall,
        )


def summarise(
    stages: list[StageRecord],
    *,
    system: str,
    cell: Cell,
    per_client_cpu: list[float],
    bytes_up: dict[int, int],
    bytes_down: dict[int, int],
    survivor_ids: list[int],
    correctness: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The JSON record of one round, with the same fields for both systems.

    ``round_cpu`` / ``round_wall`` are the protocol work of the server plus every
    client (clients run one after the other, so the wall figure is their sum, not
    a critical path); serialisation is reported beside them and in
    ``round_*_with_serde``.
    """
    server, clients, serde, excluded = Clock(), Clock(), Clock(), Clock()
    for s in stages:
        server.add(s.server())
        clients.add(s.clients)
        serde.add(s.serde)
        excluded.add(s.excluded)
    # a survivor's whole-round upload (the dropped never send their masked input)
    up_survivors = [bytes_up[p] for p in survivor_ids]
    return {
        "system": system,
        "cell": asdict(cell),
        "round_cpu": server.cpu + clients.cpu,
        "round_wall": server.wall + clients.wall,
        "round_cpu_with_serde": server.cpu + clients.cpu + serde.cpu,
        "round_wall_with_serde": server.wall + clients.wall + serde.wall,
        "server_cpu": server.cpu,
        "server_wall": server.wall,
        "clients_cpu": clients.cpu,
        "clients_wall": clients.wall,
        "client_cpu_per_client": clients.cpu / cell.n,
        "client_cpu_median": float(np.median(per_client_cpu)) if per_client_cpu else 0.0,
        "client_cpu_max": max(per_client_cpu, default=0.0),
        "serde_cpu": serde.cpu,
        "serde_wall": serde.wall,
        "excluded_cpu": excluded.cpu,
        "excluded_wall": excluded.wall,
        "bytes_up_per_client_median": float(np.median(up_survivors)) if up_survivors else 0.0,
        "bytes_down_per_client_median": float(np.median([bytes_down[p] for p in survivor_ids])),
        "bytes_up_per_parameter": (float(np.median(up_survivors)) / cell.d)
        if up_survivors
        else 0.0,
        "survivors": len(survivor_ids),
        "stages": [
            {
                "stage": s.stage,
                "server_cpu": s.server().cpu,
                "server_wall": s.server().wall,
                "clients_cpu": s.clients.cpu,
                "clients_wall": s.clients.wall,
                "serde_cpu": s.serde.cpu,
                "serde_wall": s.serde.wall,
                "excluded_cpu": s.excluded.cpu,
                "excluded_wall": s.excluded.wall,
                "stage_cpu": s.total.cpu,
                "stage_wall": s.total.wall,
                "bytes_down": s.bytes_down,
                "bytes_up": s.bytes_up,
                "replies": s.replies,
            }
            for s in stages
        ],
        "correctness": correctness,
        "pid": os.getpid(),
        **extra,
    }


def round_main(
    run: Callable[[Cell, int], dict[str, Any]], doc: str | None, argv: list[str] | None = None
) -> None:
    """The command line of one round script (``flower_round.py``, ``ours_round.py``):
    a cell as JSON and a seed in, the round's JSON record out, as ``run.py`` calls them."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--cell", required=True, help="a Cell as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="write the JSON record here")
    args = parser.parse_args(argv)
    cell = Cell(**json.loads(args.cell))
    Path(args.out).write_text(json.dumps(run(cell, args.seed)) + "\n", encoding="utf-8")
