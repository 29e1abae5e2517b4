"""The benchmarks behind ``secagg bench ...`` and ``benchmarks/*.py``, and what they share."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from collections import Counter
from collections.abc import Callable
from typing import Any

from secagg.apps.json_output import dumps

#: Lower bounds of the memory a federation round holds, measured on ``bench grpc`` and
#: ``bench scale`` (2026-12-06, peak RSS per process, d = 10^3 to 8 * 10^6): a process
#: with numpy, gRPC and secagg imported holds 62 MB before its first client (a gRPC
#: worker 150 MB with its clients at d = 10^4); a client holds 37-55 bytes per coordinate
#: (its model, update, encoding, masks and its message buffers), a server 64-84 per
#: coordinate of the model. Taken low, so that a check refuses only what cannot fit.
PROCESS_BYTES = 64 * 2**20
CLIENT_BYTES_PER_COORDINATE = 32
SERVER_BYTES_PER_COORDINATE = 32

#: the longest vector a benchmark takes: 10^8 words (400 MB), far past the papers' and
#: the issues' sizes, and short of a MemoryError traceback (``secagg bench``'s ``--d``,
#: and the modules' own parsers)
MAX_VECTOR_LENGTH = 10**8
#: the most Ray workers or worker processes a benchmark starts, and the most rounds it
#: runs (``secagg simulate``'s caps)
MAX_WORKERS = 10_000
MAX_ROUNDS = 10_000
#: the most timed runs (repetitions) a benchmark takes per step or cell: far past any
#: use, short of a run that never ends (``bench dp --runs 2**70`` ran until killed)
MAX_RUNS = 1000


def round_memory_bytes(clients: int, processes: int, dimension: int) -> int:
    """A lower bound on the memory of one federation round of ``clients`` clients of
    ``dimension`` coordinates and its server, spread over ``processes`` Python
    processes in all (see :data:`PROCESS_BYTES`)."""
    return (
        processes * PROCESS_BYTES
        + clients * dimension * CLIENT_BYTES_PER_COORDINATE
        + dimension * SERVER_BYTES_PER_COORDINATE
    )


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], refused in one usage line
    naming the flag (exit 2), as ``secagg bench``'s click options refuse it.

    Why: the benchmarks' own parsers (``python -m secagg.apps.bench.scale``, its cells,
    ``benchmarks/bench_active.py``) took any int: ``--d 0`` ran another d and reported
    it, ``--n 0``, ``--d -5`` or ``--workers -1`` were tracebacks, some after minutes of
    work (bench review, 2026-12-07)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def share_below_one(text: str) -> float:
    """An argparse type: a finite share in [0, 1), as ``secagg bench masking --dropout``
    takes it. Why: ``bench_active.py --dropout nan`` (or ``inf``, ``1.5``, ``-0.1``) was
    a ValueError or OverflowError traceback from its seeding (bench review, 2026-12-07)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"{text} is not a share in [0, 1)")
    return value


#: the seeds ``secagg simulate``'s experiments report: a probe that tunes must not look
#: at them
REPORTED_SEEDS = range(0, 5)


