"""Where secagg.dp draws randomness: keyed streams, and two named, documented exceptions.

The house rule: keys, seeds, masks, DP noise and the sampling an amplification argument
relies on come from the OS CSPRNG or a keyed cipher (:class:`secagg.crypto.stream.KeyedStream`),
never ``numpy.random``, ``random`` or torch's generators, whose state a few outputs reveal.
This reads every module of ``secagg/dp`` (its syntax tree: docstrings that *name* those
generators do not count) and refuses any draw outside the two exceptions that say why:

* ``user_level._customer_rng``: which rows a heavy customer keeps, a per-customer choice
  from a public seed that draws no noise; the guarantee holds for any such choice (see
  ``secagg.dp.user_level``), and changing the generator would move every recorded run.
* ``dpsgd._csprng_seeded_generator``: a simulation's replay (its seed is public by
  construction, so no generator could make its noise secret), and otherwise only the
  ``DataLoader``'s worker seed; a deployment's noise and batches are keyed streams.

A new draw from those generators anywhere else fails here, naming the module and function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import secagg.dp

DP = Path(secagg.dp.__file__).parent

#: (module, function) allowed to touch a non-cryptographic generator, and why is above
ALLOWED = {("user_level.py", "_customer_rng"), ("dpsgd.py", "_csprng_seeded_generator")}

#: dotted prefixes of non-cryptographic generators and their draws
GENERATOR_PREFIXES = (
    "np.random",
    "numpy.random",
    "random.",
    "torch.rand",  # rand, randn, randint, randperm, rand_like, ...
    "torch.normal",
    "torch.bernoulli",
    "torch.multinomial",
    "torch.poisson",
    "torch.Generator",
    "torch.manual_seed",
    "torch.random",
)
#: torch's in-place random fills, a method of any tensor
IN_PLACE_DRAWS = {
    "normal_",
    "uniform_",
    "bernoulli_",
    "random_",
    "exponential_",
    "geometric_",
    "log_normal_",
    "cauchy_",
}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _draws(source: str) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, what)`` for every use of a non-cryptographic generator."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module, *names]:
                if name in ("random", "numpy.random") or (module == "numpy" and name == "random"):
                    found.append((function, node.lineno, f"import {name}"))
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if node.attr in IN_PLACE_DRAWS:
                found.append((function, node.lineno, f".{node.attr}"))
            elif dotted is not None and (dotted + ".").startswith(GENERATOR_PREFIXES):
                found.append((function, node.lineno, dotted))
                return  # np.random.PCG64 is one use, not also np.random
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


@pytest.mark.parametrize("module", sorted(DP.glob("*.py")), ids=lambda p: p.name)
def test_randomness_in_secagg_dp_comes_from_keyed_streams(module: Path) -> None:
    draws = _draws(module.read_text(encoding="utf-8"))
    stray = [d for d in draws if (module.name, d[0]) not in ALLOWED]
    assert not stray, (
        f"{module.name} draws from a non-cryptographic generator: {stray}; draw from a "
        "secagg.crypto.stream.KeyedStream instead (derive its key from the seed where a "
        "run must replay), or say here and in the module why the draw guards nothing"
    )


def test_the_scan_sees_the_documented_exceptions_and_a_planted_draw() -> None:
    """The scan is not blind: it finds the two exceptions it allows, and draws of each kind."""
    seen = {(p.name, function) for p in DP.glob("*.py") for function, _, _ in _draws(p.read_text())}
    assert seen >= ALLOWED
    planted = (
        "import random\n"
        "def f(t):\n"
        "    a = np.random.default_rng(1).normal()\n"
        "    b = torch.randn(3)\n"
        "    t.normal_(0, 1)\n"
        "    return random.random()\n"
        "'''np.random in a docstring is no draw'''\n"
    )
    assert sorted(what for _, _, what in _draws(planted)) == [
        ".normal_",
        "import random",
        "np.random.default_rng",
        "random.random",
        "torch.randn",
    ]
