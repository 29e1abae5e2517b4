"""The masking benchmark runs real rounds, checks their sums and reports every metric."""

from __future__ import annotations

import json
import math
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
from _masking_bench import cheap_masking_measurements
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secagg.apps.bench import floors, headline, masking
from secagg.crypto import kx
from secagg.protocol import Server, ServerPhase
from secagg.protocol import server as server_module

N, D = 10, 1000

METRICS = {
    "n",
    "d",
    "graph",
    "k",
    "threshold",
    "dropout",
    "dropped",
    "included",
    "correct",
    "client_masking_seconds_median",
    "server_sum_seconds",
    "server_unmasking_seconds",
    "server_total_seconds",
    "server_peak_bytes",
    "plaintext_float32_sum_seconds",
    "aes_ctr_bytes_per_second",
    "unmasking_keystream_vectors",
    "unmasking_bound_cpu_seconds",
    "server_bound_cpu_seconds",
    "aes_ctr_bytes_per_cpu_second",
    "aes_ctr_floor_buffer_bytes",
    "add_bytes_per_cpu_second",
    "add_floor_buffer_bytes",
    "plaintext_float32_sum_cpu_seconds",
    "server_cpu_seconds",
    "server_vs_plaintext",
    "unmasking_vs_bound",
    "server_vs_bound",
}

#: the fields of the least unfused server CPU (since 2026-12-08): a run before has none
LEAST_METRICS = {
    "x25519_agreement_cpu_seconds",
    "x25519_key_pair_cpu_seconds",
    "unmasking_x25519_key_pairs",
    "unmasking_x25519_agreements",
    "unmasking_x25519_floor_cpu_seconds",
    "unfused_least_cpu_seconds",
    "unfused_least_vs_aes_floor",
}
METRICS |= LEAST_METRICS


def _tiny(**overrides):
    """The benchmark on this file's tiny cell (N clients, D words), its machine
    measurements cheap (tests/_masking_bench.py says why nothing here needs them full)."""
    grid = {**masking.QUICK_GRID, "ns": (N,), "ds": (D,), **overrides}
    with cheap_masking_measurements():
        return masking.run_benchmark(**grid, progress=False)


