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
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Final

__all__ = ["InterruptSafeCondition", "raised_within", "release_kept", "stop_within"]

#: the type of ``threading.RLock()`` (the C implementation when there is one)
_RLOCK_TYPE: Final = type(threading.RLock())


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
