"""The gRPC benchmark's quick mode runs real rounds over loopback mTLS and checks itself.

One run (12 clients in 3 worker processes, d = 10 000, 1 round) through ``main``
as the command line would call it: the JSON must carry every per-round figure,
both runs must have completed with every client, the payload counts of the two
runs must agree, the wire must carry at least the payload, and no worker may
outlive the run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from secagg.aggregation.masking import largest_safe_scale
from secagg.apps.bench import grpc as bench_grpc

ROUND_FIELDS = {
    "round",
    "grpc_round_seconds",
    "inprocess_round_seconds",
    "grpc_vs_inprocess",
    "grpc_server_cpu_seconds",
    "bytes_sent_by_server",
    "bytes_received_by_server",
    "inprocess_bytes_sent_by_server",
    "inprocess_bytes_received_by_server",
    "messages_sent_by_server",
    "messages_received_by_server",
    "framed_bytes_sent_by_server",
    "framed_bytes_received_by_server",
    "wire_bytes_sent_by_server",
    "wire_bytes_received_by_server",
    "bytes_sent_per_client",
    "bytes_received_per_client",
    "wire_bytes_sent_per_client",
    "wire_bytes_received_per_client",
}


def _children() -> set[int]:
    """Live child processes of this test process (Linux), to catch orphaned workers."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    if not tasks.is_dir():
        return set()
    children: set[int] = set()
    for task in tasks.iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        children |= {int(pid) for pid in text.split()}
    return children


@pytest.mark.slow
def test_quick_mode_reports_both_runs_and_their_sanity_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _children()
    out = tmp_path / "grpc.json"
    bench_grpc.main(["--quick", "--no-progress", "--out", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result  # stdout is the same JSON

    q = bench_grpc.QUICK
    n, d = q["clients"], q["dimension"]
    assert result["benchmark"] == "grpc"
    assert result["machine"]["cpus"] >= 1
    setting = result["setting"]
    assert (setting["clients"], setting["dimension"], setting["rounds"]) == (n, d, q["rounds"])
    assert setting["processes"] == q["processes"]
    assert setting["backend"] == "secagg+"
    assert setting["scale"] == largest_safe_scale(n, 1.0, 32)

    rounds = result["rounds"]
    assert len(rounds) == q["rounds"]
    for row in rounds:
        assert set(row) == ROUND_FIELDS
        assert row["grpc_round_seconds"] > 0 and row["inprocess_round_seconds"] > 0
        ratio = row["grpc_round_seconds"] / row["inprocess_round_seconds"]
        assert math.isclose(row["grpc_vs_inprocess"], ratio)
        # every client downloads the float32 model and uploads its masked 32-bit words
        assert row["bytes_sent_by_server"] >= n * 4 * d
        assert row["bytes_received_by_server"] >= n * 4 * d
        assert row["bytes_sent_per_client"] * n == pytest.approx(row["bytes_sent_by_server"])
        assert row["bytes_sent_by_server"] == row["inprocess_bytes_sent_by_server"]
        assert row["bytes_received_by_server"] == row["inprocess_bytes_received_by_server"]
        assert row["framed_bytes_sent_by_server"] > row["bytes_sent_by_server"]
        if row["wire_bytes_sent_by_server"] is not None:  # Linux: TCP_INFO
            # TLS and HTTP/2 add to the framed bytes, but only by a few percent. The
            # counters are TCP *acknowledged* bytes read at round boundaries, so bytes
            # still in flight at a boundary land in the next round: only the upper bound
            # holds round by round (a lagging snapshot was seen to undercount by a third)
            assert 0 < row["wire_bytes_sent_by_server"] < 1.1 * row["framed_bytes_sent_by_server"]
            assert row["wire_bytes_received_by_server"] > 0
    assert set(result["median"]) >= ROUND_FIELDS - {"round"} - {
        "wire_bytes_sent_by_server",
        "wire_bytes_received_by_server",
        "wire_bytes_sent_per_client",
        "wire_bytes_received_per_client",
    }

    sanity = result["sanity"]
    assert sanity["rounds_completed_grpc"] == sanity["rounds_completed_inprocess"] == q["rounds"]
    assert sanity["all_clients_contributed"] and sanity["branches_completed_all_rounds"]
    assert sanity["one_connection_per_client"]
    assert sanity["payload_bytes_relative_gap"] == 0
    assert sanity["models_agree"]
    assert 0 <= sanity["max_model_difference"] < sanity["model_tolerance"]
    assert result["grpc"]["tcp_connections"] in (None, n)
    assert _children() <= before  # every worker was reaped


def test_counting_endpoint_counts_payloads_and_chunks() -> None:
    class Sink:
        def __init__(self) -> None:
            self.inbox = [("a", b"x" * 10)]

        def send(self, name: str, payload: bytes) -> None:
            if name == "gone":
                raise ConnectionError(name)

        def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
            return self.inbox.pop() if self.inbox else None

        def connected(self) -> set[str]:
            return {"a"}

    counter = bench_grpc.CountingEndpoint(Sink())
    counter.send("a", b"y" * (bench_grpc.CHUNK_BYTES + 1))
    with pytest.raises(ConnectionError):
        counter.send("gone", b"z")  # not delivered: not counted
    assert counter.receive(0) == ("a", b"x" * 10)
    assert counter.receive(0) is None
    assert (counter.sent_bytes, counter.sent_messages, counter.sent_chunks) == (
        bench_grpc.CHUNK_BYTES + 1,
        1,
        2,
    )
    assert (counter.received_bytes, counter.received_messages) == (10, 1)
    assert counter.connected() == {"a"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        bench_grpc.run_benchmark(clients=4, processes=5, dimension=10, rounds=1)
