"""``secagg server``: a federation's server over gRPC with mTLS, with the refusals due
before its state is opened or its port bound (a model past this machine's memory, a
certificate folder that lacks what it needs) and the line a stop leaves.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Final

import click

from secagg.apps import cli_types
from secagg.apps.cli_types import FiniteFloat, NonEmptyPath
from secagg.apps.commands.common import _fail, _path_read_failure, os_error_status
from secagg.apps.commands.parties import (
    _config_failure,
    _one_verbosity,
    _setup_logging,
    _sigterm_as_interrupt,
    _stop_said_while_starting,
    _stopped,
    _verdict_said_here,
)
from secagg.errors import ConfigurationError, SecAggError
from secagg.transport.base import MAX_WAIT_SECONDS

if TYPE_CHECKING:
    from secagg.runtime.config import FederationConfig


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=NonEmptyPath(exists=True, dir_okay=False),
    help="The federation's TOML file.",
)
@click.option(
    "--init",
    is_flag=True,
    help="Start a new federation: create its state (server.state). Refused when the state "
    "already holds rounds; without it a missing state is an error, never a new federation.",
)
@click.option(
    "--wait",
    default=60.0,
    show_default=True,
    type=FiniteFloat(min=0.0, max=MAX_WAIT_SECONDS),
    help="Seconds to wait for branches (at most a week, 604800).",
)
@click.option(
    "--quiet", is_flag=True, help="Log warnings and errors only (default: INFO, a line a round)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log everything (DEBUG).")
@_stop_said_while_starting()
def server(config_path: str, init: bool, wait: float, quiet: bool, verbose: bool) -> None:
    """Run a federation's server over gRPC with mTLS (state in its SQLite file).

    The state is locked (one server per state), checked against its ledger and
    tested for writing before the port is bound. Exit status: 0 when the
    federation finished (or had already finished); 1 when it stopped before its
    last round, or for a state, ledger or network failure, or a certificate file the
    machine will not read (one line naming it); 2 for a mistake in the options or the
    config.
    """
    from secagg.ledger.chain import LedgerError
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import serve
    from secagg.runtime.store import StateError
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    def one_line(exc: BaseException) -> str:
        return " ".join(str(exc).split()) or type(exc).__name__

    _one_verbosity("secagg server", verbose, quiet)
    _setup_logging(verbose, quiet)
    try:
        config = FederationConfig.load(config_path)
    except ConfigurationError as exc:
        _fail("secagg server", _config_failure(config_path, exc), 2)
    except OSError as exc:  # no permission, an I/O error: the machine's (exit 1)
        _path_read_failure("secagg server", "--config", config_path, exc)
    too_large = _model_past_memory(config_path, config)
    if too_large is not None:  # before the state is opened or the port bound
        _fail("secagg server", too_large, 2)
    special = _special_server_file(config_path, config)
    if special is not None:  # before the state is opened or the port bound
        _fail("secagg server", special, 2)
    unreadable_key = _ledger_key_unreadable(config_path, config)
    if unreadable_key is not None:  # before the state is opened or the port bound
        _fail("secagg server", *unreadable_key)
    state = config.server.state
    if os.path.isdir(state):
        # SQLite's own word for it was "the state state cannot be opened: unable to open
        # database file", exit 1, as if the state were damaged (review, 2026-12-06); the
        # client's --state and the key holder's --key say this the same way
        _fail(
            "secagg server",
            f"--config {config_path}: [server] state = {state!r} is a folder: give the "
            f"state file's path in it (e.g. {os.path.join(state, config.name + '.sqlite')!r})",
            2,
        )
    # the ledger's head as this start found it: a stop's line names the rows it wrote
    # since (_ledger_rows_said), whose head no other line may have printed; HEAD_UNREAD
    # where the read failed (a "database is locked"): the line then names no rows
    head_before = _ledger_head_before(state + ".ledger")
    try:
        with _sigterm_as_interrupt(), _verdict_said_here(verbose):
            server, results = serve(config, wait_for_clients=wait, init=init)
            try:
                _say_outcome(config, server, results)
            finally:
                if server.ledger is not None:
                    server.ledger.close()
                server.store.close()
    except CertificateStoreError as exc:  # missing, incomplete (2); not readable (1)
        _fail(
            "secagg server",
            _certificates_failure(config_path, config, exc),
            os_error_status(exc.__cause__),
        )
    except ConfigurationError as exc:
        _fail("secagg server", _config_failure(config_path, exc), 2)
    except (StateError, LedgerError, TransportError) as exc:
        _fail("secagg server", one_line(exc))
    except sqlite3.Error as exc:
        _fail("secagg server", f"the state {state} or its ledger: {one_line(exc)}")
    except OSError as exc:
        _fail("secagg server", one_line(exc))
    except SecAggError as exc:
        _fail("secagg server", f"stopped: {one_line(exc)}")
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (_Terminated)
        _stopped(
            "secagg server",
            exc,
            lambda: _what_a_stop_keeps(state) + _ledger_rows_said(state + ".ledger", head_before),
        )


def _say_outcome(config: FederationConfig, server: Any, results: list[Any]) -> None:
    """The lines of a server's run once :func:`~secagg.runtime.launch.serve` returns:
    the rounds complete, the ledger's head, and exit 1 when the federation stopped early.
    A finished federation says "nothing to do", or, where its start rebuilt lost ledger
    rows (``server.rebuilt_rounds``), which, and the ledger's new head: it printed no
    head and said nothing had been done (review of the deferred rebuild, 2026-12-07).

    Why inside the command's one handler: these lines read the state and the ledger
    again (the rounds complete, the head), and a state that failed there (a disk I/O
    error, the file removed) or a ledger error ended in a traceback after the run, where
    the same failure during the run was one line (environment-failure review,
    2026-12-07)."""
    state = config.server.state
    done = server.completed_rounds()
    if not results and done >= config.rounds:
        # a finished federation whose lost ledger rows the start rebuilt (serve, no bind):
        # the ledger has a new head, which auditors need as after any run that wrote rows
        rebuilt = list(server.rebuilt_rounds) if server.ledger is not None else []
        if not rebuilt:
            click.echo(
                f"federation {config.name} is already finished: {done} of {config.rounds} "
                f"rounds complete (state {state}); nothing to do"
            )
            return
        click.echo(
            f"federation {config.name} is already finished: {done} of {config.rounds} "
            f"rounds complete (state {state}); its ledger lacked the row of "
            f"{_rounds_named(rebuilt)}, rebuilt now from the state"
        )
        _say_head(server)
        return
    aborted = sum(1 for result in results if result.status == "aborted")
    click.echo(
        f"federation {config.name}: {done} of {config.rounds} rounds complete "
        f"(this run: {len(results) - aborted} complete, {aborted} aborted)"
    )
    if server.ledger is not None:
        _say_head(server)
    if not server.finished:  # stopped early: the server's stop_reason says why
        why = server.stop_reason or server.budget_reached
        # at the budget, another start would stop the same way: say what would help
        hint = (
            "the budget is all but spent: a new start runs only rounds that still fit "
            "it (raise dp.epsilon_budget or the noise for a new federation)"
            if server.budget_reached is not None
            else "run the server again to continue"
        )
        _fail(
            "secagg server",
            f"federation {config.name} did not finish: {done} of {config.rounds} rounds "
            f"complete{f' ({why})' if why else ''}; {hint}",
        )


def _say_head(server: Any) -> None:
    """The line with the ledger's head (``SEQ:HASH``) for auditors to keep."""
    click.echo(
        f"ledger head {server.ledger.anchor()} (publish it: auditors pass it to "
        "secagg audit verify --expect-head, which then detects a ledger cut back)"
    )


