"""``ServerSettings`` built directly (not read from a file) refuses a session rate the
file reader refuses, so no launch path hands the gRPC transport a rate under the
runtime's floor (``MIN_SESSION_RATE``) or a bool.

Before: ``ServerSettings(session_rate=True)`` was accepted (a bool is an int, and
``True >= MIN_SESSION_RATE``) and reached ``GrpcServerTransport``, whose own check takes
any positive number; the file path refused it ("must be a number, not True")."""

from __future__ import annotations

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import MIN_SESSION_RATE, ServerSettings


@pytest.mark.parametrize("rate", [True, False, 5e-324, MIN_SESSION_RATE / 2, float("inf")])
def test_a_session_rate_the_file_refuses_is_refused_when_built_directly(rate: float) -> None:
    with pytest.raises(ConfigurationError, match=r"\[server\] session_rate"):
        ServerSettings(session_rate=rate)


def test_the_floor_itself_is_taken() -> None:
    assert ServerSettings(session_rate=MIN_SESSION_RATE).session_rate == MIN_SESSION_RATE
