"""``secagg audit report``: the ledger as a compliance officer reads it (markdown and HTML).

What the reader gets, per mechanism: for client-level DP the per-round clip, noise and
sample rate the epsilon was derived from; for record-level DP (DP-SGD inside each
branch) each branch's own accounting (unit, accountant, delta, noise multipliers,
sample rates, steps, per-item clip, claimed and re-derived epsilon) instead of the
update clip, which is no DP parameter there. A "How to read this" that matches the
table, the config's budget (``--config``) as a line and a verdict, and a participation
plot whose labels say what happened: a round aborted before it ran is not one whose
clients dropped out. For the distributed discrete Gaussian each round's honest noise
shares (the row's ``noise_contributors``, what its epsilon is charged at) are a column,
so the auditor need not read the raw rows. A ledger without DP claims no epsilon: it is
reported as released without differential privacy, with no budget line and no plot
(none is linked), and its guide does not speak of noise that was never drawn.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import re
from pathlib import Path
from typing import Any

from secagg.dp.display import shown, shown_field
from secagg.ledger.verify import AuditResult, ExpectedPrivacy, verify_ledger


def _when(value: Any) -> str:
    """A recorded time in UTC; ``-`` for anything but a time a calendar holds (a failed
    ledger's rows are shown as recorded: 1e300 ended the report in an OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "-"


#: what a recorded value may not hold unescaped in a markdown cell or line: ``|`` ends a
#: cell, ``\\`` would escape the escape (``\\|`` ends it too), a backtick opens a code
#: span, ``*`` emphasis, ``[``/``]`` a link (``javascript:`` included), ``<``/``>``/``&``
#: raw HTML and entities, which markdown viewers render (a ``<script>`` runs)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|&])")
#: a value shown in a code span as it is: nothing in it can end the span
_CODE_SAFE = re.compile(r"[0-9A-Za-z+/=.:_-]*")


def _cell(value: Any) -> str:
    """A recorded value as one table cell or a value on a fact line: line breaks folded
    (a row cannot add lines), a long value cut, and every markdown metacharacter
    escaped with a backslash, so it reads as written and cannot split the row, add
    markup or carry HTML (the HTML page reads the escapes back, :func:`_html`)."""
    text = "-" if value is None else str(value)
    text = " ".join(text.split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


#: what a verifier's sentence may not hold unescaped: raw HTML (``<``), an entity
#: (``&``), a link (``[``), a code span and the escape itself; its own ``>``, ``]`` and
#: ``|`` (``a number > 0``, ``(0, 1]``) are plain text outside a table and a tag
_SENTENCE_SPECIAL = re.compile(r"([\\`\[<&])")


def _text(value: str) -> str:
    """A verifier's sentence (a failure, a note) as report text: it quotes recorded values
    (``unit '<img ...>'``), so it is folded onto one line and what could be markup in
    it escaped, whole."""
    return _SENTENCE_SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _code(value: Any) -> str:
    """A recorded hash (a model digest, an identity) in a code span; anything that could
    end the span (a backtick) shown escaped as plain text instead: inside a code span
    backslashes escape nothing."""
    text = "-" if value is None else " ".join(str(value).split())
    return f"`{text}…`" if _CODE_SAFE.fullmatch(text) else _cell(text) + "…"


def _prose(value: Any, default: str) -> str:
    """A recorded string shown inside a sentence of the guide: folded onto one line, its
    markdown metacharacters escaped and a long one cut, so a ledger cannot inject
    headings, links or tables into the report; ``default`` when none was recorded."""
    if not isinstance(value, str) or not value.strip():
        return default
    text = " ".join(value.split())
    text = re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)
    return text if len(text) <= 200 else text[:197] + "..."


def _count(value: Any) -> int:
    """A recorded count, 0 when it is none (a failed ledger's rows are shown as recorded)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        return 0
    return value


def _object(value: Any) -> dict[str, Any]:
    """A recorded JSON object, ``{}`` for anything else."""
    return value if isinstance(value, dict) else {}


def _entries(result: AuditResult) -> list[dict[str, Any]]:
    """The rows the report reads: every JSON object in the chain (a failed ledger may
    hold a row that is none; its table row says so)."""
    return [r.entry for r in result.chain.rows if isinstance(r.entry, dict)]


def _spent(result: AuditResult, seq: int, entry: dict[str, Any]) -> Any:
    """Row ``seq``'s epsilon as the report shows it: for a verified ledger the larger of
    the claim and the verifier's replay (a claim within the tolerance below the replay
    would show less than the mechanism spent); for a failed one the claim, as recorded."""
    privacy = entry.get("privacy")
    claimed = privacy.get("epsilon") if isinstance(privacy, dict) else None
    if not result.ok:
        return claimed
    if claimed is None:
        # a row released without noise claims nothing, but its replay is infinite: "-"
        # read as "nothing spent" beside a budget it overspent
        return result.shown_epsilon(seq, None)
    value = _as_float(claimed)
    return claimed if value is None else result.shown_epsilon(seq, value)


def _eps(value: Any) -> str:
    """An epsilon as the report shows it: 3 decimals, rounded *up* (to the nearest,
    4.01132 read 4.011, below what the ledger records; :mod:`secagg.dp.display`)."""
    if value is None:
        return "-"
    if value == "inf" or (isinstance(value, float) and math.isinf(value) and value > 0):
        return "∞"
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        return _cell(value)  # a failed ledger's row, as recorded (no number to round)
    return shown(float(value), 3)


def _param(value: Any, *, lower: bool = False) -> str:
    """A mechanism parameter as the report shows it: 4 significant digits (6 in the
    branch table, through ``places``) rounded toward the side a reader may rely on,
    through :func:`~secagg.dp.display.shown`. Up for what bounds the leak (a clip, a
    sensitivity, a sample rate), down (``lower``) for what hides it (a noise std or
    multiplier, a budget): to the nearest, a clip of 1.23449 read 1.234 and a noise std
    of 1.234606 read 1.235, a smaller sensitivity and more noise than ran. Anything
    but a number (a missing field) is shown as ``-`` or as recorded."""
    return _param_at(value, 4, lower=lower)


def _param_at(value: Any, places: int, *, lower: bool = False) -> str:
    """:func:`_param` at ``places`` significant digits; what is no finite number (a
    failed ledger's row, shown as recorded) as a table cell."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        return "-" if value is None else _cell(value)
    return shown_field(value, places, lower=lower)


def _delta(value: Any) -> str:
    """A delta as ``audit verify``'s line shows it: 6 significant digits rounded *up*
    (:func:`~secagg.dp.display.shown`; a smaller delta would flatter); ``-`` or as
    recorded when it is no finite number (a failed ledger's row).

    Why: the budget line printed the recorded float whole (``1.2345641e-06``) beside
    verify's ``1.23457e-06`` for the same ledger (review 2026-12-05)."""
    return _param_at(value, 6)


def _at_delta(delta: float | None) -> str:
    """``at delta = D``: the delta the budget line's epsilon holds at
    (:meth:`~secagg.ledger.verify.AuditResult.claim_delta`, as ``audit verify`` prints
    it), or that none is recorded: an epsilon read without its delta looked complete
    ("at delta = -")."""
    if delta is None:
        return "at a delta not recorded (no DP block records one)"
    return f"at delta = {_delta(delta)}"


#: participation categories of the plot, in stacking order: (key, label, colour, hatch)
_PARTICIPATION = (
    ("contributed", "contributed (in the released sum)", "tab:blue", None),
    ("dropped", "selected, dropped out of a completed round", "tab:orange", None),
    ("aborted", "selected, round aborted after it started", "tab:gray", None),
    (
        "not_run",
        "sampled, round aborted before it ran (too few sampled or connected)",
        "white",
        "//",
    ),
)


def _never_ran(entry: dict[str, Any]) -> bool:
    """An aborted round that never started its protocol: too few clients were sampled or
    connected (no phase ran, nobody dropped out of anything)."""
    if entry.get("status") != "aborted" or any(_object(entry.get("dropouts")).values()):
        return False
    reason = str(entry.get("reason") or "")
    count = _count(_object(entry.get("participants")).get("count"))
    return count < 2 or "fewer than" in reason or "sampled or connected" in reason


def participation(entry: dict[str, Any]) -> dict[str, int]:
    """A row's participants by what became of them (the plot's stacked bars).

    Honest labels: only a completed round has contributors and dropouts; everyone
    in an aborted round is counted as such, and a round aborted before it ran (too
    few sampled or connected) is not a round its one sampled client "dropped"."""
    count = _count(_object(entry.get("participants")).get("count"))
    out = dict.fromkeys((key for key, *_ in _PARTICIPATION), 0)
    if entry.get("status") == "complete":
        contributed = min(_count(entry.get("contributed")), count)
        out["contributed"], out["dropped"] = contributed, max(0, count - contributed)
    elif _never_ran(entry):
        out["not_run"] = count
    else:
        out["aborted"] = count
    return out


#: up to this many rounds, one bar (and marker) per round; beyond it the participation
#: is drawn as stacked areas (a bar narrower than a pixel shows nothing more, and a
#: 10^5-round ledger's 10^5 bars took 137 of the report's 182 s under the profiler)
_BARS_UP_TO = 2000


#: the largest round number the plot takes (2**53: every JSON reader holds it exactly,
#: and no server writes more; row_shape_problem fails a row above it)
_PLOTTED_ROUNDS = 2**53


def _figure(result: AuditResult, budget: float | None = None) -> Any:
    """The budget (top) and participation (bottom) plot as a matplotlib Figure, or None
    when no row claims an epsilon. The epsilon axis starts at 0, the config's budget is
    a line, and both legends sit beside the axes, never over the data."""
    # rows with a round number only (a failed ledger's rows are shown as recorded), one
    # a float holds: 10**400 is an int, and crashed matplotlib instead of the report
    chained = [
        r
        for r in result.chain.rows
        if isinstance(r.entry, dict)
        and isinstance(r.entry.get("round"), int)
        and not isinstance(r.entry.get("round"), bool)
        and abs(r.entry["round"]) <= _PLOTTED_ROUNDS
    ]
    rows = [r.entry for r in chained]
    points = [
        (r.entry["round"], float(epsilon))
        for r in chained
        if isinstance(epsilon := _spent(result, r.seq, r.entry), int | float)
        and not isinstance(epsilon, bool)
        and _finite(epsilon)
    ]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    record = _branch_accounted(_ledger_dp(rows))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    label = "cumulative epsilon (worst branch)" if record else "cumulative epsilon"
    # a marker per round draws as a solid band once rounds outnumber pixels
    marker = "o" if len(points) <= _BARS_UP_TO else None
    start = _prior_point(result)
    if start is not None:
        # the prior ledger's spend, where this file's rounds begin from: the curve drawn
        # from this file's first round alone hid that it starts above 0 (review 2026-12-05)
        points.insert(0, start)
        label += f" (from round {result.first_round}: the prior ledger's included)"
        top.plot(
            [start[0]], [start[1]], marker="s", linestyle="none", color="tab:gray",
            label=f"prior ledger's spend (to round {start[0]})",
        )  # fmt: skip
    top.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label)
    highest = max(p[1] for p in points)
    if budget is not None:
        top.axhline(
            budget,
            color="tab:red",
            linestyle="--",
            label=f"epsilon_budget {_param_at(budget, 6, lower=True)}",
        )
        highest = max(highest, budget)
    top.set_ylim(0, highest * 1.08 if highest > 0 else 1.0)
    # the delta every plotted epsilon is stated at, as on the budget line
    delta = result.claim_delta()
    top.set_ylabel("epsilon" if delta is None else f"epsilon at delta {_delta(delta)}")
    top.set_title(
        "Privacy budget spent"
        if result.ok
        else "Epsilon claimed by each row, as recorded: not verified (the ledger FAILED)"
    )
    top.grid(alpha=0.3)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    rounds = [e["round"] for e in rows]
    counts = [participation(e) for e in rows]
    base = [0] * len(rows)
    for key, text, colour, hatch in _PARTICIPATION:
        heights = [c[key] for c in counts]
        if not any(heights):
            continue
        edge = "black" if hatch else colour  # the hatched (white) bars need an outline
        top_of = [b + h for b, h in zip(base, heights, strict=True)]
        if len(rows) <= _BARS_UP_TO:
            bottom.bar(
                rounds, heights, bottom=base, label=text, color=colour, hatch=hatch, edgecolor=edge
            )
        else:  # one artist per category, not one bar per round (10^5 bars took 2 minutes)
            bottom.fill_between(
                rounds, base, top_of, step="mid", label=text, color=colour, hatch=hatch,
                edgecolor=edge, linewidth=0.0 if not hatch else 0.5,
            )  # fmt: skip
        base = top_of
    bottom.set_ylim(0, max(max(base, default=0), 1) * 1.1)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))  # participants are counted
    bottom.set_xlabel("round")
    bottom.set_ylabel("participants")
    bottom.grid(alpha=0.3)
    if any(base):
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.tight_layout()
    return fig


