"""A condition variable that a Ctrl-C (or a signal handler's exception) leaves intact.

Theory of operation. A party's main thread spends most of its life blocked in a
transport's wait (the server's ``receive``, its quorum wait, a hub's queue). Python
runs signal handlers in the main thread between bytecodes, so Ctrl-C's
``KeyboardInterrupt`` (and the CLI's SIGTERM, raised the same way) can arrive anywhere,
including in the few bytecodes of ``threading.Condition.wait`` after it released the
lock and before it takes it back. The interrupt then unwinds through the caller's
``with condition:``, whose exit releases a lock this thread no longer holds:
``RuntimeError: cannot release un-acquired lock`` replaces the interrupt (CPython's
behaviour: an asynchronous exception is not deferred around a ``with`` block's
cleanup). Seen in the project's CI, 2026-12-07: ``secagg server`` stopped by Ctrl-C
while waiting for branches printed a traceback and exited 1 instead of its one line
and 130. With a plain ``Lock`` it is worse: ``Lock.release`` checks no owner, so the
stray release can free a hold another thread has, breaking its critical section.

:class:`InterruptSafeCondition` is a ``threading.Condition`` over an ``RLock`` (whose
release checks the owner, so a stray release is refused, never applied to another
thread's hold) whose ``with`` exit, when an exception is already unwinding the block,
lets that exception go on instead of replacing it: the lock was given back by the
interrupted wait, which is the state the exit wanted. A release that fails with no
exception in flight is a real bug and is raised.

The queues the main thread waits on are ``queue.SimpleQueue``: implemented in C, its
``get`` leaves no Python-level lock half-held when interrupted (``queue.Queue`` waits
on a ``Condition`` over a plain ``Lock``, the case above). So are the queues it puts on
(the sessions' outboxes): ``queue.Queue.put`` enters ``with self.not_full:``, whose
Python-level ``Condition.__enter__`` takes the lock in a C call after which Python may
run a signal's handler; a stop there kept the lock for good (the ``with`` never began),
and the transport's ``stop``, which puts an end marker on every outbox, waited for it
forever (tools/stop_stress.py --inject, 2026-12-07: 2 of 40 servers stopped in a round
never exited).

Code that is not the transport's (a training hook, a library) still waits on stdlib
conditions, queues and events, or wraps what it catches in its own error. A stop that
surfaced there as another exception still carries the interrupt in its chain (the
``RuntimeError`` above has it as its ``__context__``; ``raise X from exc`` as its
``__cause__``): :func:`stop_within` finds it, so a party's catch-all (a hook's failure
is the branch's, not the end of it) gives the stop back instead of serving on.

A stop can also vanish without a trace: the signal's handler runs while C code has the
main thread (grpcio's core, sqlite3, torch) and the library's own ``except
BaseException`` (or a callback's catch-all) takes the ``KeyboardInterrupt`` and goes
on, or returns as if nothing came. Nothing is left in any chain, and the party served
on (or hung in its next wait) although the operator asked it to stop. So the handlers
the CLI installs also *record* the stop here (:func:`ask_stop`), process-wide, before
they raise; the long-running loops of the server, the branch and the key holder look at
the record at every turn (:func:`raise_if_stop_asked`, which raises :class:`StopAsked`,
a ``KeyboardInterrupt`` that names the signal), and a transport's blocking wait looks
at it at least every :data:`STOP_LOOK_SECONDS`, so a swallowed stop still ends the party
with its one line and status. The record is cleared only by :func:`forget_stop`, which
returns what it held: the CLI calls it once the stop is the command's line.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType
from typing import Final

__all__ = [
    "STOP_LOOK_SECONDS",
    "InterruptSafeCondition",
    "StopAsked",
    "ask_stop",
    "forget_stop",
    "raise_if_stop_asked",
    "raise_stop_within",
    "raised_within",
    "release_kept",
    "stop_asked",
    "stop_behind",
    "stop_within",
]

#: the type of ``threading.RLock()`` (the C implementation when there is one)
_RLOCK_TYPE: Final = type(threading.RLock())

#: the longest a transport's blocking wait goes without looking at the stop record
#: (:func:`raise_if_stop_asked`): how late, at most, a party ends after a stop that a
#: library swallowed inside that wait. A quarter second is no load (a look is a list
#: read) and well inside any service manager's stop timeout
STOP_LOOK_SECONDS: Final = 0.25

#: the signals that asked the process to stop, first first (see :func:`ask_stop`);
#: a few at most are kept, the first is the one that counts
_STOPS_KEPT: Final = 4
_asked: list[int] = []


class StopAsked(KeyboardInterrupt):
    """The stop that signal ``signum`` asked for (SIGINT: Ctrl-C; SIGTERM: a service
    manager), raised where a loop looked at the record (:func:`raise_if_stop_asked`):
    the stop's own exception had been swallowed where it was raised. A
    ``KeyboardInterrupt``, so every path that takes a stop takes this one; it carries
    the signal, so the party says the signal that stopped it and exits 128 + it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_name(signum: int) -> str:
    """``signum``'s name for a party's log line: Ctrl-C (SIGINT), as the CLI's stop line
    says it, SIGTERM, or ``signal N`` for a number without a name. One place for the
    server's, the branch's and the key holder's lines about a stop."""
    if signum == signal.SIGINT:
        return "Ctrl-C (SIGINT)"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def ask_stop(signum: int) -> None:
    """Record that signal ``signum`` asked this process to stop (the CLI's SIGINT and
    SIGTERM handlers call it before they raise).

    Why no lock: the handler runs in the main thread between two bytecodes, possibly
    while that thread holds any lock (a look at the record included), so a lock here
    could deadlock the stop itself; ``list.append`` is atomic, whatever thread calls
    this. The first stop is the one that counts (:func:`stop_asked`); a few more are
    kept, and a flood of signals grows nothing."""
    if len(_asked) < _STOPS_KEPT:
        _asked.append(int(signum))


