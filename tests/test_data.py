"""Data: sources, image sets, RGB statistics, the paper's augmentation and the loaders."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer.main
from conftest import needs_fashion_mnist, write_idx
from PIL import Image

from vggbench.cli import app
from vggbench.data import (
    AugmentParams,
    Dataset,
    EvalLoader,
    FolderImages,
    RGBStats,
    TensorImages,
    TrainAugment,
    TrainLoader,
    epoch_permutation,
    eval_preprocess,
    load_dataset,
    read_idx,
    rescale_shorter_side,
    rgb_statistics,
    stratified_subset,
)
from vggbench.data import stats as stats_module
from vggbench.data.augment import crop_offsets
from vggbench.data.sources import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES
from vggbench.errors import VggbenchError
from vggbench.options import DATASETS_HELP
from vggbench.scales import TrainScale

ZERO_STATS = RGBStats(torch.zeros(3), torch.zeros(3), torch.eye(3))
FIXED_AT_CROP = TrainScale(224, 224)  # S = crop in pixels for any crop


def random_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def params(n: int, scale: int | list[int], offset=None, flip=False, alpha=None) -> AugmentParams:
    scale_t = torch.full((n,), scale) if isinstance(scale, int) else torch.tensor(scale)
    offset_t = torch.rand(n, 2, generator=torch.Generator().manual_seed(1)) if offset is None else offset
    flip_t = torch.full((n,), bool(flip)) if isinstance(flip, bool) else torch.as_tensor(flip)
    alpha_t = torch.zeros(n, 3) if alpha is None else alpha
    return AugmentParams(scale_t, offset_t, flip_t, alpha_t)


# --- RGB statistics ------------------------------------------------------------------------------


def numpy_stats(images: torch.Tensor):
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3).numpy().astype(np.float64) / 255
    mean = pixels.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov(pixels, rowvar=False, bias=True))
    return mean, eigval[::-1], eigvec[:, ::-1]


def test_rgb_statistics_match_numpy_across_chunks(monkeypatch, tmp_path):
    images = random_images(40, 6, 5)
    images[:, 1] = images[:, 0] // 2 + images[:, 1] // 3  # correlate channels
    monkeypatch.setattr(stats_module, "PIXELS_PER_CHUNK", 64)  # many chunks
    stats = rgb_statistics(TensorImages(images, torch.zeros(40)), cache_dir=tmp_path)
    mean, eigval, eigvec = numpy_stats(images)
    assert torch.allclose(stats.mean.double(), torch.from_numpy(mean), atol=1e-6)
    assert torch.allclose(stats.eigval.double(), torch.from_numpy(eigval.copy()), atol=1e-6)
    # eigenvectors up to sign
    dots = (stats.eigvec.double() * torch.from_numpy(eigvec.copy())).sum(0).abs()
    assert torch.allclose(dots, torch.ones(3, dtype=torch.float64), atol=1e-5)
    cached = list(tmp_path.glob("rgb-stats-*.json"))
    assert len(cached) == 1
    again = rgb_statistics(TensorImages(images, torch.zeros(40)), cache_dir=tmp_path)
    assert torch.equal(again.mean, stats.mean) and torch.equal(again.eigvec, stats.eigvec)


def test_rgb_statistics_of_streamed_set_equal_in_memory(tmp_path):
    images = random_images(6, 7, 9, seed=3)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(paths[-1])
    streamed = rgb_statistics(FolderImages(paths, [0] * 6))
    memory = rgb_statistics(TensorImages(images, torch.zeros(6)))
    assert torch.allclose(streamed.mean, memory.mean) and torch.allclose(streamed.eigval, memory.eigval)


# --- Augmentation ------------------------------------------------------------------------------


@pytest.mark.parametrize("input_range, scale", [("0-1", 1.0), ("0-255", 255.0)])
def test_pca_shift_with_fixed_alpha_is_the_hand_formula(input_range, scale):
    """Pixel + PCA shift - mean RGB, on the input range's scale (0-255 is the paper's, Caffe's)."""
    eigvec = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))[0]
    stats = RGBStats(torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.02, 0.005]), eigvec)
    augment = TrainAugment(32, FIXED_AT_CROP, stats, flip=False, input_range=input_range)
    images = torch.full((2, 3, 32, 32), 100, dtype=torch.uint8)
    alpha = torch.tensor([[0.1, -0.2, 0.3], [-1.0, 0.5, 2.0]])
    out = augment.apply(images, params(2, 32, alpha=alpha))
    for i in range(2):
        shift = eigvec @ (alpha[i] * stats.eigval)
        expected = (100 / 255 + shift - stats.mean) * scale
        assert torch.allclose(out[i], expected.view(3, 1, 1).expand(3, 32, 32), atol=1e-6 * scale)


