"""What the server sends a branch changes its state only once it is checked.

Review finding (2026-12-05, the branch runtime): a round start that did not decode (a
spec of junk bytes, a party the spec does not have) moved the branch's round first: its
last started round, the round end it waits for and its in-round deadline (and, with a
state file, the mark on disk). Sent while a round was in flight, it made that round's
own end a refused message: the round was never counted and ``run(rounds=...)`` waited
on. And a payload of its own that the transport refused (``MessageTooLarge``) left the
branch sitting in the round, sending nothing, until the server's deadline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec, get_backend
from secagg.aggregation.masking import MaskingBackend, MaskingClient
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import InvalidMessage
from secagg.runtime.client import DimensionMismatch, FederationClient
from secagg.runtime.wire import Leave, Relay, RoundEnd, RoundStart, encode_message
from secagg.transport.framing import MessageTooLarge

D = 8
NAME = "branch-00"
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))


def _snapshot(client: FederationClient) -> tuple[object, ...]:
    return (
        client._started,
        client._end_due,
        client._round,
        client._session,
        client._round_deadline,
        client.stats.rounds_started,
    )


def test_a_start_that_does_not_decode_changes_nothing_in_the_round_in_flight(
    tmp_path: Path,
) -> None:
    state = tmp_path / "branch.state"
    trained: list[int] = []

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        return np.full_like(model, 0.1)

    client = FederationClient(NAME, train, SentMessages(), state=state)
    client.handle(
        encode_message(RoundStart(7, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed"))
    )
    before = _snapshot(client)
    assert client._session is not None and client._started == 7
    for malformed in (
        RoundStart(8, 0, b"not a spec", np.zeros(D), 1.0, deadline=5.0, federation="fed"),
        # no party 99 in 3
        RoundStart(9, 99, SPEC, np.zeros(D), 1.0, deadline=5.0, federation="fed"),
    ):
        refused = client.stats.refused_messages
        client.handle(encode_message(malformed))
        assert client.stats.refused_messages == refused + 1
        assert _snapshot(client) == before
        assert json.loads(state.read_text())["last_started"] == 7
    assert trained == [1]
    # the round in flight ends as usual, and counts
    client.handle(encode_message(RoundEnd(7, True)))
    assert client.stats.rounds_completed == 1 and client.stats.refused_messages == 2
    # the malformed starts burned no number: an honest round 8 is taken
    client.handle(encode_message(RoundStart(8, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    assert client._round == 8 and trained == [1, 1]


class _RefusesUpdates(SentMessages):
    """A transport whose limit is below the branch's update (MessageTooLarge)."""

    def send(self, payload: bytes) -> None:
        if len(payload) > 200:
            raise MessageTooLarge(f"{len(payload)} bytes exceed the limit of 200")
        super().send(payload)


def test_an_update_the_transport_refuses_makes_the_branch_leave_the_round() -> None:
    outbox = _RefusesUpdates()
    policy = BranchPolicy(allow_plain=True, backends=("plain",))
    client = FederationClient(NAME, lambda m: np.full_like(m, 0.1), outbox, policy=policy)
    spec = encode_spec(get_backend("plain").plan(2, 64))
    client.handle(
        encode_message(RoundStart(1, 0, spec, np.zeros(64), 1.0, deadline=60.0, federation="fed"))
    )
    # it says it left, naming the error's kind, and is out of the round at once
    assert outbox.sent == [Leave(1, "could not take part (MessageTooLarge)")]
    assert client._session is None and client._round is None
    assert client.stats.refused_messages == 0  # the server sent nothing wrong
    assert not [m for m in outbox.sent if isinstance(m, Relay)]
    client.handle(encode_message(RoundEnd(1, False, "too few")))
    assert client.stats.rounds_left == 1 and client.stats.refused_messages == 0
    assert client.stats.rounds_aborted == 0 and client.stats.rounds_ended == 1


def test_a_start_whose_spec_cannot_carry_its_model_is_refused_before_training(
    tmp_path: Path,
) -> None:
    """The spec's length must be the model's (plus the count coordinate with
    report_unclipped). Before, the branch trained first (a DP-SGD hook spends its
    record-level budget) and failed only at the upload, after moving its round."""
    trained: list[int] = []

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        return np.full_like(model, 0.1)

    state = tmp_path / "branch.state"
    outbox = SentMessages()
    client = FederationClient(NAME, train, outbox, state=state)
    longer = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D + 1))
    for start in (
        # no count coordinate asked for
        RoundStart(3, 0, longer, np.zeros(D), 1.0, federation="fed"),
        # no room for it
        RoundStart(3, 0, SPEC, np.zeros(D), 1.0, report_unclipped=True, federation="fed"),
    ):
        client.handle(encode_message(start))
    assert trained == [] and client.stats.rounds_started == 0
    assert client._started is None and json.loads(state.read_text())["last_started"] is None
    assert outbox.sent == [Leave(3, "could not take part (MalformedMessage)")] * 2
    # the consistent pairs are taken
    client.handle(
        encode_message(RoundStart(3, 0, longer, np.zeros(D), 1.0, True, federation="fed"))
    )
    assert trained == [1] and client._round == 3


