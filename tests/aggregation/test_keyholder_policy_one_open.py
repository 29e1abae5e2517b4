"""The key holder's decryption record (``<key>.state``) is read through one open: a
named pipe there at start is one ConfigurationError, and swapped in while it runs makes
the record stale (every round refused), never a hang.

Why: the record was read by path (``read_text``) at start and before every opening and
decryption, so a file swapped for a named pipe blocked the key holder forever; and a
record that was not UTF-8 escaped as a bare UnicodeDecodeError rather than as a record
that holds nothing (fail closed, one line)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos, swap_for_fifo

from secagg.aggregation.keyholder_policy import DecryptionRecord, KeyHolderRefusal
from secagg.errors import ConfigurationError


@needs_fifos
def test_a_named_pipe_at_start_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "kh.key.state"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: DecryptionRecord(fifo, "fed"), fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    assert f"{fifo} is a named pipe" in str(outcome)


@needs_fifos
def test_a_record_swapped_for_a_named_pipe_refuses_every_round(tmp_path: Path) -> None:
    path = tmp_path / "kh.key.state"
    record = DecryptionRecord(path, "fed")
    record.commit(1)
    swap_for_fifo(path)
    outcome = in_thread(lambda: record.check(2, None), path)
    assert isinstance(outcome, KeyHolderRefusal), outcome
    assert record.stale is not None  # fail closed until an operator restarts it
    with pytest.raises(KeyHolderRefusal):
        record.check(3, None)


def test_a_record_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kh.key.state"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigurationError, match=r"\[key_holder\] state: cannot read"):
        DecryptionRecord(path, "fed")
