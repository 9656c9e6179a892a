"""What a figure was measured on: the CPU, cores, GPU and torch build, named in every record
(bench figures, training runs) so that numbers from different machines are never mixed up."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch


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
