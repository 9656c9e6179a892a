"""Image folders that fit in memory, decoded once: a uint8 cache on disk, memory-mapped for training.

Streaming a folder decodes every JPEG on every epoch (DataLoader workers, PIL). When the decoded
training images fit the memory budget, `cached_train_set` decodes them once (a thread pool: PIL
and torch release the GIL), writes them to CACHE_DIR/FINGERPRINT-CAP.u8 (raw uint8, tmp + rename)
with a JSON sidecar (format, fingerprint, stored shapes, labels, size in bytes), and from then on
maps the file and serves the images from memory, so the loader augments whole batches on the
device as for Fashion-MNIST.

What is stored: an image whose shorter side is at most S_max (the run's largest training scale in
pixels) is stored as decoded, so the loader sees exactly the streamed images. A larger one is
stored rescaled (antialiased, as the augmentation's own pre-reduction) to shorter side S_max,
rounded to uint8: the augmentation itself first reduces any image above S_max to S_max (antialiased,
the same sizes), so the cached path computes what the streamed path does up to that rounding (at
most 0.5/255 per pixel), at every S. The
cache key is the folder's content fingerprint and the cap ("orig" when no image is above S_max,
so runs at any scale share one cache), so a changed folder is decoded again.

Same-size images stored as decoded (CIFAR-like folders) become one TensorImages (N, 3, H, W): the
loader's in-memory fast path. Otherwise PackedImages (one flat buffer, one view per image): batches
are gathered from it without decoding and augmented in groups of equal shape, with the crop
geometry (rescaled sizes, crop offsets) computed from each image's decoded size, so a crop lands
where it would in the original: storing at S_max changes pixel values, never crop positions.

The budget: `--cache-budget GB`, `off`, or `auto` = AUTO_RAM_FRACTION of the available RAM on a CPU
(the page cache holds the mapped file), AUTO_GPU_FRACTION of the free GPU memory on a GPU (the set
is moved to the device; the model and its activations need the rest).

Faults: a cache directory that cannot be written means streaming, with a one-line warning; a
sidecar that does not parse or does not match (format, fingerprint, cap, shapes, labels), a data
file of the wrong size, or bytes changed in place are said once ("corrupt: PATH (what),
rebuilding") and rebuilt. Bytes changed in place are found by the sidecar's checksums, a CRC-32 per
CHUNK bytes of the data file, checked when the file is opened: every chunk up to CHECKED_CHUNKS of
them, a random sample of that many in a larger file (a cost bounded at 2 GiB read and hashed). A
60,000-image 32-px cache (184 MB, 11 chunks) costs about 0.1 s per open (0.11-0.15 s, measured on
a loaded 2-core machine), beside the 0.2-0.3 s of parsing its sidecar.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vggbench.data.imagesets import FolderImages, ImageSet, TensorImages, decode_image
from vggbench.errors import VggbenchError

CACHE_ENV = "VGGBENCH_CACHE_DIR"  # the cache's root (shared with `vggbench params`' counts)
CACHE_SUBDIR = "decoded"
FORMAT = 2  # 2: the data file's checksums in the sidecar
CHUNK = 1 << 24  # bytes of the data file per checksum (16 MiB)
CHECKED_CHUNKS = 128  # chunks checked on open (2 GiB): all of them, or a random sample of this many
AUTO_RAM_FRACTION = 0.5
AUTO_GPU_FRACTION = 0.25
GB = 1e9
BUDGET_HELP = "GB (e.g. 4), auto (half the free RAM, a quarter of the free GPU memory) or off"

#: How the training images reached the loader (what a run's record says).
IN_MEMORY, STREAMED, CACHED = "in memory", "streamed", "cached"

Warn = Callable[[str], None]


def parse_budget(text: str) -> float | str | None:
    """'auto' -> 'auto', 'off' -> None, '4' / '0.5' -> bytes; anything else is a one-line error."""
    value = str(text).strip().lower()
    if value in ("auto", "off"):
        return None if value == "off" else "auto"
    try:
        gigabytes = float(value)
    except ValueError:
        gigabytes = math.nan
    if not (math.isfinite(gigabytes) and gigabytes > 0):
        raise VggbenchError(f"--cache-budget {text!r} is not a budget; give {BUDGET_HELP}")
    return gigabytes * GB


def available_ram() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def budget_bytes(budget: str, device: torch.device) -> float | None:
    """The budget in bytes for this device; None when caching is off."""
    parsed = parse_budget(budget)
    if parsed != "auto":
        return parsed  # type: ignore[return-value]
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return AUTO_GPU_FRACTION * free
    return AUTO_RAM_FRACTION * available_ram()


def default_cache_dir() -> Path:
    """$VGGBENCH_CACHE_DIR/decoded, else $XDG_CACHE_HOME/vggbench/decoded, else ~/.cache/vggbench/decoded."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root) / CACHE_SUBDIR
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vggbench" / CACHE_SUBDIR


