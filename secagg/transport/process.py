"""Leaving a process that used gRPC without running gRPC's own teardown.

gRPC's C core tears down its thread pools when the interpreter finalizes and its
static objects are destroyed, and that teardown can hang intermittently (for
example grpc/grpc#40620, and the thread-pool quiesce fixes of grpc/grpc#39258): in
our CI a branch process had printed "finished", closed its session and called
``sys.exit(0)``, and then never exited. A command that has closed its sessions,
its database and its ledger has nothing left that the teardown would save, so the
network commands (``secagg server``, ``client``, ``keyholder``) leave through
:func:`exit_process`: flush what was written, shut logging down, and end the
process at once with the exit status the command chose.

Only call it at the very end of a process, after every file and session is closed:
it skips ``atexit`` handlers and finalizers by design.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_status(code: object) -> int:
    """The process status ``sys.exit(code)`` would give: None is 0, an int is itself,
    anything else (a message) is printed to stderr and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_process(code: object = 0) -> NoReturn:
    """End the process now with ``code`` as ``sys.exit`` would read it, after flushing
    stdout, stderr and every logging handler, without interpreter teardown."""
    status = exit_status(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing more can be said there
            pass
    os._exit(status & 0xFF)
