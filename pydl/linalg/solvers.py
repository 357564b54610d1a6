"""Linear systems: ``solve``, ``inv``, ``pinv`` and ``lstsq`` as ops with backward formulas.

The forward passes call NumPy's LAPACK (none of this is hot); each backward is written with
``Op.call`` (matmul, transpose, solve itself) so that it differentiates again under
``create_graph=True``:

* X = A^-1 B:   dB = A^-T dX,  dA = -dB X^T           (a solve with A^T, then one product)
* Y = A^-1:     dA = -Y^T dY Y^T
* Y = A^+:      PyTorch's pinv_backward (Golub and Pereyra's derivative of the pseudo-inverse)
* X = lstsq(A, B) = A^+ B: dB = A^+T dX and dA through pinv_backward, as PyTorch's
  linalg_lstsq_backward.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from pydl.autograd.function import Function
from pydl.linalg._common import (LinAlgError, batch_prefix, check_float, check_matrix,
                                 check_same_dtype, check_square, check_tensor, first_failing,
                                 mm, mT, sum_to_batch)
from pydl.ops import shape as _shape
from pydl.tensor import Tensor

lstsq_result = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])

_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _zero_pivot(m: np.ndarray) -> int:
    """1-based index of the first exactly-zero pivot of LU with partial pivoting (LAPACK
    getrf's ``info``), 0 if there is none. Only used to word an error."""
    a = np.array(m, dtype=np.float64)
    n = a.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(a[k:, k])))
        if a[p, k] == 0:
            return k + 1
        a[[k, p]] = a[[p, k]]
        a[k + 1:, k:] -= np.outer(a[k + 1:, k] / a[k, k], a[k, k:])
    return 0


def _is_singular(m: np.ndarray) -> bool:
    return _zero_pivot(m) > 0


# -- solve ----------------------------------------------------------------------------------------
class Solve(Function):
    """X = A^-1 B for A (..., n, n), B (..., n, k); batch dims broadcast.

    dB = A^-T dX (one more solve, with A^T), dA = -dB X^T; each summed over the batch dims that
    broadcasting stretched. Solve itself is differentiable, so the formula is too.
    """

    def forward(self, A, B):
        try:
            X = np.linalg.solve(A, B)
        except np.linalg.LinAlgError:
            batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
            i = first_failing(np.broadcast_to(A, batch + A.shape[-2:]), _is_singular)
            raise LinAlgError(f"linalg.solve: {batch_prefix(i, batch)}The solver failed because "
                              f"the input matrix is singular.") from None
        self.shapes = (A.shape, B.shape)
        self.save_for_backward(A, X)
        return X

    def backward(self, g):
        A, X = self.saved_tensors
        a_shape, b_shape = self.shapes
        gB = Solve.call(mT(A), g)
        gA = -mm(gB, mT(X)) if self.needs_input_grad[0] else None
        return (sum_to_batch(gA, a_shape) if gA is not None else None,
                sum_to_batch(gB, b_shape) if self.needs_input_grad[1] else None)


def solve(A: Tensor, B: Tensor, *, left: bool = True, out=None) -> Tensor:
    """The solution X of A X = B (``left=False``: X A = B), as ``torch.linalg.solve``.

    A is (*, n, n); B is (*, n, k), or a batch of vectors (*, n) when B is 1-D or has the shape
    of A without its last dim (then X has B's shape). Batch dims broadcast. Raises
    ``LinAlgError`` (a RuntimeError) for a singular A, naming the batch element.

    In the course's notation this is the closed form of a square linear system,
    x = A^-1 b, computed by LU factorisation rather than by forming A^-1.
    """
    if out is not None:
        raise NotImplementedError("linalg.solve: out= is not supported by pydl")
    op = "linalg.solve"
    check_tensor(op, A, "A")
    check_tensor(op, B, "B")
    check_float(op, A, "A")
    check_square(op, A)
    check_same_dtype(op, A, B)
    n = A.shape[-1]
    vector = left and (B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1]))
    B2 = _shape.unsqueeze(B, -1) if vector or B.ndim == 1 else B
    if left:
        rows_ok = B2.shape[-2] == n
    else:
        rows_ok = B2.shape[-1] == n
    if not rows_ok:
        eq = "AX = B" if left else "XA = B"
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation {eq} "
                           f"({A.shape[-2]}x{A.shape[-1]} and {B2.shape[-2]}x{B2.shape[-1]})")
    try:
        np.broadcast_shapes(A.shape[:-2], B2.shape[:-2])
    except ValueError:
        raise RuntimeError(f"{op}: the batch dimensions of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)} do not broadcast") from None
    if left:
        X = Solve.apply(A, B2)
    else:  # X A = B  <=>  A^T X^T = B^T
        X = _shape.mT(Solve.apply(_shape.mT(A), _shape.mT(B2)))
    return _shape.squeeze(X, -1) if vector else X


