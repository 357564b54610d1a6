"""pydl.optim.Newton and pydl.optim.LBFGS: convergence on problems with known minimisers
(quadratics, Rosenbrock, a double well), logistic regression on the bundled digits against
gradient descent, damping on a non-convex start, arguments, state and errors. PyTorch's LBFGS
trajectory is compared in tests/parity/test_linalg_lbfgs_torch.py."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.data.datasets import load_digits_arrays
from pydl.testing import assert_close


def t(a, grad=True, dtype=np.float64):
    return pydl.tensor(np.asarray(a, dtype=dtype), requires_grad=grad)


def quadratic(rng, n):
    """f(x) = 1/2 x^T A x - b^T x with A SPD; minimiser A^-1 b."""
    M = rng.standard_normal((n, n))
    A = M @ M.T / n + np.eye(n)
    b = rng.standard_normal(n)
    return A, b, np.linalg.solve(A, b)


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def digits_binary(n=400, digit=3):
    """Digit ``digit`` against the rest: (n, 64) float64 inputs in [0, 1] and 0/1 targets."""
    images, labels = load_digits_arrays()
    X = images[:n].reshape(n, -1) / 16.0
    return pydl.tensor(X), pydl.tensor((labels[:n] == digit).astype(np.float64))


def logistic_loss(X, y, w, b, l2=1e-3):
    """Binary cross-entropy of sigmoid(X w + b) plus a small L2 term (strictly convex)."""
    return F.binary_cross_entropy_with_logits(X @ w + b, y) + l2 * (w * w).sum()


# -- Newton ----------------------------------------------------------------------------------------
def test_newton_solves_a_quadratic_in_one_step():
    A, b, x_star = quadratic(np.random.default_rng(0), 6)
    x = t(np.zeros(6))
    At, bt = t(A, False), t(b, False)
    opt = pydl.optim.Newton([x], damping=0.0)
    opt.step(lambda: 0.5 * (x @ (At @ x)) - bt @ x)
    assert_close(x, x_star, rtol=1e-12, atol=1e-12)
    # The gradient at the starting point is left in .grad: A 0 - b.
    assert_close(x.grad, -b, rtol=1e-12, atol=1e-12)


def test_newton_over_several_parameters_matches_the_closed_form():
    """Least squares over (w, b): one Newton step is the course's closed form
    (A^T A)^-1 A^T y, here with the intercept as a parameter of its own."""
    rng = np.random.default_rng(1)
    A, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    w, b = t(np.zeros(3)), t(0.0)
    At, yt = t(A, False), t(y, False)
    opt = pydl.optim.Newton([w, b], damping=0.0)
    opt.step(lambda: ((At @ w + b - yt) ** 2).mean())
    A1 = np.hstack([A, np.ones((40, 1))])
    ref = np.linalg.solve(A1.T @ A1, A1.T @ y)
    assert_close(w, ref[:3], rtol=1e-10, atol=1e-10)
    assert_close(b, ref[3], rtol=1e-10, atol=1e-10)


def _iterations_to(step_closure, loss_fn, opt, target, max_iter):
    for k in range(1, max_iter + 1):
        opt.step(step_closure)
        with pydl.no_grad():
            if float(loss_fn()) <= target:
                return k
    return None


def test_newton_beats_gradient_descent_on_logistic_regression():
    X, y = digits_binary()
    # The minimum, from Newton run to convergence.
    w, b = t(np.zeros(64)), t(0.0)
    newton = pydl.optim.Newton([w, b])
    for _ in range(15):
        newton.step(lambda: logistic_loss(X, y, w, b))
    f_star = float(logistic_loss(X, y, w, b))
    assert np.abs(w.grad.numpy()).max() < 1e-7
    target = f_star + 1e-6

    w, b = t(np.zeros(64)), t(0.0)
    newton = pydl.optim.Newton([w, b])
    k_newton = _iterations_to(lambda: logistic_loss(X, y, w, b),
                              lambda: logistic_loss(X, y, w, b), newton, target, 30)

    w, b = t(np.zeros(64)), t(0.0)
    sgd = pydl.optim.SGD([w, b], lr=1.0)

    def gd_closure():
        sgd.zero_grad()
        loss = logistic_loss(X, y, w, b)
        loss.backward()
        return loss

    k_gd = _iterations_to(gd_closure, lambda: logistic_loss(X, y, w, b), sgd, target, 300)
    assert k_newton is not None and k_newton <= 10
    assert k_gd is None or k_gd > 20 * k_newton  # gradient descent: not within 300 iterations


def test_newton_damping_leaves_a_saddle_of_a_nonconvex_start():
    """f = x^4/4 - x^2/2 + y^2/2 at x = 0.1: H has the eigenvalue -0.97 there, and the pure
    Newton step heads for the saddle at 0. H + lambda I is not positive-definite until
    lambda > 0.97, so damping grows and the steps go downhill to a minimum at x = 1."""
    x = t([0.1, 0.5])

    def f():
        return (x[0] ** 4) / 4 - x[0] ** 2 / 2 + x[1] ** 2 / 2

    pure = 0.1 - (0.1 ** 3 - 0.1) / (3 * 0.1 ** 2 - 1)
    assert abs(pure) < 0.01  # what undamped Newton would do
    opt = pydl.optim.Newton([x], damping=1e-6)
    losses = []
    for _ in range(25):
        losses.append(float(opt.step(f)))
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert_close(x, [1.0, 0.0], rtol=1e-8, atol=1e-8)
    assert_close(f(), -0.25, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("line_search_fn", [None, "backtracking"])
def test_newton_rosenbrock(line_search_fn):
    x = t([-1.2, 1.0])
    opt = pydl.optim.Newton([x], line_search_fn=line_search_fn)
    losses = [float(opt.step(lambda: rosenbrock(x))) for _ in range(60)]
    assert all(b <= a + 1e-15 for a, b in zip(losses, losses[1:]))
    assert_close(x, [1.0, 1.0], rtol=1e-6, atol=1e-6)


def test_newton_backtracking_shortens_an_overshooting_step():
    """f = sqrt(1 + x^2): H^-1 g = x (1 + x^2), so from x = 2 the full Newton step lands at
    -8 (uphill). Armijo backtracking halves it instead of only damping."""
    x = t([2.0])
    opt = pydl.optim.Newton([x], damping=1e-12, line_search_fn="backtracking")
    opt.step(lambda: ((1 + x * x) ** 0.5).sum())
    assert abs(float(x[0])) < 2.0
    assert opt.state[x]["func_evals"] >= 3


def test_newton_float32_and_an_unused_parameter():
    A, b, x_star = quadratic(np.random.default_rng(2), 4)
    x = t(np.zeros(4), dtype=np.float32)
    unused = t(np.ones(2), dtype=np.float32)
    At, bt = t(A, False, np.float32), t(b, False, np.float32)
    opt = pydl.optim.Newton([x, unused])
    for _ in range(3):
        opt.step(lambda: 0.5 * (x @ (At @ x)) - bt @ x)
    assert x.dtype == np.float32
    assert_close(x, x_star, rtol=1e-4, atol=1e-4)
    assert_close(unused, np.ones(2), rtol=0, atol=0)


def test_newton_stops_at_a_stationary_point_and_keeps_state():
    x = t([0.0, 0.0])
    opt = pydl.optim.Newton([x])
    opt.step(lambda: (x * x).sum())
    assert_close(x, [0.0, 0.0], rtol=0, atol=0)
    assert opt.state[x]["n_iter"] == 1 and opt.state[x]["func_evals"] == 1
    assert opt.state[x]["damping"] == 1e-3


def test_newton_damping_adapts():
    x = t([3.0, -2.0])
    opt = pydl.optim.Newton([x], damping=1.0)
    opt.step(lambda: (x ** 4).sum())  # convex: the step is accepted and damping shrinks
    assert opt.state[x]["damping"] == pytest.approx(0.1)


def test_newton_closure_must_not_call_backward():
    x = t([1.0])
    opt = pydl.optim.Newton([x])

    def closure():
        opt.zero_grad()
        loss = (x ** 3).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="closure called backward"):
        opt.step(closure)
    with pytest.raises(RuntimeError, match="requires a closure"):
        opt.step(None)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(lr=0.0), "Invalid learning rate"),
    (dict(damping=-1.0), "Invalid damping"),
    (dict(damping_decrease=2.0), "damping_decrease"),
    (dict(damping_increase=0.5), "damping_increase"),
    (dict(damping_min=0.0), "damping bounds"),
    (dict(line_search_fn="strong_wolfe"), "line_search_fn"),
])
def test_newton_argument_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        pydl.optim.Newton([t([1.0])], **kwargs)


def test_newton_rejects_mixed_dtypes_and_groups():
    with pytest.raises(TypeError, match="one dtype"):
        pydl.optim.Newton([t([1.0]), t([1.0], dtype=np.float32)])
    with pytest.raises(ValueError, match="parameter groups"):
        pydl.optim.Newton([{"params": [t([1.0])]}, {"params": [t([1.0])]}])


# -- LBFGS -----------------------------------------------------------------------------------------
def _closure(opt, loss_fn):
    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_minimises_a_quadratic(line_search_fn):
    A, b, x_star = quadratic(np.random.default_rng(3), 8)
    x = t(np.zeros(8))
    At, bt = t(A, False), t(b, False)
    opt = pydl.optim.LBFGS([x], line_search_fn=line_search_fn, max_iter=100,
                           tolerance_grad=1e-10, tolerance_change=1e-14)
    opt.step(_closure(opt, lambda: 0.5 * (x @ (At @ x)) - bt @ x))
    assert_close(x, x_star, rtol=1e-7, atol=1e-7)


def test_lbfgs_strong_wolfe_rosenbrock():
    x = t([-1.2, 1.0])
    opt = pydl.optim.LBFGS([x], line_search_fn="strong_wolfe", max_iter=200,
                           tolerance_grad=1e-12, tolerance_change=1e-15)
    opt.step(_closure(opt, lambda: rosenbrock(x)))
    assert_close(x, [1.0, 1.0], rtol=1e-7, atol=1e-7)
    state = opt.state[x]
    assert state["n_iter"] < 60 and state["func_evals"] > state["n_iter"]


def test_lbfgs_step_returns_the_first_loss_and_counts():
    A, b, _ = quadratic(np.random.default_rng(5), 10)
    x = t(np.zeros(10))
    At, bt = t(A, False), t(b, False)
    opt = pydl.optim.LBFGS([x], max_iter=4)
    loss = opt.step(_closure(opt, lambda: 0.5 * (x @ (At @ x)) - bt @ x))
    assert float(loss) == 0.0
    state = opt.state[x]
    assert state["n_iter"] == 4 and state["func_evals"] == 4  # no evaluation after the last
    assert set(state) >= {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                          "prev_loss"}


def test_lbfgs_first_step_length_is_scaled_by_the_gradient():
    """Iteration 1: d = -g, t = min(1, 1 / ||g||_1) lr."""
    x = t([3.0, -1.0])
    opt = pydl.optim.LBFGS([x], max_iter=1)
    opt.step(_closure(opt, lambda: (x * x).sum()))
    g = np.array([6.0, -2.0])
    assert_close(x, np.array([3.0, -1.0]) - g / np.abs(g).sum())


def test_lbfgs_stops_at_a_stationary_point():
    x = t([0.0, 0.0])
    opt = pydl.optim.LBFGS([x])
    opt.step(_closure(opt, lambda: (x * x).sum()))
    assert opt.state[x]["func_evals"] == 1 and opt.state[x]["n_iter"] == 0


def test_lbfgs_stops_when_the_loss_stops_changing():
    """f = x^2 / 2 from 0.5 with lr 0.03: the first step moves x by 0.015 (> tolerance_change
    0.01) but the loss by 0.0074 (< 0.01), so the iteration stops there."""
    x = t([0.5])
    opt = pydl.optim.LBFGS([x], lr=0.03, tolerance_change=0.01, tolerance_grad=0)
    opt.step(_closure(opt, lambda: 0.5 * (x * x).sum()))
    assert opt.state[x]["n_iter"] == 1
    assert_close(x, [0.485])


def test_lbfgs_history_size_bounds_the_memory():
    A, b, _ = quadratic(np.random.default_rng(4), 10)
    x = t(np.zeros(10))
    At, bt = t(A, False), t(b, False)
    opt = pydl.optim.LBFGS([x], history_size=3, max_iter=15, tolerance_grad=0,
                           tolerance_change=0)
    opt.step(_closure(opt, lambda: 0.5 * (x @ (At @ x)) - bt @ x))
    assert len(opt.state[x]["old_dirs"]) == 3


def test_lbfgs_resumes_from_a_state_dict():
    """Steps after load_state_dict continue exactly as the uninterrupted run."""
    X, y = digits_binary(200)

    def run(split):
        w, b = t(np.zeros(64)), t(0.0)
        opt = pydl.optim.LBFGS([w, b], max_iter=3, line_search_fn="strong_wolfe")
        losses = []
        for k in range(4):
            if k == split:
                saved = opt.state_dict()
                opt = pydl.optim.LBFGS([w, b], max_iter=3, line_search_fn="strong_wolfe")
                opt.load_state_dict(saved)
            losses.append(float(opt.step(_closure(opt, lambda: logistic_loss(X, y, w, b)))))
        return losses, w.detach().numpy().copy()

    (l1, w1), (l2, w2) = run(None), run(2)
    assert l1 == l2
    assert np.array_equal(w1, w2)


def test_lbfgs_over_several_parameters_and_float32():
    X, y = digits_binary(200)
    w, b = t(np.zeros(64), dtype=np.float32), t(0.0, dtype=np.float32)
    X32, y32 = X.float(), y.float()
    opt = pydl.optim.LBFGS([w, b], line_search_fn="strong_wolfe")
    first = float(opt.step(_closure(opt, lambda: logistic_loss(X32, y32, w, b))))
    for _ in range(3):
        last = float(opt.step(_closure(opt, lambda: logistic_loss(X32, y32, w, b))))
    assert w.dtype == np.float32 and last < 0.2 * first


@pytest.mark.parametrize("kwargs,err,msg", [
    (dict(lr=-1.0), ValueError, "Invalid learning rate"),
    (dict(line_search_fn="armijo"), ValueError, "strong_wolfe"),
])
def test_lbfgs_argument_errors(kwargs, err, msg):
    with pytest.raises(err, match=msg):
        pydl.optim.LBFGS([t([1.0])], **kwargs)


def test_lbfgs_defaults_and_errors():
    opt = pydl.optim.LBFGS([t([1.0])])
    group = opt.param_groups[0]
    assert (group["lr"], group["max_iter"], group["max_eval"], group["tolerance_grad"],
            group["tolerance_change"], group["history_size"], group["line_search_fn"]) == \
        (1, 20, 25, 1e-7, 1e-9, 100, None)
    with pytest.raises(ValueError, match="parameter groups"):
        pydl.optim.LBFGS([{"params": [t([1.0])]}, {"params": [t([1.0])]}])
    with pytest.raises(RuntimeError, match="requires a closure"):
        opt.step(None)
