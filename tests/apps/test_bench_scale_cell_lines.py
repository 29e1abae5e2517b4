"""``secagg.apps.bench.scale``'s cell processes: their one JSON line is strict JSON, and
the module's own ``--dropout`` takes only what ``secagg bench scale --dropout`` takes.

Why: the cells printed their line with ``json.dumps``, and the module's parser took any
float: ``python -m secagg.apps.bench.scale --cell inprocess --n 10 --d 10 --dropout
nan`` ran a round (7 of 10 clients gone) and printed ``"dropout": NaN``, a token strict
JSON readers refuse (``--dropout inf`` dropped every client). The dropout is now refused
at parsing, naming the flag, and the line goes out through the CLI's strict encoder
(``apps.json_output.dumps``) and is read back with its strict reader (``loads``).
In process, no round run: the cell itself is replaced where a line is checked.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from secagg.apps.bench import scale
from secagg.apps.json_output import dumps, loads


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.1", "0.51", "lots"])
def test_the_cells_dropout_out_of_range_is_refused_naming_the_flag(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_round(*args: Any) -> dict[str, Any]:
        raise AssertionError(f"a cell ran with --dropout {value}: {args}")

    monkeypatch.setattr(scale, "run_cell", no_round)
    with pytest.raises(SystemExit) as stopped:
        scale.main(["--cell", "inprocess", "--n", "10", "--d", "10", "--dropout", value])
    assert stopped.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert "--dropout" in said.err.splitlines()[-1], said.err


def test_a_cells_dropout_in_range_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    monkeypatch.setattr(scale, "run_cell", lambda *a: seen.append(a[3]) or {"ok": 1})
    for value in ("0", "0.05", "0.5"):
        scale.main(["--cell", "inprocess", "--n", "10", "--d", "10", "--dropout", value])
    assert seen == [0.0, 0.05, 0.5]


def test_a_cells_line_is_strict_json_whatever_it_holds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A figure a later change makes non-finite (a ratio over a zero time) leaves as
    ``"inf"`` / ``null``, one line, never a bare ``Infinity`` or ``NaN``."""
    cell = {"n": 10, "speedup": math.inf, "ratio": -math.inf, "missing": math.nan, "x": [1.5]}
    monkeypatch.setattr(scale, "run_cell", lambda *a: cell)
    scale.main(["--cell", "inprocess", "--n", "10", "--d", "10"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert loads(lines[-1]) == {
        "n": 10,
        "speedup": "inf",
        "ratio": "-inf",
        "missing": None,
        "x": [1.5],
    }


def test_the_strict_reader_refuses_the_bare_tokens_and_reads_dumps() -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="not strict JSON"):
            loads(f'{{"a": {token}}}')
    payload = {"a": 0.1, "b": [1, 2], "c": "inf", "d": None}
    assert loads(dumps(payload, indent=None)) == payload


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--cell", "inprocess", "--d", "10"], "--n"),  # no --n: a TypeError traceback
        (["--cell", "ray", "--n", "5", "--n", "6"], "--n"),  # the second n was ignored
        (["--unmask", "--workers", "1"], "--n"),
        (["--cell", "inprocess", "--n", "10", "--d", "0"], "--d"),  # ran and said d = 10 000
        (["--cell", "inprocess", "--n", "10", "--d", "-5"], "--d"),  # ConfigurationError
        (["--cell", "inprocess", "--n", "2", "--d", "10"], "--n"),
        (["--cell", "inprocess", "--n", "1000001", "--d", "10"], "--n"),
        (["--cell", "inprocess", "--n", "10", "--d", "100000001"], "--d"),
        (["--unmask", "--n", "60", "--workers", "-1"], "--workers"),  # RayUnavailable
        (["--unmask", "--n", "60", "--workers", "10001"], "--workers"),
        (["--unmask", "--n", "60", "--unmask-d", "0"], "--unmask-d"),  # an empty vector
        (["--quick", "--n", "0"], "--n"),  # a traceback after a whole cell
        (["--quick", "--d", "ten"], "--d"),
    ],
)
def test_the_modules_counts_are_refused_out_of_range_naming_the_flag(
    args: list[str], flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m secagg.apps.bench.scale`` takes what ``secagg bench scale`` takes:
    a count out of range (or a cell without its one n) is one usage line, exit 2,
    before any round, Ray start or cell process."""

    def nothing_runs(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError(f"work started: {args} {kwargs}")

    for name in ("run_cell", "run_unmask", "run_benchmark"):
        monkeypatch.setattr(scale, name, nothing_runs)
    with pytest.raises(SystemExit) as stopped:
        scale.main(args)
    assert stopped.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert flag in said.err.splitlines()[-1], said.err


def test_the_modules_counts_in_range_reach_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds take their ends, and an unmasking cell without ``--unmask-d`` measures
    the default lengths (it was a TypeError traceback)."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(scale, "run_cell", lambda *a: calls.append(a) or {})
    monkeypatch.setattr(scale, "run_unmask", lambda *a: calls.append(a) or {})
    scale.main(["--cell", "inprocess", "--n", "3", "--d", "1", "--workers", "10000"])
    scale.main(["--cell", "ray", "--n", "1000000", "--d", "100000000", "--workers", "1"])
    scale.main(["--unmask", "--n", "60", "--workers", "2"])
    assert calls == [
        ("inprocess", 3, 1, scale.DROPOUT, scale.SEED, 10_000),
        ("ray", 1_000_000, 100_000_000, scale.DROPOUT, scale.SEED, 1),
        (60, scale.UNMASK_DS, scale.DROPOUT, 2),
    ]
