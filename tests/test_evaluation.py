"""Test protocols (Section 3.2): dense, multi-crop, both, center, fusion, top-k, costs, `vggbench eval`."""

import json

import pytest
import torch
from conftest import assert_one_line_error

from vggbench import counting, paper, scales
from vggbench.counting import count_macs
from vggbench.errors import VggbenchError
from vggbench.evaluate import engine, protocols, sources
from vggbench.models import ModelSpec, build_model, init_weights, to_fully_convolutional, uninitialised_model

TINY = dict(width=1 / 16, crop=32)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets gain nothing from threads, and on a busy 2-core machine OpenMP's spinning threads
    make them 100x slower; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(config="A", classes=10, seed=0):
    """A tiny net with He init: its outputs differ between images (the paper's std 0.01 init gives
    near-uniform posteriors at this depth, where top-k would be decided by ties)."""
    model = build_model(ModelSpec(config, num_classes=classes, **TINY))
    init_weights(model, "kaiming", generator=torch.Generator().manual_seed(seed))
    return model.eval()


def centered(images, q):
    """A test preprocessing: the data module's rescale, minus 0.5."""
    from vggbench.data import rescale_shorter_side

    return rescale_shorter_side(images, q) - 0.5


def batches(n=12, size=(40, 52), classes=10, seed=0, batch=5):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, *size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return [(images[i : i + batch], labels[i : i + batch]) for i in range(0, n, batch)]


# --- The protocols -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["A", "A-LRN", "C"])
def test_dense_at_q_equal_to_the_crop_without_flip_is_the_fc_softmax(config):
    fc = tiny(config)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        dense = protocols.dense_probabilities(to_fully_convolutional(fc), x, flip=False)
        torch.testing.assert_close(dense, torch.softmax(fc(x), dim=1), atol=1e-5, rtol=0)


def test_dense_at_the_crop_scale_and_center_crop_give_the_same_errors():
    model = tiny()
    data = batches(size=(32, 32))
    out = engine.evaluate_batches(
        [model], data, centered, methods=["dense", "center"], scales_px=[32], flip=False
    )
    assert (out["dense"].top1_err, out["dense"].top5_err) == (out["center"].top1_err, out["center"].top5_err)


def test_grid_has_fifty_crops_touching_the_corners_and_their_flips():
    x = torch.arange(2 * 3 * 45 * 61, dtype=torch.float32).view(2, 3, 45, 61)
    crops = protocols.grid_crops(x, 32)
    assert crops.shape == (2, paper.CROPS_PER_SCALE, 3, 32, 32) and paper.CROPS_PER_SCALE == 50
    assert torch.equal(crops[:, 0], x[..., :32, :32])  # top left
    assert torch.equal(crops[:, 4], x[..., :32, -32:])  # top right
    assert torch.equal(crops[:, 20], x[..., -32:, :32])  # bottom left
    assert torch.equal(crops[:, 24], x[..., -32:, -32:])  # bottom right
    assert torch.equal(crops[:, 25:], torch.flip(crops[:, :25], dims=[-1]))  # the flips, in the same order
    offsets = protocols.grid_offsets(61, 32)
    assert offsets.tolist()[0] == 0 and offsets.tolist()[-1] == 29 and len(offsets) == 5
    assert len(set(offsets.tolist())) == 5  # a regular grid: no crop twice


def test_fifty_forward_passes_per_scale_and_one_batched_pass_per_group():
    model = tiny()
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    # three equal-size images in one batch: their 150 crops go through the net in one pass
    out = engine.evaluate_batches(
        [model], batches(n=3, batch=3), centered, methods=["multi-crop"], scales_px=[32], batch_size=150
    )
    handle.remove()
    assert calls == [150] and out["multi-crop"].forward_passes_per_image == 50
    three = engine.evaluate_batches(
        [model], batches(n=3), centered, methods=["multi-crop"], scales_px=[32, 37, 41]
    )
    assert three["multi-crop"].forward_passes_per_image == 150


