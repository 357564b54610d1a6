"""``F.interpolate`` (``nn.Upsample``): nearest and (bi)linear resizing of (N, C, L) and
(N, C, H, W) inputs, with PyTorch's sizes, source-index rules and ``align_corners``.

Both modes are separable linear maps: along each spatial axis, output position o reads input
positions through a fixed (out x in) matrix A, so ``y = A_h x A_w^T`` for images. Nearest: A
has one 1 per row, at ``min(floor(o * scale), in - 1)``; (bi)linear: two weights per row, at
floor(s) and the next index, ``s = o * (in - 1) / (out - 1)`` with align_corners, else
``s = max((o + 0.5) * scale - 0.5, 0)``; ``scale = 1 / scale_factor`` when a scale factor is
given, else ``in / out`` (PyTorch's area_pixel_compute_source_index). The products are matmuls,
so the gradient (``A^T g``, the adjoint resampling) and every higher derivative come from
matmul's.
"""
from __future__ import annotations

import math

import numpy as np

from pydl.tensor import Tensor

_MODES = ("nearest", "linear", "bilinear")


def _nearest_matrix(n_in: int, n_out: int, scale_factor, dtype):
    a = np.zeros((n_out, n_in), dtype=dtype)
    if n_out == 0 or n_in == 0:
        return a
    if n_out == n_in:
        src = np.arange(n_out)
    elif n_out == 2 * n_in:
        src = np.arange(n_out) >> 1
    else:
        # PyTorch computes this index in float32 (nearest_idx): so do we, to pick the same rows.
        scale = np.float32(1.0 / scale_factor) if scale_factor else \
            np.float32(n_in) / np.float32(n_out)
        src = np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64),
                         n_in - 1)
    a[np.arange(n_out), src] = 1
    return a


def _linear_matrix(n_in: int, n_out: int, scale_factor, align_corners: bool, dtype):
    a = np.zeros((n_out, n_in), dtype=dtype)
    if n_out == 0 or n_in == 0:
        return a
    t = np.dtype(dtype).type
    o = np.arange(n_out).astype(dtype)
    if align_corners:
        scale = t((n_in - 1) / (n_out - 1)) if n_out > 1 else t(0)
        src = o * scale
    else:
        scale = t(1.0 / scale_factor) if scale_factor else t(n_in) / t(n_out)
        src = np.maximum(scale * (o + t(0.5)) - t(0.5), t(0))
    i0 = src.astype(np.int64)
    i0 = np.minimum(i0, n_in - 1)
    lam = src - i0.astype(dtype)
    i1 = i0 + (i0 < n_in - 1)
    rows = np.arange(n_out)
    np.add.at(a, (rows, i0), t(1) - lam)
    np.add.at(a, (rows, i1), lam)
    return a


def _output_sizes(name, spatial, size, scale_factor):
    nd = len(spatial)
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (list, tuple)) else (size,) * nd
        if len(sizes) != nd:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(spatial)} and output size of {list(sizes)}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             f"(o1, o2, ...,oK) format.")
        sizes = tuple(int(s) for s in sizes)
        if any(s < 0 for s in sizes):
            raise ValueError(f"{name}: output size must be non-negative, got {list(sizes)}")
        return sizes, (None,) * nd
    factors = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else \
        (scale_factor,) * nd
    if len(factors) != nd:
        raise ValueError(f"Input and scale_factor must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of {list(spatial)} "
                         f"and scale_factor of shape {list(factors)}. Please provide input "
                         f"tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, "
                         f"...,sK) format.")
    if any(f <= 0 for f in factors):
        raise ValueError(f"{name}: scale_factor must be positive, got {list(factors)}")
    sizes = tuple(int(math.floor(float(n) * float(f))) for n, f in zip(spatial, factors))
    return sizes, tuple(float(f) for f in factors)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims of an (N, C, L) or (N, C, H, W) input (F.interpolate).

    ``size`` (int or tuple) or ``scale_factor`` (float or tuple; output size floor(in * s));
    ``mode`` 'nearest', 'linear' (3-D) or 'bilinear' (4-D); ``align_corners`` (linear modes
    only, default False) maps the corner pixels' centres onto each other.
    ``recompute_scale_factor=True`` uses in / out instead of 1 / scale_factor for the indices.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported by pydl "
                                  f"(supported: {', '.join(_MODES)})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by pydl")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if input.ndim not in (3, 4):
        raise NotImplementedError(f"interpolate: pydl resizes 3-D (N, C, L) and 4-D (N, C, H, W) "
                                  f"inputs, got {input.ndim}-D input of shape "
                                  f"{list(input.shape)}")
    if mode == "bilinear" and input.ndim != 4:
        raise NotImplementedError(f"Got {input.ndim}D input, but bilinear mode needs 4D input")
    if mode == "linear" and input.ndim != 3:
        raise NotImplementedError(f"Got {input.ndim}D input, but linear mode needs 3D input")
    if input.dtype.kind != "f":
        raise RuntimeError(f"interpolate: expected a floating input, got {input.dtype}")
    spatial = input.shape[2:]
    sizes, factors = _output_sizes("interpolate", spatial, size, scale_factor)
    if recompute_scale_factor:
        factors = (None,) * len(spatial)
    dtype = input.dtype
    mats = []
    for n_in, n_out, f in zip(spatial, sizes, factors):
        if mode == "nearest":
            mats.append(_nearest_matrix(n_in, n_out, f, dtype))
        else:
            mats.append(_linear_matrix(n_in, n_out, f, bool(align_corners), dtype))
    # y = A_h x A_w^T for images, x A^T for 1-d signals: matmuls with constant matrices.
    y = input @ Tensor._wrap(np.ascontiguousarray(mats[-1].T))
    if len(mats) == 2:
        y = Tensor._wrap(mats[0]) @ y
    return y


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """F.upsample (deprecated in PyTorch): interpolate with the same arguments."""
    return interpolate(input, size, scale_factor, mode, align_corners)
