"""Embedding lookup (torch.nn.functional.embedding): forward and backward together.

An embedding is a linear layer applied to one-hot inputs, E^T onehot(i) = E[i], computed as a
row gather; its gradient scatters the incoming rows back onto the rows that were read (rows read
several times accumulate).
"""
from __future__ import annotations

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.tensor import Tensor

__all__ = ["embedding"]


def _scatter_add_rows(out, idx, rows) -> None:
    """out[idx[k]] += rows[k] for every k (repeated indices accumulate)."""
    if isinstance(out, np.ndarray):
        np.add.at(out, idx, rows)
    else:
        import cupyx

        cupyx.scatter_add(out, idx, rows)


class Embedding(Function):
    """y[...] = W[indices[...]]. dW[r] = sum of the gradient rows whose index is r, divided by
    r's count in the batch when ``scale_grad_by_freq``; row ``padding_idx`` gets no gradient.

    The indices come as a Tensor argument and are saved, so an in-place change of them before
    backward raises the version error instead of sending gradient to the wrong rows."""

    def forward(self, indices, weight, padding_idx, scale_grad_by_freq):
        self.meta = (weight.shape, padding_idx, scale_grad_by_freq)
        self.save_for_backward(indices)
        return weight[indices]

    def backward(self, g):
        (indices,) = self.saved_tensors
        wshape, padding_idx, scale_grad_by_freq = self.meta
        gw = EmbeddingBackward.call(g, indices, wshape, padding_idx, scale_grad_by_freq)
        return None, gw, None, None


class EmbeddingBackward(Function):
    """dW from dy: the rows of g scatter-added onto the rows they were read from (scaled by
    1/count, padding row zeroed). Linear in g; its own gradient reads rows of ggW at the same
    indices, the same scale and padding applied: an Embedding lookup again."""

    def forward(self, g, indices, wshape, padding_idx, scale_grad_by_freq):
        self.meta = (indices, wshape, padding_idx, scale_grad_by_freq)
        xp = array_module(g)
        idx = indices.reshape(-1)
        rows = g.reshape(-1, wshape[1])
        if scale_grad_by_freq and idx.size:
            rows = rows * _inverse_counts(idx, wshape[0], g.dtype, xp)[:, None]
        gw = xp.zeros(wshape, dtype=g.dtype)
        _scatter_add_rows(gw, idx, rows)
        if padding_idx is not None:
            gw[padding_idx] = 0
        return gw

    def backward(self, ggw):
        from pydl.ops.elementwise import raw

        indices, wshape, padding_idx, scale_grad_by_freq = self.meta
        xp = array_module(raw(ggw))
        if padding_idx is not None:
            keep = xp.ones((wshape[0], 1), dtype=ggw.dtype)
            keep[padding_idx] = 0
            ggw = ggw * keep
        gg = Embedding.call(indices, ggw, None, False)
        if scale_grad_by_freq and indices.size:
            scale = _inverse_counts(indices.reshape(-1), wshape[0], ggw.dtype, xp)
            gg = gg * scale.reshape(indices.shape + (1,))
        return gg, None, None, None, None


def _inverse_counts(idx, n, dtype, xp):
    """1 / (how often idx[k] occurs in idx), per k."""
    counts = xp.bincount(idx, minlength=n)
    return (1.0 / counts[idx]).astype(dtype)


def _renorm_rows_(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    """Rescale in place (no autograd) the rows of ``weight`` read by ``idx`` whose p-norm
    exceeds ``max_norm`` to norm max_norm (PyTorch's embedding_renorm_, same 1e-7 guard)."""
    xp = array_module(weight._data)
    rows = xp.unique(idx.reshape(-1))
    if rows.size == 0:
        return
    w = weight._data[rows]
    norms = xp.linalg.norm(w, ord=norm_type, axis=1) if norm_type != np.inf else \
        xp.abs(w).max(axis=1)
    big = norms > max_norm
    if bool(big.any()):
        scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
        weight._data[rows[big]] = w[big] * scale[:, None]
        weight._bump_version()


def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by the integer ``input`` of
    any shape; the result has shape input.shape + (embedding_dim,).

    ``padding_idx``: that row receives no gradient. ``max_norm``: rows read here whose
    ``norm_type``-norm exceeds it are rescaled in place first (modifying ``weight``).
    ``scale_grad_by_freq``: each row's gradient is divided by its count in the batch.
    Sparse gradients are not supported (``sparse=True`` raises)."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"embedding: expected pydl Tensors for input and weight, got "
                        f"{type(input).__name__} and {type(weight).__name__}")
    if input.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer indices (int64 or int32) as input, got "
                        f"dtype {input.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {weight.shape}")
    if sparse:
        raise ValueError("embedding: sparse gradients are not supported by pydl; use "
                         "sparse=False (dense gradients)")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx ({padding_idx}) must be within "
                             f"num_embeddings ({n})")
        padding_idx = int(padding_idx) % n
    idx = input._data
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings "
                             f"(input shape {input.shape}, weight shape {weight.shape})")
    if max_norm is not None:
        _renorm_rows_(weight, idx, float(max_norm), float(norm_type))
    # The index tensor itself (not its array): its version is recorded for backward.
    return Embedding.apply(input, weight, padding_idx, bool(scale_grad_by_freq))