@pytest.fixture(scope="module")
def quick_grid_with_slow_wall_clocks():
    """The quick grid's every graph and dropout on one tiny (n, d), run once for the tests
    that only read its cells; the PRG's and the addition's wall-clock figures are made
    absurdly slow (1 kB/s, 1 s an add): no verdict may use them, which
    test_the_unmasking_bound_is_the_in_cache_cpu_floor_not_a_slow_wall_clock_rate checks
    on these cells, and the other readers do not look at them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(masking, "_aes_rate", lambda d, seconds=0.3: 1e3)  # 1 kB/s
        patch.setattr(masking, "_add_seconds", lambda d, repeats=21: 1.0)  # 1 s an add
        result = _tiny()
    return json.loads(json.dumps(result))  # JSON-ready, and what the CLI prints


def test_quick_grid_on_a_tiny_cell_reports_correct_rounds_as_json(
    quick_grid_with_slow_wall_clocks,
):
    result = quick_grid_with_slow_wall_clocks
    assert result["benchmark"] == "masking"
    assert {"machine", "grid", "definitions", "memory_method", "cells", "targets"} <= set(result)
    assert result["machine"]["cpus"] >= 1
    cells = result["cells"]
    assert len(cells) == len(masking.QUICK_GRID["graphs"]) * len(masking.QUICK_GRID["dropouts"])
    for cell in cells:
        assert cell["status"] == "complete"
        assert cell["correct"] is True  # the secure sum equalled numpy's sum of the same words
        assert METRICS <= set(cell)
        assert cell["dropped"] == math.floor(cell["dropout"] * N + 1e-9)
        assert cell["included"] == N - cell["dropped"]
        assert cell["server_peak_bytes"] >= D * 4  # at least the accumulator
        parts = cell["server_sum_seconds"] + cell["server_close_seconds"]
        assert cell["server_total_seconds"] == pytest.approx(
            parts + cell["server_unmasking_seconds"]
        )
        if cell["dropped"]:  # the server expands pair masks as well as self-masks
            assert cell["unmasking_keystream_vectors"] > cell["included"]
        else:
            assert cell["unmasking_keystream_vectors"] == N
    assert result["targets"] == []  # no target cell (n=100/1000, d=1e6) in this grid
    table = masking.markdown_table(result)
    assert table.count("\n") == 2 + len(cells)


def test_the_least_unfused_server_adds_the_unmasking_x25519_to_the_bound(
    quick_grid_with_slow_wall_clocks,
):
    """The least server CPU of an unfused implementation is the server's bound plus the
    X25519 its unmasking cannot skip: one key pair per dropped client with a surviving
    neighbour and one agreement per pair mask, at the prices measured in the run."""
    for cell in quick_grid_with_slow_wall_clocks["cells"]:
        pair_masks = cell["unmasking_keystream_vectors"] - cell["included"]
        assert cell["unmasking_x25519_agreements"] == pair_masks
        assert 0 <= cell["unmasking_x25519_key_pairs"] <= cell["dropped"]
        assert (cell["unmasking_x25519_key_pairs"] == 0) == (pair_masks == 0)
        assert cell["x25519_agreement_cpu_seconds"] > 0 < cell["x25519_key_pair_cpu_seconds"]
        x25519 = (
            cell["unmasking_x25519_key_pairs"] * cell["x25519_key_pair_cpu_seconds"]
            + cell["unmasking_x25519_agreements"] * cell["x25519_agreement_cpu_seconds"]
        )
        assert cell["unmasking_x25519_floor_cpu_seconds"] == pytest.approx(x25519)
        least = cell["server_bound_cpu_seconds"] + x25519
        assert cell["unfused_least_cpu_seconds"] == pytest.approx(least)
        assert cell["unfused_least_vs_aes_floor"] == pytest.approx(
            least / cell["aes_floor_cpu_seconds"]
        )
        if cell["dropped"]:
            assert cell["unfused_least_cpu_seconds"] > cell["server_bound_cpu_seconds"]


def _aes_target_cell(**fields):
    return {
        "n": 1000,
        "d": 1_000_000,
        "graph": "harary",
        "dropout": 0.1,
        "default_parameters": True,
        "status": "complete",
        **fields,
    }


@pytest.mark.parametrize(
    ("least", "reachable"), [(1.34, False), (1.3, True), (1.2, True), (1.3000001, False)]
)
def test_the_aes_floor_target_says_whether_an_unfused_server_can_meet_it(least, reachable):
    cell = _aes_target_cell(server_cpu_vs_aes_floor=1.45, unfused_least_vs_aes_floor=least)
    (target,) = [t for t in masking._targets([cell]) if t["metric"] == "server_cpu_vs_aes_floor"]
    assert target["pass"] is False and target["value"] == 1.45
    assert target["least_reachable"] == {
        "field": "unfused_least_vs_aes_floor",
        "value": least,
        "reachable": reachable,
        "cell": {
            k: cell.get(k) for k in ("n", "d", "graph", "dropout", "repeat", "k", "threshold")
        },
    }
    assert target["inputs"]["unfused_least_vs_aes_floor"] == least


def test_the_least_reachable_is_the_worst_matching_cells():
    """The target holds only if it can hold in every matching cell: the least reachable
    quoted is the largest over them, not the worst cell's by the measured metric."""
    cells = [
        _aes_target_cell(server_cpu_vs_aes_floor=1.6, unfused_least_vs_aes_floor=1.25),
        _aes_target_cell(server_cpu_vs_aes_floor=1.4, unfused_least_vs_aes_floor=1.35, repeat=1),
    ]
    (target,) = [t for t in masking._targets(cells) if t["metric"] == "server_cpu_vs_aes_floor"]
    assert target["value"] == 1.6
    assert target["least_reachable"]["value"] == 1.35
    assert target["least_reachable"]["reachable"] is False
    # named: the cell of the least (repeat 1), not worst_cell (repeat absent: None)
    assert target["least_reachable"]["cell"]["repeat"] == 1
    assert target["worst_cell"]["repeat"] is None