def test_the_pca_shifts_std_for_a_known_covariance_is_alpha_times_the_01_eigenvalue_times_255():
    """The unit of the colour shift, stated: eigenvalues of the covariance on the [0, 1] scale, the
    shift scaled by 255 on 0-255 input. A grey set (R = G = B) of pixel std 90 grey levels, as
    Fashion-MNIST's, has one component: eigenvalue 3 x 90^2 / 255^2 = 0.3737 on [0, 1]. Its shift has
    std 0.1 x 0.3737 x 255 = 9.53 grey levels along that component (sqrt-eigenvalue variants give
    0.1 x sqrt(0.3737) x 255 = 15.6)."""
    from vggbench.data.stats import stats_from_moments

    grey = torch.full((3, 3), 90.0**2, dtype=torch.float64)  # covariance on 0..255: R, G, B equal
    mean = torch.full((3,), 72.9, dtype=torch.float64)
    stats = stats_from_moments(1, mean, grey + torch.outer(mean, mean))
    assert stats.eigval[0].item() == pytest.approx(3 * 90**2 / 255**2, rel=1e-6)
    augment = TrainAugment(32, FIXED_AT_CROP, stats, flip=False)  # pca_std 0.1, input 0-255
    component = stats.eigvec[:, 0]
    assert torch.allclose(component.abs(), torch.full((3,), 3**-0.5), atol=1e-6)
    # alpha ~ N(0, 0.1) along the first component: the shift's std is the shift at alpha = 0.1
    shift = augment.colour_shift(torch.tensor([[augment.pca_std, 0.0, 0.0]]))[0] * augment.pixel_max
    assert (shift @ component).item() == pytest.approx(0.1 * 3 * 90**2 / 255**2 * 255, rel=1e-5)
    assert (shift @ component).item() == pytest.approx(9.53, abs=0.005)
    # and by sampling: the std of the shift along the component over many images
    alphas = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0)) * augment.pca_std
    along = augment.colour_shift(alphas) @ component * augment.pixel_max
    assert along.std().item() == pytest.approx(9.53, rel=0.01)


def test_the_default_input_is_pixels_on_0_255_minus_the_mean():
    stats = RGBStats(torch.tensor([0.5, 0.4, 0.3]), torch.zeros(3), torch.eye(3))
    images = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    out = TrainAugment(32, FIXED_AT_CROP, stats, flip=False).apply(images, params(1, 32))
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([200 - 127.5, 200 - 102.0, 200 - 76.5]), atol=1e-4)


def test_rescale_shorter_side_keeps_aspect_ratio():
    landscape = rescale_shorter_side(random_images(2, 40, 60), 20)
    assert landscape.shape == (2, 3, 20, 30) and landscape.dtype == torch.float32
    assert 0 <= landscape.min() and landscape.max() <= 1  # uint8 in, [0, 1] out
    portrait = rescale_shorter_side(torch.rand(1, 3, 90, 30), 45)
    assert portrait.shape == (1, 3, 135, 45)
    constant = rescale_shorter_side(torch.full((1, 3, 28, 28), 51, dtype=torch.uint8), 37)
    assert torch.allclose(constant, torch.full_like(constant, 0.2), atol=1e-6)


def test_fixed_scale_at_crop_is_an_exact_crop():
    images = random_images(8, 32, 48)
    augment = TrainAugment(32, FIXED_AT_CROP, ZERO_STATS, pca_std=0.0, flip=False, input_range="0-1")
    draws = params(8, 32)
    out = augment.apply(images, draws)
    _, _, _, oy, ox = crop_offsets(draws, 32, 48, 32)
    assert len(set(ox.tolist())) > 1
    for i in range(8):
        window = images[i, :, oy[i] : oy[i] + 32, ox[i] : ox[i] + 32].float() / 255
        assert torch.allclose(out[i], window, atol=1e-5)
    constant = torch.full((4, 3, 28, 28), 200, dtype=torch.uint8)  # upscaled 28 -> 32: still constant
    up = TrainAugment(32, FIXED_AT_CROP, ZERO_STATS, pca_std=0.0)(constant, torch.Generator().manual_seed(0))
    assert torch.allclose(up, torch.full_like(up, 200.0), atol=1e-4)  # the default 0-255 scale