# -- inv -------------------------------------------------------------------------------------------
class Inv(Function):
    """Y = A^-1; dA = -Y^T dY Y^T (from d(A^-1) = -A^-1 dA A^-1)."""

    def forward(self, A):
        try:
            Y = np.linalg.inv(A)
        except np.linalg.LinAlgError:
            batch = A.shape[:-2]
            i = first_failing(A, _is_singular)
            pivot = _zero_pivot(A.reshape((-1,) + A.shape[-2:])[i])
            raise LinAlgError(f"linalg.inv: {batch_prefix(i, batch)}The diagonal element "
                              f"{pivot} is zero, the inversion could not be completed because "
                              f"the input matrix is singular.") from None
        self.save_for_backward(Y)  # NB: the output is all the formula needs
        return Y

    def backward(self, g):
        (Y,) = self.saved_tensors
        Yt = mT(Y)
        return -mm(mm(Yt, g), Yt)


def inv(A: Tensor, *, out=None) -> Tensor:
    """A^-1 for A (*, n, n), as ``torch.linalg.inv``; ``LinAlgError`` for a singular matrix
    (naming the zero pivot of its LU factorisation and the batch element)."""
    if out is not None:
        raise NotImplementedError("linalg.inv: out= is not supported by pydl")
    op = "linalg.inv"
    check_tensor(op, A)
    check_float(op, A)
    check_square(op, A)
    return Inv.apply(A)


# -- pinv ------------------------------------------------------------------------------------------
def pinv_backward(g, pinvA, A):
    """dA for Y = A^+ given dY = g (PyTorch's pinv_backward, real case), arranged so the largest
    intermediate is min(m, n) square. Arrays or Tensors."""
    m, n = A.shape[-2], A.shape[-1]
    pinvAt = mT(pinvA)
    gt = mT(g)
    if m <= n:
        K = mm(gt, pinvA)
        KpinvAt = mm(K, pinvAt)
        return (-mT(mm(pinvA, K)) + KpinvAt - mm(mm(A, pinvA), KpinvAt)
                + mm(mm(pinvAt, pinvA), gt - mm(K, A)))
    K = mm(pinvA, gt)
    pinvAtK = mm(pinvAt, K)
    return (-mT(mm(K, pinvA)) + mm(mm(gt - mm(A, K), pinvA), pinvAt) + pinvAtK
            - mm(mm(pinvAtK, pinvA), A))


def _pinv_array(A: np.ndarray, atol, rtol) -> np.ndarray:
    """A^+ from the SVD, dropping singular values <= max(atol, rtol * sigma_max)."""
    m, n = A.shape[-2], A.shape[-1]
    if A.size == 0 or min(m, n) == 0:
        return np.zeros(A.shape[:-2] + (n, m), dtype=A.dtype)
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    smax = S[..., :1]
    cutoff = np.maximum(atol, rtol * smax)
    with np.errstate(divide="ignore"):
        s_inv = np.where(S > cutoff, 1 / np.where(S > cutoff, S, 1), 0).astype(A.dtype)
    return np.matmul(np.swapaxes(Vh, -1, -2) * s_inv[..., None, :], np.swapaxes(U, -1, -2))


class Pinv(Function):
    """Y = A^+ (Moore-Penrose pseudo-inverse). Differentiable where the rank is constant near A,
    as PyTorch's."""

    def forward(self, A, atol=0.0, rtol=None):
        if rtol is None:
            rtol = np.finfo(A.dtype).eps * max(A.shape[-2], A.shape[-1])
        Y = _pinv_array(A, atol, rtol)
        self.save_for_backward(A, Y)
        return Y

    def backward(self, g):
        A, Y = self.saved_tensors
        return pinv_backward(g, Y, A), None, None


