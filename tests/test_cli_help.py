"""The CLI's conventions: help that teaches (examples, panels, readable placeholders, -h,
--version), one --format for every command that prints a table (each output parsed, with an exact
value of a tiny fixture), progress labels, the GPU-scale note, and `params` from its cache."""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict

import pandas as pd
import pytest
from conftest import assert_one_line_error

from vggbench import counting, counts
from vggbench.cli import SweepBars, TrainBars, app, version
from vggbench.cli.common import gpu_scale_note as _gpu_scale_note

COMMANDS = [
    ["params"],
    ["train"],
    ["ablate"],
    ["report"],
    ["eval"],
    ["bench"],
    ["runs"],
    ["runs", "list"],
    ["runs", "show"],
    ["runs", "compare"],
    ["runs", "export"],
]


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    """Help as a wide terminal shows it: one example per line."""
    monkeypatch.setenv("COLUMNS", "240")


def _help(cli, *argv: str) -> str:
    result = cli(*argv, "--help")
    assert result.code == 0, result.err
    return result.out


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_help_ends_with_real_examples_and_no_type_placeholders(cli, argv):
    text = _help(cli, *argv)
    # an example too wide for 80 columns continues on the next line (' \\'): one example, joined
    examples = re.sub(r" \\ *\n\s*", " ", text.rstrip().split("Examples:")[-1].strip()).splitlines()
    assert 2 <= len(examples) <= 3, text
    for line in examples:
        assert re.match(r"\s*(vggbench|torchrun) ", line), line
        assert line.split()[1:2] in ([argv[0]], ["--nproc_per_node"]) or argv == ["runs"], line
    assert "<bool>" not in text and "list[" not in text


@pytest.mark.parametrize(
    "argv, panels",
    [
        (["train"], ["Model", "Data", "Recipe", "Output", "Run control"]),
        (["eval"], ["Model", "Data", "Evaluation", "Output", "Run control"]),
        (["ablate"], ["Model", "Data", "Recipe", "Output", "Run control"]),
        (["bench"], ["Model", "Recipe", "Evaluation", "Output", "Run control"]),
        (["params"], ["Model", "Output"]),
    ],
)
def test_options_are_grouped_in_panels(cli, argv, panels):
    text = _help(cli, *argv)
    for panel in panels:
        assert re.search(rf"╭─ {panel} ─", text), panel


def test_dash_h_is_help_and_version_prints_the_version(cli):
    assert cli("train", "-h").out == cli("train", "--help").out
    assert cli("runs", "list", "-h").code == 0
    result = cli("--version")
    assert result.code == 0 and result.out == f"vggbench {version()}\n" and re.match(r"\d+\.\d+", version())


def test_shell_completion_is_offered(cli):
    text = _help(cli)
    assert "--install-completion" in text and "--show-completion" in text


def test_the_examples_name_options_the_command_has():
    """An example that uses a misspelled option would teach an error: each one parses."""
    import typer

    command = typer.main.get_command(app)
    for argv in COMMANDS:
        sub = command
        for name in argv:
            sub = sub.commands[name]
        for line in (sub.epilog or "").splitlines()[2:]:
            target = sub.commands[line.split()[2]] if hasattr(sub, "commands") else sub
            known = {opt for param in target.params for opt in param.opts + param.secondary_opts}
            for option in re.findall(r"(?<= )--[a-z][a-z0-9_-]*", line):
                if option != "--nproc_per_node":
                    assert option in known, (argv, option)


# --- GPU-scale settings on a CPU --------------------------------------------------------------------


def test_gpu_scale_settings_on_a_cpu_get_one_note(capsys):
    _gpu_scale_note(224, 1.0, "cpu")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--width 0.125 --crop 32" in err and "--preset quick" in err
    _gpu_scale_note(32, 1.0, "cpu")
    _gpu_scale_note(224, 0.125, "cpu")
    _gpu_scale_note(224, 1.0, "cuda")
    assert capsys.readouterr().err == ""


def test_ablate_at_the_paper_preset_on_a_cpu_notes_it_before_training(cli, monkeypatch, tmp_path):
    from vggbench.ablations import sweep
    from vggbench.errors import VggbenchError

    def refuse(*args, **kwargs):
        raise VggbenchError("stopped before training (test)")

    monkeypatch.setattr(sweep, "run_ablation", refuse)
    result = cli("ablate", "lrn", "--preset", "paper", "--device", "cpu", "--results-dir", str(tmp_path))
    lines = result.err.splitlines()
    assert result.code == 2 and lines[0].startswith("note: crop 224 at width 1 is GPU scale")
    assert lines[1] == "error: stopped before training (test)"