def test_downscale_is_antialiased_rescale_then_crop():
    images = random_images(3, 90, 120)
    augment = TrainAugment(32, TrainScale(256, 256), ZERO_STATS, pca_std=0.0, flip=False, input_range="0-1")
    s = augment.smin
    assert s == 37
    draws = params(3, s)
    out = augment.apply(images, draws)
    rescaled = F.interpolate(
        images.float() / 255, size=(37, 49), mode="bilinear", antialias=True, align_corners=False
    )
    _, _, _, oy, ox = crop_offsets(draws, 37, 49, 32)
    for i in range(3):
        assert torch.allclose(out[i], rescaled[i, :, oy[i] : oy[i] + 32, ox[i] : ox[i] + 32], atol=1e-5)


def test_jitter_draws_cover_the_range_and_stay_inside():
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS)
    draws = augment.draw(5000, torch.Generator().manual_seed(0))
    assert (augment.smin, augment.smax) == (37, 73)
    assert set(draws.scale.tolist()) == set(range(37, 74))
    fixed = TrainAugment(32, TrainScale(384, 384), ZERO_STATS).draw(100, torch.Generator().manual_seed(0))
    assert set(fixed.scale.tolist()) == {55}


def test_flips_are_half_and_mirror_the_unflipped_crop():
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS, pca_std=0.0)
    draws = augment.draw(4000, torch.Generator().manual_seed(0))
    assert 0.45 < draws.flip.float().mean() < 0.55
    images = random_images(16, 28, 28)
    some = draws[:16]
    plain = augment.apply(
        images, AugmentParams(some.scale, some.offset, torch.zeros(16, dtype=torch.bool), some.alpha)
    )
    flipped = augment.apply(
        images, AugmentParams(some.scale, some.offset, torch.ones(16, dtype=torch.bool), some.alpha)
    )
    assert torch.allclose(flipped, torch.flip(plain, dims=[-1]), atol=1e-5)
    assert not torch.allclose(flipped, plain, atol=1e-3)
    off = TrainAugment(32, TrainScale(256, 512), ZERO_STATS, flip=False).draw(100, torch.Generator())
    assert not off.flip.any()


def test_augment_is_deterministic_and_list_path_matches_batch_path():
    stats = RGBStats(torch.tensor([0.3, 0.3, 0.3]), torch.tensor([0.1, 0.01, 0.001]), torch.eye(3))
    augment = TrainAugment(32, TrainScale(256, 512), stats)
    images = random_images(12, 28, 28)
    a = augment(images, torch.Generator().manual_seed(5))
    b = augment(images, torch.Generator().manual_seed(5))
    c = augment(images, torch.Generator().manual_seed(6))
    assert a.shape == (12, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    listed = augment(list(images), torch.Generator().manual_seed(5))
    assert torch.allclose(listed, a, atol=1e-6)
    mixed = [random_images(1, 28 + i, 40 - i, seed=i)[0] for i in range(5)]
    out = augment(mixed, torch.Generator().manual_seed(0))
    assert out.shape == (5, 3, 32, 32)


def test_eval_preprocess_rescales_and_subtracts_mean():
    stats = RGBStats(torch.tensor([0.1, 0.2, 0.3]), torch.ones(3), torch.eye(3))
    images = torch.full((2, 3, 28, 42), 255, dtype=torch.uint8)
    out = eval_preprocess(images, 37, stats, "0-1")
    assert out.shape == (2, 3, 37, 56)
    assert torch.allclose(out[:, :, 5, 5], torch.tensor([0.9, 0.8, 0.7]).expand(2, 3), atol=1e-6)
    paper_scale = eval_preprocess(images, 37, stats)  # the default: 0-255, as in training
    assert torch.allclose(
        paper_scale[:, :, 5, 5], torch.tensor([229.5, 204.0, 178.5]).expand(2, 3), atol=1e-4
    )
    listed = eval_preprocess([images[0], images[1, :, :20]], 32, stats)
    assert [tuple(x.shape) for x in listed] == [(3, 32, 48), (3, 32, 67)]


# --- Loaders -----------------------------------------------------------------------------------


def test_ranks_see_slices_of_the_single_process_batches():
    images, labels = random_images(100, 28, 28), torch.arange(100) % 10
    dataset = TensorImages(images, labels)
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS)
    single = TrainLoader(dataset, augment, 32, "cpu", seed=3)
    ranks = [TrainLoader(dataset, augment, 8, "cpu", seed=3, rank=r, world_size=4) for r in range(4)]
    assert single.batches_per_epoch == 3 and all(r.batches_per_epoch == 3 for r in ranks)
    for epoch in (0, 1):
        whole = list(single.epoch(epoch))
        parts = [list(r.epoch(epoch)) for r in ranks]
        for b, (x, y) in enumerate(whole):
            assert torch.equal(torch.cat([p[b][1] for p in parts]), y)
            assert torch.equal(torch.cat([p[b][0] for p in parts]), x)
    assert single.data_time > 0
    assert torch.equal(epoch_permutation(100, 3, 1), epoch_permutation(100, 3, 1))
    assert not torch.equal(epoch_permutation(100, 3, 0), epoch_permutation(100, 3, 1))
    seen = torch.cat([y for _, y in TrainLoader(dataset, augment, 25, "cpu", seed=0).epoch(0)])
    assert sorted(seen.tolist()) == sorted(labels.tolist())  # an epoch covers the set once
    uneven = TrainLoader(dataset, augment, 30, "cpu", seed=0, drop_last=False)
    assert [len(y) for _, y in uneven.epoch(0)] == [30, 30, 30, 10]


