"""What the long-running parties share (``secagg server``, ``client`` and ``keyholder``):
their log lines and verbosity, SIGTERM taken as Ctrl-C, the line and status of a stop,
and how a config file's error and a party's own TOML table are read and named.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Collection, Iterator
from typing import Any, NoReturn

import click

from secagg.apps.commands.common import CommandLogHandler, _fail, in_file
from secagg.errors import LISTED_UNKNOWN_NAMES, ConfigurationError, listed_names
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop, stop_asked

log = logging.getLogger(__name__)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    """Timestamped log lines for a long-running party: INFO by default (connections,
    rounds), warnings and errors only with ``--quiet``, everything with ``-v``."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, CommandLogHandler)]:
        root.removeHandler(handler)  # the command's stand-in until this log exists
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    warnings.showwarning = _warning_as_log_line


def _warning_as_log_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """A Python warning (e.g. the config's ``PrivacyCostWarning``) as one timestamped
    WARNING line of the party's log. Why: ``secagg server`` printed it in Python's own
    form, the source file's path and the line of code under it, the first thing an
    operator read at every start (operator pass, 2026-12-04)."""
    del filename, lineno, file, line
    logging.getLogger("secagg.warnings").warning(
        "%s: %s", category.__name__, " ".join(str(message).split())
    )


def _verbosity(function: Any) -> Any:
    """``-v/--verbose`` and ``--quiet``, as the server has them."""
    function = click.option(
        "--quiet", is_flag=True, help="Log warnings and errors only (default: INFO)."
    )(function)
    return click.option("-v", "--verbose", is_flag=True, help="Log everything (DEBUG).")(function)


def _one_verbosity(party: str, verbose: bool, quiet: bool) -> None:
    """Refuse ``--quiet`` with ``-v/--verbose`` in one line, exit 2.

    Why: ``secagg server`` refused the pair, but ``secagg client`` and ``secagg
    keyholder`` took it and logged everything (``-v`` won silently), so an operator who
    added ``--quiet`` to a unit that already had ``-v`` got the DEBUG log they were
    silencing (hostile CLI review, 2026-12-06)."""
    if quiet and verbose:
        _fail(party, "--quiet and -v/--verbose contradict each other: pass one", 2)


def _verdict_said_here(verbose: bool) -> contextlib.AbstractContextManager[None]:
    """The runtime's log records of the federation's verdict (finished, or stopped and
    why) silenced, because the command prints it in its own line: an early stop read
    twice, once as an ERROR record (review, 2026-12-05). ``-v`` logs everything."""
    from secagg.runtime.outcome import reported_by_caller

    return contextlib.nullcontext() if verbose else reported_by_caller()


class _Terminated(StopAsked):
    """SIGTERM, raised in the main thread as Ctrl-C is (a KeyboardInterrupt), so that a
    party stopped by its service manager takes the same path as one stopped from a
    terminal: one line naming the signal, exit status 128 + its number.

    Why: ``systemctl stop`` (SIGTERM) ended ``secagg server``, ``client`` and
    ``keyholder`` silently (status -15: no line said what was kept), and Ctrl-C on a
    branch or key holder printed click's bare ``Aborted!`` with status 1. A
    :class:`~secagg.transport.waiting.StopAsked`, as the runtime raises a stop it found
    in the record, so both carry their signal alike."""


def _signal_of(stop: KeyboardInterrupt) -> int:
    """The signal a stop came by: its own where it carries one, else Ctrl-C's."""
    return stop.signum if isinstance(stop, StopAsked) else int(signal.SIGINT)


