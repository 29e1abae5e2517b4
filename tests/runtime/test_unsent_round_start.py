"""A participant whose round start could not be sent is told the round runs without it,
and is sent nothing else of that round.

Why: the sampling puts a branch in the round's cohort, and the cohort is never sent a
:class:`~secagg.runtime.wire.NotSampled` notice (``FederationServer._tell_unsampled``
skipped every participant). A participant whose start never reached it (no session as
the start went out: it dropped between the sampling and the start, while a CKKS key
holder made the round's key, and redialled; or a start the transport refused) is a
dropout to the server, but to the branch the round does not exist: it heard nothing and
waited on its idle timer alone (``secagg client --idle``) while the round ran, so a round
longer than that timer made it give up (``BranchGaveUp``) while eligible. And the round's
end, sent to it by name, was refused ("the end of round 1, but this branch's round is
None"): a WARNING and a refused message for a server that did nothing wrong.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _refused_start import RefusesRoundStartsTo
from _threads import BOUND

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import NotSampled, RoundEnd, decode_message

D = 4
NAMES = ["b1", "b2", "b3"]
REFUSED = "b3"  # the participant whose round start the transport refuses
PLAIN = BranchPolicy(allow_plain=True)


def test_a_participant_whose_start_was_not_sent_is_told_and_takes_it(tmp_path: Path) -> None:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "unsent-start", "clients": NAMES, "dimension": D, "rounds": 1},
            "backend": {"name": "plain", "value_bound": 1.0},
            "deadlines": {"phase_seconds": BOUND, "round_seconds": 3 * BOUND},
        }
    )
    hub = RefusesRoundStartsTo(REFUSED)
    server = FederationServer(config, hub, ServerStore(tmp_path / "s.sqlite"))
    refused_end = hub.connect(REFUSED)
    for name in NAMES[:2]:
        client = FederationClient(
            name, lambda m: np.full_like(m, 0.1), hub.connect(name), policy=PLAIN
        )
        threading.Thread(
            target=client.run, kwargs={"idle_timeout": BOUND, "rounds": 1}, daemon=True
        ).start()
    result = server.run_round()
    assert result.participants == tuple(NAMES)  # the premise: it was sampled
    assert result.status == "complete" and REFUSED not in result.contributed
    heard = []
    while (payload := refused_end.receive(timeout=0.0)) is not None:
        heard.append(payload)
    kinds = [type(decode_message(p)) for p in heard]
    assert NotSampled in kinds, f"{REFUSED} heard {kinds}"
    assert RoundEnd not in kinds
    notice = decode_message(heard[kinds.index(NotSampled)])
    assert notice.round == 1 and notice.deadline > BOUND  # the round's deadline, not 0
    branch = FederationClient(REFUSED, lambda m: m, refused_end, policy=PLAIN)
    for payload in heard:
        branch.handle(payload)
    assert branch.stats.refused_messages == 0
    assert branch.stats.rounds_not_sampled == 1
