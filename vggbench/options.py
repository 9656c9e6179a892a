"""Option help and parsing shared by the CLI and the library, free of heavy imports so the CLI
can build its help at start-up: the dataset specs, and choice lists (repeated and/or
comma-separated, e.g. --method dense,multi-crop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from vggbench.errors import VggbenchError

#: The dataset specs `data.load_dataset` takes: every --data option's help and the unknown-spec error.
DATASETS_HELP = (
    "synthetic (generated shapes), fashion-mnist, cifar10, cifar100 (torchvision-style folders "
    "under --data-root), or imagefolder:PATH (PATH/train and PATH/val, one folder per class)"
)

#: The packaged CIFAR sets a data spec may name (their file layouts are data.sources.CIFAR's).
CIFAR_SETS = ("cifar10", "cifar100")


def data_kind(spec: str) -> str:
    """synthetic, fashion-mnist, cifar10, cifar100 or imagefolder (a bad spec is a one-line error).
    Torch-free, so that reading a spec's budget (ablations.testability) needs no data code."""
    lowered = spec.strip().lower()
    if lowered in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        return "fashion-mnist"
    if lowered in ("synthetic", *CIFAR_SETS):
        return lowered
    if lowered.startswith("imagefolder:"):
        if not spec.strip().split(":", 1)[1]:
            raise VggbenchError("imagefolder: needs a path, e.g. imagefolder:/data/imagenet")
        return "imagefolder"
    raise VggbenchError(f"unknown dataset {spec!r}; valid: {DATASETS_HELP}")


def parse_choices(
    specs: Iterable[str],
    choices: Sequence[str],
    *,
    what: str,
    none_given: str,
    choices_help: str,
    normalize: Callable[[str], str] = lambda s: s.strip().lower(),
    aliases: Mapping[str, str] | None = None,
) -> list[str]:
    """The chosen names, in the order of `choices`, each once; an unknown one (named as `what`) or
    none at all (`none_given`) is a VggbenchError that names the valid choices."""
    chosen = set()
    for spec in specs:
        for part in str(spec).split(","):
            name = normalize(part)
            if not name:
                continue
            name = (aliases or {}).get(name, name)
            if name not in choices:
                raise VggbenchError(f"unknown {what} {part.strip()!r}; choose {choices_help}")
            chosen.add(name)
    if not chosen:
        raise VggbenchError(f"{none_given}; choose {choices_help}")
    return [c for c in choices if c in chosen]