def test_symmetric_input_gives_the_same_dense_output_with_and_without_flip():
    conv = to_fully_convolutional(tiny())
    half = torch.randn(2, 3, 40, 26)
    x = torch.cat([half, half.flip(-1)], dim=-1)  # mirror-symmetric, 40 x 52
    with torch.no_grad():
        torch.testing.assert_close(
            protocols.dense_probabilities(conv, x, flip=True),
            protocols.dense_probabilities(conv, x, flip=False),
            atol=1e-6,
            rtol=0,
        )


def test_both_is_the_mean_of_dense_and_multi_crop_posteriors():
    model = tiny()
    x = centered(batches(n=4, batch=4)[0][0], 37)
    with torch.no_grad():
        dense = protocols.dense_probabilities(to_fully_convolutional(model), x)
        crops = protocols.multi_crop_probabilities(model, x, 32)
    labels = (0.5 * (dense + crops)).argmax(1)  # labels the fused posterior gets right, the parts may not
    out = engine.evaluate_batches(
        [model],
        [(batches(n=4, batch=4)[0][0], labels)],
        centered,
        methods=["multi-crop+dense"],
        scales_px=[37],
    )
    assert out["multi-crop+dense"].top1_err == 0


def test_images_of_different_sizes_are_grouped_by_shape():
    conv = to_fully_convolutional(tiny())
    sizes = [(32, 48), (40, 60), (36, 50)]  # the first two rescale to 32 x 48 at Q = 32, the third to 32 x 44
    images = [torch.randint(0, 256, (3, *sizes[i % 3]), dtype=torch.uint8) for i in range(7)]
    labels = torch.arange(7)
    calls = []
    handle = conv.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    out = engine.evaluate_batches([conv], [(images, labels)], centered, methods=["dense"], scales_px=[32])
    handle.remove()
    assert sorted(calls) == [
        (4, 3, 32, 44),
        (10, 3, 32, 48),
    ]  # 3 image shapes, 2 net shapes; flips in the batch
    alone = [
        engine.evaluate_batches(
            [conv], [([im], labels[i : i + 1])], centered, methods=["dense"], scales_px=[32]
        )
        for i, im in enumerate(images)
    ]
    assert out["dense"].top1_err == pytest.approx(sum(a["dense"].top1_err for a in alone) / 7)


def test_evaluate_reads_an_image_set_and_subtracts_the_training_mean():
    from vggbench.data import TensorImages, eval_preprocess, rgb_statistics

    data = batches(n=10, batch=10)
    images, labels = data[0]
    train = TensorImages(images.flip(0), labels)
    stats = rgb_statistics(train)
    model = tiny()
    out = engine.evaluate(
        [model],
        TensorImages(images, labels),
        stats,
        methods=["dense", "center"],
        scales_px=[37],
        batch_size=4,
    )
    by_hand = engine.evaluate_batches(
        [model], data, lambda x, q: eval_preprocess(x, q, stats), methods=["dense", "center"], scales_px=[37]
    )
    for method in ("dense", "center"):
        assert (out[method].top1_err, out[method].top5_err) == (
            by_hand[method].top1_err,
            by_hand[method].top5_err,
        )
    with pytest.raises(VggbenchError, match="crop"):
        engine.evaluate(
            [model], TensorImages(images, labels), stats, methods=["dense"], scales_px=[37], crop=64
        )


# --- Errors --------------------------------------------------------------------------------------


def test_top1_top5_errors_of_a_handmade_set():
    # 4 images, 6 classes; class scores fixed by hand
    probs = torch.tensor(
        [
            [0.50, 0.20, 0.10, 0.08, 0.07, 0.05],  # label 0: top-1 hit
            [0.05, 0.50, 0.20, 0.10, 0.08, 0.07],  # label 3: rank 4, a top-5 hit only
            [0.07, 0.05, 0.50, 0.20, 0.10, 0.08],  # label 1: rank 6, missed by both
            [0.08, 0.07, 0.05, 0.50, 0.20, 0.10],  # label 4: rank 2, a top-5 hit only
        ]
    )
    labels = torch.tensor([0, 3, 1, 4])
    # top-1 error 75% (1 of 4 right), top-5 error 25% (3 of 4)
    assert {k: int(v) for k, v in protocols.topk_correct(probs, labels).items()} == {1: 1, 5: 3}
    # with fewer than 5 classes top-5 means top-K: every label is in it
    assert {
        k: int(v)
        for k, v in protocols.topk_correct(probs[:, :3].softmax(1), torch.tensor([0, 2, 1, 1])).items()
    } == {
        1: 1,
        5: 4,
    }


