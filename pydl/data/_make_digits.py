"""Make ``pydl/data/digits.npz`` (run once; the result is committed).

The source is the UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin, C. Kaynak,
1998; https://archive.ics.uci.edu/dataset/80, licence CC BY 4.0), in the copy scikit-learn
ships as ``sklearn/datasets/data/digits.csv.gz`` (1,797 rows: 64 pixel counts 0..16 of an 8x8
image, then the label 0..9). To remake the file::

    pip download --no-deps scikit-learn -d /tmp/skl
    unzip /tmp/skl/scikit_learn-*.whl 'sklearn/datasets/data/digits.csv.gz' -d /tmp/skl
    python -m pydl.data._make_digits /tmp/skl/sklearn/datasets/data/digits.csv.gz
"""
from __future__ import annotations

import gzip
import os
import sys

import numpy as np


def convert(csv_gz: str, out: str) -> None:
    with gzip.open(csv_gz, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise ValueError(f"expected 1797 rows of 65 values, got shape {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError("pixel values must lie in 0..16 and labels in 0..9")
    np.savez_compressed(out, images=pixels.reshape(-1, 8, 8).astype(np.uint8),
                        labels=labels.astype(np.int64))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    convert(sys.argv[1], os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz"))
