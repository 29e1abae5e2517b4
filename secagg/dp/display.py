"""Privacy figures as text: rounded toward the safe side, never to the nearest.

An epsilon or delta printed for a person is read as what was spent (or promised), and a
noise multiplier printed by ``privacy noise`` is copied back into configs. Rounding to
the nearest figure can show less than what ran: epsilon 3.00004 printed as ``3.0000``
below a budget of 3, a noise multiplier 0.29004 printed as ``0.2900``, which then
overspends when a user runs it. So every such figure is rounded *up* at the precision
shown (a lower bound, such as the empirical audit's, *down*): the figure shown is then
on the side of the truth that the reader can rely on, and off by less than one unit in
its last place.

Rounding starts from the shortest decimal that reads back as the same float (``repr``),
not from the float's exact binary value: a delta given as ``1e-5`` is stored as
1.00000000000000008e-05 and would otherwise print as ``1.00001e-05``. The guarantee is
therefore the one a reader can check: ``float(shown(x)) >= x``.
"""

from __future__ import annotations

import decimal
import math
import numbers

from secagg.errors import ConfigurationError

#: enough digits for any float64 at any number of places (1.8e308 has 309 before the point)
_CONTEXT = decimal.Context(prec=800, Emax=10_000, Emin=-10_000)


def shown(value: float, places: int = 4, *, significant: bool = False, lower: bool = False) -> str:
    """``value`` as text, rounded up (``lower``: down) at the precision shown.

    ``places`` decimals (as ``f"{value:.4f}"``), or ``places`` significant digits where
    that is finer, below 0.1 (epsilon 1e-7 is ``0.0000001000``, not ``0.0001``, which
    says nothing; 0.0625 is ``0.06250``). With ``significant``, ``places`` significant
    digits in the ``g`` style (as ``f"{value:.6g}"``: ``1e-05``, ``3.00001``), for deltas
    and for figures inside sentences. Infinity and NaN are ``inf`` and ``nan``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"value must be a number, not {value!r}")
    if isinstance(places, bool) or not isinstance(places, numbers.Integral) or places < 1:
        raise ConfigurationError(f"places must be an integer >= 1, not {places!r}")
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    places = int(places)
    exact = decimal.Decimal(repr(x))
    rounding = decimal.ROUND_FLOOR if lower else decimal.ROUND_CEILING
    if significant:
        if x == 0:
            return format(x, f".{places}g")
        step = decimal.Decimal(1).scaleb(exact.adjusted() - (places - 1))
        return _general(exact.quantize(step, rounding=rounding, context=_CONTEXT), places)
    finest = -places if x == 0 else min(-places, exact.adjusted() - (places - 1))
    rounded = exact.quantize(decimal.Decimal(1).scaleb(finest), rounding=rounding, context=_CONTEXT)
    return format(rounded, "f")


def shown_field(value: object, places: int, *, lower: bool = False) -> str:
    """A recorded privacy parameter at ``places`` significant digits, rounded up (``lower``:
    down) through :func:`shown`; ``-`` when it is missing (None) and anything but a number
    as recorded, since reports read run folders and ledgers written by older versions."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return shown(float(value), places, significant=True, lower=lower)


def _general(rounded: decimal.Decimal, places: int) -> str:
    """``rounded`` (at most ``places`` significant digits) as ``format(x, f".{places}g")``
    prints a float: plain from 1e-4 up to ``10 ** places``, scientific with a two-digit
    exponent beyond, trailing zeros dropped. Written out from the decimal, not through a
    float, whose digits below 1e-308 (subnormals) are fewer than ``places``."""
    exponent = rounded.adjusted()
    if -4 <= exponent < places:
        text = format(rounded, "f")
        suffix = ""
    else:
        text = format(rounded.scaleb(-exponent, context=_CONTEXT), "f")
        suffix = f"e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + suffix