def stop_asked() -> int | None:
    """The signal of the first stop recorded (:func:`ask_stop`) and not forgotten, or
    None. Any thread may ask; it takes no lock."""
    first = _asked[:1]  # one atomic copy: a forget_stop in between cannot make [0] fail
    return first[0] if first else None


def raise_if_stop_asked() -> None:
    """Raise :class:`StopAsked` for the first stop recorded, if there is one.

    For a long-running loop's every turn (the server's rounds, its waits for parties and
    its collect loop; the branch's and the key holder's serve loops and their redials)
    and for a transport's blocking wait, every :data:`STOP_LOOK_SECONDS` at most. Why:
    a stop whose ``KeyboardInterrupt`` a library swallowed (grpcio's C core, sqlite3, a
    training hook's ``except BaseException``) left no trace, and the party served on
    or hung although the operator had asked it to stop."""
    signum = stop_asked()
    if signum is not None:
        raise StopAsked(signum)


def forget_stop() -> int | None:
    """Clear the record; returns the first stop it held (None: none). Only for whoever
    made the stop the process's outcome (the CLI, once it is the command's line) and
    for tests: a record cleared elsewhere is a stop lost again."""
    first = stop_asked()
    del _asked[:]
    return first


class InterruptSafeCondition(threading.Condition):
    """A ``threading.Condition`` whose ``with`` block lets an interrupt that arrived
    inside :meth:`wait` propagate as itself (see the module's docstring).

    ``lock`` must be an ``RLock`` (a new one when None): a plain ``Lock`` cannot tell a
    stray release from a real one."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        if lock is None:
            lock = threading.RLock()
        if not isinstance(lock, _RLOCK_TYPE):
            raise TypeError(
                f"InterruptSafeCondition needs a threading.RLock, not {type(lock).__name__}: "
                "only an RLock refuses a release by a thread that does not hold it"
            )
        super().__init__(lock)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.release()
        except RuntimeError:
            if value is None:
                raise  # no interrupt in flight: a release without a hold is a bug
            # the wait released the lock and the exception in flight came before it
            # took it back: the lock is already free of this thread; let that one go on


def stop_within(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` (Ctrl-C, or a party's SIGTERM raised as one) that
    ``exc`` was raised while handling or was raised from, if any; None otherwise.

    Why: a party's catch-alls (a training hook that failed, a message that raised) serve
    on by design, and an ``except Exception`` there took a stop that surfaced as another
    exception (the lock error above, a hook's ``raise TrainingError(...) from exc``) as
    one more failure: the branch left the round and served on, and a Ctrl-C or a service
    manager's SIGTERM was lost (review of ec2a673c, 2026-12-07). The chain is followed
    through ``__cause__`` and ``__context__`` both (``raise ... from None`` hides the
    context from a traceback, not from here), each exception once."""
    found = raised_within(exc, KeyboardInterrupt)
    return found if isinstance(found, KeyboardInterrupt) else None