#: the most items (a round, or a range of three or more consecutive ones) a line names
#: one by one; more are said as their count, the first and the last
ROUNDS_NAMED = 5


def _rounds_named(numbers: list[int]) -> str:
    """``round 3``, ``rounds 2 and 3``, ``rounds 2, 3 and 5``, ``rounds 1 to 300 and
    302``, ``40 rounds from 2 to 97``: the rounds of the rows a start wrote or rebuilt
    (``numbers``: ascending, as the ledger holds them).

    Why ranges and a bound: the stop's line named each round whose row the start wrote,
    one by one, and a start that ran for days (a federation runs up to 10^9 rounds) was
    stopped with one line of tens of kilobytes of round numbers, the head an auditor
    must copy at its far end (tests/apps/test_server_stop_line_many_rows.py)."""
    if len(numbers) == 1:
        return f"round {numbers[0]}"
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    items: list[str] = []
    for run in runs:
        if len(run) >= 3:
            items.append(f"{run[0]} to {run[-1]}")
        else:
            items.extend(str(n) for n in run)
    if len(items) > ROUNDS_NAMED:
        return f"{len(numbers)} rounds from {numbers[0]} to {numbers[-1]}"
    if len(items) == 1:
        return f"rounds {items[0]}"
    return f"rounds {', '.join(items[:-1])} and {items[-1]}"


