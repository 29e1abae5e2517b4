"""The report's plot is saved at the figure's own layout (``tight_layout``), not cropped
by ``bbox_inches="tight"``, and every legend still lies on the canvas.

Why: ``bbox_inches="tight"`` draws the figure an extra time to measure it, about 0.3 s
of a report's 0.7 s; ``tight_layout`` already fits the two legends beside the axes, so
the picture is the same (the PNG is then the figure's size, 1000 x 600 at 100 dpi).
"""

from __future__ import annotations

import io
from pathlib import Path

from _ledgers import central_client_rows, ledger_row, write_ledger

from secagg.ledger.report import _figure, _plot
from secagg.ledger.verify import AuditResult, verify_ledger

COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _result(tmp_path: Path) -> AuditResult:
    """Three charged rounds, then one aborted before it ran (the longest participation
    label: "sampled, round aborted before it ran (too few sampled or connected)") and one
    aborted after it started."""
    rows, epsilon = central_client_rows(COHORTS, 1.5, 1e-5)
    rows.append(
        ledger_row(
            4, None, epsilon, status="aborted", participants=("a",), contributed=0,
            reason="fewer than 2 clients sampled or connected",
        )
    )  # fmt: skip
    rows.append(
        ledger_row(
            5, None, epsilon, status="aborted", participants=("a", "b", "c"),
            contributed=0, reason="key holder unreachable",
        )
    )  # fmt: skip
    path, key = write_ledger(tmp_path / "layout.ledger", rows)
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    return result


def test_the_png_is_the_figures_size(tmp_path: Path) -> None:
    from PIL import Image

    png = _plot(_result(tmp_path), budget=6.0)
    assert png is not None
    assert Image.open(io.BytesIO(png)).size == (1000, 600)


def test_every_legend_lies_on_the_canvas(tmp_path: Path) -> None:
    """Saved without cropping, a legend past the figure's edge would be cut off: both lie
    within it, each label included."""
    import matplotlib.pyplot as plt

    fig = _figure(_result(tmp_path), budget=6.0)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        canvas = fig.bbox
        labels = []
        for axes in fig.axes:
            legend = axes.get_legend()
            box = legend.get_window_extent(renderer)
            assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1, (box, canvas)
            assert canvas.y0 <= box.y0 and box.y1 <= canvas.y1, (box, canvas)
            labels += [text.get_text() for text in legend.get_texts()]
        assert "epsilon_budget 6" in labels
        assert any("aborted before it ran" in label for label in labels)
        assert any("aborted after it started" in label for label in labels)
    finally:
        plt.close(fig)
