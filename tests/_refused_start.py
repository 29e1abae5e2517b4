"""An in-process hub whose transport refuses every round start to one participant, for
the runtime tests of a participant whose round start could not be sent (it is told
the round runs without it, once per round, whatever its session)."""

from __future__ import annotations

from collections.abc import Sequence

from secagg.runtime.wire import RoundStart, decode_message
from secagg.transport.framing import MessageTooLarge
from secagg.transport.inprocess import InProcessHub


class RefusesRoundStartsTo(InProcessHub):
    """The hub, refusing (as too large) every round start to ``refused``."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def send(self, name: str, payload: bytes) -> None:
        self._check(name, payload)
        super().send(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        self._check(name, b"".join(parts))
        super().send_to_session(name, session, parts)

    def _check(self, name: str, payload: bytes) -> None:
        if name == self.refused and isinstance(decode_message(payload), RoundStart):
            raise MessageTooLarge(f"a round start to {name!r} above the limit")
