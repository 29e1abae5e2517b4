"""``MAX_SESSION_BURST`` is defined once, in the lowest layer that needs it.

Before: ``secagg.runtime.config`` (the ``[server] session_burst`` key's bound) and
``secagg.transport.grpc_server`` (the constructor's) each wrote ``2**53``, so one could
change without the other, and a burst the config admits would be refused by the
transport it configures (review, 2026-12-06). Now ``secagg.transport.grpc_limits``
defines it and both import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import secagg
from secagg.runtime import config
from secagg.transport import grpc_limits, grpc_server


def _assigned(tree: ast.AST, name: str) -> bool:
    for node in ast.walk(tree):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def test_the_bound_has_one_definition_that_both_layers_read() -> None:
    package = Path(secagg.__file__).parent
    sources = {path: path.read_text(encoding="utf-8") for path in package.rglob("*.py")}
    defining = sorted(
        str(path.relative_to(package))
        for path, text in sources.items()
        if "MAX_SESSION_BURST" in text and _assigned(ast.parse(text), "MAX_SESSION_BURST")
    )
    assert defining == ["transport/grpc_limits.py"]
    assert config.MAX_SESSION_BURST is grpc_limits.MAX_SESSION_BURST
    assert grpc_server.MAX_SESSION_BURST is grpc_limits.MAX_SESSION_BURST
