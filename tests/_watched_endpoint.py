"""A branch's end of the in-process hub that counts its long waits, for the tests of a
branch left out of a round (NotSampled): such a branch must wait for the server past its
idle timer instead of giving up, and a count of those waits is what shows it did."""

from __future__ import annotations


class WatchedEndpoint:
    """Wraps a branch's endpoint and counts the receives it makes with a timeout beyond
    ``idle`` (by a second), or with none."""

    def __init__(self, inner: object, idle: float) -> None:
        self._inner = inner
        self._idle = idle
        self.long_waits = 0

    def receive(self, timeout: float | None) -> bytes | None:
        if timeout is None or timeout > self._idle + 1.0:
            self.long_waits += 1
        return self._inner.receive(timeout)  # type: ignore[attr-defined]

    def send(self, payload: bytes) -> None:
        self._inner.send(payload)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]
