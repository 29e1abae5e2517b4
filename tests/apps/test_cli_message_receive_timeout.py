"""``--message-receive-timeout`` on the parties that dial the server.

Why: a message from the server must be whole within ``message_receive_timeout`` of its
first chunk, else the party ends the session and redials. The server and ``secagg
keyholder --config`` took it from ``[server] message_receive_timeout``, but ``secagg
client`` had no way to set it: a branch always used 3600 s, so one on a link too slow
for a large round start within an hour could never take part (2026-12-06). Now both
parties take the flag, bounded like the config key (above 0, finite, at most a week).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.transport.grpc_limits import DEFAULT_MESSAGE_RECEIVE_SECONDS


class _Dialled(Exception):
    """Stops a party at its first dial, after the transport was built."""


@pytest.fixture(scope="module")
def branch_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with one branch, ``b``: run_branch loads its credentials before dialling."""
    folder = tmp_path_factory.mktemp("certs")
    devca.init_ca(folder)
    devca.issue_client(folder, "b")
    return folder


def _transport_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the gRPC client transport with one that records how the real dialler
    (:func:`secagg.runtime.launch._grpc_dialer`) built it, and stops there."""
    import secagg.transport.grpc_transport as grpc_transport

    seen: dict[str, Any] = {}

    def transport(target: str, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Dialled(target)

    monkeypatch.setattr(grpc_transport, "GrpcClientTransport", transport)
    return seen


@pytest.mark.parametrize(
    ("flag", "deadline"),
    [((), DEFAULT_MESSAGE_RECEIVE_SECONDS), (("--message-receive-timeout", "7200"), 7200.0)],
)
def test_a_branch_dials_with_the_deadline_it_is_given(
    flag: tuple[str, ...],
    deadline: float,
    branch_certs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _transport_kwargs(monkeypatch)
    argv = ["client", "--server", "127.0.0.1:50999", "--name", "b", "--certs", str(branch_certs)]
    result = CliRunner().invoke(main, [*argv, "--dimension", "4", *flag])
    assert isinstance(result.exception, _Dialled), result.output
    assert seen["message_receive_timeout"] == deadline


def test_a_key_holder_passes_the_flag_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from secagg.runtime.keyholder import KeyHolderRun

    seen: dict[str, Any] = {}

    def run(*args: object, **kwargs: Any) -> KeyHolderRun:
        seen.update(kwargs)
        return KeyHolderRun(0, "finished")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", run)
    argv = ["keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", str(tmp_path)]
    result = CliRunner().invoke(main, [*argv, "--message-receive-timeout", "90"])
    assert result.exit_code == 0, result.output
    assert seen["message_receive_timeout"] == 90.0
    seen.clear()
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert seen["message_receive_timeout"] is None  # run_key_holder: the config's, or 3600 s


@pytest.mark.parametrize(("given", "dialled"), [(None, 120.0), (45.0, 45.0)])
def test_a_key_holder_flag_overrides_the_federations_config(
    given: float | None, dialled: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tenseal")
    from secagg.runtime import launch
    from secagg.runtime.config import FederationConfig

    devca.init_ca(tmp_path)
    devca.issue_client(tmp_path, "compliance")
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": ["a", "b", "c"], "dimension": 8},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "server": {"message_receive_timeout": 120.0},
        }
    )
    seen = _transport_kwargs(monkeypatch)
    with pytest.raises(_Dialled):
        launch.run_key_holder(
            "127.0.0.1:1",
            "compliance",
            str(tmp_path),
            config=config,
            message_receive_timeout=given,
        )
    assert seen["message_receive_timeout"] == dialled


@pytest.mark.parametrize("command", ["client", "keyholder"])
@pytest.mark.parametrize("value", ["0", "-5", "604801", "1e300", "inf", "nan", "soon"])
def test_a_bad_deadline_is_one_line_naming_the_flag(
    command: str, value: str, tmp_path: Path
) -> None:
    argv = [command, "--server", "127.0.0.1:50999", "--name", "p", "--certs", str(tmp_path)]
    if command == "client":
        argv += ["--dimension", "4"]
    result = CliRunner().invoke(main, [*argv, "--message-receive-timeout", value])
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    # the value is refused, not the flag unknown ("No such option" names it too)
    assert "Invalid value for '--message-receive-timeout'" in line, line
    assert "Traceback" not in result.output
