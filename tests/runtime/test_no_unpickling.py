"""Nothing in secagg unpickles: no pickle-family module, no ``allow_pickle=True``.

Why: a pickle runs code of the sender's choosing when it is loaded, so bytes from the
wire (or a file from anywhere) must never reach one; and a pickle of a
:class:`~secagg.crypto.stream.KeyedStream` carried its key in plain (now refused, see
tests/crypto/test_keyed_stream_copies.py). The only pickling left is Ray's, inside the
Ray engine's own trust domain (secagg/runtime/ray_engine.py, ray_slices.py), by Ray's
API, not by a call here. Checked on the source (AST): an import of a pickle-family
module, or a ``load``/``loads`` call with ``allow_pickle`` or ``weights_only`` set to
let a pickle through, anywhere under ``secagg/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "secagg"
#: modules whose loading runs the data's code (or, for marshal, trusts the bytes)
UNPICKLERS = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}


def _unpickling(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # from ray import cloudpickle: both parts
            names = [node.module or ""] + [alias.name for alias in node.names]
        else:
            names = []
        for name in names:
            if set(name.split(".")) & UNPICKLERS:
                found.append((node.lineno, f"imports {name}"))
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                lets_through = {"allow_pickle": True, "weights_only": False}
                if keyword.arg in lets_through and not (
                    isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is not lets_through[keyword.arg]
                ):
                    found.append((node.lineno, f"{keyword.arg}={ast.unparse(keyword.value)}"))
        if isinstance(node, ast.Attribute) and node.attr == "cloudpickle":
            found.append((node.lineno, "uses cloudpickle"))
    return found


def test_the_check_finds_what_it_looks_for() -> None:
    """The scan is no test that cannot fail: each pattern it refuses is found."""
    sample = (
        "import pickle\nfrom ray import cloudpickle\nimport numpy as np\n"
        "np.load('x', allow_pickle=True)\ntorch.load('m', weights_only=False)\n"
        "np.load('y', allow_pickle=flag)\nray.cloudpickle.loads(b'')\n"
        "np.load('z', allow_pickle=False)\n"
    )
    assert [line for line, _ in _unpickling(ast.parse(sample))] == [1, 2, 4, 5, 6, 7]


#: a file none of these words appear in has nothing the scan looks for (parsing every
#: file of secagg took a second; the words are each pattern's own spelling)
_WORDS = (*UNPICKLERS, "allow_pickle", "weights_only")


def test_no_module_of_secagg_unpickles() -> None:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if any(word in text for word in _WORDS):
            if hits := _unpickling(ast.parse(text)):
                found[str(path.relative_to(SOURCE.parent))] = hits
    assert not found, found
