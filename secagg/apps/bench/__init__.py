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


def emit(result: dict[str, Any], out: str | None, echo: Callable[[str], Any] = print) -> None:
    """Print a run's JSON (and write it to ``out`` when given)."""
    text = json.dumps(result, indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    echo(text)


def print_markdown(path: str, table: Callable[[dict[str, Any]], str]) -> None:
    """Print an earlier run's JSON file as a Markdown table."""
    with open(path, encoding="utf-8") as fh:
        print(table(json.load(fh)), end="")