class _LimitedEndpoint:
    """A branch's in-process endpoint whose transport refuses messages above ``limit``
    bytes, as a gRPC channel does above its max_message_bytes."""

    def __init__(self, inner: object, limit: int) -> None:
        self._inner, self._limit = inner, limit

    def send(self, payload: bytes) -> None:
        if len(payload) > self._limit:
            raise MessageTooLarge(f"{len(payload)} bytes exceed the limit of {self._limit}")
        self._inner.send(payload)  # type: ignore[attr-defined]

    def receive(self, timeout: float | None) -> bytes | None:
        return self._inner.receive(timeout)  # type: ignore[attr-defined, no-any-return]


def test_a_masked_input_the_transport_refuses_makes_the_branch_leave_at_once() -> None:
    """In the protocol (not at the start): the branch's masked input is above its
    transport's limit. Before, it sat in the round silent and the server waited out the
    phase deadline for it (60 s here); now it leaves and the round closes without it."""
    import tempfile
    import threading
    import time

    from secagg.runtime.config import FederationConfig
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    names = [f"branch-{i:02d}" for i in range(6)]  # secagg+ threshold 4: one may drop
    dimension = 2000  # masked inputs of kilobytes; keys and shares far smaller
    phase = 60.0
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "big", "clients": names, "dimension": dimension, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 4.0},
            "deadlines": {"phase_seconds": phase, "round_seconds": 600.0},
        }
    )
    hub = InProcessHub()
    clients = []
    for i, name in enumerate(names):
        endpoint = hub.connect(name)
        transport = _LimitedEndpoint(endpoint, 4000) if i == 0 else endpoint
        clients.append(FederationClient(name, lambda m: np.full_like(m, 0.1), transport))
    done = threading.Event()
    results: list[object] = []

    def run(client: FederationClient) -> None:
        client.run(idle_timeout=phase, rounds=1)

    for client in clients:
        threading.Thread(target=run, args=(client,), daemon=True).start()

    def serve() -> None:
        store = ServerStore(Path(tempfile.mkdtemp(prefix="secagg-big-")) / "state.sqlite")
        server = FederationServer(config, hub, store)
        results.extend(server.run(wait_for_clients=60, max_attempts=1))
        done.set()

    began = time.monotonic()
    threading.Thread(target=serve, daemon=True).start()
    assert done.wait(phase / 2), "the server waited out the phase for the silent branch"
    assert time.monotonic() - began < phase / 2
    (result,) = results
    assert result.status == "complete", result.reason  # type: ignore[attr-defined]
    assert result.contributed == tuple(names[1:])  # type: ignore[attr-defined]
    assert clients[0]._session is None and clients[0].stats.refused_messages == 0


