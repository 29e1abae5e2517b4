"""gRPC benchmark: SecAgg+ rounds over loopback mTLS next to the same rounds in-process.

One federation (n clients, model length d, SecAgg+ on the Harary graph, 32-bit
ring, value bound 1, central client-level DP with clip 1 and noise multiplier
1, Poisson sampling at rate 1 so every client takes part, a fixed seed) runs
its rounds twice in the same run, with the :func:`~secagg.runtime.launch.demo_hook`
as every client's training:

* ``inprocess``: a :class:`~secagg.runtime.server.FederationServer` over an
  :class:`~secagg.transport.inprocess.InProcessHub`, each client a
  :class:`~secagg.runtime.client.FederationClient` in its own thread, all in
  one child process (``python -m secagg.apps.bench.grpc --inprocess``). It runs
  first and has exited before the gRPC run starts, so the two runs never
  compete for the CPU.
* ``grpc``: the same server in this process over
  :func:`~secagg.runtime.launch.server_transport` (mTLS, peer checks
  against a development CA made in a temporary directory, one certificate per
  client) bound to 127.0.0.1; the clients run in P worker
  processes (``python -m secagg.apps.bench.grpc --worker``), n / P clients each,
  every client in its own thread with its OWN
  :class:`~secagg.transport.grpc_transport.GrpcClientTransport` (own channel,
  own TCP + TLS connection, own certificate). The number of TCP connections the
  server holds is checked to equal n.

Every client process (the in-process child, the workers) runs with its BLAS
pinned to ``blas_threads`` = 1 thread (``OPENBLAS_NUM_THREADS`` and friends).
Why: numpy's OpenBLAS starts one thread per core, and when many client threads
of one process call it at once its threads oversubscribe the cores and a round
slows down many times over. The library's own per-client path does not call
BLAS (``clip_l2`` uses a BLAS-free norm), but a training hook may.

Round time is the wall time of ``FederationServer.run_round()``, once all
clients are connected (connecting, worker start-up included, is reported apart
as ``grpc.connect_seconds``): sampling, sending the model, the whole masking
protocol, unmasking, decoding, noise, the model update and the store's
checkpoint. On a machine with few cores the gRPC round also pays for the
worker processes sharing those cores with the server.

Bytes are counted at the server, per round, three ways:

* ``payload``: the runtime's envelopes (model, protocol messages, round end) as
  handed to and received from the transport by the server, counted by a
  wrapper around the transport. Identical in kind for both runs.
* ``framed`` (gRPC only): payload plus, per chunk of at most 1 MiB, the
  transport's 28-byte chunk header and gRPC's 5-byte message prefix: what gRPC
  hands to HTTP/2.
* ``wire`` (gRPC only, Linux): TCP payload bytes on the server's accepted
  sockets, from ``TCP_INFO`` (``tcpi_bytes_acked`` sent, ``tcpi_bytes_received``
  received) read before and after ``run_round()``: TLS records, HTTP/2 frames,
  window updates and pings included; TCP/IP headers excluded. Sent bytes are
  counted when the peer *acknowledges* them, so whatever is still in flight at
  the second reading (usually only the last ``ROUND_END`` messages, but on a
  loaded machine up to a third of a round's download was seen) is counted in
  the next round: read the wire figures as a median over rounds, not round by round.

Per client is the server's total divided by n (sent: download, received:
upload). Sanity checks, which raise :class:`BenchmarkError` when they fail:
every round of both runs completed with all n clients contributing; every
worker's clients finished all rounds; one TCP connection per client; the
payload byte counts of the two runs agree within 1 %; and the final models
agree within the encoding error: each run's decoded sum is off by less than
n / scale per coordinate (stochastic rounding, scale =
``largest_safe_scale(n, 1, 32)``), the two runs round independently, and the
mean divides by the expected n clients, so the tolerance is
2 * rounds * n / (scale * n). The DP noise comes from the seed and is the same
in both runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from secagg.aggregation.masking import largest_safe_scale
from secagg.apps import devca
from secagg.apps.bench import emit, machine_info, print_markdown, round_memory_bytes
from secagg.apps.cli_types import memory_available, size_in_gib
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import build_server, demo_hook, run_branch, server_transport
from secagg.runtime.server import RoundResult
from secagg.transport.inprocess import InProcessHub, ServerEndpoint

CLIENTS = 100
PROCESSES = 10
DIMENSION = 100_000
ROUNDS = 3
QUICK: dict[str, int] = {"clients": 12, "processes": 3, "dimension": 10_000, "rounds": 1}
SEED = 20_240_601
PHASE_SECONDS = 120.0  # a phase of 100 clients on 2 cores takes tens of seconds
CHUNK_BYTES = 1 << 20  # the transport's default chunk (DEFAULT_CHUNK_BYTES)
CHUNK_OVERHEAD = 28 + 5  # transport chunk header + gRPC length-prefixed message header
CONNECT_SECONDS = 120.0
WORKER_IDLE_SECONDS = 900.0  # workers are killed anyway once the benchmark ends
BLAS_THREADS = 1  # per client process; see the module docstring
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class BenchmarkError(RuntimeError):
    """A round failed or the two runs disagree: the figures would be meaningless."""


# --- counting ---------------------------------------------------------------------------


class CountingEndpoint:
    """A server transport that counts the payload bytes the runtime passes through it.

    Counted after the inner call succeeds, so a send to a vanished client is not
    counted; the in-process hub and the gRPC transport are wrapped the same way.

    Everything else the runtime asks of a transport is the inner one's (see
    :meth:`__getattr__`), so the server measured is the server deployed.
    """

    def __init__(self, inner: ServerEndpoint) -> None:
        self.inner = inner
        self.reset()

    def reset(self) -> None:
        self.sent_bytes = 0
        self.sent_messages = 0
        self.sent_chunks = 0
        self.received_bytes = 0
        self.received_messages = 0
        self.received_chunks = 0

    def send(self, name: str, payload: bytes) -> None:
        self.inner.send(name, payload)
        self.sent_bytes += len(payload)
        self.sent_messages += 1
        self.sent_chunks += max(1, math.ceil(len(payload) / CHUNK_BYTES))

    def send_parts(self, name: str, parts: Sequence[bytes]) -> None:
        """One message in parts (the server's round starts), counted as the message they
        make; passed on in parts where the inner transport takes them, joined where not.
        Defined here, not passed through: the count would miss the round starts."""
        inner = getattr(self.inner, "send_parts", None)
        if inner is not None:
            inner(name, parts)
        else:
            self.inner.send(name, b"".join(parts))
        size = sum(len(part) for part in parts)
        self.sent_bytes += size
        self.sent_messages += 1
        self.sent_chunks += max(1, math.ceil(size / CHUNK_BYTES))

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = self.inner.receive(timeout)
        if item is not None:
            self.received_bytes += len(item[1])
            self.received_messages += 1
            self.received_chunks += max(1, math.ceil(len(item[1]) / CHUNK_BYTES))
        return item

    def connected(self) -> set[str]:
        return self.inner.connected()

    def __getattr__(self, name: str) -> Any:
        """The inner transport's optional offers, as the inner transport has them:
        ``session_id`` (a branch restarted mid-round is gone at once, review D6),
        ``wait_for_sessions`` (the quorum wait is woken, not polled), ``recheck_sessions``
        (revocation before sampling), ``stopped``, ``peer_certificate`` (the active
        variant). Why: the runtime looks each up with ``getattr(transport, ..., None)``,
        and the wrapper had none of them, so the benchmarked server fell back to its
        polls and to ``connected()`` alone, unlike the server it measures. An offer the
        inner transport lacks is lacking here too (AttributeError)."""
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


_TCP_INFO_BYTES = struct.Struct("=QQ")  # tcpi_bytes_acked, tcpi_bytes_received
_TCP_INFO_OFFSET = 120  # their offset in struct tcp_info (Linux >= 4.2)


def tcp_counters(port: int) -> dict[int, tuple[int, int]] | None:
    """Bytes acked and received per accepted socket on ``port`` in this process (by inode).

    Reads ``TCP_INFO`` from a duplicate of each socket descriptor, so gRPC's own
    descriptors are never touched. None where ``TCP_INFO`` is unavailable.
    """
    if not sys.platform.startswith("linux") or not hasattr(socket, "TCP_INFO"):
        return None
    counters: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{entry}")
            if not link.startswith("socket:["):
                continue
            duplicate = os.dup(int(entry))
        except OSError:  # closed meanwhile
            continue
        try:
            with socket.socket(fileno=duplicate) as sock:
                inode = os.fstat(sock.fileno()).st_ino
                if sock.type != socket.SOCK_STREAM or link != f"socket:[{inode}]":
                    continue
                if sock.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                if sock.getsockname()[1] != port:
                    continue
                try:
                    sock.getpeername()
                except OSError:  # the listening socket
                    continue
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        except OSError:
            continue
        if len(info) >= _TCP_INFO_OFFSET + _TCP_INFO_BYTES.size:
            counters[inode] = _TCP_INFO_BYTES.unpack_from(info, _TCP_INFO_OFFSET)
    return counters


def _wire_delta(
    before: dict[int, tuple[int, int]] | None, after: dict[int, tuple[int, int]] | None
) -> tuple[int | None, int | None]:
    """Sent and received bytes between two readings, over sockets present in both."""
    if before is None or after is None:
        return None, None
    common = before.keys() & after.keys()
    sent = sum(after[k][0] - before[k][0] for k in common)
    received = sum(after[k][1] - before[k][1] for k in common)
    return sent, received


# --- the federation -----------------------------------------------------------------------


def client_names(clients: int) -> list[str]:
    return [f"branch-{i:03d}" for i in range(clients)]


def federation_config(
    names: Sequence[str], dimension: int, rounds: int, state: Path, certificates: Path
) -> FederationConfig:
    """The benchmark's federation; both runs use it (bind port 0: the OS picks one).

    ``state`` is the gRPC run's store; the in-process run gets a store of its own.
    """
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "bench-grpc",
                "clients": list(names),
                "dimension": dimension,
                "rounds": rounds,
                "seed": SEED,
                # both runs replay the same central noise, so their models can be compared
                "replay_noise": True,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "bits": 32},
            "dp": {"clip": 1.0, "noise_multiplier": 1.0, "delta": 1e-5},
            "deadlines": {"phase_seconds": PHASE_SECONDS, "round_seconds": 8 * PHASE_SECONDS},
            "server": {
                "state": str(state),
                "bind": "127.0.0.1:0",
                "certificates": str(certificates),
            },
        }
    )


def _check_round(run: str, result: RoundResult, names: Sequence[str]) -> None:
    if result.status != "complete":
        raise BenchmarkError(f"{run} round {result.number} {result.status}: {result.reason}")
    if set(result.contributed) != set(names):
        missing = sorted(set(names) - set(result.contributed))
        raise BenchmarkError(f"{run} round {result.number}: no contribution from {missing}")


def _counts(counter: CountingEndpoint) -> dict[str, int]:
    return {
        "bytes_sent_by_server": counter.sent_bytes,
        "bytes_received_by_server": counter.received_bytes,
        "messages_sent_by_server": counter.sent_messages,
        "messages_received_by_server": counter.received_messages,
    }


def _run_inprocess(
    config: FederationConfig, names: Sequence[str], state: Path, progress: bool
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The rounds over the in-process hub, client threads in this process."""
    hub = InProcessHub()
    counter = CountingEndpoint(hub)

    def serve(client: FederationClient) -> None:
        # a client cut off by the clean-up below (after a failed round) just stops
        with contextlib.suppress(ConnectionError):
            client.run(idle_timeout=4 * PHASE_SECONDS, rounds=config.rounds)

    threads = []
    for name in names:
        client = FederationClient(name, demo_hook(name, config.dimension), hub.connect(name))
        thread = threading.Thread(
            target=serve, args=(client,), name=f"bench-inprocess-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    rounds = []
    server = build_server(config, counter, state)
    try:
        for _ in range(config.rounds):
            counter.reset()
            started = time.perf_counter()
            result = server.run_round()
            seconds = time.perf_counter() - started
            _check_round("in-process", result, names)
            rounds.append({"round": result.number, "seconds": seconds, **_counts(counter)})
            _progress(progress, f"in-process round {result.number}: {seconds:.2f} s")
    finally:
        # After the last ROUND_END the clients end by themselves; after a failure they
        # would wait for the idle timeout, so whoever is left is disconnected.
        deadline = time.monotonic() + 30.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for name in names:
            hub.disconnect(name)
        server.store.close()
    return rounds, server.model


@dataclass
class _Worker:
    """One worker process, the file its stderr goes to, and the clients it runs."""

    process: subprocess.Popen[str]
    errors: IO[str]
    names: list[str]


def _child_env(blas_threads: int | None) -> dict[str, str]:
    """The environment of our child processes: this package importable, BLAS threads pinned."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    if blas_threads is not None:
        for variable in BLAS_VARIABLES:
            env[variable] = str(blas_threads)
    return env


def _spawn(
    arguments: Sequence[str], names: list[str], errors: Path, env: dict[str, str]
) -> _Worker:
    """Start ``python -m secagg.apps.bench.grpc ARGUMENTS``: stdout piped, stderr to a file."""
    command = [sys.executable, "-m", "secagg.apps.bench.grpc", *arguments]
    stream = open(errors, "w+", encoding="utf-8")  # closed by _stop_workers
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command, stdout=subprocess.PIPE, stderr=stream, text=True, env=env
    )
    return _Worker(process, stream, names)


def _spawn_workers(
    names: Sequence[str],
    processes: int,
    target: str,
    config: FederationConfig,
    workdir: Path,
    blas_threads: int | None,
) -> list[_Worker]:
    """Start the worker processes, names split into contiguous groups."""
    per = math.ceil(len(names) / processes)
    groups = [list(names[i : i + per]) for i in range(0, len(names), per)]
    env = _child_env(blas_threads)
    workers = []
    for index, group in enumerate(groups):
        arguments = [
            "--worker",
            "--target",
            target,
            "--certs",
            config.server.certificates,
            "--dimension",
            str(config.dimension),
            "--rounds",
            str(config.rounds),
            *group,
        ]
        workers.append(_spawn(arguments, group, workdir / f"worker-{index}.err", env))
    return workers


def _stderr_tail(errors: IO[str], limit: int = 2000) -> str:
    errors.flush()
    errors.seek(0)
    return errors.read()[-limit:]


def _wait_connected(transport: Any, names: Sequence[str], workers: list[_Worker]) -> None:
    """Block until every client has a session; fail early if a worker died."""
    deadline = time.monotonic() + CONNECT_SECONDS
    wanted = set(names)
    while not wanted <= transport.connected():
        for worker in workers:
            if worker.process.poll() is not None:
                raise BenchmarkError(
                    f"worker {worker.process.pid} exited with {worker.process.returncode} "
                    "before the rounds:\n" + _stderr_tail(worker.errors)
                )
        if time.monotonic() > deadline:
            missing = sorted(wanted - transport.connected())
            raise BenchmarkError(f"not connected after {CONNECT_SECONDS} s: {missing[:10]}")
        time.sleep(0.05)


def _collect_workers(workers: list[_Worker], rounds: int) -> dict[str, Any]:
    """Wait for the workers, check every branch finished every round; their CPU and memory."""
    cpu = 0.0
    peak = 0
    for worker in workers:
        process = worker.process
        try:
            out, _ = process.communicate(timeout=4 * PHASE_SECONDS)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"worker {process.pid} did not exit after the rounds") from None
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchmarkError(
                f"worker {process.pid} exited with {process.returncode} without a report:\n"
                + _stderr_tail(worker.errors)
            ) from None
        for name in worker.names:
            branch = report["branches"].get(name, {})
            if branch.get("rounds_completed") != rounds:
                raise BenchmarkError(f"{name} did not complete {rounds} rounds: {branch}")
        if process.returncode != 0:
            raise BenchmarkError(f"worker {process.pid} exited with {process.returncode}")
        cpu += report["cpu_seconds"]
        peak = max(peak, report["peak_rss_bytes"])
    return {"worker_cpu_seconds": cpu, "worker_peak_rss_bytes": peak}


def _stop_workers(workers: list[_Worker]) -> None:
    """Terminate (then kill) whatever worker is still running: no orphans, whatever happened."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in workers:
        try:
            worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=5)
        if worker.process.stdout is not None:
            worker.process.stdout.close()
        worker.errors.close()


def _run_inprocess_child(
    config: FederationConfig, workdir: Path, blas_threads: int | None, progress: bool
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """:func:`_run_inprocess` in a fresh process (``--inprocess``) with BLAS threads pinned."""
    model_path = workdir / "inprocess-model.npy"
    arguments = [
        "--inprocess",
        "--clients",
        str(len(config.clients)),
        "--dimension",
        str(config.dimension),
        "--rounds",
        str(config.rounds),
        "--certs",
        config.server.certificates,
        "--state",
        str(workdir / "inprocess.sqlite"),
        "--model",
        str(model_path),
    ]
    child = _spawn(arguments, [], workdir / "inprocess.err", _child_env(blas_threads))
    try:
        try:
            out, _ = child.process.communicate(timeout=config.rounds * 8 * PHASE_SECONDS + 120)
        except subprocess.TimeoutExpired:
            raise BenchmarkError("the in-process run did not finish in time") from None
        if child.process.returncode != 0:
            raise BenchmarkError(
                f"the in-process run failed ({child.process.returncode}):\n"
                + _stderr_tail(child.errors)
            )
        rounds: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])["rounds"]
        model = np.load(model_path)
    finally:
        _stop_workers([child])
    for row in rounds:
        _progress(progress, f"in-process round {row['round']}: {row['seconds']:.2f} s")
    return rounds, model


