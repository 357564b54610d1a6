"""``make_grid`` and ``save_image`` with torchvision's layout, writing PNG without PIL."""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range=None, scale_each: bool = False, pad_value: float = 0.0) -> np.ndarray:
    """Images ``(B, C, H, W)`` (or ``(C, H, W)``, ``(H, W)``) tiled ``nrow`` per row into one
    ``(3, H', W')`` float array, ``padding`` pixels of ``pad_value`` between them."""
    arr = np.asarray(tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else tensor,
                     dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[None] if arr.shape[0] in (1, 3) else arr[:, None]
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 3, axis=1)
    if normalize:
        lo, hi = value_range if value_range is not None else (arr.min(), arr.max())
        arr = (np.clip(arr, lo, hi) - lo) / max(hi - lo, 1e-5)
    n, c, h, w = arr.shape
    xmaps = min(nrow, n)
    ymaps = int(math.ceil(n / xmaps))
    height, width = h + padding, w + padding
    grid = np.full((c, height * ymaps + padding, width * xmaps + padding), pad_value,
                   dtype=np.float32)
    for k in range(n):
        y, x = divmod(k, xmaps)
        grid[:, y * height + padding:y * height + padding + h,
             x * width + padding:x * width + padding + w] = arr[k]
    return grid


def save_image(tensor, fp, format=None, **kwargs) -> None:
    """``make_grid(tensor, **kwargs)`` as an 8-bit RGB PNG at ``fp`` (a path or binary file)."""
    grid = make_grid(tensor, **kwargs)
    img = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    if hasattr(fp, "write"):
        fp.write(png)
    else:
        with open(fp, "wb") as f:
            f.write(png)
