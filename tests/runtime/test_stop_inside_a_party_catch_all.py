"""A Ctrl-C or SIGTERM that surfaced as another exception inside a party's catch-all
(a branch's training hook, a message it handles, a key holder's request) stops the
party; it is not one more failure to serve on after.

Found in the review of ec2a673c (2026-12-07). That commit made a stop that surfaced as
another exception (``RuntimeError: cannot release un-acquired lock``, the interrupt in
a stdlib condition's wait) still the stop, but only when the exception reached the
command's own block (``_sigterm_as_interrupt``). The branch's training hook is the
operator's code, which waits on stdlib queues, events and futures and may wrap what it
catches in its own error; the branch caught every exception of it as "local training
failed", left the round and served on: the Ctrl-C was lost, and a service manager's
SIGTERM waited for its SIGKILL. The key holder's request handling did the same.

The stop is built as Python leaves it: an exception raised while a KeyboardInterrupt
(or the CLI's SIGTERM, raised as one that carries the signal) was being handled.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.runtime.client import BranchIdentity, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import Relay, RoundStart, encode_message
from secagg.transport.inprocess import InProcessHub
from secagg.transport.waiting import stop_within

D = 8
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))


def _surfaced_as_lock_error(stop: KeyboardInterrupt) -> None:
    """The CI's case: the interrupt's ``with`` released a lock it no longer held."""
    try:
        raise stop
    except KeyboardInterrupt:
        raise RuntimeError("cannot release un-acquired lock") from None


def _wrapped_by_the_hook(stop: KeyboardInterrupt) -> None:
    """A hook that wraps whatever stopped its training in its own error."""
    try:
        raise stop
    except BaseException as exc:
        raise ValueError("training interrupted") from exc


SURFACINGS: list[Callable[[KeyboardInterrupt], None]] = [
    _surfaced_as_lock_error,
    _wrapped_by_the_hook,
]


class _Signalled(KeyboardInterrupt):
    """A stop that carries its signal, as the CLI's SIGTERM (``_Terminated``) does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOPS = [KeyboardInterrupt, lambda: _Signalled(signal.SIGTERM)]


