"""The gRPC server transport refuses a ``session_rate`` below the floor the config
enforces, or a bool, at construction, and the floor has one definition.

Review (2026-12-06): ``GrpcServerTransport(session_rate=5e-324)`` built directly (a
library caller, not the config) was taken, and its first refusal told the branch to
retry in ``inf`` seconds; ``session_rate=True`` passed as one a second. The floor
(one session a week) lived in ``secagg.runtime.config``, a layer the transport cannot
import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import secagg
from secagg.errors import ConfigurationError
from secagg.transport.grpc_server import GrpcServerTransport

#: one session a week, written out (not imported: the test must run against the
#: transport before it had a floor)
WEEKLY = 1 / (7 * 24 * 3600)


def _transport(session_rate: object) -> GrpcServerTransport:
    return GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=lambda context: "branch",
        session_rate=session_rate,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "rate", [True, False, 5e-324, 1e-300, WEEKLY * 0.999, 0, -1.0, float("inf"), float("nan")]
)
def test_a_rate_below_the_floor_or_a_bool_is_refused_naming_the_floor(rate: object) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _transport(rate)
    message = str(refused.value)
    assert message.startswith("session_rate must be"), message
    assert f"{WEEKLY:.3g}" in message, message
    assert "\n" not in message, message


@pytest.mark.parametrize("rate", [WEEKLY, 1, 1.0, 1e6])
def test_a_rate_at_or_above_the_floor_is_taken(rate: float) -> None:
    assert _transport(rate)._session_rate is not None


def test_the_floor_has_one_definition_in_the_transport_that_the_config_reads() -> None:
    from secagg.runtime import config
    from secagg.transport import grpc_limits

    package = Path(secagg.__file__).parent
    defining = []
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "MIN_SESSION_RATE" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == "MIN_SESSION_RATE" for t in targets):
                defining.append(str(path.relative_to(package)))
    assert defining == ["transport/grpc_limits.py"]
    assert config.MIN_SESSION_RATE is grpc_limits.MIN_SESSION_RATE
    assert grpc_limits.MIN_SESSION_RATE == WEEKLY
