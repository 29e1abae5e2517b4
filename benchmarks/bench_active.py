"""Active-variant benchmark: what the malicious-server variant costs next to the passive one.

python benchmarks/bench_active.py                  # the full grid (about 10 minutes on 2 cores)
python benchmarks/bench_active.py --quick          # a small grid, seconds
python benchmarks/bench_active.py --out benchmarks/results/active.json
python benchmarks/bench_active.py --markdown benchmarks/results/active.json

JSON goes to stdout (and to ``--out``), progress to stderr.

The active variant (Bonawitz et al. 2017, section 6; SecAgg+ 2020) adds to the
passive one: every client signs its advertised keys and checks its peers'
signatures, and a consistency round in which every survivor signs the survivor
set and checks the others' signatures before revealing any share. Its Shamir
threshold is sized for colluders the server places anywhere on the ring
(``2t > k + 1 + c``), so SecAgg+ may need a larger degree k and threshold t
than the passive variant for the same n. Both variants run here back to back,
in the same process and the same run, on the same inputs:

* ``protocol``: the sans-I/O :class:`~secagg.protocol.Client` and
  :class:`~secagg.protocol.Server` state machines, driven in memory like
  :func:`secagg.protocol.simulation.run_round` (every message through the binary
  codec), with k and t from :meth:`~secagg.protocol.RoundConfig.create` (the
  defaults: 10 % tolerated dropout, 5 % colluders, at least 2) and each
  client's default :class:`~secagg.protocol.config.ClientPolicy` checking them.
  The active variant's identities are Ed25519 keys (made once per cell, outside
  the timing: they are long-term keys). Dropouts happen *after sharing*: the
  dropped clients sent their ShareKeys and vanish before their masked input.
  Every round's sum is checked against numpy's modular sum of the included
  clients' inputs.
* ``runtime``: the federation runtime (:class:`~secagg.runtime.server.FederationServer`
  and one :class:`~secagg.runtime.client.FederationClient` thread per branch)
  over the in-process transport, SecAgg+ with no DP, Poisson sampling at rate 1
  (every branch in every round), the demo training hook. The active federation's
  branch identities are their X.509 certificates from a development CA
  (ECDSA P-256 keys, :func:`~secagg.runtime.launch.branch_identity`); the
  server lists them via ``identity_of``. The passive federation runs without
  identities. The two federations are alive at once (idle branches block on
  their transport) and their rounds alternate.

Repetitions are interleaved (passive, active, then active, passive, ...) so
that the load of a shared machine falls on both variants alike; figures are
medians over the repetitions, with the best (least) of them beside them
(``best``, ``active_vs_passive_best``), and every ratio is active / passive of
the same run. Protocol-level times are CPU seconds (``time.process_time``; the
one thread does all of a round's work) unless ``--clock wall``: another job on
a shared machine lengthens wall time, not the CPU a round spends. The runtime
level reports both (its branches are threads of the same process).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secagg.apps.bench import (
    MAX_ROUNDS,
    MAX_VECTOR_LENGTH,
    emit,
    machine_info,
    print_markdown,
    share_below_one,
    whole_number,
)
from secagg.crypto.signing import SigningKey
from secagg.protocol import Client, RoundConfig, Server, ServerPhase, decode, encode
from secagg.protocol.config import ClientPolicy
from secagg.protocol.graph_params import MAX_NUM_CLIENTS
from secagg.protocol.messages import (
    ConsistencyRequest,
    KeyDirectory,
    RoundSetup,
    ShareDelivery,
    UnmaskingRequest,
)

SEED = 20_261_201
GRID: dict[str, Any] = {
    "ns": (20, 100, 300),
    "d": 10_000,
    "graphs": ("harary", "complete"),
    "complete_max_n": 100,
    "dropouts": (0.0, 0.05),
    "repeats": 3,
    "clock": "cpu",
    "runtime_clients": 10,
    "runtime_d": 10_000,
    "runtime_rounds": 2,
    "runtime_repeats": 3,
}
QUICK_GRID: dict[str, Any] = {
    **GRID,
    "ns": (10, 30),
    "d": 1_000,
    "runtime_clients": 5,
    "runtime_d": 1_000,
}
#: The protocol level's clocks, by the name ``--clock`` takes.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
PHASE_SECONDS = 120.0  # runtime deadline per phase: never reached unless something hangs
VARIANTS = ("passive", "active")

#: The client phase a server message starts (named after the reply it asks for).
CLIENT_PHASE = {
    RoundSetup: "advertise_keys",
    KeyDirectory: "share_keys",
    ShareDelivery: "masked_input",
    ConsistencyRequest: "consistency_check",
    UnmaskingRequest: "unmasking",
}

DEFINITIONS = {
    "k, t": "neighbour-graph degree and Shamir threshold chosen by RoundConfig.create "
    "(runtime: by the backend's plan, read back from the RoundStart spec)",
    "tolerated_colluders": "RoundConfig.tolerated_colluders: colluders placed at random "
    "(passive) or anywhere on the ring (active)",
    "round_seconds": "wall time of the whole in-memory round: server and all clients one "
    "after the other on one thread, plus encoding and decoding every message",
    "server_seconds": "Server.start + every Server.handle + every close_phase",
    "clients_seconds": "every Client.handle of every client, summed (all clients' compute)",
    "client_seconds_median / _max": "one surviving client's Client.handle calls summed over "
    "the round; median / max over the survivors",
    "codec_seconds": "round_seconds - server_seconds - clients_seconds: encoding and "
    "decoding the messages (and the loop)",
    "server_phase_seconds": "server time by the phase it was in when a call started "
    "(a call that closes a phase counts for the phase it closed)",
    "clients_phase_seconds": "all clients' time by the phase of the message they handled",
    "client_sent_bytes": "bytes one surviving client sends (secagg.protocol.encode of each "
    "of its messages); median over survivors",
    "client_received_bytes": "bytes the server sends to one surviving client; median",
    "server_sent_bytes / server_received_bytes": "the server's totals over all clients",
    "clock": "protocol-level seconds are CPU seconds (time.process_time: the one thread "
    "doing the round's work) since 2026-12-06; wall seconds before",
    "best": "the least of the repetitions of each timing (BEST_KEYS): another job on a "
    "shared machine only adds to a run's CPU time",
    "active_vs_passive": "active / passive of the medians above",
    "active_vs_passive_best": "active / passive of the best (least) timings of this run",
    "active_vs_passive_paired": "median over repetitions of active / passive within the "
    "same repetition (the two runs back to back): less sensitive to slow load changes",
    "runtime.round_seconds": "wall time of FederationServer.run_round(); median over all "
    "rounds of all repetitions",
    "runtime.round_cpu_seconds": "CPU time of the whole process (server and every branch "
    "thread of both federations) over FederationServer.run_round(); median over all rounds",
    "runtime.server_*_bytes": "the runtime's envelopes the server hands to / receives from "
    "the transport in one round (median)",
}


NOTES = [
    "Dropouts after sharing: max(1, floor(fraction * n)) clients (at n = 10 the 5 % row "
    "drops 1 client, 10 %), the same ones for both variants in a repetition.",
    "SecAgg (complete graph) runs for n <= complete_max_n only: at n = 300 its rounds "
    "(k = 299) would take most of the time budget.",
    "Protocol-level identities are Ed25519 keys; runtime identities are the branches' "
    "X.509 certificates (ECDSA P-256), as a deployment uses.",
    "One thread runs the server and every client in turn, so round_seconds is the total "
    "work, not the latency of a deployed round (clients run in parallel there).",
]


class BenchmarkError(RuntimeError):
    """A round failed or summed wrongly: its figures would be meaningless."""


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _ratio(active: float, passive: float) -> float | None:
    return active / passive if passive else None


def git_info() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "secagg")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "secagg_tree_modified": None if dirty is None else bool(dirty),
    }


# --- protocol level ------------------------------------------------------------------


def protocol_round(
    config: RoundConfig,
    inputs: np.ndarray,
    identity: dict[int, SigningKey],
    dropped: frozenset[int],
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Any]:
    """One in-memory round (like :func:`secagg.protocol.run_round`), timed and counted.

    ``clock`` is CPU time by default (``time.process_time``): the machine is shared, and
    another job's load lengthens wall time but not the CPU this round spends (one thread
    does all of the round's work, so the process's CPU is the round's)."""
    n = config.num_clients
    public = {p: key.verify_key for p, key in identity.items()} or None
    policy = ClientPolicy(
        corrupt_fraction=config.corrupt_fraction,
        dropout_fraction=config.dropout_fraction,
        min_colluders=config.min_colluders,
    )
    server = Server(config, identity_keys=public)
    clients = [
        Client(p, inputs[p], signing_key=identity.get(p), identity_keys=public, policy=policy)
        for p in range(n)
    ]
    client_seconds = [0.0] * n
    sent = [0] * n
    received = [0] * n
    server_phase: dict[str, float] = defaultdict(float)
    clients_phase: dict[str, float] = defaultdict(float)
    upload: dict[str, int] = defaultdict(int)
    download: dict[str, int] = defaultdict(int)
    gone: set[int] = set()
    terminal = (ServerPhase.COMPLETE, ServerPhase.ABORTED)

    gc.collect()
    started = clock()
    tick = clock()
    outgoing = server.start()
    server_phase["setup"] += clock() - tick
    while server.phase not in terminal:
        next_out = []
        for message in outgoing:
            party = message.recipient
            if party in gone:
                continue
            wire = encode(message)
            received[party] += len(wire)
            download[type(message).__name__] += len(wire)
            if isinstance(message, ShareDelivery) and party in dropped:
                gone.add(party)  # shared its keys, vanishes before its masked input
                continue
            phase = CLIENT_PHASE[type(message)]
            inbound = decode(wire)
            tick = clock()
            replies = clients[party].handle(inbound)
            spent = clock() - tick
            client_seconds[party] += spent
            clients_phase[phase] += spent
            for reply in replies:
                wire = encode(reply)
                sent[party] += len(wire)
                upload[type(reply).__name__] += len(wire)
                inbound = decode(wire)
                phase = server.phase.value
                tick = clock()
                next_out.extend(server.handle(inbound))
                server_phase[phase] += clock() - tick
        if server.phase in terminal:
            break
        if not next_out:
            phase = server.phase.value
            tick = clock()
            next_out = server.close_phase()
            server_phase[phase] += clock() - tick
        outgoing = next_out
    round_seconds = clock() - started

    if server.phase != ServerPhase.COMPLETE:
        raise BenchmarkError(f"round aborted: {server.report.abort_reason}")
    included = sorted(server.report.included)
    expected = set(range(n)) - dropped
    if set(included) != expected:
        raise BenchmarkError(f"included {included}, expected {sorted(expected)}")
    want = inputs[included].astype(np.uint64).sum(axis=0) % (1 << config.bits)
    if not np.array_equal(np.asarray(server.result(), np.uint64), want):
        raise BenchmarkError("the secure sum differs from numpy's sum of the same inputs")
    survivors = [p for p in range(n) if p not in dropped]
    server_seconds = sum(server_phase.values())
    clients_seconds = sum(client_seconds)
    return {
        "round_seconds": round_seconds,
        "server_seconds": server_seconds,
        "clients_seconds": clients_seconds,
        "codec_seconds": round_seconds - server_seconds - clients_seconds,
        "client_seconds_median": _median([client_seconds[p] for p in survivors]),
        "client_seconds_max": max(client_seconds[p] for p in survivors),
        "client_sent_bytes": _median([sent[p] for p in survivors]),
        "client_received_bytes": _median([received[p] for p in survivors]),
        "server_sent_bytes": sum(received),
        "server_received_bytes": sum(sent),
        "server_phase_seconds": dict(server_phase),
        "clients_phase_seconds": dict(clients_phase),
        "upload_bytes_by_message": dict(upload),
        "download_bytes_by_message": dict(download),
    }


