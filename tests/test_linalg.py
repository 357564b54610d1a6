"""pydl.linalg: forward values against float64 references written here (defining identities,
normal equations, plain NumPy formulas), float32/float64, batched and broadcast shapes, zero-size
batches, non-contiguous inputs; gradcheck and gradgradcheck (float64) of every op over its
arguments; PyTorch's errors. The linalg forward runs NumPy's LAPACK, so the references check
what a result must satisfy (A X = B, L L^T = A, A V = V diag(w), ...) rather than call the same
routines again."""
import math

import numpy as np
import pytest

import pydl
from pydl import linalg as LA
from pydl.autograd import grad, gradcheck
from pydl.autograd import gradgradcheck as _gradgradcheck
from pydl.testing import assert_close, noncontiguous

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def gradgradcheck(fn, inputs, **kw):
    return _gradgradcheck(fn, inputs, atol=1e-6, rtol=1e-5, **kw)


def t(a, dtype=np.float64, grad=False):
    return pydl.tensor(np.ascontiguousarray(np.asarray(a, dtype=dtype)), requires_grad=grad)


def well_conditioned(rng, shape):
    """Random square matrices with eigenvalues away from 0: A = M + n I scaled."""
    n = shape[-1]
    return rng.standard_normal(shape) / math.sqrt(max(n, 1)) + 2 * np.eye(n)


def spd(rng, shape):
    n = shape[-1]
    M = rng.standard_normal(shape)
    return M @ np.swapaxes(M, -1, -2) / max(n, 1) + np.eye(n)


def sym(X):
    """The symmetric part: functions of symmetric matrices are checked through it, so that a
    perturbation of X stays a symmetric perturbation (what cholesky/eigh read)."""
    return (X + X.mT) * 0.5


def mT(a):
    return np.swapaxes(a, -1, -2)


# -- solve ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_shape,b_shape,x_shape", [
    ((3, 3), (3, 2), (3, 2)),
    ((3, 3), (3,), (3,)),
    ((1, 1), (1, 1), (1, 1)),
    ((2, 5, 5), (2, 5), (2, 5)),          # batch of vectors: B is A's shape without the last dim
    ((2, 5, 5), (5,), (2, 5)),            # one vector for every matrix
    ((2, 5, 5), (5, 3), (2, 5, 3)),       # B broadcast over A's batch
    ((4, 1, 3, 3), (2, 3, 1), (4, 2, 3, 1)),
    ((0, 3, 3), (0, 3, 2), (0, 3, 2)),
    ((0, 0), (0, 2), (0, 2)),
])
def test_solve_satisfies_ax_eq_b(dtype, a_shape, b_shape, x_shape):
    rng = np.random.default_rng(0)
    A, B = well_conditioned(rng, a_shape), rng.standard_normal(b_shape)
    X = LA.solve(t(A, dtype), t(B, dtype))
    assert X.shape == x_shape and X.dtype == dtype
    x = X.numpy().astype(np.float64)
    vector = len(b_shape) == 1 or b_shape == a_shape[:-1]
    Ax = np.einsum("...ij,...j->...i", A, x) if vector else np.einsum("...ij,...jk->...ik", A, x)
    assert_close(Ax, np.broadcast_to(B, Ax.shape), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_left_false_and_noncontiguous(dtype):
    rng = np.random.default_rng(1)
    A, B = well_conditioned(rng, (2, 4, 4)), rng.standard_normal((2, 3, 4))
    X = LA.solve(t(A, dtype), t(B, dtype), left=False)
    assert_close(np.einsum("...ij,...jk->...ik", X.numpy().astype(np.float64), A), B,
                 **TOL[dtype])
    An, Bn = noncontiguous(A.astype(dtype)), noncontiguous(mT(B).astype(dtype))
    X = LA.solve(pydl.tensor(An), pydl.tensor(Bn))
    assert_close(np.einsum("...ij,...jk->...ik", A, X.numpy().astype(np.float64)), mT(B),
                 **TOL[dtype])


@pytest.mark.parametrize("case", ["matrix", "vector", "batch_broadcast", "left_false",
                                  "b_only", "a_only"])
def test_solve_gradcheck_gradgradcheck(case):
    rng = np.random.default_rng(2)
    A = t(well_conditioned(rng, (2, 3, 3) if case != "matrix" else (3, 3)), grad=True)
    B = t(rng.standard_normal({"matrix": (3, 2), "vector": (2, 3), "batch_broadcast": (3, 2),
                               "left_false": (2, 4, 3), "b_only": (2, 3, 1),
                               "a_only": (2, 3, 1)}[case]), grad=True)
    if case == "b_only":
        A.requires_grad = False
    if case == "a_only":
        B.requires_grad = False
    fn = (lambda a, b: LA.solve(a, b, left=False)) if case == "left_false" else LA.solve
    assert gradcheck(fn, (A, B))
    assert gradgradcheck(fn, (A, B))


# -- inv -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 2, 5, 5), (0, 3, 3), (0, 0)])
def test_inv_is_the_inverse(dtype, shape):
    A = well_conditioned(np.random.default_rng(3), shape)
    Y = LA.inv(t(A, dtype))
    assert Y.shape == shape and Y.dtype == dtype
    eye = np.broadcast_to(np.eye(shape[-1]), shape)
    assert_close(np.einsum("...ij,...jk->...ik", A, Y.numpy().astype(np.float64)), eye,
                 **TOL[dtype])
    assert_close(LA.inv(pydl.tensor(noncontiguous(A.astype(dtype)))), Y, **TOL[dtype])


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4)])
def test_inv_gradcheck_gradgradcheck(shape):
    A = t(well_conditioned(np.random.default_rng(4), shape), grad=True)
    assert gradcheck(LA.inv, (A,))
    assert gradgradcheck(LA.inv, (A,))


