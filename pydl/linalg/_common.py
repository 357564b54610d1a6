"""What the linalg ops share: argument checks with PyTorch's messages, LAPACK failures turned
into ``LinAlgError`` naming the batch element, and small matrix helpers written with ``Op.call``
so that a backward formula built from them works on arrays (first order) and on Tensors
(create_graph; see ``pydl.autograd.function``)."""
from __future__ import annotations

import numpy as np

from pydl.ops.elementwise import raw
from pydl.ops.matmul import gemm
from pydl.ops.shape import Permute, Reshape
from pydl.tensor import Tensor


class LinAlgError(RuntimeError):
    """A matrix that the requested decomposition or solve does not exist for (singular, not
    positive-definite, no convergence), as ``torch.linalg.LinAlgError``; a RuntimeError."""


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# -- argument checks -----------------------------------------------------------------------------
def check_tensor(op: str, A, name: str = "A") -> Tensor:
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(A).__name__}")
    if not isinstance(A._data, np.ndarray):
        raise NotImplementedError(f"{op}: pydl.linalg runs on CPU (NumPy's LAPACK); got a tensor "
                                  f"on {A.device}. Move it with .cpu() first")
    return A


def check_float(op: str, A: Tensor, name: str = "input") -> None:
    if A.dtype not in _FLOAT_DTYPES:
        raise RuntimeError(f"{op}: Expected a floating point tensor as {name}. Got {A.dtype} "
                           f"(pydl.linalg supports float32 and float64)")


def check_matrix(op: str, A: Tensor, name: str = "A") -> None:
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor {name} must have at least 2 dimensions "
                           f"(got shape {tuple(A.shape)}).")


def check_square(op: str, A: Tensor, name: str = "A") -> None:
    check_matrix(op, A, name)
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: {name} must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def check_same_dtype(op: str, A: Tensor, B: Tensor) -> None:
    if A.dtype != B.dtype:
        raise RuntimeError(f"{op}: Expected A and B to have the same dtype, but found A of type "
                           f"{A.dtype} and B of type {B.dtype} instead")


def batch_prefix(index: int, batch_shape: tuple) -> str:
    """PyTorch's '(Batch element i): ' prefix, counting batch elements in row-major order."""
    return f"(Batch element {index}): " if batch_shape else ""


def first_failing(batch: np.ndarray, fails) -> int:
    """Index (row-major over the batch dims) of the first matrix for which ``fails(matrix)``;
    used only after a LAPACK call on the whole batch failed, to name the culprit."""
    flat = batch.reshape((-1,) + batch.shape[-2:])
    for i, m in enumerate(flat):
        if fails(m):
            return i
    return 0


# -- helpers for backward formulas (arrays or Tensors) ---------------------------------------------
def mT(x):
    """Transpose of the last two dims (a view; its gradient is the transpose back)."""
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return Permute.call(x, perm)


def mm(a, b):
    """a @ b over the last two dims with batch broadcasting (pydl's GEMM: the bare kernel on
    arrays, a recorded MatMul on Tensors)."""
    return gemm(a, b)


def eye_like(x, n: int) -> np.ndarray:
    """An n x n identity in x's dtype: a constant factor of a formula."""
    return np.eye(n, dtype=raw(x).dtype)


def unsqueeze(x, dim: int):
    """Insert a size-1 dim at ``dim`` (negative counts from the end of the new shape)."""
    shape = list(x.shape)
    if dim < 0:
        dim += len(shape) + 1
    shape.insert(dim, 1)
    return Reshape.call(x, tuple(shape), False)


def diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    n = v.shape[-1]
    return unsqueeze(v, -2) * eye_like(v, n)


def tril_mask(x, n: int, k: int = 0) -> np.ndarray:
    return np.tril(np.ones((n, n), dtype=raw(x).dtype), k)


def is_constant_zero(g) -> bool:
    """True for a gradient that is all zeros and carries no graph: the engine's filler for an
    output that received no gradient. A formula may drop terms linear in such a gradient (they
    vanish), which avoids 0 * inf where those terms divide by eigenvalue or singular value gaps,
    as PyTorch does for an undefined gradient."""
    if isinstance(g, Tensor) and g.requires_grad:
        return False
    return not raw(g).any()


def sum_to_batch(g, shape: tuple):
    """Reduce a gradient over batch dims that broadcasting added or stretched."""
    from pydl.ops.elementwise import unbroadcast

    return unbroadcast(g, tuple(shape))
