"""The one encoding of every ``--json`` object the ``secagg`` command prints.

JSON has no infinity and no NaN: ``json.dumps`` writes them as the bare words
``Infinity`` and ``NaN``, which strict parsers (``jq``, JavaScript's ``JSON.parse``,
Python's ``json.loads`` with ``parse_constant`` refusing them) reject. The encoding,
documented in docs/audit.md ("JSON output"):

* an infinite number is the string ``"inf"`` (``"-inf"`` below zero), the spelling the
  privacy ledger's rows and ``summary.json`` already use for an infinite epsilon;
* NaN is ``null`` (no figure);
* every other number is a JSON number, exact (``repr``'s digits).

Why one module: each command converted its own fields, by hand, some not at all:
``privacy epsilon --json -z 1e-200`` printed ``"epsilon": Infinity``, and ``audit
empirical --json`` converted only a top-level ``+inf`` (a ``-inf`` or a NaN went out
bare). :func:`dumps` refuses (``ValueError``) anything its conversion left behind, so
a new field cannot slip a bare ``Infinity`` out again.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

#: how an infinite number is written (and its negative, ``"-" + INFINITY``)
INFINITY = "inf"


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot hold made plain: infinities as ``"inf"`` /
    ``"-inf"``, NaN as None, tuples as lists, dataclasses as dicts, numpy scalars as
    Python numbers, dictionary keys as strings (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (INFINITY if value > 0 else "-" + INFINITY)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return json_safe(value.item())  # a numpy scalar
    return value


def dumps(payload: Any, *, indent: int | None = 2) -> str:
    """``payload`` as strict JSON in the encoding above (``indent`` as ``json.dumps``)."""
    return json.dumps(json_safe(payload), indent=indent, allow_nan=False)


def _refuse_constant(token: str) -> Any:
    """``json.loads``'s hook for ``NaN``, ``Infinity`` and ``-Infinity``: refused."""
    raise ValueError(f"not strict JSON: the bare token {token!r} (no JSON number)")


def loads(text: str | bytes) -> Any:
    """``text`` parsed as strict JSON: the bare ``NaN`` / ``Infinity`` tokens that
    ``json.loads`` accepts by default are a ``ValueError`` (what ``jq`` and
    ``JSON.parse`` do with them), so a reader of :func:`dumps`'s lines sees at once a
    writer that bypassed it. An infinity :func:`dumps` wrote arrives as ``"inf"``."""
    return json.loads(text, parse_constant=_refuse_constant)
