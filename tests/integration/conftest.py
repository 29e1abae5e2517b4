"""Everything here is an integration test: gRPC, subprocesses, torch federations, benchmarks.

``python -m pytest -m "not integration"`` is the quick run; the default runs all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
