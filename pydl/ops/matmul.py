"""Matrix products: ``matmul`` / ``@`` with torch.matmul's rules, ``mm``, ``bmm``, ``dot``.

Every product runs through ``matmul_kernel``, the one place that picks the GEMM implementation
(pydl._C on CPU). Backward reuses it with transpose flags, so dA = dC @ B^T and dB = A^T @ dC
are computed without materialising a transposed copy.

The GEMM with flags is itself the op ``MatMul(a, b, trans_a, trans_b)``, whose gradients are
again such GEMMs, so every backward here is differentiable (create_graph=True: Hessians through
MLPs). Backward formulas reach it through ``gemm``, which on raw arrays is the bare kernel call:
the first-order path of matmul and linear, the hottest in the library, costs what it did.
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl.autograd.function import Function
from pydl.ops.elementwise import unbroadcast
from pydl.ops.reduction import Sum
from pydl.ops.shape import Reshape
from pydl.tensor import Tensor


def matmul_kernel(a, b, trans_a: bool = False, trans_b: bool = False):
    """op(a) @ op(b) over the last two dims, batch dims broadcast; op = transpose if flagged."""
    if not isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
        from pydl import cuda  # CuPy arrays: pydl's CUDA GEMM (cuda/gemm.cuh)

        return cuda.kernels().matmul(a, b, trans_a, trans_b)
    if a.dtype in _GEMM_DTYPES and a.dtype == b.dtype:
        # pydl's packed GEMM (csrc/gemm.cpp): strided and transposed views go in without copies.
        return _C.matmul(a, b, trans_a, trans_b)
    # Integer and float16 products (no gradient, rare) stay with NumPy.
    if trans_a:
        a = a.swapaxes(-1, -2)
    if trans_b:
        b = b.swapaxes(-1, -2)
    return np.matmul(a, b)


_GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class MatMul(Function):
    """C = op(A) @ op(B) for op(A) (..., m, k), op(B) (..., k, n), op = transpose of the last two
    dims where ``trans_a`` / ``trans_b`` say so; batch dims broadcast.

    With A' = op(A), B' = op(B): dA' = dC B'^T and dB' = A'^T dC, transposed back where the
    operand was (dA = dA'^T when trans_a), each summed over the batch dims that broadcasting
    stretched. Each is one GEMM with flags on the saved operands, never a copy:

        dA = dC @ op(B)^T = gemm(dC, B, F, !tb);  with trans_a: op(B) @ dC^T = gemm(B, dC, tb, T)
        dB = op(A)^T @ dC = gemm(A, dC, !ta, F);  with trans_b: dC^T @ op(A) = gemm(dC, A, T, ta)
    """

    trans = (False, False)  # (trans_a, trans_b); set on the node only when one is True

    def forward(self, a, b, trans_a=False, trans_b=False):
        self.save_for_backward(a, b)
        if trans_a or trans_b:
            self.trans = (trans_a, trans_b)
        return matmul_kernel(a, b, trans_a, trans_b)

    def backward(self, g):
        a, b = self.saved_tensors
        ta, tb = self.trans
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gemm(g, b, False, not tb) if not ta else gemm(b, g, tb, True)
            ga = unbroadcast(ga, a.shape)
        if self.needs_input_grad[1]:
            gb = gemm(a, g, not ta, False) if not tb else gemm(g, a, True, ta)
            gb = unbroadcast(gb, b.shape)
        return ga, gb, None, None


def gemm(a, b, trans_a: bool = False, trans_b: bool = False):
    """op(a) @ op(b) for backward formulas: on raw arrays the kernel itself (no node, nothing
    wrapped: MatMul.call's work without its Python overhead, which the MLP step would feel); with
    a Tensor (create_graph) a recorded MatMul node."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return MatMul.apply(a, b, trans_a, trans_b)
    return matmul_kernel(a, b, trans_a, trans_b)


def matmul(input, other):
    """torch.matmul: 1-D operands are promoted to a row (left) or column (right) and the added
    dim removed afterwards; batch dims broadcast."""
    from pydl.ops import shape

    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"matmul expects Tensors, got {type(input).__name__} and "
                        f"{type(other).__name__}")
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{input.shape} and {other.shape}")
    if type(input._data) is not type(other._data):
        raise RuntimeError(f"matmul: expected both tensors on the same device, got "
                           f"{input.device} and {other.device}")
    if input.dtype != other.dtype:
        raise RuntimeError(f"matmul: expected both tensors to have the same dtype, got "
                           f"{input.dtype} and {other.dtype}")
    a, b = input, other
    squeeze_first = squeeze_last = False
    if a.ndim == 1:
        a = shape.unsqueeze(a, 0)
        squeeze_first = True
    if b.ndim == 1:
        b = shape.unsqueeze(b, -1)
        squeeze_last = True
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"matmul: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot "
                           f"be multiplied ({a.shape[-2]}x{a.shape[-1]} and "
                           f"{b.shape[-2]}x{b.shape[-1]})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise RuntimeError(f"matmul: batch dimensions of {tuple(input.shape)} and "
                           f"{tuple(other.shape)} do not broadcast") from None
    out = MatMul.apply(a, b)
    if squeeze_first:
        out = shape.squeeze(out, -2)
    if squeeze_last:
        out = shape.squeeze(out, -1)
    return out