def test_inv_third_derivative_matches_formula():
    """d^3/da^3 of 1/a is -6/a^4: the backward of the backward of inv's backward."""
    a = t([[2.0]], grad=True)
    (g1,) = grad(LA.inv(a).sum(), a, create_graph=True)
    (g2,) = grad(g1.sum(), a, create_graph=True)
    (g3,) = grad(g2.sum(), a)
    assert_close(g3, np.array([[-6 / 2.0 ** 4]]))


# -- cholesky -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (2, 3, 4, 4), (0, 3, 3)])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_factor(dtype, shape, upper):
    A = spd(np.random.default_rng(5), shape)
    F = LA.cholesky(t(A, dtype), upper=upper).numpy().astype(np.float64)
    assert F.shape == shape
    n = shape[-1]
    if upper:
        assert np.all(F[..., np.tril_indices(n, -1)[0], np.tril_indices(n, -1)[1]] == 0)
        recon = np.einsum("...ki,...kj->...ij", F, F)  # U^T U
    else:
        assert np.all(F[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] == 0)
        recon = np.einsum("...ik,...jk->...ij", F, F)  # L L^T
    assert np.all(np.diagonal(F, axis1=-2, axis2=-1) > 0)
    assert_close(recon, A, **TOL[dtype])


def test_cholesky_reads_the_lower_triangle_only():
    A = spd(np.random.default_rng(6), (4, 4))
    B = A + np.triu(np.full((4, 4), 7.0), 1)  # garbage above the diagonal
    assert_close(LA.cholesky(t(B)), LA.cholesky(t(A)))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4, 4)])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_gradcheck_gradgradcheck(shape, upper):
    X = t(spd(np.random.default_rng(7), shape), grad=True)

    def fn(x):
        return LA.cholesky(sym(x), upper=upper)

    assert gradcheck(fn, (X,))
    assert gradgradcheck(fn, (X,))


def test_cholesky_gradient_is_symmetric():
    X = t(spd(np.random.default_rng(8), (4, 4)), grad=True)
    W = np.random.default_rng(9).standard_normal((4, 4))
    (LA.cholesky(X) * t(W)).sum().backward()
    g = X.grad.numpy()
    assert_close(g, g.T, rtol=1e-12, atol=1e-12)


