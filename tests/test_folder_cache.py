"""Decoded image folders (data.cache): decoded once into a memory-mapped uint8 cache, then served as
the in-memory fast path.

Oracles: cached arrays equal the decoded images (torch.equal); cached training batches equal the
streamed ones bit for bit when no image is above S_max, and within the uint8 rounding (0.5/255) when
some are; a resumed cached run equals an uninterrupted
one; 2 gloo processes equal one on a cached folder; damaged caches are rebuilt exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_one_line_error
from PIL import Image

from vggbench.data import RGBStats, TensorImages, TrainAugment, TrainLoader, decode_image, load_dataset
from vggbench.data.augment import AugmentParams, crop_offsets
from vggbench.data.cache import (
    CACHED,
    STREAMED,
    CacheOptions,
    PackedImages,
    cache_files,
    cached_train_set,
    fit,
)
from vggbench.errors import VggbenchError
from vggbench.scales import TrainScale
from vggbench.store import RunRecord
from vggbench.train import TrainConfig, TrainingInterrupted, train

REPO = Path(__file__).resolve().parent.parent
ZERO_STATS = RGBStats(torch.zeros(3), torch.zeros(3), torch.eye(3))
S_MAX = 73  # scale 256:512 at crop 32: S in [37, 73] px


def smooth_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Photo-like uint8 images: random 1/8-resolution colours, bicubically upsampled."""
    low = torch.rand(n, 3, max(1, h // 8), max(1, w // 8), generator=torch.Generator().manual_seed(seed))
    up = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return (up.clamp(0, 1) * 255).round().to(torch.uint8)


def make_folder(root: Path, sizes: list[tuple[int, int]], classes: int = 2, fmt: str = "png") -> Path:
    for split in ("train", "val"):
        for i, (h, w) in enumerate(sizes):
            folder = root / split / f"c{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            image = smooth_images(1, h, w, seed=i)[0].permute(1, 2, 0).numpy()
            Image.fromarray(image).save(folder / f"{i:03d}.{fmt}")
    return root


def decoded(folder) -> list[torch.Tensor]:
    return [decode_image(p) for p in folder.paths]


SAME = [(32, 32)] * 24
MIXED = [(40, 50), (30, 44), (36, 36)] * 4 + [(90, 120), (150, 200), (80, 80)] * 4  # half above S_max


def test_a_same_size_folder_is_one_tensor_equal_to_the_decoded_images(tmp_path):
    train_set = load_dataset(f"imagefolder:{make_folder(tmp_path / 'f', SAME, fmt='jpg')}").train
    first = cached_train_set(train_set, S_MAX, CacheOptions("auto", tmp_path / "cache"))
    again = cached_train_set(train_set, S_MAX, CacheOptions("auto", tmp_path / "cache"))
    assert (first.path, first.built, again.path, again.built) == (CACHED, True, CACHED, False)
    expected = torch.stack(decoded(train_set))
    for result in (first, again):
        assert isinstance(result.imageset, TensorImages)
        assert torch.equal(result.imageset.images, expected)
        assert torch.equal(result.imageset.labels, train_set.labels)


def test_mixed_sizes_are_kept_up_to_s_max_and_stored_at_s_max_above_it(tmp_path):
    train_set = load_dataset(f"imagefolder:{make_folder(tmp_path / 'f', MIXED)}").train
    packed = cached_train_set(train_set, S_MAX, CacheOptions("auto", tmp_path / "cache")).imageset
    assert isinstance(packed, PackedImages)
    for i, image in enumerate(decoded(train_set)):
        stored = packed.get(i)[0]
        assert packed.sources[i] == tuple(image.shape[1:])
        if min(image.shape[1:]) <= S_MAX:
            assert torch.equal(stored, image)
        else:
            assert min(stored.shape[1:]) == S_MAX and torch.equal(stored, fit(image, S_MAX))


@pytest.mark.parametrize("sizes", [SAME, MIXED[:12]], ids=["same-size", "mixed-up-to-s-max"])
def test_cached_batches_equal_streamed_batches_bit_for_bit(tmp_path, sizes):
    train_set = load_dataset(f"imagefolder:{make_folder(tmp_path / 'f', sizes)}").train
    cached = cached_train_set(train_set, S_MAX, CacheOptions("auto", tmp_path / "cache")).imageset
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS)
    for rank, world in ((0, 1), (1, 2)):
        streamed = TrainLoader(train_set, augment, 4, "cpu", seed=5, rank=rank, world_size=world)
        fast = TrainLoader(cached, augment, 4, "cpu", seed=5, rank=rank, world_size=world)
        for (xs, ys), (xf, yf) in zip(streamed.epoch(1), fast.epoch(1), strict=True):
            assert torch.equal(xs, xf) and torch.equal(ys, yf)


@pytest.mark.parametrize("s", [73, 60, 37])
def test_images_stored_at_s_max_augment_as_the_originals_do(s):
    """The augmentation reduces an image above S_max to S_max itself, so storing it there changes only
    the uint8 rounding (<= 0.5/255); at S = S_max both are one antialiased rescale of the original."""
    original = smooth_images(6, 150, 200, seed=0)
    stored = [fit(image, S_MAX) for image in original]
    augment = TrainAugment(32, TrainScale(256, 512), ZERO_STATS, pca_std=0.0, flip=False, input_range="0-1")
    draws = AugmentParams(
        torch.full((6,), s), torch.rand(6, 2, generator=torch.Generator().manual_seed(1)),
        torch.zeros(6, dtype=torch.bool), torch.zeros(6, 3),
    )  # fmt: skip
    out = augment.apply(stored, draws, [(150, 200)] * 6)
    assert (out - augment.apply(original, draws)).abs().max() <= 0.5 / 255 + 1e-5
    if s == S_MAX:
        rescaled = F.interpolate(original.float() / 255, size=(73, 97), mode="bilinear", antialias=True)
        _, _, _, oy, ox = crop_offsets(draws, 73, 97, 32)
        oracle = torch.stack([rescaled[i, :, oy[i] : oy[i] + 32, ox[i] : ox[i] + 32] for i in range(6)])
        assert (out - oracle).abs().max() <= 0.5 / 255 + 1e-5


def test_a_changed_folder_is_decoded_again(tmp_path):
    root = make_folder(tmp_path / "f", SAME)
    options = CacheOptions("auto", tmp_path / "cache")
    cached_train_set(load_dataset(f"imagefolder:{root}").train, S_MAX, options)
    path = root / "train" / "c0" / "000.png"
    Image.fromarray(smooth_images(1, 32, 32, seed=99)[0].permute(1, 2, 0).numpy()).save(path)
    changed = load_dataset(f"imagefolder:{root}").train
    result = cached_train_set(changed, S_MAX, options)
    assert result.built and torch.equal(result.imageset.images, torch.stack(decoded(changed)))


def _truncate(data: Path, sidecar: Path) -> None:
    data.write_bytes(data.read_bytes()[:-7])


def _grow(data: Path, sidecar: Path) -> None:
    data.write_bytes(data.read_bytes() + b"\0")


def _wrong_fingerprint(data: Path, sidecar: Path) -> None:
    header = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**header, "fingerprint": "0" * 16}))


