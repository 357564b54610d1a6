"""PyTorch as a second reference for pydl.linalg and pydl.optim.LBFGS: forward values, first
and second derivatives (float64, rtol 1e-7), lstsq's outputs per driver, error messages, and
LBFGS trajectories on logistic regression over the bundled digits. Skipped without torch."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.autograd import grad
from pydl.data.datasets import load_digits_arrays
from pydl.testing import assert_close

torch = pytest.importorskip("torch")


def sym(x):
    return (x + x.mT) * 0.5


def sign_free(U, k=None):
    """Singular / eigen vectors times their own first entry: independent of their sign."""
    if k is None:
        k = U.shape[-1]
    return U[..., :, :k] * U[..., :1, :k]


def _rows(Vh, k):
    return Vh[..., :k, :] * Vh[..., :k, :1]


def spd_input(rng, shape):
    M = rng.standard_normal(shape)
    return M @ np.swapaxes(M, -1, -2) / shape[-1] + np.eye(shape[-1])


def square_input(rng, shape):
    return rng.standard_normal(shape) / math.sqrt(shape[-1]) + 2 * np.eye(shape[-1])


# name: (function of (module, *inputs), input makers)
CASES = {
    "solve": (lambda m, a, b: m.linalg.solve(a, b),
              [lambda r: square_input(r, (2, 3, 3)), lambda r: r.standard_normal((2, 3, 2))]),
    "solve_vector_broadcast": (lambda m, a, b: m.linalg.solve(a, b),
                               [lambda r: square_input(r, (2, 4, 4)),
                                lambda r: r.standard_normal(4)]),
    "solve_left_false": (lambda m, a, b: m.linalg.solve(a, b, left=False),
                         [lambda r: square_input(r, (3, 3)), lambda r: r.standard_normal((2, 3))]),
    "inv": (lambda m, a: m.linalg.inv(a), [lambda r: square_input(r, (2, 4, 4))]),
    "cholesky": (lambda m, a: m.linalg.cholesky(sym(a)), [lambda r: spd_input(r, (2, 4, 4))]),
    "cholesky_upper": (lambda m, a: m.linalg.cholesky(sym(a), upper=True),
                       [lambda r: spd_input(r, (3, 3))]),
    "eigh": (lambda m, a: (lambda w, V: (w, sign_free(V)))(*m.linalg.eigh(sym(a))),
             [lambda r: r.standard_normal((2, 4, 4))]),
    "eigh_upper": (lambda m, a: (lambda w, V: (w, sign_free(V)))(*m.linalg.eigh(sym(a), "U")),
                   [lambda r: r.standard_normal((3, 3))]),
    "eigvalsh": (lambda m, a: m.linalg.eigvalsh(sym(a)), [lambda r: r.standard_normal((4, 4))]),
    "svd_tall": (lambda m, a: (lambda U, S, Vh: (sign_free(U), S, _rows(Vh, 3)))(
        *m.linalg.svd(a, full_matrices=False)), [lambda r: r.standard_normal((2, 5, 3))]),
    "svd_wide_full": (lambda m, a: (lambda U, S, Vh: (sign_free(U, 3), S, _rows(Vh, 3)))(
        *m.linalg.svd(a)), [lambda r: r.standard_normal((3, 5))]),
    "svdvals": (lambda m, a: m.linalg.svdvals(a), [lambda r: r.standard_normal((4, 3))]),
    "pinv": (lambda m, a: m.linalg.pinv(a), [lambda r: r.standard_normal((2, 5, 3))]),
    "pinv_wide": (lambda m, a: m.linalg.pinv(a), [lambda r: r.standard_normal((3, 5))]),
    "lstsq": (lambda m, a, b: m.linalg.lstsq(a, b).solution,
              [lambda r: r.standard_normal((6, 3)), lambda r: r.standard_normal((6, 2))]),
    "lstsq_wide_batched": (lambda m, a, b: m.linalg.lstsq(a, b).solution,
                           [lambda r: r.standard_normal((2, 3, 5)),
                            lambda r: r.standard_normal((2, 3, 2))]),
    "lstsq_gelsd_residuals": (lambda m, a, b: m.linalg.lstsq(a, b, driver="gelsd")[:2],
                              [lambda r: r.standard_normal((6, 3)),
                               lambda r: r.standard_normal(6)]),
    "vector_norm_2": (lambda m, a: m.linalg.vector_norm(a, dim=1),
                      [lambda r: r.standard_normal((3, 4))]),
    "vector_norm_3_keepdim": (lambda m, a: m.linalg.vector_norm(a, 3, dim=(0, 2), keepdim=True),
                              [lambda r: r.standard_normal((3, 4, 2))]),
    "vector_norm_half": (lambda m, a: m.linalg.vector_norm(a, 0.5),
                         [lambda r: r.standard_normal((3, 4))]),
    "vector_norm_1": (lambda m, a: m.linalg.vector_norm(a, 1, dim=0),
                      [lambda r: r.standard_normal((3, 4))]),
    "vector_norm_inf": (lambda m, a: m.linalg.vector_norm(a, math.inf, dim=1),
                        [lambda r: r.standard_normal((3, 4))]),
    "vector_norm_neg": (lambda m, a: m.linalg.vector_norm(a, -1.5, dim=1),
                        [lambda r: r.standard_normal((3, 4))]),
    "matrix_norm_fro": (lambda m, a: m.linalg.matrix_norm(a),
                        [lambda r: r.standard_normal((2, 3, 4))]),
    "matrix_norm_nuc": (lambda m, a: m.linalg.matrix_norm(a, "nuc"),
                        [lambda r: r.standard_normal((2, 3, 4))]),
    "matrix_norm_2": (lambda m, a: m.linalg.matrix_norm(a, 2, dim=(0, 2)),
                      [lambda r: r.standard_normal((3, 2, 4))]),
    "matrix_norm_-2": (lambda m, a: m.linalg.matrix_norm(a, -2),
                       [lambda r: r.standard_normal((4, 3))]),
    "matrix_norm_1": (lambda m, a: m.linalg.matrix_norm(a, 1),
                      [lambda r: r.standard_normal((2, 3, 4))]),
    "matrix_norm_-inf": (lambda m, a: m.linalg.matrix_norm(a, -math.inf, keepdim=True),
                         [lambda r: r.standard_normal((2, 3, 4))]),
    "norm_default": (lambda m, a: m.linalg.norm(a), [lambda r: r.standard_normal((2, 3))]),
}


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


@pytest.mark.parametrize("name", sorted(CASES))
def test_linalg_values_gradients_and_second_derivatives_match_torch(name):
    fn, makers = CASES[name]
    rng = np.random.default_rng(0)
    arrays = [mk(rng) for mk in makers]
    xs = [pydl.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs, touts = _as_tuple(fn(pydl, *xs)), _as_tuple(fn(torch, *txs))
    assert len(outs) == len(touts)
    for o, to in zip(outs, touts):
        assert_close(o, to.detach().numpy(), rtol=1e-7, atol=1e-10)

    # First derivatives with random cotangents v, kept in the graph (create_graph).
    vs = [rng.standard_normal(o.shape) for o in outs]
    gs = grad(list(outs), xs, [pydl.tensor(v) for v in vs], create_graph=True)
    tgs = torch.autograd.grad(touts, txs, [torch.tensor(v) for v in vs], create_graph=True)
    for g, tg in zip(gs, tgs):
        assert_close(g, tg.detach().numpy(), rtol=1e-7, atol=1e-10)

    # Second derivatives: d/dx sum(w * dL/dx).
    ws = [rng.standard_normal(g.shape) for g in gs]
    total = sum(((g * pydl.tensor(w)).sum() for g, w in zip(gs, ws)), pydl.tensor(0.0))
    ttotal = sum((g * torch.tensor(w)).sum() for g, w in zip(tgs, ws))
    # A piecewise-linear function (1 / inf matrix norms) has a constant gradient: no graph.
    hs = grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
    ths = torch.autograd.grad(ttotal, txs, allow_unused=True) if ttotal.requires_grad \
        else [None] * len(txs)
    for x, h, th in zip(arrays, hs, ths):
        h = np.zeros(x.shape) if h is None else h.numpy()
        th = np.zeros(x.shape) if th is None else th.detach().numpy(force=True)  # ZeroTensor
        assert_close(h, th, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("driver", ["gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("a_shape,b_shape", [((6, 3), (6, 2)), ((3, 6), (3, 2)), ((6, 3), (6,)),
                                             ((2, 5, 3), (1, 5, 2)), ((0, 5, 3), (0, 5, 2)),
                                             ((4, 0), (4, 2))])
def test_lstsq_outputs_match_torch(driver, a_shape, b_shape):
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    ours = pydl.linalg.lstsq(pydl.tensor(A), pydl.tensor(B), driver=driver)
    theirs = torch.linalg.lstsq(torch.tensor(A), torch.tensor(B), driver=driver)
    for field in ours._fields:
        a, b = getattr(ours, field), getattr(theirs, field).numpy()
        if field == "residuals" and driver == "gels" and a_shape[-1] == 0:
            # PyTorch's gels returns 0 for A with no columns; the residual is ||B||^2 (as its
            # gelsd and gelss say), which pydl returns for every driver.
            assert_close(a, (B * B).sum(0))
            continue
        assert a.shape == b.shape, field
        assert a.dtype == b.dtype, field
        assert_close(a, b, rtol=1e-8, atol=1e-10, msg=field)


def test_lstsq_rank_deficient_matches_torch():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((6, 3))
    A[:, 2] = A[:, 0] - A[:, 1]
    B = rng.standard_normal((6, 2))
    for driver in ("gelsy", "gelsd", "gelss"):
        ours = pydl.linalg.lstsq(pydl.tensor(A), pydl.tensor(B), driver=driver)
        theirs = torch.linalg.lstsq(torch.tensor(A), torch.tensor(B), driver=driver)
        assert_close(ours.solution, theirs.solution.numpy(), rtol=1e-8, atol=1e-10)
        assert int(ours.rank.item()) == int(theirs.rank.item()) == 2
        assert ours.residuals.shape == theirs.residuals.shape == (0,)


@pytest.mark.parametrize("call", [
    lambda m, t: m.linalg.inv(t(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]]))),
    lambda m, t: m.linalg.inv(t(np.ones((3, 2)))),
    lambda m, t: m.linalg.solve(t(np.stack([np.eye(2), np.zeros((2, 2))])), t(np.ones((2, 2)))),
    lambda m, t: m.linalg.solve(t(np.eye(3)), t(np.ones(2))),
    lambda m, t: m.linalg.solve(t(np.eye(3)), t(np.ones(3)), left=False),
    lambda m, t: m.linalg.cholesky(t(np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])]))),
    lambda m, t: m.linalg.cholesky(t(np.ones((2, 3)))),
    lambda m, t: m.linalg.eigh(t(np.eye(2)), UPLO="X"),
    lambda m, t: m.linalg.matrix_norm(t(np.eye(2)), 3),
])
def test_error_messages_match_torch(call):
    with pytest.raises(RuntimeError) as theirs:
        call(torch, lambda a: torch.tensor(a))
    with pytest.raises(RuntimeError) as ours:
        call(pydl, lambda a: pydl.tensor(a))
    expected = str(theirs.value).split("\n")[0].replace("torch.linalg.", "linalg.")
    assert str(ours.value).startswith(expected.rstrip("."))
    assert isinstance(ours.value, pydl.linalg.LinAlgError) == \
        isinstance(theirs.value, torch.linalg.LinAlgError)


# -- LBFGS ----------------------------------------------------------------------------------------
def _digits(dtype):
    images, labels = load_digits_arrays()
    return (images.reshape(len(images), -1) / 16.0).astype(dtype), labels.astype(np.int64)


L2 = 1e-2  # keeps the problem strictly convex, so both runs head for one minimiser


def _run_pydl(X, y, dtype, steps, **kw):
    W = pydl.zeros(64, 10, dtype=dtype, requires_grad=True)
    b = pydl.zeros(10, dtype=dtype, requires_grad=True)
    Xp, yp = pydl.tensor(X), pydl.tensor(y)
    opt = pydl.optim.LBFGS([W, b], **kw)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(Xp @ W + b, yp) + L2 * (W * W).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return np.array(losses), W.detach().numpy(), b.detach().numpy(), opt.state[W]


def _run_torch(X, y, dtype, steps, **kw):
    tdt = getattr(torch, np.dtype(dtype).name)
    W = torch.zeros(64, 10, dtype=tdt, requires_grad=True)
    b = torch.zeros(10, dtype=tdt, requires_grad=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    opt = torch.optim.LBFGS([W, b], **kw)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + L2 * (W * W).sum()
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(steps)]
    return np.array(losses), W.detach().numpy(), b.detach().numpy(), opt.state[W]


@pytest.mark.parametrize("line_search_fn,steps,kw", [
    (None, 15, dict(max_iter=1, history_size=5)),
    ("strong_wolfe", 6, dict(max_iter=3, history_size=5)),
    ("strong_wolfe", 2, dict(max_iter=20)),
])
def test_lbfgs_float64_trajectory_equals_torch(line_search_fn, steps, kw):
    """In float64 both runs differ only by rounding in the loss: every loss, evaluation count
    and parameter agrees to ~1e-12."""
    X, y = _digits(np.float64)
    ours = _run_pydl(X, y, np.float64, steps, line_search_fn=line_search_fn, **kw)
    theirs = _run_torch(X, y, np.float64, steps, line_search_fn=line_search_fn, **kw)
    assert_close(ours[0], theirs[0], rtol=1e-10, atol=0)
    assert_close(ours[1], theirs[1], rtol=1e-8, atol=1e-9)
    assert_close(ours[2], theirs[2], rtol=1e-8, atol=1e-9)
    for key in ("func_evals", "n_iter"):
        assert ours[3][key] == theirs[3][key]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_float32_trajectory_matches_torch(line_search_fn):
    """float32, each library computing its own loss and gradient (they differ in the last bit:
    pydl's cross_entropy and torch's sum in different orders): per-iteration losses agree to
    float32 rounding amplified by the line search's cubic interpolation (1e-4 relative), the
    final loss to 1e-6 and the final parameters (|W| up to 0.9), 30 iterations in, to 1e-3:
    directions of low curvature keep float32-level differences in the loss apart further in
    the parameters. (The next test removes the loss's own rounding differences.)"""
    X, y = _digits(np.float32)
    kw = dict(line_search_fn=line_search_fn, max_iter=1, max_eval=25, history_size=10)
    ours = _run_pydl(X, y, np.float32, 30, **kw)
    theirs = _run_torch(X, y, np.float32, 30, **kw)
    assert_close(ours[0], theirs[0], rtol=1e-4, atol=0)
    assert_close(ours[0][-1], theirs[0][-1], rtol=1e-6, atol=0)
    assert_close(ours[1], theirs[1], rtol=0, atol=1e-3)
    assert_close(ours[2], theirs[2], rtol=0, atol=1e-3)


def test_lbfgs_float32_on_one_objective_matches_torch_to_rounding():
    """The optimizer alone: both read the same float32 loss and gradient (from NumPy), so the
    only differences are the optimizer's own float32 arithmetic (dot products, FMA)."""
    X, y = _digits(np.float64)
    Y = np.eye(10)[y]

    def objective(W, b):
        z = X @ W.astype(np.float64) + b.astype(np.float64)
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        loss = -np.mean(np.log((p * Y).sum(1))) + L2 * (W.astype(np.float64) ** 2).sum()
        gz = (p - Y) / len(X)
        return (np.float32(loss), (X.T @ gz + 2 * L2 * W).astype(np.float32),
                gz.sum(0).astype(np.float32))

    def run(lib, Wp, bp, opt):
        def closure():
            wv = Wp.detach().numpy() if lib is torch else Wp._data
            bv = bp.detach().numpy() if lib is torch else bp._data
            loss, gw, gb = objective(wv, bv)
            Wp.grad, bp.grad = lib.tensor(gw), lib.tensor(gb)
            return lib.tensor(loss)
        return np.array([float(opt.step(closure)) for _ in range(6)])

    kw = dict(line_search_fn="strong_wolfe", max_iter=5, history_size=5)
    W, b = pydl.zeros(64, 10, requires_grad=True), pydl.zeros(10, requires_grad=True)
    ours = run(pydl, W, b, pydl.optim.LBFGS([W, b], **kw))
    Wt, bt = torch.zeros(64, 10, requires_grad=True), torch.zeros(10, requires_grad=True)
    theirs = run(torch, Wt, bt, torch.optim.LBFGS([Wt, bt], **kw))
    assert_close(ours, theirs, rtol=1e-6, atol=0)
    assert_close(W.detach().numpy(), Wt.detach().numpy(), rtol=0, atol=2e-5)


def _rosenbrock(x):
    """The extended Rosenbrock function: a curved valley that keeps the line search busy."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _bumpy(x):
    """sqrt(1 + x^2) + sin(x) / 2: flat tails and bumps, where long steps (lr = 100) put the
    zoom's cubic minimiser near or outside the bracket (the 10% safeguard)."""
    return ((1 + x * x) ** 0.5).sum() + 0.5 * x.sin().sum()


def _wavy(x):
    return (x * x + 10 * x.sin()).sum()


# Rounding differences of the two losses grow up to ~50x per step on the Rosenbrock valley:
# 4 steps (up to 32 iterations) stay within 1e-9.
@pytest.mark.parametrize("f,start,lr,line_search_fn", [
    (_rosenbrock, np.tile([-1.2, 1.0], 5), 1.0, "strong_wolfe"),
    (_rosenbrock, np.tile([-1.2, 1.0], 5), 0.01, "strong_wolfe"),   # extrapolation
    (_rosenbrock, np.tile([-1.2, 1.0], 5), 3.0, "strong_wolfe"),    # zoom
    (_rosenbrock, np.tile([-1.2, 1.0], 5), 1e-3, None),
    (_bumpy, np.array([3.0, -2.0, 1.0]), 100.0, "strong_wolfe"),     # safeguard moves t
    (_wavy, np.array([3.0, -2.0, 1.0]), 100.0, "strong_wolfe"),
], ids=["rosenbrock", "rosenbrock-lr0.01", "rosenbrock-lr3", "rosenbrock-fixed", "bumpy",
        "wavy"])
def test_lbfgs_iterates_equal_torch(f, start, lr, line_search_fn):
    kw = dict(lr=lr, line_search_fn=line_search_fn, max_iter=8, history_size=4,
              tolerance_grad=1e-12, tolerance_change=1e-14)
    x = pydl.tensor(start, requires_grad=True)
    tx = torch.tensor(start, requires_grad=True)
    opt, topt = pydl.optim.LBFGS([x], **kw), torch.optim.LBFGS([tx], **kw)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = f(tx)
        loss.backward()
        return loss

    for _ in range(4):
        assert_close(float(opt.step(closure)), topt.step(tclosure).item(), rtol=1e-10, atol=0)
        assert_close(x.detach().numpy(), tx.detach().numpy(), rtol=1e-8, atol=1e-9)
    assert opt.state[x]["func_evals"] == topt.state[tx]["func_evals"]
    assert opt.state[x]["n_iter"] == topt.state[tx]["n_iter"]
