"""The in-process transport: queues between a server and client threads.

The default for ``secagg simulate`` and the tests. It offers exactly the
interface the gRPC transport offers (:class:`~secagg.transport.base.ServerEndpoint`
for the server, :class:`~secagg.transport.base.ClientEndpoint` per client), so
the runtime above never knows which one it drives. Messages are bytes, copied on
send, so nothing is shared between the parties but the queues.

Memory. The queues are unbounded, unlike the gRPC transport's (per session: unread
messages, unread bytes, unsent bytes), and deliberately so. Every party here is a
thread of the operator's own process (a simulation, a test, the empirical audit; the
Ray engine's hosts are the operator's actors), so a flooding party is the operator's
own code, which could as well allocate memory directly or reach the queues: a bound
here would defend nothing. A party the operator does not run reaches the server only
over gRPC, whose limits refuse a flood. (Back-pressure on the server's sends would
also let one slow branch thread stall the server; gRPC ends such a session instead.)

Waking the server's waits. The hub offers ``wait_for_sessions`` as gRPC's server does:
every change of what :meth:`InProcessHub.connected` answers (a session opened or ended;
in the simulator, a branch vanished or came back) is counted and wakes its waiters, so
the server's quorum wait and its start wait (``--wait``) wake when the party they wait
for connects. Before, they polled: the quorum wait with a back-off up to a second apart
(it noticed a quorum 0.6 s late in the median, 0.97 s at worst), the start wait every
10 ms. A subclass that changes what ``connected`` answers calls
:meth:`InProcessHub.sessions_changed` (``wake_server`` does it too).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

# The endpoint protocols and NotConnected are re-exported: callers imported them from here.
from secagg.transport.base import ClientEndpoint, NotConnected, ServerEndpoint, waitable_seconds
from secagg.transport.waiting import InterruptSafeCondition

__all__ = ["ClientEndpoint", "InProcessHub", "NotConnected", "ServerEndpoint"]

_ENDED: Any = object()  # queued last when a session ends (never a payload: not bytes)
#: queued to the server when a party's session ends (never a payload: not a tuple)
_WAKE: Any = object()


class InProcessHub:
    """One server endpoint and any number of named client endpoints, in one process."""

    def __init__(self) -> None:
        self._to_server: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._to_client: dict[str, queue.SimpleQueue[bytes]] = {}
        self._session_ids: dict[str, int] = {}  # name -> its open session's id
        self._next_session = 1
        self._lock = threading.Lock()
        # the count of changes of connected() and its waiters (its own lock: a subclass
        # signals while holding its own locks, never this one, so no lock order to keep)
        self._changes = 0
        self._changed = InterruptSafeCondition()  # a Ctrl-C in a wait stays one: see waiting
        self._receiving = 0  # server receives waiting now (under _lock): see connect

    # server side
    def send(self, name: str, payload: bytes) -> None:
        """Queue ``payload`` to ``name``'s open session; raises NotConnected if none.

        Checked and queued under one hold of the lock: checked, released, then queued,
        a session that ended in between got the message after its end marker, and the
        server believed a message sent that no one would read."""
        self._put(name, bytes(payload), None)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        """Queue the concatenation of ``parts`` to ``name`` only while its open session is
        ``session`` (an id :meth:`session_id` gave); raises NotConnected otherwise.

        Why: the server looked at a participant's session, then sent by name; a
        reconnect between the two put the round's message on a new session that never
        took the round (the branch drops it as late) while the server counted it
        delivered. The session is compared and the message queued under one hold of
        the lock, so no reconnect falls between them."""
        self._put(name, b"".join(bytes(part) for part in parts), session)

    def _put(self, name: str, data: bytes, session: int | None) -> None:
        """Queue ``data`` to ``name``'s open session (to session ``session`` only, when
        given), checked and queued under one hold of the lock."""
        with self._lock:
            inbox = self._to_client.get(name)
            if inbox is None:
                raise NotConnected(f"client {name!r} is not connected")
            if session is not None and self._session_ids.get(name) != session:
                raise NotConnected(f"client {name!r} is on another session than {session}")
            inbox.put(data)  # unbounded: never blocks while the lock is held

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        """The next message from any client, in arrival order; None on timeout, and at
        once when a client's session ended (or, in the simulator, a branch vanished)
        since the last call: what a server waits for may then never come.

        Why the early None: a session's end is no message, and the server learnt of it
        only when its receive timed out (it polls twice a second), so every branch that
        vanished cost its round up to half a second of waiting for nobody; the end now
        wakes it, and it looks at who is still connected at once. So does a session
        that opens while this call waits (:meth:`connect`), as over gRPC."""
        with self._lock:
            self._receiving += 1
        try:
            item = self._to_server.get(timeout=waitable_seconds(timeout))
        except queue.Empty:
            return None
        finally:
            with self._lock:
                self._receiving -= 1
        return None if item is _WAKE else item

    def queued(self) -> int:
        """How many items wait for the server's :meth:`receive` now (a session's end
        counted as one)."""
        return self._to_server.qsize()

    def wake_server(self) -> None:
        """Make the server's pending (or next) :meth:`receive` return None now: a party's
        session ended, which the server sees only by looking (``connected``,
        ``session_id``). It is a change of who is connected, so it wakes
        :meth:`wait_for_sessions` too."""
        self._to_server.put(_WAKE)  # unbounded: never blocks
        self.sessions_changed()

    def sessions_changed(self) -> None:
        """Count a change of what :meth:`connected` answers and wake every
        :meth:`wait_for_sessions`: called on every session opened or ended, and by a
        subclass whenever its own view changes (a simulated branch vanishing or back)."""
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def wait_for_sessions(self, seen: int | None, timeout: float | None) -> int:
        """Wait until :meth:`connected` changed after the change numbered ``seen`` (None:
        return at once), for at most ``timeout`` seconds; returns the latest change's
        number. The contract of gRPC's ``wait_for_sessions``: a caller reads the number,
        looks at :meth:`connected`, and passes the number back, so a change between its
        look and its wait wakes it at once (counted, never missed)."""
        timeout = waitable_seconds(timeout)
        with self._changed:
            if seen is not None:
                self._changed.wait_for(lambda: self._changes != seen, timeout)
            return self._changes

    def connected(self) -> set[str]:
        with self._lock:
            return set(self._to_client)

    def session_id(self, name: str) -> int | None:
        """The id of ``name``'s open session (new for each connect), or None."""
        with self._lock:
            return self._session_ids.get(name)

    # client side
    def connect(self, name: str) -> _InProcessClient:
        with self._lock:
            if name in self._to_client:
                raise ConnectionError(f"client {name!r} is already connected")
            self._to_client[name] = queue.SimpleQueue()
            self._session_ids[name] = self._next_session
            self._next_session += 1
            client = _InProcessClient(self, name, self._session_ids[name])
            waiting = self._receiving > 0
        if waiting:
            # a server waiting in receive for a party that came back (a key holder
            # restarted mid-phase, whose request it resends) looks at once, not at its
            # next poll (up to 0.5 s later). Only a waiting receive: a later call is not
            # handed a None it did not wait for (one that took a message at this very
            # moment may be: a None is never more than "look again")
            self._to_server.put(_WAKE)  # unbounded: never blocks
        self.sessions_changed()  # the server's waits for parties look again at once
        return client

    def disconnect(self, name: str, session: int | None = None) -> None:
        """End ``name``'s session (only if it is still session ``session``, when given);
        a receive blocked on it wakes and raises NotConnected, as over gRPC."""
        with self._lock:
            if session is not None and self._session_ids.get(name) != session:
                return  # that session already ended; a newer one is not ours to close
            inbox = self._to_client.pop(name, None)
            self._session_ids.pop(name, None)
        if inbox is not None:
            inbox.put(_ENDED)
            self.wake_server()


