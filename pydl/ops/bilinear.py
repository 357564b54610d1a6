"""Bilinear form y = x1^T A x2 + b (torch.nn.functional.bilinear): forward and backward.

For x1 (..., in1), x2 (..., in2), weight A (out, in1, in2) and bias b (out,):
    y[..., o] = sum_ij x1[..., i] A[o, i, j] x2[..., j] + b[o]
Each gradient is the same contraction with one factor replaced by dy:
    dx1[i] = sum_oj dy[o] A[o, i, j] x2[j],   dx2[j] = sum_oi dy[o] A[o, i, j] x1[i],
    dA[o, i, j] = sum over the batch of dy[o] x1[i] x2[j],   db = sum over the batch of dy.
"""
from __future__ import annotations

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.tensor import Tensor

__all__ = ["bilinear"]


class Bilinear(Function):
    """Each gradient is a bilinear form again, with the weight's axes permuted (dx1 pairs dy
    with x2 through A[o, i, j] read as (i, o, j)), or the outer product of the batch
    (``BilinearWeightGrad``); both have gradients of the same kinds, to any order."""

    def forward(self, x1, x2, w, b):
        xp = array_module(x1)
        self.save_for_backward(x1, x2, w)
        y = xp.einsum("...i,oij,...j->...o", x1, w, x2, optimize=True)
        if b is not None:
            y += b
        return y

    def backward(self, g):
        from pydl.ops.reduction import Sum
        from pydl.ops.shape import Permute

        x1, x2, w = self.saved_tensors
        gx1 = gx2 = gw = gb = None
        if self.needs_input_grad[0]:
            gx1 = Bilinear.call(g, x2, Permute.call(w, (1, 0, 2)), None)
        if self.needs_input_grad[1]:
            gx2 = Bilinear.call(g, x1, Permute.call(w, (2, 0, 1)), None)
        if self.needs_input_grad[2]:
            gw = BilinearWeightGrad.call(g, x1, x2)
        if self.needs_input_grad[3]:
            gb = Sum.call(g, tuple(range(len(g.shape) - 1)), False)
        return gx1, gx2, gw, gb


class BilinearWeightGrad(Function):
    """dA[o, i, j] = sum over the batch of dy[o] x1[i] x2[j]. Trilinear, so each of its
    gradients is a Bilinear form of the other two factors."""

    def forward(self, g, x1, x2):
        self.save_for_backward(g, x1, x2)
        return array_module(g).einsum("...o,...i,...j->oij", g, x1, x2, optimize=True)

    def backward(self, gga):
        from pydl.ops.shape import Permute

        g, x1, x2 = self.saved_tensors
        gg = gx1 = gx2 = None
        if self.needs_input_grad[0]:
            gg = Bilinear.call(x1, x2, gga, None)
        if self.needs_input_grad[1]:
            gx1 = Bilinear.call(g, x2, Permute.call(gga, (1, 0, 2)), None)
        if self.needs_input_grad[2]:
            gx2 = Bilinear.call(g, x1, Permute.call(gga, (2, 0, 1)), None)
        return gg, gx1, gx2


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias=None) -> Tensor:
    """y = x1^T A x2 + b over the last dims; input1 (..., in1), input2 (..., in2) with the
    same leading dims, weight (out, in1, in2), bias (out,)."""
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"bilinear: expected {name} to be a pydl.Tensor, got "
                            f"{type(t).__name__}")
    if weight.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out, in1, in2), got shape "
                         f"{weight.shape}")
    if input1.ndim == 0 or input2.ndim == 0 or input1.shape[:-1] != input2.shape[:-1]:
        raise ValueError(f"bilinear: input1 {input1.shape} and input2 {input2.shape} must have "
                         f"the same leading dims")
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise ValueError(f"bilinear: input1 {input1.shape} and input2 {input2.shape} do not "
                         f"match weight {weight.shape} (out, in1, in2)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bilinear: bias shape {bias.shape} must be ({weight.shape[0]},)")
    return Bilinear.apply(input1, input2, weight, bias)
