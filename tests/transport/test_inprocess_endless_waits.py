"""An in-process wait of ``inf`` (or longer than ``threading.TIMEOUT_MAX``) waits.

Found beside the gRPC transport's fix (348286b): the in-process hub passed a caller's
timeout straight to ``queue.Queue.get``, so ``receive(timeout=inf)`` raised
``OverflowError: timestamp out of range for platform time_t`` at once, on both ends,
instead of waiting for the message (``secagg simulate`` and the tests use this hub).
"""

from __future__ import annotations

import math
import threading

import pytest
from _threads import BOUND

from secagg.transport.inprocess import InProcessHub


@pytest.mark.parametrize("endless", [math.inf, 1e300])
def test_an_endless_receive_ends_on_the_message(endless: float) -> None:
    hub = InProcessHub()
    client = hub.connect("branch-a")
    server = hub  # the hub is the server's endpoint
    heard: list[object] = []
    waiting = threading.Event()

    def wait_both() -> None:
        waiting.set()
        heard.append(server.receive(timeout=endless))
        heard.append(client.receive(timeout=endless))

    thread = threading.Thread(target=wait_both, daemon=True)
    thread.start()
    assert waiting.wait(BOUND)
    client.send(b"up")
    server.send("branch-a", b"down")
    thread.join(BOUND)
    assert not thread.is_alive()
    assert heard == [("branch-a", b"up"), b"down"]