def _prior_point(result: AuditResult) -> tuple[int, float] | None:
    """(the prior ledger's last round, its epsilon): the point this file's curve starts
    from, or None without a prior ledger or when that epsilon or round plots nowhere."""
    number, epsilon = result.prior_last_round, result.prior_epsilon
    if not result.prior_rows or not isinstance(number, int) or isinstance(number, bool):
        return None
    if abs(number) > _PLOTTED_ROUNDS or epsilon is None or not _finite(epsilon):
        return None
    return number, float(epsilon)


def _as_float(value: Any) -> float | None:
    """An epsilon as a float (``"inf"`` and an integer too large for a float are
    infinite); None for anything that is no number."""
    if value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _finite(value: int | float) -> bool:
    """Finite as a float (an integer too large for one is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _plot(result: AuditResult, budget: float | None = None) -> bytes | None:
    fig = _figure(result, budget)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # the figure's own layout (tight_layout in _figure fits both legends beside the
    # axes), not bbox_inches="tight": that draws the figure twice to measure it, about
    # 0.3 s of the report's 0.7 s for the same picture (tests/ledger/test_report_plot_layout.py)
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _prior_held(result: AuditResult) -> str:
    """The rows line's note of the rounds the prior ledger holds: the table and the
    count are this file's only, and a note further up was all that said the epsilon
    covers more (review 2026-12-05)."""
    where = result.prior_rounds()
    if where is None:
        return ""
    return (
        f"; the earlier {where} are not listed here but counted in every epsilon (replayed first)"
    )


def _shared_held(result: AuditResult) -> str:
    """The rows line's note of this file's rows the prior ledger holds too (an archive
    copied after this file was pruned to a later row), named as verify's note names
    them; empty without any.

    Why: those rows are read once, as the prior ledger's, so the count and the table
    leave them out, and "rows: 2" read as all this file holds (review 2026-12-05)."""
    count, last = result.chain.shared, result.chain.offset
    if not count:
        return ""
    span = (
        f"row {last} of this file is"
        if count == 1
        else f"rows {last - count + 1}-{last} of this file are"
    )
    return (
        f" (and {count} more in this file, shared: {span} in the prior ledger too, byte "
        "for byte, and read once, as the prior ledger's)"
    )


def _rounds_covered(result: AuditResult, own: int) -> str:
    """`` (rounds 1-6: 3 rows of this ledger after rounds 1-3 ... of the prior ledger)``:
    how many rounds the epsilon covers and where they are; empty without a prior."""
    where = result.prior_rounds()
    if where is None:
        return ""
    return f" (of {own + result.prior_rows} rows: {own} of this ledger after {where})"


def _cap(result: AuditResult, budget: float | None, spent: Any, *, configured: bool) -> str:
    """What the budget line says of ``spent`` against the config's ``budget``: within
    it, above it, not comparable, or, with no budget, why: no ``--config`` (how to
    compare it) or a config (``configured``) whose ``[dp]`` sets none.

    Why ``configured``: a config without ``epsilon_budget`` read "give `--config` to
    compare it", asking the auditor for the flag they had given."""
    if budget is None and configured:
        return " (the config sets no epsilon_budget to compare it with)"
    if budget is None:
        return " (give `--config` to compare it with the federation's epsilon_budget)"
    spent_value = _as_float(spent)
    # the figure verify held to the budget: the unamplified charge where the claim
    # credits amplification by sampling (a claim within it can overspend it); the
    # last claim where verify stopped before the last row
    held = spent_value
    if result.budget_epsilon is not None:
        held = max(result.budget_epsilon, -math.inf if spent_value is None else spent_value)
    unamplified = (
        ""
        if held is None or spent_value is None or not held > spent_value * (1 + 1e-6)
        else f" (unamplified: epsilon {_eps(held)})"
    )
    allowed = _param_at(budget, 6, lower=True)  # as verify shows it: never more
    # no tolerance: anything above the cap is above it (a 1e-9 relative slack
    # read "epsilon = 4.090 of a budget of 4.08923: within it"), NaN included
    if held is not None and not held <= budget:
        return f" of a budget of {allowed}: **ABOVE THE BUDGET**{unamplified}"
    if spent is not None and spent_value is None:  # a failed ledger's, as recorded
        return f" of a budget of {allowed}: not comparable (the epsilon is no number)"
    if result.excluded_rounds is not None:  # the federation's total is larger
        return (
            f" of a budget of {allowed}: not comparable ({result.excluded_rounds} are "
            "not in this ledger; the federation's epsilon includes them)"
        )
    return f" of a budget of {allowed}: within it{unamplified}"


