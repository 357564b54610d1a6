"""Transforms for image tensors of shape ``(..., H, W)`` (usually ``(C, H, W)``), as in
``torchvision.transforms``: ``Compose``, ``ToTensor``, ``Normalize`` (with ``Normalize.fit`` to
standardise with statistics of the training data) and data augmentation: random flips, 90-degree
rotations, translations with zero padding, padded random crops and additive Gaussian noise.

A transform takes a pydl ``Tensor`` or a NumPy array and returns the same kind. Random
transforms draw from ``generator`` when given (a ``pydl.Generator``), else from pydl's global
generator, so ``pydl.manual_seed`` makes augmentation reproducible. Transforms work on the data
pipeline's arrays and record no autograd graph.
"""
from __future__ import annotations

import numbers
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from pydl import random as _random
from pydl.tensor import Tensor


def _as_array(x) -> Tuple[np.ndarray, bool]:
    if isinstance(x, Tensor):
        return x.numpy_view(), True
    if isinstance(x, np.ndarray):
        return x, False
    raise TypeError(f"expected a pydl.Tensor or numpy.ndarray image, got {type(x).__name__}")


def _like(arr: np.ndarray, was_tensor: bool):
    return Tensor(arr) if was_tensor else arr


def _check_image(arr: np.ndarray, name: str) -> None:
    if arr.ndim < 2:
        raise ValueError(f"{name}: expected an image of shape (..., H, W), got shape {arr.shape}")


def _check_p(p: float, name: str) -> float:
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: probability p must lie in [0, 1], got {p!r}")
    return float(p)


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        body = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class Lambda:
    """Apply a user function."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"Lambda: argument should be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """An ``(H, W)`` or ``(H, W, C)`` NumPy image to a float32 ``(C, H, W)`` Tensor; uint8
    values are scaled from 0..255 to [0, 1], other dtypes are only converted."""

    def __call__(self, pic) -> Tensor:
        arr, _ = _as_array(pic)
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)
        else:
            raise ValueError(f"ToTensor: expected an (H, W) or (H, W, C) image, got shape "
                             f"{arr.shape}")
        out = arr.astype(np.float32)
        if arr.dtype == np.uint8:
            out /= 255.0
        return Tensor(np.ascontiguousarray(out))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel ``c`` of a ``(..., C, H, W)`` image.

    ``mean`` and ``std`` are sequences with one value per channel (or scalars). Standardisation
    uses statistics of the training data only, so that validation and test data are scaled the
    same way and leak nothing into training: ``Normalize.fit(train_images)`` computes them.
    """

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError("Normalize: mean and std must be scalars or 1-D sequences")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float64, "
                             f"leading to division by zero (std={self.std.tolist()})")
        self.inplace = inplace

    @classmethod
    def fit(cls, data, eps: float = 1e-8) -> "Normalize":
        """Per-channel mean and standard deviation of ``data``, an ``(N, C, H, W)`` batch of
        images (a Tensor, array or a ``TensorDataset`` whose first tensor holds the images);
        channels whose std is below ``eps`` get std 1 (constant channels are only centred)."""
        if hasattr(data, "tensors"):
            data = data.tensors[0]
        arr, _ = _as_array(data)
        if arr.ndim != 4:
            raise ValueError(f"Normalize.fit: expected images of shape (N, C, H, W), got shape "
                             f"{arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError("Normalize.fit: no images to compute statistics from")
        x = arr.astype(np.float64)
        mean = x.mean(axis=(0, 2, 3))
        std = x.std(axis=(0, 2, 3))
        std[std < eps] = 1.0
        return cls(mean.tolist(), std.tolist())

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        if arr.ndim < 3:
            raise ValueError(f"Normalize: expected an image of shape (..., C, H, W), got shape "
                             f"{arr.shape}")
        c = arr.shape[-3]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means and {self.std.size} stds for an "
                             f"image with {c} channels (shape {arr.shape})")
        dtype = arr.dtype if arr.dtype.kind == "f" else np.float32
        mean = self.mean.astype(dtype)[:, None, None]
        std = self.std.astype(dtype)[:, None, None]
        if self.inplace and arr.dtype.kind == "f":
            arr -= mean
            arr /= std
            return x
        return _like(((arr.astype(dtype) - mean) / std).astype(dtype, copy=False), was_tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomHorizontalFlip:
    """Mirror the image left-right (the W axis) with probability ``p``."""

    def __init__(self, p: float = 0.5, generator=None):
        self.p = _check_p(p, type(self).__name__)
        self.generator = generator

    _axis = -1

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        _check_image(arr, type(self).__name__)
        if _random.generator(self.generator).random() < self.p:
            return _like(np.ascontiguousarray(np.flip(arr, axis=self._axis)), was_tensor)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror the image top-bottom (the H axis) with probability ``p``."""

    _axis = -2


class RandomRot90:
    """Rotate a square image by ``k * 90`` degrees (counter-clockwise, in the (H, W) plane),
    with ``k`` drawn uniformly from ``ks`` (default 0, 1, 2, 3)."""

    def __init__(self, ks: Sequence[int] = (0, 1, 2, 3), generator=None):
        self.ks = [int(k) for k in ks]
        if not self.ks:
            raise ValueError("RandomRot90: ks must name at least one multiple of 90 degrees")
        self.generator = generator

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        _check_image(arr, "RandomRot90")
        k = self.ks[int(_random.generator(self.generator).integers(len(self.ks)))]
        if k % 2 == 1 and arr.shape[-1] != arr.shape[-2]:
            raise ValueError(f"RandomRot90: a 90-degree rotation changes the shape of a "
                             f"non-square image (shape {arr.shape}); pass ks=(0, 2)")
        if k % 4 == 0:
            return x
        return _like(np.ascontiguousarray(np.rot90(arr, k, axes=(-2, -1))), was_tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ks={self.ks})"


def _shift(arr: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[..., i, j] = arr[..., i - dy, j - dx]`` where that is inside the image, else 0."""
    h, w = arr.shape[-2:]
    out = np.zeros_like(arr)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_y, dst_x] = arr[..., src_y, src_x]
    return out


