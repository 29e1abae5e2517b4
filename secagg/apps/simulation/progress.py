"""How a ``secagg simulate`` run reports its progress: the callback's shape and the silent one.

Every stage of a run (the prior, the local-only and centralized baselines, the federated
rounds) calls a :data:`Progress` callback; the command draws a progress bar from it, and
library callers and tests pass nothing and get :func:`_quiet`. It lives apart so that each
stage's module can take one without importing the run that drives it.
"""

from __future__ import annotations

from collections.abc import Callable

#: progress callback: (stage, done, total, message)
Progress = Callable[[str, int, int, str], None]


def _quiet(stage: str, done: int, total: int, message: str) -> None:
    del stage, done, total, message