def mm(input, mat2):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: expected 3-D tensors with the same batch size, got shapes "
                           f"{input.shape} and {mat2.shape}")
    return matmul(input, mat2)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise RuntimeError(f"dot: expected 1-D tensors of the same size, got shapes "
                           f"{input.shape} and {other.shape}")
    return matmul(input, other)


def _as_rows(x):
    """(..., k) -> (rows, k); explicit row count so k == 0 works (reshape(-1, 0) cannot).
    Arrays or Tensors (a Reshape node under create_graph); a 2-D x is returned as it is."""
    if x.ndim == 2:
        return x
    rows = 1
    for d in x.shape[:-1]:
        rows *= d
    return Reshape.call(x, (rows, x.shape[-1]), False)


def _sum_rows(g2):
    """The bias gradient: g2 (rows, out) summed over its rows (a Sum node on a Tensor)."""
    if isinstance(g2, Tensor):
        return Sum.apply(g2, (0,), False)
    return g2.sum(axis=0)


class Linear(Function):
    """y = x W^T + b in one node: the transpose is a GEMM flag, never a copy.

    dx = dy W, dW = dy^T x and db = sum of dy over all leading dims (x and dy flattened to 2-D).
    The two products are ``gemm`` calls, so the formula is differentiable as it stands: under
    create_graph they are MatMul nodes (d2y/dx dW is the identity pattern a GEMM's backward
    gives), and first order runs the bare kernels.
    """

    def forward(self, x, w, b):
        self.save_for_backward(x, w)
        # Leading dims flattened into one GEMM of (rows, in) x (in, out): any rank, one call.
        x2 = _as_rows(x)
        y = matmul_kernel(x2, w, trans_b=True)
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, g):
        x, w = self.saved_tensors
        gx = gw = gb = None
        g2 = _as_rows(g)
        if self.needs_input_grad[0]:
            gx = gemm(g2, w)
            if x.ndim != 2:
                gx = Reshape.call(gx, x.shape, False)
        if self.needs_input_grad[1]:
            gw = gemm(g2, _as_rows(x), trans_a=True)
        if self.needs_input_grad[2]:
            gb = _sum_rows(g2)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """y = x W^T + b (torch.nn.functional.linear): x (..., in), W (out, in), b (out,)."""
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                           f"{weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"linear: input shape {tuple(input.shape)} does not match weight "
                           f"shape {tuple(weight.shape)}: the last dim of input must equal "
                           f"in_features={weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise RuntimeError(f"linear: bias shape {tuple(bias.shape)} must be "
                           f"({weight.shape[0]},)")
    if input.dtype != weight.dtype:
        raise RuntimeError(f"linear: input dtype {input.dtype} differs from weight dtype "
                           f"{weight.dtype}")
    return Linear.apply(input, weight, bias)