# -- eigh -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 2, 4, 4), (0, 3, 3)])
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_decomposes(dtype, shape, UPLO):
    rng = np.random.default_rng(10)
    S = rng.standard_normal(shape)
    S = S + mT(S)
    n = shape[-1]
    junk = np.triu(np.full((n, n), 5.0), 1) if UPLO == "L" else np.tril(np.full((n, n), 5.0), -1)
    w, V = LA.eigh(t(S + junk, dtype), UPLO=UPLO)  # the other triangle is never read
    assert w.shape == shape[:-1] and V.shape == shape and w.dtype == dtype
    w, V = w.numpy().astype(np.float64), V.numpy().astype(np.float64)
    assert np.all(np.diff(w, axis=-1) >= 0)
    assert_close(np.einsum("...ij,...jk->...ik", S, V), V * w[..., None, :], **TOL[dtype])
    assert_close(np.einsum("...ki,...kj->...ij", V, V), np.broadcast_to(np.eye(n), shape),
                 **TOL[dtype])
    assert_close(LA.eigvalsh(t(S + junk, dtype), UPLO=UPLO), w, **TOL[dtype])


def _fix_signs(V):
    """Eigenvectors up to sign: make each column's first entry positive (a constant factor)."""
    s = np.sign(V.detach().numpy()[..., :1, :])
    return V * pydl.tensor(s)


@pytest.mark.parametrize("part", ["eigenvalues", "eigenvectors", "both"])
@pytest.mark.parametrize("UPLO", ["L", "U"])
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (2, 3, 3)])
def test_eigh_gradcheck_gradgradcheck(part, UPLO, shape):
    X = t(np.random.default_rng(11).standard_normal(shape), grad=True)

    def fn(x):
        w, V = LA.eigh(sym(x), UPLO=UPLO)
        if part == "eigenvalues":
            return w
        if part == "eigenvectors":
            return _fix_signs(V)
        return w, _fix_signs(V)

    assert gradcheck(fn, (X,))
    assert gradgradcheck(fn, (X,))


def test_eigh_eigenvalue_gradient_at_repeated_eigenvalues_is_finite():
    """Only the eigenvector part divides by eigenvalue gaps (PyTorch drops it when unused)."""
    X = t(np.diag([1.0, 1.0, 2.0]), grad=True)
    LA.eigh(X).eigenvalues.sum().backward()
    assert_close(X.grad, np.eye(3))


# -- svd ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (1, 1), (2, 5, 2), (0, 3, 2)])
@pytest.mark.parametrize("full", [False, True])
def test_svd_decomposes(dtype, shape, full):
    A = np.random.default_rng(12).standard_normal(shape)
    U, S, Vh = LA.svd(t(A, dtype), full_matrices=full)
    m, n = shape[-2:]
    k = min(m, n)
    assert U.shape == shape[:-2] + ((m, m) if full else (m, k))
    assert Vh.shape == shape[:-2] + ((n, n) if full else (k, n))
    U, S, Vh = (x.numpy().astype(np.float64) for x in (U, S, Vh))
    assert np.all(np.diff(S, axis=-1) <= 0)
    recon = np.einsum("...ik,...k,...kj->...ij", U[..., :k], S, Vh[..., :k, :])
    assert_close(recon, A, **TOL[dtype])
    assert_close(LA.svdvals(t(A, dtype)), S, **TOL[dtype])


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 3, 2)])
@pytest.mark.parametrize("full", [False, True])
def test_svd_gradcheck_gradgradcheck(shape, full):
    A = t(np.random.default_rng(13).standard_normal(shape), grad=True)

    def fn(a):
        U, S, Vh = LA.svd(a, full_matrices=full)
        k = S.shape[-1]
        # Sign-invariant products of the first k singular vectors.
        return S, (U[..., :, :k] * U[..., :1, :k]), (Vh[..., :k, :] * Vh[..., :k, :1])

    assert gradcheck(fn, (A,))
    assert gradgradcheck(fn, (A,))
    assert gradcheck(LA.svdvals, (A,))
    assert gradgradcheck(LA.svdvals, (A,))


