"""JPEG decoding on the GPU for streamed folders: DataLoader workers only read each file's bytes
(`FileBytes`), and `decode_batch` decodes a batch's JPEGs together with nvJPEG on the device
(`torchvision.io.decode_jpeg(list, device="cuda")`), so the workers' CPUs are no longer the limit.
Files that are not JPEGs (PNG, ...) and JPEGs that nvJPEG rejects (e.g. CMYK) are decoded one by
one on the CPU with PIL, as `imagesets.decode_image` does, and moved to the device.

On a CPU device `decode_batch` decodes the JPEGs with torchvision's libjpeg-turbo instead of PIL's
(also libjpeg-turbo in the wheels tested): tests/test_gpu_decode.py checks that the two give the same
pixels exactly. nvJPEG's IDCT and chroma upsampling may round differently (not yet measured: no GPU
was lent when this was written).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vggbench.data.imagesets import BAD_IMAGE_FIX, FolderImages, decode_image
from vggbench.errors import VggbenchError

JPEG_START = b"\xff\xd8\xff"  # SOI marker and the first byte of the next marker: every JPEG starts so


class FileBytes(torch.utils.data.Dataset):
    """Worker side of device decoding: (the file's bytes as uint8 (n,), label); None for a file that
    cannot be read in skip mode."""

    def __init__(self, imageset: FolderImages) -> None:
        self.imageset = imageset

    def __len__(self) -> int:
        return len(self.imageset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int]:
        path, label = self.imageset.paths[i], int(self.imageset.labels[i])
        try:
            data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        except OSError as error:
            if self.imageset.skip_bad_images:
                return None, label
            raise VggbenchError(f"cannot read image {path}: {error}; {BAD_IMAGE_FIX}") from None
        return data, label


def is_jpeg(data: torch.Tensor) -> bool:
    return data.numel() >= len(JPEG_START) and bytes(data[: len(JPEG_START)].tolist()) == JPEG_START


def decode_batch(
    files: list[torch.Tensor | None], paths: list[Path], device: torch.device, skip_bad_images: bool
) -> list[torch.Tensor | None]:
    """uint8 RGB (3, H, W) images on `device`, one per file's bytes (None stays None, and an
    undecodable file becomes None in skip mode, else a VggbenchError naming it). The JPEGs go to
    decode_jpeg in one call; when that call fails, each is tried alone and falls back to PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg  # lazy: torchvision loads only to decode

    out: list[torch.Tensor | None] = [None] * len(files)
    jpegs = [i for i, data in enumerate(files) if data is not None and is_jpeg(data)]
    try:
        decoded = decode_jpeg([files[i] for i in jpegs], mode=ImageReadMode.RGB, device=device)
        for i, image in zip(jpegs, decoded):
            out[i] = image
    except RuntimeError:  # one bad (or nvJPEG-unsupported) file fails the whole call: one by one below
        pass
    for i, data in enumerate(files):
        if data is None or out[i] is not None:
            continue
        out[i] = _decode_one(data, paths[i], device, skip_bad_images)
    return out


def _decode_one(
    data: torch.Tensor, path: Path, device: torch.device, skip_bad_images: bool
) -> torch.Tensor | None:
    """One file: decode_jpeg on the device for a JPEG, else (or when it fails) PIL on the CPU."""
    from torchvision.io import ImageReadMode, decode_jpeg  # lazy: as in decode_batch

    if is_jpeg(data):
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            pass  # PIL reads some JPEGs nvJPEG does not (CMYK, arithmetic coding)
    try:
        return decode_image(path, bytes(data.numpy())).to(device, non_blocking=True)
    except VggbenchError:
        if skip_bad_images:
            return None
        raise
