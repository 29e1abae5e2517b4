"""``secagg bench ... --out FILE``: the JSON goes to FILE, one line on stdout says where.

Review (2026-12-05): with ``--out`` the commands printed the whole JSON (hundreds of
lines for a grid) on the terminal as well as writing it to the file. Without
``--out`` the JSON is still stdout's (pipelines read it there), and the scripts
(``python -m secagg.apps.bench.masking``, ``benchmarks/*.py``) still print it with
``--out`` too (tests/apps/test_bench_masking.py, tests/integration/test_bench_grpc.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _masking_bench import cheap_masking_measurements
from click.testing import CliRunner

from secagg.apps.bench import emit, headline
from secagg.apps.cli import main

DP = ["bench", "dp", "--d", "2048", "--runs", "1"]
MASKING = ["bench", "masking", "--n", "5", "--d", "500", "--dropout", "0", "--graph", "harary"]


@pytest.mark.parametrize("args", [DP, MASKING], ids=["dp", "masking"])
def test_with_out_the_json_is_in_the_file_and_stdout_says_where(
    args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    with cheap_masking_measurements():  # the masking cell's floors over a few MiB
        result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    name = report["benchmark"]
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \({name}: 1 cell in \d+\.\d s.*\)", lines[0])


def test_without_out_stdout_is_the_json() -> None:
    result = CliRunner().invoke(main, DP)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["benchmark"] == "dp"


def test_the_scripts_keep_the_json_on_stdout_with_out(tmp_path: Path) -> None:
    out, said = tmp_path / "r.json", []
    emit({"benchmark": "x", "cells": []}, str(out), said.append)
    assert [json.loads(said[0])] == [json.loads(out.read_text(encoding="utf-8"))]


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            {"benchmark": "masking", "seconds": 12.34, "cells": [{}, {}], "targets": []},
            "masking: 2 cells in 12.3 s",
        ),
        (
            {
                "benchmark": "backends",
                "seconds": 3.0,
                "cells": [{}],
                "targets": [{"pass": True}, {"pass": False}, {"pass": None}],
            },
            "backends: 1 cell in 3.0 s; targets met: 1 of 3",
        ),
        (
            {
                "benchmark": "masking",
                "seconds": 60.0,
                "cells": [{}],
                "targets": [
                    {"pass": False, "least_reachable": {"value": 1.34, "reachable": False}},
                    {"pass": False, "least_reachable": {"value": 1.2, "reachable": True}},
                    {"pass": True},
                ],
            },
            "masking: 1 cell in 60.0 s; targets met: 1 of 3 "
            "(1 out of reach of any unfused implementation here)",
        ),
        ({"benchmark": "grpc", "seconds": 9.96, "rounds": [{}] * 3}, "grpc: 3 rounds in 10.0 s"),
        ({"benchmark": "scale", "cells": [{}] * 4}, "scale: 4 cells"),
        ({"benchmark": "dp"}, "dp"),
    ],
)
def test_the_headline_counts_what_the_file_holds(result: dict[str, object], line: str) -> None:
    assert headline(result) == line


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            {
                "benchmark": "masking",
                "seconds": 5.0,
                "cells": [{"status": "complete"}, {"status": "aborted"}, {"status": "aborted"}],
                "targets": [{"pass": True}],
                "growth": [{"pass": True}, {"pass": False}],
            },
            "masking: 3 cells (2 aborted) in 5.0 s; targets met: 1 of 1; "
            "growth slopes within target: 1 of 2",
        ),
        (
            {"benchmark": "masking", "seconds": 5.0, "cells": [{"status": "complete"}]},
            "masking: 1 cell in 5.0 s",
        ),
    ],
)
def test_the_headline_says_what_did_not_complete_or_pass(
    result: dict[str, object], line: str
) -> None:
    """Review (2026-12-05): with --out the headline is all a terminal shows; it read
    'masking: 3 cells in 5.0 s; targets met: 1 of 1' for a grid whose cells mostly
    aborted and whose growth slope missed its target (both in the file only)."""
    assert headline(result) == line


def _failing_dp_run(monkeypatch: pytest.MonkeyPatch, damage: object) -> None:
    """Make ``bench dp``'s run (tiny) call ``damage`` before it returns, as a folder
    removed or a disk filled while a long grid ran."""
    from secagg.apps.bench import dp

    real = dp.run_benchmark

    def run(**kwargs: object) -> dict[str, object]:
        result = real(**kwargs)
        damage()  # type: ignore[operator]
        return result

    monkeypatch.setattr(dp, "run_benchmark", run)


def _one_error_line(result: object) -> str:
    from click.testing import Result

    assert isinstance(result, Result)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.stdout == "", result.stdout  # no "wrote ..." line
    # stderr has the run's progress lines, then the one error line
    lines = [line for line in result.stderr.splitlines() if line.startswith("secagg bench")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("secagg bench dp: cannot write the results to "), lines[0]
    return lines[0]


def test_an_out_folder_gone_by_the_end_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is checked before the run; one removed while it ran was a traceback
    (FileNotFoundError) after the whole run."""
    folder = tmp_path / "results"
    folder.mkdir()
    _failing_dp_run(monkeypatch, folder.rmdir)
    result = CliRunner().invoke(main, [*DP, "--out", str(folder / "dp.json")])
    said = _one_error_line(result)
    assert str(folder) in said, said


