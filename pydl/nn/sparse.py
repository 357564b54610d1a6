"""``Embedding``: a lookup table of learned vectors (torch.nn.Embedding)."""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.autograd import grad_mode
from pydl.nn import init
from pydl.nn.module import Module, Parameter
from pydl.ops.embedding import embedding as _embedding
from pydl.tensor import Tensor

__all__ = ["Embedding"]


class Embedding(Module):
    """Maps integer indices of any shape (*) to rows of ``weight`` (num_embeddings,
    embedding_dim), giving (*, embedding_dim). Equivalent to a bias-free Linear layer on
    one-hot inputs, without building the one-hot vectors.

    weight ~ N(0, 1) (PyTorch's default); the ``padding_idx`` row starts at zero and is never
    updated by gradients. ``max_norm`` renormalises looked-up rows in place."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None,
                 max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None,
                 dtype=None):
        super().__init__()
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
                raise ValueError(f"Embedding: {name} must be a non-negative int, got {n!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx ({padding_idx}) must be within "
                                 f"num_embeddings ({num_embeddings})")
            if padding_idx < 0:
                padding_idx = num_embeddings + padding_idx
        if sparse:
            raise ValueError("Embedding: sparse gradients are not supported by pydl; use "
                             "sparse=False")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            dt = _dtypes.get_default_dtype() if dtype is None else _dtypes.as_dtype(dtype)
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dt),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            data = _weight._data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if data.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight shape {data.shape} does not match "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(data, requires_grad=not _freeze)
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with grad_mode.no_grad():
                self.weight._data[self.padding_idx] = 0
                self.weight._bump_version()

    def forward(self, input: Tensor) -> Tensor:
        return _embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                          self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """An Embedding holding ``embeddings`` (2-D; shares its memory when it is a tensor),
        frozen (requires_grad=False) unless ``freeze=False``."""
        data = embeddings._data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{data.shape}")
        rows, cols = data.shape
        return cls(rows, cols, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=data,
                   _freeze=freeze)