SUMMARY_KEYS = (
    "round_seconds",
    "server_seconds",
    "clients_seconds",
    "codec_seconds",
    "client_seconds_median",
    "client_seconds_max",
    "client_sent_bytes",
    "client_received_bytes",
    "server_sent_bytes",
    "server_received_bytes",
)
RATIO_KEYS = (
    "round_seconds",
    "server_seconds",
    "clients_seconds",
    "client_seconds_median",
    "client_sent_bytes",
    "client_received_bytes",
    "server_sent_bytes",
    "server_received_bytes",
)
PAIRED_KEYS = ("round_seconds", "server_seconds", "clients_seconds")
#: The timings also reported as the best (least) of the repetitions: on a shared machine
#: another job only ever adds to a run's time, so the least is the closest to the cost.
BEST_KEYS = (
    "round_seconds",
    "server_seconds",
    "clients_seconds",
    "client_seconds_median",
    "client_seconds_max",
)


def _summarise(config: RoundConfig, runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "graph": config.graph.name.lower(),
        "k": config.degree,
        "t": config.threshold,
        "tolerated_colluders": config.tolerated_colluders,
    }
    for key in SUMMARY_KEYS:
        out[key] = _median([run[key] for run in runs])
    for group in (
        "server_phase_seconds",
        "clients_phase_seconds",
        "upload_bytes_by_message",
        "download_bytes_by_message",
    ):
        names = sorted({name for run in runs for name in run[group]})
        out[group] = {name: _median([run[group].get(name, 0) for run in runs]) for name in names}
    out["best"] = {key: min(run[key] for run in runs) for key in BEST_KEYS}
    out["round_seconds_runs"] = [run["round_seconds"] for run in runs]
    return out