def test_a_write_that_fails_leaves_the_earlier_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON goes to a temporary file renamed over FILE: a write that fails (a full
    disk) leaves an earlier FILE as it was and no partial file beside it; it truncated
    FILE first and wrote into it."""
    import secagg.apps.bench as bench

    out = tmp_path / "dp.json"
    out.write_text('{"earlier": true}\n', encoding="utf-8")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(out))

    monkeypatch.setattr(bench.os, "replace", full, raising=False)
    result = CliRunner().invoke(main, [*DP, "--out", str(out)])
    said = _one_error_line(result)
    assert "No space left on device" in said, said
    assert out.read_text(encoding="utf-8") == '{"earlier": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp.json"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_out_to_a_device_is_written_in_place_and_its_error_is_one_line() -> None:
    """A device (``/dev/full`` here, ``/dev/stdout`` in a pipeline) is written in place,
    never replaced by a renamed file; its write error is one line."""
    result = CliRunner().invoke(main, [*DP, "--out", "/dev/full"])
    said = _one_error_line(result)
    assert "No space left on device" in said, said
    assert Path("/dev/full").is_char_device()


@pytest.mark.parametrize("args", [DP, ["bench", "papers", "--quick"]], ids=["file", "folder"])
def test_an_empty_out_is_one_line_naming_the_flag(args: list[str]) -> None:
    """``--out ""`` (an unset ``$OUT``) was taken as no --out: the JSON went to stdout
    and nothing said the file was never written (bench dp); bench papers' folder was a
    bare 'No such file or directory'."""
    result = CliRunner().invoke(main, [*args, "--out", ""])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "'--out'" in errors[0] and "empty" in errors[0], errors[0]
    assert '"benchmark"' not in result.output


def test_out_through_a_symlink_writes_the_file_it_names(tmp_path: Path) -> None:
    """A renamed temporary file must not replace the link itself (``latest.json ->
    runs/dp.json``): the file the link names gets the JSON, the link stays."""
    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / "dp.json"
    target.write_text("{}\n", encoding="utf-8")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    emit({"benchmark": "x", "cells": []}, str(link), lambda _: None, file_only=True)
    assert link.is_symlink()
    assert json.loads(target.read_text(encoding="utf-8")) == {"benchmark": "x", "cells": []}
    assert sorted(p.name for p in runs.iterdir()) == ["dp.json"]
