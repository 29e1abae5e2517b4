"""End to end over gRPC with mTLS: 8 branch processes, 3 rounds of SecAgg+ with DP.

The final model must equal the in-process run of the same federation with the
same seed, up to the fixed-point encoding error; a revoked branch, a branch
with a certificate from another CA and a branch without a certificate are
refused (and the refusal logged) while the rounds go on without them.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from _threads import free_port
from click.testing import CliRunner

from secagg.apps import cli, devca
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import demo_hook, serve
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = [f"branch-{i:02d}" for i in range(8)]
D = 2000
ROUNDS = 3


def _config(directory: Path, port: int, state: str) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "e2e",
                # not the revoked branch: the server would wait its whole
                # wait_for_clients for a party that can never connect (revocation is
                # checked before the roster, so its refusal still says "revoked")
                "clients": NAMES,
                "dimension": D,
                "rounds": ROUNDS,
                "seed": 11,
                "replay_noise": True,  # the in-process reference replays the same noise
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
            "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
            # no branch is silent: a generous deadline costs nothing and holds eight
            # processes on a busy machine
            "deadlines": {"phase_seconds": 60.0},
            "server": {
                "state": str(directory / state),
                "bind": f"127.0.0.1:{port}",
                "certificates": str(directory / "certs"),
            },
        }
    )


def _branch(port: int, name: str, certificates: Path, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "secagg.apps.cli",
        "client",
        "--server",
        f"127.0.0.1:{port}",
        "--name",
        name,
        "--certs",
        str(certificates),
        "--dimension",
        str(D),
        "--rounds",
        str(ROUNDS),
        "--idle",
        "300",  # the federation's end is announced: this only bounds a lost server
        # no long --connect-timeout: a dial that starts before the server listens is
        # better redialled (the branch does, up to --give-up-after) than left in gRPC's
        # growing reconnect back-off (120 s here cost the test 4 minutes)
        *extra,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _in_process_model(config: FederationConfig, tmp_path: Path) -> np.ndarray:
    hub = InProcessHub()
    for name in NAMES:
        client = FederationClient(name, demo_hook(name, D), hub.connect(name))
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": 300, "rounds": ROUNDS}, daemon=True
        ).start()
    server = FederationServer(config, hub, ServerStore(tmp_path / "in-process.sqlite"))
    server.run(wait_for_clients=120)
    return server.model


@pytest.mark.slow
def test_grpc_federation_of_8_branch_processes_matches_the_in_process_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca_dir = tmp_path / "certs"
    devca.init_ca(ca_dir)
    for name in [*NAMES, "branch-revoked"]:
        devca.issue_client(ca_dir, name)
    devca.revoke(ca_dir, "branch-revoked")
    other = tmp_path / "other-ca"
    devca.init_ca(other)
    devca.issue_client(other, "branch-00")  # right name, wrong CA

    port = free_port()
    config = _config(tmp_path, port, "server.sqlite")
    branches = [_branch(port, name, ca_dir) for name in NAMES]
    intruders = [
        _branch(port, "branch-revoked", ca_dir, "--connect-timeout", "5"),
        _branch(port, "branch-00", other, "--connect-timeout", "5"),
    ]
    with caplog.at_level(logging.WARNING):
        server, results = serve(config, wait_for_clients=120)
    outputs = [b.communicate(timeout=300) for b in branches]
    intruder_outputs = [i.communicate(timeout=300) for i in intruders]

    assert [r.status for r in results] == ["complete"] * ROUNDS, [r.reason for r in results]
    assert all(r.contributed == tuple(NAMES) for r in results)
    for (out, err), branch in zip(outputs, branches, strict=True):
        assert branch.returncode == 0, err
        assert f"{ROUNDS} rounds completed" in out
    assert all(i.returncode != 0 for i in intruders), intruder_outputs
    assert "revoked" in caplog.text  # the refusal is logged by the server

    reference = _in_process_model(_config(tmp_path, port, "reference.sqlite"), tmp_path)
    scale = 2.0**27  # largest_safe_scale(8, 1.0, 32): encoding error < 1/scale per client
    assert np.max(np.abs(server.model - reference)) < 3 * len(NAMES) / scale
    assert not np.array_equal(server.model, np.zeros(D))


@pytest.mark.slow
def test_ckks_federation_over_grpc_with_a_key_holder_process(tmp_path: Path) -> None:
    names = NAMES[:4]
    ca_dir = tmp_path / "certs"
    devca.init_ca(ca_dir)
    for name in [*names, "compliance"]:
        devca.issue_client(ca_dir, name)
    port = free_port()
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": names, "dimension": D, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "dp": {"clip": 1.0, "noise_multiplier": 0.5, "delta": 1e-3},
            "deadlines": {"phase_seconds": 60.0},  # no party is silent
            "server": {
                "state": str(tmp_path / "he.sqlite"),
                "bind": f"127.0.0.1:{port}",
                "certificates": str(ca_dir),
            },
        }
    )
    config_file = tmp_path / "he.toml"
    config_file.write_text(
        "[federation]\n"
        f'name = "he"\nclients = {names!r}\ndimension = {D}\nrounds = 2\n'
        '[backend]\nname = "ckks"\nvalue_bound = 1.0\nkey_holder = "compliance"\n'
    )
    key = tmp_path / "compliance.key"
    # the key is made in this process (the command's own code, by click's runner): an
    # interpreter started only to write a key file cost seconds and checked nothing
    # of the processes this test is about (the key holder and the branches below)
    made = CliRunner().invoke(
        cli.main, ["keyholder-init", "--config", str(config_file), "--key", str(key)]
    )
    assert made.exit_code == 0, made.output
    pin = next(
        line.split()[1] for line in made.output.splitlines() if line.startswith("fingerprint")
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secagg.apps.cli",
            "keyholder",
            "--server",
            f"127.0.0.1:{port}",
            "--name",
            "compliance",
            "--certs",
            str(ca_dir),
            "--config",
            str(config_file),
            "--key",
            str(key),
            "--idle",
            "300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    branches = [_branch(port, name, ca_dir, "--key-holder-fingerprint", pin) for name in names]
    try:
        _, results = serve(config, wait_for_clients=120)
    finally:
        out, err = holder.communicate(timeout=300)
        for branch in branches:
            branch.kill()
            branch.wait()
    assert [r.status for r in results] == ["complete", "complete"], [r.reason for r in results]
    assert all(r.contributed == tuple(names) for r in results)
    assert holder.returncode == 0, err
    assert "decrypted 2 sums" in out
