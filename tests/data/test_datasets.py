"""Bundled digits; MNIST/Fashion-MNIST IDX and CIFAR-10 binary readers on files the tests write."""
import gzip
import os
import struct

import numpy as np
import pytest

import pydl
from pydl.data import DataLoader
from pydl.data import datasets as D


def test_digits_bundle_and_split():
    images, labels = D.load_digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.max() == 16 and images.min() == 0
    assert sorted(set(labels.tolist())) == list(range(10))
    # the first row of the UCI/scikit-learn data: a zero whose top row is 0 0 5 13 9 1 0 0
    assert labels[0] == 0 and images[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]

    train, test = D.Digits(train=True), D.Digits(train=False)
    assert len(train) + len(test) == 1797 and (len(train), len(test)) == (1438, 359)
    x, y = train[0]
    assert isinstance(x, pydl.Tensor) and x.shape == (1, 8, 8) and x.dtype == np.float32
    assert isinstance(y, int)
    assert train.data.min() == 0.0 and train.data.max() == 1.0
    # every image appears in exactly one part, scaled by 1/16
    all_images = np.concatenate([train.data, test.data])[:, 0] * 16
    key = lambda a: [bytes(r) for r in a.astype(np.uint8).reshape(len(a), -1)]  # noqa: E731
    assert sorted(key(all_images)) == sorted(key(images))
    # stratified: each class has ~20% of its samples in test
    for c in range(10):
        n_c = int((labels == c).sum())
        assert abs(int((test.targets == c).sum()) - 0.2 * n_c) <= 0.5
    # fixed by split_seed
    np.testing.assert_array_equal(D.Digits(train=False).targets, test.targets)
    other = D.Digits(train=False, split_seed=1)
    assert not np.array_equal(other.data, test.data)


def test_digits_transforms_and_batches():
    flip = lambda x: pydl.Tensor(x.numpy()[..., ::-1].copy())  # noqa: E731
    ds = D.Digits(transform=flip, target_transform=lambda y: y + 100)
    plain = D.Digits()
    x, y = ds[5]
    np.testing.assert_array_equal(x.numpy(), plain.data[5][..., ::-1])
    assert y == plain.targets[5] + 100
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))  # per-sample path with transforms
    assert xb.shape == (4, 1, 8, 8) and yb.tolist() == (plain.targets[:4] + 100).tolist()
    xb2, yb2 = next(iter(DataLoader(plain, batch_size=4)))  # batch path
    np.testing.assert_array_equal(xb2.numpy(), plain.data[:4])


def _write_idx(path, arr, code):
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    raw += np.asarray(arr, dtype=dtype).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(raw)


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                        (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_dtypes(tmp_path, code, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 2, 5)) * 50).astype(dtype)
    if dtype == np.uint8:
        arr = rng.integers(0, 256, (3, 2, 5)).astype(np.uint8)
    path = str(tmp_path / "a.idx")
    _write_idx(path, arr, code)
    out = D.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 2, 5)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(str(bad))
    short = str(tmp_path / "short")
    _write_idx(short, np.zeros((4, 3), np.uint8), 0x08)
    with open(short, "rb") as f:
        raw = f.read()
    with open(short, "wb") as f:
        f.write(raw[:-1])
    with pytest.raises(ValueError, match="should have"):
        D.read_idx(short)
    notgz = tmp_path / "x.gz"
    notgz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        D.read_idx(str(notgz))


@pytest.mark.parametrize("cls,sub", [(D.MNIST, ""), (D.MNIST, "MNIST/raw"),
                                     (D.FashionMNIST, "FashionMNIST/raw")])
def test_mnist_from_idx_files(tmp_path, cls, sub):
    rng = np.random.default_rng(1)
    folder = tmp_path / sub if sub else tmp_path
    os.makedirs(folder, exist_ok=True)
    tr_img = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    tr_lbl = rng.integers(0, 10, 5).astype(np.uint8)
    te_img = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    te_lbl = rng.integers(0, 10, 3).astype(np.uint8)
    _write_idx(str(folder / "train-images-idx3-ubyte.gz"), tr_img, 0x08)
    _write_idx(str(folder / "train-labels-idx1-ubyte.gz"), tr_lbl, 0x08)
    _write_idx(str(folder / "t10k-images-idx3-ubyte"), te_img, 0x08)
    _write_idx(str(folder / "t10k-labels-idx1-ubyte"), te_lbl, 0x08)
    train = cls(str(tmp_path), train=True)
    test = cls(str(tmp_path), train=False)
    assert len(train) == 5 and len(test) == 3 and len(cls.classes) == 10
    x, y = train[2]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    for i in range(28):
        for j in range(28):
            assert x.numpy()[0, i, j] == np.float32(tr_img[2, i, j] / np.float32(255.0))
    assert y == int(tr_lbl[2])
    assert test.targets.tolist() == te_lbl.tolist()


def test_mnist_missing_and_mismatched(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not download"):
        D.MNIST(str(tmp_path))
    _write_idx(str(tmp_path / "train-images-idx3-ubyte"), np.zeros((4, 2, 2), np.uint8), 0x08)
    _write_idx(str(tmp_path / "train-labels-idx1-ubyte"), np.zeros(3, np.uint8), 0x08)
    with pytest.raises(ValueError, match="do not match"):
        D.MNIST(str(tmp_path))


def _write_cifar(path, images, labels):
    with open(path, "wb") as f:
        for img, lbl in zip(images, labels):
            f.write(bytes([int(lbl)]) + img.tobytes())


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_binary_batches(tmp_path, nested):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-bin" if nested else tmp_path
    os.makedirs(folder, exist_ok=True)
    parts = []
    for i in range(1, 6):
        imgs = rng.integers(0, 256, (i, 3, 32, 32)).astype(np.uint8)
        lbls = rng.integers(0, 10, i)
        _write_cifar(str(folder / f"data_batch_{i}.bin"), imgs, lbls)
        parts.append((imgs, lbls))
    test_imgs = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.uint8)
    _write_cifar(str(folder / "test_batch.bin"), test_imgs, [3, 9])
    train = D.CIFAR10(str(tmp_path), train=True)
    assert len(train) == 15 and train.data.shape == (15, 3, 32, 32)
    # record layout: byte 1 + c*1024 + i*32 + j holds channel c, row i, column j
    with open(folder / "data_batch_2.bin", "rb") as f:
        raw = f.read()
    x, y = train[1]  # the first record of batch 2
    for c in range(3):
        for i in range(0, 32, 7):
            for j in range(0, 32, 5):
                assert x.numpy()[c, i, j] == np.float32(raw[1 + c * 1024 + i * 32 + j] /
                                                        np.float32(255.0))
    assert y == raw[0]
    test = D.CIFAR10(str(tmp_path), train=False)
    assert test.targets.tolist() == [3, 9]


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not download"):
        D.CIFAR10(str(tmp_path))
    bad = tmp_path / "b.bin"
    bad.write_bytes(b"\x00" * 3072)
    with pytest.raises(ValueError, match="multiple"):
        D.read_cifar10_batch(str(bad))
    bad.write_bytes(bytes([12]) + b"\x00" * 3072)
    with pytest.raises(ValueError, match="out of range"):
        D.read_cifar10_batch(str(bad))


def test_image_array_dataset_shape_check():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D.ImageArrayDataset(np.zeros((3, 8, 8)), np.zeros(3))
