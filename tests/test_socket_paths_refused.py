"""A Unix socket where a ledger, its side files or a state belongs is refused, as the
refusals say (":class:`NotARegularFile` ... a named pipe, a device or a socket").

Why: :func:`secagg.durable.special_file_kind` took a special file's kind from a
descriptor it opened, and a socket cannot be opened (``ENXIO``), so it answered None,
"a path the reader that follows explains": a socket at ``<ledger>-journal`` passed the
writer's and the audit's checks, and one at ``[server] state`` reached SQLite. Now the
kind comes from the path's status, and nothing is opened: a device's open can act (a
tape rewinds, a watchdog arms), which a check of what the path is must not do.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from secagg.durable import refuse_special_file, special_file_kind
from secagg.errors import NotARegularFile
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.chain import LedgerError


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[Path]:
    """A Unix socket bound at ``tmp_path/fed.ledger-journal``, closed after the test."""
    path = tmp_path / "fed.ledger-journal"
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(path))
        yield path
    finally:
        listener.close()


def test_a_socket_is_told_a_socket(bound: Path) -> None:
    assert special_file_kind(bound) == "a socket"
    with pytest.raises(NotARegularFile, match="a socket"):
        refuse_special_file(bound, "a server state")


def test_the_writer_refuses_a_socket_at_its_journal(bound: Path) -> None:
    ledger = bound.with_name("fed.ledger")
    with pytest.raises(LedgerError, match="is a socket, where SQLite keeps"):
        Ledger(ledger, LedgerKey.generate())
    assert not ledger.exists()  # refused before SQLite made anything


def test_a_device_is_told_without_opening_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import secagg.durable as durable

    def no_open(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("special_file_kind opened the path")

    monkeypatch.setattr(durable.os, "open", no_open)
    assert special_file_kind("/dev/null") == "a character device"
