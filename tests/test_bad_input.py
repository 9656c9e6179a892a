"""The bad-input suite: every command, bad values of every kind, each a one-line error with exit 2
and no traceback, raised before any training or data loading (so each case takes milliseconds).

Each row is (argv, message fragments). Placeholders in argv name module-scoped stores and files:
{store} holds two complete runs (R1, R2); {list}, {empty}, {wrongtype} hold a run record that is
`[]`, `{}` or a RunRecord whose `epochs` is 3; {evallist}, {ablation} and {bench} hold a broken
evaluation, ablation and bench record; {fresh} is a path that does not exist and must not after
the command either (nothing is written for bad input); {dir}, {json}, {emptyfile}, {text} are a
directory and non-torch files given as --checkpoint. The other tables (test_cli_params, test_train_runs,
test_ablations, test_bench, test_runs_command, test_ablation_specs, ...) hold the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from test_runs_command import make_run

from vggbench import store
from vggbench.store import SCHEMA

R1, R2 = "0123456789ab", "0123456789cd"
INF, NAN = "inf", "nan"
TRAIN = ["train", "--crop", "32", "--width", "0.0625", "--device", "cpu", "--quiet"]
TRAIN_AT = ["--results-dir", "{fresh}"]
SEED_2_63, SEED_2_64 = str(2**63), str(2**64)
FINITE = "must be a finite positive number"


def _train(*options: str) -> list[str]:
    return [*TRAIN, *options, *TRAIN_AT]


def _ablate(*argv: str) -> list[str]:
    return ["ablate", *argv, "--results-dir", "{fresh}", "--quiet"]


def _bench(*argv: str) -> list[str]:
    return ["bench", *argv, "--no-save", "--results-dir", "{fresh}"]


def _eval(*argv: str) -> list[str]:
    return ["eval", *argv, "--device", "cpu", "--results-dir", "{store}"]


CKPT = ["--checkpoint", "{json}", "--config", "A"]

CASES = [
    # --- params ---------------------------------------------------------------------------------
    (["params", "--width", INF], ["width inf", FINITE]),
    (["params", "--width", "-inf"], ["width -inf", FINITE]),
    (["params", "--width", NAN], ["width nan", FINITE]),
    (["params", "--width", "-0.5"], ["width -0.5", FINITE]),
    (["params", "--width", "1e400"], ["width inf", FINITE]),
    (["params", "--width", "wide"], ["--width", "valid number"]),
    (["params", "--config", "A", "--width", INF], ["width inf", FINITE]),
    (["params", "--config", "Z"], ["unknown config 'Z'"]),
    (["params", "--config", "A", "--size", "33"], ["multiple of 32"]),
    (["params", "--size", "0"], ["size 0"]),
    (["params", "--size", "-32"], ["size -32"]),
    (["params", "--classes", "0"], ["classes 0", "at least 1"]),
    (["params", "--classes", "many"], ["--classes", "valid integer"]),
    (["params", "--filters", "--channels", "-4"], ["channels -4 must be at least 1"]),
    (["params", "--filters", "--channels", "x"], ["--channels", "valid integer"]),
    (["params", "--format", "yaml"], ["unknown format 'yaml'"]),
    (["params", "extra"], ["extra"]),
    # --- train: every float option, finite and in range ------------------------------------------
    (_train("--width", INF), ["width inf", FINITE]),
    (_train("--width", "-inf"), ["width -inf", FINITE]),
    (_train("--width", NAN), ["width nan", FINITE]),
    (_train("--width", "0"), ["width 0.0", FINITE]),
    (_train("--width", "-1"), ["width -1.0", FINITE]),
    (_train("--lr", INF), ["learning rate inf", FINITE]),
    (_train("--lr", NAN), ["learning rate nan", FINITE]),
    (_train("--lr", "0"), ["learning rate 0.0", FINITE]),
    (_train("--lr", "-inf"), ["learning rate -inf", FINITE]),
    (_train("--momentum", "1"), ["momentum 1.0 must be in [0, 1)"]),
    (_train("--momentum", "-0.1"), ["momentum -0.1 must be in [0, 1)"]),
    (_train("--momentum", NAN), ["momentum nan must be in [0, 1)"]),
    (_train("--momentum", INF), ["momentum inf must be in [0, 1)"]),
    (_train("--weight-decay", INF), ["weight decay inf", "finite number of at least 0"]),
    (_train("--weight-decay", NAN), ["weight decay nan", "finite number of at least 0"]),
    (_train("--weight-decay", "-1e-4"), ["weight decay -0.0001", "at least 0"]),
    (_train("--init", "paper", "--init-std", INF), ["init std inf must be positive and finite"]),
    (_train("--init", "paper", "--init-std", NAN), ["init std nan must be positive and finite"]),
    (_train("--init", "paper", "--init-std", "-0.01"), ["init std -0.01 must be positive and finite"]),
    (_train("--init-std", INF), ["init std inf must be positive and finite"]),  # checked whatever the init
    (_train("--dropout", "1"), ["dropout 1.0 must be in [0, 1)"]),
    (_train("--dropout", "-0.5"), ["dropout -0.5 must be in [0, 1)"]),
    (_train("--dropout", NAN), ["dropout nan must be in [0, 1)"]),
    (_train("--dropout", INF), ["dropout inf must be in [0, 1)"]),
    (_train("--val-split", "0"), ["--val-split 0.0 must be in (0, 1)"]),
    (_train("--val-split", "1"), ["--val-split 1.0 must be in (0, 1)"]),
    (_train("--val-split", NAN), ["--val-split nan must be in (0, 1)"]),
    (_train("--val-split", INF), ["--val-split inf must be in (0, 1)"]),
    (_train("--val-split", "-0.2"), ["--val-split -0.2 must be in (0, 1)"]),
    (_train("--config", "A-LRN", "--lrn-alpha", INF), ["LRN alpha inf must be positive"]),
    (_train("--config", "A-LRN", "--lrn-alpha", NAN), ["LRN alpha nan must be positive"]),
    (_train("--config", "A-LRN", "--lrn-alpha", "-1e-4"), ["LRN alpha -0.0001 must be positive"]),
    # --- train: seeds and whole numbers ----------------------------------------------------------
    (_train("--seed", "-1"), ["seed -1 must be a whole number in [0, 2^63"]),
    (_train("--seed", SEED_2_63), [f"seed {SEED_2_63} must be a whole number in [0, 2^63"]),
    (_train("--seed", SEED_2_64), [f"seed {SEED_2_64} must be a whole number in [0, 2^63"]),
    (_train("--seed", "1.5"), ["--seed", "valid integer"]),
    (_train("--epochs", "0"), ["epochs 0 must be at least 1"]),
    (_train("--batch", "0"), ["batch size 0 must be at least 1"]),
    (_train("--max-lr-decreases", "-1"), ["max lr decreases -1 must be at least 0"]),
    (_train("--limit-train", "0"), ["--limit-train 0 must be at least 1"]),
    (_train("--limit-val", "0"), ["--limit-val 0 must be at least 1"]),
    (_train("--workers", "-1"), ["workers -1 must be at least 0"]),
    (_train("--max-device-batch", "0"), ["max device batch 0 must be at least 1"]),
    (_train("--fc-width", "0"), ["fc width 0 must be at least 1"]),
    # --- train: names ----------------------------------------------------------------------------
    (_train("--config", "F"), ["unknown config 'F'"]),
    (_train("--init", "xavier"), ["unknown init 'xavier'", "paper, glorot, kaiming, preinit"]),
    (
        _train("--init", "preinit", "--preinit-from", "abc", "--preinit-mapping", "random"),
        ["unknown pre-init mapping 'random'", "stage, order"],
    ),
    (_train("--preinit-from", "abc"), ["--preinit-from needs --init preinit"]),
    (
        _train("--init", "preinit", "--preinit-from", "abc", "--init-from", "abc"),
        ["--init-from and --init preinit both set the initial weights"],
    ),
    (_train("--crop", "0"), ["multiple of 32"]),
    (_train("--crop", "-32"), ["multiple of 32"]),
    (_train("--scale", "256:abc"), ["bad scale"]),
    (_train("--scale", "-256"), ["bad scale"]),
    (_train("--data", "imagenet"), ["unknown dataset 'imagenet'"]),
    (_train("--data", "imagefolder:"), ["needs a path"]),
    # --- ablate ----------------------------------------------------------------------------------
    (_ablate("lrn", "--seeds", "-1"), ["--seeds -1: need 1 to 1000"]),
    (_ablate("lrn", "--seeds", "1001"), ["--seeds 1001: need 1 to 1000"]),
    (_ablate("lrn", "--seeds", SEED_2_64), [f"--seeds {SEED_2_64}: need 1 to 1000"]),
    (_ablate("lrn", "--width", INF), ["width inf", FINITE]),
    (_ablate("lrn", "--width", NAN), ["width nan", FINITE]),
    (_ablate("lrn", "--width", "0"), ["width 0.0", FINITE]),
    (_ablate("lrn", "--lr", INF), ["--lr inf", FINITE]),
    (_ablate("lrn", "--lr", NAN), ["--lr nan", FINITE]),
    (_ablate("lrn", "--lr", "-0.01"), ["--lr -0.01", FINITE]),
    (_ablate("jitter", "--finetune-lr", INF), ["--finetune-lr inf", FINITE]),
    (_ablate("jitter", "--finetune-lr", NAN), ["--finetune-lr nan", FINITE]),
    (_ablate("lrn", "--crop", "30"), ["multiple of 32"]),
    (_ablate("lrn", "--epochs", "0"), ["--epochs 0 must be a whole number of at least 1"]),
    (_ablate("lrn", "--batch", "0"), ["--batch 0 must be a whole number of at least 1"]),
    (_ablate("lrn", "--limit-train", "0"), ["--limit-train 0 must be a whole number of at least 1"]),
    (_ablate("lrn", "--init", "xavier"), ["--init xavier must be one of paper, glorot, kaiming, preinit"]),
    (_ablate("lrn", "--data", "imagenet"), ["unknown dataset 'imagenet'"]),
    (_ablate("lrn", "--format", "xml"), ["unknown format 'xml'"]),
    (_ablate("lrn", "--shard", "0/0"), ["bad shard '0/0'"]),
    (_ablate("lrn", "--shard", "x"), ["bad shard 'x'"]),
    (_ablate("lrn", "--config", "F"), ["--config F"]),
    # --- eval: run ids ---------------------------------------------------------------------------
    (_eval("*"), ["no stored run '*'"]),
    (_eval("a[b"), ["no stored run 'a[b'"]),
    (_eval("?"), ["no stored run '?'"]),
    (_eval("../runs/" + R1), ["no stored run '../runs/"]),
    (_eval("ffff"), ["no stored run 'ffff'"]),
    (_eval("0123456789"), ["run id '0123456789' is ambiguous", "give more characters"]),
    (_eval("--fuse", R1, R1), [f"run {R1} is named twice", "name each run once"]),
    (_eval("--fuse", R1, "0123456789a"), [f"run {R1} is named twice", "'0123456789a'"]),
    (_eval("--fuse", R1, R2, "--run", R2), [f"run {R2} is named twice"]),
    (_eval(R1, R1), [f"run {R1} is named twice"]),
    # --- eval: options that apply to --checkpoint only -------------------------------------------
    (_eval(R1, "--classes", "10"), ["--classes describes a --checkpoint file", "leave them out"]),
    (_eval(R1, "--width", "0.5"), ["--width describes a --checkpoint file"]),
    (_eval(R1, "--crop", "32"), ["--crop describes a --checkpoint file"]),
    (_eval("--config", "A", "--classes", "3"), ["--classes describes a --checkpoint file"]),
    (_eval("--weights", "torchvision:vgg16", "--classes", "10"), ["--classes describes a --checkpoint"]),
    (_eval(R1, "--width", "1", "--crop", "64"), ["--width, --crop describe a --checkpoint file"]),
    (_eval(*CKPT, "--classes", "0"), ["--classes 0 must be at least 1"]),
    (_eval(*CKPT, "--width", INF), ["--width inf", FINITE]),
    (_eval(*CKPT, "--width", NAN), ["--width nan", FINITE]),
    (_eval(*CKPT, "--width", "0"), ["--width 0.0", FINITE]),
    (_eval(*CKPT, "--crop", "30"), ["multiple of 32"]),
    # --- eval: what --checkpoint names -----------------------------------------------------------
    (_eval("--checkpoint", "{dir}", "--config", "A"), ["is a directory", "give a weights file"]),
    (_eval("--checkpoint", "{json}", "--config", "A"), ["not a torch file", "weights.json"]),
    (_eval("--checkpoint", "{emptyfile}", "--config", "A"), ["not a torch file", "empty.pt"]),
    (_eval("--checkpoint", "{text}", "--config", "A"), ["not a torch file", "notes.pt"]),
    (_eval("--checkpoint", "{fresh}", "--config", "A"), ["does not exist"]),
    (_eval(R1, "--checkpoint", "{json}"), ["give one source of models"]),
    # --- eval: other options ---------------------------------------------------------------------
    (_eval(R1, "--batch", "0"), ["batch 0 must be at least 1"]),
    (_eval(R1, "--method", "sideways"), ["sideways"]),
    (_eval(R1, "--scales", "huge"), ["huge"]),
    (
        _eval(R1, "--scales", "256,256"),
        ["bad test scales '256,256'", "256 is given twice", "give each scale once"],
    ),
    (_eval(R1, "--scales", "288,256,288"), ["288 is given twice"]),
    (_eval(R1, "--norm", "zscore"), ["unknown normalisation 'zscore'"]),
    (_eval(R1, "--format", "xml"), ["unknown format 'xml'"]),
    (_eval(R1, "--scale", "512:256"), ["reversed"]),
    # --- records of the wrong shape, wherever they are read ---------------------------------------
    (["runs", "list", "--results-dir", "{list}"], ["corrupt record", "aaaa00000000.json", "a JSON list"]),
    (["runs", "list", "--results-dir", "{empty}"], ["corrupt record", "bbbb00000000.json", "no id"]),
    (
        ["runs", "list", "--results-dir", "{wrongtype}"],
        ["corrupt record", "cccc00000000.json", "RunRecord.epochs is a number 3", "delete it"],
    ),
    (["runs", "show", "aaaa", "--results-dir", "{list}"], ["corrupt record", "aaaa00000000.json"]),
    (["runs", "show", "bbbb", "--results-dir", "{empty}"], ["corrupt record", "bbbb00000000.json"]),
    (["runs", "show", "cccc", "--results-dir", "{wrongtype}"], ["RunRecord.epochs is a number 3"]),
    (["runs", "export", "--results-dir", "{list}"], ["corrupt record", "aaaa00000000.json"]),
    (["runs", "export", "--results-dir", "{evallist}"], ["corrupt record", "eeee00000000.json"]),
    (
        ["runs", "show", R1, "--results-dir", "{evallist}"],
        ["corrupt record", "eeee00000000.json", "a JSON list"],
    ),
    (["eval", "aaaa", "--results-dir", "{list}"], ["corrupt record", "aaaa00000000.json"]),
    (["eval", "bbbb", "--results-dir", "{empty}"], ["corrupt record", "bbbb00000000.json"]),
    (["eval", "cccc", "--results-dir", "{wrongtype}"], ["RunRecord.epochs is a number 3"]),
    (["eval", "--config", "A", "--results-dir", "{list}"], ["corrupt record", "aaaa00000000.json"]),
    (["report", "--results-dir", "{list}", "--no-plots"], ["corrupt record", "aaaa00000000.json"]),
    (["report", "--results-dir", "{empty}", "--no-plots"], ["corrupt record", "bbbb00000000.json"]),
    (["report", "--results-dir", "{wrongtype}", "--no-plots"], ["RunRecord.epochs is a number 3"]),
    (["report", "--results-dir", "{evallist}", "--no-plots"], ["corrupt record", "eeee00000000.json"]),
    (
        ["report", "--results-dir", "{ablation}", "--no-plots"],
        ["corrupt record", "aaaa11111111.json", "AblationRecord.arms is a number 3"],
    ),
    (["report", "--results-dir", "{bench}", "--no-plots"], ["corrupt record", "bbbb11111111.json"]),
    # --- report ----------------------------------------------------------------------------------
    (["report", "--results-dir", "{fresh}"], ["has no records", "check --results-dir"]),
    (["report", "--results-dir", "{fresh}", "--out", "{fresh}"], ["has no records", "fresh"]),
    (["report", "--results-dir", "{dir}"], ["has no records", "ckpt-dir"]),
    (["report", "--bogus"], ["--bogus"]),
    # --- runs ------------------------------------------------------------------------------------
    (["runs", "show", "*", "--results-dir", "{store}"], ["no stored run '*'"]),
    (["runs", "show", "a[b", "--results-dir", "{store}"], ["no stored run 'a[b'"]),
    (["runs", "show", "[0-9]*", "--results-dir", "{store}"], ["no stored run '[0-9]*'"]),
    (["runs", "show", " ", "--results-dir", "{store}"], ["empty run id"]),
    (["runs", "compare", R1, "*", "--results-dir", "{store}"], ["no stored run '*'"]),
    (["runs", "compare", R1, "ffff", "--results-dir", "{store}"], ["no stored run 'ffff'"]),
    (["runs", "show", R1, "--format", "xml", "--results-dir", "{store}"], ["unknown format 'xml'"]),
    (["runs", "list", "--config", "Z", "--results-dir", "{store}"], ["unknown config 'Z'"]),
    (["runs", "nope"], ["nope"]),
    (["runs", "list", "--results-dir", "{store}", "--sort", "speed"], ["cannot sort by 'speed'", "top1_err"]),
    (["runs", "export", "--epochs", "--format", "xml", "--results-dir", "{store}"], ["unknown format 'xml'"]),
    (["runs", "compare", R1, "--diff-only", "--results-dir", "{store}"], ["at least 2 runs"]),
    # --- tracking and wide tables ----------------------------------------------------------------
    (_train("--tensorboard", "{json}"), ["--tensorboard", "is a file", "give a folder"]),
    (_ablate("lrn", "--tensorboard", "{json}"), ["--tensorboard", "is a file", "give a folder"]),
    (["params", "--wide", "--format", "xml"], ["unknown format 'xml'"]),
    (["params", "--wide=yes"], ["--wide"]),
    (_train("--preset", "huge"), ["unknown preset 'huge'", "smoke, quick, paper"]),
    # --- bench -----------------------------------------------------------------------------------
    (_bench("--width", INF), ["width inf", FINITE]),
    (_bench("--width", NAN), ["width nan", FINITE]),
    (_bench("--width", "-0.125"), ["width -0.125", FINITE]),
    (_bench("--width", "0.125,inf"), ["width inf", FINITE]),
    (_bench("--crop", "0"), ["crop/size 0", "multiple of 32"]),
    (_bench("--crop", "abc"), ["--crop", "'abc'"]),
    (_bench("--classes", "0"), ["classes 0 must be at least 1"]),
    (_bench("--repeats", "0"), ["repeats 0 must be at least 1"]),
    (_bench("--eval-images", "0"), ["eval images 0 must be at least 1"]),
    (_bench("--batch", "-1"), ["batch -1"]),
    (_bench("--config", "A,Q"), ["unknown config 'Q'"]),
]


def _case_id(argv: list[str]) -> str:
    return " ".join(argv).replace(" --results-dir {fresh}", "").replace(" --results-dir {store}", "")


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """The stores and files the table's placeholders name, built once for the module."""
    root = tmp_path_factory.mktemp("bad-input")
    good = root / "store"
    store.write_run(good, make_run(R1))
    store.write_run(good, make_run(R2))

    def broken(name: str, kind: str, record_id: str, data: object) -> str:
        folder = root / name
        store.write_run(folder, make_run(R1))  # beside a good record: the bad one is named
        (folder / kind).mkdir(parents=True, exist_ok=True)
        (folder / kind / f"{record_id}.json").write_text(json.dumps(data))
        return str(folder)

    wrong = {**make_run("cccc00000000").to_json(), "epochs": 3}
    ablation = {"schema": SCHEMA, "id": "aaaa11111111", "kind": "ablation", "arms": 3}
    files = root / "files"
    (files / "ckpt-dir").mkdir(parents=True)
    (files / "weights.json").write_text('{"classifier.6.weight": [1, 2]}')
    (files / "empty.pt").write_bytes(b"")
    (files / "notes.pt").write_text("weights: see the run\n")
    return {
        "store": str(good),
        "list": broken("list", "runs", "aaaa00000000", []),
        "empty": broken("empty", "runs", "bbbb00000000", {}),
        "wrongtype": broken("wrongtype", "runs", "cccc00000000", wrong),
        "evallist": broken("evallist", "evals", "eeee00000000", []),
        "ablation": broken("ablation", "ablations", "aaaa11111111", ablation),
        "bench": broken("bench", "bench", "bbbb11111111", [1, 2]),
        "dir": str(files / "ckpt-dir"),
        "json": str(files / "weights.json"),
        "emptyfile": str(files / "empty.pt"),
        "text": str(files / "notes.pt"),
    }


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv, fragments", CASES, ids=[_case_id(argv) for argv, _ in CASES])
def test_bad_input(cli, places, tmp_path, argv, fragments):
    fresh = tmp_path / "fresh"
    where = {**places, "fresh": str(fresh)}
    before = _snapshot(Path(places["store"]).parent)
    assert_one_line_error(cli(*(arg.format(**where) for arg in argv)), *fragments)
    assert not fresh.exists()  # bad input writes nothing: no store, no report, no record
    assert _snapshot(Path(places["store"]).parent) == before  # and changes nothing already written