@pytest.mark.parametrize("surface", SURFACINGS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("make_stop", STOPS, ids=["ctrl-c", "sigterm"])
def test_a_stop_in_the_training_hook_stops_the_branch(
    surface: Callable[[KeyboardInterrupt], None], make_stop: Callable[[], KeyboardInterrupt]
) -> None:
    stop = make_stop()

    def hook(model: np.ndarray) -> np.ndarray:
        surface(stop)
        return model

    outbox = SentMessages()
    client = FederationClient("branch-00", hook, outbox)
    start = RoundStart(1, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
    with pytest.raises(KeyboardInterrupt) as raised:
        client.handle(encode_message(start))
    assert raised.value is stop  # the very stop: a SIGTERM is still said as SIGTERM
    assert outbox.sent == []  # no leave saying its training failed: it was stopped


def test_a_stop_while_the_branch_answers_a_message_stops_it() -> None:
    """The branch's catch-all for a server message ("no server message may crash a
    branch") gives a stop back too."""
    stop = _Signalled(signal.SIGINT)
    client = FederationClient("branch-00", lambda model: model + 0.1, SentMessages())

    def send_cut_short(round_number: int, payloads: list[bytes]) -> None:
        _surfaced_as_lock_error(stop)  # its transport's queue, say

    client._send = send_cut_short  # type: ignore[method-assign]
    start = RoundStart(1, 0, SPEC, np.zeros(D), 1.0, deadline=60.0, federation="fed")
    with pytest.raises(KeyboardInterrupt) as raised:
        client.handle(encode_message(start))
    assert raised.value is stop
    assert client.stats.refused_messages == 0


class _StoppedSession:
    """A key holder's helper session whose decryption was stopped by a signal."""

    decryptions = 0

    def __init__(self, stop: KeyboardInterrupt) -> None:
        self.stop = stop

    def handle(self, payload: bytes, *, round_number: int) -> bytes:
        _surfaced_as_lock_error(self.stop)
        return b""


def test_a_stop_in_the_key_holders_request_stops_it() -> None:
    stop = _Signalled(signal.SIGTERM)
    service = KeyHolderService("key-holder", None, _StoppedSession(stop))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt) as raised:
        service._answer(encode_message(Relay(1, b"request")))
    assert raised.value is stop
    assert service.refused == 0  # not counted as a request it refused


def test_only_a_stop_is_found() -> None:
    """Any other failure stays one: the catch-alls still serve on after it."""
    try:
        try:
            raise OSError("the feature store is down")
        except OSError as first:
            raise RuntimeError("retry failed") from first
    except RuntimeError as exc:
        assert stop_within(exc) is None
    cycle = ValueError("a")
    other = ValueError("b")
    cycle.__context__, other.__context__ = other, cycle  # a chain that loops ends too
    assert stop_within(cycle) is None


class _SessionStoppedInHandle:
    """A server's round session whose handling of a payload was stopped by a signal
    (a library's wait or wrapper under ``session.handle``: the CKKS context, a verifier)."""

    def __init__(self, stop: KeyboardInterrupt) -> None:
        self.stop = stop

    def noise_of_reply(self, party: int, payload: object) -> float | None:
        return None

    def handle(self, party: int, payload: bytes) -> list[object]:
        _surfaced_as_lock_error(self.stop)
        return []


@pytest.mark.parametrize("make_stop", STOPS, ids=["ctrl-c", "sigterm"])
def test_a_stop_while_the_server_handles_a_branchs_message_stops_it(
    tmp_path: Path, make_stop: Callable[[], KeyboardInterrupt]
) -> None:
    """The server's catch-all ("no branch's bytes may stop the server") took a stop that
    surfaced as another exception as one more message to drop ("please report"), and
    its collect loop served on: the Ctrl-C or SIGTERM was lost until the round ended."""
    names = ["branch-0", "branch-1", "branch-2"]
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "fed", "clients": names, "dimension": D, "rounds": 1},
            "backend": {"name": "secagg+", "value_bound": 1.0},
        }
    )
    server = FederationServer(config, InProcessHub(), ServerStore(tmp_path / "s.sqlite"))
    stop = make_stop()
    session = _SessionStoppedInHandle(stop)
    parties = {name: i for i, name in enumerate(names)}
    payload = encode_message(Relay(1, b"a payload"))
    with pytest.raises(KeyboardInterrupt) as raised:
        server._receive(1, session, parties, names[0], payload)  # type: ignore[arg-type]
    assert raised.value is stop
    assert server.refused_messages == 0  # not counted as a message it refused


class _SessionStoppedInItsNotes:
    """A key holder's session whose notes after a reply, or whose refusal, were stopped."""

    def __init__(self, stop: KeyboardInterrupt) -> None:
        self.stop = stop

    def after_reply(self) -> None:
        _surfaced_as_lock_error(self.stop)

    def refusal(self, error: BaseException) -> bytes | None:
        _surfaced_as_lock_error(self.stop)
        return None


def test_a_stop_in_the_key_holders_notes_or_refusal_stops_it() -> None:
    """Its two other catch-alls (the session's notes after a reply, the refusal it
    builds) logged the stop as one more failure and the key holder served on."""
    stop = _Signalled(signal.SIGTERM)
    service = KeyHolderService("key-holder", None, _SessionStoppedInItsNotes(stop))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt) as raised:
        service._after_reply()
    assert raised.value is stop
    with pytest.raises(KeyboardInterrupt) as raised:
        service._refusal(Relay(1, b"request"), ValueError("refused"))
    assert raised.value is stop


def test_a_stop_while_the_branch_checks_a_certificate_stops_it() -> None:
    """A stop inside the check of a party's certificate (cryptography's verifier, which
    the branch's main thread runs) was "party 1's certificate does not verify": the
    branch refused the round as if the server had listed a forged certificate."""
    stop = _Signalled(signal.SIGINT)

    def check(der: bytes) -> str:
        if der == b"own":
            return "branch-00"
        _wrapped_by_the_hook(stop)
        return "never"

    identity = BranchIdentity(b"own", None, check)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt) as raised:
        identity.round_identity((b"own", b"other"), 0)
    assert raised.value is stop