def _stop_of(signum: int) -> KeyboardInterrupt:
    """The exception a stop by ``signum`` is said by (:func:`_stopped`)."""
    return _Terminated(signum) if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread while the block runs (the
    previous handler is put back after); elsewhere than the main thread, nothing.

    Both signals are also recorded process-wide as they are taken
    (:func:`~secagg.transport.waiting.ask_stop`; Ctrl-C's handler is replaced only when
    it is Python's own, and still raises KeyboardInterrupt), so a stop that surfaces as
    another exception, or that a library swallowed, is still the stop. Python raises
    the signal's exception wherever the main thread is, and unwinding from some places
    replaces it (``RuntimeError: cannot release un-acquired lock`` from a ``with`` over
    a condition whose wait it cut short, as a stdlib queue or event waits; the
    project's CI, 2026-12-07: ``secagg server`` stopped by Ctrl-C while waiting for
    branches printed a traceback and exited 1), and C code's callers (grpcio, sqlite3,
    torch) may take it and go on. The runtime's loops look at the record at every turn
    and raise the stop (:class:`~secagg.transport.waiting.StopAsked`); here, the block
    that ends with a stop recorded ends with that stop (the first one), whatever else
    it ended with: another exception (logged), another stop, or a plain return (a stop
    swallowed after the last look). The record is cleared as the block is left.

    Inside a party command's wrapper (:func:`_stop_said_while_starting`) a block that
    ends with its stop leaves both signals ignored, not put back: the command says the
    stop next, and a second stop before it did was said instead of the first. The
    wrapper puts the handlers back once the stop is said."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _party_run.began = True  # a stop after this is no longer one "while starting"

    def stop(signum: int, frame: object) -> None:
        del frame
        ask_stop(signum)
        raise _Terminated(signum)

    def interrupt(signum: int, frame: object) -> None:
        del frame
        ask_stop(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    previous_int = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous_int = signal.signal(signal.SIGINT, interrupt)
    said = False  # whether the record's stop left the block as the stop
    try:
        yield
    except KeyboardInterrupt as exc:
        first = stop_asked()
        said = True
        if first is None or _signal_of(exc) == first:
            raise
        raise _stop_of(first) from None  # the first stop's line, not a later one's
    except Exception as exc:
        first = stop_asked()
        if first is None:
            raise
        said = True
        # the stop is the process's line and status, but this may be a failure of its own
        # (a disk error as the state closed on the way out): said, not hidden at DEBUG,
        # which no party logs by default (second review of the stop handling, 2026-12-07)
        log.warning(
            "stopped by %s, which surfaced as %s: %s (the stop is said; if this is a "
            "failure of its own, look into it)",
            signal.Signals(first).name,
            type(exc).__name__,
            exc,
        )
        raise _stop_of(first) from None
    else:
        first = stop_asked()
        if first is not None:
            # swallowed where it came (a library's catch-all) after the runtime's last
            # look: the run ended as if no one had asked, but the operator did
            said = True
            log.warning(
                "stopped by %s, which the code it came in swallowed; the run ended first",
                signal.Signals(first).name,
            )
            raise _stop_of(first) from None
    finally:
        # a handler not installed from Python (None: an embedding program's, set in C)
        # cannot be put back; ours stays, as in _sigterm_raised. Putting None back raised
        # TypeError here, which replaced the stop and left SIGINT's handler ours too
        put_back = getattr(_party_run, "put_back", None)
        for signum, handler in ((signal.SIGTERM, previous), (signal.SIGINT, previous_int)):
            if handler is None:
                continue
            if said and put_back is not None:
                # the run leaves with its stop, which the command says next: a further
                # stop until then is ignored, as while it is said (_stopped), and the
                # command's wrapper puts the handler back. Put back here, a second stop
                # in between was the handler's then (the wrapper's SIGTERM, Python's
                # Ctrl-C) and left the command's except clause: the wrapper said it,
                # 128 + the second, "its run had ended" (second review of the record)
                put_back[signum] = handler
                signal.signal(signum, signal.SIG_IGN)
            else:
                signal.signal(signum, handler)
        _forget_stop_said(said)


def _forget_stop_said(said: bool) -> None:
    """Clear the process's stop record as a command's run is left (so that a command
    run in the same process after it, as a test's, starts without it). A stop that was
    not the run's outcome (it left by ``sys.exit``: a line of its own was printed) is
    not dropped silently: one WARNING names it."""
    left = forget_stop()
    if left is not None and not said:
        log.warning(
            "stopped by %s as the run ended with its own outcome (said above)",
            signal.Signals(left).name,
        )


#: whether the command's run began (:func:`_sigterm_as_interrupt` entered), per thread;
#: :func:`_stop_said_while_starting` says a stop outside the run by it. ``put_back``:
#: the run's handlers that the wrapper puts back once the run's stop is said (None:
#: outside a wrapper, the block puts them back itself)
_party_run = threading.local()


def _stop_said_while_starting(name_option: str | None = None) -> Callable[[Any], Any]:
    """Decorate a party's command (under its click decorators) so that a Ctrl-C or
    SIGTERM outside its run (:func:`_sigterm_as_interrupt`, which each command enters
    to run) is its one line and 128 + the signal too: SIGTERM raises
    :class:`_Terminated` from the command's first line.

    Why: the handlers were installed only around the run. A ``secagg server`` stopped
    by Ctrl-C as it started (its imports, its config's checks) printed click's
    ``Aborted!`` and exited 1, and a SIGTERM there (a branch importing a torch
    ``--hook`` for seconds) ended the process with no line
    (tools/stop_stress.py --mode server-start: 3 of 40 runs, and every early SIGTERM;
    review of ec2a673c, 2026-12-07). ``name_option``: the keyword that holds the
    party's name (``secagg client: NAME: ...``). A stop during Python's own imports of
    the CLI, before any command runs, stays Python's."""

    def decorate(command: Any) -> Any:
        label = f"secagg {command.__name__}"

        @functools.wraps(command)
        def run_saying_stops(**kwargs: Any) -> Any:
            party = label if name_option is None else f"{label}: {kwargs[name_option]}"
            _party_run.began = False
            said = False
            # the record is cleared only where its handlers run (the main thread): a
            # command run in another thread recorded nothing, and clearing there lost
            # the main thread's party's stop (second review of the stop record)
            records = threading.current_thread() is threading.main_thread()
            try:
                with _sigterm_raised():
                    # the run's handlers, left ignoring further stops by a run that ended
                    # with its stop (_sigterm_as_interrupt) while the command says it
                    put_back: dict[int, Any] = {}
                    _party_run.put_back = put_back
                    try:
                        return command(**kwargs)
                    except KeyboardInterrupt as exc:  # outside the run: the run says its own
                        said = True
                        _stopped(
                            party,
                            exc,
                            "its run had ended (its summary was not printed)"
                            if getattr(_party_run, "began", False)
                            else "it had not started; nothing was changed",
                        )
                    finally:
                        _party_run.put_back = None
                        for signum, handler in put_back.items():
                            signal.signal(signum, handler)
            finally:
                # a SIGTERM recorded while starting, the command ended first; cleared
                # once the handler that records is put back, so that a SIGTERM in
                # between is not recorded after the clear and outlives the command
                if records:
                    _forget_stop_said(said)

        return run_saying_stops

    return decorate


@contextlib.contextmanager
def _sigterm_raised() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread while the block runs (its
    handler put back after); elsewhere than the main thread, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        del frame
        ask_stop(signum)  # a SIGTERM a hook's import swallowed still stops the run
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stopped(party: str, exc: KeyboardInterrupt, what_happens: str | Callable[[], str]) -> NoReturn:
    """The one line of a party stopped by Ctrl-C or SIGTERM, and 128 + the signal's
    number as its status (130, 143), as a shell reports a process the signal ended.

    ``what_happens`` may be worked out here (the server reads its state to say whether a
    round was in flight): a second Ctrl-C or SIGTERM meanwhile is ignored, so the first
    stop's line and status are the process's. Why: the command's handlers are put back
    by then, and a second Ctrl-C there was Python's KeyboardInterrupt out of the
    command's ``except`` clause (click's ``Aborted!``, status 1), a second SIGTERM the
    default action (the process ended with no line): review of ec2a673c, 2026-12-07."""
    signum = _signal_of(exc)
    how = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
    with _further_stops_ignored():
        said = what_happens() if callable(what_happens) else what_happens
        _fail(party, f"stopped by {how}: {said}", 128 + signum)


@contextlib.contextmanager
def _further_stops_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while the block runs, in the main thread (elsewhere
    nothing can be installed); their handlers put back after. A handler that was not
    installed from Python (None) cannot be put back, so that signal is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        stop: handler
        for stop in (signal.SIGINT, signal.SIGTERM)
        if (handler := signal.getsignal(stop)) is not None
    }
    for stop in previous:
        signal.signal(stop, signal.SIG_IGN)
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _config_failure(config_path: str, exc: BaseException) -> str:
    """A federation config's error as the one line that names ``--config`` and the file
    once (``secagg server: x.csv: x.csv is not valid TOML`` named the file twice and the
    flag not at all)."""
    said = str(exc)  # unstripped: a name's leading blank is the name's (in_file folds)
    return in_file("--config", config_path, said if said.strip() else type(exc).__name__)


