"""The key holder's key file is read through one open: a named pipe there is one
ConfigurationError, never a hang.

Why: ``secagg keyholder`` checks the key its policy names, and :meth:`KeyHolder.load`
read it again by path (``read_bytes``), so a key swapped for a named pipe in between
blocked the key holder's start forever."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos

pytest.importorskip("tenseal")

from secagg.errors import NotARegularFile
from secagg.he.keys import KeyHolder
from secagg.he.params import choose_parameters


@needs_fifos
def test_a_named_pipe_for_the_key_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "kh.key"
    os.mkfifo(fifo, 0o600)
    params = choose_parameters(3, 1.0, 1e-6)
    outcome = in_thread(lambda: KeyHolder.load(fifo, params), fifo)
    assert isinstance(outcome, NotARegularFile), outcome
    assert str(outcome) == f"{fifo} is a named pipe, not a key holder's key file"