def _what_a_stop_keeps(state: str) -> str:
    """What a server stopped by a signal leaves, read from its state: the round in
    flight is named only when there was one (a running row, which the next start
    records as aborted). Before, a server stopped while waiting for its branches also
    said "a round in flight is recorded as aborted"."""
    from secagg.runtime.store import rounds_in_flight

    flight = rounds_in_flight(state)
    if flight is None:  # the state cannot be read now: say what holds either way
        return (
            "completed rounds are kept; a round in flight, if any, is recorded as aborted "
            "at the next start"
        )
    if not flight:
        return "completed rounds are kept; no round was in flight"
    numbers = ", ".join(str(n) for n in flight)
    return (
        f"completed rounds are kept; round {numbers} was in flight and is recorded as "
        "aborted at the next start"
    )


class _HeadNotRead(Exception):
    """The ledger file's head could not be read, or its head row is not one the ledger's
    writer stores (:func:`_read_ledger_head`)."""


class _Unread(enum.Enum):
    """The head read before ``serve`` failed: which rows this start wrote is unknown."""

    HEAD = "the ledger's head could not be read as the start began"


#: :func:`_ledger_head_before`'s answer where the read failed
HEAD_UNREAD: Final = _Unread.HEAD


def _read_ledger_head(path: str) -> tuple[int, str] | None:
    """The head (row count, hash) the ledger file at ``path`` holds now, read without
    writing to it or beside it; None where there is no ledger file or it holds no head
    row yet. Raises :class:`_HeadNotRead` where it cannot be read, or its head row is
    not one the ledger's writer stores.

    Why the head row is checked: it was taken as ``(int(seq), str(hash))``, so a file
    whose head row is not the writer's (``seq`` NULL: a ``TypeError`` traceback from the
    read that runs before every start, and in place of a stop's line; a BLOB hash
    printed as ``3:b'\\x00\\xff'``, a head no ledger has and ``--expect-head`` refuses:
    tests/apps/test_server_stop_head_unreadable.py). The row is not verified here (the
    server's start and ``audit verify`` do that); it is only taken as a head if it is
    shaped as one: a row count and 64 lower-case hex digits.

    Why "no file" and "not read" differ: the head read before ``serve`` answered None
    for both, so a stop after a read that failed (a transient "database is locked")
    named every row of the ledger as this start's, earlier starts' rows among them
    (tests/apps/test_server_stop_head_not_read.py)."""
    from secagg.ledger.chain import read_without_writing

    if not os.path.isfile(path):  # sqlite3 would create an empty file there
        return None

    def head(db: Any) -> tuple[int, str] | None:
        row = db.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
        if row is None:
            return None
        seq, digest = row
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise _HeadNotRead(f"head row seq {seq!r} is not a row count")
        if not isinstance(digest, str) or len(digest) != 64:
            raise _HeadNotRead("head row hash is not 64 hex digits")
        if any(c not in "0123456789abcdef" for c in digest):
            raise _HeadNotRead("head row hash is not 64 lower-case hex digits")
        return seq, digest

    try:
        return read_without_writing(path, head)
    except (sqlite3.Error, OSError, SecAggError, ValueError) as exc:
        raise _HeadNotRead(str(exc)) from exc


def _ledger_head(path: str) -> tuple[int, str] | None:
    """The head the ledger file at ``path`` holds now (:func:`_read_ledger_head`); None
    where there is none or it cannot be read (a stop's line then says what it can
    without it)."""
    try:
        return _read_ledger_head(path)
    except _HeadNotRead:
        return None