def test_fusing_a_model_with_itself_is_the_model():
    model = tiny()
    data = batches()
    one = engine.evaluate_batches([model], data, centered, methods=["dense", "multi-crop"], scales_px=[37])
    two = engine.evaluate_batches(
        [model, model], data, centered, methods=["dense", "multi-crop"], scales_px=[37]
    )
    for method in ("dense", "multi-crop"):
        assert (two[method].top1_err, two[method].top5_err) == (one[method].top1_err, one[method].top5_err)
        assert two[method].forward_passes_per_image == 2 * one[method].forward_passes_per_image
    p = torch.rand(4, 10).softmax(1)
    torch.testing.assert_close(protocols.fuse([p, p]), p)


def test_fusing_different_class_sets_raises():
    with pytest.raises(VggbenchError, match="classes"):
        engine.evaluate_batches(
            [tiny(classes=10), tiny(classes=5)], batches(), centered, methods=["dense"], scales_px=[37]
        )
    with pytest.raises(VggbenchError, match="class sets differ"):
        protocols.check_same_classes([["cat", "dog"], ["dog", "cat"]])


# --- Costs ---------------------------------------------------------------------------------------


def test_dense_macs_of_d_match_the_paper_values():
    spec = ModelSpec("D")
    expected = {224: 15_470_264_320, 256: 20_539_113_472, 384: 49_551_114_240, 512: 92_541_681_664}
    for q, macs in expected.items():
        assert counting.macs_per_pass(spec, True, q, q) == macs
    # the shape-only count agrees with fvcore's (counting.count_macs) on the conv form
    assert count_macs(uninitialised_model(spec, fully_convolutional=True), 256)[1] == expected[256]


@pytest.mark.parametrize("config,size", [("A-LRN", (37, 50)), ("C", (55, 73)), ("B-5x5", (32, 32))])
def test_shape_only_macs_agree_with_fvcore_at_odd_sizes(config, size):
    spec = ModelSpec(config, num_classes=10, **TINY)
    assert counting.macs_per_pass(spec, True, *size) == count_macs(uninitialised_model(spec, True), size)[1]
    assert counting.macs_per_pass(spec, False, 32, 32) == count_macs(uninitialised_model(spec), 32)[1]


def test_cost_per_image_of_each_method():
    model = tiny()
    spec = model.spec
    out = engine.evaluate_batches(
        [model], batches(size=(32, 32)), centered, methods=list(protocols.METHODS), scales_px=[32, 37, 41]
    )
    dense = sum(2 * counting.macs_per_pass(spec, True, q, q) for q in (32, 37, 41))
    crops = 150 * counting.macs_per_pass(spec, False, 32, 32)
    assert out["dense"].macs_per_image == dense and out["dense"].forward_passes_per_image == 6
    assert out["multi-crop"].macs_per_image == crops
    assert out["multi-crop+dense"].macs_per_image == dense + crops
    assert out["center"].forward_passes_per_image == 3
    assert out["dense"].macs_per_image < out["multi-crop"].macs_per_image / 4  # the paper's point


# --- Bad input (library) -------------------------------------------------------------------------


