"""What a branch keeps across its restarts: the last round number it started, and the
federation its rounds belong to.

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

The file records the federation its rounds belong to (every round start names it:
:class:`~secagg.runtime.wire.RoundStart`), taken from the branch's pin
(``branch.federation``) when the file is created, or else from the first round the
branch starts with it. A start of any other federation is refused (one line naming the
file and both names), before anything is trained or sent: its round numbers say
nothing about this federation's, so taken, a fresh federation's rounds 1, 2, ... were
all refused as replays, or a federation the branch never meant to join was joined at
whatever number lay above the mark. A new federation needs a new state file: one file
per branch and federation keeps each federation's mark whole, where a file that
followed the server from one federation to the next would drop a mark a restarted
branch still needs when it goes back.

Version 1 files (before the federation was recorded) are read: their rounds are taken
as the federation's of the first round the branch starts with the file (or its pin's),
which is then written down; the mark is kept, so a replay is refused as before.

A branch with its own privacy budget (``branch.epsilon_budget``:
:mod:`secagg.runtime.branch_budget`) keeps what it spent in the same file, as version 3
(version 2's fields and ``spent``), written under the same lock before anything of a
charged round is trained or sent: in the same write as the round's mark
(:meth:`RoundMark.advance` with ``spent``; :meth:`RoundMark.charge` alone writes a spend
without a round). A file without a spend
stays version 2 (an older release reads it); one with a spend is version 3, which an
older release refuses rather than drop the spend. Every later write of the mark carries
the spend as it is, with or without a budget configured: only a new file starts from
nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from secagg.aggregation.policy import FEDERATION_NAME_PATTERN
from secagg.durable import (
    LockTimeout,
    exclusive_lock,
    read_regular_file,
    write_json_atomically,
)
from secagg.errors import ConfigurationError
from secagg.runtime.branch_budget import PrivacySpend

#: the format of the state file; 2 records the federation. Version 1 is read (it names
#: none, see the module docstring); any other is refused, never guessed
STATE_VERSION = 2
#: the format of a state file that records a privacy spend (version 2's fields + spent)
SPENT_VERSION = 3
#: the largest state file read: its JSON (a name, a round, a federation and an RDP curve
#: of a few dozen orders) is under 2 KB; past this it is not a state file
MAX_STATE_BYTES = 1024 * 1024
_FIELDS = {
    1: {"version", "branch", "last_started"},
    2: {"version", "branch", "federation", "last_started"},
    3: {"version", "branch", "federation", "last_started", "spent"},
}


class BranchStateError(ConfigurationError):
    """The branch's state file cannot be read, is not a branch's state, holds another
    branch's or another federation's rounds, or cannot be written: the branch stops
    rather than forget its rounds, in one line naming ``--state`` and the file. Its
    ``secagg client`` exit status depends on the cause: 2 when the file is the mistake
    (not a branch's state, another branch's or federation's, a path that names no file:
    a folder on it missing, too long), 1 when the machine refused it (no permission, a
    read-only or full disk, an I/O error, another process holding its lock). The OSError
    met, if any, is its ``__context__``, which the command reads
    (``secagg.apps.commands.common._state_file_status``)."""


class RoundMark:
    """The last round number a branch started, and the federation its rounds belong to,
    kept in ``path`` across restarts.

    ``branch`` is the branch's name: the file records it, and a file holding another
    branch's mark is refused (two branches sharing a file would refuse each other's
    rounds, or one would forget the other's). ``federation`` is the branch's pin
    (``branch.federation``), if any: a file recording another federation is refused
    now, and a new file records the pin at once."""

    def __init__(
        self, path: str | os.PathLike[str], branch: str, federation: str | None = None
    ) -> None:
        self.path = Path(path)
        self.branch = branch
        self.last: int | None = None
        #: the federation the recorded rounds belong to (None: none recorded yet)
        self.federation: str | None = None
        #: the privacy spend the file records (None: none; secagg.runtime.branch_budget)
        self.spent: PrivacySpend | None = None
        if self.path.is_dir():
            raise BranchStateError(f"{self.path} is a folder: give the state file's path in it")
        if self.path.exists():
            self.last, self.federation, self.spent = self._load()
            if federation is not None and self.federation is None:
                self.federation = federation  # written with the first round started
            if federation is not None and self.federation != federation:
                raise BranchStateError(
                    f"{self.path} holds the rounds of federation {self.federation!r}, but "
                    f"this branch joins only {federation!r} (branch.federation): a new "
                    "federation needs a new state file"
                )
        else:
            self.federation = federation
            self._write(None)  # created now: a path that cannot be written fails at start

    def check(self, federation: str, number: int) -> None:
        """Refuse the start of round ``number`` of ``federation`` unless the file's rounds
        are that federation's (or it records none yet): before anything of the round is
        done, nothing written."""
        if self.federation is not None and federation != self.federation:
            raise BranchStateError(
                f"{self.path} holds the rounds of federation {self.federation!r}, but the "
                f"server started round {number} of federation {federation!r}: a new "
                f"federation needs a new state file (or dial the server of {self.federation!r})"
            )

    def _load(self) -> tuple[int | None, str | None, PrivacySpend | None]:
        try:
            # one open, bounded: the command line checks --state, but a file swapped for a
            # named pipe after its check blocked this open forever (a read by path)
            raw = read_regular_file(self.path, MAX_STATE_BYTES, "a branch's state file")
            data = json.loads(raw.decode("utf-8"))
            version = data.get("version") if isinstance(data, dict) else None
            if type(version) is not int or version not in _FIELDS:  # a bool is not a version
                raise ValueError("not a branch state of version 1, 2 or 3")
            if set(data) != _FIELDS[version]:
                raise ValueError(f"unexpected fields {sorted(data)}")
            if not isinstance(data["branch"], str):
                raise ValueError(f"branch is {data['branch']!r}, not a name")
            last = data["last_started"]
            if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
                raise ValueError(f"last_started is {last!r}, not a round number")
            if last is not None and last < 0:
                raise ValueError(f"last_started is {last}, not a round number")
            federation = data.get("federation")
            if federation is not None and not (
                isinstance(federation, str) and FEDERATION_NAME_PATTERN.fullmatch(federation)
            ):
                raise ValueError(f"federation is {federation!r:.80}, not a federation's name")
            spent = None if version < SPENT_VERSION else PrivacySpend.from_dict(data["spent"])
            if version >= 2 and last is not None and federation is None:
                # written only with a round: rounds of no federation are not this format
                raise ValueError(f"round {last} recorded without its federation")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            # fail closed: a branch that forgot its rounds could take a replayed one again
            reason = _one_line(exc, self.path)
            raise BranchStateError(
                f"{self.path}: cannot read this branch's state ({reason}); refusing "
                "to start rather than forget the rounds it started (restore the file; a new "
                "federation needs a new state file)"
            ) from None
        if data["branch"] != self.branch:
            raise BranchStateError(
                f"{self.path} is the state of branch {data['branch']!r}, not of "
                f"{self.branch!r}: each branch needs its own state file"
            )
        return last, federation, spent

    def advance(self, number: int, federation: str, spent: PrivacySpend | None = None) -> None:
        """Record that the branch started round ``number`` of ``federation`` (checked
        first: :meth:`check`), and with ``spent`` its privacy spend with the round's charge
        in it: both in one atomic write, on disk when this returns.

        Why one write: a budgeted round wrote the file twice (the mark, then the charge),
        two renames and four fsyncs a round where one does; and between the two a crash
        left a round taken but not charged. Either both are on disk or neither is.

        Raises :class:`BranchStateError` (the mark unchanged) when the file cannot be
        written, or no longer holds the mark this process last wrote: another process
        of this branch wrote it (each would otherwise overwrite the other's mark, and
        the file could go back below a round one of them ran), or it was replaced.

        The re-read, the check and the write are one step under a lock beside the file
        (``<state>.lock``): re-read alone, two processes given the same start at once
        both read the old mark before either's rename, and both trained the round."""
        self.check(federation, number)
        self._locked(lambda: self._advance(number, federation, spent))

    def charge(self, spend: PrivacySpend) -> None:
        """Record ``spend`` as the branch's privacy spend: on disk when this returns.

        Raises :class:`BranchStateError` (nothing recorded) as :meth:`advance` does: the
        file cannot be written, or no longer holds what this process last wrote."""
        self._locked(lambda: self._charge(spend))

    def _locked(self, step: Callable[[], None]) -> None:
        """``step`` (a re-read, a check and a write) under the lock beside the file."""
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            with exclusive_lock(lock, make_folder=False):
                step()
        except LockTimeout as exc:
            raise BranchStateError(
                f"{self.path}: {exc}: another process of {self.branch!r} uses the same "
                "state file; stopping rather than take a round it may be taking"
            ) from None
        except OSError as exc:  # the lock file cannot be made: nothing is written
            raise BranchStateError(
                f"{self.path}: cannot lock this branch's state ({_one_line(exc, self.path)})"
            ) from None

    def _charge(self, spend: PrivacySpend) -> None:
        self._check_unchanged()
        previous, self.spent = self.spent, spend
        try:
            self._write(self.last)
        except BranchStateError:
            self.spent = previous
            raise

    def _check_unchanged(self) -> None:
        """The file still holds what this process last wrote, or a BranchStateError."""
        if not self.path.exists():
            raise BranchStateError(
                f"{self.path}: the state file is gone (this branch process last recorded "
                f"round {self.last}); stopping rather than start it again from nothing"
            )
        on_disk, recorded, spent = self._load()
        if on_disk != self.last or recorded not in (None, self.federation):
            held = f"round {on_disk}" + (f" of federation {recorded!r}" if recorded else "")
            raise BranchStateError(
                f"{self.path}: holds {held}, but this branch process last recorded "
                f"{self.last}: another process of {self.branch!r} uses the same state file, "
                "or it was replaced; stopping rather than write over it"
            )
        if spent != self.spent:
            raise BranchStateError(
                f"{self.path}: holds another privacy spend than this branch process last "
                f"recorded: another process of {self.branch!r} uses the same state file, "
                "or it was replaced; stopping rather than write over it"
            )

    def _advance(self, number: int, federation: str, spent: PrivacySpend | None) -> None:
        self._check_unchanged()
        previous = self.federation, self.spent
        self.federation = federation
        if spent is not None:
            self.spent = spent
        try:
            self._write(number)
        except BranchStateError:
            self.federation, self.spent = previous
            raise
        self.last = number

    def _write(self, last: int | None) -> None:
        data: dict[str, object] = {
            "version": STATE_VERSION if self.spent is None else SPENT_VERSION,
            "branch": self.branch,
            "federation": self.federation,
            "last_started": last,
        }
        if self.spent is not None:
            data["spent"] = self.spent.to_dict()
        try:
            write_json_atomically(self.path, data, make_folder=False)
        except OSError as exc:
            what = "create" if last is None else f"record round {last} in"
            raise BranchStateError(
                f"{self.path}: cannot {what} this branch's state ({_one_line(exc, self.path)})"
            ) from None


