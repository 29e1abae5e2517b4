"""``[server]`` sets the transport's connection limits: handshake_timeout,
idle_connection_timeout, max_connections and message_receive_timeout.

Transport review (2026-12-05): ``GrpcServerTransport`` gained the three settings (a
connection holds a file descriptor before any certificate is seen), but the server's
config did not expose them, so an operator could neither shorten the handshake window
nor size the cap to the machine. Each is now a ``[server]`` key, checked with one line
naming it (a misspelling gets a hint), passed to the transport, and ``max_connections``
is checked against the federation: below two per party plus a margin is refused.

Runtime review (2026-12-06): the transport's per-message receive deadline
(``message_receive_timeout``: a message must be whole within it of its first chunk) was
a library parameter only; an operator whose branches upload slowly could not lengthen
it, nor shorten it. It is now ``[server] message_receive_timeout``, passed to the
server's transport and, with ``secagg keyholder --config``, to the key holder's.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from _threads import BOUND

from secagg.apps import devca
from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import server_transport, session_capacity
from secagg.transport.grpc_limits import DEFAULT_MESSAGE_RECEIVE_SECONDS
from secagg.transport.grpc_transport import default_max_connections

BRANCHES = ("branch-001", "branch-002", "branch-003")


def _config(certificates: Path | str = "certs", **server: Any) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "conn", "clients": list(BRANCHES), "dimension": 8, "rounds": 1},
            "backend": {"name": "secagg"},
            "server": {"bind": "127.0.0.1:0", "certificates": str(certificates), **server},
        }
    )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("connection-settings") / "certs"
    devca.init_ca(directory)
    return directory


def _options(transport: Any) -> dict[str, Any]:
    return dict(transport._connection_options)


def test_the_settings_reach_the_transport(ca: Path) -> None:
    config = _config(ca, handshake_timeout=2.5, idle_connection_timeout=30, max_connections=40)
    transport = server_transport(config, start=False)
    options = _options(transport)
    assert options["grpc.server_handshake_timeout_ms"] == 2500
    assert options["grpc.max_connection_idle_ms"] == 30_000
    assert options["grpc.max_allowed_incoming_connections"] == 40
    assert len(config.parties) < transport._max_clients < 40  # every party, fewer than 40


def test_left_out_they_are_the_transports_defaults(ca: Path) -> None:
    config = _config(ca)
    options = _options(server_transport(config, start=False))
    assert options["grpc.server_handshake_timeout_ms"] == 10_000
    assert options["grpc.max_connection_idle_ms"] == 60_000
    assert options["grpc.max_allowed_incoming_connections"] == default_max_connections(
        session_capacity(config)
    )


def test_a_silent_connection_is_closed_after_the_configured_handshake_timeout(
    ca: Path,
) -> None:
    transport = server_transport(_config(ca, handshake_timeout=0.5), port=0)
    try:
        with socket.create_connection(("127.0.0.1", transport.port), timeout=BOUND) as silent:
            began = time.monotonic()
            assert silent.recv(1) == b""  # closed by the server; nothing was sent
            assert time.monotonic() - began < 10.0  # not the 10 s default
    finally:
        transport.stop(grace=0)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"handshake_timeout": 0}, "[server] handshake_timeout must be a positive number"),
        ({"handshake_timeout": -1.5}, "[server] handshake_timeout must be a positive number"),
        ({"handshake_timeout": float("nan")}, "[server] handshake_timeout must be a positive"),
        ({"handshake_timeout": 1e9}, "at most 86400"),
        ({"idle_connection_timeout": float("inf")}, "[server] idle_connection_timeout must be"),
        ({"handshake_timeout": "10"}, "[server] handshake_timeout must be a number"),
        ({"max_connections": 0}, "[server] max_connections must be a positive integer"),
        ({"max_connections": 100.0}, "[server] max_connections must be an integer"),
        ({"max_connections": True}, "[server] max_connections must be an integer"),
        ({"max_conections": 500}, "did you mean 'max_connections'?"),
        ({"handshake_timout": 5}, "did you mean 'handshake_timeout'?"),
        ({"message_receive_timeout": 0}, "[server] message_receive_timeout must be a positive"),
        ({"message_receive_timeout": -60}, "[server] message_receive_timeout must be a positive"),
        ({"message_receive_timeout": float("nan")}, "[server] message_receive_timeout must be"),
        ({"message_receive_timeout": float("inf")}, "[server] message_receive_timeout must be"),
        ({"message_receive_timeout": 604801}, "at most 604800 (one week)"),
        ({"message_receive_timeout": 1e300}, "at most 604800 (one week)"),
        ({"message_receive_timeout": "3600"}, "[server] message_receive_timeout must be a number"),
        ({"message_receive_timeout": True}, "[server] message_receive_timeout must be a number"),
        ({"message_recieve_timeout": 60}, "did you mean 'message_receive_timeout'?"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(server: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _config(**server)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_max_connections_below_two_per_party_and_a_margin_is_refused() -> None:
    least = 2 * len(BRANCHES) + 16  # two per party and a margin of 16
    with pytest.raises(ConfigurationError) as refused:
        _config(max_connections=least - 1)
    text = str(refused.value)
    assert text.startswith(f"[server] max_connections = {least - 1} is below two per party")
    assert f"({least} for 3 parties)" in text and "\n" not in text
    assert _config(max_connections=least).server.max_connections == least


def test_the_key_holder_counts_as_a_party() -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": list(BRANCHES), "dimension": 8, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "holder"},
            "server": {"max_connections": 24},  # 4 parties: 2 x 4 + 16
        }
    )
    assert config.server.max_connections == 24
    with pytest.raises(ConfigurationError, match="24 for 4 parties"):
        FederationConfig.from_dict(
            {
                "federation": {
                    "name": "he",
                    "clients": list(BRANCHES),
                    "dimension": 8,
                    "rounds": 1,
                },
                "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "holder"},
                "server": {"max_connections": 23},
            }
        )


def test_the_message_receive_timeout_reaches_the_server_transport(ca: Path) -> None:
    transport = server_transport(_config(ca, message_receive_timeout=90), start=False)
    assert transport._message_receive_timeout == 90
    left_out = server_transport(_config(ca), start=False)
    assert left_out._message_receive_timeout == DEFAULT_MESSAGE_RECEIVE_SECONDS == 3600
    assert _config(message_receive_timeout=604800).server.message_receive_timeout == 604800


def test_the_dialler_gives_the_client_transport_its_receive_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import grpc

    from secagg.runtime import launch
    from secagg.transport.grpc_transport import GrpcClientTransport

    monkeypatch.setattr(GrpcClientTransport, "connect", lambda self, timeout: None)
    credentials = grpc.ssl_channel_credentials()
    for given, expected in (((), DEFAULT_MESSAGE_RECEIVE_SECONDS), ((45.0,), 45.0)):
        dial = launch._grpc_dialer("127.0.0.1:1", credentials, None, 1 << 20, *given)
        transport = dial(1.0)
        try:
            assert transport._message_receive_timeout == expected
        finally:
            transport.close()


class _Dialled(Exception):
    """Stops run_key_holder at its dial, with what it would have dialled with."""


def test_a_key_holder_with_the_federations_config_keeps_its_receive_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's bound on a message's time is the key holder's for the server's
    requests (as ``max_message_bytes`` is): a CKKS request is as large as an upload."""
    pytest.importorskip("tenseal")
    from secagg.runtime import launch

    devca.init_ca(tmp_path)
    devca.issue_client(tmp_path, "compliance")
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": list(BRANCHES), "dimension": 8},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "server": {"message_receive_timeout": 7200},
        }
    )

    def dialler(*args: object) -> None:
        raise _Dialled(*args)

    monkeypatch.setattr(launch, "_grpc_dialer", dialler)
    with pytest.raises(_Dialled) as dialled:
        launch.run_key_holder("127.0.0.1:1", "compliance", str(tmp_path), config=config)
    assert dialled.value.args[-1] == 7200
