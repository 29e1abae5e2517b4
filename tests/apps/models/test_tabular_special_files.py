"""A customer CSV path that is not a regular file: one line at once, never a hang.

Why: the loader ``open()``-ed the path, so a named pipe (``secagg simulate --data``
given one by mistake, or a file swapped for one) blocked forever waiting for a writer,
and ``/dev/null`` read as an empty file ("is empty") rather than as what it is
(hostile CLI review, 2026-12-06). The path is now opened once, non-blocking, and its
kind taken from that descriptor; the wait (tests/_fifo.py) is bounded, so a blocked open
fails the test instead of hanging it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _fifo import in_thread, needs_fifos

from secagg.apps.models.tabular import load_creditcard_csv, load_labelled_csv
from secagg.errors import ConfigurationError


@needs_fifos
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "customers.csv"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: load_creditcard_csv(fifo), unblock=fifo)
    assert isinstance(outcome, ConfigurationError), outcome
    assert str(outcome) == f"{fifo} is a named pipe, not a CSV file"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_character_device_is_named_as_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_labelled_csv("/dev/null", "label")
    assert str(caught.value) == "/dev/null is a character device, not a CSV file"


def test_a_folder_and_a_missing_file_keep_their_words(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"is a directory, not a CSV file$"):
        load_labelled_csv(tmp_path, "label")
    with pytest.raises(ConfigurationError, match=r"^no CSV file at "):
        load_labelled_csv(tmp_path / "none.csv", "label")


def test_a_regular_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n")
    table = load_labelled_csv(path, "label")
    assert table.x.shape == (2, 2) and list(table.y) == [0, 1]
