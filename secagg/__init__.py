"""secagg: secure aggregation for federated learning, with privacy an auditor can check.

``secagg.aggregate(updates, backend=...)`` sums an (n, d) float array through any
backend (plain, secagg, secagg+, ckks) in one call; see :mod:`secagg.aggregation`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def aggregate(*args: Any, **kwargs: Any) -> Any:
    """See :func:`secagg.aggregation.aggregate` (imported on first use)."""
    from secagg.aggregation import aggregate as _aggregate

    return _aggregate(*args, **kwargs)
