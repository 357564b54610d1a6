"""``datasets.MNIST`` with MNIST's shapes and types, from pydl's bundled 8x8 digits."""
from __future__ import annotations

import os

import numpy as np

import pydl
from pydl.data import Dataset
from pydl.data.datasets import load_digits_arrays

_SIZES = {True: 60000, False: 10000}


def _sizes():
    spec = os.environ.get("TORCHVISION_STANDIN_MNIST")
    if not spec:
        return dict(_SIZES)
    train, test = (int(s) for s in spec.split(","))
    return {True: train, False: test}


def _mnist_like(n: int, train: bool):
    """n images uint8 (n, 28, 28) and int64 labels: digits 0..16 scaled to 0..255, upsampled
    to 24x24, placed at a random offset of the 28x28 canvas (centre +-2 pixels). The training
    set draws from the first 1,400 digits, the test set from the rest, so they do not share
    source images."""
    images, labels = load_digits_arrays()
    pool = np.arange(0, 1400) if train else np.arange(1400, len(images))
    rng = np.random.default_rng(20 if train else 21)
    pick = rng.choice(pool, size=n, replace=n > len(pool))
    big = np.kron(images[pick].astype(np.float32) * (255.0 / 16.0),
                  np.ones((1, 3, 3), dtype=np.float32))
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    offsets = rng.integers(0, 5, size=(n, 2))
    for k, (dy, dx) in enumerate(offsets):
        out[k, dy:dy + 24, dx:dx + 24] = np.clip(big[k], 0, 255).astype(np.uint8)
    return out, labels[pick].astype(np.int64)


class MNIST(Dataset):
    """``MNIST(root, train=True, transform=None, target_transform=None, download=False)``:
    sample ``i`` is ``(image, label)``, the image a uint8 (28, 28) array (torchvision gives a
    PIL image of the same pixels) passed through ``transform``. ``root`` and ``download`` are
    accepted and ignored: nothing is read or downloaded."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False):
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        images, labels = _mnist_like(_sizes()[bool(train)], bool(train))
        lib = pydl
        if os.environ.get("TORCHVISION_STANDIN_BACKEND") == "torch":
            import torch as lib
        self._data = lib.from_numpy(images)
        self.targets = lib.from_numpy(labels)

    def __len__(self) -> int:
        return self._data.shape[0]

    def __getitem__(self, index):
        img = self._data.numpy()[index]
        target = int(self.targets.numpy()[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


FashionMNIST = MNIST