# -- pinv and lstsq -------------------------------------------------------------------------------
def _min_norm_lstsq_reference(A, B):
    """Full-rank float64 reference: normal equations (tall) or the minimum-norm formula
    A^T (A A^T)^-1 B (wide), written with einsum and solve of the small Gram matrix."""
    m, n = A.shape[-2:]
    At = mT(A)
    if m >= n:
        return np.linalg.solve(At @ A, At @ B)
    return At @ np.linalg.solve(A @ At, B)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 6, 2), (1, 1)])
def test_pinv(dtype, shape):
    A = np.random.default_rng(14).standard_normal(shape)
    P = LA.pinv(t(A, dtype)).numpy().astype(np.float64)
    assert P.shape == shape[:-2] + (shape[-1], shape[-2])
    # The Moore-Penrose conditions.
    assert_close(A @ P @ A, A, **TOL[dtype])
    assert_close(P @ A @ P, P, **TOL[dtype])
    assert_close(mT(A @ P), A @ P, **TOL[dtype])
    assert_close(mT(P @ A), P @ A, **TOL[dtype])


def test_pinv_tolerances_and_hermitian():
    A = np.diag([3.0, 1e-3, 0.0])
    assert_close(LA.pinv(t(A)), np.diag([1 / 3.0, 1e3, 0.0]))
    assert_close(LA.pinv(t(A), atol=1e-2), np.diag([1 / 3.0, 0.0, 0.0]))
    assert_close(LA.pinv(t(A), rtol=1e-2), np.diag([1 / 3.0, 0.0, 0.0]))
    S = spd(np.random.default_rng(15), (3, 3))
    assert_close(LA.pinv(t(S + np.triu(np.ones((3, 3)), 1)), hermitian=True),
                 np.linalg.inv(S), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3)])