def stored_shape(size: tuple[int, int], cap: int | None) -> tuple[int, int]:
    """(H, W) an image of `size` is stored at: as is up to shorter side `cap`, else shorter side `cap`
    (the augmentation's own pre-reduction sizes)."""
    height, width = size
    if cap is None or min(height, width) <= cap:
        return height, width
    ratio = cap / min(height, width)
    return round(height * ratio), round(width * ratio)


def fit(image: torch.Tensor, cap: int | None) -> torch.Tensor:
    """uint8 (3, H, W) as stored: unchanged, or rescaled (antialiased) to shorter side `cap`, rounded."""
    size = stored_shape((image.shape[1], image.shape[2]), cap)
    if size == tuple(image.shape[1:]):
        return image
    x = F.interpolate(
        image.unsqueeze(0).float().div_(255.0),
        size=size,
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return x[0].mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


class PackedImages(ImageSet):
    """Decoded images of mixed sizes in one flat uint8 buffer; image i is a (3, H, W) view of it."""

    in_memory = False  # not one tensor; but get() only reads memory, so the loader gathers batches itself

    def __init__(
        self,
        buffer: torch.Tensor,
        shapes: Sequence[tuple[int, int]],
        sources: Sequence[tuple[int, int]],
        labels: torch.Tensor,
        key: str,
    ) -> None:
        self.buffer = buffer
        self.shapes = [tuple(s) for s in shapes]
        self.sources = [tuple(s) for s in sources]  # (H, W) as decoded: the augmentation's geometry
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        sizes = torch.tensor([3 * h * w for h, w in self.shapes], dtype=torch.int64)
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.key = key
        self._on: dict[torch.device, torch.Tensor] = {}

    def _view(self, buffer: torch.Tensor, i: int) -> torch.Tensor:
        height, width = self.shapes[i]
        start = int(self.offsets[i])
        return buffer[start : start + 3 * height * width].view(3, height, width)

    def get(self, i: int) -> tuple[torch.Tensor, int]:
        return self._view(self.buffer, i), int(self.labels[i])

    def gather(self, indices: Sequence[int], device: torch.device) -> list[torch.Tensor]:
        """The images at `indices` on `device` (the buffer is copied there once)."""
        if device not in self._on:
            self._on[device] = self.buffer.to(device)
        return [self._view(self._on[device], i) for i in indices]

    def size_of(self, i: int) -> tuple[int, int]:
        return self.shapes[i]  # type: ignore[return-value]

    def subset(self, indices: torch.Tensor) -> PackedImages:
        chosen = [int(i) for i in torch.as_tensor(indices, dtype=torch.int64)]
        parts = [self.get(i)[0].reshape(-1) for i in chosen]
        return PackedImages(
            torch.cat(parts),
            [self.shapes[i] for i in chosen],
            [self.sources[i] for i in chosen],
            self.labels[chosen],
            "",
        )

    def fingerprint(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"PackedImages({len(self)} images, {self.buffer.numel() / 1e6:.1f} MB)"


@dataclass(frozen=True)
class CacheOptions:
    """Where decoded folders are cached and how much memory they may take (`train --cache-budget`,
    `--cache-dir`): how a run executes, not what it computes, so not part of its id."""

    budget: str = "auto"
    directory: Path | None = None

    def __post_init__(self) -> None:
        parse_budget(self.budget)  # a bad budget fails before anything loads


@dataclass
class TrainSet:
    """What the loader trains on and how it got there."""

    imageset: ImageSet
    path: str  # IN_MEMORY, STREAMED or CACHED
    built: bool = False  # decoded in this call (the first run)
    decode_s: float = 0.0
    file: Path | None = None


def cache_cap(imageset: FolderImages, s_max: int) -> int | None:
    """S_max when some image is larger than it (those are stored rescaled), else None (all as is)."""
    return s_max if any(min(size) > s_max for size in imageset.sizes) else None  # type: ignore[type-var]


def cache_files(imageset: FolderImages, s_max: int, directory: Path) -> tuple[Path, Path]:
    """(data file, sidecar) of this folder's cache at this S_max."""
    cap = cache_cap(imageset, s_max)
    stem = f"{imageset.fingerprint()}-{'orig' if cap is None else cap}"
    return directory / f"{stem}.u8", directory / f"{stem}.json"


def _header(imageset: FolderImages, cap: int | None) -> dict:
    shapes = [list(stored_shape(size, cap)) for size in imageset.sizes]  # type: ignore[arg-type]
    return {
        "format": FORMAT,
        "fingerprint": imageset.fingerprint(),
        "cap": cap,
        "count": len(imageset),
        "shapes": shapes,
        "sources": [list(size) for size in imageset.sizes],  # type: ignore[arg-type]
        "labels": imageset.labels.tolist(),
        "bytes": sum(3 * h * w for h, w in shapes),
    }


def why_invalid(data: Path, sidecar: Path, expected: dict) -> str | None:
    """None when the cache files hold what `expected` (the header) describes, else what is wrong:
    the sidecar, the data file's size, or a chunk of it that does not match its checksum."""
    try:
        found = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"its sidecar {sidecar.name} is unreadable ({error})"
    if not isinstance(found, dict):
        return f"its sidecar {sidecar.name} is not a JSON object"
    for key, value in expected.items():
        if found.get(key) != value:
            return f"its sidecar's {key} does not match the folder"
    try:
        size = data.stat().st_size
    except OSError as error:
        return f"its data file is unreadable ({error})"
    if size != expected["bytes"]:
        return f"its data file has {size} bytes, expected {expected['bytes']}"
    checksums = found.get("checksums")
    if not (isinstance(checksums, list) and len(checksums) == _chunks(size)):
        return f"its sidecar's checksums are not {_chunks(size)} CRC-32s"
    try:
        bad = _bad_chunk(data, checksums)
    except OSError as error:
        return f"its data file is unreadable ({error})"
    if bad is not None:
        return f"bytes {bad * CHUNK} to {min((bad + 1) * CHUNK, size) - 1} do not match their checksum"
    return None


def _chunks(size: int) -> int:
    return -(-size // CHUNK)


def checksums(data: Path) -> list[int]:
    """The CRC-32 of each CHUNK bytes of the file."""
    with open(data, "rb") as handle:
        return [zlib.crc32(chunk) for chunk in iter(lambda: handle.read(CHUNK), b"")]


def _bad_chunk(data: Path, expected: list) -> int | None:
    """The first checked chunk whose CRC-32 is not the sidecar's, else None: every chunk, or a random
    sample of CHECKED_CHUNKS of them in a larger file."""
    count = len(expected)
    sample = random.Random()  # not the global generator, which training seeds
    chosen = range(count) if count <= CHECKED_CHUNKS else sorted(sample.sample(range(count), CHECKED_CHUNKS))
    with open(data, "rb") as handle:
        for i in chosen:
            handle.seek(i * CHUNK)
            if zlib.crc32(handle.read(CHUNK)) != expected[i]:
                return i
    return None


def _map(data: Path, header: dict, key: str) -> ImageSet:
    """The cache file mapped as a TensorImages (one shape) or PackedImages (several)."""
    # copy-on-write: a writable view for torch (no warning), and nothing is ever written back
    flat = torch.from_numpy(np.memmap(data, dtype=np.uint8, mode="c", shape=(header["bytes"],)))
    shapes = [tuple(s) for s in header["shapes"]]
    sources = [tuple(s) for s in header["sources"]]
    labels = torch.tensor(header["labels"], dtype=torch.int64)
    if len(set(shapes)) == 1 and shapes == sources:  # one size, as decoded: the in-memory fast path
        height, width = shapes[0]
        return TensorImages(flat.view(len(shapes), 3, height, width), labels)
    return PackedImages(flat, shapes, sources, labels, key)


def _decode_into(imageset: FolderImages, header: dict, target: Path, threads: int) -> None:
    """Decode every image into a new file `target` (raw uint8, in order)."""
    shapes = header["shapes"]
    sizes = [3 * h * w for h, w in shapes]
    offsets = np.cumsum([0, *sizes[:-1]])
    array = np.memmap(target, dtype=np.uint8, mode="w+", shape=(header["bytes"],))

    def one(i: int) -> None:
        image = decode_image(imageset.paths[i])
        if tuple(image.shape[1:]) != tuple(imageset.sizes[i]):  # type: ignore[arg-type]
            raise VggbenchError(
                f"image {imageset.paths[i]} decodes to {tuple(image.shape[1:])}, its header says "
                f"{imageset.sizes[i]}; re-save the file"
            )
        array[offsets[i] : offsets[i] + sizes[i]] = fit(image, header["cap"]).reshape(-1).numpy()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(len(shapes))))
    array.flush()


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cached_train_set(
    imageset: ImageSet,
    s_max: int,
    options: CacheOptions = CacheOptions(),
    *,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    warn: Warn | None = None,
    note: Warn | None = None,
) -> TrainSet:
    """The training set as the loader should read it: in memory already, cached (built on first use),
    or streamed (caching off, over the budget, an unwritable cache directory, or undecodable files in
    skip mode). `warn` gets the one-line warnings, `note` the informational lines."""
    warn, note = warn or (lambda _: None), note or (lambda _: None)
    if imageset.in_memory or not isinstance(imageset, FolderImages):
        return TrainSet(imageset, IN_MEMORY if imageset.in_memory else STREAMED)
    limit = budget_bytes(options.budget, torch.device(device))
    if limit is None or any(size is None for size in imageset.sizes):  # off, or not scanned
        return TrainSet(imageset, STREAMED)
    cap = cache_cap(imageset, s_max)
    header = _header(imageset, cap)
    if header["bytes"] > limit:
        note(
            f"the decoded training images ({header['bytes'] / GB:.2f} GB) exceed the cache budget "
            f"({limit / GB:.2f} GB): streaming them; raise --cache-budget to cache them"
        )
        return TrainSet(imageset, STREAMED)
    directory = Path(options.directory) if options.directory is not None else default_cache_dir()
    data, sidecar = cache_files(imageset, s_max, directory)
    key = data.stem
    if data.exists() or sidecar.exists():
        problem = why_invalid(data, sidecar, header)
        if problem is None:
            return TrainSet(_map(data, header, key), CACHED, file=data)
        note(f"corrupt: {data} ({problem}), rebuilding (decoding the folder again)")
    started = time.perf_counter()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        threads = threads or min(32, (os.cpu_count() or 1) * 2)
        _write_atomically(data, lambda tmp: _decode_into(imageset, header, tmp, threads))
        sums = {"checksums": checksums(data)}
        _write_atomically(sidecar, lambda tmp: tmp.write_text(json.dumps({**header, **sums}) + "\n"))
    except OSError as error:
        warn(
            f"cannot write the decoded-image cache in {directory} ({error.strerror or error}): "
            "streaming the folder instead; pass a writable --cache-dir to cache it"
        )
        return TrainSet(imageset, STREAMED)
    except VggbenchError:
        if not imageset.skip_bad_images:
            raise
        warn("some training images cannot be decoded: streaming the folder (skipping them), not caching it")
        return TrainSet(imageset, STREAMED)
    decode_s = time.perf_counter() - started
    return TrainSet(_map(data, header, key), CACHED, built=True, decode_s=decode_s, file=data)
