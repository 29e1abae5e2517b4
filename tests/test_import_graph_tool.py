"""tools/import_graph.py reads its layers from the contract lint-imports enforces.

Why: the tool kept its own list of layers, which had drifted from ``.importlinter`` (dp
beside aggregation rather than under it, ``durable`` missing: "unmapped (no layer):
secagg.durable" although docs/architecture.md lists it), so its report of upward imports
judged against another order than the one CI enforces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "tools" / "import_graph.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


def test_every_top_level_module_has_the_contracts_layer_and_none_imports_up():
    report = _tool().analyse(ROOT)
    assert report.unmapped == []
    assert report.upward_imports == []


def test_the_layers_follow_the_contracts_order():
    layer_of = _tool().load_layers(ROOT)
    assert layer_of["secagg.errors"] == 0
    assert layer_of["secagg.durable"] < layer_of["secagg.crypto"]
    assert layer_of["secagg.dp"] < layer_of["secagg.aggregation"]
    assert layer_of["secagg.ledger"] == layer_of["secagg.transport"]
    assert layer_of["secagg.encoding"] == layer_of["secagg.he"]
    assert max(layer_of.values()) == layer_of["secagg.apps"]


def test_a_root_without_the_contract_is_a_clear_error(tmp_path):
    tool = _tool()
    with pytest.raises(tool.LayersNotFound, match=r"\.importlinter"):
        tool.load_layers(tmp_path)
    (tmp_path / ".importlinter").write_text("[importlinter]\nroot_package = secagg\n")
    with pytest.raises(tool.LayersNotFound, match="no 'layers =' list"):
        tool.load_layers(tmp_path)
