"""Both ends of a pair mask derive its seed at the one declared length.

Why: the server re-derives a dropped client's pair seeds at unmasking with
``kx.derive_key(..., length=16)``, a literal, while the client derives them with
``length=PAIR_SEED_BYTES``. They agree only while the constant is 16: a change of the
constant would leave the server subtracting masks of another length from every
dropped pair, and an unmasked sum of noise. The source is read rather than a round
run: the behaviour is the same today (16 == 16), so only the expression can tell.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import secagg.protocol.client as client_module
import secagg.protocol.server as server_module
from secagg.protocol.messages import PAIR_SEED_BYTES


def _pair_seed_lengths(module: object) -> list[ast.expr | None]:
    """The ``length=`` argument of every ``derive_key`` call for the pair-mask purpose."""
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    lengths: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "derive_key":
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        purpose = keywords.get("purpose")
        if isinstance(purpose, ast.Attribute) and purpose.attr == "MASK_PURPOSE":
            lengths.append(keywords.get("length"))
    return lengths


@pytest.mark.parametrize("module", [client_module, server_module], ids=["client", "server"])
def test_pair_seeds_are_derived_at_the_declared_length(module: object) -> None:
    lengths = _pair_seed_lengths(module)
    assert lengths, "no pair-seed derivation found: the test no longer reads the right call"
    for length in lengths:
        assert isinstance(length, ast.Name) and length.id == "PAIR_SEED_BYTES", (
            f"{module.__name__} derives a pair seed with length "  # type: ignore[attr-defined]
            f"{ast.unparse(length) if length is not None else 'unset'}, not PAIR_SEED_BYTES"
        )
    assert module.PAIR_SEED_BYTES is PAIR_SEED_BYTES  # type: ignore[attr-defined]
