"""``--ray-address`` (or ``RAY_ADDRESS``) at a port that accepts TCP but is no Ray GCS
is refused before the data, the prior and the baselines, not in ``ray.init`` about
115 s into the run (review, 2026-12-05)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.apps.simulation import runner

SHORT = ["--branches", "3", "--rounds", "1", "--train-rows", "3000", "--quiet"]


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the data nor any training may start."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the run started before the refusal")

    monkeypatch.setattr(runner, "_load_data", refuse)
    monkeypatch.setattr(runner, "prior_model", refuse)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Nothing on stderr: the tests read the command's one line there."""


@pytest.fixture
def web_server() -> Iterator[str]:
    """A port that accepts TCP and speaks HTTP/1, not gRPC."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


@pytest.fixture
def grpc_server() -> Iterator[str]:
    """A gRPC server without Ray's services (as the federation's own port would be)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait(30)


@pytest.mark.usefixtures("no_data")
@pytest.mark.parametrize(
    ("server", "said"),
    [("web_server", "not gRPC, so not a Ray GCS"), ("grpc_server", "not Ray's (no GCS service")],
)
def test_a_port_that_is_not_ray_is_refused_before_any_data(
    tmp_path: Path, request: pytest.FixtureRequest, server: str, said: str
) -> None:
    address = request.getfixturevalue(server)
    started = time.monotonic()
    error = _one_line_error(
        _simulate(*SHORT, "--engine", "ray", "--ray-address", address, "--out", str(tmp_path / "r"))
    )
    assert time.monotonic() - started < 60  # about 115 s, in ray.init, before
    assert error.startswith(f"Error: --ray-address {address}: cannot reach Ray there"), error
    assert said in error
    assert not (tmp_path / "r").exists()


@pytest.mark.usefixtures("no_data")
def test_the_variable_is_named_when_it_points_at_no_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_server: str
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", web_server)
    error = _one_line_error(_simulate(*SHORT, "--engine", "ray", "--out", str(tmp_path / "r")))
    assert error.startswith(f"Error: RAY_ADDRESS={web_server} (the environment variable"), error
    assert "not gRPC" in error


def test_no_verdict_without_an_answer_or_under_tls(
    monkeypatch: pytest.MonkeyPatch, web_server: str
) -> None:
    with socket.socket() as silent:  # accepts (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        assert runner._not_a_ray_gcs(f"127.0.0.1:{port}", timeout=0.5) is None
    monkeypatch.setenv("RAY_USE_TLS", "1")  # a plaintext probe of a TLS GCS cannot tell
    assert runner._not_a_ray_gcs(web_server) is None
    assert runner._not_a_ray_gcs(f"ray://{web_server}") is None  # Ray Client: not a GCS


def test_a_real_ray_gcs_is_not_refused() -> None:
    pytest.importorskip("ray", reason="needs the ray extra: pip install 'secagg[ray]'")
    from _ray import local_ray

    with local_ray(num_cpus=1) as ray:
        address = ray.get_runtime_context().gcs_address
        assert runner._not_a_ray_gcs(address) is None