def _garbled_sidecar(data: Path, sidecar: Path) -> None:
    sidecar.write_text("{not json")


def _no_sidecar(data: Path, sidecar: Path) -> None:
    sidecar.unlink()


@pytest.mark.parametrize("damage", [_truncate, _grow, _wrong_fingerprint, _garbled_sidecar, _no_sidecar])
@pytest.mark.parametrize("sizes", [SAME, MIXED], ids=["same-size", "mixed"])
def test_a_damaged_cache_is_detected_and_rebuilt_exactly(tmp_path, damage, sizes):
    train_set = load_dataset(f"imagefolder:{make_folder(tmp_path / 'f', sizes)}").train
    options = CacheOptions("auto", tmp_path / "cache")
    cached_train_set(train_set, S_MAX, options)
    data, sidecar = cache_files(train_set, S_MAX, options.directory)
    damage(data, sidecar)
    notes: list[str] = []
    result = cached_train_set(train_set, S_MAX, options, note=notes.append)
    assert result.built and len(notes) == 1 and notes[0].startswith(f"corrupt: {data} (")
    assert notes[0].endswith("), rebuilding (decoding the folder again)")
    expected = [fit(image, S_MAX) for image in decoded(train_set)]
    assert all(torch.equal(result.imageset.get(i)[0], e) for i, e in enumerate(expected))
    assert not cached_train_set(train_set, S_MAX, options).built


def test_over_the_budget_or_off_streams(tmp_path):
    train_set = load_dataset(f"imagefolder:{make_folder(tmp_path / 'f', SAME)}").train
    notes: list[str] = []
    small = cached_train_set(train_set, S_MAX, CacheOptions("1e-6", tmp_path / "c"), note=notes.append)
    off = cached_train_set(train_set, S_MAX, CacheOptions("off", tmp_path / "c"))
    assert small.imageset is train_set and off.imageset is train_set and small.path == off.path == STREAMED
    assert "exceed the cache budget" in notes[0] and not (tmp_path / "c").exists()


