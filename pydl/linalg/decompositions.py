"""Matrix decompositions: ``cholesky``, ``eigh``, ``svd``, ``svdvals``, with PyTorch's backward
formulas (real case), each written with ``Op.call`` so it differentiates again.

Cholesky, A = L L^T (Murray 2016; PyTorch's cholesky_backward):
    dA = L^-T Phi(L^T dL) L^-1, Phi(X) = the symmetric matrix whose lower triangle is tril(X)
    with the diagonal halved.

Symmetric eigendecomposition, A = V diag(lambda) V^T (first-order perturbation theory):
    dA = V (diag(dlambda) + F o skew(V^T dV)) V^T, skew(X) = (X - X^T) / 2,
    F_ij = 1 / (lambda_j - lambda_i) off the diagonal.
The eigenvector part grows as eigenvalues approach each other and is infinite for repeated
ones, as in PyTorch; the eigenvalue part alone is always finite.

SVD, A = U diag(s) V^T (reduced, k = min(m, n); Townsend 2016, PyTorch's svd_backward):
    dA = U [(skew'(U^T dU) S + S skew'(V^T dV)) / E + diag(ds)] V^T
         + (I - U U^T) dU S^-1 V^T + U S^-1 dV^T (I - V V^T),
    skew'(X) = X - X^T, E_ij = s_j^2 - s_i^2 off the diagonal, 1 on it.

Gradients with respect to A are symmetric for cholesky and eigh: they read one triangle of A,
and the symmetric gradient is the one that holds for symmetric perturbations (as PyTorch's).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from pydl.autograd.function import Function
from pydl.linalg._common import (LinAlgError, batch_prefix, check_float, check_matrix,
                                 check_square, check_tensor, diag_embed, eye_like, first_failing,
                                 is_constant_zero, mm, mT, tril_mask, unsqueeze)
from pydl.linalg.solvers import Solve
from pydl.ops import shape as _shape
from pydl.tensor import Tensor

eigh_result = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
svd_result = namedtuple("linalg_svd", ["U", "S", "Vh"])


def symmetrize_lower(A):
    """The symmetric matrix with A's lower triangle (what LAPACK reads with UPLO='L')."""
    n = A.shape[-1]
    low = A * tril_mask(A, n)
    return low + mT(A * tril_mask(A, n, -1))


