"""pydl.autograd.functional and autograd.grad(create_graph=True): analytic derivatives checked
against closed forms written here in float64 NumPy (and against finite differences through
gradcheck / gradgradcheck)."""
import threading

import numpy as np
import pytest

import pydl
from pydl.autograd import functional as AF
from pydl.autograd import gradgradcheck
from pydl.testing import assert_close


def t64(a, requires_grad=False):
    return pydl.tensor(np.asarray(a, dtype=np.float64), dtype=pydl.float64,
                       requires_grad=requires_grad)


RNG = np.random.default_rng(7)


def cubic(x):
    # f(x) = sum x^3 + x0 x1: grad 3x^2 + (x1, x0, 0...), Hessian diag(6x) + offdiag 1
    return (x ** 3).sum() + x[0] * x[1]


def cubic_hessian(x):
    h = np.diag(6 * x)
    h[0, 1] += 1
    h[1, 0] += 1
    return h


@pytest.mark.parametrize("n", [2, 3, 7])
def test_hessian_is_exact(n):
    x = RNG.standard_normal(n)
    h = AF.hessian(cubic, t64(x))
    assert h.shape == (n, n) and h.dtype == pydl.float64
    assert_close(h, cubic_hessian(x), rtol=1e-12, atol=1e-12)
    assert h.grad_fn is None


def test_hessian_of_several_inputs_is_a_table_of_blocks():
    a, b = RNG.standard_normal(3), RNG.standard_normal(2)
    # f = (sum a)^2 * (b . b): d2f/da2 = 2 (b.b) 11^T, d2f/da db = 4 (sum a) 1 b^T, d2f/db2 = 2 (sum a)^2 I
    h = AF.hessian(lambda x, y: x.sum() ** 2 * (y * y).sum(), (t64(a), t64(b)))
    s, bb = a.sum(), b @ b
    assert_close(h[0][0], 2 * bb * np.ones((3, 3)), rtol=1e-12)
    assert_close(h[0][1], 4 * s * np.outer(np.ones(3), b), rtol=1e-12)
    assert_close(h[1][0], 4 * s * np.outer(b, np.ones(3)), rtol=1e-12)
    assert_close(h[1][1], 2 * s * s * np.eye(2), rtol=1e-12)


def test_jacobian_shapes_and_values():
    x = RNG.standard_normal((2, 3))
    j = AF.jacobian(lambda t: t.exp() * 2, t64(x))
    assert j.shape == (2, 3, 2, 3)
    expect = np.zeros((2, 3, 2, 3))
    for i in range(2):
        for k in range(3):
            expect[i, k, i, k] = 2 * np.exp(x[i, k])
    assert_close(j, expect, rtol=1e-12)
    ja, jb = AF.jacobian(lambda a, b: a * b, (t64([1.0, 2.0]), t64([3.0, 5.0])))
    assert_close(ja, np.diag([3.0, 5.0]))
    assert_close(jb, np.diag([1.0, 2.0]))
    (j0,), (j1,) = AF.jacobian(lambda a: (a.sin(), a.sum()), (t64([0.5, 1.5]),))
    assert_close(j0, np.diag(np.cos([0.5, 1.5])), rtol=1e-12)
    assert_close(j1, [1.0, 1.0])


def test_vjp_jvp_vhp_hvp_against_closed_forms():
    x, v, u = RNG.standard_normal(4), RNG.standard_normal(4), RNG.standard_normal(4)
    # f(x) = tanh(x) * x0: J = diag(sech^2 x) x0 + tanh(x) e0^T
    def f(t):
        return t.tanh() * t[0]

    jac = np.diag(1 - np.tanh(x) ** 2) * x[0]
    jac[:, 0] += np.tanh(x)
    out, vj = AF.vjp(f, t64(x), t64(u))
    assert_close(out, np.tanh(x) * x[0], rtol=1e-12)
    assert_close(vj, u @ jac, rtol=1e-12)
    _, jv = AF.jvp(f, t64(x), t64(v))
    assert_close(jv, jac @ v, rtol=1e-12)
    h = cubic_hessian(x)
    val, hv = AF.hvp(cubic, t64(x), t64(v))
    assert_close(val, (x ** 3).sum() + x[0] * x[1], rtol=1e-12)
    assert_close(hv, h @ v, rtol=1e-12)
    _, vh = AF.vhp(cubic, t64(x), t64(v))
    assert_close(vh, v @ h, rtol=1e-12)


