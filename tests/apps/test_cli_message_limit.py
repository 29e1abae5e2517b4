"""``--max-message-bytes`` on the parties that dial the server.

Why: ``secagg client`` and ``secagg keyholder`` took every message up to 256 MiB
whatever ``[server] max_message_bytes`` said, and no flag could change it: a federation
that raised the server's limit for a larger model (a round start is 4 bytes a
parameter, so past about 67 million parameters) or for CKKS uploads saw every branch
refuse every round start (runtime review, 2026-12-06). Now both take the flag, and a
key holder given the federation's config takes that config's limit by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.apps.commands.dialling import DEFAULT_MESSAGE_BYTES
from secagg.runtime.config import FederationConfig
from secagg.transport.framing import MAX_MESSAGE_BYTES

GIB = 1 << 30


def _capture(monkeypatch: pytest.MonkeyPatch, target: str, result: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def run(*args: object, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return result

    monkeypatch.setattr(target, run)
    return seen


def _client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *extra: str) -> dict[str, Any]:
    from secagg.runtime.client import ClientStats

    stats = ClientStats(rounds_completed=1)
    stats.outcome = "finished"
    seen = _capture(monkeypatch, "secagg.runtime.launch.run_branch", stats)
    result = CliRunner().invoke(
        main,
        ["client", "--server", "127.0.0.1:50999", "--name", "b", "--certs", str(tmp_path),
         "--dimension", "4", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return seen


def test_a_branch_takes_the_limit_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _client(monkeypatch, tmp_path, "--max-message-bytes", str(GIB))
    assert seen["max_message_bytes"] == GIB


def test_without_the_flag_a_branch_keeps_the_servers_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _client(monkeypatch, tmp_path)["max_message_bytes"] == DEFAULT_MESSAGE_BYTES
    assert (
        DEFAULT_MESSAGE_BYTES
        == FederationConfig.from_dict(
            {"federation": {"name": "f", "clients": ["a", "b"], "dimension": 2}}
        ).server.max_message_bytes
    )


def test_a_key_holder_takes_the_limit_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from secagg.runtime.keyholder import KeyHolderRun

    seen = _capture(
        monkeypatch, "secagg.runtime.launch.run_key_holder", KeyHolderRun(0, "finished")
    )
    argv = ["keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", str(tmp_path)]
    result = CliRunner().invoke(main, [*argv, "--max-message-bytes", str(2 * GIB)])
    assert result.exit_code == 0, result.output
    assert seen["max_message_bytes"] == 2 * GIB
    seen.clear()
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert seen["max_message_bytes"] is None  # run_key_holder decides: the config's, or 256 MiB


@pytest.mark.parametrize("command", ["client", "keyholder"])
@pytest.mark.parametrize("value", ["0", "1023", str(MAX_MESSAGE_BYTES + 1), "1e9", "-5"])
def test_a_limit_out_of_range_is_one_line_naming_the_flag(
    command: str, value: str, tmp_path: Path
) -> None:
    argv = [command, "--server", "127.0.0.1:50999", "--name", "p", "--certs", str(tmp_path)]
    if command == "client":
        argv += ["--dimension", "4"]
    result = CliRunner().invoke(main, [*argv, "--max-message-bytes", value])
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "'--max-message-bytes'" in line
    assert "Traceback" not in result.output


class _Dialled(Exception):
    """Stops run_key_holder at the dial, with the limit it would have dialled with."""


@pytest.mark.parametrize(("given", "dialled"), [(None, 3 * GIB), (4096, 4096)])
def test_a_key_holder_with_the_federations_config_takes_its_limit(
    given: int | None, dialled: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tenseal")
    from secagg.runtime import launch

    devca.init_ca(tmp_path)
    devca.issue_client(tmp_path, "compliance")
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": ["a", "b", "c"], "dimension": 8},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "server": {"max_message_bytes": 3 * GIB},
        }
    )

    def dialler(
        target: str, credentials: object, name: str | None, limit: int, *rest: object
    ) -> None:
        raise _Dialled(limit)

    monkeypatch.setattr(launch, "_grpc_dialer", dialler)
    with pytest.raises(_Dialled) as dialled_with:
        launch.run_key_holder(
            "127.0.0.1:1", "compliance", str(tmp_path), config=config, max_message_bytes=given
        )
    assert dialled_with.value.args == (dialled,)