def test_train_defaults_on_a_cpu_note_it_before_training(cli, monkeypatch, tmp_path):
    import vggbench.train
    from vggbench.errors import VggbenchError

    def refuse(*args, **kwargs):
        raise VggbenchError("stopped before training (test)")

    monkeypatch.setattr(vggbench.train, "train", refuse)
    result = cli("train", "--device", "cpu", "--results-dir", str(tmp_path))
    assert result.code == 2 and "GPU scale" in result.err.splitlines()[0]


# --- Progress ---------------------------------------------------------------------------------------


class _FakeBar:
    """Records what the bars ask of a rich Progress."""

    def __init__(self):
        self.tasks: dict[int, dict] = {}

    def add_task(self, description, total=None, **fields):
        self.tasks[len(self.tasks)] = {"description": description, "total": total, **fields}
        return len(self.tasks) - 1

    def update(self, task, **fields):
        self.tasks[task].update(fields)

    def remove_task(self, task):
        self.tasks[task]["removed"] = True


def test_the_epoch_label_moves_on_at_the_end_of_each_epoch_and_after_a_resume():
    from vggbench.train import StepProgress
    from vggbench.train.trainer import EpochEnd

    fake = _FakeBar()
    bars = TrainBars(quiet=False, shared=fake).__enter__()
    assert fake.tasks[0]["description"] == "loading data and model"
    # resumed after epoch 5 of 8: the first report is from epoch 6
    bars.progress(StepProgress(6, 8, 20, 40, 1.5, 100.0))
    assert fake.tasks[0]["description"] == "epoch 6/8" and fake.tasks[0]["completed"] == 5 * 40 + 20
    bars.progress(StepProgress(6, 8, 40, 40, 1.4, 100.0))
    assert fake.tasks[0]["description"] == "epoch 6/8; validating"
    metrics = type("M", (), {"val_top1_err": 33.25})()
    bars.on_epoch_end(EpochEnd(6, metrics, None, None, None))
    assert fake.tasks[0]["description"] == "epoch 7/8" and fake.tasks[0]["completed"] == 6 * 40
    assert fake.tasks[0]["info"] == "epoch 6: val top-1 err 33.25%"
    bars.__exit__(None, None, None)
    assert fake.tasks[0]["removed"]


def test_progress_is_silent_when_quiet_or_not_a_terminal(capsys):
    bars = TrainBars(quiet=False)  # pytest's stderr is not a terminal
    assert bars.progress is None and bars.on_epoch_end is None
    assert TrainBars(quiet=True).progress is None


def test_ablate_says_run_k_of_n_and_an_eta_from_the_runs_done(capsys):
    from vggbench.ablations.sweep import SweepStep

    bars = SweepBars(quiet=False, name="lrn")
    bars.clock, bars.started = (lambda: 60.0), 0.0  # the first run took a minute
    bars.on_run(SweepStep(1, 4, "A", 0, "ab12c0ffee01", False))
    bars.on_run(SweepStep(2, 4, "A-LRN", 0, "77e0aa11bb22", True))
    assert capsys.readouterr().err.splitlines() == [
        "lrn: run 1 of 4: arm 'A', seed 0 (run ab12c0ffee01); ETA after the first run",
        "lrn: run 2 of 4: arm 'A-LRN', seed 0 (run 77e0aa11bb22, stored); "
        "about 3 min left (from 1 run so far)",
    ]
    SweepBars(quiet=True, name="lrn").on_run(SweepStep(1, 4, "A", 0, "ab12c0ffee01", False))
    assert capsys.readouterr().err == ""


# --- One --format for every table ---------------------------------------------------------------------


def _shown(value: float) -> str:
    """A float as tables print it: 2 decimals (Markdown drops trailing zeros: tabulate reparses)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _parsed(fmt: str, out: str):
    """The output parsed as its format claims (a failure here is a malformed output)."""
    if fmt == "json":
        return json.loads(out)
    if fmt == "csv":
        return pd.read_csv(io.StringIO(out))
    if fmt == "latex":
        assert "\\begin{tabular}" in out and "\\end{tabular}" in out
    if fmt == "markdown":
        assert re.search(r"^\|.*\|$", out, re.M)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run and its center-crop evaluation (exact errors to look for in each format)."""
    from vggbench.evaluate.records import EvalOptions, run_eval
    from vggbench.train import TrainConfig, train

    root = tmp_path_factory.mktemp("results")
    config = TrainConfig(
        net="A",
        width=1 / 16,
        crop=32,
        data="synthetic",
        epochs=1,
        batch_size=32,
        limit_train=64,
        limit_val=16,
    )
    run = train(config, results_dir=root, device="cpu", quiet=True)
    options = EvalOptions(runs=[run.id], methods=["center"], device="cpu", results_dir=str(root))
    (record,) = run_eval(options)
    return root, run, record


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "json", "csv"])
def test_eval_prints_every_format(cli, trained, fmt):
    root, run, record = trained
    result = cli(
        "eval", run.id[:8], "--center", "--device", "cpu", "--results-dir", str(root), "--format", fmt
    )
    assert result.code == 0, result.err
    parsed = _parsed(fmt, result.out)
    if fmt == "json":
        assert [r["id"] for r in parsed] == [record.id] and parsed[0]["top1_err"] == record.top1_err
    elif fmt == "csv":
        assert parsed["runs"].tolist() == [run.id] and parsed["top1_err"].tolist() == [record.top1_err]
    else:
        assert run.id in result.out and _shown(record.top1_err) in result.out


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "json", "csv"])
def test_runs_list_prints_every_format_of_a_trained_store(cli, trained, fmt):
    root, run, _ = trained
    result = cli("runs", "list", "--results-dir", str(root), "--format", fmt)
    assert result.code == 0, result.err
    parsed = _parsed(fmt, result.out)
    if fmt == "json":
        assert [(r["id"], r["top1_err"]) for r in parsed] == [(run.id, run.top1_err)]
    elif fmt == "csv":
        assert parsed["id"].tolist() == [run.id] and parsed["top1_err"].tolist() == [run.top1_err]
    else:
        assert run.id in result.out and _shown(run.top1_err) in result.out