def _one_line(exc: BaseException, path: Path) -> str:
    """``exc``'s reason on one line, for a message that names the state file ``path``
    already: an OSError's strerror (its errno's words when the strerror is empty), or
    its text with each mention of ``path`` said as "it".

    Why: the OSError's own text was put in as it was, so one naming the file (``[Errno
    5] : '/srv/b.state'`` when its strerror is empty, or a text of its own) named it
    twice, and the second mention was folded as text: ``secagg client --state
    $'b\\nx.state'`` showed the name once as its ``repr`` and once as ``b x.state``, a
    file that is not there (tests/runtime/test_branch_state_reason_named_once.py).

    Why a file named by a plain word only where it is quoted: the word was taken for
    the file wherever it stood, so a corrupt ``--state state`` said ``(not a branch it
    of version 1, 2 or 3)`` and a ``file`` on a read-only disk ``(Read-only it
    system)``; a plain word bare in the text is left as it is, printable
    (tests/runtime/test_branch_state_reason_words.py)."""
    if isinstance(exc, OSError) and exc.errno and not exc.strerror:
        # not errno 0, whose words are "Success": "cannot create this branch's state
        # (Success)"; its own text says "[Errno 0]"
        text = os.strerror(exc.errno)
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc)
    name = str(path)
    # the quoted mention first (a repr, as an OSError's text gives it), then a bare one
    # standing apart: not part of a longer name (``b.state.lock``, ``/d/b.state``), and
    # not for a name that is a plain word, as likely one of the text's own words
    plain_word = re.fullmatch(r"[\w-]+", name) is not None
    for mention in (repr(name),) if plain_word else (repr(name), name):
        text = re.sub(rf"(?<![\w./\\-]){re.escape(mention)}(?![\w/\\-])(?!\.\w)", "it", text)
    return " ".join(text.split()) or type(exc).__name__