def _run_grpc(
    config: FederationConfig,
    names: Sequence[str],
    processes: int,
    workdir: Path,
    blas_threads: int | None,
    progress: bool,
) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    """The rounds over gRPC with mTLS on loopback, clients in worker processes."""
    transport = server_transport(config, 0)
    counter = CountingEndpoint(transport)
    workers: list[_Worker] = []
    rounds = []
    server = build_server(config, counter, config.server.state)
    try:
        started = time.perf_counter()
        target = f"127.0.0.1:{transport.port}"
        workers = _spawn_workers(names, processes, target, config, workdir, blas_threads)
        _wait_connected(transport, names, workers)
        connect_seconds = time.perf_counter() - started
        connections = tcp_counters(transport.port)
        _progress(
            progress,
            f"grpc: {len(names)} clients in {len(workers)} processes connected in "
            f"{connect_seconds:.1f} s"
            + ("" if connections is None else f" ({len(connections)} TCP connections)"),
        )
        for _ in range(config.rounds):
            counter.reset()
            before = tcp_counters(transport.port)
            cpu = time.process_time()
            start = time.perf_counter()
            result = server.run_round()
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
            wire_sent, wire_received = _wire_delta(before, tcp_counters(transport.port))
            _check_round("gRPC", result, names)
            rounds.append(
                {
                    "round": result.number,
                    "seconds": seconds,
                    "server_cpu_seconds": cpu,
                    **_counts(counter),
                    "framed_bytes_sent_by_server": counter.sent_bytes
                    + CHUNK_OVERHEAD * counter.sent_chunks,
                    "framed_bytes_received_by_server": counter.received_bytes
                    + CHUNK_OVERHEAD * counter.received_chunks,
                    "wire_bytes_sent_by_server": wire_sent,
                    "wire_bytes_received_by_server": wire_received,
                }
            )
            _progress(progress, f"grpc round {result.number}: {seconds:.2f} s")
        extra = _collect_workers(workers, config.rounds)
        extra |= {
            "grpc_connect_seconds": connect_seconds,
            "tcp_connections": None if connections is None else len(connections),
            "worker_processes": len(workers),
        }
    finally:
        _stop_workers(workers)
        transport.stop(grace=2.0)
        server.store.close()
    return rounds, server.model, extra