def test_train_format_json_prints_the_stored_record(cli, trained):
    root, run, _ = trained
    argv = ["train", "--width", "0.0625", "--crop", "32", "--data", "synthetic", "--epochs", "1"]
    argv += ["--batch", "32", "--limit-train", "64", "--limit-val", "16", "--device", "cpu"]
    result = cli(*argv, "--results-dir", str(root), "--format", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["id"] == run.id
    assert_one_line_error(
        cli("train", "--format", "csv", "--results-dir", str(root)), "unknown format 'csv'", "text, json"
    )


@pytest.fixture(scope="module")
def ablated(tmp_path_factory):
    """The smoke LRN ablation with one seed of one short epoch, stored once."""
    from vggbench.ablations.spec import load_spec
    from vggbench.ablations.sweep import SweepArgs, run_ablation

    root = tmp_path_factory.mktemp("ablation")
    overrides = {"epochs": 1, "limit_train": 64, "limit_val": 32}
    record = run_ablation(SweepArgs(load_spec("lrn"), 1, "smoke", overrides, root, device="cpu", quiet=True))
    return root, record


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "json", "csv"])
def test_ablate_prints_every_format(cli, ablated, fmt):
    root, record = ablated
    argv = ["ablate", "lrn", "--preset", "smoke", "--seeds", "1", "--epochs", "1", "--limit-train", "64"]
    argv += ["--limit-val", "32", "--device", "cpu", "--quiet", "--results-dir", str(root), "--format", fmt]
    result = cli(*argv)
    assert result.code == 0, result.err
    parsed = _parsed(fmt, result.out)
    first = record.arms[0]
    if fmt == "json":
        assert parsed["arms"][0]["top1_mean"] == first.top1_mean
    elif fmt == "csv":
        assert set(parsed["table"]) == {"arms", "comparisons (treatment - baseline top-1 error)"}
        arms = parsed[parsed["table"] == "arms"]
        assert len(arms) == len(record.arms) and first.name in arms.iloc[:, 1].tolist()
    else:
        assert _shown(first.top1_mean) in result.out and "A-LRN" in result.out
    if fmt == "latex":
        assert result.out.startswith("% ")  # the claim and budget lines are comments


@pytest.fixture(scope="module")
def bench_record():
    from vggbench.bench import measure as bench_measure
    from vggbench.bench import run as bench_run

    options = bench_measure.BenchOptions(device="cpu", steps=1, warmup=0, repeats=1, classes=10)
    points = bench_run.cases(["A"], [0.03125], [32], [4], 10)
    return bench_run.run_bench(points, options.check(), ["infer"])


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "json", "csv"])
def test_bench_prints_every_format(cli, monkeypatch, bench_record, fmt):
    from vggbench.bench import run as bench_run

    monkeypatch.setattr(bench_run, "run_bench", lambda *args, **kwargs: bench_record)
    result = cli("bench", "--parts", "infer", "--no-save", "--format", fmt)
    assert result.code == 0, result.err
    parsed = _parsed(fmt, result.out)
    rate = bench_record["infer"][0]["images_per_s"]
    if fmt == "json":
        assert parsed["infer"][0]["images_per_s"] == rate
    elif fmt == "csv":
        assert parsed["part"].tolist() == ["throughput"] and parsed["images_per_s"].tolist() == [
            pytest.approx(rate)
        ]
    else:
        assert "A" in result.out and bench_record["machine_name"].split(",")[0] in result.out


# --- params: fast from its cache ----------------------------------------------------------------------