#: the largest policy file a party reads: one table of a dozen keys is a few hundred
#: bytes, and this leaves room for any comments; past it the file is not a policy.
#: Why a bound: TOML parses a 10 MB file of a million tables in 15 to 30 s and 1 GB
#: before any key is checked (hostile CLI review, 2026-12-06). Not the federation
#: config's bound (MAX_CONFIG_BYTES): its clients list may hold a million names.
MAX_POLICY_BYTES = 1024 * 1024


def _read_table(path: str, table: str, known: Collection[str] = ()) -> dict[str, Any]:
    """The one ``[table]`` of a party's own TOML file; other tables are an error, with
    the likely spelling (``[brnach]``: did you mean [branch]?), as the federation config
    gives it: without it a misspelt table was only "unknown" (review, 2026-12-05).

    ``known``: the table's keys. A table with more than :data:`LISTED_UNKNOWN_NAMES` keys
    outside them is refused here, listing a few; fewer are left to the policy's own
    message, which gives each its likely spelling. Why a bound, for the tables too: a
    10 MB file of a million unknown names took 46 s (a spelling looked up for each)
    and 1 GB, then printed one line of 10.9 MB (hostile CLI review, 2026-12-06); so
    many names are not a typo, and a few of them say what the file is."""
    from secagg.errors import closest_spelling
    from secagg.runtime.config import read_toml

    # one open, its size bounded on the open file (a stat of the path, then a read of
    # it, let a named pipe or a larger file be swapped in between)
    data = read_toml(path, MAX_POLICY_BYTES)
    unknown = sorted(set(data) - {table})
    if unknown:
        listed = unknown[:LISTED_UNKNOWN_NAMES]
        near = [name for name in listed if closest_spelling(name, {table}) is not None]
        if len(unknown) == 1 and near:
            hint = f" (did you mean [{table}]?)"
        elif near:
            hint = " (" + "; ".join(f"[{name}]: did you mean [{table}]?" for name in near) + ")"
        else:
            hint = ""
        raise ConfigurationError(
            f"{path}: unknown sections {listed_names(unknown)}; expected [{table}]{hint}"
        )
    if table not in data:
        # an empty file (a deploy that truncated it, a template never filled) ran the
        # party under the default policy, silently: the operator who named a policy file
        # believed its limits held (review, 2026-12-06). A [table] header with no keys
        # still asks for the defaults, on purpose.
        raise ConfigurationError(
            f"{path} has no [{table}] table (is it empty?): write the limits under "
            f"[{table}], or leave --policy out for the defaults"
        )
    section = data[table]
    if not isinstance(section, dict):
        raise ConfigurationError(f"{path}: {table} must be a table ([{table}]), not a value")
    strangers = sorted(map(str, set(section) - set(known))) if known else []
    if len(strangers) > LISTED_UNKNOWN_NAMES:
        raise ConfigurationError(
            f"{path}: [{table}] has {len(strangers)} unknown keys, {listed_names(strangers)}: "
            f"is it a [{table}] table? Its keys are {', '.join(sorted(known))}"
        )
    return dict(section)
