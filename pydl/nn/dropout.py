"""Dropout modules (torch.nn.Dropout, Dropout2d): inverted dropout, identity in eval mode.

The course's weight-scaling inference rule (lecture notes 12.5.1) trains with an unscaled
Bernoulli(1 - p) mask and multiplies the weights by (1 - p) at inference, so a unit's expected
input is the same in both phases. Inverted dropout, used here and in PyTorch, divides the kept
activations by (1 - p) during training instead: E[mask * x / (1 - p)] = x, and inference uses
the network unchanged. The two give the same predictions: the weights trained here equal the
weight-scaled ones. ``model.eval()`` switches dropout off.
"""
from __future__ import annotations

from pydl.nn.module import Module
from pydl.ops import activation as _A
from pydl.tensor import Tensor

__all__ = ["Dropout", "Dropout2d"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = _A._check_p(p)
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability ``p`` in training (survivors scaled by
    1 / (1 - p)); the identity in evaluation. Masks come from pydl's global generator."""

    def forward(self, input: Tensor) -> Tensor:
        return _A.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) inputs with probability ``p`` in training
    (neighbouring pixels are correlated, so element dropout would barely regularise a conv
    layer); the identity in evaluation."""

    def forward(self, input: Tensor) -> Tensor:
        return _A.dropout2d(input, self.p, self.training, self.inplace)
