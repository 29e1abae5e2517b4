"""The in-process transport: queues between a server and client threads.

The default for ``secagg simulate`` and the tests. It offers exactly the
interface the gRPC transport offers (:class:`~secagg.transport.base.ServerEndpoint`
for the server, :class:`~secagg.transport.base.ClientEndpoint` per client), so
the runtime above never knows which one it drives. Messages are bytes, copied on
send, so nothing is shared between the parties but the queues.
"""

from __future__ import annotations

import queue
import threading

# The endpoint protocols and NotConnected are re-exported: callers imported them from here.
from secagg.transport.base import ClientEndpoint, NotConnected, ServerEndpoint

__all__ = ["ClientEndpoint", "InProcessHub", "NotConnected", "ServerEndpoint"]


class InProcessHub:
    """One server endpoint and any number of named client endpoints, in one process."""

    def __init__(self) -> None:
        self._to_server: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._to_client: dict[str, queue.Queue[bytes]] = {}
        self._lock = threading.Lock()

    # server side
    def send(self, name: str, payload: bytes) -> None:
        with self._lock:
            inbox = self._to_client.get(name)
        if inbox is None:
            raise NotConnected(f"client {name!r} is not connected")
        inbox.put(bytes(payload))

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        try:
            return self._to_server.get(timeout=timeout)
        except queue.Empty:
            return None

    def connected(self) -> set[str]:
        with self._lock:
            return set(self._to_client)

    # client side
    def connect(self, name: str) -> _InProcessClient:
        with self._lock:
            if name in self._to_client:
                raise ConnectionError(f"client {name!r} is already connected")
            self._to_client[name] = queue.Queue()
        return _InProcessClient(self, name)

    def disconnect(self, name: str) -> None:
        with self._lock:
            self._to_client.pop(name, None)


class _InProcessClient:
    def __init__(self, hub: InProcessHub, name: str) -> None:
        self._hub = hub
        self.name = name

    def send(self, payload: bytes) -> None:
        self._hub._to_server.put((self.name, bytes(payload)))

    def receive(self, timeout: float | None) -> bytes | None:
        with self._hub._lock:
            inbox = self._hub._to_client.get(self.name)
        if inbox is None:
            raise NotConnected(f"client {self.name!r} is disconnected")
        try:
            return inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._hub.disconnect(self.name)