# -- cholesky --------------------------------------------------------------------------------------
def _failing_minor(m: np.ndarray) -> int:
    """Order of the first leading minor that is not positive-definite (LAPACK potrf's info)."""
    for k in range(1, m.shape[0] + 1):
        try:
            np.linalg.cholesky(m[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return m.shape[0]


def _not_pd(m: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(m)
        return False
    except np.linalg.LinAlgError:
        return True


class Cholesky(Function):
    """L with A = L L^T, from A's lower triangle."""

    def forward(self, A):
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            i = first_failing(A, _not_pd)
            order = _failing_minor(A.reshape((-1,) + A.shape[-2:])[i])
            raise LinAlgError(f"linalg.cholesky: {batch_prefix(i, A.shape[:-2])}The "
                              f"factorization could not be completed because the input is not "
                              f"positive-definite (the leading minor of order {order} is not "
                              f"positive-definite).") from None
        self.save_for_backward(L)  # NB: the output is all the formula needs
        return L

    def backward(self, g):
        (L,) = self.saved_tensors
        n = L.shape[-1]
        # tril(L^T g) = tril(L^T tril(g)): the upper part of g never reaches the result.
        P = mm(mT(L), g) * tril_mask(L, n)
        P = 0.5 * (P + mT(P * tril_mask(L, n, -1)))  # symmetric, diagonal halved
        Z = Solve.call(mT(L), P)                     # L^-T P
        return mT(Solve.call(mT(L), mT(Z)))          # (L^-T (L^-T P)^T)^T = L^-T P L^-1


def cholesky(A: Tensor, *, upper: bool = False, out=None) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite A (*, n, n), as
    ``torch.linalg.cholesky``: lower L with A = L L^T, or upper U = L^T with A = U^T U when
    ``upper=True``. Only the lower triangle of A is read. A matrix that is not positive-definite
    raises ``LinAlgError`` naming the batch element and the order of the failing leading minor.
    """
    if out is not None:
        raise NotImplementedError("linalg.cholesky: out= is not supported by pydl")
    op = "linalg.cholesky"
    check_tensor(op, A)
    check_float(op, A)
    check_square(op, A)
    L = Cholesky.apply(A)
    return _shape.mT(L) if upper else L


# -- eigh ------------------------------------------------------------------------------------------
class Eigh(Function):
    """Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric A, from the triangle
    ``UPLO`` names."""

    def forward(self, A, UPLO):
        try:
            w, V = np.linalg.eigh(A, UPLO=UPLO)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.eigh: The algorithm failed to converge because the input "
                              "matrix is ill-conditioned or has too many repeated eigenvalues"
                              ) from None
        self.save_for_backward(w, V)
        return w, V

    def backward(self, gw, gV):
        w, V = self.saved_tensors
        n = V.shape[-1]
        if is_constant_zero(gV):
            inner = diag_embed(gw)
        else:
            X = mm(mT(V), gV)
            skew = 0.5 * (X - mT(X))
            # E_ij = w_j - w_i off the diagonal; 1 on it, where skew is 0 anyway.
            E = unsqueeze(w, -2) - unsqueeze(w, -1) + eye_like(w, n)
            inner = skew / E + diag_embed(gw)
        return mm(mm(V, inner), mT(V)), None


def eigh(A: Tensor, UPLO: str = "L", *, out=None) -> eigh_result:
    """Eigenvalues in ascending order and eigenvectors (as columns) of a symmetric A (*, n, n),
    as ``torch.linalg.eigh``: a named tuple ``(eigenvalues, eigenvectors)`` with
    A = V diag(eigenvalues) V^T. Only the triangle ``UPLO`` ('L' or 'U') of A is read.

    The course's Hessian analysis (lecture notes 5.8) reads curvature from these: the second
    directional derivative u^T H u along an eigenvector is its eigenvalue.

    Eigenvectors are unique only up to sign (and, for repeated eigenvalues, up to a rotation
    within the eigenspace); a loss should not depend on that choice. Gradients through the
    eigenvectors divide by eigenvalue gaps and are infinite for repeated eigenvalues.
    """
    if out is not None:
        raise NotImplementedError("linalg.eigh: out= is not supported by pydl")
    op = "linalg.eigh"
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    check_tensor(op, A)
    check_float(op, A)
    check_square(op, A)
    w, V = Eigh.apply(A, UPLO)
    return eigh_result(w, V)


def eigvalsh(A: Tensor, UPLO: str = "L", *, out=None) -> Tensor:
    """The eigenvalues of a symmetric A in ascending order (``torch.linalg.eigvalsh``)."""
    return eigh(A, UPLO, out=out).eigenvalues


# -- svd -------------------------------------------------------------------------------------------
class SVD(Function):
    """U, S, Vh with A = U diag(S) Vh, S descending. With full_matrices, the gradient ignores
    the columns of U and rows of Vh past min(m, n) (any basis of those subspaces would do), as
    PyTorch's."""

    def forward(self, A, full_matrices):
        try:
            U, S, Vh = np.linalg.svd(A, full_matrices=full_matrices)
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.svd: The algorithm failed to converge because the input "
                              "matrix is ill-conditioned or contained non-finite values"
                              ) from None
        self.full = full_matrices
        self.save_for_backward(U, S, Vh)
        return U, S, Vh

    def backward(self, gU, gS, gVh):
        U, S, Vh = self.saved_tensors
        m, n = U.shape[-2], Vh.shape[-1]
        k = min(m, n)
        if self.full:
            # Keep the first k singular vectors (a product with a constant selector is a
            # differentiable narrowing).
            if m > k:
                sel = np.eye(m, k, dtype=U.dtype)
                U, gU = mm(U, sel), mm(gU, sel)
            if n > k:
                sel = np.eye(k, n, dtype=U.dtype)
                Vh, gVh = mm(sel, Vh), mm(sel, gVh)
        use_u, use_v = not is_constant_zero(gU), not is_constant_zero(gVh)
        if not use_u and not use_v:  # only the singular values are used (svdvals)
            return mm(U * unsqueeze(gS, -2), Vh), None
        V = mT(Vh)
        S2 = S * S
        E = unsqueeze(S2, -2) - unsqueeze(S2, -1) + eye_like(S, k)
        inner = None
        if use_u:
            X = mm(mT(U), gU)
            inner = ((X - mT(X)) / E) * unsqueeze(S, -2)
        if use_v:
            Y = mm(Vh, mT(gVh))  # V^T gV
            term = unsqueeze(S, -1) * ((Y - mT(Y)) / E)
            inner = term if inner is None else inner + term
        inner = inner + diag_embed(gS)
        if m > n and use_u:
            gUSinv = gU / unsqueeze(S, -2)
            gA = mm(U, inner) + gUSinv - mm(U, mm(mT(U), gUSinv))
            return mm(gA, Vh), None
        if m < n and use_v:
            SinvgVh = gVh / unsqueeze(S, -1)
            gA = mm(inner, Vh) + SinvgVh - mm(mm(SinvgVh, V), Vh)
            return mm(U, gA), None
        return mm(mm(U, inner), Vh), None


def svd(A: Tensor, full_matrices: bool = True, *, driver=None, out=None) -> svd_result:
    """A = U diag(S) Vh for A (*, m, n), as ``torch.linalg.svd``: a named tuple (U, S, Vh) with
    S descending; ``full_matrices=False`` gives the reduced factors (k = min(m, n) columns).
    Singular vectors are unique only up to sign; a loss should not depend on it."""
    if out is not None:
        raise NotImplementedError("linalg.svd: out= is not supported by pydl")
    if driver is not None:
        raise RuntimeError("linalg.svd: keyword argument `driver=` is only supported on CUDA "
                           "inputs with cuSOLVER backend.")
    op = "linalg.svd"
    check_tensor(op, A)
    check_float(op, A)
    check_matrix(op, A)
    return svd_result(*SVD.apply(A, bool(full_matrices)))


def svdvals(A: Tensor, *, driver=None, out=None) -> Tensor:
    """The singular values of A (*, m, n) in descending order (``torch.linalg.svdvals``);
    their gradient is U diag(dS) V^T."""
    return svd(A, full_matrices=False, driver=driver, out=out).S
