"""A key holder whose ``<state>.opened`` was swapped for a named pipe starts, with no
round open, instead of waiting forever.

Why: the opened round was read by path (``read_text``) at start, so a named pipe there
blocked the key holder's start for good; read through one open it is refused at once
and set aside with a warning, as an unreadable file always was (forgetting an opened
round costs that round, never a second decryption: the record alone prevents that)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos, swap_for_fifo

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, ToParty
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession, opened_path

N, D = 3, 40
FED = "fed-a"


def _backend() -> CKKSBackend:
    return CKKSBackend(max_clients=N)


def _key_request() -> bytes:
    backend = _backend()
    server = backend.server(backend.plan(N, D))
    server.bind_federation(FED)
    (request,) = server.start()
    assert isinstance(request, ToParty) and request.party == HELPER
    return request.payload


@needs_fifos
def test_an_opened_round_swapped_for_a_named_pipe_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "kh.key"
    _backend().make_helper_key(key)
    settings = {"key": str(key), "federation": FED}
    first: KeyHolderSession = _backend().helper(settings)
    first.handle(_key_request(), round_number=1)  # writes the record and .opened
    opened = opened_path(Path(str(key) + ".state"))
    assert opened.exists()
    swap_for_fifo(opened)
    restarted = in_thread(lambda: _backend().helper(settings), opened)
    assert isinstance(restarted, KeyHolderSession), restarted
    assert "is a named pipe" in caplog.text and "set aside" in caplog.text