def _ledger_dp(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The DP block that describes the ledger (its last; one ledger is one mechanism)."""
    return next((e["dp"] for e in reversed(rows) if isinstance(e.get("dp"), dict)), {})


def _values(items: list[float], *, lower: bool = False) -> str:
    """Distinct values in order of first use: ``1.1`` or ``1.1, 0.9``, each at 6
    significant digits rounded up (``lower``: down, for noise multipliers)."""
    seen: list[float] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return ", ".join(_param_at(v, 6, lower=lower) for v in seen) or "-"


def _branch_table(rows: list[dict[str, Any]], result: AuditResult) -> list[str]:
    """Record-level DP: each branch's DP-SGD accounting as its latest report states it,
    with the epsilon the verifier re-derived from that history."""
    latest: dict[str, tuple[Any, dict[str, Any]]] = {}
    for e in rows:
        reports = _object(_object(e.get("dp")).get("client_reports"))
        for identity, report in reports.items():
            latest[identity] = (e.get("round"), _object(report))
    if not latest:
        return ["No branch has reported its DP-SGD accounting yet."]
    lines = [
        "| branch (identity hash) | unit | accountant | δ | noise multiplier(s) | sample "
        "rate(s) | steps | clip (per item) | ε claimed | ε re-derived | last report |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for identity, (number, report) in sorted(latest.items()):
        history = _history(report.get("history"))
        clip = report.get("max_grad_norm")
        lines.append(
            f"| {_code(identity[:12])} | {_cell(report.get('unit', 'record'))} | "
            f"{_cell(report.get('accountant', '-'))} | {_delta(report.get('delta', '-'))} | "
            f"{_values([z for z, _, _ in history], lower=True)} | "
            f"{_values([q for _, q, _ in history])} | "
            f"{sum(n for _, _, n in history)} | {_param_at(clip, 6)} | "
            f"{_eps(report.get('epsilon'))} | {_eps(result.record_level.get(identity))} | "
            f"round {number} |"
        )
    return lines


def _history(value: Any) -> list[tuple[float, float, int]]:
    """A branch report's DP-SGD history as recorded; the steps that are not
    ``[z, q, steps]`` numbers are left out (a failed ledger's rows are shown as recorded)."""
    steps = []
    for step in value if isinstance(value, list) else []:
        if isinstance(step, list) and len(step) == 3:
            z, q, n = step
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (z, q, n)):
                if _finite(z) and _finite(q) and isinstance(n, int) and 0 <= n < 2**53:
                    steps.append((float(z), float(q), n))
    return steps


def _branch_accounted(dp: dict[str, Any]) -> bool:
    """Record-level DP-SGD: each branch accounts its own epsilon (the ledger keeps their
    reports); record-level *distributed* DP is accounted by the server, like client level."""
    return dp.get("unit") == "record" and dp.get("mechanism") != "distributed"


#: how the verifier re-derives a distributed discrete Gaussian ledger's epsilon, and the
#: *noise shares* column it is derived from (the rows' ``noise_contributors``)
_DDG_EPSILON_LINE = (
    "- *noise shares* is the number of honest noise shares the round's sum held, as its "
    "row records it (noise_contributors: the round's survivors minus the assumed "
    "colluders; - for a round that released nothing). *cumulative ε* is re-derived by "
    "the verifier from the distributed discrete Gaussian's RDP bound at those shares, "
    "every round charged at the fewest of any round so far (never more than the shares "
    "really in a sum)."
)

#: the guide's last word on what the ledger proves: with DP, that the noise is not
#: among it; without DP there was no noise to prove, so it is not mentioned
_PROVES_DP = (
    "- The ledger proves what was recorded and that nobody without the key changed it; it "
    "cannot prove the noise was really drawn (see docs/audit.md). Re-check it with "
    "`secagg audit verify LEDGER --pubkey KEY`."
)
_PROVES_NO_DP = (
    "- The ledger proves what was recorded and that nobody without the key changed it. "
    "Re-check it with `secagg audit verify LEDGER --pubkey KEY`."
)


def _reading_guide(dp: dict[str, Any], *, plotted: bool = True) -> list[str]:
    """ "How to read this": what the table's columns mean for the ledger's mechanism
    (and the plot's labels, when there is a plot to read). Without a DP block (``dp``
    empty) the rounds were released without differential privacy: the guide says so
    and that no epsilon is claimed, and says nothing of noise, which was never drawn
    (it said the auditor "cannot prove the noise was really drawn")."""
    unit, mechanism = dp.get("unit"), dp.get("mechanism")
    if unit == "record" and mechanism == "distributed":
        lines = [
            "- Record-level DP gradient descent with the noise added once, inside the secure "
            "sum: each branch sends its customers' clipped gradients, summed, with its own "
            "discrete Gaussian noise share (Kairouz, Liu and Steinke 2021); the server never "
            f"sees an un-noised sum. Guarantee: {_prose(dp.get('adjacency'), 'one record')}.",
            "- *clip* is what one protected unit can move a branch's vector by (the noise's "
            "sensitivity, the ledger's record_clip); *noise std* is the total noise the "
            "shares are sized to add when every expected branch's share arrives (noise "
            "multiplier x that clip; a round with fewer shares in its sum has less, which "
            "the ε column counts). The bound on a branch's whole vector (the ledger's clip) "
            "sizes the ring only.",
            "- *sample rate* is 1.0: every unit is in every step, no amplification claimed.",
            _DDG_EPSILON_LINE,
        ]
    elif unit == "record":
        lines = [
            "- Each branch runs DP-SGD on its own records; the server adds no noise. The "
            "guarantee is record-level: "
            f"{_prose(dp.get('adjacency'), 'add/remove one record of a branch')}.",
            "- *cumulative ε* is the worst branch's record-level ε after that round (branches "
            "hold disjoint records, so their guarantees compose in parallel).",
            "- The branch table gives each branch's DP-SGD accounting from its latest report: "
            "noise multiplier(s), Poisson sample rate(s) and steps, with the per-item clip; "
            "the steps include any release charged to the branch before training (a "
            "simulation's noised feature statistics: one step at rate 1), which the "
            "simulator's report lists apart. "
            "*ε re-derived* is what the verifier computed from that history with the "
            "branch's accountant (Opacus); *ε claimed* is what the branch reported.",
            "- *branches reporting* counts the branches whose accounting arrived with that "
            "round. The clip that bounds a branch's update in the secure sum is not a DP "
            "parameter here and is not shown.",
        ]
    elif mechanism == "distributed":
        lines = [
            "- Client-level DP from the clients' own discrete Gaussian noise shares (Kairouz, "
            "Liu and Steinke 2021): the server never sees an un-noised sum. Guarantee: "
            f"{_prose(dp.get('adjacency'), 'zero-out one client')}.",
            "- *noise std* is the total noise the shares are sized to add when every "
            "expected client's share arrives (noise multiplier x clip; a round with fewer "
            "shares has less, which the ε column counts); *clip* bounds each client's "
            "update (L2).",
            "- *sample rate* is 1.0 because no amplification by sampling is claimed: the "
            "untrusted server draws the cohort and sees it.",
            _DDG_EPSILON_LINE,
        ]
    elif unit == "client":
        lines = [
            "- Client-level DP-FedAvg: the server adds Gaussian noise to the sum of the "
            "clipped updates. Guarantee: "
            f"{_prose(dp.get('adjacency'), 'add/remove one client')}.",
            "- *clip* bounds each client's update (L2); *noise std* is the Gaussian noise on "
            "the sum (noise multiplier x clip); *sample rate* is the rate the accountant "
            "credits: 1.0, no amplification by sampling, since a round's members see one "
            "another. Each client is charged for the rounds it was in (the rows list their "
            "participants' identity hashes, dp.composition = per_client) and ε is the most "
            "charged client's.",
            "- *cumulative ε* is re-derived by the verifier from each round's recorded noise "
            "multiplier, participants and sample rate, through the recorded accountant, at "
            "the δ shown.",
        ]
    else:
        lines = [
            "- No round carries a DP block: these rounds were released without differential "
            "privacy: no epsilon is claimed and no privacy guarantee holds. The ledger "
            "records what was released; the table's privacy columns read - (there is "
            "nothing to show)."
        ]
    plot = (
        [
            "- In the plot, a round aborted before it ran (too few clients sampled or "
            "connected) is drawn apart from a round whose selected clients dropped out."
        ]
        if plotted
        else []
    )
    return [
        *lines,
        "- *dropped per phase* counts participants that stopped answering in that protocol "
        "phase; their data is not in that round's sum unless they dropped at unmasking.",
        *plot,
        "- Participants are listed in the ledger only as salted hashes; the operator holds "
        "the salt and can show which hash is which branch.",
        _PROVES_DP if dp else _PROVES_NO_DP,
    ]


#: the status names at most this many rounds in one list (the table lists every one)
_LISTED = 8


def _per_client_bound(result: AuditResult) -> str:
    """The paragraph of a per-client ledger: who took part is the server's word, and
    the epsilon of every round charged to every client, which no rewriting of the rows'
    identity hashes moves (``audit verify``'s ``per client:`` line); "" for any other.

    Why: the claim is the most charged client's, from the hashes the rows list, and the
    key holder writes them: a client in all 4 rounds re-signed as in 2 read as the
    epsilon of 2 rounds. ``audit verify`` printed the bound beside it; the report, which
    a compliance officer may read alone, did not (hostile review, 2026-12-06)."""
    summary = result.per_client or {}
    every = summary.get("every_round_epsilon")
    if every is None:
        return ""
    return (
        f"\n\nWho took part is the server's word: the rows charge {summary.get('clients')} "
        "clients, each for the rounds it was in, and the epsilon spent is the most charged "
        f"one's ({summary.get('most_rounds')} rounds); every client charged for every round "
        f"spends epsilon {_eps(every)} {_at_delta(result.claim_delta())}, the figure no "
        "rewriting of the identity hashes moves."
    )


def _numbers(numbers: list[Any]) -> str:
    """``1, 2, 3`` or, for many, ``1, 2, ..., 100000 (100000 in all)``. Why: the status
    of a 10^5-row ledger without DP named every round, a 600 kB paragraph that
    ``audit report`` also printed to the terminal as its verdict line."""
    shown = [str(n) for n in numbers]
    if len(shown) <= _LISTED:
        return ", ".join(shown)
    return ", ".join([*shown[: _LISTED - 1], "...", shown[-1]]) + f" ({len(shown)} in all)"


def build_report(
    path: str | Path,
    public_key: bytes | None = None,
    expected: ExpectedPrivacy | None = None,
    *,
    first_round: int = 1,
    prior_ledger: str | Path | None = None,
    expect_head: str | None = None,
) -> tuple[str, bytes | None]:
    """The markdown text and the PNG of the budget and participation; ``expected``: the
    federation's config, which every DP row is then checked against (and whose
    ``epsilon_budget`` the report compares with and draws). Without ``public_key`` a
    consistent ledger is UNVERIFIED: it was checked only against the key it embeds.
    ``first_round``: the round the ledger begins at (:func:`verify_ledger`); above 1 the
    epsilon spent covers the rounds from it on only and is not compared with a budget
    (the federation's total is larger, so "within it" would flatter). ``prior_ledger``:
    the ledger of the earlier rounds, replayed first (:func:`verify_ledger`): the
    epsilon shown is then the federation's, its rounds included. ``expect_head``: a head
    the ledger must still hold (:func:`verify_ledger`); the only way a copy read without
    its log reports as verified."""
    result = verify_ledger(
        path,
        public_key,
        expect_head,
        expected=expected,
        first_round=first_round,
        prior_ledger=prior_ledger,
    )
    rows = _entries(result)
    # without DP there is no epsilon to follow from anything: say so, not a vacuous check
    claims = (
        "its epsilon follows from the recorded mechanism"
        if result.dp_claimed
        else "no row claims an epsilon"
    )
    if not result.ok:
        status = (
            f"**FAILED**: {_text(str(result.first_failure))}. Every row is shown as recorded: "
            "none from the failing row on can be trusted, nor any total or budget derived "
            "from them."
        )
    elif public_key is None:
        status = (
            "**UNVERIFIED** (no `--pubkey`): every row is linked, signed by the key the ledger "
            f"itself embeds and {claims}, but anyone can rewrite a ledger and re-sign it with "
            "a key of their own. Give the operator's public key with `--pubkey`."
        )
    else:
        status = f"**VERIFIED**: every row is linked, signed by the ledger key and {claims}."
    if result.ok and expected is not None:
        status += (
            f" {result.config_rows_line()} the federation config's delta, "
            "unit, mechanism and sampling."
        )
    if result.ok and result.seeded:
        rounds = _numbers([number for _, number in result.seeded])
        status += (
            f"\n\n**NOT PRIVATE**: the DP noise of round(s) {rounds} was seeded (a "
            "simulation/replay): whoever knows the seed can remove it, so their epsilon is "
            "not a privacy guarantee."
        )
    if result.ok and result.released_without_dp:
        rounds = _numbers([number for _, number in result.unnoised])
        status += (
            "\n\n**NOT PRIVATE**: released without differential privacy: no epsilon is "
            f"claimed. No row carries a DP block: round(s) {rounds} completed and released "
            "without noise, so no privacy guarantee holds."
        )
    elif result.ok and result.unnoised:
        rounds = _numbers([number for _, number in result.unnoised])
        status += (
            f"\n\n**NOT PRIVATE**: round(s) {rounds} completed without DP (no DP block): "
            "they released without noise, so epsilon is infinite from the first of them on."
        )
    if result.ok and result.noiseless:  # a DP block, but z = 0: epsilon infinite
        (_, number), *_ = result.noiseless
        status += (
            f"\n\n**NOT PRIVATE**: round {number} released with a DP block but no noise "
            "(noise multiplier 0), so epsilon is infinite from it on."
        )
    if result.ok and result.amplified:  # the claim rests on what the engine no longer credits
        status += f"\n\n**NOT PRIVATE**: {_text(result.not_private_reasons()[-1])}."
    if result.ok:
        # what the verdict rests on: the recorded noise multipliers without a config,
        # the branches' DP-SGD histories, who took part in a per-client ledger
        for line in result.ledgers_word():
            status += f"\n\nOn the ledger's word: {_text(line)}."
        status += _per_client_bound(result)
    for note in result.notes:
        status += f"\n\nNote: {_text(note)}."
    if result.rebuilt:
        count = len(result.rebuilt)
        status += (
            f"\n\nNote: {count} row{'' if count == 1 else 's'} rebuilt after the fact "
            "(marked *rebuilt* in the table): see *Rows rebuilt after the fact* for why, "
            "from what, and which fields are not the round's own record."
        )
    key = result.chain.public_key.hex()
    never_ran = sum(_never_ran(e) for e in rows)
    lines = [
        f"# Privacy ledger report: {Path(path).name}",
        "",
        status,
        "",
        f"- ledger public key (Ed25519): `{key}` ({result.chain.key_source})",
        "- head (keep it; `secagg audit verify --expect-head` it next time to detect a "
        f"rollback): `{result.chain.head or '-'}`",
        f"- rows: {len(rows)}{_shared_held(result)}; complete rounds: "
        f"{sum(e.get('status') == 'complete' for e in rows)}; aborted: "
        f"{sum(e.get('status') == 'aborted' for e in rows)}"
        + (f" ({never_ran} before they ran: too few sampled or connected)" if never_ran else "")
        + _prior_held(result),
    ]
    if result.ok and result.anchor is not None:  # as ``audit verify`` says it
        grown = f"; {result.anchor.grown_by} rows appended since" if result.anchor.grown_by else ""
        lines.append(f"- expected head `{expect_head}` is in the ledger{grown}")
    # a ledger begun afresh with no round yet: the prior ledger's rows describe the
    # federation (it read "No round carries a DP block ... released without DP")
    dp = _ledger_dp(rows) or (result.prior_dp or {})
    record = _branch_accounted(dp)
    # the distributed mechanism's epsilon follows from each round's honest noise shares:
    # show them (central and DP-SGD ledgers sum none, so they get no column of dashes)
    shares = not record and dp.get("mechanism") == "distributed"
    budget = None if expected is None else expected.epsilon_budget
    if rows:
        seq, last = next(
            (r.seq, r.entry) for r in reversed(result.chain.rows) if r.entry is rows[-1]
        )
        spent = _spent(result, seq, last)
        cap = _cap(result, budget, spent, configured=expected is not None)
        if record:
            names = sorted(
                {
                    _cell(_object(r).get("accountant"))
                    for e in rows
                    for r in _object(_object(e.get("dp")).get("client_reports")).values()
                }
            )
            accountant = f"each branch's own ({', '.join(names) or '-'})"
            mechanism = "DP-SGD in each branch"
        else:
            accountant = _cell(dp.get("accountant", "-"))
            mechanism = _cell(dp.get("mechanism", "none"))
        if result.dp_claimed and not result.ok and "ABOVE THE BUDGET" not in cap:
            # the claim as recorded, judged against nothing: "within it" beside a
            # FAILED verdict read as a checked spend (hostile review, 2026-12-06); an
            # overspend found (by the claim or its replay) is still said: the safe side
            spent_line = (
                "- budget spent: not verified (the ledger FAILED): the last row claims "
                f"epsilon = {_eps(spent)} {_at_delta(result.claim_delta())}, as recorded"
                + (
                    ""
                    if budget is None
                    else f"; not compared with the budget of {_param_at(budget, 6, lower=True)}"
                )
            )
        elif result.dp_claimed:
            spent_line = (
                f"- budget spent: epsilon = {_eps(spent)}"
                + (" (worst branch)" if record else "")
                + (
                    ""
                    if result.excluded_rounds is None
                    else f" (rounds {result.first_round} on only: --first-round)"
                )
                + _rounds_covered(result, len(rows))
                + f" {_at_delta(result.claim_delta())}{cap}"
            )
        else:  # "epsilon = - at delta = None" read as a number nobody could find
            spent_line = (
                "- budget spent: none: released without differential privacy (no row claims "
                "an epsilon or a delta)"
            )
        lines += [
            f"- privacy unit: {_cell(dp.get('unit', 'none'))}; mechanism: {mechanism}; "
            f"accountant: {accountant}",
            spent_line,
            "",
            "## What each round released and what it cost",
            "",
        ]
        if record:
            lines += [
                "| round | status | finished (UTC) | backend | selected | contributed | "
                "dropped per phase | branches reporting | cumulative ε (worst branch) | "
                "model digest |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
        else:
            lines += [
                "| round | status | finished (UTC) | backend | selected | contributed | dropped "
                "per phase | clip | noise std | "
                + ("noise shares | " if shares else "")
                + "sample rate | cumulative ε | model digest |",
                "|---" * (13 if shares else 12) + "|",
            ]
        rebuilt_seqs = {seq for seq, _, _ in result.rebuilt}
        for chained in result.chain.rows:
            if not isinstance(chained.entry, dict):  # a failed ledger's row, as recorded
                lines.append(
                    f"| - | row {chained.seq} is not a JSON object: {_cell(chained.entry)} |"
                )
                continue
            e = chained.entry
            row_dp = _object(e.get("dp"))
            backend = _object(e.get("backend"))
            name = _cell(backend.get("name", "-"))
            if "k" in backend:
                name += " " + _cell(
                    f"(k={backend['k']}, t={backend.get('t')}, {backend.get('bits')} bits)"
                )
            drops = (
                ", ".join(
                    f"{_cell(k)}: {_cell(v)}" for k, v in _object(e.get("dropouts")).items() if v
                )
                or "-"
            )
            reason = f": {_cell(e['reason'])}" if e.get("reason") else ""
            participants = _object(e.get("participants"))
            start = (
                f"| {_cell(e.get('round'))} | {_cell(e.get('status'))}{reason}"
                + (" (rebuilt)" if chained.seq in rebuilt_seqs else "")
                + f" | {_when(e.get('finished_at'))} | {name} | "
                f"{_cell(participants.get('count'))} | {_cell(e.get('contributed'))} | {drops} | "
            )
            if record:
                middle = f"{len(_object(row_dp.get('client_reports')))} | "
            else:
                std = row_dp.get("noise_std")
                clip = row_dp.get("record_clip", row_dp.get("clip"))  # the sensitivity
                # the rate the epsilon was charged at: a sampled row written before
                # 2026-12-03 at its published cohort's share, above the design rate
                rate = row_dp.get("charged_rate", row_dp.get("sample_rate"))
                summed = row_dp.get("noise_contributors")  # honest shares in this sum
                middle = (
                    f"{_param(clip)} | {_param(std, lower=True)} | "
                    + (f"{_cell(summed)} | " if shares else "")
                    + f"{_param(rate)} | "
                )
            lines.append(
                start
                + middle
                + f"{_eps(_spent(result, chained.seq, e))} | "
                + f"{_code(str(e.get('model_sha256', '-'))[:16])} |"
            )
        if record:
            lines += ["", "## Each branch's DP-SGD accounting", ""]
            lines += _branch_table(rows, result)
        if result.rebuilt:
            lines += ["", "## Rows rebuilt after the fact", ""]
            lines += [f"- {_text(line)}." for line in result.rebuilt_lines()]
    elif result.prior_rows and result.dp_claimed and result.ok:
        # no round here yet: the federation's epsilon is the prior ledger's (as verify
        # prints it), not absent; rounded up, and held to the budget like any other
        lines += [
            f"- privacy unit: {_cell(dp.get('unit', 'none'))}; mechanism: "
            f"{_cell(dp.get('mechanism', 'none'))}; accountant: {_cell(dp.get('accountant', '-'))}",
            f"- budget spent: epsilon = {_eps(result.prior_epsilon)} (the prior ledger's "
            f"{result.prior_rows} rows: this ledger has no round yet) "
            + _at_delta(result.claim_delta())
            + _cap(result, budget, result.prior_epsilon, configured=expected is not None),
        ]
    png = _plot(result, budget)  # None when no row claims a finite epsilon
    lines += ["", "## How to read this", "", *_reading_guide(dp, plotted=png is not None)]
    if png is not None:  # link only the plot write_report_files will write
        lines += ["", "![budget and participation](ledger-report.png)"]
    lines.append("")
    return "\n".join(lines), png


def write_report_files(out_dir: str | Path, text: str, png: bytes | None) -> list[Path]:
    """Write a built report as ``ledger-report.md``, ``.png`` (if any) and ``.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "ledger-report.md"]
    written[0].write_text(text)
    if png is not None:
        (out / "ledger-report.png").write_bytes(png)
        written.append(out / "ledger-report.png")
    written.append(out / "ledger-report.html")
    written[-1].write_text(_html(text, png))
    return written


def write_report(
    path: str | Path,
    out_dir: str | Path,
    public_key: bytes | None = None,
    expected: ExpectedPrivacy | None = None,
) -> list[Path]:
    """Write ``ledger-report.md``, ``ledger-report.html`` and ``ledger-report.png``."""
    text, png = build_report(path, public_key, expected)
    return write_report_files(out_dir, text, png)


def _table_cells(line: str) -> list[str]:
    """A markdown table row's cells as a markdown renderer splits them: a backslash
    escapes the character after it, any other ``|`` ends a cell. The escapes are kept
    (:func:`_inline_html` reads them).

    Why: the page split on every ``|``, the escaped ones of a recorded value included:
    a reason ``x | 0.001`` put ``0.001`` in the *finished* column and moved every later
    figure one column right (hostile review, 2026-12-06)."""
    cells: list[str] = []
    current: list[str] = []
    index = 0
    body = line.strip()
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            current.append(body[index : index + 2])
            index += 2
            continue
        if char == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    cells.append("".join(current).strip())
    # the text before the leading pipe and after the trailing one is no cell
    return cells[1:-1] if len(cells) > 1 else cells


def _inline_html(text: str) -> str:
    """The report's inline markdown as HTML: ``\\X`` is the character X, ``**`` strong,
    a backtick pair a code span (backslashes inside it are plain); every character
    HTML-escaped. The escapes of :func:`_cell` and :func:`_prose` are read back, so the
    page shows a recorded value as written, never as markup."""
    out: list[str] = []
    plain: list[str] = []
    strong = False
    index = 0

    def flush() -> None:
        out.append(html.escape("".join(plain)))
        plain.clear()

    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and not text[index + 1].isalnum():
            plain.append(text[index + 1])
            index += 2
        elif text.startswith("**", index):
            flush()
            out.append("</strong>" if strong else "<strong>")
            strong = not strong
            index += 2
        elif char == "`" and (end := text.find("`", index + 1)) != -1:
            flush()
            out.append(f"<code>{html.escape(text[index + 1 : end])}</code>")
            index = end + 1
        else:
            plain.append(char)
            index += 1
    flush()
    if strong:
        out.append("</strong>")
    return "".join(out)


def plain_text(markdown: str) -> str:
    """A line of the report as plain text (``report``'s terminal verdict): escapes read
    back, ``**`` and code-span backticks dropped."""
    return html.unescape(re.sub(r"</?(?:strong|code)>", "", _inline_html(markdown)))


def _html(markdown: str, png: bytes | None) -> str:
    """A self-contained HTML page (the plot inlined) from the report's simple markdown."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if not table:
            return
        head, *rest = table
        body.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
        body.extend("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rest)
        body.append("</table>")
        table.clear()

    inline = _inline_html
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = _table_cells(line)
            if not all(set(c) <= {"-"} for c in cells):
                table.append([inline(c) for c in cells])
            continue
        flush_table()
        if line.startswith("# "):
            body.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("![") and png is not None:
            data = base64.b64encode(png).decode()
            body.append(f'<img alt="budget and participation" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush_table()
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #999;"
        "padding:3px 6px}code{font-size:90%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Privacy ledger report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
