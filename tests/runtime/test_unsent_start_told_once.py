"""A participant whose round start could not be sent is told once that the round runs
without it, not once more on each new session.

Why. Since 2026-12-06 the server tells such a participant (``_start_missed``) on the
session it has; and, separately, a participant back on a new session inside its round
(``_tell_unsampled``'s "moved" rule) once a round. The second rule did not know of the
first: a participant told on its session, back on a new one inside the round (a blip),
was told the same round's notice again, which the branch, keeping the deadline it was
told across the reconnect, refused as a replay ("a not-sampled notice of round 1, but
this branch has seen round 1 already"): a refused-message WARNING blamed on a server
that did nothing wrong. Now one notice a round reaches it, however many sessions.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from _refused_start import RefusesRoundStartsTo
from _threads import BOUND

import secagg.runtime.server as server_module
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import NotSampled, decode_message

D = 4
NAMES = ["b1", "b2", "b3"]
REFUSED = "b3"  # the participant whose round start the transport refuses
PLAIN = BranchPolicy(allow_plain=True)


def test_a_participant_told_on_its_session_is_not_told_again_on_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server looks for clients to tell at every turn of its loop (not every second),
    # so the look after the reconnect comes before the round ends, whatever the timing
    monkeypatch.setattr(server_module, "UNSAMPLED_LOOK_SECONDS", 0.0)
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "told-once", "clients": NAMES, "dimension": D, "rounds": 1},
            "backend": {"name": "plain", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = RefusesRoundStartsTo(REFUSED)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    first = hub.connect(REFUSED)
    go = threading.Event()  # the others train only once REFUSED is back

    def hook(model: np.ndarray) -> np.ndarray:
        assert go.wait(BOUND)
        return np.full_like(model, 0.1)

    for name in NAMES[:2]:
        client = FederationClient(name, hook, hub.connect(name), policy=PLAIN)
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": BOUND, "rounds": 1}, daemon=True
        ).start()
    told: list[bytes] = []
    sessions = [first]

    def blip() -> None:
        """Take the notice on its session, then come back on a new one inside the round;
        only then do the others train (the round runs on while REFUSED is back)."""
        try:
            notice = first.receive(timeout=BOUND)
            assert notice is not None
            told.append(notice)
            hub.disconnect(REFUSED)
            sessions.append(hub.connect(REFUSED))
        finally:
            go.set()

    threading.Thread(target=blip, daemon=True).start()
    result = server.run_round()  # the server's own thread: its store is bound to it
    assert result.status == "complete"  # the premise: the round ran on
    assert len(told) == 1 and isinstance(decode_message(told[0]), NotSampled)
    assert len(sessions) == 2
    second = sessions[1]
    heard = []
    while (payload := second.receive(timeout=0.0)) is not None:
        heard.append(payload)
    branch = FederationClient(REFUSED, lambda m: m, first, policy=PLAIN)
    branch.handle(told[0])
    branch.reconnected(second)
    for payload in heard:
        branch.handle(payload)
    assert branch.stats.refused_messages == 0  # it refused the second as a replay
    assert [type(decode_message(p)).__name__ for p in heard] == []
    assert branch.stats.rounds_not_sampled == 1
