"""Flower 1.42 and this project, side by side: the same SecAgg+ rounds, alternating.

python benchmarks/peers/run.py                      # the three cells, then CKKS (8-10 min)
python benchmarks/peers/run.py --quick --out /tmp/p # tiny n and d, one pair (seconds)
python benchmarks/peers/run.py --cells issue --pairs 5
python benchmarks/peers/run.py --markdown benchmarks/peers/results/peers.json

Writes DIR/peers.json and DIR/peers.md (``--out DIR``, default
``benchmarks/peers/results``) and prints the Markdown. Flower is the optional
extra ``secagg[peers]`` (flwr==1.42.0), never a core dependency; without it the
CKKS comparison still runs and the command ends with the line saying how to
install it (exit status 2).

How (details in the docstrings of ``flower_round.py``, ``ours_round.py``,
``ckks.py``):

* every round runs in its own subprocess of this one (one process tree), so
  neither system inherits the other's caches, threads or heap;
* the runs alternate in ABBA order: pair 0 is Flower then ours, pair 1 ours
  then Flower, and so on; both members of a pair get the same seed, hence the
  same client vectors and the same dropped clients (each system draws its own
  random neighbour graph);
* each record gives CPU (``process_time``) and wall time per stage for the
  server, the clients (summed; they run one after the other) and message
  serialisation, and the bytes each client sent and received; the round's
  result is checked against the plaintext mean of the survivors (ours also
  exactly, word for word);
* the table gives the median over pairs of each system and the ratio
  Flower / ours of those medians; every pair's own ratio is in the JSON;
* the 1-minute load average is recorded before and after every run: on a
  shared machine read wall figures with care, CPU figures hold better.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CELLS, QUICK_CELLS, Cell  # noqa: E402

FLOWER_VERSION = "1.42.0"
INSTALL_HINT = (
    'Flower 1.42.0 is not installed: run  pip install -e ".[peers]"  (from the repo root)'
)
#: The issue's goal for its cell: ours at least this many times faster in round CPU.
TARGET_ROUND_CPU_RATIO = 30.0
CHILD_TIMEOUT_SECONDS = 3600

#: The figures the table compares, with how to read them.
MEASURES: list[tuple[str, str, str]] = [
    ("round_cpu", "round CPU (s)", "server + all clients' protocol work, CPU"),
    ("round_wall", "round wall (s)", "the same, wall clock (clients in turn)"),
    ("server_cpu", "server CPU (s)", "server protocol work, CPU"),
    ("client_cpu_per_client", "client CPU per client (s)", "all clients' CPU / n"),
    ("serde_cpu", "serialisation CPU (s)", "every message encoded and decoded, both ways"),
    ("bytes_up_per_parameter", "bytes up per parameter", "a survivor's whole upload / d"),
]

DEFINITIONS = {
    "round_cpu": "server_cpu + clients_cpu: the protocol work of the round in CPU seconds "
    "(process_time, all threads); serialisation and excluded work are not in it",
    "round_wall": "server_wall + clients_wall (clients run one after the other, so this is "
    "their sum, not a critical path)",
    "round_cpu_with_serde": "round_cpu + serde_cpu",
    "server_cpu": "per stage: the server's stage time minus clients, serialisation and "
    "excluded work; summed over the 4 stages. Ours includes decoding the fixed-point sum "
    "and dividing by the survivors",
    "clients_cpu": "Flower: time inside secaggplus_mod minus its call_next; ours: every "
    "Client.handle plus the fixed-point encoding of the update",
    "client_cpu_per_client": "clients_cpu / n",
    "serde_cpu": "Flower: protobuf message_to_proto + SerializeToString + FromString + "
    "message_from_proto, both ways; ours: the wire codec encode + decode, both ways",
    "excluded_cpu": "Flower only: call_next (the fake training returning a fixed vector and "
    "Flower's legacy FitIns/FitRes conversion of the global model), the ClientApp wrapper, "
    "FedAvg.aggregate_fit",
    "bytes_up_per_parameter": "median over survivors of all bytes a client sent in the round, "
    "divided by d (Flower's masked vector is int64: 8 bytes a parameter)",
    "bytes_down_per_client_median": "all bytes a survivor received; Flower's include the "
    "float32 global model in FitIns, ours ship no model",
    "ratio": "median over pairs of Flower's figure / median over pairs of ours",
    "load_1min": "os.getloadavg()[0] just before and just after the run",
    "crypto_work": "ours only: X25519 key pairs (made, or rebuilt once per key), X25519 "
    "agreements and AES-CTR keystream bytes (masks "
    "expanded, keyed-stream words drawn) of the completed round, counted as it ran",
    "primitive_prices": "best CPU seconds of one X25519 agreement and one key pair (best of "
    "7 batches of 500) and AES-128-CTR's best rate at any buffer size, measured in this run "
    "before and after the cells, the cheaper kept",
    "floor": "floor_cpu_seconds = crypto_work priced at primitive_prices (median over "
    "pairs); *_vs_floor = that system's median round_cpu / floor_cpu_seconds",
}


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, memory, versions: what a reader needs to compare two runs."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions = {}
    for name in ("flwr", "numpy", "cryptography", "tenseal", "protobuf", "pycryptodome", "secagg"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    git = None
    try:
        head = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain"], capture_output=True, text=True
        ).stdout.strip()
        git = {"commit": head, "dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git": git,
    }


def flower_status() -> str | None:
    """None if the pinned Flower is importable by this interpreter, else why not."""
    if importlib.util.find_spec("flwr") is None:
        return INSTALL_HINT
    version = importlib.metadata.version("flwr")
    if version != FLOWER_VERSION:
        return f"flwr {version} is installed, the benchmark is pinned to {FLOWER_VERSION}: " + (
            'pip install -e ".[peers]"'
        )
    return None


def _child(script: str, args: list[str], log: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one worker in a subprocess; its JSON record and what the parent saw of it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "record.json"
        env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", PYTHONUNBUFFERED="1")
        before_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--out", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=CHILD_TIMEOUT_SECONDS,
        )
        wall = time.perf_counter() - started
        load_after = os.getloadavg()[0]
        after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise RuntimeError(f"{script} {' '.join(args)} failed ({proc.returncode}):\n{tail}")
        record = json.loads(out.read_text(encoding="utf-8"))
    seen = {
        "load_1min_before": load_before,
        "load_1min_after": load_after,
        "process_wall": wall,
        # the whole subprocess: interpreter start, imports, data, the round, the checks
        "process_cpu": (after_usage.ru_utime - before_usage.ru_utime)
        + (after_usage.ru_stime - before_usage.ru_stime),
    }
    log.append(f"{script} {' '.join(args)}: {wall:.1f} s")
    return record, seen


def _median(records: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in records)


def run_cell(cell: Cell, pairs: int, seed: int, progress: bool) -> dict[str, Any]:
    """ABBA-alternated pairs of rounds for one cell; medians and ratios."""
    runs: list[dict[str, Any]] = []
    log: list[str] = []
    for i in range(pairs):
        order = ("flower", "ours") if i % 2 == 0 else ("ours", "flower")
        pair: dict[str, Any] = {"pair": i, "seed": seed + i, "order": list(order)}
        for system in order:
            script = f"{system}_round.py"
            args = ["--cell", json.dumps(asdict(cell)), "--seed", str(seed + i)]
            record, seen = _child(script, args, log)
            record.update(seen)
            pair[system] = record
            if progress:
                print(
                    f"  {cell.name} pair {i} {system:6s}: round CPU {record['round_cpu']:.3f} s, "
                    f"server CPU {record['server_cpu']:.3f} s, wall {record['round_wall']:.3f} s, "
                    f"load {seen['load_1min_before']:.1f}->{seen['load_1min_after']:.1f}, "
                    f"correct={record['correctness']['matches']}",
                    file=sys.stderr,
                    flush=True,
                )
        pair["ratios"] = {
            key: pair["flower"][key] / pair["ours"][key]
            for key, _, _ in MEASURES
            if pair["ours"][key] > 0
        }
        runs.append(pair)
    flower = [p["flower"] for p in runs]
    ours = [p["ours"] for p in runs]
    keys = [key for key, _, _ in MEASURES] + [
        "round_cpu_with_serde",
        "server_wall",
        "clients_cpu",
        "client_cpu_median",
        "excluded_cpu",
        "bytes_up_per_client_median",
        "bytes_down_per_client_median",
        "process_cpu",
    ]
    medians = {
        "flower": {k: _median(flower, k) for k in keys},
        "ours": {k: _median(ours, k) for k in keys},
    }
    ratios = {k: medians["flower"][k] / medians["ours"][k] for k in keys if medians["ours"][k] > 0}
    return {
        "cell": asdict(cell),
        "description": cell.describe(),
        "pairs": runs,
        "medians": medians,
        "ratios": ratios,
        "all_correct": all(
            p[s]["correctness"]["matches"] for p in runs for s in ("flower", "ours")
        ),
        "aborted_attempts": {
            "flower": sum(len(p["flower"]["aborted_attempts"]) for p in runs),
            "ours": sum(len(p["ours"]["aborted_attempts"]) for p in runs),
        },
        "load_1min": [
            [p[s]["load_1min_before"], p[s]["load_1min_after"]] for p in runs for s in p["order"]
        ],
    }


def primitive_prices(batch: int = 500, runs: int = 7) -> dict[str, Any]:
    """What one unit of each primitive costs on this machine at best, in CPU seconds.

    Measured in this run (the parent process, before and after the cells, the cheaper
    kept), never quoted from another day or host: an X25519 agreement (one ``exchange``,
    no key derivation after it), an X25519 key pair (a public key computed from private
    bytes, no randomness drawn), each the best of ``runs`` batches of ``batch``; and
    AES-128-CTR's keystream rate from :func:`secagg.apps.bench.floors.aes_ctr_rate` (the
    best rate at any buffer size, in cache: the floor the masking benchmark uses too).
    """
    from secagg.apps.bench.floors import aes_ctr_rate, x25519_prices

    x25519 = x25519_prices(batch, runs)
    aes = aes_ctr_rate()
    return {
        **x25519.as_json(),
        "aes_ctr_bytes_per_cpu_second": aes.bytes_per_cpu_second,
        "aes_ctr_floor_buffer_bytes": aes.buffer_bytes,
        "aes_ctr_floor_by_buffer_bytes": aes.as_json()["by_buffer_bytes"],
    }


def cheaper_prices(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The better of two measurements of :func:`primitive_prices` (a slow spell of the
    host during one of them would raise the floor, and flatter whatever is divided by it)."""
    faster = a if a["aes_ctr_bytes_per_cpu_second"] >= b["aes_ctr_bytes_per_cpu_second"] else b
    return {
        "x25519_agreement_cpu_seconds": min(
            a["x25519_agreement_cpu_seconds"], b["x25519_agreement_cpu_seconds"]
        ),
        "x25519_key_pair_cpu_seconds": min(
            a["x25519_key_pair_cpu_seconds"], b["x25519_key_pair_cpu_seconds"]
        ),
        "aes_ctr_bytes_per_cpu_second": faster["aes_ctr_bytes_per_cpu_second"],
        "aes_ctr_floor_buffer_bytes": faster["aes_ctr_floor_buffer_bytes"],
        "aes_ctr_floor_by_buffer_bytes": faster["aes_ctr_floor_by_buffer_bytes"],
    }