def probe_seeds(text: str) -> list[int]:
    """A probe's ``--seeds`` (comma-separated integers), refused with one line naming the
    flag when malformed or when it names a reported seed (0-4): a probe chooses
    settings, and a setting chosen on the seeds it is reported on flatters itself."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise SystemExit(f"error: --seeds: not a list of integers: {text!r}") from None
    if any(s in REPORTED_SEEDS for s in seeds):
        raise SystemExit("error: --seeds: 0-4 are the reported seeds; probe tuning seeds")
    return seeds


def machine_info() -> dict[str, Any]:
    """The facts a reader needs to compare two runs: CPUs, versions, platform."""
    import cryptography
    import numpy as np

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cryptography": cryptography.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def emit(
    result: dict[str, Any],
    out: str | None,
    echo: Callable[[str], Any] = print,
    *,
    file_only: bool = False,
) -> None:
    """Print a run's JSON (and write it to ``out`` when given).

    With ``file_only`` (``secagg bench ...``) and ``out``, the JSON goes to the file only
    and ``echo`` gets one line saying where, with the run's headline
    (:func:`headline`). Why: ``secagg bench masking --out F`` poured the whole JSON
    (hundreds of lines) onto the terminal as well as into F (review, 2026-12-05). The
    scripts (``python -m secagg.apps.bench.masking``, ``benchmarks/*.py``) keep the
    JSON on stdout with ``--out`` too: pipelines read it there."""
    text = dumps(result)
    if out:
        write_text(out, text + "\n")
        if file_only:
            echo(f"wrote {out} ({headline(result)})")
            return
    echo(text)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: into a temporary file beside it,
    flushed, then renamed over it (an :class:`OSError` leaves an earlier ``path`` as it
    was and no temporary file). A path that exists and is no regular file (``/dev/stdout``
    in a pipeline, a FIFO) is written in place: a rename would replace the device.

    Why: ``open(path, "w")`` truncated an earlier result first, so a full disk at the end
    of a grid that ran for an hour left a half-written JSON where the last good one was
    (review, 2026-12-05)."""
    import stat
    from pathlib import Path

    from secagg.durable import write_atomically

    # a link (latest.json -> runs/dp.json) keeps naming its file: the rename goes there
    path = os.path.realpath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    if mode is not None:
        file_mode = stat.S_IMODE(mode)  # as the file it replaces
    else:
        umask = os.umask(0)
        os.umask(umask)
        file_mode = 0o666 & ~umask  # as open(path, "w") would have made it
    # the project's one atomic writer: temporary file beside it, fsync, rename, fsync
    # of the folder (a missing folder is the caller's mistake, not created here)
    write_atomically(Path(path), text.encode("utf-8"), mode=file_mode, make_folder=False)


def headline(result: dict[str, Any]) -> str:
    """``masking: 4 cells (1 aborted) in 12.3 s; targets met: 2 of 3``: what a run's JSON
    holds, in short: its benchmark, how many cells (or rounds) it measured and how many
    of them did not complete, its wall time and, when it judges targets (and growth
    slopes), how many it met. Counts only: every figure is in the file."""
    name = str(result.get("benchmark", "benchmark"))
    label = "cells" if "cells" in result else "rounds"
    rows = result.get(label)
    counted = (
        f"{len(rows)} {label[:-1] if len(rows) == 1 else label}" if isinstance(rows, list) else ""
    )
    if counted and isinstance(rows, list):
        # a cell that did not complete is said: the terminal shows nothing else of it
        # (the masking grid's aborted cells read as measured; review, 2026-12-05)
        statuses = Counter(
            str(row["status"])
            for row in rows
            if isinstance(row, dict) and "status" in row and row["status"] != "complete"
        )
        if statuses:
            counted += f" ({', '.join(f'{n} {status}' for status, n in sorted(statuses.items()))})"
    seconds = result.get("seconds")
    timed = f"{seconds:.1f} s" if isinstance(seconds, int | float) else ""
    said = " in ".join(part for part in (counted, timed) if part)
    for key, what in (("targets", "targets met"), ("growth", "growth slopes within target")):
        verdicts = result.get(key)
        if isinstance(verdicts, list) and verdicts:
            met = sum(1 for each in verdicts if isinstance(each, dict) and each.get("pass") is True)
            said += f"; {what}: {met} of {len(verdicts)}"
            # a target the run shows no implementation of its kind can meet is said as
            # such, so "not met" is not read as work left undone (issue 17's 1.3x)
            beyond = sum(
                1
                for each in verdicts
                if isinstance(each, dict)
                and isinstance(each.get("least_reachable"), dict)
                and each["least_reachable"].get("reachable") is False
            )
            if beyond:
                said += f" ({beyond} out of reach of any unfused implementation here)"
    return f"{name}: {said}" if said else name


def print_markdown(path: str, table: Callable[[dict[str, Any]], str]) -> None:
    """Print an earlier run's JSON file as a Markdown table."""
    with open(path, encoding="utf-8") as fh:
        print(table(json.load(fh)), end="")