def _ledger_head_before(path: str) -> tuple[int, str] | _Unread | None:
    """The head as a start finds it, before ``serve``: :data:`HEAD_UNREAD` where it
    could not be read, so that a stop's line does not take every row of the ledger as
    this start's (:func:`_ledger_rows_said`)."""
    try:
        return _read_ledger_head(path)
    except _HeadNotRead:
        return HEAD_UNREAD


def _ledger_rows_said(path: str, before: tuple[int, str] | _Unread | None) -> str:
    """What a stopped server's line adds about the ledger rows this start wrote (none:
    nothing): which rounds' rows (rebuilt from the state, or written by a round), and the
    ledger's head now, which auditors pass to ``secagg audit verify --expect-head``.

    Why on the stop line: the head is printed as a run ends (:func:`_say_outcome`), and a
    stop that came first left it unprinted: on a finished federation a Ctrl-C after the
    start rebuilt a lost row, before the printout, said only "completed rounds are kept;
    no round was in flight", and the ledger's new head reached no one
    (tests/apps/test_server_finished_stop_says_head.py); so did any run stopped after
    its rounds wrote rows. The stop can land anywhere in between (the rebuild's return,
    the state's closing), and its line is the one output sure to come.

    ``before`` is :data:`HEAD_UNREAD` where the head could not be read as the start
    began: the line then says so and gives the head now, naming no rows (it cannot tell
    this start's rows from earlier starts')."""
    from secagg.ledger.chain import format_head, read_without_writing

    now = _ledger_head(path)
    if now is None or now == before or now[0] == 0:  # no row written (a new ledger's genesis)
        return ""
    publish = (
        f"ledger head {format_head(*now)} (publish it: auditors pass it to secagg audit "
        "verify --expect-head, which then detects a ledger cut back)"
    )
    if isinstance(before, _Unread):  # HEAD_UNREAD, its one value
        return (
            "; this start could not tell which ledger rows it wrote (the ledger's head "
            f"could not be read as it began): {publish}"
        )
    since = before[0] if before is not None and before[0] <= now[0] else 0

    def rows(db: Any) -> list[Any]:
        return db.execute(
            "SELECT entry FROM ledger WHERE seq > ? ORDER BY seq", (since,)
        ).fetchall()

    rebuilt: list[int] = []
    written: list[int] = []
    try:
        for (text,) in read_without_writing(path, rows):
            entry = json.loads(text)
            (rebuilt if entry.get("reconstructed") is True else written).append(int(entry["round"]))
    except (sqlite3.Error, OSError, SecAggError, ValueError, KeyError, TypeError, AttributeError):
        rebuilt, written = [], []  # rows not read as the writer wrote them: the head alone
    what = []
    if rebuilt:
        what.append(f"rebuilt the ledger's row of {_rounds_named(rebuilt)} from the state")
    if written:
        what.append(f"wrote the ledger's row of {_rounds_named(written)}")
    done = " and ".join(what) if what else "wrote ledger rows"
    return f"; this start {done}: {publish}"


#: what a server holds per parameter at the least, whatever the backend: its model and
#: its optimizer's two moments (FedAvgM's velocity or FedAdam's first moment, FedAdam's
#: second), 64-bit floats each, all allocated when it is built (a round's inputs and
#: sums come on top)
SERVER_BYTES_PER_PARAMETER = 24


def _model_past_memory(config_path: str, config: FederationConfig) -> str | None:
    """The one line refusing a ``federation.dimension`` whose model this machine cannot
    hold, or None.

    Why: the key is bounded by the wire format (:data:`MAX_DIMENSION`), not by memory, and
    the server allocates its model and its optimizer's moments when it is built: 2**31
    parameters need 48 GiB before any round (32 GiB before FedAdam's second moment),
    which ended in a MemoryError traceback or the kernel's out-of-memory killer after the
    state was opened and the port bound (config review, 2026-12-05). A machine's memory
    is a fixed bound, so refusing past it is never wrong."""
    limit = cli_types.memory_limit()
    needed = config.dimension * SERVER_BYTES_PER_PARAMETER
    if limit is None or needed <= limit:
        return None
    need, have = cli_types.size_in_gib(needed), cli_types.size_in_gib(limit)
    return (
        f"--config {config_path}: federation.dimension = {config.dimension}: the server's "
        f"model and its optimizer's moments alone need {need} of memory, more than the {have} this "
        "machine has"
    )


