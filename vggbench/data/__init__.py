"""Datasets, image sets, RGB statistics, the paper's augmentation and the loaders.

load_dataset(spec) -> Dataset(name, classes, train, val)      sources.py
ImageSet / TensorImages / FolderImages, stratified_subset      imagesets.py
RGBStats, rgb_statistics                                       stats.py
TrainAugment, eval_preprocess, rescale_shorter_side            augment.py
TrainLoader, EvalLoader                                        loaders.py
"""

from vggbench.data.augment import AugmentParams, TrainAugment, eval_preprocess, rescale_shorter_side
from vggbench.data.imagesets import (
    FolderImages,
    ImageSet,
    TensorImages,
    decode_image,
    stratified_split,
    stratified_subset,
)
from vggbench.data.loaders import EvalLoader, TrainLoader, epoch_permutation, mix_seed, rank_bounds
from vggbench.data.sources import DATASETS_HELP, Dataset, load_dataset, read_idx
from vggbench.data.stats import RGBStats, rgb_statistics

__all__ = [
    "AugmentParams",
    "DATASETS_HELP",
    "Dataset",
    "EvalLoader",
    "FolderImages",
    "ImageSet",
    "RGBStats",
    "TensorImages",
    "TrainAugment",
    "TrainLoader",
    "decode_image",
    "epoch_permutation",
    "eval_preprocess",
    "load_dataset",
    "mix_seed",
    "rank_bounds",
    "read_idx",
    "rescale_shorter_side",
    "rgb_statistics",
    "stratified_split",
    "stratified_subset",
]