def floor_seconds(work: dict[str, int], prices: dict[str, Any]) -> float:
    """The least CPU this round's cryptographic work can take here: its counted X25519
    operations and AES keystream (``ours_round.CryptoWork``) at the best prices."""
    return (
        work["x25519_key_pairs"] * prices["x25519_key_pair_cpu_seconds"]
        + work["x25519_agreements"] * prices["x25519_agreement_cpu_seconds"]
        + work["aes_keystream_bytes"] / prices["aes_ctr_bytes_per_cpu_second"]
    )


def attach_floor(cell: dict[str, Any], prices: dict[str, Any]) -> None:
    """Our round's floor for every pair of a finished cell, and both systems against it.

    The floor is the work *our* round did, counted as it ran, so it is the floor of this
    protocol with these primitives; Flower's round does the same protocol's work."""
    floors_per_pair = []
    for pair in cell["pairs"]:
        floor = floor_seconds(pair["ours"]["crypto_work"], prices)
        pair["ours"]["floor_cpu_seconds"] = floor
        floors_per_pair.append(floor)
    floor = statistics.median(floors_per_pair)
    ours = cell["medians"]["ours"]["round_cpu"]
    flower = cell["medians"]["flower"]["round_cpu"]
    cell["floor"] = {
        "what": "median over pairs of our round's counted X25519 key pairs and agreements "
        "and AES-CTR keystream bytes, priced at this run's best CPU rates (prices)",
        "floor_cpu_seconds": floor,
        "floor_cpu_seconds_per_pair": floors_per_pair,
        "ours_round_cpu_vs_floor": ours / floor,
        "flower_round_cpu_vs_floor": flower / floor,
        # the issue's 30x asks ours to spend at most Flower's round / 30
        "target_asks_ours_within_floor_multiple": flower / TARGET_ROUND_CPU_RATIO / floor,
    }