def test_pinv_gradcheck_gradgradcheck(shape):
    A = t(np.random.default_rng(16).standard_normal(shape), grad=True)
    assert gradcheck(LA.pinv, (A,))
    assert gradgradcheck(LA.pinv, (A,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("a_shape,b_shape", [((6, 3), (6, 2)), ((3, 6), (3, 2)),
                                             ((6, 3), (6,)), ((2, 5, 3), (1, 5, 2)),
                                             ((2, 5, 3), (2, 5)), ((0, 5, 3), (0, 5, 2))])
def test_lstsq_solution_and_outputs(dtype, driver, a_shape, b_shape):
    rng = np.random.default_rng(17)
    A, B = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    res = LA.lstsq(t(A, dtype), t(B, dtype), driver=driver)
    assert isinstance(res, tuple) and res._fields == ("solution", "residuals", "rank",
                                                      "singular_values")
    vector = len(b_shape) == len(a_shape) - 1
    B2 = B[..., None] if vector else B
    batch = np.broadcast_shapes(A.shape[:-2], B2.shape[:-2])
    m, n = a_shape[-2:]
    ref = _min_norm_lstsq_reference(np.broadcast_to(A, batch + (m, n)),
                                    np.broadcast_to(B2, batch + B2.shape[-2:]))
    X = res.solution
    assert X.dtype == dtype
    assert_close(X, ref[..., 0] if vector else ref, **{**TOL[dtype], "rtol": 1e-3}
                 if dtype == np.float32 else TOL[dtype])
    driver = driver or "gelsy"
    k = B2.shape[-1]
    if m > n and driver != "gelsy":
        r = np.einsum("...ij,...jk->...ik", A, ref) - B2
        assert_close(res.residuals, (r * r).sum(-2), **TOL[dtype])
        assert res.residuals.shape == batch + (k,)
    else:
        assert res.residuals.shape == (0,)
    if driver == "gels":
        assert res.rank.shape == (0,)
    else:
        assert res.rank.dtype == np.int64 and res.rank.shape == batch
        assert np.all(res.rank.numpy() == min(m, n))
    if driver in ("gelsd", "gelss"):
        assert res.singular_values.shape == batch + (min(m, n),)
        sv = np.linalg.svd(np.broadcast_to(A, batch + (m, n)), compute_uv=False)
        assert_close(res.singular_values, sv, **TOL[dtype])
    else:
        assert res.singular_values.shape == (0,)


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss"])
def test_lstsq_rank_deficient_gives_the_minimum_norm_solution(driver):
    rng = np.random.default_rng(18)
    A = rng.standard_normal((6, 3))
    A[:, 2] = A[:, 0] + A[:, 1]
    B = rng.standard_normal((6, 2))
    res = LA.lstsq(t(A), t(B), driver=driver)
    assert int(res.rank.item()) == 2
    assert res.residuals.shape == (0,)  # not full rank: no residuals
    # The minimum-norm least-squares solution lies in the row space of A and solves the normal
    # equations; the reference below gets it from an orthonormal basis of that row space.
    Q = np.linalg.qr(A.T)[0][:, :2]  # rows 0 and 1 of A span its row space
    AQ = A @ Q
    ref = Q @ np.linalg.solve(AQ.T @ AQ, AQ.T @ B)
    assert_close(res.solution, ref, rtol=1e-8, atol=1e-8)


def test_lstsq_gels_needs_full_rank():
    A = np.random.default_rng(19).standard_normal((5, 3))
    A[:, 2] = 0
    with pytest.raises(LA.LinAlgError, match="does not have full rank"):
        LA.lstsq(t(A), t(np.ones((5, 1))), driver="gels")
    with pytest.raises(RuntimeError, match=r"\(Batch element 1\)"):
        LA.lstsq(t(np.stack([np.eye(5, 3), A])), t(np.ones((2, 5, 1))), driver="gels")


def test_lstsq_rcond_cuts_small_singular_values():
    A = np.diag([1.0, 1e-6])
    b = np.array([1.0, 1.0])
    assert_close(LA.lstsq(t(A), t(b), driver="gelsd").solution, [1.0, 1e6])
    res = LA.lstsq(t(A), t(b), rcond=1e-3, driver="gelsd")
    assert_close(res.solution, [1.0, 0.0])
    assert int(res.rank.item()) == 1


@pytest.mark.parametrize("a_shape,b_shape", [((5, 3), (5, 2)), ((3, 5), (3, 2)),
                                             ((5, 3), (5,)), ((2, 4, 2), (1, 4, 3))])
@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gels"])
def test_lstsq_gradcheck_gradgradcheck(a_shape, b_shape, driver):
    rng = np.random.default_rng(20)
    A, B = t(rng.standard_normal(a_shape), grad=True), t(rng.standard_normal(b_shape), grad=True)

    def fn(a, b):
        res = LA.lstsq(a, b, driver=driver)
        return (res.solution, res.residuals) if res.residuals.numel() else res.solution

    assert gradcheck(fn, (A, B))
    assert gradgradcheck(fn, (A, B))


def test_lstsq_matches_the_course_closed_form():
    """Lecture notes 4.3.1: argmin ||A theta - y||^2 = (A^T A)^-1 A^T y for a full-rank A."""
    rng = np.random.default_rng(21)
    A, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    theta = LA.lstsq(t(A), t(y)).solution
    closed = LA.inv(t(A.T @ A)) @ t(A.T @ y)
    assert_close(theta, closed, rtol=1e-10, atol=1e-10)


# -- norms ----------------------------------------------------------------------------------------
def _ref_vector_norm(x, ord, axis, keepdims):
    a = np.abs(x)
    if ord == math.inf:
        return a.max(axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return a.min(axis=axis, keepdims=keepdims)
    if ord == 0:
        return (x != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype)
    with np.errstate(divide="ignore"):  # |0|^p = inf for p < 0: the norm is then 0
        return (a ** ord).sum(axis=axis, keepdims=keepdims) ** (1.0 / ord)


ORDS = [2, 1, 3, 0.5, math.inf, -math.inf, 0, -1.5]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_vector_norm(dtype, ord, dim, keepdim):
    x = np.random.default_rng(22).standard_normal((3, 4, 5))
    x[0, 0, 0] = 0.0
    out = LA.vector_norm(t(x, dtype), ord, dim, keepdim)
    ref = _ref_vector_norm(x, ord, dim, keepdim)
    assert out.dtype == dtype and out.shape == np.shape(ref)
    assert_close(out, ref, **TOL[dtype])


@pytest.mark.parametrize("ord", [o for o in ORDS if o not in (0,)])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, True), ((0, 1), False)])
def test_vector_norm_gradcheck_gradgradcheck(ord, dim, keepdim):
    rng = np.random.default_rng(23)
    x = rng.uniform(0.3, 1.5, (3, 4)) * rng.choice([-1, 1], (3, 4))
    if ord in (math.inf, -math.inf):
        x = np.arange(1, 13).reshape(3, 4) * 0.25 * np.where(np.arange(12) % 2, -1, 1).reshape(3, 4)
    X = t(x, grad=True)

    def fn(v):
        return LA.vector_norm(v, ord, dim, keepdim)

    assert gradcheck(fn, (X,))
    assert gradgradcheck(fn, (X,))