def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False, out=None) -> Tensor:
    """The pseudo-inverse A^+ of A (*, m, n), as ``torch.linalg.pinv``: singular values at or
    below max(atol, rtol * sigma_max) count as zero. Defaults as PyTorch: rtol = eps * max(m, n)
    when neither is given, rtol = 0 when only atol is. ``hermitian=True`` reads only the lower
    triangle of A (assumed symmetric)."""
    if out is not None:
        raise NotImplementedError("linalg.pinv: out= is not supported by pydl")
    op = "linalg.pinv"
    check_tensor(op, A)
    check_float(op, A)
    check_matrix(op, A)
    if rtol is None:
        rtol = 0.0 if atol is not None else None
    atol = 0.0 if atol is None else float(atol)
    if hermitian:
        check_square(op, A)
        from pydl.linalg.decompositions import symmetrize_lower

        A = symmetrize_lower(A)
    return Pinv.apply(A, atol, rtol)


# -- lstsq -----------------------------------------------------------------------------------------
def _gels_one(a: np.ndarray, b: np.ndarray, index: int, batch: tuple) -> np.ndarray:
    """LAPACK gels: QR (m >= n) or LQ (m < n) without pivoting; full rank assumed, an exactly
    zero diagonal of the triangular factor is an error (as LAPACK's trtrs reports)."""
    m, n = a.shape
    tall = m >= n
    Q, R = np.linalg.qr(a if tall else a.T, mode="reduced")
    zero = np.flatnonzero(np.diagonal(R) == 0)
    if zero.size:
        raise LinAlgError(f"linalg.lstsq: {batch_prefix(index, batch)}The least squares solution "
                          f"could not be computed because the input matrix does not have full "
                          f"rank (error code: {int(zero[0]) + 1}).")
    if tall:  # A = Q R: X = R^-1 Q^T B
        return np.linalg.solve(R, Q.T @ b) if n else np.zeros((0, b.shape[1]), a.dtype)
    # A^T = Q R, so A = R^T Q^T and the minimum-norm X = Q R^-T B
    return Q @ np.linalg.solve(R.T, b) if m else np.zeros((n, b.shape[1]), a.dtype)


