"""Datasets, image sets, RGB statistics, the paper's augmentation and the loaders.

load_dataset(spec) -> Dataset(name, classes, train, val)      sources.py
ImageSet / TensorImages / FolderImages, stratified_subset      imagesets.py
RGBStats, rgb_statistics                                       stats.py
TrainAugment, eval_preprocess, rescale_shorter_side,          augment.py
same_size_groups (one batch of mixed sizes -> equal-shape groups)
TrainLoader, EvalLoader                                        loaders.py
"""

from vggbench.data.augment import (
    INPUT_RANGES,
    AugmentParams,
    Images,
    TrainAugment,
    eval_preprocess,
    input_std,
    pixel_max,
    rescale_shorter_side,
    same_size_groups,
)
from vggbench.data.imagesets import (
    FolderImages,
    ImageSet,
    TensorImages,
    decode_image,
    stratified_split,
    stratified_subset,
)
from vggbench.data.loaders import EvalLoader, TrainLoader, epoch_permutation, mix_seed, rank_bounds
from vggbench.data.sources import DATA_SEED, Dataset, load_dataset, read_idx
from vggbench.data.stats import RGBStats, rgb_statistics

__all__ = [
    "INPUT_RANGES",
    "AugmentParams",
    "DATA_SEED",
    "Dataset",
    "EvalLoader",
    "Images",
    "FolderImages",
    "ImageSet",
    "RGBStats",
    "TensorImages",
    "TrainAugment",
    "TrainLoader",
    "decode_image",
    "epoch_permutation",
    "eval_preprocess",
    "input_std",
    "pixel_max",
    "load_dataset",
    "mix_seed",
    "rank_bounds",
    "read_idx",
    "rescale_shorter_side",
    "rgb_statistics",
    "same_size_groups",
    "stratified_split",
    "stratified_subset",
]