@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, math.inf, 0])
def test_vector_norm_gradient_at_zero_is_zero(ord):
    x = t(np.zeros((2, 3)), grad=True)
    LA.vector_norm(x, ord, dim=1).sum().backward()
    assert_close(x.grad, np.zeros((2, 3)), rtol=0, atol=0)


def test_vector_norm_second_derivative_at_a_zero_row_is_finite():
    x = t(np.array([[0.0, 0.0], [3.0, 4.0]]), grad=True)
    (g,) = grad(LA.vector_norm(x, dim=1).sum(), x, create_graph=True)
    (h,) = grad((g * g).sum(), x)
    assert np.all(np.isfinite(h.numpy()))
    assert_close(g, [[0.0, 0.0], [0.6, 0.8]])


def test_vector_norm_inf_ties_share_the_gradient():
    x = t([3.0, -3.0, 1.0], grad=True)
    LA.vector_norm(x, math.inf).backward()
    assert_close(x.grad, [0.5, -0.5, 0.0])


def test_vector_norm_dtype_argument_and_zero_d():
    x = t([3.0, 4.0], np.float32)
    out = LA.vector_norm(x, dtype=pydl.float64)
    assert out.dtype == np.float64 and float(out) == 5.0
    assert float(LA.vector_norm(t(-2.5))) == 2.5


MATRIX_ORDS = ["fro", "nuc", 1, -1, math.inf, -math.inf, 2, -2]


def _ref_matrix_norm(A, ord):
    if ord == "fro":
        return np.sqrt((A * A).sum((-2, -1)))
    s = np.linalg.svd(A, compute_uv=False)
    if ord == "nuc":
        return s.sum(-1)
    if ord in (2, -2):
        return s.max(-1) if ord == 2 else s.min(-1)
    col, row = np.abs(A).sum(-2), np.abs(A).sum(-1)
    return {1: col.max(-1), -1: col.min(-1), math.inf: row.max(-1), -math.inf: row.min(-1)}[ord]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norm(dtype, ord):
    A = np.random.default_rng(24).standard_normal((2, 3, 4, 5))
    out = LA.matrix_norm(t(A, dtype), ord)
    assert out.shape == (2, 3) and out.dtype == dtype
    assert_close(out, _ref_matrix_norm(A, ord), **TOL[dtype])
    # Other dims, keepdim: the same values with the two dims moved to the end.
    out = LA.matrix_norm(t(A, dtype), ord, dim=(0, 2), keepdim=True)
    assert out.shape == (1, 3, 1, 5)
    ref = _ref_matrix_norm(np.moveaxis(A, (0, 2), (-2, -1)), ord)
    assert_close(out.numpy().reshape(3, 5), ref, **TOL[dtype])