class RandomTranslate:
    """Shift the image by whole pixels, ``dy`` and ``dx`` drawn uniformly from
    ``-max_shift..max_shift``; pixels shifted in from outside are ``fill`` (0 by default).

    ``max_shift`` is an int or an ``(max_dy, max_dx)`` pair.
    """

    def __init__(self, max_shift: Union[int, Tuple[int, int]], fill: float = 0.0,
                 generator=None):
        shifts = (max_shift, max_shift) if isinstance(max_shift, numbers.Integral) else \
            tuple(max_shift)
        if len(shifts) != 2 or any(not isinstance(s, numbers.Integral) or s < 0 for s in shifts):
            raise ValueError(f"RandomTranslate: max_shift must be a non-negative int or a pair "
                             f"of them, got {max_shift!r}")
        self.max_shift = (int(shifts[0]), int(shifts[1]))
        self.fill = fill
        self.generator = generator

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        _check_image(arr, "RandomTranslate")
        rng = _random.generator(self.generator)
        dy = int(rng.integers(-self.max_shift[0], self.max_shift[0] + 1))
        dx = int(rng.integers(-self.max_shift[1], self.max_shift[1] + 1))
        out = _shift(arr, dy, dx)
        if self.fill != 0:
            mask = _shift(np.ones(arr.shape[-2:], dtype=bool), dy, dx)
            out[..., ~mask] = self.fill
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift})"


class RandomCrop:
    """Crop a random ``size`` window, after padding each side by ``padding`` pixels (as
    torchvision: an int for all sides, ``(left/right, top/bottom)`` or ``(left, top, right,
    bottom)``) with ``fill`` (``padding_mode="constant"``) or by ``"edge"``, ``"reflect"`` or
    ``"symmetric"`` padding. ``RandomCrop(32, padding=4)`` is the classic CIFAR augmentation.
    """

    _modes = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size: Union[int, Tuple[int, int]], padding=None,
                 pad_if_needed: bool = False, fill: float = 0, padding_mode: str = "constant",
                 generator=None):
        self.size = (int(size), int(size)) if isinstance(size, numbers.Integral) else \
            tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) <= 0:
            raise ValueError(f"RandomCrop: size must be a positive int or (h, w), got {size!r}")
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, numbers.Integral):
            pad = (int(padding),) * 4
        elif len(padding) == 2:
            pad = (int(padding[0]), int(padding[1])) * 2
        elif len(padding) == 4:
            pad = tuple(int(p) for p in padding)
        else:
            raise ValueError(f"RandomCrop: padding must be an int or a sequence of 2 or 4 ints, "
                             f"got {padding!r}")
        if min(pad) < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, got {padding!r}")
        if padding_mode not in self._modes:
            raise ValueError(f"RandomCrop: padding_mode must be one of {self._modes}, got "
                             f"{padding_mode!r}")
        self.padding = pad  # left, top, right, bottom
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def _pad(self, arr: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
        if not (left or top or right or bottom):
            return arr
        widths = [(0, 0)] * (arr.ndim - 2) + [(top, bottom), (left, right)]
        if self.padding_mode == "constant":
            return np.pad(arr, widths, mode="constant", constant_values=self.fill)
        return np.pad(arr, widths, mode=self.padding_mode)

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        _check_image(arr, "RandomCrop")
        arr = self._pad(arr, *self.padding)
        th, tw = self.size
        if self.pad_if_needed:
            h, w = arr.shape[-2:]
            arr = self._pad(arr, max(0, tw - w), max(0, th - h), max(0, tw - w),
                            max(0, th - h))
        h, w = arr.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {self.size} is larger than the "
                             f"(padded) image size {(h, w)}")
        rng = _random.generator(self.generator)
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return _like(np.ascontiguousarray(arr[..., top:top + th, left:left + tw]), was_tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class AddGaussianNoise:
    """``x + N(mean, std**2)`` noise drawn independently per element (floating images only);
    with ``clip=(lo, hi)`` the result is clipped to that range."""

    def __init__(self, mean: float = 0.0, std: float = 0.1,
                 clip: Optional[Tuple[float, float]] = None, generator=None):
        if std < 0:
            raise ValueError(f"AddGaussianNoise: std must be non-negative, got {std}")
        self.mean = float(mean)
        self.std = float(std)
        self.clip = clip
        self.generator = generator

    def __call__(self, x):
        arr, was_tensor = _as_array(x)
        if arr.dtype.kind != "f":
            raise TypeError(f"AddGaussianNoise: expected a floating image, got dtype {arr.dtype}")
        noise = _random.generator(self.generator).normal(self.mean, self.std, arr.shape)
        out = (arr + noise).astype(arr.dtype)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


__all__: List[str] = ["Compose", "Lambda", "ToTensor", "Normalize", "RandomHorizontalFlip",
                      "RandomVerticalFlip", "RandomRot90", "RandomTranslate", "RandomCrop",
                      "AddGaussianNoise"]