def test_functional_errors_and_strict():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="single element"):
        AF.vjp(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match="single Tensor with one element"):
        AF.hessian(lambda t: t * 2, x)
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        AF.jacobian(lambda t: t, [1.0, 2.0])
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda a, b: a * 2, (x, t64([3.0])), strict=True)
    ja, jb = AF.jacobian(lambda a, b: a * 2, (x, t64([3.0])))
    assert_close(jb, np.zeros((2, 1)))


def test_create_graph_results_stay_differentiable():
    x = t64([0.3, -0.7], requires_grad=True)
    h = AF.hessian(lambda t: (t ** 4).sum(), x, create_graph=True)
    assert h.requires_grad
    (h.sum()).backward()  # d/dx sum(diag(12 x^2)) = 24 x
    assert_close(x.grad, 24 * np.array([0.3, -0.7]), rtol=1e-12)


def test_grad_create_graph_and_second_derivative():
    x = t64([0.5, 2.0], requires_grad=True)
    y = (x.exp() * x.sin()).sum()
    (g,) = pydl.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    ex, s, c = np.exp([0.5, 2.0]), np.sin([0.5, 2.0]), np.cos([0.5, 2.0])
    assert_close(g, ex * (s + c), rtol=1e-12)
    (h,) = pydl.autograd.grad(g.sum(), x)
    assert_close(h, 2 * ex * c, rtol=1e-12)
    assert x.grad is None  # grad() never touches .grad


def test_grad_leaves_other_leaves_alone_and_allow_unused():
    x, w = t64([1.0, 2.0], requires_grad=True), t64([3.0, 4.0], requires_grad=True)
    z = t64([1.0], requires_grad=True)
    loss = (x * w).sum()
    (gx,) = pydl.autograd.grad(loss, x, retain_graph=True)
    assert_close(gx, [3.0, 4.0])
    assert w.grad is None and x.grad is None
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        pydl.autograd.grad(loss, [x, z], retain_graph=True)
    gx, gz = pydl.autograd.grad(loss, [x, z], allow_unused=True, retain_graph=True)
    assert gz is None
    _, gz = pydl.autograd.grad(loss, [x, z], materialize_grads=True)
    assert_close(gz, [0.0])


def test_grad_of_a_non_leaf_input():
    x = t64([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = pydl.autograd.grad(y, h)
    assert_close(gh, 2 * np.array([3.0, 6.0]))


def test_backward_create_graph_leaves_a_differentiable_grad():
    x = t64([1.5], requires_grad=True)
    y = x ** 3
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.backward()
    assert_close(x.grad, [6 * 1.5])


def test_backward_inputs_accumulates_only_there():
    x, w = t64([1.0], requires_grad=True), t64([2.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    assert_close(w.grad, [1.0])


def test_gradient_penalty_double_backward_through_a_grad_output():
    # WGAN-GP-like: penalty = ||d (w . x^2) / dx||^2 differentiated w.r.t. w.
    x, w = t64([0.5, -1.0], requires_grad=True), t64([2.0, 3.0], requires_grad=True)
    (g,) = pydl.autograd.grad((w * x * x).sum(), x, create_graph=True)
    penalty = (g * g).sum()  # sum (2 w x)^2
    penalty.backward()
    assert_close(w.grad, 8 * np.array([2.0, 3.0]) * np.array([0.25, 1.0]), rtol=1e-12)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class BadSquare(pydl.autograd.Function):
        def forward(self, a):
            self.save_for_backward(a)
            return a * a

        def backward(self, g):
            (a,) = self.saved_tensors
            return g * a * 2 if not isinstance(a, pydl.Tensor) else g * a.detach() * 2

    x = t64(RNG.standard_normal(3), requires_grad=True)
    assert pydl.autograd.gradcheck(BadSquare.apply, (x,))
    assert not gradgradcheck(BadSquare.apply, (x,), raise_exception=False)


def test_grad_mode_is_thread_local():
    seen = {}
    started, release = threading.Event(), threading.Event()

    def worker():
        with pydl.no_grad():
            started.set()
            release.wait(5)
            seen["worker"] = pydl.is_grad_enabled()

    t = threading.Thread(target=worker)
    t.start()
    started.wait(5)
    x = t64([1.0], requires_grad=True)
    y = x * 2  # the other thread is inside no_grad: this one still records
    seen["main"] = pydl.is_grad_enabled()
    release.set()
    t.join()
    assert seen == {"main": True, "worker": False}
    assert y.requires_grad and y.grad_fn is not None


def test_numpy_scalar_operand_is_a_constant_under_create_graph():
    from pydl.ops.elementwise import Div

    x = t64([1.0, 2.0], requires_grad=True)
    assert gradgradcheck(lambda t: Div.apply(t * t, np.float64(3.0)), (x,))
    assert gradgradcheck(lambda t: Div.apply(np.float64(3.0), t * t), (x,))