# --- the benchmark ------------------------------------------------------------------------


def memory_bytes(clients: int, processes: int, dimension: int) -> int:
    """A lower bound on the memory the gRPC run holds at once: the server's process and
    ``processes`` workers, each a Python process, every client's vectors of ``dimension``
    coordinates, the server's model-sized vectors
    (:func:`~secagg.apps.bench.round_memory_bytes`). The
    in-process run before it holds the same clients and server in one process, so it
    needs no more.

    Why: each worker is a whole Python process and each client holds several copies of
    the model, and nothing weighed them before the workers started: ``--clients 1000
    --processes 500 --d 10000000`` (320 GB at the least) set out to start them all, to
    end in the kernel's out-of-memory killer rather than in a line naming the flags."""
    return round_memory_bytes(clients, processes + 1, dimension)


def _progress(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


def run_benchmark(
    *,
    clients: int = CLIENTS,
    processes: int = PROCESSES,
    dimension: int = DIMENSION,
    rounds: int = ROUNDS,
    blas_threads: int | None = BLAS_THREADS,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the rounds in-process, then over gRPC; returns a JSON-ready dict.

    ``blas_threads`` is set in the BLAS environment variables of every client
    process (None: leave numpy's default, one thread per core). Raises
    :class:`BenchmarkError` if a round fails or the runs disagree.
    """
    if clients < 2 or not 1 <= processes <= clients or dimension < 1 or rounds < 1:
        raise ValueError("need clients >= 2, 1 <= processes <= clients, dimension, rounds >= 1")
    started = time.perf_counter()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    names = client_names(clients)
    with tempfile.TemporaryDirectory(prefix="secagg-bench-grpc-") as tmp:
        workdir = Path(tmp)
        ca = workdir / "certs"
        devca.init_ca(ca)
        for name in names:
            devca.issue_client(ca, name)
        config = federation_config(names, dimension, rounds, workdir / "grpc.sqlite", ca)
        _progress(progress, f"in-process: n = {clients}, d = {dimension}, {rounds} round(s)")
        local, local_model = _run_inprocess_child(config, workdir, blas_threads, progress)
        remote, remote_model, extra = _run_grpc(
            config, names, processes, workdir, blas_threads, progress
        )

    scale = largest_safe_scale(clients, config.backend.value_bound, config.backend.bits)
    tolerance = 2 * rounds * clients / (scale * config.expected_clients)
    difference = float(np.max(np.abs(remote_model - local_model)))
    payload_gap = max(
        abs(r[k] - lo[k]) / max(1, lo[k])
        for r, lo in zip(remote, local, strict=True)
        for k in ("bytes_sent_by_server", "bytes_received_by_server")
    )
    if difference >= tolerance:
        raise BenchmarkError(f"final models differ by {difference:g} >= {tolerance:g}")
    if extra["tcp_connections"] is not None and extra["tcp_connections"] != clients:
        raise BenchmarkError(f"{extra['tcp_connections']} TCP connections for {clients} clients")
    if payload_gap > 0.01:
        raise BenchmarkError(f"payload bytes of the two runs differ by {payload_gap:.2%}")

    per_round = [_round_row(r, lo, clients) for r, lo in zip(remote, local, strict=True)]
    return {
        "benchmark": "grpc",
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "machine": machine_info(),
        "load_average_at_start": load_at_start,  # other work on the machine skews the times
        "setting": {
            "clients": clients,
            "processes": extra["worker_processes"],
            "clients_per_process": math.ceil(clients / processes),
            "dimension": dimension,
            "rounds": rounds,
            "backend": config.backend.name,
            "graph": "harary",
            "bits": config.backend.bits,
            "value_bound": config.backend.value_bound,
            "dp": {"mechanism": "central", "clip": 1.0, "noise_multiplier": 1.0},
            "sample_rate": config.sample_rate,
            "phase_seconds": PHASE_SECONDS,
            "blas_threads": blas_threads,
            "seed": SEED,
            "scale": scale,
            "chunk_bytes": CHUNK_BYTES,
            "transport": "gRPC over TLS 1.3 with client certificates, 127.0.0.1",
        },
        "method": (__doc__ or "").split("\n\n", 1)[1],
        "rounds": per_round,
        "median": {
            key: statistics.median(row[key] for row in per_round)
            for key in per_round[0]
            if key != "round" and all(row[key] is not None for row in per_round)
        },
        "grpc": {
            "connect_seconds": extra["grpc_connect_seconds"],
            "tcp_connections": extra["tcp_connections"],
            "worker_cpu_seconds": extra["worker_cpu_seconds"],
            "worker_peak_rss_bytes": extra["worker_peak_rss_bytes"],
        },
        "sanity": {
            "rounds_completed_grpc": len(remote),
            "rounds_completed_inprocess": len(local),
            "all_clients_contributed": True,  # else _check_round raised
            "branches_completed_all_rounds": True,  # else _collect_workers raised
            "one_connection_per_client": extra["tcp_connections"] in (None, clients),
            "payload_bytes_relative_gap": payload_gap,
            "max_model_difference": difference,
            "model_tolerance": tolerance,
            "models_agree": difference < tolerance,
        },
    }


def _round_row(remote: dict[str, Any], local: dict[str, Any], clients: int) -> dict[str, Any]:
    def per_client(value: int | None) -> float | None:
        return None if value is None else value / clients

    return {
        "round": remote["round"],
        "grpc_round_seconds": remote["seconds"],
        "inprocess_round_seconds": local["seconds"],
        "grpc_vs_inprocess": remote["seconds"] / local["seconds"],
        "grpc_server_cpu_seconds": remote["server_cpu_seconds"],
        "bytes_sent_by_server": remote["bytes_sent_by_server"],
        "bytes_received_by_server": remote["bytes_received_by_server"],
        "inprocess_bytes_sent_by_server": local["bytes_sent_by_server"],
        "inprocess_bytes_received_by_server": local["bytes_received_by_server"],
        "messages_sent_by_server": remote["messages_sent_by_server"],
        "messages_received_by_server": remote["messages_received_by_server"],
        "framed_bytes_sent_by_server": remote["framed_bytes_sent_by_server"],
        "framed_bytes_received_by_server": remote["framed_bytes_received_by_server"],
        "wire_bytes_sent_by_server": remote["wire_bytes_sent_by_server"],
        "wire_bytes_received_by_server": remote["wire_bytes_received_by_server"],
        "bytes_sent_per_client": remote["bytes_sent_by_server"] / clients,
        "bytes_received_per_client": remote["bytes_received_by_server"] / clients,
        "wire_bytes_sent_per_client": per_client(remote["wire_bytes_sent_by_server"]),
        "wire_bytes_received_per_client": per_client(remote["wire_bytes_received_by_server"]),
    }


def markdown_table(result: dict[str, Any]) -> str:
    """A finished run as a Markdown table, one row per round and the median."""
    s = result["setting"]
    head = (
        f"n = {s['clients']} clients in {s['processes']} processes, d = {s['dimension']:,}, "
        f"{s['backend']}\n\n"
        "| round | gRPC s | in-process s | ratio | sent / client | received / client "
        "| wire sent / client | wire received / client |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value / 1e6:.3f} MB"

    rows = []
    labelled = [(str(r["round"]), r) for r in result["rounds"]] + [("median", result["median"])]
    for label, row in labelled:
        rows.append(
            f"| {label} | {row['grpc_round_seconds']:.2f} | {row['inprocess_round_seconds']:.2f} "
            f"| {row['grpc_vs_inprocess']:.2f} | {mb(row['bytes_sent_per_client'])} "
            f"| {mb(row['bytes_received_per_client'])} "
            f"| {mb(row.get('wire_bytes_sent_per_client'))} "
            f"| {mb(row.get('wire_bytes_received_per_client'))} |"
        )
    return head + "\n".join(rows) + "\n"


# --- the worker process -------------------------------------------------------------------


def worker_main(argv: Sequence[str]) -> int:
    """Serve rounds as several clients, one thread and one gRPC connection each.

    Prints one JSON line: per branch the rounds completed (or the error), and the
    process's CPU seconds and peak RSS. Exit status 0 iff every branch finished.
    """
    parser = argparse.ArgumentParser(prog="secagg.apps.bench.grpc --worker")
    parser.add_argument("--target", required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--dimension", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--idle", type=float, default=WORKER_IDLE_SECONDS)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    branches: dict[str, dict[str, Any]] = {}

    def serve(name: str) -> None:
        try:
            stats = run_branch(
                args.target,
                name,
                demo_hook(name, args.dimension),
                args.certs,
                rounds=args.rounds,
                idle_timeout=args.idle,
                connect_timeout=CONNECT_SECONDS,
            )
            branches[name] = {
                "rounds_completed": stats.rounds_completed,
                "rounds_aborted": stats.rounds_aborted,
            }
        except Exception as exc:  # reported to the benchmark, which fails the run
            branches[name] = {"error": f"{type(exc).__name__}: {exc}"}

    threads = [threading.Thread(target=serve, args=(name,), daemon=True) for name in args.names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "pid": os.getpid(),
        "branches": branches,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
    }
    # plain json.dumps, unlike bench scale's cells: every value here is an int, a string
    # or a sum of rusage times, never inf or NaN (bench review, 2026-12-06)
    print(json.dumps(report), flush=True)
    ok = all(b.get("rounds_completed") == args.rounds for b in branches.values())
    return 0 if ok else 1


def inprocess_main(argv: Sequence[str]) -> int:
    """Run the in-process rounds; print their figures as one JSON line, save the model."""
    parser = argparse.ArgumentParser(prog="secagg.apps.bench.grpc --inprocess")
    for option in ("--clients", "--dimension", "--rounds"):
        parser.add_argument(option, type=int, required=True)
    for option in ("--certs", "--state", "--model"):
        parser.add_argument(option, required=True)
    args = parser.parse_args(argv)
    names = client_names(args.clients)
    config = federation_config(
        names, args.dimension, args.rounds, Path(args.state), Path(args.certs)
    )
    try:
        rounds, model = _run_inprocess(config, names, Path(args.state), progress=False)
    except BenchmarkError as exc:
        print(f"BenchmarkError: {exc}", file=sys.stderr, flush=True)
        return 1
    np.save(args.model, model)
    # each round's number, perf_counter seconds and byte/message counts: never inf or NaN
    print(json.dumps({"rounds": rounds}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:  # a process of gRPC branches: skip gRPC's teardown
        from secagg.transport.process import exit_process

        exit_process(worker_main(argv[1:]))
    if argv[:1] == ["--inprocess"]:
        sys.exit(inprocess_main(argv[1:]))
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="12 clients in 3 processes, d = 10 000, 1 round"
    )
    parser.add_argument("--clients", type=int, help=f"default {CLIENTS}")
    parser.add_argument("--processes", type=int, help=f"worker processes, default {PROCESSES}")
    parser.add_argument("--d", type=int, dest="dimension", help=f"default {DIMENSION}")
    parser.add_argument("--rounds", type=int, help=f"default {ROUNDS}")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=BLAS_THREADS,
        help=f"BLAS threads per client process (default {BLAS_THREADS}; 0: numpy's default)",
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--markdown", metavar="JSON", help="print an earlier run as a table")
    args = parser.parse_args(argv)
    if args.markdown:
        print_markdown(args.markdown, markdown_table)
        return
    setting: dict[str, Any] = dict(QUICK) if args.quick else {}
    for key in ("clients", "processes", "dimension", "rounds"):
        if getattr(args, key) is not None:
            setting[key] = getattr(args, key)
    blas_threads = args.blas_threads if args.blas_threads > 0 else None
    needed = memory_bytes(
        setting.get("clients", CLIENTS),
        setting.get("processes", PROCESSES),
        setting.get("dimension", DIMENSION),
    )
    available = memory_available()
    if available is not None and needed > available:
        parser.error(
            f"--clients x --d and --processes need at least {size_in_gib(needed)} of "
            f"memory, more than the {size_in_gib(available)} available on this machine now"
        )
    result = run_benchmark(**setting, blas_threads=blas_threads, progress=not args.no_progress)
    emit(result, args.out)


if __name__ == "__main__":
    main()
