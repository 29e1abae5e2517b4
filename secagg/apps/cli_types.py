"""Parameter types shared by the command-line interfaces.

Why: click's ``FloatRange`` compares the value with its bounds, and every comparison
with NaN is false, so ``--connect-timeout nan`` passed a ``min=0`` range and hung a
branch, and ``-z nan`` ran a whole audit (CLI audit, 2026-12-03). :class:`FiniteFloat`
refuses NaN always and infinity unless the option documents it, with click's own
one-line usage error naming the flag.
"""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float in an optional range that is never NaN, and infinite only if allowed."""

    def __init__(self, *args: Any, allow_inf: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_inf = allow_inf

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isinf(number) and not self.allow_inf:
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


#: any finite float (the range checks, if any, are the command's own)
FINITE = FiniteFloat()
