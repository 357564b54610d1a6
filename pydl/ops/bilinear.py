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
    def forward(self, x1, x2, w, b):
        xp = array_module(x1)
        self.save_for_backward(x1, x2, w)
        y = xp.einsum("...i,oij,...j->...o", x1, w, x2, optimize=True)
        if b is not None:
            y += b
        return y

    def backward(self, g):
        x1, x2, w = self.saved_tensors
        xp = array_module(g)
        gx1 = gx2 = gw = gb = None
        if self.needs_input_grad[0]:
            gx1 = xp.einsum("...o,oij,...j->...i", g, w, x2, optimize=True)
        if self.needs_input_grad[1]:
            gx2 = xp.einsum("...o,oij,...i->...j", g, w, x1, optimize=True)
        if self.needs_input_grad[2]:
            gw = xp.einsum("...o,...i,...j->oij", g, x1, x2, optimize=True)
        if self.needs_input_grad[3]:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx1, gx2, gw, gb


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
