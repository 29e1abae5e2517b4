"""The benchmarks behind ``secagg bench ...`` and ``benchmarks/*.py``, and what they share."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from typing import Any


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
    text = json.dumps(result, indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        if file_only:
            echo(f"wrote {out} ({headline(result)})")
            return
    echo(text)


def headline(result: dict[str, Any]) -> str:
    """``masking: 4 cells in 12.3 s; targets met: 2 of 3``: what a run's JSON holds, in
    short: its benchmark, how many cells (or rounds) it measured, its wall time and,
    when it judges targets, how many it met. Counts only: every figure is in the file."""
    name = str(result.get("benchmark", "benchmark"))
    label = "cells" if "cells" in result else "rounds"
    rows = result.get(label)
    counted = (
        f"{len(rows)} {label[:-1] if len(rows) == 1 else label}" if isinstance(rows, list) else ""
    )
    seconds = result.get("seconds")
    timed = f"{seconds:.1f} s" if isinstance(seconds, int | float) else ""
    said = " in ".join(part for part in (counted, timed) if part)
    targets = result.get("targets")
    if isinstance(targets, list) and targets:
        met = sum(
            1 for target in targets if isinstance(target, dict) and target.get("pass") is True
        )
        said += f"; targets met: {met} of {len(targets)}"
    return f"{name}: {said}" if said else name


def print_markdown(path: str, table: Callable[[dict[str, Any]], str]) -> None:
    """Print an earlier run's JSON file as a Markdown table."""
    with open(path, encoding="utf-8") as fh:
        print(table(json.load(fh)), end="")