def _certificates_failure(config_path: str, config: FederationConfig, exc: BaseException) -> str:
    """A server's certificate folder that does not hold what it needs, as the one line
    that names the key it came from, ``[server] certificates``, and, for a relative
    path, the folder it was read from.

    Why: ``secagg server --config fed/federation.toml`` started from another folder read
    ``--config fed/federation.toml: CA certificate not found at certs/ca.pem``, which named
    neither the key nor that a relative path is taken from the current folder, not the
    config file's (newcomer's walk-through, 2026-12-05)."""
    folder = str(config.server.certificates)
    where = (
        ""
        if os.path.isabs(folder)
        else f" (a relative path: read from the current folder {os.getcwd()}, not the config's)"
    )
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"--config {config_path}: [server] certificates = {folder!r}{where}: {message}"


def _ledger_key_unreadable(config_path: str, config: FederationConfig) -> tuple[str, int] | None:
    """The one line and exit status refusing a ledger key (``<state>.ledger-key``) that
    is there but cannot be opened for reading, by the one path-failure rule
    (:func:`~secagg.apps.commands.common.os_error_status`), or None: no file there (a
    new federation's key is made; beside a ledger with rows the start refuses it as a
    lost file to restore, exit 1, as a lost state) or one that opens (its content is
    the start's to judge).

    Why: the start said every failure of that read with exit 1 and naming no flag, in
    Python's words (``secagg server: cannot read the ledger key K: [Errno 21] Is a
    directory: 'K'``), and a loop of links at the key as ``the ledger key K is missing
    ... restore the key from a backup`` (tests/apps/test_server_ledger_key_read.py).
    A folder, a loop of links or a name too long there is the config's ``[server]
    state`` mistake (exit 2); no permission or an I/O error is the machine's (exit 1).
    Opened and closed only, never read: the key is read once, by the start."""
    from secagg import durable

    state = config.server.state
    if not os.path.isdir(os.path.dirname(os.path.abspath(state))):
        return None  # the start names a missing state folder itself (exit 2)
    key = f"{state}.ledger-key"
    try:
        with durable.opened_regular_file(key, "a ledger key file"):
            return None
    except FileNotFoundError:
        return None  # missing, or a link to a file that is gone: the start's to say
    except OSError as exc:
        why, status = exc.strerror or type(exc).__name__, os_error_status(exc)
    except SecAggError:  # a named pipe or a device: _special_server_file's refusal
        return None
    where = f"--config {config_path}: [server] state = {state!r}: the ledger key {key}"
    if status == 1:  # the machine's: the flag, the path and the cause
        return f"{where} cannot be read: {why}: {key}", 1
    return f"{where}: {why} (it must be the key file the server wrote there)", 2


def _special_server_file(config_path: str, config: FederationConfig) -> str | None:
    """The one line refusing a named pipe, a device or a socket where the server reads a
    file its config names, or None: ``[server] certificates`` (``ca.pem``,
    ``server.pem``, ``server.key``, ``revoked.json``) and ``[server] state`` (the state,
    its ``.ledger`` and ``.ledger-key``).

    Why: a named pipe at ``server.pem`` or ``revoked.json`` blocked the server's start
    forever, and one at the state failed as ``disk I/O error``, exit 1, as if the state
    were damaged (hostile CLI review, 2026-12-06). Each file is opened non-blocking and
    its kind taken from that descriptor
    (:func:`~secagg.runtime.config.refuse_special_file`)."""
    from pathlib import Path

    from secagg.runtime.config import refuse_special_file
    from secagg.transport.certs import CaLayout

    layout = CaLayout(Path(config.server.certificates))
    state = config.server.state
    checked = (
        ("certificates", config.server.certificates, "a certificate or key file",
         [layout.ca_cert, layout.server_cert, layout.server_key, layout.revocations]),
        ("state", state, "a state, ledger or key file",
         [state, state + ".ledger", state + ".ledger-key"]),
    )  # fmt: skip
    for key, value, what, paths in checked:
        for path in paths:
            try:
                refuse_special_file(path, what)
            except ConfigurationError as exc:
                return f"--config {config_path}: [server] {key} = {value!r}: {exc}"
    return None