def run_ckks(clients: int, d: int, cohort: int, seed: int) -> dict[str, Any]:
    log: list[str] = []
    args = ["--clients", str(clients), "--d", str(d), "--cohort", str(cohort), "--seed", str(seed)]
    record, seen = _child("ckks.py", args, log)
    record.update(seen)
    return record


def _fmt(value: float, key: str) -> str:
    if key.startswith("bytes"):
        return f"{value:.2f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def markdown(result: dict[str, Any]) -> str:
    """The run as Markdown: one table per cell, the target line, the CKKS table."""
    lines = [
        "# Flower 1.42 vs secagg: the same SecAgg+ rounds, side by side",
        "",
        f"Run {result['started_at']}, {result['seconds']:.0f} s; machine: "
        f"{result['machine']['cpu_model']}, {result['machine']['cpus']} CPUs; "
        f"flwr {result['machine']['versions'].get('flwr')}, "
        f"numpy {result['machine']['versions'].get('numpy')}, "
        f"tenseal {result['machine']['versions'].get('tenseal')}. "
        "Ratio = Flower / ours of the medians over ABBA pairs; CPU is `process_time`.",
        "",
    ]
    for cell in result.get("cells", []):
        loads = [x for pair in cell["load_1min"] for x in pair]
        aborted = cell["aborted_attempts"]
        lines += [
            f"## {cell['description']}",
            "",
            f"{len(cell['pairs'])} pair(s); all rounds correct: "
            f"{'yes' if cell['all_correct'] else '**NO**'}; aborted and rerun (new graph): "
            f"Flower {aborted['flower']}, ours {aborted['ours']}; "
            f"1-min load {min(loads):.1f}-{max(loads):.1f}.",
            "",
            "| measure | ours | Flower | ratio Flower / ours | per pair |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key, label, _ in MEASURES:
            ours, flower = cell["medians"]["ours"][key], cell["medians"]["flower"][key]
            ratio = cell["ratios"].get(key)
            per_pair = ", ".join(
                f"{p['ratios'][key]:.1f}" for p in cell["pairs"] if key in p["ratios"]
            )
            lines.append(
                f"| {label} | {_fmt(ours, key)} | {_fmt(flower, key)} | "
                f"**{ratio:.1f}** | {per_pair} |"
                if ratio is not None
                else f"| {label} | {_fmt(ours, key)} | {_fmt(flower, key)} | - | - |"
            )
        lines.append("")
        floor = cell.get("floor")
        prices = result.get("primitive_prices")
        if floor and prices:
            work = cell["pairs"][0]["ours"]["crypto_work"]
            lines += [
                f"Floor, measured in this run: {floor['floor_cpu_seconds'] * 1e3:.1f} ms of CPU "
                f"(our round's {work['x25519_key_pairs']} X25519 key pairs and "
                f"{work['x25519_agreements']} agreements at "
                f"{prices['x25519_key_pair_cpu_seconds'] * 1e6:.1f} and "
                f"{prices['x25519_agreement_cpu_seconds'] * 1e6:.1f} us, "
                f"{work['aes_keystream_bytes'] / 1e6:.1f} MB of AES-CTR keystream at "
                f"{prices['aes_ctr_bytes_per_cpu_second'] / 1e9:.2f} GB/s in cache; pair 0): "
                f"ours {floor['ours_round_cpu_vs_floor']:.2f}x it, Flower "
                f"{floor['flower_round_cpu_vs_floor']:.1f}x; "
                f"{TARGET_ROUND_CPU_RATIO:.0f}x Flower asks ours within "
                f"{floor['target_asks_ours_within_floor_multiple']:.2f}x it.",
                "",
            ]
    target = result.get("target")
    if target:
        verdict = "met" if target["met"] else "not met"
        lines += [
            f"**Target** ({target['what']}): ratio {target['ratio']:.1f} "
            f"against {target['limit']:.0f}: {verdict}.",
            "",
        ]
    if result.get("flower_missing"):
        lines += [f"Flower side not run: {result['flower_missing']}", ""]
    ckks = result.get("ckks")
    if ckks:
        nv, us = ckks["nvflare"], ckks["ours"]
        p = us["parameters"]
        lines += [
            f"## CKKS: NVFlare's TenSEAL parameters vs ours ({ckks['clients']} clients, "
            f"d={ckks['d']:g}, TenSEAL {ckks['tenseal']})",
            "",
            f"NVFlare: N=8192, coeff_mod_bit_sizes [60, 40, 40], scale 2^40. Ours for "
            f"{ckks['cohort']} clients (bound 1, precision 1e-6): N={p['poly_modulus_degree']}, "
            f"{p['coeff_mod_bit_sizes']}, scale 2^{p['scale_bits']}.",
            "",
            "| measure | ours | NVFlare's parameters | ratio NVFlare / ours |",
            "| --- | --- | --- | --- |",
        ]
        rows = [
            ("bytes_per_parameter", "bytes per parameter (one client's upload / d)"),
            ("encrypt_cpu_per_client", "encrypt CPU per client (s)"),
            ("add_cpu_per_client", "server parse + add CPU per client (s)"),
            ("decrypt_cpu", "decrypt the sum, CPU (s)"),
            ("max_abs_error_of_sum", "max abs error of the sum"),
        ]
        for key, label in rows:
            ratio = nv[key] / us[key] if us[key] else float("nan")
            mine, theirs = (
                f"{v:.2e}" if "error" in key else _fmt(v, key) for v in (us[key], nv[key])
            )
            lines.append(f"| {label} | {mine} | {theirs} | {ratio:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument("--quick", action="store_true", help="tiny n and d, one pair: seconds")
    parser.add_argument("--out", default=str(HERE / "results"), metavar="DIR")
    parser.add_argument(
        "--cells",
        default=None,
        help=f"comma-separated, from {sorted(CELLS)} (default: all; --quick: its own tiny cell)",
    )
    parser.add_argument("--pairs", type=int, default=None, help="ABBA pairs per cell")
    parser.add_argument("--seed", type=int, default=1, help="pair i uses seed + i")
    parser.add_argument("--no-ckks", action="store_true", help="skip the CKKS comparison")
    parser.add_argument("--ckks-clients", type=int, default=None)
    parser.add_argument(
        "--markdown", metavar="JSON", help="print an earlier peers.json as Markdown"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text(encoding="utf-8"))), end="")
        return 0
    if args.pairs is not None and args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.quick:
        cells = list(QUICK_CELLS.values())
    else:
        names = args.cells.split(",") if args.cells else list(CELLS)
        unknown = [n for n in names if n not in CELLS]
        if unknown:
            parser.error(f"unknown cell(s) {unknown}; choose from {sorted(CELLS)}")
        cells = [CELLS[n] for n in names]
    if args.pairs is not None:
        cells = [replace(c, default_pairs=args.pairs) for c in cells]

    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "peers",
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
        "machine": machine_facts(),
        "definitions": DEFINITIONS,
        "method": (__doc__ or "").split("\n\n", 2)[2],
        "cells": [],
    }
    missing = flower_status()
    if missing is None:
        prices = primitive_prices()
        for cell in cells:
            if not args.no_progress:
                print(f"{cell.describe()}: {cell.default_pairs} pair(s)", file=sys.stderr)
            result["cells"].append(
                run_cell(cell, cell.default_pairs, args.seed, not args.no_progress)
            )
        prices = cheaper_prices(prices, primitive_prices())
        result["primitive_prices"] = prices
        for record in result["cells"]:
            attach_floor(record, prices)
        issue = next((c for c in result["cells"] if c["cell"]["name"] == "issue"), None)
        if issue is not None:
            ratio = issue["ratios"]["round_cpu"]
            result["target"] = {
                "what": "SecAgg+ n=100, d=1e5, k=6, t=4, 10 % drop: ours >= 30x faster than "
                "Flower 1.42 in round CPU",
                "ratio": ratio,
                "limit": TARGET_ROUND_CPU_RATIO,
                "met": ratio >= TARGET_ROUND_CPU_RATIO,
            }
    else:
        result["flower_missing"] = missing
    if not args.no_ckks:
        clients = args.ckks_clients or (3 if args.quick else 10)
        d, cohort = (10_000, 10) if args.quick else (100_000, 100)
        if not args.no_progress:
            print(f"CKKS: {clients} clients, d={d}", file=sys.stderr)
        result["ckks"] = run_ckks(clients, d, cohort, args.seed)
    result["seconds"] = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "peers.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = markdown(result)
    (out / "peers.md").write_text(text, encoding="utf-8")
    print(text, end="")
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
