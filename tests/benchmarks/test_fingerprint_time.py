"""pytest-benchmark time of fingerprinting a 60,000-image ImageFolder (the issue asks for at most a
few seconds): 10 classes x (5,000 train + 1,000 val) PNGs of 8 x 8 pixels, generated once per
session (about a minute; they take ~6 MB). Each round is a fresh scan (`fresh=True`: one stat per
file, no memo); `memoised` times the cheap check of a repeated run id (one stat per directory)."""

from __future__ import annotations

import pytest
from imagefolders import write_image_folder

from vggbench.data import fingerprint
from vggbench.data.sources import data_fingerprint, is_image_name

CLASSES = [f"class{k}" for k in range(10)]


@pytest.fixture(scope="session")
def sixty_thousand(tmp_path_factory):
    root = write_image_folder(tmp_path_factory.mktemp("imagefolder-60k"), CLASSES, 5000, 1000)
    assert fingerprint.folder_scan(root, ("train", "val"), is_image_name).counts == {
        "train": 50_000,
        "val": 10_000,
    }
    return root


def test_fingerprint_of_60000_images(benchmark, sixty_thousand):
    benchmark(data_fingerprint, f"imagefolder:{sixty_thousand}", fresh=True)


def test_memoised_fingerprint_of_60000_images(benchmark, sixty_thousand):
    data_fingerprint(f"imagefolder:{sixty_thousand}")
    benchmark(data_fingerprint, f"imagefolder:{sixty_thousand}")
