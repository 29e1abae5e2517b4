"""The line of a CKKS round charged again at a key holder's short noise says whether the
server has read the sum yet.

Before: both paths logged "the key holder's sum reached the server with noise std ...",
also when the charge is written before the session reads the reply
(``_charge_before_reading``, whose whole point is that none of the server's code has
seen the sum yet): an auditor reading the log would take a crash between the write and
the read for a sum the server held. Now the line before the read says the reply
*reports* that noise and was charged before the sum is read; the line after it keeps
"reached the server".

In-process: the server is built from a real CKKS config with central DP (the key holder
adds the noise); the reply is stood in for by a session that reports its noise only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")

NAMES = ["b1", "b2", "b3"]
PLANNED_STD = 1.0
SHORT_STD = 1e-6


class _ReplyReportingShortNoise:
    """What the server asks of a session about a key holder's reply: it reports
    :data:`SHORT_STD`, and the session, once it has read it, settles on that noise."""

    def noise_of_reply(self, party: int, payload: object) -> float | None:
        return SHORT_STD

    def noise_at_reveal(self) -> float:
        return SHORT_STD

    def reveal_refused(self) -> bool:
        return False


def _server(tmp_path: Path) -> FederationServer:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "words", "clients": NAMES, "dimension": 4, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
            "dp": {
                "clip": 1.0,
                "noise_multiplier": PLANNED_STD,
                "delta": 1e-3,
                "mechanism": "central",
            },
        }
    )
    store = ServerStore(tmp_path / "s.sqlite")
    server = FederationServer(config, InProcessHub(), store)
    store.begin_round(1, NAMES)
    server._note_reveal(1, 3, 3, noise_added=PLANNED_STD)  # as before the request leaves
    return server


def test_a_charge_written_before_the_read_does_not_say_the_sum_reached_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(tmp_path)
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        server._charge_before_reading(1, _ReplyReportingShortNoise(), -1, b"reply")  # type: ignore[arg-type]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "reached the server" not in line, line
    assert "reply reports noise std 1e-06" in line
    assert "before the server reads the sum" in line
    assert server.store.rounds()[0]["report"]["revealed"]["charged"]["noise_multiplier"] == (
        pytest.approx(SHORT_STD)
    )


def test_a_charge_after_the_read_says_the_sum_reached_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(tmp_path)
    with caplog.at_level(logging.WARNING, logger="secagg.server"):
        server._charge_after_reply(1, _ReplyReportingShortNoise())  # type: ignore[arg-type]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "the key holder's sum reached the server with noise std 1e-06" in line
