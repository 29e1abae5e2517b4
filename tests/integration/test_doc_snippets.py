"""The docs' Python snippets and commands run against the code as it is.

Why: a renamed function, option or flag left the pages that teach it stale, and nothing
failed (docs/privacy.md quoted ``privacy noise`` without its required ``--delta``, and an
RDP calibration whose figures the accountant no longer gives). tests/integration/
test_examples.py runs examples/; this file runs the snippets of docs/backends.md,
docs/privacy.md and docs/scaling.md, checks the prose's figures against what they print,
and checks that every ``secagg ...`` / ``python ...`` command README.md, docs/ and the
bank-fraud example quote names only options that exist.
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: the pages whose commands and cited tests are checked: every page a newcomer reads
#: (README.md and deployment.md, audit.md and results.md were left out: a flag renamed
#: under them went unnoticed)
PAGES = [
    ROOT / "README.md",
    *sorted(DOCS.glob("*.md")),
    ROOT / "examples" / "bank_fraud" / "README.md",
]


def python_blocks(page: Path) -> list[str]:
    """The ```python blocks of ``page``, in order."""
    text = page.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def prose(page: Path) -> str:
    """``page`` with its line breaks folded, for matching sentences across lines."""
    return " ".join(page.read_text().split())


def test_backends_one_line_aggregate_snippet_runs() -> None:
    """docs/backends.md's first snippet, with eight demo updates: the sum of the others."""
    first = python_blocks(DOCS / "backends.md")[0]
    updates = np.random.default_rng(0).uniform(-1, 1, size=(8, 50))  # demo data only
    scope: dict[str, object] = {"updates": updates}
    exec(compile(first, "backends.md (first snippet)", "exec"), scope)
    total, report = scope["total"], scope["report"]
    assert tuple(report.dropped) == (3,)  # type: ignore[attr-defined]
    expected = np.delete(updates, 3, 0).sum(0)
    assert np.abs(total - expected).max() <= report.error_bound  # type: ignore[attr-defined,operator]
    assert report.threat_model  # type: ignore[attr-defined]


def test_backends_round_sketch_names_real_methods() -> None:
    """docs/backends.md's sketch of a round (it has ``...``, so it cannot run as written):
    every method it calls on the backend, the server session and the client session
    exists, and the calls it shows work in the order it shows them."""
    from secagg.aggregation import Announce, ToParty, decode_spec, get_backend

    sketch = python_blocks(DOCS / "backends.md")[1]
    backend = get_backend("secagg+", value_bound=1.0)
    spec = backend.plan(6, 10)
    server = backend.server(spec)
    outgoing = server.start()
    announce = next(o for o in outgoing if isinstance(o, Announce))
    first = next(o for o in outgoing if isinstance(o, ToParty))
    client = backend.client(decode_spec(announce.spec), first.party)
    to_server = client.set_input(np.zeros(10)) + client.handle(first.payload)
    assert to_server
    objects = {"backend": backend, "server": server, "client": client}
    for name, attribute in re.findall(r"\b(backend|server|client)\.(\w+)\(", sketch):
        assert hasattr(objects[name], attribute), f"{name}.{attribute} in docs/backends.md"
    text = prose(DOCS / "backends.md")
    for call in re.findall(r"`(?:server|client)\.(\w+)\(", text):
        assert hasattr(server, call) or hasattr(client, call), call


def test_privacy_worked_example_prints_what_the_page_says(capsys) -> None:
    """docs/privacy.md's worked example runs, and the figures the prose gives for it
    (and for the RDP calibration and the amplified figure beside it) are the code's."""
    from secagg.dp import federation_epsilon, federation_noise_multiplier, noise_multiplier_for

    (snippet,) = python_blocks(DOCS / "privacy.md")
    exec(compile(snippet, "privacy.md (worked example)", "exec"), {"__name__": "__main__"})
    first, second = capsys.readouterr().out.splitlines()
    assert first == "47"
    z, eps = (float(v) for v in second.split())
    text = prose(DOCS / "privacy.md")
    quoted = re.search(r"This prints 47 and z ≈ ([\d.]+) with ε = ([\d.]+) \(PLD\)", text)
    assert quoted, "the worked example's sentence changed"
    assert float(quoted.group(1)) == pytest.approx(z, abs=1e-3)
    assert float(quoted.group(1)) >= z  # the noise to use is rounded up, not down
    # the epsilon quoted is rounded up, never below what the snippet prints (the page
    # said 2.9999 for 2.9999933; review, 2026-12-05)
    assert eps <= 3.0 and eps <= float(quoted.group(2)) < eps + 1e-4, (quoted.group(2), eps)
    rdp = re.search(
        r"Calibrating with RDP gives a more conservative z ≈ ([\d.]+) \(RDP ε = ([\d.]+); "
        r"PLD would credit that z with ε = ([\d.]+)\)",
        text,
    )
    assert rdp, "the RDP calibration's sentence changed"
    z_rdp = federation_noise_multiplier(3.0, 1e-5, 0.05, 500, 2000, accountant="rdp")
    shown = float(rdp.group(1))
    assert shown == pytest.approx(z_rdp, abs=1e-4)
    # each epsilon quoted is at least the one of the z quoted (rounded up, never flattering)
    rdp_eps = federation_epsilon(shown, 0.05, 500, 1e-5, 2000, accountant="rdp")
    pld_eps = federation_epsilon(shown, 0.05, 500, 1e-5, 2000)
    assert rdp_eps <= float(rdp.group(2)) < rdp_eps + 1e-4
    assert pld_eps <= float(rdp.group(3)) < pld_eps + 1e-4
    amplified = re.search(r"would ask only z ≈ ([\d.]+)", text)
    assert amplified
    assert float(amplified.group(1)) == pytest.approx(
        noise_multiplier_for(3.0, 1e-5, sample_rate=0.05, rounds=500), abs=1e-3
    )


def test_privacy_feature_statistics_epsilon_never_reads_below_the_accountant() -> None:
    """docs/privacy.md gave the feature statistics' release as ε = 0.62; it spends
    0.6200045 at δ = 1e-5 (the walkthrough and the run print 0.621, rounded up)."""
    from secagg.apps.simulation.feature_stats import MomentRelease

    text = prose(DOCS / "privacy.md")
    (shown,) = re.findall(r"Defaults B = 5, z = 10: ε [≈=] ([\d.]+) alone at δ = 10⁻⁵", text)
    spent = MomentRelease(bound=5.0, features=1, noise_multiplier=10.0).epsilon(1e-5, "pld")
    assert spent <= float(shown) < spent + 1e-3, (shown, spent)


def test_privacy_commands_run() -> None:
    """The ``secagg privacy`` lines of docs/privacy.md, code block and prose, exit 0 and
    print what the page shows under them (the noise searches run here for real;
    tests/apps/test_docs_claims.py checks the same lines cheaply, without the search)."""
    text = (DOCS / "privacy.md").read_text()
    lines = re.findall(r"^secagg (privacy .+)\n#   (.+)$", text, flags=re.M)
    assert len(lines) == 4, lines
    assert len(re.findall(r"^secagg privacy ", text, flags=re.M)) == len(lines)
    for line, shown in lines:
        result = CliRunner().invoke(main, shlex.split(line))
        assert result.exit_code == 0, (line, result.output)
        assert result.output.strip() == shown.strip(), (line, result.output)
    # the floor example quoted in the prose (inline, wrapped across a line break)
    floor = re.search(r"`(privacy noise --epsilon 8 [^`]+)`", prose(DOCS / "privacy.md"))
    assert floor, "the noise-floor example changed"
    result = CliRunner().invoke(main, shlex.split(floor.group(1)))
    assert result.exit_code == 0, (floor.group(1), result.output)
    assert "z = 0.4333 (epsilon = 0.03413" in result.output  # "z = 0.4333 spending ε 0.034"


def _quoted_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``secagg``/``python`` line in a code block of the owned
    pages (continuations joined, comments dropped) and every inline one."""
    found: list[tuple[str, str]] = []
    for page in PAGES:
        text = page.read_text()
        in_block, lang, pending = False, "", ""
        for line in text.splitlines():
            if line.startswith("```"):
                in_block, lang = not in_block, line
                continue
            if not in_block or "python" in lang or "toml" in lang:
                continue
            command = (pending + " " + line.split("  #")[0].strip()).strip()
            pending = ""
            if command.endswith("\\"):
                pending = command[:-1]
                continue
            if command.startswith(("secagg ", "python ")):
                found.append((page.name, command))
        found += [(page.name, c) for c in re.findall(r"`((?:secagg|python) [^`]*)`", text)]
    # a line the program prints, quoted ("secagg client: branch-001 refused round 3: ..."),
    # is no command
    return [(page, c) for page, c in found if not re.match(r"secagg [\w-]+:", c)]


def _help(argv: tuple[str, ...]) -> str | None:
    """The ``--help`` text of a ``secagg`` subcommand or a ``python`` script, or None."""
    if argv[0] == "secagg":
        result = CliRunner().invoke(main, [*argv[1:], "--help"])
        return result.output if result.exit_code == 0 else None
    if argv[1:3] != ("-m", "pytest"):  # pytest cannot run inside the running pytest
        return _script_help(argv[1:])
    done = subprocess.run(
        [sys.executable, *argv[1:], "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr if done.returncode == 0 else None


def _script_help(target: tuple[str, ...]) -> str | None:
    """``python TARGET --help`` (a script path, or ``-m`` and a module), run in this process
    as the interpreter would run it (as ``__main__``, its folder first on ``sys.path``):
    its output if it exits 0, None if it fails or does not exist.

    Why in process: a fresh interpreter per script (13 of them) was most of this test's
    time, importing numpy and secagg again each time; the text checked is argparse's,
    the same either way. Modules the script imported from its own folder (``common``
    beside benchmarks/peers/ckks.py) are dropped afterwards."""
    is_module = target[0] == "-m"
    name = target[1] if is_module else str(ROOT / target[0])
    folder = str(ROOT if is_module else Path(name).parent)
    before = set(sys.modules)
    out = io.StringIO()
    code: object = 0
    with (
        mock.patch.object(sys, "argv", [name, "--help"]),
        mock.patch.object(sys, "path", [folder, *sys.path]),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        try:
            if is_module:
                with warnings.catch_warnings():  # this process imported the module
                    # already (secagg.apps.cli does); runpy warns that __main__ is a second
                    # copy of it, which is what a fresh `python -m` runs anyway
                    warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                    runpy.run_module(name, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(name, run_name="__main__")
        except SystemExit as exit:
            code = exit.code
        except Exception:  # a script that fails is one whose help is missing
            code = 1
    for added in set(sys.modules) - before:
        origin = getattr(sys.modules[added], "__file__", None) or ""
        if not is_module and Path(origin).parent == Path(folder):
            del sys.modules[added]
    return out.getvalue() if code in (0, None) else None


def test_every_quoted_command_names_real_options() -> None:
    """Each command quoted in the owned pages reaches a command that exists, and each
    option it passes is one that command lists in its ``--help``."""
    commands = _quoted_commands()
    assert len(commands) > 40  # the pages quote many; a parser that found none would pass
    helps: dict[tuple[str, ...], str | None] = {}
    wrong: list[str] = []
    for page, command in commands:
        words = shlex.split(command.replace("[", "").replace("]", "").replace("...", ""))
        program: list[str] = []
        for i, word in enumerate(words):
            if word.startswith("-") and not (i == 1 and word == "-m"):
                break
            program.append(word)
        if program[0] == "secagg":  # the longest prefix of words that is a command
            candidates = [tuple(program[:k]) for k in range(len(program), 0, -1)]
        else:
            candidates = [tuple(program[:3] if program[1] == "-m" else program[:2])]
        text = None
        for argv in candidates:
            if argv not in helps:
                helps[argv] = _help(argv)
            text = helps[argv]
            if text is not None:
                break
        if text is None:
            wrong.append(f"{page}: {command}: no such command")
            continue
        options = [w.split("=")[0] for w in words if re.fullmatch(r"--?[a-zA-Z][\w-]*(=.*)?", w)]
        missing = [
            o for o in options if o != "-m" and not re.search(re.escape(o) + r"(?![\w-])", text)
        ]
        if missing:
            wrong.append(f"{page}: {command}: {missing}")
    assert not wrong, "\n".join(wrong)


def test_the_readme_commands_table_names_every_subcommand() -> None:
    """README's Commands table names every subcommand of every group, as
    ``secagg GROUP SUB`` or ``/ `SUB ...``` beside its group's first (``secagg bench
    scale`` was missing: a newcomer reading the table never learnt that the Ray
    engine's benchmark exists). tests/apps/test_cli_errors.py checks the top level."""
    import click

    table = (ROOT / "README.md").read_text().split("## Commands")[1].split("\n## ")[0]
    missing = []
    for name, command in main.commands.items():
        if not isinstance(command, click.Group):
            continue
        rows = "\n".join(r for r in table.splitlines() if r.startswith(f"| `secagg {name} "))
        for sub in command.commands:
            if not re.search(rf"`secagg {name} {sub}\b|/ `{sub}\b", rows):
                missing.append(f"secagg {name} {sub}")
    assert not missing, missing


def test_the_walkthrough_times_secagg_simulate_as_the_readme_does() -> None:
    """examples/bank_fraud/README.md said the default run "takes about a minute on an
    idle 2-core machine", quoting the 52.5 s of the README's faster host; the README's
    idle 2-core figure (measured, and parsed by tests/apps/test_cli_errors.py) is about
    2 minutes. The walk-through now gives the README's figure."""
    readme = prose(ROOT / "README.md")
    found = re.search(r"\*\*`secagg simulate` takes about (\d+) minutes\*\* when", readme)
    assert found, "the README's simulate figure changed"
    walkthrough = prose(ROOT / "examples" / "bank_fraud" / "README.md")
    assert f"It takes about {found.group(1)} minutes on an idle 2-core machine" in walkthrough


#: the files a run writes, which the pages name but the repository does not hold
RUN_OUTPUTS = {"report.md", "experiment.md", "ledger-report.md", "peers.md", "papers.md"}


def test_every_markdown_file_the_pages_name_is_in_the_repository() -> None:
    """docs/architecture.md sent the reader to "DESIGN.md's" rules, a file no clone
    holds (it lives in the maintainers' notes); every other page a page names is read
    from the repository root, docs/ or the page's own folder."""
    missing = []
    for page in PAGES:
        for name in set(re.findall(r"[\w./-]+\.md\b", page.read_text())):
            if name.startswith("DIR/") or name in RUN_OUTPUTS:
                continue
            if not any((folder / name).is_file() for folder in (ROOT, DOCS, page.parent)):
                missing.append(f"{page.name}: {name}")
    assert not missing, missing


def test_scaling_ray_snippet_runs_shrunk(tmp_path: Path, monkeypatch) -> None:
    """docs/scaling.md's Python route to the Ray engine, on examples/many_participants.toml
    shrunk to six participants and one round (about 15 s, most of it Ray starting)."""
    pytest.importorskip("ray")
    from secagg.apps.simulation.config import SimulationConfig

    (snippet,) = python_blocks(DOCS / "scaling.md")
    assert 'with_changes(\n    engine="ray", ray_workers=2\n)' in snippet
    shrink = dict(branches=6, rounds=1, local_epochs=1, train_rows=3000)
    shrink |= dict(test_rows_per_branch=100, dropout=0.0)
    original = SimulationConfig.with_changes

    def shrunk(self: SimulationConfig, **changes: object) -> SimulationConfig:
        return original(self, **changes, **shrink)

    monkeypatch.setattr(SimulationConfig, "with_changes", shrunk)
    monkeypatch.chdir(ROOT)
    run = str(tmp_path / "many-ray")
    exec(compile(snippet.replace('"runs/many-ray"', repr(run)), "scaling.md", "exec"), {})
    out = Path(run)
    assert (out / "report.md").is_file() and (out / "summary.json").is_file()
    assert '"engine": "ray"' in (out / "summary.json").read_text()


def test_every_test_the_pages_cite_exists() -> None:
    """Each ``tests/...py::test_name`` and ``…::test_name`` the owned pages cite as the
    evidence of a claim names a test that exists (docs/protocol.md cited a decoder fuzz
    test that had moved and been renamed)."""
    sources = {p: p.read_text() for p in (ROOT / "tests").rglob("test_*.py")}
    defined = set()
    for text in sources.values():
        defined |= set(re.findall(r"^(?:async )?def (test_\w+)", text, flags=re.M))
    missing: list[str] = []
    for page in PAGES:
        text = page.read_text()
        for path, name in re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", text):
            file = ROOT / path
            if not file.is_file():
                missing.append(f"{page.name}: {path}")
            elif name and not re.search(rf"^(?:async )?def {name}\b", sources[file], re.M):
                missing.append(f"{page.name}: {path}::{name}")
        missing += [
            f"{page.name}: …::{n}" for n in re.findall(r"…::(\w+)", text) if n not in defined
        ]
        bare = re.findall(r"`(test_\w+)`", text)
        missing += [f"{page.name}: {n}" for n in bare if n not in defined]
        for suffix in re.findall(r"`…(_\w+)`", text):  # "…_the_rest" of the test named before
            if not any(name.endswith(suffix) for name in defined):
                missing.append(f"{page.name}: …{suffix}")
    assert not missing, "\n".join(missing)


def test_protocol_reference_k_and_t_are_what_round_config_chooses() -> None:
    """docs/protocol.md's table of ``RoundConfig.create`` values (k / t and the tolerated
    colluders, three columns) against the code, row by row."""
    from secagg.protocol.config import RoundConfig

    text = (DOCS / "protocol.md").read_text()
    table = text.split("Reference values of `RoundConfig.create`", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) >= 8
    columns = [dict(dropout_fraction=0.10), dict(dropout_fraction=0.30), dict(active=True)]
    for row in rows:
        n_text, *cells = [c.strip().replace("*", "") for c in row.strip("|").split("|")]
        n = int(n_text)
        for cell, options in zip(cells, columns, strict=True):
            k, t, c = (int(v) for v in re.fullmatch(r"(\d+) / (\d+), c = (\d+)", cell).groups())
            config = RoundConfig.create(n, 16, **options)  # type: ignore[arg-type]
            assert (config.degree, config.threshold, config.tolerated_colluders) == (k, t, c), (
                n,
                options,
            )


def test_scaling_parameter_table_is_what_round_config_chooses() -> None:
    """docs/scaling.md's k and t for n = 100 ... 10^6 at 10 % dropout."""
    from secagg.protocol.config import RoundConfig

    text = (DOCS / "scaling.md").read_text()
    head = re.search(r"^\| n \|(.+)$", text, flags=re.M)
    k_row = re.search(r"^\| k \(neighbours\) \|(.+)$", text, flags=re.M)
    t_row = re.search(r"^\| t \(threshold\) \|(.+)$", text, flags=re.M)
    assert head and k_row and t_row

    def cells(match: re.Match[str]) -> list[int]:
        return [int(c.strip().replace(",", "")) for c in match.group(1).strip(" |").split("|")]

    for n, k, t in zip(cells(head), cells(k_row), cells(t_row), strict=True):
        config = RoundConfig.create(n, 16, dropout_fraction=0.1)
        assert (config.degree, config.threshold) == (k, t), n


def test_papers_neighbour_table_is_the_parameter_search() -> None:
    """docs/papers.md's k / t as n grows (six settings, nine n each) against
    ``harary_parameters``, the search the page says they come from."""
    from secagg.protocol.graph_params import harary_parameters

    text = (DOCS / "papers.md").read_text()
    table = text.split("### Bell et al. 2020: neighbours k / threshold t as n grows", 1)[1]
    lines = [line for line in table.splitlines() if line.startswith("| gamma=")]
    assert len(lines) == 6
    header = next(line for line in table.splitlines() if line.startswith("| setting |"))
    ns = [int(c.strip()[2:].replace(",", "")) for c in header.strip("|").split("|")[1:-1]]
    for line in lines:
        setting, *cells, _slope = [c.strip() for c in line.strip("|").split("|")]
        found = re.fullmatch(
            r"gamma=([\d.]+), delta=([\d.]+), (semi-honest|semi-malicious)", setting
        )
        assert found, setting
        gamma, delta, kind = found.groups()
        for n, cell in zip(ns, cells, strict=True):
            k, t = (int(v) for v in cell.split(" ")[0].split("/"))
            params = harary_parameters(
                n,
                corrupt_fraction=float(gamma),
                dropout_fraction=float(delta),
                semi_malicious=kind == "semi-malicious",
            )
            assert params is not None and (params.k, params.threshold) == (k, t), (setting, n)


def test_the_dpsgd_hook_docstring_command_names_real_options() -> None:
    """examples/bank_fraud/dpsgd_hook.py's docstring gives a branch's command line; each
    option it passes is one ``secagg client`` has."""
    doc = (ROOT / "examples" / "bank_fraud" / "dpsgd_hook.py").read_text().split('"""')[1]
    assert "secagg client --server" in doc, "the docstring's command line changed"
    command = doc.split("secagg client --server", 1)[1].split("\n\n", 1)[0]
    options = ["--server", *re.findall(r"(--[a-z][\w-]*)", command)]
    assert {"--server", "--name", "--certs", "--dimension", "--hook"} <= set(options)
    help_text = CliRunner().invoke(main, ["client", "--help"]).output
    assert [o for o in options if not re.search(re.escape(o) + r"(?![\w-])", help_text)] == []


def test_protocol_mask_chunk_is_the_prgs() -> None:
    """docs/protocol.md's PRG section gave the accumulator's chunk as 64 KiB; the mask
    loop works in :data:`secagg.crypto.prg._CHUNK_BYTES` (256 KiB since the chunk study
    its comment records), as the page's own "What changed" says."""
    from secagg.crypto import prg

    text = prose(DOCS / "protocol.md")
    (kib,) = re.findall(r"subtracts masks chunk by chunk \((\d+) KiB\)", text)
    assert int(kib) * 1024 == prg._CHUNK_BYTES


def test_backends_key_holder_table_is_a_policy_the_key_holder_reads() -> None:
    """docs/backends.md's ``[key_holder]`` example reads as a ``KeyHolderPolicy`` with the
    values its comments give, and the commented-out ``dimension`` line, uncommented, too."""
    import tomllib

    from secagg.aggregation.keyholder_policy import KeyHolderPolicy

    text = (DOCS / "backends.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(block)["key_holder"]
    policy = KeyHolderPolicy.from_dict(table)
    assert (policy.noise_stddev, policy.min_contributions, policy.max_decryptions) == (
        1.0,
        2,
        1000,
    )
    assert policy.dimension is None
    with_dimension = tomllib.loads(block.replace("# dimension", "dimension"))["key_holder"]
    assert KeyHolderPolicy.from_dict(with_dimension).dimension == 1000
