"""The benchmark modules' own parsers (``python -m secagg.apps.bench.masking`` and
``python -m secagg.apps.bench.backends``) take what ``secagg bench masking`` and
``secagg bench ckks`` take: a count or share out of range is one usage line naming the
flag, exit 2, before any round.

Why: both parsers took any int and float. ``--n 2`` ran a round of two clients (the
CLI refuses it: the sum reveals each one's input to the other), and ``--d 0``,
``--dropout nan`` / ``1``, ``--repeats 0`` and a grid no round can run (``--n 3
--dropout 0.9``) were tracebacks (bench review, 2026-12-07). In process: the benchmark
itself is replaced, so nothing runs.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from secagg.apps.bench import backends, masking


@pytest.mark.parametrize(
    ("module", "args", "flag"),
    [
        (masking, ["--n", "2"], "--n"),
        (masking, ["--n", "1000001"], "--n"),
        (masking, ["--d", "0"], "--d"),
        (masking, ["--d", "100000001"], "--d"),
        (masking, ["--dropout", "nan"], "--dropout"),
        (masking, ["--dropout", "1"], "--dropout"),
        (masking, ["--dropout", "-0.1"], "--dropout"),
        (masking, ["--repeats", "0"], "--repeats"),
        (masking, ["--n", "3", "--dropout", "0.9", "--graph", "harary"], "--dropout"),
        (backends, ["--n", "2"], "--n"),
        (backends, ["--d", "0"], "--d"),
        (backends, ["--repeats", "1001"], "--repeats"),
    ],
)
def test_a_count_or_share_out_of_range_is_one_line_naming_the_flag(
    module: ModuleType,
    args: list[str],
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def nothing_runs(**kwargs: Any) -> dict[str, Any]:
        raise AssertionError(f"the benchmark ran with {args}")

    monkeypatch.setattr(module, "run_benchmark", nothing_runs)
    with pytest.raises(SystemExit) as stopped:
        module.main(["--quick", "--no-progress", *args])
    assert stopped.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    last = said.err.splitlines()[-1]
    assert ": error: argument " in last, last
    assert flag in last, last


@pytest.mark.parametrize("module", [masking, backends])
def test_the_bounds_take_their_ends(
    module: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(module, "run_benchmark", lambda **grid: seen.append(grid) or {})
    extra = ["--dropout", "0"] if module is masking else []
    module.main(["--quick", "--no-progress", "--n", "3", "--d", "1", "--repeats", "1000", *extra])
    module.main(["--quick", "--no-progress", "--n", "1000000", "--d", "100000000"])
    capsys.readouterr()
    assert [(g["ns"], g["ds"], g["repeats"]) for g in seen] == [
        ((3,), (1,), 1000),
        ((1_000_000,), (100_000_000,), 1),
    ]