def test_a_cell_without_the_least_field_quotes_no_least_reachable():
    """A JSON of an older run (no unfused_least_vs_aes_floor) is judged as before."""
    (target,) = [
        t
        for t in masking._targets([_aes_target_cell(server_cpu_vs_aes_floor=1.2)])
        if t["metric"] == "server_cpu_vs_aes_floor"
    ]
    assert target["pass"] is True and "least_reachable" not in target


def test_a_wrong_secure_sum_makes_the_benchmark_fail(monkeypatch):
    honest = Server.result

    def off_by_one(self):
        return honest(self) + np.uint32(1)

    monkeypatch.setattr(Server, "result", off_by_one)
    with pytest.raises(masking.BenchmarkError, match="wrong secure sum"):
        _tiny(dropouts=(0.0,), graphs=("harary",))


def test_targets_report_measured_ratio_and_verdict():
    cell = {
        "n": 100,
        "d": 1_000_000,
        "graph": "harary",
        "dropout": 0.0,
        "default_parameters": True,
        "status": "complete",
        "server_vs_plaintext": 2.0,
    }
    (target,) = masking._targets([cell])
    assert target["value"] == 2.0 and target["ratio_to_limit"] == 0.5 and target["pass"] is True
    (aborted,) = masking._targets([{**cell, "status": "aborted"}])
    assert aborted["pass"] is False and aborted["value"] is None


def test_script_entry_point_prints_only_json_on_stdout(capsys, tmp_path):
    out = tmp_path / "bench.json"
    with cheap_masking_measurements():
        masking.main(
            ["--n", "6", "--d", "500", "--dropout", "0.3", "--graph", "harary", "--out", str(out)]
        )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report == json.loads(out.read_text())
    assert len(report["cells"]) == 1 and report["cells"][0]["dropped"] == 1
    assert "dropout=0.3" in captured.err  # progress goes to stderr