def test_the_table_has_no_duplicate_inputs():
    assert len({tuple(argv) for argv, _ in CASES}) == len(CASES)


# --- Issue 26: empty paths, the machine's upper bounds, contradictions, nothing left behind -----------
# Each case runs in an empty current folder, which stays empty: an empty path would mean it.

BIG = "99999999999"  # more than any size, count or scale the machine can hold
HUGE_INT = str(2**70)  # past a 64-bit integer
EMPTY_PATH = "is an empty path; name a file or folder"
EMPTY_RUN = "is an empty run id; give a stored run id or a unique prefix"
NO_DEVICE = "; use auto, cpu, cuda or cuda:N"
CORES = "(the cores here"

CASES_26 = [
    # --- every path option and run id rejects the empty string -----------------------------------
    ([*TRAIN, "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH, "e.g. --results-dir results"]),
    ([*TRAIN, "--results-dir", "  "], ["--results-dir '  ' " + EMPTY_PATH]),
    (_train("--cache-dir", ""), ["--cache-dir '' " + EMPTY_PATH]),
    (_train("--data-root", ""), ["--data-root '' " + EMPTY_PATH]),
    (_train("--init-from", ""), ["--init-from '' " + EMPTY_RUN]),
    (_train("--init", "preinit", "--preinit-from", ""), ["--preinit-from '' " + EMPTY_RUN]),
    (["report", "--out", "", "--results-dir", "{store}"], ["--out '' " + EMPTY_PATH]),
    (["report", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (["params", "--write", ""], ["--write '' " + EMPTY_PATH]),
    (_eval("--checkpoint", "", "--config", "A"), ["--checkpoint '' " + EMPTY_PATH]),
    (_eval(""), ["RUN '' " + EMPTY_RUN]),
    (_eval("--run", ""), ["--run '' " + EMPTY_RUN]),
    (_eval(R1, "--data-root", ""), ["--data-root '' " + EMPTY_PATH]),
    (["eval", R1, "--device", "cpu", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (_bench("--data-folder", ""), ["--data-folder '' " + EMPTY_PATH]),
    (["bench", "--no-save", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (_ablate(""), ["NAME '' " + EMPTY_PATH]),
    (["ablate", "lrn", "--quiet", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (["runs", "list", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (["runs", "show", "", "--results-dir", "{store}"], ["RUN '' " + EMPTY_RUN]),
    (["runs", "show", R1, "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (["runs", "compare", "", R2, "--results-dir", "{store}"], ["RUN '' " + EMPTY_RUN]),
    (["runs", "export", "--out", "", "--results-dir", "{store}"], ["--out '' " + EMPTY_PATH]),
    (["runs", "export", "--results-dir", ""], ["--results-dir '' " + EMPTY_PATH]),
    (["runs", "diff", "", "--results-dir", "{store}"], ["REFERENCE '' " + EMPTY_PATH]),
    # --- params: sizes the machine cannot hold --------------------------------------------------------
    (["params", "--width", "1e6"], ["width 1e+06 must be at most 16", "use e.g. 1 or 0.125"]),
    (["params", "--width", "16.5"], ["width 16.5 must be at most 16"]),
    (["params", "--classes", "100000000000"], ["classes 100000000000 must be at most 100,000"]),
    (["params", "--classes", "100001"], ["classes 100001 must be at most 100,000"]),
    (["params", "--size", "1048576"], ["crop/size 1048576 must be at most 2048 pixels"]),
    (["params", "--size", HUGE_INT], [f"crop/size {HUGE_INT} must be at most 2048 pixels"]),
    (["params", "--config", "A", "--width", "1e6"], ["width 1e+06 must be at most 16"]),
    (["params", "--config", "A", "--classes", BIG], [f"classes {BIG} must be at most 100,000"]),
    (["params", "--config", "D", "--size", "4096"], ["crop/size 4096 must be at most 2048 pixels"]),
    # --- train: sizes, counts and floats that overflow in training -----------------------------------
    (_train("--crop", HUGE_INT), [f"crop/size {HUGE_INT} must be at most 2048 pixels"]),
    (_train("--crop", "4096"), ["crop/size 4096 must be at most 2048 pixels"]),
    (_train("--width", "1e6"), ["width 1e+06 must be at most 16"]),
    (_train("--fc-width", "1000000000"), ["fc width 1000000000 must be at most 65,536"]),
    (_train("--lr", "1e300"), ["learning rate 1e+300 must be at most 10", "the paper's is 0.01"]),
    (_train("--lr", "11"), ["learning rate 11.0 must be at most 10"]),
    (_train("--weight-decay", "1e300"), ["weight decay 1e+300 must be at most 1", "5e-4"]),
    (_train("--weight-decay", "2"), ["weight decay 2.0 must be at most 1"]),
    (_train("--config", "A-LRN", "--lrn-alpha", "1e300"), ["LRN alpha 1e+300 must be at most 1"]),
    (_train("--config", "A-LRN", "--lrn-alpha", "2"), ["LRN alpha 2 must be at most 1"]),
    (_train("--init", "paper", "--init-std", "1e300"), ["init std 1e+300 must be at most 1"]),
    (_train("--batch", BIG), [f"batch size {BIG} must be at most 65536", "the paper's is 256"]),
    (_train("--batch", "65537"), ["batch size 65537 must be at most 65536"]),
    (_train("--max-device-batch", HUGE_INT), [f"max device batch {HUGE_INT} must be at most 65536"]),
    (_train("--workers", "100000"), ["workers 100000 must be at most 64"]),
    (_train("--workers", "65"), ["workers 65 must be at most 64"]),
    (_train("--scale", BIG), [f"bad scale '{BIG}'", "at most 4096 in the paper's units"]),
    (_train("--scale", "256:99999"), ["bad scale '256:99999'", "at most 4096"]),
    (_train("--scale", "5000"), ["bad scale '5000'", "at most 4096"]),
    (_train("--device", "mps"), ["unknown device 'mps'" + NO_DEVICE]),
    (_train("--device", "tpu"), ["unknown device 'tpu'" + NO_DEVICE]),
    (_train("--device", "cuda:x"), ["unknown device 'cuda:x'" + NO_DEVICE]),
    # --- eval -------------------------------------------------------------------------------------
    (_eval(R1, "--scales", BIG), [f"bad test scales '{BIG}'", "at most 4096 in the paper's units"]),
    (_eval(R1, "--scales", "224,5000"), ["bad test scales '224,5000'", "at most 4096"]),
    (_eval(R1, "--batch", BIG), [f"--batch {BIG} must be at most 65536"]),
    (_eval(*CKPT, "--width", "1e6"), ["--width 1000000.0 must be at most 16 (16x the paper's channels)"]),
    (_eval(*CKPT, "--classes", BIG), [f"--classes {BIG} must be at most 100000 (FC8 would not fit"]),
    (_eval(*CKPT, "--crop", HUGE_INT), [f"--crop {HUGE_INT} must be at most 2048 (pixels"]),
    (["eval", R1, "--device", "mps", "--results-dir", "{store}"], ["unknown device 'mps'" + NO_DEVICE]),
    (["eval", R1, "--device", "gpu", "--results-dir", "{store}"], ["unknown device 'gpu'" + NO_DEVICE]),
    # --- bench --------------------------------------------------------------------------------------
    (
        _bench("--threads", "100000000000000000000"),
        ["--threads 100000000000000000000 must be at most", CORES],
    ),
    (_bench("--threads", "100000"), ["--threads 100000 must be at most", CORES]),
    (_bench("--workers", "100000"), ["--workers 100000 must be at most", CORES]),
    (_bench("--batch", BIG), [f"--batch {BIG} must be at most 65536"]),
    (_bench("--batch", "64,70000"), ["--batch 70000 must be at most 65536"]),
    (_bench("--width", "1e6"), ["width 1e+06 must be at most 16"]),
    (_bench("--crop", HUGE_INT), [f"crop/size {HUGE_INT} must be at most 2048 pixels"]),
    (_bench("--classes", BIG), [f"classes {BIG} must be at most 100,000"]),
    (_bench("--device", "mps"), ["unknown device 'mps'" + NO_DEVICE]),
    # --- ablate ----------------------------------------------------------------------------------
    (
        _ablate("lrn", "--jobs", "99999999999999999999"),
        ["--jobs 99999999999999999999 must be at most", CORES],
    ),
    (_ablate("lrn", "--jobs", "100000"), ["--jobs 100000 must be at most", CORES]),
    (_ablate("lrn", "--lr", "1e300"), ["--lr 1e+300 must be at most 10 (the paper's is 0.01)"]),
    (_ablate("lrn", "--batch", BIG), [f"--batch {BIG} must be at most 65536 (the paper's is 256)"]),
    (_ablate("lrn", "--width", "1e6"), ["--width 1000000.0 must be at most 16 (16x the paper's channels)"]),
    (_ablate("lrn", "--crop", HUGE_INT), [f"--crop {HUGE_INT} must be at most 2048 (pixels)"]),
    (_ablate("lrn", "--device", "mps"), ["unknown device 'mps'" + NO_DEVICE]),
    # --- contradictions: a train-scale or net filter beside named runs ----------------------------------
    (
        _eval(R1, "--scale", "256:512"),
        [f"run {R1} was trained at S=256, not --scale 256:512", "drop --scale"],
    ),
    (_eval(R1, "--scale", "384"), [f"run {R1} was trained at S=256, not --scale 384"]),
    (_eval(R1, R2, "--fuse", "--scale", "384"), [f"run {R1} was trained at S=256, not --scale 384"]),
    (_eval("--run", R1, "--config", "D"), [f"run {R1} is net A, not --config D", "drop --config"]),
    (_eval(R1, "--config", "B"), [f"run {R1} is net A, not --config B"]),
    # --- caught late (after the data loads): nothing is left behind ---------------------------------------
    (_train("--limit-train", "64"), ["the training set has 64 images, fewer than one batch of 256"]),
    (_train("--init-from", "nosuchrun"), ["--init-from nosuchrun: no stored run 'nosuchrun'"]),
    (_train("--init", "preinit", "--preinit-from", "nosuchrun"), ["--preinit-from nosuchrun: no stored run"]),
    ([*TRAIN, "--init-from", R1, "--results-dir", "{store}"], [f"the weights of run {R1}", "are missing"]),
    (
        [*TRAIN, "--init", "preinit", "--preinit-from", R1, "--results-dir", "{store}"],
        [f"--preinit-from {R1}: the weights of run {R1}", "retrain it with --force"],
    ),
]


@pytest.mark.parametrize("argv, fragments", CASES_26, ids=[_case_id(argv) for argv, _ in CASES_26])
def test_bad_input_refused_before_anything_is_written(cli, places, tmp_path, monkeypatch, argv, fragments):
    """Issue 26's clusters: a one-line error, exit 2; no store made, none changed, and nothing in
    the current folder."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    fresh = tmp_path / "fresh"
    where = {**places, "fresh": str(fresh)}
    before = _snapshot(Path(places["store"]).parent)
    assert_one_line_error(cli(*(arg.format(**where) for arg in argv)), *fragments)
    assert not fresh.exists() and list(here.iterdir()) == []
    assert _snapshot(Path(places["store"]).parent) == before


def test_the_new_tables_have_no_duplicate_inputs():
    inputs = [tuple(argv) for argv, _ in CASES + CASES_26]
    assert len(set(inputs)) == len(inputs) and len(CASES_26) >= 80


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has srun (a Slurm cluster)")
def test_submit_slurm_without_srun_is_refused_before_anything(cli, tmp_path):
    result = cli("ablate", "lrn", "--submit", "slurm", "--quiet", "--results-dir", str(tmp_path / "store"))
    assert_one_line_error(result, "--submit slurm: no srun on this machine's PATH", "--submit local")
    assert not (tmp_path / "store").exists()


def test_train_refuses_an_unknown_device_before_its_folder_is_made(tmp_path):
    from vggbench.errors import VggbenchError
    from vggbench.train import TrainConfig, train

    with pytest.raises(VggbenchError, match="unknown device 'mps'; use auto, cpu, cuda or cuda:N"):
        train(TrainConfig(width=0.0625, crop=32), results_dir=tmp_path / "store", device="mps", quiet=True)
    assert not (tmp_path / "store").exists()