def test_the_cached_counts_equal_the_counters(monkeypatch, tmp_path):
    """Read back from the cache, Table 2's rows and a net's layers are what counting computes."""
    from dataclasses import asdict

    from vggbench.models import ModelSpec

    monkeypatch.setenv(counting.CACHE_ENV, str(tmp_path))
    for _ in range(2):  # computed, then read back from the cache
        table2 = counts.params_frame(0.125, 10, 32)
        layers = counts.layers_frame("A-LRN", 0.125, 10, 32)
        for row, name in zip(table2.to_dict("records"), table2["net"]):
            expected = asdict(counting.summarize(ModelSpec(name, 10, 0.125, 32)))
            assert {k: row[k] for k in ("params", "macs", "conv_macs")} == {
                k: expected[k] for k in ("params", "macs", "conv_macs")
            }
        breakdown = counting.layer_breakdown(ModelSpec("A-LRN", 10, 0.125, 32))
        assert list(layers["macs"]) == [r.macs for r in breakdown]
        assert list(layers["params"]) == [r.params for r in breakdown]
    assert len(list((tmp_path / "counts").glob("*.json"))) == 7 + 1


def test_a_cache_hit_neither_counts_nor_loads_torch(monkeypatch, tmp_path):
    import subprocess
    import sys

    monkeypatch.setenv(counting.CACHE_ENV, str(tmp_path))
    expected = counting.summarize(counting._spec("D", 10, 0.125, 32))
    assert counting.cached_summary("D", 10, 0.125, 32) == expected  # a miss: counted and stored
    counts.params_frame(0.125, 10, 32)  # fills the cache for every net
    monkeypatch.setattr(counting, "summarize", lambda spec: pytest.fail("counted again"))
    assert counting.cached_summary("D", 10, 0.125, 32) == expected
    probe = (
        "import sys; from vggbench import counts; f = counts.params_frame(0.125, 10, 32); "
        "print(int(f.set_index('net').loc['D', 'params']), 'torch' in sys.modules, 'fvcore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(expected.params), "False", "False"]


def test_the_cache_key_holds_the_fvcore_version_and_a_bad_entry_is_recounted(monkeypatch, tmp_path):
    monkeypatch.setenv(counting.CACHE_ENV, str(tmp_path))
    path, key = counting._cache_path("summary", "A", 10, 0.125, 32)
    assert {"net": "A", "classes": 10, "width": 0.125, "size": 32, "kind": "summary"}.items() <= key.items()
    assert key["fvcore"] == __import__("importlib.metadata").metadata.version("fvcore")
    first = counting.cached_summary("A", 10, 0.125, 32)
    path.write_text("{not json")
    assert counting.cached_summary("A", 10, 0.125, 32) == first
    assert json.loads(path.read_text())["value"] == asdict(first)
    monkeypatch.setenv(counting.CACHE_ENV, "")
    assert (
        counting._cache_path("summary", "A", 10, 0.125, 32) is None
        and counting.cached_summary("A", 10, 0.125, 32) == first
    )


def test_bad_params_values_still_fail_in_one_line_with_a_warm_cache(cli, monkeypatch, tmp_path):
    monkeypatch.setenv(counting.CACHE_ENV, str(tmp_path))
    assert cli("params", "--width", "0.125", "--size", "32", "--classes", "10").code == 0
    assert_one_line_error(cli("params", "--width", "0", "--size", "32"), "width", "positive")
    assert_one_line_error(cli("params", "--filters", "--channels", "0"), "channels 0 must be at least 1")


def test_the_sweeps_eta_falls_as_the_current_runs_epochs_finish():
    from vggbench.ablations.sweep import SweepStep
    from vggbench.train.trainer import EpochEnd

    fake, now = _FakeBar(), [0.0]
    bars = SweepBars(quiet=True, name="lrn")
    bars.bar, bars.clock, bars.started = fake, (lambda: now[0]), 0.0  # a bar as on a terminal
    bars.run_bars = None
    now[0] = 60.0  # the first run took a minute; 3 of 4 are left
    bars.on_run(SweepStep(2, 4, "A-LRN", 0, "77e0aa11bb22", False))
    assert fake.tasks[0]["info"] == "about 3 min left (from 1 run so far)"
    bars.run_bars = None  # the run's own bar is TrainBars' (tested above)
    now[0] = 90.0  # half a run later, at an epoch's end: 150 s left, said in minutes
    bars.on_epoch_end(EpochEnd(1, None, None, None, None))
    assert fake.tasks[0]["info"] == "about 2 min left (from 1 run so far)"
    now[0] = 500.0  # a slow run never makes the ETA negative
    bars.on_epoch_end(EpochEnd(2, None, None, None, None))
    assert fake.tasks[0]["info"] == "about 0 s left (from 1 run so far)"