def test_cli_prints_the_benchmark_json():
    from secagg.apps.cli import main

    with cheap_masking_measurements():
        result = CliRunner().invoke(
            main,
            ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"],
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["benchmark"] == "masking" and len(report["cells"]) == 1
    assert report["cells"][0]["correct"] is True


def _in_cache_aes_rate(size: int = 256 << 10, calls: int = 256, runs: int = 5) -> float:
    """AES-128-CTR bytes per CPU second over one cache-sized buffer, best of ``runs``."""
    source, sink = bytearray(size), bytearray(size)
    best = 0.0
    for _ in range(runs):
        stream = Cipher(algorithms.AES(os.urandom(16)), modes.CTR(bytes(16))).encryptor()
        cpu = time.process_time()
        for _ in range(calls):
            stream.update_into(source, sink)
        best = max(best, calls * size / max(time.process_time() - cpu, 1e-9))
    return best


def test_the_aes_floor_is_the_fastest_rate_not_the_speed_of_memory():
    """The floor the server is held to is AES at its fastest on this core.

    One call over 64 MiB alone ran at the speed of RAM on a host with little memory
    bandwidth (3.4 GB/s against 9.7 GB/s in cache), and the benchmark then reported
    the server at 0.59 times a floor it was really 1.65 times above. Both figures are
    CPU time and best-of, so a busy machine moves them alike; the factor 0.7 leaves
    room for noise, not for the 2.8 times of that defect.
    """
    in_cache = _in_cache_aes_rate()
    assert floors.aes_ctr_rate().bytes_per_cpu_second >= 0.7 * in_cache


def test_the_unmasking_bound_is_the_in_cache_cpu_floor_not_a_slow_wall_clock_rate(
    quick_grid_with_slow_wall_clocks,
):
    """The bound "unmasking <= 1.5x" is judged against is the keystream at AES's best rate.

    It was the PRG's wall-clock rate over a d-word buffer plus a cold d-word addition
    (6.4 GB/s and 13 GB/s at d = 1e6 on the 2026-12-04 Xeon host, against 9.75 GB/s and
    39-47 GB/s in cache), so the target passed at 0.6-0.8x a bound the server was above.
    Here (in the shared run) those wall-clock figures are made absurdly slow: a bound
    built from them grows without limit; the honest one does not move.
    """
    (cell,) = [
        c
        for c in quick_grid_with_slow_wall_clocks["cells"]
        if c["graph"] == "harary" and c["dropout"] == 0.1
    ]
    assert cell["aes_ctr_bytes_per_second"] == 1e3 and cell["add_seconds"] == 1.0
    keystream = cell["unmasking_keystream_bytes"]
    in_cache = keystream / _in_cache_aes_rate()  # the keystream at AES's rate in cache
    unmask_bound = cell["server_unmasking_cpu_seconds"] / cell["unmasking_vs_bound"]
    server_bound = cell["server_cpu_seconds"] / cell["server_vs_bound"]
    # AES and its addition in cache (the addition is the faster), with room for noise
    assert unmask_bound <= 4 * in_cache
    assert server_bound <= 4 * in_cache + cell["plaintext_float32_sum_cpu_seconds"]


def test_every_ratio_is_recomputable_from_the_cells_own_figures(
    quick_grid_with_slow_wall_clocks,
):
    """Each verdict's ratio is CPU time against floors of the same run, all in the JSON."""
    cells = quick_grid_with_slow_wall_clocks["cells"]  # with and without pair masks
    assert any(c["unmasking_keystream_vectors"] > c["included"] for c in cells)
    for c in cells:
        kb = c["unmasking_keystream_bytes"]
        assert kb == c["unmasking_keystream_vectors"] * D * 4
        aes = kb / c["aes_ctr_bytes_per_cpu_second"]
        bound = aes + kb / c["add_bytes_per_cpu_second"]
        plaintext = min(c["plaintext_float32_sum_cpu_seconds_runs"])
        assert c["plaintext_float32_sum_cpu_seconds"] == plaintext  # the best run, not the median
        assert c["server_unmasking_cpu_seconds"] == min(c["server_unmasking_cpu_seconds_runs"])
        assert c["server_sum_cpu_seconds"] == min(c["server_sum_cpu_seconds_runs"])
        server = (
            c["server_sum_cpu_seconds"]
            + c["server_close_cpu_seconds"]
            + c["server_unmasking_cpu_seconds"]
        )
        assert c["server_cpu_seconds"] == pytest.approx(server)
        assert c["aes_floor_cpu_seconds"] == pytest.approx(aes)
        assert c["unmasking_bound_cpu_seconds"] == pytest.approx(bound)
        assert c["server_bound_cpu_seconds"] == pytest.approx(bound + plaintext)
        assert c["server_cpu_vs_aes_floor"] == pytest.approx(server / aes)
        assert c["unmasking_vs_bound"] == pytest.approx(c["server_unmasking_cpu_seconds"] / bound)
        assert c["server_vs_bound"] == pytest.approx(server / (bound + plaintext))
        assert c["server_vs_plaintext"] == pytest.approx(server / plaintext)
        # the floors say where they were reached, and their rate at every buffer size
        for name in ("aes_ctr", "add"):
            by_size = c[f"{name}_floor_by_buffer_bytes"]
            best = c[
                f"{name}_bytes_per_cpu_second" if name == "aes_ctr" else "add_bytes_per_cpu_second"
            ]
            assert best == max(by_size.values())
            assert by_size[str(c[f"{name}_floor_buffer_bytes"])] == best


def test_a_target_quotes_its_worst_cell_and_the_figures_to_recheck_it():
    where = {"n": 1000, "d": 1_000_000, "graph": "harary", "default_parameters": True}
    common = {**where, "status": "complete", "repeat": 0, "k": 36, "threshold": 19}
    fields = {
        "server_unmasking_cpu_seconds": 2.0,
        "server_unmasking_cpu_seconds_runs": [2.0, 2.1],
        "unmasking_keystream_bytes": 16 * 10**9,
        "aes_ctr_bytes_per_cpu_second": 10 * 10**9,
        "aes_ctr_floor_buffer_bytes": 256 << 10,
        "add_bytes_per_cpu_second": 40 * 10**9,
        "add_floor_buffer_bytes": 64 << 10,
        "unmasking_bound_cpu_seconds": 1.6 + 0.4,
    }
    calm = {**common, **fields, "dropout": 0.1, "unmasking_vs_bound": 1.0}
    slow = {**calm, "server_unmasking_cpu_seconds": 3.2, "unmasking_vs_bound": 1.6, "repeat": 1}
    targets = [t for t in masking._targets([calm, slow]) if t["metric"] == "unmasking_vs_bound"]
    (target,) = [t for t in targets if "n=1000" in t["target"]]
    assert target["value"] == 1.6 and target["pass"] is False  # 1.6 > 1.5: the worst cell fails
    assert target["worst_cell"]["repeat"] == 1
    inputs = target["inputs"]
    assert inputs["server_unmasking_cpu_seconds"] / inputs["unmasking_bound_cpu_seconds"] == 1.6
    kb = inputs["unmasking_keystream_bytes"]
    recomputed = (
        kb / inputs["aes_ctr_bytes_per_cpu_second"] + kb / inputs["add_bytes_per_cpu_second"]
    )
    assert recomputed == pytest.approx(inputs["unmasking_bound_cpu_seconds"])
    (calm_only,) = [
        t
        for t in masking._targets([calm])
        if t["metric"] == "unmasking_vs_bound" and "n=1000" in t["target"]
    ]
    assert calm_only["pass"] is True and calm_only["value"] == 1.0


def _cell_at_every_limit() -> list[dict]:
    """One complete cell per target check whose metric sits exactly at the target's limit."""
    cells = []
    for check in masking._TARGET_CHECKS:
        where, metric, limit = check[1], check[2], check[3]
        cell = {"status": "complete", "n": 0, "d": 0, "graph": "harary", "dropout": 0.0, **where}
        cells.append({**cell, "default_parameters": True, metric: limit})
    return cells


def test_a_strict_target_fails_at_its_limit_and_a_non_strict_one_passes_there():
    """'< 1 GB' and '< 0.5 s' are not met by 1e9 bytes or 0.5 s; '<= 4x' is met by 4x.

    Every check used to be ``<=``: a server peak of exactly 1e9 bytes passed '< 1 GB'."""
    verdicts = {}
    for cell in _cell_at_every_limit():
        for target in masking._targets([cell]):
            if target["value"] == target["limit"]:
                verdicts[target["target"]] = target["pass"]
    assert len(verdicts) == len(masking._TARGET_CHECKS)
    memory = [v for name, v in verdicts.items() if "peak memory" in name]
    masking_time = [v for name, v in verdicts.items() if "client masking < 0.5 s" in name]
    ratios = [v for name, v in verdicts.items() if "<=" in name]
    assert memory and not any(memory)
    assert masking_time and not any(masking_time)
    assert ratios and all(ratios)
    just_under = {**_cell_at_every_limit()[-1], "client_masking_seconds_max": 0.4999}
    assert all(t["pass"] for t in masking._targets([just_under]) if "slowest" in t["target"])


def test_each_target_checks_the_comparison_its_statement_makes():
    for name, _, _, limit, comparison in masking._TARGET_CHECKS:
        stated = "<=" if " <= " in name else "<" if " < " in name else None
        assert stated == comparison, name
        assert masking.within(limit, comparison, limit) is (comparison == "<=")
        assert masking.within(limit * 0.999, comparison, limit) is True
        assert masking.within(limit * 1.001, comparison, limit) is False
    with pytest.raises(ValueError, match="comparison"):
        masking.within(1.0, "=<", 2.0)


def test_the_growth_slope_target_is_met_at_its_limit_and_says_how_it_compares():
    cells = [
        {
            "status": "complete",
            "default_parameters": True,
            "d": 100_000,
            "graph": "harary",
            "dropout": 0.1,
            "n": n,
            "server_cpu_seconds": (n / 1000) ** masking.TARGETS["server_cpu_slope"],
        }
        for n in (1000, 10_000)
    ]
    (growth,) = masking.growth_slopes(cells)
    assert growth["server_cpu_slope"] == pytest.approx(1.2)
    assert growth["comparison"] == "<="
    steeper = [{**c, "server_cpu_seconds": (c["n"] / 1000) ** 1.3} for c in cells]
    assert masking.growth_slopes(steeper)[0]["pass"] is False


class _CountingKx:
    """``secagg.crypto.kx`` as the server module sees it, recording the X25519 work of
    the server alone (the clients hold their own reference to the real module)."""

    def __init__(self) -> None:
        self.rebuilt: list[bytes] = []  # the private bytes of every key pair rebuilt
        self.agreements: list[tuple[int, int]] = []  # (party_a, party_b) of every agreement

    def __getattr__(self, name: str):
        return getattr(kx, name)

    def keypair_from_private_bytes(self, raw: bytes):
        self.rebuilt.append(bytes(raw))
        return kx.keypair_from_private_bytes(raw)

    def derive_key(self, private, peer_public, **context):
        self.agreements.append((context["party_a"], context["party_b"]))
        return kx.derive_key(private, peer_public, **context)


@pytest.mark.parametrize(
    ("n", "graph", "tolerated", "dropped"),
    [
        (20, "harary", 0.1, {7, 13}),
        (20, "harary", 0.3, None),  # client 0 and five of its neighbours
        (20, "harary", 0.3, {1, 5, 9, 12, 16, 19}),
        (10, "complete", 0.1, {4}),
        (10, "complete", 0.3, {0, 3, 8}),
        (20, "harary", 0.1, set()),
    ],
)
def test_the_x25519_counted_is_the_x25519_the_server_unmasking_does(
    monkeypatch, n, graph, tolerated, dropped
):
    """The counts the least is priced from are the server's own X25519 calls at unmasking:
    one agreement per (dropped client, surviving neighbour) and one key pair per dropped
    client with a surviving neighbour (rebuilt twice, to check and to use it: one key)."""
    floats = masking._random_floats(n, 200)
    prep = masking._prepare(n, 200, graph, tolerated, floats.view(np.uint32), False)
    if dropped is None:  # dropped clients that neighbour each other: no agreement between them
        dropped = {0, *sorted(masking._fresh_server(prep).graph.neighbours(0))[:5]}
    counting = _CountingKx()
    monkeypatch.setattr(server_module, "kx", counting)
    timed = masking._replay_timed(prep, dropped)
    monkeypatch.undo()
    assert timed.server.phase == ServerPhase.COMPLETE
    runs = len(timed.timings["unmask_runs"])
    key_pairs, agreements = masking._unmasking_x25519(timed.server)
    assert len(counting.agreements) == runs * agreements
    assert len(set(counting.agreements)) == agreements
    assert len(counting.rebuilt) == runs * 2 * key_pairs
    assert len(set(counting.rebuilt)) == key_pairs
    # every agreement pairs a dropped client with a survivor, once each
    for a, b in set(counting.agreements):
        assert (a in dropped) != (b in dropped)
    assert masking._keystream_masks(timed.server) == n - len(dropped) + agreements
    if not dropped:
        assert (key_pairs, agreements) == (0, 0)


def _stub_server(adjacency: dict[int, set[int]], shared: set[int], included: set[int]):
    """What the counts read of a server: its report's responders and its graph."""
    report = SimpleNamespace(
        included=tuple(sorted(included)),
        responders={ServerPhase.SHARE_KEYS.value: tuple(sorted(shared))},
    )
    graph = SimpleNamespace(neighbours=lambda u: frozenset(adjacency[u]))
    return SimpleNamespace(report=report, graph=graph)


@st.composite
def _rounds(draw):
    """A neighbour graph (symmetric, no loops), the clients that shared keys and the
    survivors among them: any sizes, so dropped clients whose every neighbour dropped
    too, and clients gone before sharing keys, occur."""
    n = draw(st.integers(2, 14))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    edges = draw(st.sets(st.sampled_from(pairs))) if pairs else set()
    adjacency: dict[int, set[int]] = {u: set() for u in range(n)}
    for u, v in edges:
        adjacency[u].add(v)
        adjacency[v].add(u)
    shared = draw(st.sets(st.integers(0, n - 1)))
    included = draw(st.sets(st.sampled_from(sorted(shared)))) if shared else set()
    return adjacency, shared, included


@settings(max_examples=200, deadline=None)
@given(_rounds())
@example(({0: {1}, 1: {0, 2}, 2: {1}}, {0, 1, 2}, {2}))  # 0 dropped among dropped only
def test_the_unmasking_x25519_counts_pairs_with_survivors_only(round_):
    adjacency, shared, included = round_
    dropped = shared - included
    pairs = {(u, v) for u in dropped for v in included if v in adjacency[u]}
    key_pairs, agreements = masking._unmasking_x25519(_stub_server(adjacency, shared, included))
    assert agreements == len(pairs)
    assert key_pairs == len({u for u, _ in pairs})
    assert masking._keystream_masks(_stub_server(adjacency, shared, included)) == len(
        included
    ) + len(pairs)


_AES_TARGET_WHERE = {"n": 1000, "d": 1_000_000, "graph": "harary", "dropout": 0.1}


@st.composite
def _target_grids(draw):
    """Cells of a grid around the 1.3x target's: matching ones and ones differing in one
    key (n, graph, dropout, default parameters), some aborted, some from an older run
    without the least field."""
    cells = []
    for repeat in range(draw(st.integers(0, 6))):
        cell = {**_AES_TARGET_WHERE, "default_parameters": True, "repeat": repeat}
        off = draw(st.sampled_from([None, "n", "graph", "dropout", "default_parameters"]))
        if off is not None:
            cell[off] = {"n": 100, "graph": "complete", "dropout": 0.3}.get(off, False)
        kind = draw(st.sampled_from(["complete", "complete", "complete", "aborted", "older"]))
        if kind == "aborted":
            cell["status"] = "aborted"
        else:
            cell["status"] = "complete"
            cell["server_cpu_vs_aes_floor"] = draw(st.floats(1.0, 2.0))
            if kind == "complete":
                least = draw(st.floats(1.0, 2.0) | st.sampled_from([1.3, 1.2999999, 1.3000001]))
                cell["unfused_least_vs_aes_floor"] = least
        cells.append(cell)
    return cells


@settings(max_examples=300, deadline=None)
@given(_target_grids())
def test_the_least_reachable_is_quoted_only_from_every_matching_cell(cells):
    """The 1.3x target quotes the least reachable when every matching cell completed and
    has it: the largest over those cells (the target holds only if it can hold in each),
    reachable as the target's own comparison says; cells of other grids never count."""
    targets = [t for t in masking._targets(cells) if t["metric"] == "server_cpu_vs_aes_floor"]
    matching = [
        c
        for c in cells
        if all(c[k] == v for k, v in _AES_TARGET_WHERE.items()) and c["default_parameters"]
    ]
    if not matching:
        assert targets == []
        return
    (target,) = targets
    complete = all(c["status"] == "complete" for c in matching)
    if not complete:
        assert target["value"] is None and target["pass"] is False
    else:
        assert target["value"] == max(c["server_cpu_vs_aes_floor"] for c in matching)
    if not complete or any("unfused_least_vs_aes_floor" not in c for c in matching):
        assert "least_reachable" not in target
        return
    least = max(c["unfused_least_vs_aes_floor"] for c in matching)
    quoted = target["least_reachable"]
    assert {k: quoted[k] for k in ("field", "value", "reachable")} == {
        "field": "unfused_least_vs_aes_floor",
        "value": least,
        "reachable": least <= masking.TARGETS["server_cpu_vs_aes_floor"],
    }
    # the cell named is one whose least it is
    assert any(
        c["unfused_least_vs_aes_floor"] == least
        and all(c.get(k) == v for k, v in quoted["cell"].items())
        for c in matching
    )
    said = headline({"benchmark": "masking", "cells": cells, "targets": targets})
    assert ("out of reach" in said) is (least > masking.TARGETS["server_cpu_vs_aes_floor"])


def test_a_cell_keeps_the_cheaper_of_its_two_x25519_prices_each_kind():
    """The X25519 prices are measured before and after the cell and the cheaper kept, price
    by price: a slow spell during one measurement would otherwise raise the least."""
    measured = iter(
        [
            floors.X25519Prices(agreement_cpu_seconds=50e-6, key_pair_cpu_seconds=20e-6),
            floors.X25519Prices(agreement_cpu_seconds=30e-6, key_pair_cpu_seconds=70e-6),
        ]
    )
    grid = {**masking.QUICK_GRID, "ns": (N,), "ds": (D,), "dropouts": (0.3,), "graphs": ("harary",)}
    with cheap_masking_measurements(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(floors, "x25519_prices", lambda: next(measured))
        (cell,) = masking.run_benchmark(**grid, progress=False)["cells"]
    assert cell["x25519_agreement_cpu_seconds"] == 30e-6
    assert cell["x25519_key_pair_cpu_seconds"] == 20e-6
    assert cell["unmasking_x25519_key_pairs"] > 0
    assert cell["unmasking_x25519_floor_cpu_seconds"] == pytest.approx(
        cell["unmasking_x25519_key_pairs"] * 20e-6 + cell["unmasking_x25519_agreements"] * 30e-6
    )


def test_an_aborted_cell_is_reported_without_the_least(capsys):
    """A round that aborts has no least (nothing was unmasked): its progress line, the
    Markdown table, the targets whose cell it is and the headline all still read."""
    floats = masking._random_floats(N, D)
    with cheap_masking_measurements():
        prep = masking._prepare(N, D, "harary", 0.1, floats.view(np.uint32), False)
        result = masking._run_cell(prep, floats, 0.7, None)  # far beyond the 10% tolerated
    assert result["status"] == "aborted"
    assert "unfused_least_vs_aes_floor" not in result
    assert result["x25519_agreement_cpu_seconds"] > 0  # the prices were measured all the same
    cell = {
        **_AES_TARGET_WHERE,
        "graph_used": "harary",
        "repeat": 0,
        "default_parameters": True,
        "k": 36,
        "threshold": 19,
        **result,
    }
    assert "ABORTED" in masking._progress_line(cell, 1, 1, time.perf_counter())
    assert "aborted" in masking.markdown_table({"cells": [cell]})
    targets = masking._targets([cell])
    assert targets and all("least_reachable" not in t and t["pass"] is False for t in targets)
    said = headline({"benchmark": "masking", "seconds": 1.0, "cells": [cell], "targets": targets})
    assert "(1 aborted)" in said and "out of reach" not in said


def test_an_older_run_without_the_least_reads_as_before(
    quick_grid_with_slow_wall_clocks, tmp_path, capsys
):
    """A JSON written before the least existed: its Markdown table prints, and a target
    cell of it is judged without a least_reachable."""
    old = json.loads(json.dumps(quick_grid_with_slow_wall_clocks))
    old["cells"] = [{k: v for k, v in c.items() if k not in LEAST_METRICS} for c in old["cells"]]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    masking.main(["--markdown", str(path)])
    table = capsys.readouterr().out
    assert table.count("\n") == 2 + len(old["cells"])
    (cell,) = [c for c in old["cells"] if c["graph"] == "harary" and c["dropout"] == 0.1]
    relabelled = {**cell, **_AES_TARGET_WHERE, "default_parameters": True}
    (target,) = [
        t for t in masking._targets([relabelled]) if t["metric"] == "server_cpu_vs_aes_floor"
    ]
    assert target["value"] == cell["server_cpu_vs_aes_floor"] and "least_reachable" not in target
    assert target["inputs"]["unfused_least_vs_aes_floor"] is None