def test_loader_rejects_a_set_smaller_than_a_batch():
    dataset = TensorImages(random_images(10, 8, 8), torch.zeros(10))
    with pytest.raises(VggbenchError, match="fewer than one batch"):
        TrainLoader(dataset, TrainAugment(32, FIXED_AT_CROP, ZERO_STATS), 16, "cpu", seed=0)


def test_eval_loader_in_order_and_grouped_by_size(tmp_path):
    dataset = TensorImages(random_images(10, 8, 8), torch.arange(10))
    batches = list(EvalLoader(dataset, 4, "cpu"))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([x for x, _ in batches]), dataset.images)
    root = make_tree(tmp_path, {"a": [(10, 12), (8, 8), (10, 12)], "b": [(8, 8), (10, 12)]})
    folder = load_dataset(f"imagefolder:{root}").train
    loader = EvalLoader(folder, 2, "cpu")
    out = list(loader)
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.uint8 for x, _ in out)
    assert [tuple(x.shape) for x, _ in out] == [(2, 3, 8, 8), (2, 3, 10, 12), (1, 3, 10, 12)]
    assert torch.equal(torch.cat([y for _, y in out]), folder.labels[loader.order])


# --- Sources -----------------------------------------------------------------------------------


def test_stratified_subset_has_exact_class_counts():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    chosen = stratified_subset(labels, 10, seed=0)
    assert torch.bincount(labels[chosen]).tolist() == [5, 3, 2]
    assert torch.bincount(labels[stratified_subset(labels, 7, seed=0)]).tolist() == [4, 2, 1]
    assert torch.equal(chosen, stratified_subset(labels, 10, seed=0))
    assert not torch.equal(chosen, stratified_subset(labels, 10, seed=1))
    assert len(set(chosen.tolist())) == 10


def test_synthetic_is_deterministic_cheap_and_balanced():
    a = load_dataset("synthetic", seed=1)  # about 0.15 s on an idle 2-core machine
    b = load_dataset("synthetic", seed=1)
    c = load_dataset("synthetic", seed=2)
    assert a.train.images.shape == (512, 3, 64, 64) and a.val.images.shape == (128, 3, 64, 64)
    assert a.num_classes == 10 and len(set(a.classes)) == 10
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert not torch.equal(a.train.images[:128], a.val.images)
    assert torch.bincount(a.train.labels).tolist() == [52] * 2 + [51] * 8
    small = load_dataset("synthetic", synthetic_size=32, synthetic_classes=25, synthetic_count=(100, 50))
    assert small.train.images.shape == (100, 3, 32, 32) and small.num_classes == 25


def test_idx_parsing_and_a_torchvision_style_fashion_mnist_root(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_images, val_images = rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 256, (10, 28, 28))
    write_idx(raw / "train-images-idx3-ubyte.gz", train_images)
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", val_images)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    assert np.array_equal(read_idx(raw / "train-images-idx3-ubyte.gz"), train_images)
    data = load_dataset("fashion-mnist", root=tmp_path)
    assert data.classes == FASHION_MNIST_CLASSES and (len(data.train), len(data.val)) == (20, 10)
    assert data.train.images.shape == (20, 3, 28, 28)
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(train_images).to(torch.uint8))
    assert torch.equal(data.train.images[:, 0], data.train.images[:, 2])
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(
            bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 1 + (28).to_bytes(4, "big") * 2 + b"\0" * 100
        )
    with pytest.raises(VggbenchError, match="truncated"):
        load_dataset("fashion-mnist", root=tmp_path)


