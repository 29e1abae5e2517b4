"""A Python warning a network command meets is one timestamped log line.

Operator pass of 2026-12-04: every ``secagg server`` start printed the config's
``PrivacyCostWarning`` in Python's own form, the path of ``secagg/dp/config.py`` and
the line of code under it (``  return DPConfig(``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from _threads import BOUND, free_port

from secagg.apps import devca

_RUN = "from secagg.apps.cli import run; run()"


def test_the_servers_privacy_cost_warning_is_one_log_line(tmp_path: Path) -> None:
    devca.init_ca(tmp_path / "certs")
    port = free_port()
    toml = tmp_path / "federation.toml"
    toml.write_text(
        '[federation]\nname = "w"\nclients = ["b-1", "b-2", "b-3"]\ndimension = 4\n'
        'rounds = 3\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        '[dp]\nunit = "client"\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 5.0\n'
        "delta = 1e-5\n"
        f'[server]\nstate = "{tmp_path / "state.sqlite"}"\n'
        f'bind = "127.0.0.1:{port}"\ncertificates = "{tmp_path / "certs"}"\n'
    )
    with socket.socket() as held:  # the server stops at its bind, after the warning
        held.bind(("127.0.0.1", port))
        held.listen()
        done = subprocess.run(
            [sys.executable, "-c", _RUN, "server", "--config", str(toml), "--init"],
            capture_output=True,
            text=True,
            timeout=BOUND,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
            cwd=tmp_path,
        )
    lines = done.stderr.splitlines()
    warned = [line for line in lines if "PrivacyCostWarning" in line]
    assert len(warned) == 1, done.stderr
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING secagg\.warnings: PrivacyCostWarning: "
        r"client-level DP with 3 expected clients",
        warned[0],
    ), warned[0]
    assert ".py:" not in done.stderr and "return DPConfig(" not in done.stderr, done.stderr
    assert done.returncode == 1 and lines[-1].startswith("secagg server: "), done.stderr