def test_bad_input_raises_one_error_type():
    with pytest.raises(VggbenchError, match="below the crop"):
        protocols.check_scales([224, 200], 224)
    with pytest.raises(VggbenchError, match="test scale 37 px is given twice"):
        protocols.check_scales([37, 55, 37], 32)  # e.g. paper scales 256 and 257 at crop 32
    with pytest.raises(VggbenchError, match="unknown method"):
        protocols.parse_methods(["dense,sparse"])
    with pytest.raises(VggbenchError, match="bad test scales"):
        scales.test_scales("several", scales.TrainScale(256, 256))
    with pytest.raises(VggbenchError, match="torchvision:vgg16"):
        sources.torchvision_model("torchvision:vgg17")  # fails before any download
    with pytest.raises(VggbenchError, match="outside the model"):
        engine.evaluate_batches(
            [tiny(classes=3)], batches(classes=10), centered, methods=["dense"], scales_px=[32]
        )


def test_parse_methods_accepts_lists_and_aliases():
    assert protocols.parse_methods(["multi-crop,dense", "both"]) == [
        "dense",
        "multi-crop",
        "multi-crop+dense",
    ]


# --- End to end through the CLI ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two tiny trained runs (A and B, jittered S) on the synthetic set."""
    from vggbench.train import TrainConfig, train

    root = tmp_path_factory.mktemp("results")
    ids = []
    for config in ("A", "B"):
        cfg = TrainConfig(
            net=config,
            width=1 / 16,
            crop=32,
            data="synthetic",
            epochs=1,
            batch_size=32,
            limit_train=64,
            limit_val=16,
            scale="256:512",
        )
        ids.append(train(cfg, results_dir=root, device="cpu", quiet=True).id)
    return root, ids


def test_cli_multi_crop_and_dense_at_the_jitter_scales(cli, store):
    root, (run_a, _) = store
    result = cli(
        "eval",
        run_a[:6],
        "--multi-crop",
        "--dense",
        "--scales",
        "jitter",
        "--limit-val",
        "20",
        "--results-dir",
        str(root),
        "--format",
        "json",
        "--quiet",
    )
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["method"] for r in records] == ["dense", "multi-crop", "multi-crop+dense"]
    by = {r["method"]: r for r in records}
    assert by["dense"]["test_scales"] == [256, 384, 512] and by["dense"]["test_scales_px"] == [37, 55, 73]
    assert (
        by["dense"]["forward_passes_per_image"] == 6 and by["multi-crop"]["forward_passes_per_image"] == 150
    )
    assert by["multi-crop+dense"]["forward_passes_per_image"] == 156
    assert all(r["images"] == 20 and r["runs"] == [run_a] for r in records)
    for key in (
        "id",
        "kind",
        "nets",  # the net names (the CLI flag is --config)
        "train_scales",
        "crop",
        "dataset",
        "top1_err",
        "top5_err",
        "macs_per_image",
        "images_per_s",
        "device",
        "torch_version",
        "created",
    ):
        assert key in by["dense"]
    assert (root / "evals" / f"{by['dense']['id']}.json").exists()


def test_cli_selects_runs_by_filter_and_fuses(cli, store):
    root, (run_a, run_b) = store
    selected = cli(
        "eval",
        "--config",
        "B",
        "--scale",
        "256:512",
        "--multi-crop",
        "--scales",
        "jitter",
        "--max-images",
        "4",
        "--results-dir",
        str(root),
        "--format",
        "json",
        "--quiet",
    )
    assert selected.code == 0, selected.err
    assert json.loads(selected.out)[0]["runs"] == [run_b]
    fused = cli(
        "eval",
        "--fuse",
        run_a,
        run_b,
        "--dense",
        "--scales",
        "multi",
        "--max-images",
        "6",
        "--results-dir",
        str(root),
        "--format",
        "markdown",
        "--quiet",
    )
    assert fused.code == 0, fused.err
    assert "A+B" in fused.out and "256,384,512" in fused.out