def test_missing_fashion_mnist_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(VggbenchError, match="dataset-fashion-mnist.*--data-root / --download") as error:
        load_dataset("fashion-mnist", root=tmp_path)
    assert str(tmp_path) in str(error.value)


def test_real_fashion_mnist_limited():
    needs_fashion_mnist()
    assert read_idx(DEBIAN_FASHION_MNIST / "train-labels-idx1-ubyte.gz").shape == (60000,)
    data = load_dataset("fashion-mnist", limit_train=1000)
    assert len(data.train) == 1000 and len(data.val) == 10000
    assert torch.bincount(data.train.labels).tolist() == [100] * 10
    assert torch.bincount(data.val.labels).tolist() == [1000] * 10
    assert data.train.images.shape[1:] == (3, 28, 28)


def write_cifar(root: Path, hundred: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    if hundred:
        folder, train_files, val_files, meta = root / "cifar-100-python", ["train"], ["test"], "meta"
        names_key, labels_key, k = "fine_label_names", "fine_labels", 100
    else:
        folder, meta, names_key, labels_key, k = (
            root / "cifar-10-batches-py",
            "batches.meta",
            "label_names",
            "labels",
            10,
        )
        train_files, val_files = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]
    folder.mkdir(parents=True)
    first = None
    for file in train_files + val_files:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        first = data if first is None else first
        with open(folder / file, "wb") as handle:
            pickle.dump({"data": data, labels_key: list(range(4))}, handle)
    with open(folder / meta, "wb") as handle:
        pickle.dump({names_key: [f"class{i}" for i in range(k)]}, handle)
    return first


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_folders_load(tmp_path, hundred):
    first = write_cifar(tmp_path, hundred)
    data = load_dataset("cifar100" if hundred else "cifar10", root=tmp_path)
    assert data.num_classes == (100 if hundred else 10)
    assert (len(data.train), len(data.val)) == ((4, 4) if hundred else (20, 4))
    assert torch.equal(data.train.images[0], torch.from_numpy(first[0].reshape(3, 32, 32)))
    with pytest.raises(VggbenchError, match="--data-root"):
        load_dataset("cifar100" if not hundred else "cifar10", root=tmp_path)


def make_tree(root: Path, splits: dict, val: dict | None = None) -> Path:
    """root/train/CLASS/i.png (and root/val) from {class: [(h, w), ...]}."""
    for split, classes in (("train", splits), ("val", val if val is not None else splits)):
        if classes is None:
            continue
        for name, sizes in classes.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, (h, w) in enumerate(sizes):
                image = random_images(1, h, w, seed=i)[0].permute(1, 2, 0).numpy()
                Image.fromarray(image).save(root / split / name / f"{i}.png")
    return root