# --- Training on the cached path -------------------------------------------------------------------

TINY = dict(net="A", width=1 / 16, crop=32, scale="256:512", batch_size=8, epochs=2, deterministic=True)


def run(results: Path, data: Path, cache: CacheOptions, **kwargs) -> RunRecord:
    config = kwargs.pop("config", TrainConfig(data=f"imagefolder:{data}", **TINY))
    return train(config, results_dir=results, device="cpu", quiet=True, cache=cache, **kwargs)


def weights(results: Path, record: RunRecord) -> dict[str, torch.Tensor]:
    return torch.load(results / record.checkpoint, weights_only=True)


def test_a_cached_run_has_the_streamed_runs_id_and_weights_on_a_same_size_folder(tmp_path):
    root = make_folder(tmp_path / "f", [(32, 32)] * 16)
    streamed = run(tmp_path / "s", root, CacheOptions("off"))
    cached = run(tmp_path / "c", root, CacheOptions("auto", tmp_path / "cache"))
    assert (streamed.train_data, cached.train_data) == (STREAMED, CACHED) and streamed.id == cached.id
    a, b = weights(tmp_path / "s", streamed), weights(tmp_path / "c", cached)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_on_the_cached_path_equals_an_uninterrupted_run(tmp_path):
    root = make_folder(tmp_path / "f", MIXED[:8] + MIXED[12:20])
    cache = CacheOptions("auto", tmp_path / "cache")
    whole = run(tmp_path / "whole", root, cache)

    def stop(end) -> None:
        if end.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises((KeyboardInterrupt, TrainingInterrupted)):
        run(tmp_path / "cut", root, cache, on_epoch_end=stop)
    resumed = run(tmp_path / "cut", root, cache, resume=True)
    assert whole.train_data == resumed.train_data == CACHED
    a, b = weights(tmp_path / "whole", whole), weights(tmp_path / "cut", resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e.train_loss for e in whole.epochs] == [e.train_loss for e in resumed.epochs]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_equal_one_on_a_cached_folder(tmp_path):
    root = make_folder(tmp_path / "f", MIXED[:8] + MIXED[12:20])
    config = TrainConfig(data=f"imagefolder:{root}", dropout=0.0, **TINY)
    single = run(tmp_path / "single", root, CacheOptions("auto", tmp_path / "cache"), config=config)
    argv = [sys.executable, "-m", "vggbench", "train", "--config", "A", "--width", "0.0625", "--crop", "32",
            "--scale", "256:512", "--data", f"imagefolder:{root}", "--batch", "8", "--epochs", "2",
            "--dropout", "0", "--deterministic", "--device", "cpu", "--quiet", "--json",
            "--cache-dir", str(tmp_path / "cache-ddp"), "--results-dir", str(tmp_path / "ddp")]  # fmt: skip
    port, procs = str(_free_port()), []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))  # fmt: skip
        procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    record = RunRecord.from_json(json.loads(outputs[0][0]))
    assert record.id == single.id and record.world_size == 2 and record.train_data == CACHED
    a, b = weights(tmp_path / "single", single), weights(tmp_path / "ddp", record)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


def test_an_unwritable_cache_dir_streams_with_a_one_line_warning(cli, tmp_path):
    root = make_folder(tmp_path / "f", [(32, 32)] * 16)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = f"imagefolder:{root}"
    result = cli("train", "--config", "A", "--width", "0.0625", "--crop", "32", "--data", data,
                 "--batch", "8", "--epochs", "1", "--device", "cpu", "--quiet", "--json",
                 "--cache-dir", str(blocker / "cache"), "--results-dir", str(tmp_path / "r"))  # fmt: skip
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert (
        len(warnings) == 1
        and "cannot write the decoded-image cache" in warnings[0]
        and "--cache-dir" in warnings[0]
    )
    assert json.loads(result.out)["train_data"] == STREAMED


@pytest.mark.parametrize("budget", ["-1", "0", "abc", "nan", "inf", "", "1GB"])
def test_a_bad_cache_budget_is_one_line_and_exit_2(cli, tmp_path, budget):
    result = cli("train", "--data", "synthetic", "--cache-budget", budget, "--results-dir", str(tmp_path))
    assert_one_line_error(result, "--cache-budget", "auto", "off")


def test_cache_options_check_the_budget_in_the_library_too():
    with pytest.raises(VggbenchError, match="--cache-budget"):
        CacheOptions("-2")
