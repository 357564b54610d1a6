"""Image datasets: the bundled 8x8 handwritten digits, and readers for MNIST / Fashion-MNIST IDX
files and CIFAR-10 binary batches on local disk (pydl never downloads anything).

Each dataset holds its images as one float32 array of shape ``(N, C, H, W)`` scaled to [0, 1]
(``.data``) and its labels as an int64 array (``.targets``); ``ds[i]`` is ``(image, label)``
with ``image`` a ``(C, H, W)`` Tensor (after ``transform``) and ``label`` an int (after
``target_transform``), as in torchvision.
"""
from __future__ import annotations

import gzip
import os
from typing import Callable, Optional, Tuple

import numpy as np

from pydl.data.dataset import Dataset
from pydl.tensor import Tensor


class ImageArrayDataset(Dataset):
    """Images ``(N, C, H, W)`` float32 and int64 labels held in memory, with optional
    ``transform`` (applied to each image Tensor) and ``target_transform`` (to each int label)."""

    classes: Tuple[str, ...] = ()

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None):
        images = np.ascontiguousarray(images, dtype=np.float32)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: expected images (N, C, H, W) and labels "
                             f"(N,), got shapes {images.shape} and {labels.shape}")
        self.data = images
        self.targets = labels
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Tensor(self.data[index])
        label = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def _get_batch(self, indices: np.ndarray):
        if self.transform is not None or self.target_transform is not None:
            return None
        return [Tensor(self.data[indices]), Tensor(self.targets[indices])]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self)}, image_shape={self.data.shape[1:]}, "
                f"classes={len(np.unique(self.targets))})")


_DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")


def load_digits_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: uint8 images ``(1797, 8, 8)`` with values 0..16, int64 labels."""
    with np.load(_DIGITS_FILE) as f:
        return f["images"], f["labels"]


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Indices ``(train, test)``: in each class a seeded random ``test_fraction`` of the samples
    (rounded) goes to test, so both parts keep the class proportions."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class Digits(ImageArrayDataset):
    """The 8x8 handwritten digits bundled with pydl (the data scikit-learn's ``load_digits``
    returns): 1,797 grey images of the digits 0-9, the test part of the UCI set (written by 13
    people).

    Source: E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
    Learning Repository, 1998, https://archive.ics.uci.edu/dataset/80 (licence CC BY 4.0).
    Each image counts the set pixels of a 32x32 bitmap in non-overlapping 4x4 blocks, giving
    values 0..16.
    ``pydl/data/digits.npz`` was made once from scikit-learn's copy by
    ``pydl/data/_make_digits.py``.

    The split is fixed by ``split_seed``: a stratified 80/20 split (1,438 train, 359 test images
    for the default seed 0). Images are float32 ``(1, 8, 8)`` scaled to [0, 1] (divided by 16).
    """

    classes = tuple(str(d) for d in range(10))

    def __init__(self, train: bool = True, split_seed: int = 0,
                 transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None):
        images, labels = load_digits_arrays()
        train_idx, test_idx = stratified_split(labels, 0.2, split_seed)
        idx = train_idx if train else test_idx
        self.train = train
        self.split_seed = split_seed
        super().__init__(images[idx, None].astype(np.float32) / 16.0, labels[idx], transform,
                         target_transform)


# -- IDX files (MNIST, Fashion-MNIST) -----------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: str) -> bytes:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"cannot read {path}: {e}") from e


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST; ``.gz`` files are decompressed).

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, ``d`` big-endian uint32 sizes,
    then the values in C order, big-endian.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes, {header} expected)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX file of shape {shape} and dtype {dtype} should have "
                         f"{expected} bytes, has {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find(root: str, names) -> str:
    for sub in ("", "raw", os.path.join("MNIST", "raw"), os.path.join("FashionMNIST", "raw")):
        for name in names:
            p = os.path.join(root, sub, name)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError(f"none of {list(names)} found in {root} (or its raw/ folder); pydl "
                            "does not download data: fetch the files and pass their folder")


class MNIST(ImageArrayDataset):
    """MNIST from IDX files in ``root`` (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
    optionally ``.gz``; also looked for in ``root/raw`` and ``root/MNIST/raw``, torchvision's
    layout). Images are float32 ``(1, 28, 28)`` in [0, 1]."""

    classes = tuple(str(d) for d in range(10))

    def __init__(self, root: str, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None):
        prefix = "train" if train else "t10k"
        img_path = _find(root, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz",
                                f"{prefix}-images.idx3-ubyte"])
        lbl_path = _find(root, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz",
                                f"{prefix}-labels.idx1-ubyte"])
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: images {img_path} of shape {images.shape} "
                             f"and labels {lbl_path} of shape {labels.shape} do not match")
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        self.root = root
        self.train = train
        super().__init__(images[:, None].astype(np.float32) / scale, labels.astype(np.int64),
                         transform, target_transform)


class FashionMNIST(MNIST):
    """Fashion-MNIST: the same IDX files and layout as ``MNIST`` (also looked for in
    ``root/FashionMNIST/raw``), with 10 classes of clothing."""

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")


# -- CIFAR-10 binary batches --------------------------------------------------------------------

_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte then 3072 pixel bytes (1024 red,
    1024 green, 1024 blue, rows in order). Returns uint8 images ``(N, 3, 32, 32)`` and int64
    labels."""
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path} is not a CIFAR-10 binary batch: its size ({len(raw)} bytes) is "
                         f"not a multiple of the {_CIFAR_RECORD}-byte record")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{path}: label {labels.max()} out of range 0..9 (not a CIFAR-10 batch)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


class CIFAR10(ImageArrayDataset):
    """CIFAR-10 from the binary version in ``root`` (``data_batch_1.bin`` ..
    ``data_batch_5.bin`` and ``test_batch.bin``, directly in ``root`` or in
    ``root/cifar-10-batches-bin``). Images are float32 ``(3, 32, 32)`` in [0, 1]."""

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")

    def __init__(self, root: str, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None):
        folder = root
        if not os.path.isfile(os.path.join(root, "test_batch.bin")) and \
                os.path.isdir(os.path.join(root, "cifar-10-batches-bin")):
            folder = os.path.join(root, "cifar-10-batches-bin")
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
        paths = [os.path.join(folder, n) for n in names]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"CIFAR10: missing {missing}; pydl does not download data: "
                                    "fetch the binary version and pass its folder")
        parts = [read_cifar10_batch(p) for p in paths]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        self.root = root
        self.train = train
        super().__init__(images.astype(np.float32) / 255.0, labels, transform, target_transform)
