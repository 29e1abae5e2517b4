"""A pytest plugin for sweeps of the hostile-server machine: the run at which it first fails.

Why: docs/protocol.md gives, for each mutation of the branch's active checks, the run of
a seed at which tests/runtime/test_hostile_server_machine.py catches it. Hypothesis
reports the failure but not the run, and shrinks it first. Loaded with ``-p``, this
counts the machine's runs (one ``HostileServer`` instance each; a run hypothesis discards,
its draws overrun, is counted apart), generates only (no shrinking, no database, one bug
reported: generation stops at the first failure) and writes one line to
``$SECAGG_SWEEP_OUT``: ``runs=.. valid=.. caught=.. caught_valid=.. why=..``. With the
check under test mutated by hand::

    SECAGG_SWEEP_OUT=/tmp/sweep SECAGG_HOSTILE_EXAMPLES=375 PYTHONPATH=.:tests \\
        python -m pytest -n 0 -p _hostile_sweep --hypothesis-seed=2 \\
        tests/runtime/test_hostile_server_machine.py -k TestHostileServer

``caught_valid`` is the run docs/protocol.md gives, ``caught`` the one in brackets.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from hypothesis import Phase, settings

_STATE: dict[str, Any] = {"runs": 0, "valid": 0, "caught": None, "caught_valid": None, "why": ""}


def _hypothesis_internal(error: BaseException) -> bool:
    """A run hypothesis discards (its draws overran, a filter gave up), not a failure."""
    return type(error).__module__.startswith("hypothesis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    modules = {getattr(item, "module", None) for item in items}
    for module in modules:
        machine = getattr(module, "HostileServer", None)
        if machine is None:
            continue
        init, teardown = machine.__init__, machine.teardown

        def counted_init(self: Any, _init: Any = init) -> None:
            _STATE["runs"] += 1
            _init(self)

        def checked_teardown(self: Any, _teardown: Any = teardown) -> None:
            # called in hypothesis's ``finally``: the error that ends the run, if any
            error = sys.exc_info()[1]
            if error is None or not _hypothesis_internal(error):
                _STATE["valid"] += 1
                if error is not None and _STATE["caught"] is None:
                    _STATE["caught"], _STATE["caught_valid"] = _STATE["runs"], _STATE["valid"]
                    _STATE["why"] = " ".join(f"{type(error).__name__}: {error}".split())[:160]
            _teardown(self)

        machine.__init__ = counted_init
        machine.teardown = checked_teardown
        machine.TestCase.settings = settings(
            max_examples=int(os.environ.get("SECAGG_HOSTILE_EXAMPLES", "375")),
            stateful_step_count=50,
            deadline=None,
            phases=[Phase.generate],
            database=None,
            report_multiple_bugs=False,
        )


def pytest_sessionfinish() -> None:
    out = os.environ.get("SECAGG_SWEEP_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as sweep:
            sweep.write(" ".join(f"{key}={value}" for key, value in _STATE.items()) + "\n")
