"""`eval --max-images N`: a stratified, seeded subset of the validation split, recorded per class."""

import json

import pytest
import torch
from conftest import assert_one_line_error

from vggbench.data import DATA_SEED, Dataset, TensorImages, load_dataset, stratified_subset
from vggbench.evaluate import engine
from vggbench.evaluate.records import EVAL_SUBSET_SEED, val_subset
from vggbench.models import ModelSpec, build_model

CLASSES = ["a", "b", "c"]
VAL_PER_CLASS = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An ImageFolder of 3 classes, 6 validation images each: in file order, the first 6 are all 'a'."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 2), ("val", VAL_PER_CLASS)):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 256, (40, 40, 3), generator=generator, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def always_a(tmp_path_factory):
    """Weights of a tiny net A whose every output is class 0 ('a'): FC8 all zero, its bias 50 for 'a'."""
    model = build_model(ModelSpec("A", num_classes=3, width=1 / 16, crop=32))
    state = model.state_dict()
    state["classifier.6.weight"] = torch.zeros_like(state["classifier.6.weight"])
    state["classifier.6.bias"] = torch.tensor([50.0, 0.0, 0.0])
    path = tmp_path_factory.mktemp("weights") / "always-a.pt"
    torch.save(state, path)
    return path, model, state


def _eval(cli, folder, weights, results, *more):
    return cli(
        "eval",
        "--checkpoint",
        str(weights),
        "--config",
        "A",
        "--width",
        "0.0625",
        "--crop",
        "32",
        "--data",
        f"imagefolder:{folder}",
        "--method",
        "center",
        "--results-dir",
        str(results),
        "--format",
        "json",
        "--quiet",
        *more,
    )


def test_the_subset_is_stratified_with_the_limit_vals_seed():
    # 5, 3 and 2 images of classes 0, 1, 2; 5 of them: shares 2.5, 1.5, 1.0 -> floors 2, 1, 1 and the
    # one left over to the largest remainder, tied between classes 0 and 1: the lower, class 0
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    dataset = Dataset("toy", ["x", "y", "z"], TensorImages(images, labels), TensorImages(images, labels))
    subset, limit, counts = val_subset(dataset, 5)
    assert limit == 5 and counts == [3, 1, 1]
    expected = stratified_subset(labels, 5, EVAL_SUBSET_SEED)
    assert torch.equal(subset.val.labels, labels[expected])
    assert torch.equal(subset.val.images[:, 0, 0, 0], expected.to(torch.uint8))  # image i is i
    assert subset.train is dataset.train
    # the whole split: unchanged, recorded as no limit
    assert val_subset(dataset, 10) == (dataset, None, None)
    assert val_subset(dataset, 11) == (dataset, None, None)
    assert val_subset(dataset, None) == (dataset, None, None)


def test_max_images_of_a_whole_split_are_the_images_of_limit_val():
    assert EVAL_SUBSET_SEED == DATA_SEED + 1  # what load_dataset's --limit-val uses
    whole = load_dataset("synthetic", seed=DATA_SEED)
    subset, _, counts = val_subset(whole, 24)
    limited = load_dataset("synthetic", limit_val=24, seed=DATA_SEED)
    assert torch.equal(subset.val.images, limited.val.images)
    assert torch.equal(subset.val.labels, limited.val.labels)
    assert counts == torch.bincount(limited.val.labels, minlength=whole.num_classes).tolist()


def test_eval_max_images_is_stratified_not_the_first_images(cli, folder, always_a, tmp_path):
    path, model, state = always_a
    result = _eval(cli, folder, path, tmp_path, "--max-images", "4")
    assert result.code == 0, result.err
    record = json.loads(result.out)[0]
    # 4 of 6 + 6 + 6: shares 4/3 each -> 1, 1, 1 and the one left over to the lowest class
    assert record["class_counts"] == [2, 1, 1] and record["images"] == 4
    assert record["limits"]["max_images"] == 4
    # the net always says 'a': 2 of the 4 are not 'a'
    assert record["top1_err"] == pytest.approx(50.0)
    # the first 4 images in file order are all 'a', and there the same net makes no error
    from vggbench.data import rgb_statistics
    from vggbench.models import load_state

    dataset = load_dataset(f"imagefolder:{folder}")
    assert dataset.val.labels[:4].tolist() == [0, 0, 0, 0]
    load_state(model, state)
    first = engine.evaluate(  # the first 4 images in file order, as --max-images took them before
        [model.eval()],
        dataset.val.subset(torch.arange(4)),
        rgb_statistics(dataset.train),
        methods=["center"],
        scales_px=[record["test_scales_px"][0]],
    )["center"]
    assert first.images == 4 and first.top1_err == 0.0


def test_eval_max_images_over_the_split_says_so_and_records_the_whole_split(cli, folder, always_a, tmp_path):
    path, _, _ = always_a
    whole = _eval(cli, folder, path, tmp_path)
    assert whole.code == 0 and whole.err == "", whole.err
    over = _eval(cli, folder, path, tmp_path, "--max-images", "100")
    assert over.code == 0, over.err
    assert over.err.strip().splitlines() == [
        f"note: --max-images 100 is at least the 18 validation images of imagefolder:{folder}: "
        "evaluating all of them"
    ]
    a, b = json.loads(whole.out)[0], json.loads(over.out)[0]
    assert b["limits"]["max_images"] is None and b["class_counts"] is None and b["images"] == 18
    assert a["id"] == b["id"]  # the same evaluation: the same record
    assert b["top1_err"] == pytest.approx(100 * 12 / 18)


@pytest.mark.parametrize("n", ["0", "-3"])
def test_eval_max_images_below_one_is_a_one_line_error(cli, folder, always_a, tmp_path, n):
    path, _, _ = always_a
    assert_one_line_error(
        _eval(cli, folder, path, tmp_path, "--max-images", n),
        f"--max-images {n} must be at least 1",
        "leave it out to evaluate the whole validation split",
    )