@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norm_gradcheck_gradgradcheck(ord):
    A = t(np.random.default_rng(25).standard_normal((2, 3, 4)), grad=True)

    def fn(a):
        return LA.matrix_norm(a, ord)

    assert gradcheck(fn, (A,))
    assert gradgradcheck(fn, (A,))


def test_norm_dispatch():
    rng = np.random.default_rng(26)
    A = rng.standard_normal((3, 4))
    assert_close(LA.norm(t(A)), np.sqrt((A * A).sum()))
    assert_close(LA.norm(t(A), 1), np.abs(A).sum(0).max())           # 2-D with ord: matrix
    assert_close(LA.norm(t(A[0]), 1), np.abs(A[0]).sum())            # 1-D: vector
    assert_close(LA.norm(t(A), 3, dim=1), (np.abs(A) ** 3).sum(1) ** (1 / 3))
    assert_close(LA.norm(t(A), "nuc", dim=(0, 1)), np.linalg.svd(A, compute_uv=False).sum())
    assert_close(LA.norm(t(rng.standard_normal((2, 3, 4)))).shape, ())


# -- errors ----------------------------------------------------------------------------------------
def test_singular_matrices_raise_linalg_error():
    S = t([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(LA.LinAlgError, match=r"^linalg.inv: The diagonal element 2 is zero"):
        LA.inv(S)
    batch = t(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]]))
    with pytest.raises(RuntimeError, match=r"linalg.inv: \(Batch element 1\): The diagonal "
                                           r"element 2 is zero.*singular"):
        LA.inv(batch)
    with pytest.raises(LA.LinAlgError, match=r"linalg.solve: \(Batch element 1\): The solver "
                                             r"failed because the input matrix is singular"):
        LA.solve(batch, t(np.ones((2, 2))))
    with pytest.raises(LA.LinAlgError, match="^linalg.solve: The solver failed"):
        LA.solve(S, t([1.0, 1.0]))


def test_not_positive_definite():
    with pytest.raises(LA.LinAlgError, match=r"the leading minor of order 2 is not "
                                             r"positive-definite"):
        LA.cholesky(t([[1.0, 2.0], [2.0, 1.0]]))
    batch = t(np.stack([np.eye(3), np.eye(3), -np.eye(3)]))
    with pytest.raises(LA.LinAlgError, match=r"\(Batch element 2\): .*order 1 is not"):
        LA.cholesky(batch)


@pytest.mark.parametrize("fn,msg", [
    (lambda: LA.inv(t(np.ones((3, 2)))), "A must be batches of square matrices, but they are "
                                         "3 by 2 matrices"),
    (lambda: LA.inv(t(np.ones(3))), "must have at least 2 dimensions"),
    (lambda: LA.inv(pydl.tensor(np.eye(2, dtype=np.int64))), "Expected a floating point"),
    (lambda: LA.cholesky(t(np.ones((2, 3)))), "2 by 3 matrices"),
    (lambda: LA.eigh(t(np.ones((2, 3)))), "2 by 3 matrices"),
    (lambda: LA.eigh(t(np.eye(3)), UPLO="X"), "Expected UPLO argument to be 'L' or 'U'"),
    (lambda: LA.solve(t(np.eye(3)), t(np.ones(2))), r"Incompatible shapes of A and B for the "
                                                    r"equation AX = B \(3x3 and 2x1\)"),
    (lambda: LA.solve(t(np.eye(3)), t(np.ones(3)), left=False), r"XA = B \(3x3 and 3x1\)"),
    (lambda: LA.solve(t(np.eye(3)), t(np.ones((3, 1)), np.float32)), "same dtype"),
    (lambda: LA.solve(t(np.ones((2, 3, 3))), t(np.ones((3, 3, 1)))), "do not broadcast"),
    (lambda: LA.lstsq(t(np.eye(3)), t(np.ones((4, 1)))), r"input.size\(-2\) should match"),
    (lambda: LA.lstsq(t(np.ones(3)), t(np.ones((3, 1)))), "at least 2 dimensions"),
    (lambda: LA.lstsq(t(np.eye(3)), t(np.ones((3, 1))), driver="foo"), "driver"),
    (lambda: LA.lstsq(t(np.ones((2, 5, 3))), t(np.ones((5, 2)))), "do not broadcast|match"),
    (lambda: LA.lstsq(t(np.eye(3)), t(np.ones((3, 1)), np.float32)), "same dtype"),
    (lambda: LA.matrix_norm(t(np.ones(3))), "at least 2 dimensions"),
    (lambda: LA.matrix_norm(t(np.ones((3, 3))), 3), "Order 3 not supported"),
    (lambda: LA.matrix_norm(t(np.ones((3, 3))), dim=(0, 0)), "dims must be different"),
    (lambda: LA.vector_norm(t(np.ones(0)), math.inf), "empty tensor"),
    (lambda: LA.vector_norm(pydl.tensor([1, 2])), "Expected a floating point"),
    (lambda: LA.norm(t(np.ones((2, 2, 2))), 2), "must be 1D or 2D"),
    (lambda: LA.norm(t(np.ones(3)), "fro"), "not supported for vector norms"),
])
def test_argument_errors(fn, msg):
    with pytest.raises(RuntimeError, match=msg):
        fn()