def protocol_cell(
    n: int,
    d: int,
    graph: str,
    dropout: float,
    repeats: int,
    progress: bool,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Any]:
    """Passive and active on the same inputs and dropout sets, repetitions interleaved."""
    seed = np.random.SeedSequence([SEED, n, d, 0 if graph == "harary" else 1, round(dropout * 1e4)])
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 1 << 32, size=(n, d), dtype=np.uint32)
    dropped_count = max(1, math.floor(dropout * n + 1e-9)) if dropout > 0 else 0
    configs = {
        variant: RoundConfig.create(n, d, graph=graph, active=variant == "active")  # type: ignore[arg-type]
        for variant in VARIANTS
    }
    identities = {
        "passive": {},
        "active": {p: SigningKey.generate() for p in range(n)},
    }
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for rep in range(repeats):
        dropped = frozenset(int(p) for p in rng.choice(n, dropped_count, replace=False))
        order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            run = protocol_round(configs[variant], inputs, identities[variant], dropped, clock)
            runs[variant].append(run)
            _progress(
                progress,
                f"  n={n} {graph} dropout={dropout:.0%} rep {rep + 1}/{repeats} {variant}: "
                f"{run['round_seconds']:.2f} s",
            )
    summary = {variant: _summarise(configs[variant], runs[variant]) for variant in VARIANTS}
    active, passive = summary["active"], summary["passive"]
    return {
        "n": n,
        "d": d,
        "graph": graph,
        "dropout": dropout,
        "dropped": dropped_count,
        "repeats": repeats,
        "passive": passive,
        "active": active,
        "active_vs_passive": {key: _ratio(active[key], passive[key]) for key in RATIO_KEYS},
        "active_vs_passive_best": {
            key: _ratio(active["best"][key], passive["best"][key]) for key in BEST_KEYS
        },
        "active_vs_passive_paired": {
            key: _median(
                [a[key] / p[key] for a, p in zip(runs["active"], runs["passive"], strict=True)]
            )
            for key in PAIRED_KEYS
        },
    }