class _InProcessClient:
    """One session of a named client; once it ends, receive raises NotConnected.

    A reconnect is a new session (``hub.connect`` again); this object then stays ended,
    like a closed gRPC session, and delivers nothing of the new one."""

    def __init__(self, hub: InProcessHub, name: str, session: int) -> None:
        self._hub = hub
        self.name = name
        self.session = session

    def _inbox(self) -> queue.SimpleQueue[bytes]:
        """This session's inbox; raises NotConnected once the session ended.
        The caller holds the hub's lock."""
        inbox = self._hub._to_client.get(self.name)
        if inbox is None or self._hub._session_ids.get(self.name) != self.session:
            raise NotConnected(f"client {self.name!r} is disconnected")
        return inbox

    def send(self, payload: bytes) -> None:
        """Queue ``payload`` to the server; raises NotConnected once the session ended
        (as over gRPC).

        Checked and queued under one hold of the hub's lock: checked, released, then
        queued, a message of a session that ended in between (the server had dropped
        the client, or a newer session of the same name had opened) reached the server
        after that end, under the name it now gives to someone else."""
        data = bytes(payload)
        with self._hub._lock:
            self._inbox()
            self._hub._to_server.put((self.name, data))  # unbounded: never blocks

    def _checked_inbox(self) -> queue.SimpleQueue[bytes]:
        with self._hub._lock:
            return self._inbox()

    def receive(self, timeout: float | None) -> bytes | None:
        inbox = self._checked_inbox()
        try:
            payload = inbox.get(timeout=waitable_seconds(timeout))
        except queue.Empty:
            self._checked_inbox()  # ended while waiting: say so rather than "nothing yet"
            return None
        if payload is _ENDED:
            inbox.put(_ENDED)  # every later call raises too
            raise NotConnected(f"client {self.name!r} is disconnected")
        return payload

    def close(self) -> None:
        self._hub.disconnect(self.name, self.session)
