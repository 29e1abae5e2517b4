"""What several ``secagg`` commands share: the size types of a round and a benchmark, a
planning error in the words the user typed, and the one line a party prints when it stops.

Why one module: ``round`` and ``bench`` name the same ranges, and ``server``, ``client``,
``keyholder`` and ``bench`` end on an error the same way; a copy per command would drift.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import NoReturn

import click

from secagg.apps.bench import MAX_VECTOR_LENGTH
from secagg.errors import ConfigurationError

#: a round needs at least 3 clients here (2 would reveal each other's input); a
#: benchmark vector is at most 10^8 words (400 MB), far past the papers' and the
#: issues' sizes, and short of a MemoryError traceback
_CLIENTS = click.IntRange(min=3)
_LENGTH = click.IntRange(1, MAX_VECTOR_LENGTH)

#: The most rounds a federation's plan may name: ``privacy epsilon/noise -T`` and
#: ``secagg client --rounds``. Why a bound: ``privacy epsilon -T 2**70 --accountant rdp``
#: printed epsilon 3.95e20, a figure for a federation that cannot exist (upper-bounds
#: review, 2026-12-06). Why 10^9 and not simulate's and bench's 10 000 (rounds they
#: run themselves, each taking work here): these commands only count rounds, and
#: 10^9 is past any federation's life (a round takes seconds: four message phases
#: over mTLS; one a second for 31 years) yet is the plan the privacy docs work
#: through (``-q 1e-9 -T 1000000000``, docs/privacy.md), which the accountants answer
#: in seconds at any q; a federation's own rounds are bounded by what its accountant
#: can plan, and this is more than it can.
MAX_FEDERATION_ROUNDS = 10**9


def _os_error(exc: OSError) -> str:
    """An OSError as one line: what failed and on which path, without errno numbers, the
    path shown by :func:`shown_path` (a typed ``--out $'a\\nb'`` printed raw broke the
    line in two: tests/apps/test_path_flag_one_line.py)."""
    where = f" {_shown_os_path(exc.filename)}" if exc.filename else ""
    return f"{exc.strerror or type(exc).__name__}:{where}" if where else str(exc.strerror or exc)


#: The ONE rule for an OSError on a path the user named (a flag's, or a config key's),
#: which every command follows: what the path NAMES is the user's mistake, exit 2 naming
#: the flag (a folder on it missing or a file, the path a folder, too long, a loop of
#: links, a file there that the command refuses to overwrite); anything else is what
#: the MACHINE refuses (no permission, a read-only filesystem, a full disk or quota, an
#: I/O error, no memory or descriptors left, another process's lock), exit 1 with one
#: line naming the flag, the path and the cause (:func:`os_error_status`: an errno not
#: listed here, or none, as a held lock's timeout, is the machine's).
#:
#: Why one rule: ``secagg client --state`` said a permission error with exit 1 while
#: ``certs init --dir``, ``keyholder-init --key`` and ``bench --out`` said it with exit 2,
#: and a key holder's record on a full disk was exit 2 (path-failure review,
#: 2026-12-07): a script could not tell "fix your flag" from "fix the machine". The
#: same path given again works once the machine lets it (a chmod, a remount, room),
#: so no permission is the machine's, as the server's own state has always said it.
PATH_MISTAKE_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST}
)


def os_error_status(exc: BaseException | None) -> int:
    """The exit status of an OSError met on a path the user named: 2 when the path is
    the mistake (:data:`PATH_MISTAKE_ERRNOS`), 1 when the machine refused it (any other
    OSError, a held lock's :class:`TimeoutError` included). Anything else that is not an
    OSError is the file's content, the user's mistake: 2."""
    if not isinstance(exc, OSError):
        return 2
    return 2 if exc.errno in PATH_MISTAKE_ERRNOS else 1


def _path_failure(exc: OSError, flag: str) -> click.ClickException:
    """An OSError met on the path ``flag`` gave, by :func:`os_error_status`: a usage
    error naming the flag (exit 2) when the path is the mistake (missing, not a folder,
    a folder, too long), one line of the machine's failure with the flag, the path and
    the cause (exit 1) when the machine refused it (no permission, read-only, full)."""
    if os_error_status(exc) == 1:
        return machine_failure(flag, _environment_cause(exc))
    return click.BadParameter(_os_error(exc), param_hint=flag)


def machine_failure(flag: str, cause: str) -> click.ClickException:
    """The machine's refusal of the path ``flag`` gave as click's one line, ``Error:
    <flag>: <cause and path>``, exit 1 (:func:`os_error_status`'s other side): the line
    every environment failure of the top-level group prints, with the flag named."""
    failure = click.ClickException(f"{flag}: {cause}")
    failure.exit_code = 1
    return failure


def _environment_cause(exc: BaseException) -> str:
    """A failure of the machine or its files as one line: an OSError's cause and the
    path(s) it names (``No space left on device: /runs/a/papers.json``), a database's
    message with its kind (``database error: disk I/O error``), any other error's
    message (a click error's as click shows it).

    Why one function: the top-level group (``secagg.apps.cli``) and ``secagg
    simulate``'s run folder say such failures alike; an OSError's ``str`` carried
    ``[Errno 28]`` and Python's quoting of the path. Only the message: never a file's
    contents (a key's bytes are never in an OSError)."""
    if isinstance(exc, OSError) and exc.strerror:
        paths = [_shown_os_path(p) for p in (exc.filename, exc.filename2) if p is not None]
        return exc.strerror + (f": {' -> '.join(paths)}" if paths else "")
    text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    return f"database error: {text}" if isinstance(exc, sqlite3.Error) else text


def _party_environment_failure(party: str, name: str, exc: sqlite3.Error) -> NoReturn:
    """A database error under a long-running party (its hook's own store, a library's) as
    the party's one line, ``<party>: <name>: database error: <message>``, exit 1: the
    prefix and status ``secagg server`` gives its own (``secagg server: the state S or
    its ledger: ...``).

    Why: ``secagg client`` and ``secagg keyholder`` left it to the top-level group, whose
    line (``Error: database error: database is locked``) named neither the command nor
    the party, unlike every other failure these commands say (review, 2026-12-07)."""
    _fail(party, f"{name}: {_environment_cause(exc)}")


def _path_read_failure(party: str, flag: str, path: str, exc: OSError) -> NoReturn:
    """A file a party was given (``--config``, ``--policy``) that the system would not
    read, as the party's one line naming the flag, the path and the cause
    (``secagg server: --config F: Permission denied: F``), its status by
    :func:`os_error_status`: 1 where the machine refused it, 2 where the path names no
    file (a folder on it removed since click checked it).

    Why: such a read went past the command's own handlers, so ``server --config`` and
    ``keyholder-init --config`` said ``Error: Permission denied: F`` naming no flag, and
    ``client --policy`` ``[Errno 13] Permission denied: 'F'`` (path-failure review,
    2026-12-07)."""
    _fail(party, f"{flag} {shown_path(path)}: {_os_error(exc)}", os_error_status(exc))


def _state_file_status(exc: BaseException) -> int:
    """The exit status of a party's state file that failed (``secagg client --state``):
    1 when the machine failed it (its read, write or lock met an OSError: a full disk,
    an I/O error, a file it may not read or write, another process holding its lock),
    as ``secagg server`` says a state it cannot read, write or lock; 2 when the file is
    the mistake (not a branch's state, another branch's or federation's, a folder).

    Why: the client said every failure of ``--state`` with exit 2, "a mistake in its
    options or files", a full disk while it recorded a round included, where the server
    says the same failure of its own state with exit 1 (review, 2026-12-07). The cause
    is the OSError the state's error was raised from (its context).

    A path that cannot name a file (a folder on it missing or a file, a name too long, a
    loop of links: :data:`PATH_MISTAKE_ERRNOS`, :func:`os_error_status`) is the
    operator's own ``--state`` mistake, exit 2: the OSError alone made ``--state
    /srv/brnach/state.json``, a typo in the folder, exit 1 as if the machine had failed
    (tests/apps/test_client_state_file_status.py)."""
    cause = exc.__cause__ or exc.__context__
    return os_error_status(cause)


def in_file(flag: str, path: str, message: str) -> str:
    """``message``, a mistake in the file ``path`` that ``flag`` gave, as the one line
    the party commands print for it: ``--config F: [privacy] epsilon ...``, the flag
    and the file named once (a message that begins with the path, ``F is not valid
    TOML``, becomes ``--config F is not valid TOML``; one that names both already is
    left as it is).

    Why one function: ``secagg server --config F`` named the file, ``secagg simulate
    --config F`` did not (``Error: privacy.epsilon must be positive``), and a user with
    several files (a replay of a run folder's config.toml, a team's shared one) could
    not tell which was wrong (newcomer walk-through, 2026-12-07).

    The path is shown by :func:`shown_path` wherever the line names it, so the line
    stays one line whatever the file is called."""
    shown = shown_path(path)
    message = folded_naming(message, path)
    if message.startswith((f"{flag} {shown} ", f"{flag} {shown}:")):
        return message
    if message.startswith((f"{shown} ", f"{shown}:")):
        return f"{flag} {message}"
    return f"{flag} {shown}: {message}"


def folded_naming(message: str, path: str, *others: str) -> str:
    """``message`` on one printable line (each run of whitespace one space) with every
    mention of ``path`` (and of each of ``others``: a line naming two files the user
    typed) shown by :func:`shown_path`, its own characters untouched.

    Why not fold the whole line: a name with a run of blanks (``'a  b.toml'``) was
    folded inside its own quotes to ``'a b.toml'``, a name that is not the file's, and
    no longer found where the line names it already, so it was named twice. A mention
    already shown (``(--policy 'a  b.toml')``, written by :func:`shown_path`) is kept
    whole too, not shown again inside its own quotes: ``secagg keyholder`` named such a
    policy file twice, the second time folded (tests/apps/test_keyholder_policy_named_once.py).

    Why the path as :class:`~pathlib.Path` writes it is looked for too, and why a
    character a terminal would act on is escaped wherever it is: the layers below name
    a file as ``Path`` writes it, so ``audit verify ./$'a\\x1bb'`` printed the reason's
    ``a<ESC>b`` raw, the escape reaching the terminal (second review, 2026-12-07:
    tests/apps/test_audit_verdict_typed_form.py). A mention is one that stands apart:
    not inside a longer word or path (a name ``'a '`` in ``a b``, ``'p  q'`` in
    ``/d/p  q``), and a name of only blanks is never looked for: each blank of the
    message was shown as ``' '`` (tests/apps/test_folded_naming_properties.py)."""
    names = {form for name in (path, *others) if name for form in (name, str(Path(name)))}
    shown_forms = {shown_path(name) for name in names if shown_path(name) != name}
    raw_forms = {name for name in names if name.strip() and shown_path(name) != name}
    if not shown_forms and not raw_forms:
        return _printable(re.sub(r"\s+", " ", message)).strip()
    alternatives = sorted(shown_forms | raw_forms, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, alternatives)))
    said: list[str] = []
    start = at = 0
    while (found := pattern.search(message, at)) is not None:
        text = found.group()
        if text in raw_forms and not _stands_apart(message, found.start(), found.end()):
            at = found.start() + 1  # part of a longer word or path; a mention may start inside
            continue
        at = found.end()
        said.append(_printable(re.sub(r"\s+", " ", message[start : found.start()])))
        said.append(text if text in shown_forms else shown_path(text))
        start = found.end()
    said.append(_printable(re.sub(r"\s+", " ", message[start:])))
    return "".join(said).strip()


def _stands_apart(message: str, start: int, end: int) -> bool:
    """Whether ``message[start:end]`` is a whole name: neither a word character nor a
    ``/`` right before it, nor a word character or ``/`` right after it."""
    before = message[start - 1] if start > 0 else ""
    after = message[end] if end < len(message) else ""
    return not (
        (before and (before.isalnum() or before in "_/"))
        or (after and (after.isalnum() or after in "_/"))
    )


def _printable(text: str) -> str:
    """``text`` with each character a terminal would act on or not show (an escape, a
    delete, a bidirectional override) written as its escape, ``\\x1b``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown_os_path(name: object) -> str:
    """An OSError's ``filename`` (a str, bytes, a path, rarely a descriptor) as
    :func:`shown_path` shows it."""
    if isinstance(name, str | bytes | os.PathLike):
        return shown_path(os.fsdecode(name))
    return str(name)


def shown_path(path: str) -> str:
    """``path`` as a one-line error shows it: as typed (relative or absolute, spaces and
    all), or its ``repr`` when it holds what a terminal would not show as typed: a line
    break, a control or format character (an ANSI escape, U+202E), a tab, a run of
    blanks or blanks around it (which the line's whitespace folding would change).

    Why: ``secagg simulate --config $'a\\nb.toml'`` with a mistake printed ``Error:
    --config a`` and ``b.toml: privacy.epsilon must be positive`` on two lines (the
    message was folded to one line, the path put in after), and an escape in a file's
    name reached the terminal as it was (second review of in_file, 2026-12-07). The
    section and key names of a file are shown by the same rule
    (``secagg.apps.simulation.config._spelt``)."""
    plain = path.isprintable() and " ".join(path.split()) == path and path != ""
    return path if plain else repr(path)


def _config_error(exc: ConfigurationError, names: dict[str, str]) -> click.BadParameter:
    """A planning error as a usage error in the words the user typed.

    Why: ``round --corrupt 0.5 --tolerated-dropout 0.9`` said ``corrupt_fraction +
    dropout_fraction <= 0.9`` and ``--clients 2000000`` ``num_clients must be at most
    1000000``: keys of the library, not flags (CLI audit, 2026-12-05). ``names`` maps
    each key to its flag (or to words, for a value the command fixes); the flags found
    become the error's param_hint."""
    message, flags = str(exc), []
    for name, words in names.items():
        pattern = rf"\b{re.escape(name)}\b"
        if re.search(pattern, message):
            message = re.sub(pattern, words, message)
            if words.startswith("--"):
                flags.append(words)
    return click.BadParameter(message, param_hint=flags or None)


def _fail(party: str, message: str, status: int = 1) -> NoReturn:
    """The one line a party prints when it stops on an error it cannot fix itself."""
    click.echo(f"{party}: {message}", err=True)
    sys.exit(status)


def _one_line(exc: BaseException, name: str = "") -> str:
    """An error's message on one line, without a leading ``name:`` (the CLI adds it)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    prefix = f"{name}: "
    return message[len(prefix) :] if name and message.startswith(prefix) else message


def _one_line_naming(exc: BaseException, name: str, path: str | None) -> str:
    """:func:`_one_line`, with the file ``path`` (a party's ``--policy``) kept as
    :func:`shown_path` shows it (:func:`folded_naming`) wherever the message names it.

    Why: the whole message was folded, each run of whitespace one space, so a policy
    file whose name has a run of blanks, shown as ``'D/p  q.toml'``, was printed as
    ``'D/p q.toml'``, a name that is not the file's; and ``secagg keyholder``, which
    then no longer found its ``(--policy F)`` in the line, named the file again in front
    (the "blank run double naming": tests/apps/test_keyholder_policy_named_once.py)."""
    if path is None:
        return _one_line(exc, name)
    message = folded_naming(str(exc), path) or type(exc).__name__
    prefix = f"{name}: "
    return message[len(prefix) :] if name and message.startswith(prefix) else message


class CommandLogHandler(logging.StreamHandler):
    """The ``secagg`` command's own root handler: warnings and errors of any library as
    one line on stderr, ``warning: <logger>: <message>``, like the command's other
    warning lines.

    Why the command installs one (:func:`install_command_logging`): Opacus calls
    ``logging.basicConfig`` when it is imported, so the first import set the whole
    process's format to Opacus's (``12/06/2026 10:36:10:WARNING:...``, no logger
    name), and a party that imported it before its own log set-up lost its INFO
    lines, its ``basicConfig`` then a no-op (newcomer walk, 2026-12-06). A root that
    has a handler makes Opacus's call do nothing. A long-running party replaces this
    one with its timestamped log (``parties._setup_logging``)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.name}: {super().format(record)}"


def install_command_logging() -> None:
    """Give the root logger :class:`CommandLogHandler`, unless the process has set up
    its logging already (a program that embeds the command keeps its own)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(CommandLogHandler())
