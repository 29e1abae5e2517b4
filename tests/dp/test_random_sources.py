"""Where secagg.dp draws randomness: keyed streams, and two named, documented exceptions.

The house rule: keys, seeds, masks, DP noise and the sampling an amplification argument
relies on come from the OS CSPRNG or a keyed cipher (:class:`secagg.crypto.stream.KeyedStream`),
never ``numpy.random``, ``random`` or torch's generators, whose state a few outputs reveal.
This reads every module of ``secagg/dp`` (its syntax tree: docstrings that *name* those
generators do not count), resolves every name through the module's imports (an alias
such as ``import numpy as xp`` or ``from torch import randn as r`` is what it stands
for, and so is a generator named as a string to ``getattr`` or ``import_module``), and
refuses any draw outside the two exceptions that say why:

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


#: modules that are themselves non-cryptographic generators (imported, aliased or named
#: as a string to ``import_module``/``__import__``/``getattr``)
GENERATOR_MODULES = ("random", "numpy.random", "torch.random")
#: methods that draw from numpy's global generator whatever object they hang on: scipy's
#: distributions' ``rvs`` (``random_state`` None is ``np.random``'s state)
GLOBAL_STATE_DRAWS = {"rvs"}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Each name a module binds by an import, to the dotted name it stands for:
    ``import numpy as xp`` binds ``xp`` to ``numpy``, ``from torch import randn as r``
    ``r`` to ``torch.randn``, ``import numpy.random`` binds ``numpy``."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    bound[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    bound[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _canonical(dotted: str, bound: dict[str, str]) -> str:
    """``dotted`` with its first name replaced by what an import bound it to."""
    head, _, rest = dotted.partition(".")
    target = bound.get(head, head)
    return f"{target}.{rest}" if rest else target


def _is_generator(dotted: str) -> bool:
    return (dotted + ".").startswith(GENERATOR_PREFIXES) or any(
        dotted == module or dotted.startswith(module + ".") for module in GENERATOR_MODULES
    )


def _named_by_string(node: ast.Call, bound: dict[str, str]) -> str | None:
    """The generator a call names with a string, or None: ``getattr(np, "random")``,
    ``importlib.import_module("numpy.random")``, ``__import__("random")``."""
    strings = [
        a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
    ]
    if not strings:
        return None
    callee = _dotted(node.func)
    callee = None if callee is None else _canonical(callee, bound)
    if callee == "getattr" and len(node.args) >= 2:
        owner = _dotted(node.args[0])
        if owner is not None:
            named = f"{_canonical(owner, bound)}.{strings[0]}"
            return named if _is_generator(named) else None
    if callee in ("importlib.import_module", "__import__"):
        return strings[0] if _is_generator(strings[0]) else None
    return None


def _draws(source: str) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, what)`` for every use of a non-cryptographic generator.

    Names are resolved through the module's imports, so an alias (``import numpy as
    xp``, ``from torch import randn as r``) is seen as what it stands for."""
    found: list[tuple[str, int, str]] = []
    tree = ast.parse(source)
    bound = _imported_names(tree)

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module, *names]:
                if name in ("random", "numpy.random") or (module == "numpy" and name == "random"):
                    found.append((function, node.lineno, f"import {name}"))
        if isinstance(node, ast.Call):
            named = _named_by_string(node, bound)
            if named is not None:
                found.append((function, node.lineno, f"{named} (named as a string)"))
        if isinstance(node, ast.Attribute | ast.Name):
            dotted = _dotted(node)
            if isinstance(node, ast.Attribute) and node.attr in IN_PLACE_DRAWS | GLOBAL_STATE_DRAWS:
                found.append((function, node.lineno, f".{node.attr}"))
                return
            if dotted is not None:
                canonical = _canonical(dotted, bound)
                if (dotted + ".").startswith(GENERATOR_PREFIXES) or (
                    canonical != dotted and _is_generator(canonical)
                ):
                    found.append((function, node.lineno, dotted))
                    return  # np.random.PCG64 is one use, not also np.random
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
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


#: draws the scan missed while they named the generator under another name (each line a
#: module of its own): an alias of numpy or torch, a name imported from them, getattr and
#: import_module with the name as a string, and scipy's ``rvs`` (numpy's global generator)
ALIASED_DRAWS = (
    "import numpy as xp\nnoise = xp.random.normal(size=3)\n",
    "import numpy\nrng = numpy.random.default_rng()\n",
    "import numpy.random as npr\nnoise = npr.normal(size=3)\n",
    "from numpy.random import default_rng as secure_rng\nrng = secure_rng()\n",
    "import torch as T\nnoise = T.randn(3)\n",
    "from torch import randn\nnoise = randn(3)\n",
    "from torch import randn as csprng_normal\nnoise = csprng_normal(3)\n",
    "import numpy as np\ngenerator = getattr(np, 'random')\n",
    "import importlib\ngenerator = importlib.import_module('numpy.random')\n",
    "generator = __import__('random')\n",
    "from scipy import stats\nnoise = stats.norm.rvs(size=3)\n",
)


@pytest.mark.parametrize("source", ALIASED_DRAWS)
def test_the_scan_sees_a_generator_under_another_name(source: str) -> None:
    """Why: the scan matched spelled prefixes (``np.random``, ``torch.rand``), so a module
    that imported numpy as ``xp`` or took ``randn`` from torch drew noise unseen."""
    assert _draws(source), f"the scan missed a draw in:\n{source}"


def test_aliases_of_other_modules_are_not_draws() -> None:
    """The alias resolution does not make every ``random`` attribute a draw."""
    source = (
        "import numpy as np\n"
        "from secagg.crypto.stream import KeyedStream\n"
        "def f(stream: KeyedStream):\n"
        "    return np.sqrt(stream.uniform(3))\n"
        "import secrets\n"
        "key = secrets.token_bytes(16)\n"
    )
    assert _draws(source) == []


#: the packages below the DP front door that draw keys, seeds, masks, rounding and CKKS
#: noise: held to the same rule, with no exception
ENGINE = Path(secagg.__file__).parent
ENGINE_PACKAGES = ("aggregation", "crypto", "encoding", "he", "protocol")


@pytest.mark.parametrize(
    "module",
    sorted(p for package in ENGINE_PACKAGES for p in (ENGINE / package).rglob("*.py")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_the_engine_below_dp_draws_only_from_keyed_streams(module: Path) -> None:
    """Why: the scan read only ``secagg/dp``, while the masks, the rounding, the masking
    backend's noise shares and the CKKS key holder's noise are drawn in these packages."""
    stray = _draws(module.read_text(encoding="utf-8"))
    assert not stray, f"{module} draws from a non-cryptographic generator: {stray}"