# --- runtime level -----------------------------------------------------------------


class CountingEndpoint:
    """The server's transport, counting payload bytes and reading k and t from RoundStart."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.peer_certificate = getattr(inner, "peer_certificate", None)
        self.k_t: tuple[int, int] | None = None
        self.reset()

    def reset(self) -> None:
        self.sent_bytes = 0
        self.received_bytes = 0

    def send(self, name: str, payload: bytes) -> None:
        self.inner.send(name, payload)
        self.sent_bytes += len(payload)
        if self.k_t is None:
            self._read_k_t(payload)

    def _read_k_t(self, payload: bytes) -> None:
        from secagg.aggregation.registry import decode_spec
        from secagg.runtime.wire import RoundStart, decode_message

        with contextlib.suppress(Exception):  # only a RoundStart of a masking spec has them
            message = decode_message(payload)
            if isinstance(message, RoundStart):
                config = decode_spec(message.spec).round_config()  # type: ignore[attr-defined]
                self.k_t = (config.degree, config.threshold)

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = self.inner.receive(timeout)
        if item is not None:
            self.received_bytes += len(item[1])
        return item

    def connected(self) -> set[str]:
        return self.inner.connected()


class _Federation:
    """One in-process federation (server, hub, branch threads) of one variant."""

    def __init__(
        self,
        variant: str,
        names: list[str],
        dimension: int,
        rounds: int,
        workdir: Path,
        certificates: Path,
        ders: dict[str, bytes],
    ) -> None:
        from secagg.runtime.client import FederationClient
        from secagg.runtime.config import FederationConfig
        from secagg.runtime.launch import branch_identity, demo_hook
        from secagg.runtime.server import FederationServer
        from secagg.runtime.store import ServerStore
        from secagg.transport.inprocess import InProcessHub

        active = variant == "active"
        self.names = names
        config = FederationConfig.from_dict(
            {
                "federation": {
                    "name": f"bench-active-{variant}",
                    "clients": names,
                    "dimension": dimension,
                    "rounds": rounds,
                },
                "sampling": {"kind": "poisson", "rate": 1.0},
                "backend": {"name": "secagg+", "value_bound": 1.0, "bits": 32, "active": active},
                "deadlines": {"phase_seconds": PHASE_SECONDS, "round_seconds": 6 * PHASE_SECONDS},
            }
        )
        self.hub = InProcessHub()
        self.counter = CountingEndpoint(self.hub)
        self.threads: list[threading.Thread] = []
        self.failures: dict[str, BaseException] = {}
        for name in names:
            client = FederationClient(
                name,
                demo_hook(name, dimension),
                self.hub.connect(name),
                identity=branch_identity(certificates, name) if active else None,
            )

            def serve(client: Any = client, name: str = name) -> None:
                try:
                    client.run(idle_timeout=4 * PHASE_SECONDS, rounds=rounds)
                except ConnectionError:
                    pass  # cut off by the clean-up after a failed round
                except BaseException as exc:  # reported by the benchmark
                    self.failures[name] = exc

            thread = threading.Thread(target=serve, name=f"bench-{variant}-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        store = ServerStore(workdir / f"{variant}.sqlite")
        self.server = FederationServer(
            config, self.counter, store, identity_of=ders.get if active else None
        )
        deadline = time.monotonic() + 30.0
        while not set(names) <= self.hub.connected():
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{variant}: branches did not connect")
            time.sleep(0.01)

    def run_round(self) -> dict[str, Any]:
        self.counter.reset()
        gc.collect()
        started = time.perf_counter()
        started_cpu = time.process_time()
        result = self.server.run_round()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - started_cpu
        if result.status != "complete" or set(result.contributed) != set(self.names):
            raise BenchmarkError(
                f"runtime round {result.number} {result.status}: {result.reason} "
                f"(contributed {len(result.contributed)} of {len(self.names)}; "
                f"branch failures: {self.failures})"
            )
        return {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "server_sent_bytes": self.counter.sent_bytes,
            "server_received_bytes": self.counter.received_bytes,
        }

    def close(self) -> None:
        deadline = time.monotonic() + 30.0
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for name in self.names:
            with contextlib.suppress(Exception):
                self.hub.disconnect(name)
        self.server.store.close()
        if self.failures:
            raise BenchmarkError(f"branches failed: {self.failures}")


def _certificates(directory: Path, names: list[str]) -> dict[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from secagg.apps import devca

    devca.init_ca(directory)
    ders = {}
    for name in names:
        devca.issue_client(directory, name)
        pem = (directory / "clients" / f"{name}.pem").read_bytes()
        ders[name] = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ders


def runtime_benchmark(
    clients: int, dimension: int, rounds: int, repeats: int, progress: bool
) -> dict[str, Any]:
    """``repeats`` pairs of federations of ``rounds`` rounds; rounds alternate variants."""
    names = [f"branch-{i:03d}" for i in range(clients)]
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    k_t: dict[str, tuple[int, int] | None] = {}
    with tempfile.TemporaryDirectory(prefix="secagg-bench-active-") as tmp:
        workdir = Path(tmp)
        ders = _certificates(workdir / "certs", names)
        for rep in range(repeats):
            order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
            federations: dict[str, _Federation] = {}
            try:
                state = workdir / f"rep{rep}"
                state.mkdir()
                for variant in order:
                    federations[variant] = _Federation(
                        variant, names, dimension, rounds, state, workdir / "certs", ders
                    )
                for number in range(rounds):
                    for variant in order:
                        row = federations[variant].run_round()
                        row["round"] = number + 1
                        row["repetition"] = rep + 1
                        runs[variant].append(row)
                        _progress(
                            progress,
                            f"  runtime rep {rep + 1}/{repeats} round {number + 1} {variant}: "
                            f"{row['seconds']:.2f} s",
                        )
            finally:
                for federation in federations.values():
                    federation.close()
            for variant, federation in federations.items():
                k_t[variant] = federation.counter.k_t
    summary: dict[str, Any] = {}
    for variant in VARIANTS:
        rows = runs[variant]
        kt = k_t.get(variant)
        summary[variant] = {
            "k": kt[0] if kt else None,
            "t": kt[1] if kt else None,
            "round_seconds": _median([row["seconds"] for row in rows]),
            "round_cpu_seconds": _median([row["cpu_seconds"] for row in rows]),
            "first_round_seconds": _median([row["seconds"] for row in rows if row["round"] == 1]),
            "later_round_seconds": (
                _median([row["seconds"] for row in rows if row["round"] > 1])
                if rounds > 1
                else None
            ),
            "server_sent_bytes": _median([row["server_sent_bytes"] for row in rows]),
            "server_received_bytes": _median([row["server_received_bytes"] for row in rows]),
            "rounds": rows,
        }
    active, passive = summary["active"], summary["passive"]
    return {
        "clients": clients,
        "d": dimension,
        "backend": "secagg+",
        "transport": "in-process",
        "rounds_per_federation": rounds,
        "repeats": repeats,
        **summary,
        "active_vs_passive": {
            key: _ratio(active[key], passive[key])
            for key in (
                "round_seconds",
                "round_cpu_seconds",
                "server_sent_bytes",
                "server_received_bytes",
            )
        },
        "active_vs_passive_paired": {
            "round_seconds": _median(
                [
                    a["seconds"] / p["seconds"]
                    for a, p in zip(runs["active"], runs["passive"], strict=True)
                ]
            )
        },
    }


# --- the benchmark -----------------------------------------------------------------------


def run_benchmark(grid: dict[str, Any], *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    # the code that runs is the code at the start: read after a run of minutes, the commit
    # and the tree's state were whatever they had become meanwhile (2026-12-06: a run
    # started on 0f15aa2 recorded 76d3b55, dirty)
    code = git_info()
    cells = []
    for n in grid["ns"]:
        for graph in grid["graphs"]:
            if graph == "complete" and n > grid["complete_max_n"]:
                continue
            for dropout in grid["dropouts"]:
                _progress(progress, f"protocol n={n} d={grid['d']} {graph} dropout={dropout:.0%}")
                cells.append(
                    protocol_cell(
                        n,
                        grid["d"],
                        graph,
                        dropout,
                        grid["repeats"],
                        progress,
                        CLOCKS[grid.get("clock", "cpu")],
                    )
                )
    _progress(progress, f"runtime n={grid['runtime_clients']} d={grid['runtime_d']}")
    runtime = runtime_benchmark(
        grid["runtime_clients"],
        grid["runtime_d"],
        grid["runtime_rounds"],
        grid["runtime_repeats"],
        progress,
    )
    return {
        "benchmark": "active",
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "grid": {
            key: list(value) if isinstance(value, tuple) else value for key, value in grid.items()
        },
        "machine": machine_info(),
        "git": code,
        "method": __doc__,
        "definitions": DEFINITIONS,
        "notes": list(NOTES),
        "protocol": cells,
        "runtime": runtime,
    }


def _fmt_bytes(value: float) -> str:
    return f"{value / 1e3:.1f} kB" if value < 1e6 else f"{value / 1e6:.2f} MB"


def markdown_table(result: dict[str, Any]) -> str:
    clock = "CPU" if result.get("grid", {}).get("clock", "wall") == "cpu" else "wall"
    lines = [
        f"Protocol seconds are {clock} seconds, medians of the repetitions; "
        "the last three columns the best (least) of them.",
        "",
        "| n | graph | drop | k, t passive | k, t active | round s P / A (x) "
        "| server s P / A (x) | client s P / A (x) | client up P / A (x) "
        "| server out P / A (x) | best round s P / A (x) | best server s P / A (x) "
        "| best client s P / A (x) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in result["protocol"]:
        p, a, r = cell["passive"], cell["active"], cell["active_vs_passive"]

        def best(key: str, fmt: str, cell: dict = cell) -> str:
            if "best" not in cell["passive"]:  # a run from before 2026-12-06
                return "-"
            pb, ab = cell["passive"]["best"][key], cell["active"]["best"][key]
            return f"{pb:{fmt}} / {ab:{fmt}} ({cell['active_vs_passive_best'][key]:.2f})"

        def pair(key: str, fmt: str, p: dict = p, a: dict = a, r: dict = r) -> str:
            show = _fmt_bytes if fmt == "bytes" else (lambda v: f"{v:{fmt}}")
            return f"{show(p[key])} / {show(a[key])} ({r[key]:.2f})"

        lines.append(
            f"| {cell['n']} | {cell['graph']} | {cell['dropout']:.0%} "
            f"| {p['k']}, {p['t']} | {a['k']}, {a['t']} "
            f"| {pair('round_seconds', '.2f')[:-1]}, "
            f"paired {cell['active_vs_passive_paired']['round_seconds']:.2f}) "
            f"| {pair('server_seconds', '.2f')} "
            f"| {pair('client_seconds_median', '.3f')} | {pair('client_sent_bytes', 'bytes')} "
            f"| {pair('server_sent_bytes', 'bytes')} "
            f"| {best('round_seconds', '.2f')} | {best('server_seconds', '.3f')} "
            f"| {best('client_seconds_median', '.4f')} |"
        )
    rt = result["runtime"]
    p, a, r = rt["passive"], rt["active"], rt["active_vs_passive"]

    def cpu(variant: dict) -> str:
        seconds = variant.get("round_cpu_seconds")  # absent from runs before 2026-12-06
        return "-" if seconds is None else f"{seconds:.3f}"

    cpu_ratio = f"{r['round_cpu_seconds']:.2f}" if r.get("round_cpu_seconds") else "-"

    lines += [
        "",
        f"Runtime (in-process, secagg+, n = {rt['clients']}, d = {rt['d']}, "
        f"{rt['rounds_per_federation']} rounds x {rt['repeats']} repetitions):",
        "",
        "| variant | k, t | round s (median) | round CPU s (median) | server out / round "
        "| server in / round |",
        "|---|---|---|---|---|---|",
        f"| passive | {p['k']}, {p['t']} | {p['round_seconds']:.3f} | {cpu(p)} "
        f"| {_fmt_bytes(p['server_sent_bytes'])} | {_fmt_bytes(p['server_received_bytes'])} |",
        f"| active | {a['k']}, {a['t']} | {a['round_seconds']:.3f} | {cpu(a)} "
        f"| {_fmt_bytes(a['server_sent_bytes'])} | {_fmt_bytes(a['server_received_bytes'])} |",
        f"| active / passive | | {r['round_seconds']:.2f} "
        f"(paired {rt['active_vs_passive_paired']['round_seconds']:.2f}) "
        f"| {cpu_ratio} | {r['server_sent_bytes']:.2f} "
        f"| {r['server_received_bytes']:.2f} |",
    ]
    return "\n".join(lines) + "\n"


def _at_least_one(text: str) -> int:
    """A repetition count: a whole number, at least 1.

    Why: ``--repeats 0`` (its help said ">= 1", nothing held it) ran the setup and then
    ended in ``StatisticsError: no median for empty data`` (bench review, 2026-12-06);
    argparse now refuses it in one line naming the flag, exit 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench_active.py",  # its lines name the script, run as a file or imported
        description="Cost of the active (malicious-server) variant next to the passive one.",
        epilog="JSON goes to stdout, progress to stderr.",
    )
    parser.add_argument("--quick", action="store_true", help="small grid, seconds")
    # Why bounds: a count out of range (--n 2, --d 0, --runtime-clients 0, ...) or a
    # dropout share outside [0, 1) (nan, inf, 1.5) was a traceback from the cell's
    # planning or seeding (bench review, 2026-12-07); argparse refuses it in one line
    clients = whole_number(3, MAX_NUM_CLIENTS)
    length = whole_number(1, MAX_VECTOR_LENGTH)
    parser.add_argument("--n", type=clients, action="append", dest="ns", help="repeatable")
    parser.add_argument("--d", type=length, help="vector length (protocol level)")
    parser.add_argument("--graph", choices=["harary", "complete"], action="append", dest="graphs")
    parser.add_argument("--dropout", type=share_below_one, action="append", dest="dropouts")
    parser.add_argument("--repeats", type=_at_least_one, help="repetitions per variant (>= 1)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        help="protocol-level clock: cpu (process_time, the default) or wall (perf_counter)",
    )
    parser.add_argument("--runtime-clients", type=clients)
    parser.add_argument("--runtime-d", type=length)
    parser.add_argument("--runtime-rounds", type=whole_number(1, MAX_ROUNDS))
    parser.add_argument("--runtime-repeats", type=_at_least_one, help="(>= 1)")
    parser.add_argument("--note", action="append", default=[], help="added to the JSON's notes")
    parser.add_argument("--no-progress", action="store_true", help="nothing on stderr")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument(
        "--markdown", metavar="JSON", help="print an earlier run's JSON file as Markdown tables"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.markdown, markdown_table)
        return
    grid = dict(QUICK_GRID if args.quick else GRID)
    for key in ("ns", "graphs", "dropouts"):
        if getattr(args, key):
            grid[key] = tuple(getattr(args, key))
    for key in (
        "d",
        "repeats",
        "clock",
        "runtime_clients",
        "runtime_d",
        "runtime_rounds",
        "runtime_repeats",
    ):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    try:
        result = run_benchmark(grid, progress=not args.no_progress)
    except BenchmarkError as exc:
        # a round that failed its own checks (aborted: more dropouts than its k and t
        # tolerate; a wrong sum) is one line, exit 1, as ``secagg bench`` says it: it
        # was a traceback (bench review, 2026-12-07)
        parser.exit(1, f"{parser.prog}: {' '.join(str(exc).split())}\n")
    result["notes"] += args.note
    # strict JSON, as every benchmark writes it (a NaN or an infinity as null / "inf",
    # never a bare token strict readers refuse), the file whole or not at all: it was
    # json.dumps and open(out, "w")
    emit(result, args.out)


if __name__ == "__main__":
    main()