def stop_behind(exc: BaseException) -> int | None:
    """The signal of the stop ``exc`` is, or surfaced from, or None: the first stop
    recorded for the process (:func:`stop_asked`: the one that counts) if there is one;
    else the ``KeyboardInterrupt`` that ``exc`` is or has in its chain
    (:func:`stop_within`): a :class:`StopAsked`'s own signal, SIGINT for a plain one
    (Python's Ctrl-C); else None (a failure of its own).

    Why one place: the server told a stop from a failure of its round by the record
    alone, so a library used without the CLI's handlers (nothing recorded) that turned
    a Ctrl-C into its own error (``sqlite3.OperationalError`` raised while handling the
    ``KeyboardInterrupt``) had the round stopped "on an error": an ERROR line, the round
    aborted with a failed write's reason, and every branch told to exit; the branch's
    and the key holder's catch-alls already looked at the chain first
    (tests/runtime/test_round_stop_said_as_stop.py)."""
    asked = stop_asked()
    if asked is not None:
        return asked
    stop = stop_within(exc)
    if stop is None:
        return None
    signum = getattr(stop, "signum", None)
    return signum if isinstance(signum, int) else int(signal.SIGINT)


def raise_stop_within(exc: BaseException) -> None:
    """Raise the stop in ``exc``'s chain (:func:`stop_within`), the very object, if there
    is one; return otherwise. For the catch-alls that serve on after any other failure:
    ``except Exception as exc: raise_stop_within(exc)`` first, so the stop ends the party
    and whatever it surfaced as is not taken as one more failure."""
    stop = stop_within(exc)
    if stop is not None:
        raise stop from None


def raised_within(
    exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    """The first exception of ``kinds`` in ``exc``'s chain (``exc`` itself, then its
    ``__cause__`` and ``__context__``, each once: a chain that loops ends), or None.

    :func:`stop_within` for a caller whose stop is its own exception too (``secagg
    simulate`` raises SIGTERM as a ``BaseException`` of its own)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        if isinstance(link, kinds):
            return link
        seen.add(id(link))
        pending.extend(x for x in (link.__context__, link.__cause__) if x is not None)
    return None


def release_kept(lock: threading.RLock) -> int:
    """Give back every hold the calling thread still has on ``lock``; how many it had.

    Why: ``with condition:`` enters through ``threading.Condition.__enter__``, a Python
    function whose C acquire returns before the ``with`` begins, and Python may run a
    signal's handler right there (or at the entry of ``__exit__``, before its release):
    the stop then leaves the lock held by the stopping thread for good. An ``RLock`` lets
    that thread go on, but the transport's handler threads wait for it, and a ``stop``
    that waits for them waited forever (tools/stop_stress.py --inject, 2026-12-07: a
    ``secagg server`` stopped in a round never exited). A transport's ``stop`` calls
    this before it waits for other threads; nothing of the stopping thread may still be
    inside a block of ``lock`` then."""
    released = 0
    while lock._is_owned():  # type: ignore[attr-defined]
        lock.release()
        released += 1
    return released
