"""Test helper: a branch's end of the wire that keeps what the branch sends.

Shared by the runtime tests that drive a :class:`~secagg.runtime.client.FederationClient`
message by message (no server): each inspects the decoded messages the branch sent.
"""

from __future__ import annotations

from secagg.runtime.wire import decode_message


class SentMessages:
    """A branch's transport that decodes and keeps what the branch sends and never
    receives anything (the test hands the branch its messages with ``handle``)."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(decode_message(payload))

    def receive(self, timeout: float | None) -> bytes | None:
        return None
