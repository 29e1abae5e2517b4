"""What a branch keeps across its restarts: the last round number it started.

Why
---
A branch refuses the start of a round at or below the last round it started, so no
protocol round id (derived from the round number and the spec:
:func:`secagg.aggregation.masking.protocol_round_id`) repeats at it: nothing it signed
verifies in another round, and it never trains, adds a noise share or spends record-level
privacy budget twice for one round number. Kept in memory only, that high-water mark was
forgotten when the branch's process restarted, and a hostile server could replay an
already-run round number (and its spec) to it (review, 2026-12-05).

:class:`RoundMark` keeps the mark in a small JSON file (``secagg client --state``). The
mark is written *before* the branch trains or sends anything of the round (a temporary
file, fsync, rename, fsync of the folder: a crash leaves the old mark or the new one,
never half of one), and it is read when the branch starts. A file that cannot be read,
that is not this format or that holds another branch's mark stops the branch with
:class:`BranchStateError` (one line naming the file): reset silently, the mark would
protect nothing. A missing file is a branch that has started no round yet; it is
created at once, so a path that cannot be written fails at start, not at round 1.
Before each write the file is read again: one that no longer holds the mark this process
wrote last (a second process of the branch over the same file, a file removed or
replaced under it) stops the branch too, rather than be written over.

The file names no federation (the wire carries none): a branch joining a new federation,
whose round numbers start again at 1, needs a new state file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from secagg.durable import LockTimeout, exclusive_lock, write_json_atomically
from secagg.errors import ConfigurationError

#: the format of the state file; any other is refused, never guessed
STATE_VERSION = 1


class BranchStateError(ConfigurationError):
    """The branch's state file cannot be read, is not a branch's state, holds another
    branch's, or cannot be written: the branch stops rather than forget its rounds
    (``secagg client`` exits 2 with one line naming the file)."""


class RoundMark:
    """The last round number a branch started, kept in ``path`` across restarts.

    ``branch`` is the branch's name: the file records it, and a file holding another
    branch's mark is refused (two branches sharing a file would refuse each other's
    rounds, or one would forget the other's)."""

    def __init__(self, path: str | os.PathLike[str], branch: str) -> None:
        self.path = Path(path)
        self.branch = branch
        self.last: int | None = None
        if self.path.is_dir():
            raise BranchStateError(f"{self.path} is a folder: give the state file's path in it")
        if self.path.exists():
            self.last = self._load()
        else:
            self._write(None)  # created now: a path that cannot be written fails at start

    def _load(self) -> int | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"not a branch state of version {STATE_VERSION}")
            if set(data) != {"version", "branch", "last_started"}:
                raise ValueError(f"unexpected fields {sorted(data)}")
            if not isinstance(data["branch"], str):
                raise ValueError(f"branch is {data['branch']!r}, not a name")
            last = data["last_started"]
            if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
                raise ValueError(f"last_started is {last!r}, not a round number")
            if last is not None and last < 0:
                raise ValueError(f"last_started is {last}, not a round number")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            # fail closed: a branch that forgot its rounds could take a replayed one again
            raise BranchStateError(
                f"{self.path}: cannot read this branch's state ({_one_line(exc)}); refusing "
                "to start rather than forget the rounds it started (restore the file; a new "
                "federation needs a new state file)"
            ) from None
        if data["branch"] != self.branch:
            raise BranchStateError(
                f"{self.path} is branch {data['branch']!r}'s state, not {self.branch!r}'s: "
                "each branch needs its own state file"
            )
        return last

    def advance(self, number: int) -> None:
        """Record that the branch started round ``number``: on disk when this returns.

        Raises :class:`BranchStateError` (the mark unchanged) when the file cannot be
        written, or no longer holds the mark this process last wrote: another process
        of this branch wrote it (each would otherwise overwrite the other's mark, and
        the file could go back below a round one of them ran), or it was replaced.

        The re-read, the check and the write are one step under a lock beside the file
        (``<state>.lock``): re-read alone, two processes given the same start at once
        both read the old mark before either's rename, and both trained the round."""
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            with exclusive_lock(lock, make_folder=False):
                self._advance(number)
        except LockTimeout as exc:
            raise BranchStateError(
                f"{self.path}: {exc}: another process of {self.branch!r} uses the same "
                "state file; stopping rather than take a round it may be taking"
            ) from None
        except OSError as exc:  # the lock file cannot be made: nothing is written
            raise BranchStateError(
                f"{self.path}: cannot lock this branch's state ({_one_line(exc)})"
            ) from None

    def _advance(self, number: int) -> None:
        if not self.path.exists():
            raise BranchStateError(
                f"{self.path}: the state file is gone (this branch process last recorded "
                f"round {self.last}); stopping rather than start it again from nothing"
            )
        on_disk = self._load()
        if on_disk != self.last:
            raise BranchStateError(
                f"{self.path}: holds round {on_disk}, but this branch process last recorded "
                f"{self.last}: another process of {self.branch!r} uses the same state file, "
                "or it was replaced; stopping rather than write over it"
            )
        self._write(number)
        self.last = number

    def _write(self, last: int | None) -> None:
        data = {"version": STATE_VERSION, "branch": self.branch, "last_started": last}
        try:
            write_json_atomically(self.path, data, make_folder=False)
        except OSError as exc:
            what = "create" if last is None else f"record round {last} in"
            raise BranchStateError(
                f"{self.path}: cannot {what} this branch's state ({_one_line(exc)})"
            ) from None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
