"""JPEG decoding on the device for streamed folders: the byte-reading workers, the batch decode
(checked on the CPU against PIL's decode of the same files) and the loader's device path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vggbench.data import (
    FolderImages,
    RGBStats,
    TensorImages,
    TrainAugment,
    TrainLoader,
    decode_image,
    loaders,
)
from vggbench.data.decode import FileBytes, decode_batch, is_jpeg
from vggbench.errors import VggbenchError
from vggbench.scales import TrainScale

ZERO_STATS = RGBStats(torch.zeros(3), torch.zeros(3), torch.eye(3))
#: (size, format, save options): colour JPEGs of three chroma subsamplings, a greyscale JPEG, a PNG
FILES = [
    ((20, 30), "JPEG", dict(quality=90, subsampling="4:2:0")),
    ((33, 17), "JPEG", dict(quality=75, subsampling="4:4:4")),
    ((40, 40), "JPEG", dict(quality=50, subsampling="4:2:2")),
    ((24, 36), "JPEG-L", dict(quality=85)),
    ((18, 26), "PNG", {}),
]


def write_files(root: Path) -> FolderImages:
    """One file per FILES entry (labels 0, 1, 0, 1, ...) of smooth gradients plus noise."""
    rng = np.random.default_rng(0)
    paths = []
    for i, ((h, w), kind, options) in enumerate(FILES):
        yy, xx = np.mgrid[0:h, 0:w]
        noise = rng.integers(0, 40, (h, w, 3))
        pixels = (np.stack([yy * 7 + xx * 3, xx * 11, yy * 5], -1) + noise) % 256
        image = Image.fromarray(pixels.astype(np.uint8))
        if kind == "JPEG-L":
            image, kind = image.convert("L"), "JPEG"
        path = root / f"{i}.{'png' if kind == 'PNG' else 'jpg'}"
        image.save(path, kind, **options)
        paths.append(path)
    return FolderImages(paths, [i % 2 for i in range(len(paths))])


def test_workers_return_the_files_bytes(tmp_path):
    images = write_files(tmp_path)
    stream = loaders._stream(images, [[0, 1, 2], [3, 4]], 0, torch.device("cpu"), FileBytes(images))
    batches = list(stream)
    assert [labels.tolist() for _, labels in batches] == [[0, 1, 0], [1, 0]]
    files = [data for batch, _ in batches for data in batch]
    for data, path in zip(files, images.paths):
        assert data.dtype == torch.uint8 and bytes(data.numpy()) == path.read_bytes()
    assert [is_jpeg(data) for data in files] == [True, True, True, True, False]


def test_batch_decode_equals_pil_exactly(tmp_path):
    """torchvision's libjpeg-turbo and PIL's give the same pixels for these JPEGs (both are
    libjpeg-turbo with the same IDCT here); the PNG takes PIL itself."""
    images = write_files(tmp_path)
    files = [FileBytes(images)[i][0] for i in range(len(images))]
    decoded = decode_batch(files, images.paths, torch.device("cpu"), skip_bad_images=False)
    for image, path in zip(decoded, images.paths):
        expected = decode_image(path)
        assert image.dtype == torch.uint8 and image.shape == expected.shape, path
        assert torch.equal(image, expected), path


def test_bad_files_are_skipped_or_named(tmp_path):
    images = write_files(tmp_path)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(images.paths[0].read_bytes()[:40])  # a JPEG header, then nothing
    paths = [images.paths[1], bad, images.paths[4]]
    files = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in paths]
    with pytest.raises(VggbenchError, match="bad.jpg"):
        decode_batch(files, paths, torch.device("cpu"), skip_bad_images=False)
    decoded = decode_batch(files + [None], paths + [bad], torch.device("cpu"), skip_bad_images=True)
    assert decoded[1] is None and decoded[3] is None
    assert torch.equal(decoded[0], decode_image(paths[0])) and torch.equal(decoded[2], decode_image(paths[2]))
    missing = FolderImages([tmp_path / "gone.jpg"], [0], skip_bad_images=True)
    assert FileBytes(missing)[0] == (None, 0)
    with pytest.raises(VggbenchError, match="gone.jpg"):
        FileBytes(FolderImages([tmp_path / "gone.jpg"], [0]))[0]


def test_loader_device_path_gives_the_cpu_paths_batches(tmp_path, monkeypatch):
    """The byte-reading path (forced on the CPU) yields exactly the batches of PIL decoding."""
    images = write_files(tmp_path)
    augment = TrainAugment(16, TrainScale(256, 384), ZERO_STATS)
    expected = list(TrainLoader(images, augment, 2, "cpu", seed=3).epoch(1))
    monkeypatch.setattr(loaders, "decodes_on_device", lambda imageset, device: True)
    got = list(TrainLoader(images, augment, 2, "cpu", seed=3).epoch(1))
    assert len(got) == len(expected) == 2
    for (x, y), (x0, y0) in zip(got, expected):
        assert torch.equal(y, y0) and torch.equal(x, x0)


def test_only_gpus_decode_on_the_device(tmp_path):
    images = write_files(tmp_path)
    assert not loaders.decodes_on_device(images, torch.device("cpu"))
    assert loaders.decodes_on_device(images, torch.device("cuda"))
    tensors = TensorImages(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2))
    assert not loaders.decodes_on_device(tensors, torch.device("cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="nvJPEG needs a CUDA GPU")
def test_nvjpeg_decode_matches_cpu_decode(tmp_path):
    """nvJPEG may round its IDCT and chroma upsampling differently from libjpeg-turbo: within 8
    levels per pixel, and on average within 1 (a bound not yet measured on a GPU)."""
    images = write_files(tmp_path)
    files = [FileBytes(images)[i][0] for i in range(len(images))]
    decoded = decode_batch(files, images.paths, torch.device("cuda"), skip_bad_images=False)
    for image, path in zip(decoded, images.paths):
        expected = decode_image(path)
        assert image.device.type == "cuda" and image.shape == expected.shape, path
        difference = (image.cpu().int() - expected.int()).abs()
        assert difference.max() <= 8 and difference.float().mean() <= 1.0, path
    augment = TrainAugment(16, TrainScale(256, 384), ZERO_STATS)
    x, y = next(iter(TrainLoader(images, augment, 2, "cuda", seed=3).epoch(0)))
    assert x.device.type == "cuda" and x.shape == (2, 3, 16, 16)
