"""``secagg client`` with default settings refuses a weaker server (security review H2).

A real ``secagg server`` (gRPC, mTLS) configured for ``plain``, for a CKKS key it
made itself, for a lower distributed noise or a larger clip than the branches'
policy: every ``secagg client`` process exits with status 3 and one line naming
the policy setting, and the server receives nothing of any branch's update (a branch's
Leave, which says it will not take part, is all it may send).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _threads import free_port

from secagg.apps import devca
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import run_key_holder, serve

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 16


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("refusal") / "certs"
    devca.init_ca(directory)
    for name in [*NAMES, "compliance"]:
        devca.issue_client(directory, name)
    return directory


def _config(ca: Path, port: int, backend: dict[str, Any], dp: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {
        "federation": {"name": "refusal", "clients": NAMES, "dimension": D, "rounds": 1},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"value_bound": 4.0, **backend},
        "deadlines": {"phase_seconds": 20.0},
        "server": {
            "state": str(ca.parent / f"server-{port}.sqlite"),
            "bind": f"127.0.0.1:{port}",
            "certificates": str(ca),
            # the branches refuse and leave: the server must not wait its default 600 s
            # (nor 2 s, as before, four times) for a quorum that will not come back
            "quorum_wait_seconds": 0.5,
        },
    }
    if dp is not None:
        data["dp"] = dp
    return FederationConfig.from_dict(data)


def _branch(port: int, name: str, ca: Path, *policy: str) -> subprocess.Popen[str]:
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
        str(ca),
        "--dimension",
        str(D),
        "--idle",
        "60",
        *policy,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


CASES = {
    "plain": ({"name": "plain"}, None, (), "branch.allow_plain"),
    "ckks-key-the-server-made": (
        {"name": "ckks", "key_holder": "compliance"},
        None,
        (),
        "branch.key_holder_fingerprint",
    ),
    "lower-noise": (
        {"name": "secagg+"},
        {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": 0.3, "delta": 1e-3},
        ("--min-noise-multiplier", "1.0", "--max-clip", "1.0"),
        "branch.min_noise_multiplier",
    ),
    "larger-clip": (
        {"name": "secagg"},
        {"clip": 4.0, "noise_multiplier": 1.0, "delta": 1e-3},
        ("--max-clip", "1.0"),
        "branch.max_clip",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_branch_refuses_a_weaker_server_and_sends_nothing(ca: Path, case: str) -> None:
    backend, dp, policy, setting = CASES[case]
    port = free_port()
    config = _config(ca, port, backend, dp)
    if "key_holder" in backend:  # the server's own key holder, with a key it made
        threading.Thread(
            target=run_key_holder,
            args=(f"127.0.0.1:{port}", "compliance", str(ca)),
            kwargs={
                "backend": "ckks",
                "idle_timeout": 30.0,
                "connect_timeout": 60.0,
                # the federation's value bound, 4, is past a config-less key holder's
                # default cap (1.0, since eaf26a7): its own policy admits it, so what is
                # refused is the branches' (an unpinned key), the subject of this test
                "settings": {"max_value_bound": 4.0},
            },
            daemon=True,
        ).start()
    branches = [_branch(port, name, ca, *policy) for name in NAMES]
    try:
        server, results = serve(config, wait_for_clients=60)
        outputs = [b.communicate(timeout=120) for b in branches]
    finally:
        for b in branches:
            if b.poll() is None:
                b.kill()
    assert results and all(r.status == "aborted" and not r.contributed for r in results)
    sent = {name: server.received_from[name] for name in NAMES}
    assert not any(sent.values()), f"a refusing branch sent the server something: {sent}"
    for branch, (out, err) in zip(branches, outputs, strict=True):
        assert branch.returncode == 3, (case, out, err)
        # the branch's timestamped log may precede it; the verdict is one line of its own
        lines = [line for line in err.strip().splitlines() if line.startswith("secagg client:")]
        assert len(lines) == 1, err
        assert setting in lines[0], err
