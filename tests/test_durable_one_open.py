"""The one-open reader every layer reads a user-named file through
(:func:`secagg.durable.read_regular_file`): a named pipe or a device is refused with a
typed error, never waited on; the file checked is the file read; the bound holds.

Why at the bottom layer: the command line checked a path and the layer below it
(certificates, ledger keys, a branch's state, the key holder's key and record) opened it
again, so a file swapped for a named pipe in between still blocked that party forever."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from _fifo import SwapAfterCheck, in_thread, needs_fifos, swap_for_fifo
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg.durable as durable_module
from secagg.durable import read_regular_file, refuse_special_file, special_file_kind
from secagg.errors import ConfigurationError, FileTooLarge, NotARegularFile


@needs_fifos
def test_a_named_pipe_is_refused_typed_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: read_regular_file(fifo, 1024, "a key file"), fifo)
    assert isinstance(outcome, NotARegularFile), outcome
    assert outcome.kind == "a named pipe"
    assert str(outcome) == f"{fifo} is a named pipe, not a key file"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_not_read_until_memory_runs_out() -> None:
    with pytest.raises(NotARegularFile, match="is a character device, not a state file"):
        read_regular_file("/dev/zero", 1024, "a state file")


def test_missing_and_folder_are_the_oserror_open_gives(tmp_path: Path) -> None:
    """Each caller words these in its own way (MissingCertificate, BranchStateError...)."""
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "absent", 1024, "a key file")
    with pytest.raises(IsADirectoryError):
        read_regular_file(tmp_path, 1024, "a key file")
    with pytest.raises(ConfigurationError, match="given by its path, not int"):
        read_regular_file(5, 1024, "a key file")  # type: ignore[arg-type]


@needs_fifos
def test_the_file_checked_is_the_file_read_when_swapped_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"version": 2}')
    monkeypatch.setattr(durable_module, "os", SwapAfterCheck(lambda: swap_for_fifo(path)))
    outcome = in_thread(lambda: read_regular_file(path, 1024, "a state file"), path)
    assert outcome == b'{"version": 2}', outcome


@needs_fifos
def test_special_file_kind_and_refusal_never_block(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger"
    os.mkfifo(fifo)
    assert in_thread(lambda: special_file_kind(fifo), fifo) == "a named pipe"
    outcome = in_thread(lambda: refuse_special_file(fifo, "a ledger"), fifo)
    assert isinstance(outcome, NotARegularFile), outcome
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    for fine in (regular, tmp_path, tmp_path / "absent"):
        assert special_file_kind(fine) is None
        refuse_special_file(fine, "a ledger")  # the reader that follows says the rest


def test_the_command_lines_names_still_read_through_it(tmp_path: Path) -> None:
    """helper-217's names in secagg.runtime.config keep their words (a ConfigurationError
    for a missing file or a folder, not an OSError)."""
    from secagg.runtime.config import file_kind
    from secagg.runtime.config import read_regular_file as config_read
    from secagg.runtime.config import refuse_special_file as config_refuse

    assert file_kind is durable_module.file_kind
    assert config_refuse is refuse_special_file
    with pytest.raises(ConfigurationError, match=r"^no configuration file at "):
        config_read(tmp_path / "absent.toml", 1024, "a configuration file")
    with pytest.raises(ConfigurationError, match=r"is a directory, not a configuration file$"):
        config_read(tmp_path, 1024, "a configuration file")


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 3000), bound=st.integers(0, 3000))
def test_a_file_is_returned_whole_up_to_its_bound_and_refused_past_it(
    size: int, bound: int
) -> None:
    data = os.urandom(size)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file"
        path.write_bytes(data)
        if size <= bound:
            assert read_regular_file(path, bound, "a test file") == data
        else:
            with pytest.raises(FileTooLarge, match="too large for a test file"):
                read_regular_file(path, bound, "a test file")