def test_vector_norm_ord_must_be_a_number():
    with pytest.raises(TypeError, match="'ord' must be Number"):
        LA.vector_norm(t(np.ones(3)), "fro")


def test_linalg_error_is_a_runtime_error_and_exported():
    assert issubclass(LA.LinAlgError, RuntimeError)
    assert pydl.linalg is LA


# -- float32, non-contiguous and zero-size inputs through backward --------------------------------
OPS = {
    "solve": lambda a: LA.solve(a, a[..., :1] * 2 + 1),
    "inv": LA.inv,
    "cholesky": lambda a: LA.cholesky(a @ a.mT + pydl.tensor(np.eye(a.shape[-1], dtype=a.dtype))),
    "eigh": lambda a: LA.eigh(sym(a)).eigenvalues,
    "svdvals": LA.svdvals,
    "pinv": LA.pinv,
    "lstsq": lambda a: LA.lstsq(a, a[..., :1] + 1).solution,
    "vector_norm": lambda a: LA.vector_norm(a, 3, dim=-1),
    "matrix_norm": lambda a: LA.matrix_norm(a, "nuc"),
}


def _grad_of(op, a):
    x = pydl.tensor(a, requires_grad=True)
    out = OPS[op](x)
    (out * pydl.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape).astype(a.dtype))
     ).sum().backward()
    return x.grad


@pytest.mark.parametrize("op", sorted(OPS))
def test_float32_gradients_match_float64(op):
    A = well_conditioned(np.random.default_rng(27), (2, 4, 4))
    g32, g64 = _grad_of(op, A.astype(np.float32)), _grad_of(op, A)
    assert g32.dtype == np.float32
    assert_close(g32, g64.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("op", sorted(OPS))
def test_noncontiguous_input_gradients(op):
    A = well_conditioned(np.random.default_rng(28), (2, 4, 4))
    x = pydl.tensor(np.ascontiguousarray(mT(A)), requires_grad=True)
    out = OPS[op](x.mT)  # a transposed (non-contiguous) view goes in
    out.sum().backward()
    assert_close(x.grad.mT, _grad_of_sum(op, A), rtol=1e-10, atol=1e-10)


def _grad_of_sum(op, a):
    x = pydl.tensor(a, requires_grad=True)
    OPS[op](x).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("op", sorted(OPS))
def test_zero_batch_backward_and_double_backward(op):
    x = t(np.zeros((0, 3, 3)), grad=True)
    out = OPS[op](x)
    assert out.shape[0] == 0
    (g,) = grad(out.sum(), x, create_graph=True, allow_unused=True)
    assert g is None or g.shape == (0, 3, 3)