class Lstsq(Function):
    """X = argmin ||A X - B||_F (the minimum-norm one when A is rank-deficient); also returns the
    rank and singular values LAPACK computes on the way (no gradient).

    Backward treats X as A^+ B, as PyTorch: dB = A^+T dX and dA = pinv_backward(dX B^T). A^+ is
    recomputed there by the ``Pinv`` op, so under create_graph it joins the graph.
    """

    def forward(self, A, B, rcond, driver):
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        m, n = A.shape[-2], A.shape[-1]
        k = B.shape[-1]
        count = int(np.prod(batch))  # explicit: reshape(-1, m, 0) cannot infer it
        As = np.broadcast_to(A, batch + (m, n)).reshape((count, m, n))
        Bs = np.broadcast_to(B, batch + (m, k)).reshape((count, m, k))
        X = np.empty((As.shape[0], n, k), dtype=A.dtype)
        rank = np.empty(As.shape[0], dtype=np.int64)
        sv = np.empty((As.shape[0], min(m, n)), dtype=A.dtype)
        for i, (a, b) in enumerate(zip(As, Bs)):
            if driver == "gels":
                X[i] = _gels_one(a, b, i, batch)
            else:
                X[i], _, rank[i], sv[i] = np.linalg.lstsq(a, b, rcond=rcond)
        X = X.reshape(batch + (n, k))
        rank = rank.reshape(batch)
        sv = sv.reshape(batch + (min(m, n),))
        self.shapes = (A.shape, B.shape)
        self.save_for_backward(A, B)
        self.mark_non_differentiable(sv)
        return X, rank, sv

    def backward(self, gX, _grank, _gsv):
        A, B = self.saved_tensors
        a_shape, b_shape = self.shapes
        pinvA = Pinv.call(A)
        gA = gB = None
        if self.needs_input_grad[0]:
            gA = sum_to_batch(pinv_backward(mm(gX, mT(B)), pinvA, A), a_shape)
        if self.needs_input_grad[1]:
            gB = sum_to_batch(mm(mT(pinvA), gX), b_shape)
        return gA, gB, None, None


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None) -> lstsq_result:
    """Least squares: X minimising ||A X - B||_F for A (*, m, n), B (*, m, k) or (*, m), as
    ``torch.linalg.lstsq``; returns ``(solution, residuals, rank, singular_values)``.

    This is the course's closed form (lecture notes 4.3.1) argmin ||A theta - y||^2 =
    (A^T A)^-1 A^T y, computed by an orthogonal factorisation instead of the normal equations
    (which square the condition number).

    Drivers (CPU semantics of PyTorch; the default is 'gelsy'):

    * 'gels': QR (LQ when m < n) without pivoting; A must have full rank (an exactly zero
      pivot raises ``LinAlgError``); ``rank`` and ``singular_values`` are empty.
    * 'gelsy': QR with column pivoting; ``rank`` is computed, ``singular_values`` empty.
    * 'gelsd', 'gelss': SVD; ``rank`` and ``singular_values`` computed.

    Singular values <= rcond * sigma_max count as zero (default rcond: eps of A's dtype times
    max(m, n)); a rank-deficient A gives the minimum-norm solution. ``residuals`` are the
    squared residual norms per column, (*, k), returned when m > n and every matrix has full
    rank (rank == n; assumed for 'gels'), except with 'gelsy', which never returns them; it is
    empty otherwise.

    pydl computes 'gelsy', 'gelsd' and 'gelss' with NumPy's gelsd (the same solution up to
    rounding) and counts the rank from the singular values; LAPACK's gelsy estimates the rank
    from the pivoted QR, which can differ for singular values within rounding of the
    threshold. 'gels' is computed with NumPy's QR as LAPACK's gels does.
    """
    op = "linalg.lstsq"
    check_tensor(op, A, "input")
    check_tensor(op, B, "other")
    if driver is None:
        driver = "gelsy"
    if driver not in _DRIVERS:
        raise RuntimeError(f"{op}: parameter `driver` should be one of (gels, gelsy, gelsd, "
                           f"gelss), got {driver!r}")
    check_float(op, A, "input")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: input must have at least 2 dimensions (got shape "
                           f"{tuple(A.shape)}).")
    if A.dtype != B.dtype:
        raise RuntimeError(f"{op}: Expected input and other to have the same dtype, but got "
                           f"input's dtype {A.dtype} and other's dtype {B.dtype}")
    if not (B.ndim >= 1 and A.ndim >= B.ndim and A.ndim - B.ndim <= 1):
        raise RuntimeError(f"{op}: input.dim() must be greater or equal to other.dim() and "
                           f"(input.dim() - other.dim()) <= 1 (got input {tuple(A.shape)}, "
                           f"other {tuple(B.shape)})")
    vector = B.ndim == A.ndim - 1
    B2 = _shape.unsqueeze(B, -1) if vector else B
    if B2.shape[-2] != A.shape[-2]:
        raise RuntimeError(f"{op}: input.size(-2) should match other.size(-2) (got input "
                           f"{tuple(A.shape)}, other {tuple(B.shape)})")
    try:
        np.broadcast_shapes(A.shape[:-2], B2.shape[:-2])
    except ValueError:
        raise RuntimeError(f"{op}: the batch dimensions of input {tuple(A.shape)} and other "
                           f"{tuple(B.shape)} do not broadcast") from None
    m, n = A.shape[-2], A.shape[-1]
    if rcond is None:
        rcond = float(np.finfo(A.dtype).eps) * max(m, n)
    X, rank, sv = Lstsq.apply(A, B2, float(rcond), driver)

    residuals = None
    if m > n and driver != "gelsy":
        if driver == "gels" or bool((rank._data == n).all()):
            from pydl.ops.matmul import matmul
            from pydl.ops.reduction import sum as _sum

            r = matmul(A, X) - B2
            residuals = _sum(r * r, -2)
    if residuals is None:
        residuals = Tensor._wrap(np.empty(0, dtype=A.dtype))
    if driver == "gels":
        rank = Tensor._wrap(np.empty(0, dtype=np.int64))
    if driver not in ("gelsd", "gelss"):
        sv = Tensor._wrap(np.empty(0, dtype=A.dtype))
    if vector:
        X = _shape.squeeze(X, -1)
    return lstsq_result(X, residuals, rank, sv)