def test_imagefolder_tree_loads_with_classes_and_sizes(tmp_path):
    root = make_tree(tmp_path, {"cat": [(20, 30), (24, 24)], "dog": [(16, 40)] * 3})
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    data = load_dataset(f"imagefolder:{root}")
    assert data.classes == ["cat", "dog"] and isinstance(data.train, FolderImages)
    assert (len(data.train), len(data.val)) == (5, 5)
    assert data.train.labels.tolist() == [0, 0, 1, 1, 1]
    image, label = data.train.get(0)
    assert image.shape == (3, 20, 30) and image.dtype == torch.uint8 and label == 0
    assert data.train.size_of(2) == (16, 40)
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS)
    loader = TrainLoader(data.train, augment, 2, "cpu", seed=0)
    batches = list(loader.epoch(0))
    assert len(batches) == 2 and batches[0][0].shape == (2, 3, 32, 32)
    ranks = [
        list(TrainLoader(data.train, augment, 1, "cpu", seed=0, rank=r, world_size=2).epoch(0))
        for r in (0, 1)
    ]
    for b, (x, _) in enumerate(batches):
        assert torch.allclose(torch.cat([ranks[0][b][0], ranks[1][b][0]]), x, atol=1e-6)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(VggbenchError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nowhere'}")
    root = make_tree(tmp_path / "noval", {"a": [(8, 8)] * 4, "b": [(8, 8)] * 4}, val={})
    with pytest.raises(VggbenchError, match="--val-split"):
        load_dataset(f"imagefolder:{root}")
    data = load_dataset(f"imagefolder:{root}", val_split=0.25)
    assert (len(data.train), len(data.val)) == (6, 2) and sorted(data.val.labels.tolist()) == [0, 1]
    empty = make_tree(tmp_path / "empty", {"a": [(8, 8)]})
    (empty / "train" / "hollow").mkdir()
    with pytest.raises(VggbenchError, match="hollow.*no images"):
        load_dataset(f"imagefolder:{empty}")
    (tmp_path / "flat" / "train").mkdir(parents=True)
    with pytest.raises(VggbenchError, match="no class folders"):
        load_dataset(f"imagefolder:{tmp_path / 'flat'}")


def test_corrupt_images_fail_naming_the_file_or_are_counted(tmp_path):
    root = make_tree(tmp_path, {"a": [(8, 8)] * 3, "b": [(8, 8)] * 3})
    garbage = root / "train" / "a" / "bad.png"
    garbage.write_bytes(b"this is not a png")
    with pytest.raises(VggbenchError, match="bad.png.*--skip-bad-images"):
        load_dataset(f"imagefolder:{root}")
    data = load_dataset(f"imagefolder:{root}", skip_bad_images=True)
    assert data.skipped == 1 and data.train.skipped_paths == [garbage] and len(data.train) == 6
    # a truncated file passes the header scan and fails when decoded
    good = (root / "train" / "b" / "0.png").read_bytes()
    (root / "train" / "b" / "truncated.png").write_bytes(good[: len(good) // 2])
    garbage.unlink()
    data = load_dataset(f"imagefolder:{root}")
    augment = TrainAugment(32, FIXED_AT_CROP, ZERO_STATS)
    with pytest.raises(VggbenchError, match="truncated.png"):
        list(TrainLoader(data.train, augment, 7, "cpu", seed=0).epoch(0))
    data = load_dataset(f"imagefolder:{root}", skip_bad_images=True)
    loader = TrainLoader(data.train, augment, 7, "cpu", seed=0)
    ((x, y),) = list(loader.epoch(0))
    assert loader.skipped == 1 and x.shape[0] == 6 and len(y) == 6
    evaluation = EvalLoader(data.train, 4, "cpu")
    assert sum(len(y) for _, y in evaluation) == 6 and evaluation.skipped == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spec": "imagenet"}, "unknown dataset 'imagenet'; valid: synthetic"),
        ({"spec": "synthetic", "limit_train": 0}, "--limit-train 0 must be at least 1"),
        ({"spec": "synthetic", "limit_val": -1}, "--limit-val -1 must be at least 1"),
        ({"spec": "synthetic", "val_split": 1.5}, "--val-split 1.5 must be a fraction"),
        ({"spec": "synthetic", "val_split": 0.0}, "--val-split 0.0 must be a fraction"),
        ({"spec": "imagefolder:"}, "needs a path"),
        ({"spec": "synthetic", "synthetic_classes": 1}, "at least 2"),
    ],
)
def test_bad_input_is_a_helpful_error(kwargs, message):
    spec = kwargs.pop("spec")
    with pytest.raises(VggbenchError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_dataset(spec, **kwargs)
    assert "imagefolder:PATH" in DATASETS_HELP


def test_every_data_option_lists_the_dataset_specs():
    group = typer.main.get_command(app)
    helps = {
        name: param.help
        for name, command in group.commands.items()
        for param in command.params
        if "--data" in param.opts
    }
    assert set(helps) == {"train", "ablate", "eval"}
    assert all(DATASETS_HELP in text for text in helps.values()), helps


def test_limits_and_val_split_are_stratified():
    data = load_dataset(
        "synthetic", limit_train=100, limit_val=20, synthetic_size=16, synthetic_count=(200, 100)
    )
    assert torch.bincount(data.train.labels).tolist() == [10] * 10
    assert torch.bincount(data.val.labels).tolist() == [2] * 10
    split = load_dataset("synthetic", val_split=0.1, synthetic_size=16, synthetic_count=(200, 100))
    assert isinstance(split, Dataset) and (len(split.train), len(split.val)) == (180, 20)
    assert len(split.test) == 100 and torch.bincount(split.val.labels).tolist() == [2] * 10