def test_cli_evaluates_a_checkpoint_of_torchvision_layout(cli, store, tmp_path):
    """Random weights in torchvision's layout, saved locally (never a download)."""
    import torchvision

    root, _ = store
    with torch.device("meta"):  # torchvision's module, its state names and shapes; random values made cheaply
        theirs = torchvision.models.vgg11(weights=None, num_classes=10)
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=generator) * 0.01 for k, v in theirs.state_dict().items()}
    path = tmp_path / "vgg11.pt"
    torch.save(state, path)
    result = cli(
        "eval",
        "--checkpoint",
        str(path),
        "--config",
        "A",
        "--norm",
        "imagenet",
        "--data",
        "synthetic",
        "--max-images",
        "1",
        "--method",
        "center",
        "--results-dir",
        str(root),
        "--format",
        "json",
        "--quiet",
    )
    assert result.code == 0, result.err
    record = json.loads(result.out)[0]
    assert record["runs"][0].startswith("checkpoint:") and record["normalization"] == ["imagenet"]
    assert record["test_scales_px"] == [256] and record["forward_passes_per_image"] == 1


def test_cli_bad_input_is_one_line(cli, store, tmp_path):
    root, (run_a, run_b) = store
    base = ("--results-dir", str(root), "--quiet")
    assert_one_line_error(cli("eval", run_a, "--scales", "200,256", *base), "test scale")
    assert_one_line_error(cli("eval", run_a, "--method", "sparse", *base), "unknown method")
    assert_one_line_error(cli("eval", run_a, "--scales", "several", *base), "bad test scales")
    assert_one_line_error(
        cli("eval", "--weights", "torchvision:vgg17", "--data", "synthetic", *base), "torchvision:vgg16"
    )
    assert_one_line_error(cli("eval", "--fuse", run_a, *base), "at least two")
    assert_one_line_error(cli("eval", *base), "nothing to evaluate")
    # a model whose number of classes differs from the dataset's
    seven = build_model(ModelSpec("A", num_classes=7, **TINY))
    torch.save(seven.state_dict(), tmp_path / "seven.pt")
    assert_one_line_error(
        cli(
            "eval",
            "--checkpoint",
            str(tmp_path / "seven.pt"),
            "--config",
            "A",
            "--width",
            "0.0625",
            "--crop",
            "32",
            "--data",
            "synthetic",
            *base,
        ),
        "7 classes",
    )
    # an empty val folder
    from PIL import Image

    (tmp_path / "folder" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "folder" / "val" / "cat").mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(tmp_path / "folder" / "train" / "cat" / "a.png")
    assert_one_line_error(cli("eval", run_a, "--data", f"imagefolder:{tmp_path / 'folder'}", *base))


# --- Dense evaluation's geometry (Caffe's ceil-rounded pools) -------------------------------------


@pytest.mark.parametrize(
    "crop, side, cells", [(32, 37, 2), (32, 55, 2), (32, 73, 3), (32, 64, 2), (224, 256, 2), (224, 384, 6)]
)
def test_dense_score_map_sizes_follow_caffes_rounding(crop, side, cells):
    """ceil(side / 32) pool5 cells, minus FC6's (crop / 32) - 1: 37 -> 19 -> 10 -> 5 -> 3 -> 2 px."""
    spec = ModelSpec("A", num_classes=10, width=1 / 16, crop=crop)
    conv = uninitialised_model(spec, fully_convolutional=True, meta=True)
    assert conv(torch.zeros(1, 3, side, side, device="meta")).shape[-2:] == (cells, cells)


def test_dense_sees_the_bottom_right_strip_of_a_small_image():
    """At crop 32 and Q = 37 px, floor rounding dropped the last 5 rows and columns (one window at
    the top-left); with ceil rounding a change there changes the dense posterior."""
    conv = to_fully_convolutional(tiny())
    x = torch.zeros(1, 3, 37, 37)
    strip = x.clone()
    strip[..., 32:, :] = 1.0
    strip[..., :, 32:] = 1.0
    other = strip.clone()
    other[..., 33:, 33:] = 2.0
    with torch.no_grad():
        blank, one, two = (protocols.dense_probabilities(conv, t, flip=False) for t in (x, strip, other))
    assert (one - blank).abs().max() > 1e-4 and (two - one).abs().max() > 1e-4
