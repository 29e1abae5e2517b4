"""A branch may pin the federation it joins (``branch.federation``; ``secagg client
--federation``), and without a pin holds to the one it joined.

Left alone by earlier work ("each party enforces its own policy"): a branch could not
say which federation it agreed to join, so a branch certificate admitted by two
federations' servers took part in whichever one it was pointed at. Now a start of
another federation is refused before anything is trained or sent, and the branch leaves
the round at once with a leave naming ``branch.federation``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _endpoints import RecordingHub, SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError
from secagg.runtime.client import BranchRefused, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Leave, Relay, RoundEnd, RoundStart, decode_message, encode_message

D = 6
NAMES = [f"branch-{i:02d}" for i in range(4)]
#: the training deadline the pinned branch must not make the server wait out
TRAINING_SECONDS = 120.0
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))
REFUSAL = "refused by its policy: branch.federation"


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "bank-b", "clients": NAMES, "dimension": D, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 4.0},
            "deadlines": {
                "phase_seconds": 20.0,
                "training_seconds": TRAINING_SECONDS,
                "round_seconds": 300.0,
            },
        }
    )


def test_a_branch_pinned_to_another_federation_leaves_its_first_round_at_once() -> None:
    """Server of bank-b, branch 0 pinned to bank-a: it trains nothing, sends one leave
    naming branch.federation, and stops with a refusal naming both federations and the
    option, well within the 120 s training deadline (the server's round too)."""
    hub = RecordingHub()
    done = {name: threading.Event() for name in NAMES}
    errors: dict[str, BaseException] = {}
    trained: dict[str, int] = dict.fromkeys(NAMES, 0)
    for i, name in enumerate(NAMES):
        policy = BranchPolicy(federation="bank-a") if i == 0 else BranchPolicy()

        def train(model: np.ndarray, name: str = name) -> np.ndarray:
            trained[name] += 1
            return np.full_like(model, 0.1)

        client = FederationClient(name, train, hub.connect(name), policy=policy)

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=TRAINING_SECONDS, rounds=1)
            except BaseException as exc:  # the test inspects what stopped the branch
                errors[name] = exc
            finally:
                done[name].set()

        threading.Thread(target=run, daemon=True).start()
    results: list[object] = []

    def serve() -> None:  # the store is the server thread's own (SQLite)
        store = ServerStore(Path(tempfile.mkdtemp(prefix="secagg-pin-")) / "state.sqlite")
        server = FederationServer(_config(), hub, store)
        results.extend(server.run(wait_for_clients=60, max_attempts=1))

    served = threading.Thread(target=serve, daemon=True)
    began = time.monotonic()
    served.start()
    assert done[NAMES[0]].wait(TRAINING_SECONDS / 3), "the pinned branch waited in the round"
    left_after = time.monotonic() - began
    served.join(timeout=TRAINING_SECONDS / 3)
    assert not served.is_alive(), "the server waited out the training deadline"
    assert left_after < TRAINING_SECONDS / 3 and len(results) == 1
    refusal = errors[NAMES[0]]
    assert isinstance(refusal, BranchRefused) and refusal.refusal.setting == "branch.federation"
    text = str(refusal)
    assert "'bank-b'" in text and "'bank-a'" in text and "--federation" in text
    assert "\n" not in text
    assert trained[NAMES[0]] == 0 and all(trained[n] == 1 for n in NAMES[1:])
    sent = [decode_message(p) for name, p in hub.received if name == NAMES[0]]
    assert sent == [Leave(1, REFUSAL)]


def _start(number: int, federation: str) -> bytes:
    return encode_message(RoundStart(number, 0, SPEC, np.zeros(D), 1.0, federation=federation))


def test_a_branch_skipping_refused_rounds_takes_a_foreign_rounds_rest_quietly() -> None:
    """With ``stop_on_refusal=False``: the foreign round counts once, as refused; its
    payloads and its end are no refused messages; its number moves no mark, so the
    pinned federation's round 1 is still taken."""
    trained: list[int] = []
    outbox = SentMessages()
    client = FederationClient(
        NAMES[0],
        lambda m: trained.append(1) or np.full_like(m, 0.1),
        outbox,
        policy=BranchPolicy(federation="bank-a"),
        stop_on_refusal=False,
    )
    client.handle(_start(9, "bank-b"))
    client.handle(encode_message(Relay(9, b"a late payload")))
    client.handle(encode_message(RoundEnd(9, True)))
    stats = client.stats
    assert (stats.rounds_refused, stats.rounds_started, stats.refused_messages) == (1, 0, 0)
    assert stats.rounds_completed == 0 and trained == [] and outbox.sent == [Leave(9, REFUSAL)]
    client.handle(_start(1, "bank-a"))
    assert trained == [1] and client._round == 1 and client.federation == "bank-a"


def test_without_a_pin_a_branch_joins_the_named_federation_once_and_holds_to_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trained: list[int] = []
    outbox = SentMessages()
    client = FederationClient(
        NAMES[0],
        lambda m: trained.append(1) or np.full_like(m, 0.1),
        outbox,
        stop_on_refusal=False,
    )
    assert client.federation is None
    with caplog.at_level(logging.INFO, logger="secagg.client"):
        client.handle(_start(1, "bank-a"))
        client.handle(encode_message(RoundEnd(1, True)))
        client.handle(_start(2, "bank-a"))
    joined = [r.getMessage() for r in caplog.records if "joins federation" in r.getMessage()]
    assert len(joined) == 1 and "'bank-a'" in joined[0] and "branch.federation" in joined[0]
    assert client.federation == "bank-a" and trained == [1, 1]
    # another federation's round, whatever its number: refused, nothing trained
    client.handle(_start(7, "bank-b"))
    assert trained == [1, 1] and client.stats.rounds_refused == 1
    assert outbox.sent[-1] == Leave(7, REFUSAL)


def test_the_pin_is_a_federations_name() -> None:
    assert BranchPolicy.from_dict({"federation": "bank-a"}).federation == "bank-a"
    assert BranchPolicy().federation is None
    for bad in ("", "bank a", "bank\na", "x" * 65, 7, ["bank-a"]):
        with pytest.raises(ConfigurationError, match=r"branch\.federation"):
            BranchPolicy.from_dict({"federation": bad})
