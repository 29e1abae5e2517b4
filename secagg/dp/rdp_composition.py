"""Renyi DP composition of the running accountant's rounds: a sum of RDP curves.

What lives here
    :class:`_RdpComposition`, the ``"rdp"`` accountant's running state: the sum of the
    rounds' RDP curves at dp_accounting's default orders, one curve added per round
    (each kind of round's curve computed once, :func:`_rdp_curve`), converted to
    epsilon by dp_accounting's own conversion. It is the same sum dp_accounting's
    ``RdpAccountant`` forms, kept instead of recomposed, so a round costs constant time.

Why a module of its own
    RDP is the independent cross-check of PLD (7-135 % looser on our reference table,
    dp-notes 2.4, but fast at any ``z``); its composition shares nothing with the PLD
    grid numerics of :mod:`secagg.dp.pld_composition` but the round model of
    :mod:`secagg.dp.accounting_core`.
"""

from __future__ import annotations

import functools

import numpy as np
from dp_accounting import rdp

from secagg.dp.accounting_core import _Composition, _Round


class _RdpComposition(_Composition):
    """The sum of the rounds' RDP curves (each kind's curve computed once)."""

    def __init__(self) -> None:
        self.orders: np.ndarray | None = None
        self.total: np.ndarray | None = None

    def add(self, kind: _Round, count: int) -> None:
        orders, curve = _rdp_curve(kind)
        self.orders = orders
        self.total = count * curve if self.total is None else self.total + count * curve

    def epsilon(self, delta: float) -> float:
        if self.total is None:
            return 0.0
        eps, _ = rdp.rdp_privacy_accountant.compute_epsilon(self.orders, self.total, delta)
        return float(eps)


#: tail mass each composition may cut off the grid (dp_accounting's default), pessimistically
#: charged to the infinite loss
@functools.lru_cache(maxsize=64)
def _rdp_curve(kind: _Round) -> tuple[np.ndarray, np.ndarray]:
    """One round's RDP at dp_accounting's default orders (what its accountant adds)."""
    accountant = rdp.RdpAccountant()
    accountant.compose(kind.event("rdp"))
    return accountant.orders, accountant.rdp
