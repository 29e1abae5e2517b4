"""The runtime never branches on a backend or a DP mechanism: it holds objects.

The layering rule (docs/architecture.md), checked on the source: no comparison, membership test or
``match`` in ``secagg/runtime/`` mentions a backend's or a mechanism's name.
Adding a backend touches ``secagg/aggregation/`` (and the config's list) only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from secagg.aggregation import BACKENDS
from secagg.dp.config import MECHANISMS

RUNTIME = Path(__file__).resolve().parents[2] / "secagg" / "runtime"
NAMES = set(BACKENDS) | {m for ms in MECHANISMS.values() for m in ms}


def _named_in_conditions(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.match_case):
            parts = [node.pattern]
        else:
            continue
        for part in parts:
            for leaf in ast.walk(part):
                value = getattr(leaf, "value", None)
                if isinstance(leaf, ast.Constant | ast.MatchValue) and value in NAMES:
                    found.append((node.lineno if hasattr(node, "lineno") else 0, str(value)))
    return found


@pytest.mark.parametrize("path", sorted(RUNTIME.glob("*.py")), ids=lambda p: p.name)
def test_no_runtime_module_branches_on_a_backend_or_mechanism_name(path: Path) -> None:
    assert _named_in_conditions(ast.parse(path.read_text())) == []


def test_the_check_finds_such_a_branch() -> None:
    code = 'if config.backend.name == "ckks":\n    pass\nx = y in ("central", "other")'
    assert [name for _, name in _named_in_conditions(ast.parse(code))] == ["ckks", "central"]
