"""secagg: secure aggregation for federated learning, with privacy an auditor can check.

``secagg.aggregate(updates, backend=...)`` sums an (n, d) float array through any
backend (plain, secagg, secagg+, ckks) in one call; see :mod:`secagg.aggregation`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "aggregate"]

#: names served lazily: ``import secagg`` (and so every ``import secagg.errors``) stays
#: light, and the first access returns the real object, so ``help(secagg.aggregate)``
#: shows its real signature and docstring rather than a ``(*args, **kwargs)`` wrapper
_LAZY = {"aggregate": "secagg.aggregation"}


def __getattr__(name: str) -> Any:
    """Import ``aggregate`` on first use (PEP 562) and keep it on the package."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'secagg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