def test_the_servers_payloads_of_a_round_the_branch_left_are_not_refusals() -> None:
    """The server sends the round's setup with its start, before it reads the branch's
    leave: that payload is no fault of the server's. Before, each was counted (and
    logged) as a refused message, one per left round (the setup relay after a failed
    training, the next phase after a refusal). A payload of a round it never started is
    still refused."""

    def broken(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("the hook's data source is down")

    outbox = SentMessages()
    client = FederationClient(NAME, broken, outbox)
    client.handle(encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    assert outbox.sent == [Leave(1, "local training failed (RuntimeError)")]
    # the start itself is no refusal: the branch's own training failed (it counted one)
    assert client.stats.refused_messages == 0
    client.handle(encode_message(Relay(1, b"the round's setup")))
    assert client.stats.refused_messages == 0
    client.handle(encode_message(Relay(2, b"a round it never started")))
    assert client.stats.refused_messages == 1
    client.handle(encode_message(RoundEnd(1, False, "too few")))
    assert client.stats.rounds_left == 1 and client.stats.rounds_aborted == 0


def test_a_round_the_branch_left_is_not_counted_completed_when_the_others_complete_it() -> None:
    """A branch whose training failed left the round, and the others completed it: the
    branch counted it in ``rounds_completed``, so ``secagg client`` said "1 rounds
    completed" for a round it sent nothing to (review, 2026-12-05). It is one left
    round now, and still one round over for ``run(rounds=...)``."""

    def broken(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("the hook's data source is down")

    client = FederationClient(NAME, broken, SentMessages())
    client.handle(encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    client.handle(encode_message(RoundEnd(1, True, "")))
    stats = client.stats
    assert (stats.rounds_completed, stats.rounds_aborted, stats.rounds_left) == (0, 0, 1)
    assert stats.rounds_ended == 1
    client.handle(encode_message(RoundEnd(1, True, "")))  # a replayed end counts nothing
    assert (stats.rounds_completed, stats.rounds_left, stats.refused_messages) == (0, 1, 1)


def test_a_replayed_start_of_the_round_in_flight_sends_no_leave() -> None:
    """A leave tells the server the branch sends nothing more in the round; for a
    refused replay of the round it is in, the server counted it gone (its early close)
    while it was still taking part."""
    outbox = SentMessages()
    client = FederationClient(NAME, lambda m: np.full_like(m, 0.1), outbox)
    client.handle(encode_message(RoundStart(7, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    session = client._session
    assert session is not None
    client.handle(encode_message(RoundStart(7, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    assert client.stats.refused_messages == 1 and client._session is session
    assert not [m for m in outbox.sent if isinstance(m, Leave)]
    # an older round's start is refused too, and its leave (of a round long over) kept
    client.handle(encode_message(RoundStart(6, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    assert [m for m in outbox.sent if isinstance(m, Leave)] == [
        Leave(6, "could not take part (MalformedMessage)")
    ]


@pytest.mark.parametrize(
    "error",
    [InvalidMessage("the update is not the round's"), RuntimeError("the library failed")],
    ids=["refused", "raised"],
)
def test_an_input_its_own_session_refuses_makes_the_branch_leave_the_round(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The branch trained, then its protocol session refused (or failed on) its input:
    nothing of the update left. The branch had taken the round in flight before
    ``set_input`` ran, so a refusal was read as a replayed start of the round in flight
    (no leave: the server waited out the phase for it) and a failure sent a leave but
    stayed in the round, its end counted completed when the others completed it."""

    def refuse(self: MaskingClient, update: np.ndarray) -> list[bytes]:
        raise error

    monkeypatch.setattr(MaskingClient, "set_input", refuse)
    outbox = SentMessages()
    client = FederationClient(NAME, lambda m: np.full_like(m, 0.1), outbox)
    client.handle(
        encode_message(RoundStart(7, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed"))
    )
    leaves = [m for m in outbox.sent if isinstance(m, Leave)]
    assert [m.round for m in leaves] == [7] and type(error).__name__ in leaves[0].reason
    assert client._session is None and client._round is None
    assert not [m for m in outbox.sent if isinstance(m, Relay)]
    client.handle(encode_message(Relay(7, b"the round's setup, sent before the leave")))
    client.handle(encode_message(RoundEnd(7, True, "")))
    stats = client.stats
    assert (stats.rounds_completed, stats.rounds_left, stats.refused_messages) == (0, 1, 1)


def test_a_leave_says_whether_the_training_or_taking_part_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure of the protocol session's ``set_input``, after the training hook had
    returned, was reported in the leave as "local training failed (...)" (review,
    2026-12-05): the server's log blamed the branch's training, which had succeeded.
    A failure of the hook itself still says so."""

    def broken(model: np.ndarray) -> np.ndarray:
        raise RuntimeError("the hook's data source is down")

    outbox = SentMessages()
    FederationClient(NAME, broken, outbox).handle(
        encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, federation="fed"))
    )
    assert outbox.sent == [Leave(1, "local training failed (RuntimeError)")]

    def fail(self: MaskingClient, update: np.ndarray) -> list[bytes]:
        raise RuntimeError("the library failed")

    monkeypatch.setattr(MaskingClient, "set_input", fail)
    trained: list[int] = []

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        return np.full_like(model, 0.1)

    outbox = SentMessages()
    FederationClient(NAME, train, outbox).handle(
        encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, federation="fed"))
    )
    assert trained == [1]
    assert outbox.sent == [Leave(1, "could not take part after training (RuntimeError)")]

    def no_session(self: MaskingBackend, *args: object, **kwargs: object) -> MaskingClient:
        raise RuntimeError("the library failed")

    monkeypatch.setattr(MaskingBackend, "client", no_session)
    outbox = SentMessages()
    FederationClient(NAME, train, outbox).handle(
        encode_message(RoundStart(1, 0, SPEC, np.zeros(D), 1.0, federation="fed"))
    )
    assert trained == [1]  # it failed before training: nothing trained
    assert outbox.sent == [Leave(1, "could not take part (RuntimeError)")]


def test_a_branch_of_the_wrong_dimension_leaves_the_round_before_it_stops() -> None:
    """A ``DimensionMismatch`` stops the branch; it cleared the round in flight but sent
    no leave, so the server waited for it until its session ended (review,
    2026-12-05). It leaves the round first, saying why, and nothing is trained."""
    trained: list[int] = []

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        return np.full_like(model, 0.1)

    outbox = SentMessages()
    client = FederationClient(NAME, train, outbox, dimension=D + 2)
    with pytest.raises(DimensionMismatch):
        client.handle(
            encode_message(
                RoundStart(3, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
            )
        )
    reason = (
        f"could not take part (DimensionMismatch: {D + 2} parameters, the federation's model {D})"
    )
    assert outbox.sent == [Leave(3, reason)] and trained == []
    assert client._session is None and client._round is None

    # the training hook's update of another size: the same, after training
    outbox = SentMessages()
    client = FederationClient(NAME, lambda m: np.zeros(D - 1), outbox)
    with pytest.raises(DimensionMismatch):
        client.handle(encode_message(RoundStart(4, 0, SPEC, np.zeros(D), 1.0, federation="fed")))
    reason = (
        f"could not take part (DimensionMismatch: {D - 1} parameters, the federation's model {D})"
    )
    assert outbox.sent == [Leave(4, reason)]
    assert client._session is None and client._round is None
