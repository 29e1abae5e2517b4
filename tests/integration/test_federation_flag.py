"""``secagg client --federation`` and the federation a ``--state`` file records: each
refusal is one line naming the option (or key) and both federations, never a traceback.

Real gRPC with mTLS where a server is needed; every wait has a generous bound
(:data:`_threads.BOUND`), and the server's training deadline is long (120 s) so a branch
that sat in a round it refused would show.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from _threads import BOUND, Party, free_port
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import demo_hook, run_branch, serve

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 8
TRAINING_SECONDS = 120.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("federation-flag") / "certs"
    devca.init_ca(directory)
    for name in NAMES:
        devca.issue_client(directory, name)
    return directory


def _config(ca: Path, port: int) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "bank-b", "clients": NAMES, "dimension": D, "rounds": 1},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg", "value_bound": 4.0},
        "deadlines": {"phase_seconds": 60.0, "training_seconds": TRAINING_SECONDS},
        "server": {
            "state": str(ca.parent / f"server-{port}.sqlite"),
            "bind": f"127.0.0.1:{port}",
            "certificates": str(ca),
            "quorum_wait_seconds": 2.0,
        },
    }
    return FederationConfig.from_dict(data)


def _one_line(result: Result, party: str = "secagg client") -> str:
    """The one error line of ``party``; no traceback."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(party)]
    assert len(lines) == 1, result.output
    return lines[0]


def _state_of(path: Path, federation: str, last: int = 3) -> Path:
    """A state file of branch-c holding ``federation``'s round ``last``."""
    record = {"version": 2, "branch": "branch-c", "federation": federation, "last_started": last}
    path.write_text(json.dumps(record))
    return path


def _against_bank_b(ca: Path, *options: str) -> tuple[Result, float]:
    """``secagg client --name branch-c ...options`` in the first round of a real server of
    federation bank-b (the two other branches honest); its result and seconds."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    server = Party(lambda: serve(_config(ca, port), wait_for_clients=BOUND))
    others = [
        Party(
            lambda name=name: run_branch(
                target, name, demo_hook(name, D), str(ca), connect_timeout=BOUND
            )
        )
        for name in NAMES[:2]
    ]
    began = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "client",
            "--server",
            target,
            "--certs",
            str(ca),
            "--dimension",
            str(D),
            "--name",
            "branch-c",
            "--connect-timeout",
            str(BOUND),
            *options,
        ],
    )
    took = time.monotonic() - began
    for party in [server, *others]:
        assert party.done.wait(BOUND), "a party did not finish"
    return result, took


def test_a_cli_branch_pinned_to_another_federation_refuses_its_first_round_at_once(
    ca: Path,
) -> None:
    """Before: ``no such option: --federation`` (exit 2). After: exit 3 and one line
    naming branch.federation, --federation and both names, long before the server's
    120 s training deadline."""
    result, took = _against_bank_b(ca, "--federation", "bank-a")
    assert result.exit_code == 3, result.output
    line = _one_line(result)
    assert "branch-c refused round 1" in line and "branch.federation" in line
    assert "--federation" in line and "'bank-a'" in line and "'bank-b'" in line
    assert took < TRAINING_SECONDS / 3


def test_a_cli_branch_whose_state_holds_another_federation_stops_naming_state(
    ca: Path, tmp_path: Path
) -> None:
    """No pin, a state file of bank-a's rounds, a server of bank-b: exit 2, one line
    naming --state, the file and both federations (before: round 1 of bank-b was
    refused as a replay of bank-a's round 3, every round, without a word of why)."""
    state = _state_of(tmp_path / "c.state", "bank-a")
    before = state.read_bytes()
    result, took = _against_bank_b(ca, "--state", str(state))
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert f"branch-c: --state {state} holds the rounds of federation 'bank-a'" in line
    assert "'bank-b'" in line and "new state file" in line
    assert state.read_bytes() == before and took < TRAINING_SECONDS / 3


def _offline(ca: Path, *options: str) -> Result:
    """``secagg client`` against a port nothing listens on (fails fast when dialling)."""
    return CliRunner().invoke(
        main,
        [
            "client",
            "--server",
            f"127.0.0.1:{free_port()}",
            "--certs",
            str(ca),
            "--dimension",
            str(D),
            "--name",
            "branch-c",
            "--connect-timeout",
            "0.5",
            *options,
        ],
    )


def test_a_pin_and_a_state_of_another_federation_stop_the_branch_before_it_dials(
    ca: Path, tmp_path: Path
) -> None:
    state = _state_of(tmp_path / "c.state", "bank-a")
    policy = tmp_path / "policy.toml"
    policy.write_text('[branch]\nfederation = "bank-b"\n')
    for options in (("--federation", "bank-b"), ("--policy", str(policy))):
        result = _offline(ca, "--state", str(state), *options)
        assert result.exit_code == 2, result.output
        line = _one_line(result)
        assert f"--state {state} holds the rounds of federation 'bank-a'" in line
        assert "joins only 'bank-b' (branch.federation)" in line
    # the option overrides the policy file's key, as every other one: the state agrees,
    # so the branch dials (and finds no server: exit 1, naming the connection)
    result = _offline(ca, "--state", str(state), "--policy", str(policy), "--federation", "bank-a")
    assert result.exit_code == 1, result.output
    assert "holds the rounds" not in result.output


def _before_dialling(*options: str) -> Result:
    """``secagg client`` stopped by its options, before any certificate is read."""
    common = ["client", "--server", "localhost:1", "--name", "b1", "--dimension", "3"]
    return CliRunner().invoke(main, [*common, *options])


@pytest.mark.parametrize("value", ["bank a", "", "x" * 65, "bank\na"])
def test_a_federation_that_is_no_federations_name_is_named_as_the_option(value: str) -> None:
    result = _before_dialling("--federation", value)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Invalid value for '--federation'" in result.output
    assert "branch.federation" not in result.output


def test_a_federation_in_the_policy_file_that_is_no_name_is_named_as_the_key(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[branch]\nfederation = 7\n")
    result = _before_dialling("--policy", str(policy))
    assert result.exit_code == 2, result.output
    assert "branch.federation must be the federation's name" in _one_line(result)
