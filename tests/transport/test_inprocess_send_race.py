"""A send on the in-process hub is checked and queued in one step.

Transport review (2026-12-05): both sends checked the session under the hub's lock,
released it, and queued after. A session that ended in that gap still had its message
queued: a client's reached the server after the session's end (under a name a newer
session may already hold), and the server's went behind the end marker of an inbox no
one reads, while ``send`` reported success.

The gap is made to happen every time, not by timing: the hub's lock is replaced by one
that runs a hook (end the session) right after the sending thread's first release of
it, and the queue notes, at each put, whether the sending session was still open.
Whatever ``send`` does, a message it queues must be queued while its session is open,
or ``send`` must raise :class:`NotConnected`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest

from secagg.transport.inprocess import InProcessHub, NotConnected


class _HookedLock:
    """A lock that, once armed, runs ``hook`` right after its next release."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hook: Callable[[], None] | None = None

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()


class _RecordingQueue(queue.Queue[Any]):
    """A queue that notes, for each payload put, whether ``session_open()`` said yes."""

    def __init__(self, session_open: Callable[[], bool]) -> None:
        super().__init__()
        self._session_open = session_open
        self.payload_puts: list[bool] = []

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, (bytes, tuple)):  # not the hub's end marker
            self.payload_puts.append(self._session_open())
        super().put(item, block, timeout)


def _hooked_hub() -> tuple[InProcessHub, _HookedLock]:
    hub = InProcessHub()
    lock = _HookedLock()
    hub._lock = lock  # type: ignore[assignment]
    return hub, lock


def _open(hub: InProcessHub, session: int) -> bool:
    """Whether ``session`` is the hub's open session of branch-001 (read without the
    lock: the puts it is asked from may run under it)."""
    return hub._session_ids.get("branch-001") == session


def _send(action: Callable[[], None]) -> bool:
    """Whether ``action`` (a send) returned rather than raising NotConnected."""
    try:
        action()
    except NotConnected:
        return False
    return True


def test_client_message_is_not_queued_after_its_session_ended() -> None:
    hub, lock = _hooked_hub()
    client = hub.connect("branch-001")
    recording = _RecordingQueue(lambda: _open(hub, client.session))
    hub._to_server = recording  # type: ignore[assignment]
    lock.hook = lambda: hub.disconnect("branch-001")  # the server drops it mid-send

    sent = _send(lambda: client.send(b"update"))

    assert recording.payload_puts == ([True] if sent else []), "queued after the end"


def test_client_message_is_not_queued_under_the_next_session_of_its_name() -> None:
    hub, lock = _hooked_hub()
    old = hub.connect("branch-001")
    recording = _RecordingQueue(lambda: _open(hub, old.session))
    hub._to_server = recording  # type: ignore[assignment]

    def restart() -> None:  # the branch's session ends and a new one opens
        hub.disconnect("branch-001")
        hub.connect("branch-001")

    lock.hook = restart
    sent = _send(lambda: old.send(b"from the old session"))

    assert recording.payload_puts == ([True] if sent else []), "queued under the new session"
    with pytest.raises(NotConnected):
        old.send(b"again")  # the old session stays ended


def test_server_message_is_not_queued_behind_the_end_of_the_session() -> None:
    hub, lock = _hooked_hub()
    client = hub.connect("branch-001")
    recording = _RecordingQueue(lambda: _open(hub, client.session))
    hub._to_client["branch-001"] = recording
    lock.hook = lambda: hub.disconnect("branch-001")

    sent = _send(lambda: hub.send("branch-001", b"round setup"))

    assert recording.payload_puts == ([True] if sent else []), "queued behind the end"
