"""Where and how the code runs: the device, torchrun's environment and process group,
determinism, autocast and memory format, GPU synchronisation, and the machine that every record
names (CPU, cores, GPU, torch build), so that figures from different machines are never mixed up."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vggbench import capabilities
from vggbench.checks import device_problem
from vggbench.errors import VggbenchError


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """What the figures were measured on."""
    gpu = (
        torch.cuda.get_device_name(device if device is not None and device.type == "cuda" else 0)
        if torch.cuda.is_available()
        else None
    )
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "device": str(device) if device is not None else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine slows every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_name(machine: dict[str, Any]) -> str:
    """One line naming the machine: the GPU when one was used, else the CPU and its cores."""
    if machine.get("device", "").startswith("cuda") and machine.get("gpu"):
        return f"{machine['gpu']} (host {machine['cpu']}, {machine['cores']} cores)"
    return f"{machine['cpu']}, {machine['cores']} cores, {machine.get('torch_threads')} torch threads"


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a timer or a progress line measures it; nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_from_env() -> Distributed:
    """torchrun's RANK, WORLD_SIZE, LOCAL_RANK; a single process when they are absent."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise VggbenchError(
            "RANK / WORLD_SIZE / LOCAL_RANK must be integers (as torchrun sets them)"
        ) from None
    return Distributed(rank, world, local)


def resolve_device(spec: str, dist: Distributed | None = None) -> torch.device:
    """auto (cuda when available), cpu, cuda or cuda:N; under torchrun on GPUs, cuda:LOCAL_RANK."""
    dist = dist or Distributed()
    name = (spec or "auto").strip().lower()
    problem = device_problem(name)
    if problem:
        raise VggbenchError(problem.replace(repr(name), repr(spec), 1))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VggbenchError(f"device {spec!r}: no CUDA GPU is visible to torch; use --device cpu or auto")
        if name == "cuda":
            return torch.device("cuda", dist.local_rank if dist.enabled else torch.cuda.current_device())
    try:
        return torch.device(name)
    except RuntimeError:
        raise VggbenchError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None


@contextlib.contextmanager
def process_group(dist: Distributed, device: torch.device) -> Iterator[None]:
    """Start the process group under torchrun (and end it) unless the caller already did."""
    import torch.distributed as td

    if not dist.enabled or td.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    td.init_process_group(backend, rank=dist.rank, world_size=dist.world_size)
    try:
        yield
    finally:
        td.destroy_process_group()


@contextlib.contextmanager
def determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic algorithms for the duration of a run (restored afterwards)."""
    before = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    if enabled and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled or before)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = benchmark


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device when asked for, else nothing (fp32, which keeps CPU runs exact)."""
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bf16_supported(device: torch.device) -> bool:
    """Whether the device computes in bf16: the GPU's own report on cuda; on a CPU, oneDNN's check
    for bf16 instructions (without them autocast would run emulated and slowly, if at all).
    VGGBENCH_ABSENT=bf16 says no on any device (capabilities.py)."""
    if capabilities.absent("bf16"):
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and check is not None and check()


def compile_available(device: torch.device) -> bool:
    """Whether torch.compile can work here, checked cheaply (nothing is compiled): dynamo supports
    this Python, and inductor has its backend: Triton on a GPU, a C++ compiler on a CPU."""
    import torch._dynamo  # lazy: loading dynamo costs a second; only `--compile` needs it

    if not torch._dynamo.is_dynamo_supported():
        return False
    if device.type == "cuda":
        from torch.utils._triton import has_triton  # lazy: as above, only for `--compile`

        return has_triton()
    return any(shutil.which(name) for name in (os.environ.get("CXX", "c++"), "g++", "clang++"))


def check_device_options(device: torch.device, bf16: bool, compile: bool) -> None:
    """A one-line error for a device option this machine cannot honour (before any work starts)."""
    if bf16 and not bf16_supported(device):
        raise VggbenchError(
            f"--bf16: {device} has no bf16 support (on a CPU: no AVX-512 BF16 / AMX instructions); "
            "drop --bf16 (fp32) or use a GPU that has it"
        )
    if compile and not compile_available(device):
        backend = "Triton" if device.type == "cuda" else "a C++ compiler (g++ or clang++)"
        raise VggbenchError(
            f"--compile: torch.compile is unavailable here (it needs dynamo support for this Python and "
            f"{backend}); drop --compile or install it"
        )


def memory_format(channels_last: bool) -> torch.memory_format:
    """channels_last (NHWC) where asked for: faster convolutions on tensor-core GPUs, and on the
    2-core CPU of the README's figures."""
    return torch.channels_last if channels_last else torch.contiguous_format


def utc_now() -> str:
    """The time a record was made: UTC, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
