"""PyTorch as the reference for double backward of activations, softmax, dropout, matmul and
linear: with u the incoming gradient and v a direction, the first derivatives
g = d<f(x), u>/dx (create_graph=True) and the second derivatives d<g, v>/d(x, weights, u) equal
torch's in float64 (rtol 1e-7). Also relu's (and its kin's) gradient at NaN. Skipped where torch
is not installed."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as PF
from pydl.autograd import grad
from pydl.testing import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _zeros_for_none(gs, arrays):
    return [np.zeros(a.shape) if g is None else np.asarray(g.detach().numpy()) for g, a in
            zip(gs, arrays)]


def pydl_derivatives(fn, arrays, u, v):
    xs = [pydl.tensor(a, requires_grad=True) for a in arrays]
    ut = pydl.tensor(u, requires_grad=True)
    out = fn(pydl, PF, *xs)
    gs = grad(out, xs, ut, create_graph=True, allow_unused=True)
    s = None
    for g, vi in zip(gs, v):
        if g is not None:
            term = (g * pydl.tensor(vi)).sum()
            s = term if s is None else s + term
    second = grad(s, xs + [ut], allow_unused=True)
    return (out.detach().numpy(), _zeros_for_none(gs, arrays),
            _zeros_for_none(second, list(arrays) + [u]))


def torch_derivatives(fn, arrays, u, v):
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ut = torch.tensor(u, requires_grad=True)
    out = fn(torch, TF, *xs)
    gs = torch.autograd.grad(out, xs, ut, create_graph=True, allow_unused=True)
    s = None
    for g, vi in zip(gs, v):
        if g is not None:
            term = (g * torch.tensor(vi)).sum()
            s = term if s is None else s + term
    second = torch.autograd.grad(s, xs + [ut], allow_unused=True)
    return (out.detach().numpy(), _zeros_for_none(gs, arrays),
            _zeros_for_none(second, list(arrays) + [u]))


def check_against_torch(fn, arrays, seed=0):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        out_shape = tuple(fn(torch, TF, *[torch.tensor(a) for a in arrays]).shape)
    u = rng.standard_normal(out_shape)
    v = [rng.standard_normal(a.shape) for a in arrays]
    out, first, second = pydl_derivatives(fn, arrays, u, v)
    t_out, t_first, t_second = torch_derivatives(fn, arrays, u, v)
    assert_close(out, t_out, rtol=1e-7, atol=1e-12)
    for k, (ours, theirs) in enumerate(zip(first, t_first)):
        assert_close(ours, theirs, rtol=1e-7, atol=1e-12, msg=f"first derivative {k}")
    for k, (ours, theirs) in enumerate(zip(second, t_second)):
        assert_close(ours, theirs, rtol=1e-7, atol=1e-12, msg=f"second derivative {k}")


def away_from(x, *kinks, gap=0.05):
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, x + 2 * gap, x)
    return x


# name -> (f(lib, F, x), kinks)
ACTIVATIONS = {
    "relu": (lambda m, F, x: F.relu(x), (0.0,)),
    "relu_inplace": (lambda m, F, x: F.relu(x * 2, inplace=True) * x, (0.0,)),
    "hardtanh": (lambda m, F, x: F.hardtanh(x, -0.5, 0.7) * x, (-0.5, 0.7)),
    "leaky_relu": (lambda m, F, x: F.leaky_relu(x, 0.2) * x, (0.0,)),
    "elu": (lambda m, F, x: F.elu(x, 0.8), (0.0,)),
    "elu_inplace": (lambda m, F, x: F.elu(x * 1.0, 1.3, inplace=True), (0.0,)),
    "softplus": (lambda m, F, x: F.softplus(x), ()),
    "softplus_beta_threshold": (lambda m, F, x: F.softplus(x, 2.0, 1.5), (0.75,)),
    "gelu": (lambda m, F, x: F.gelu(x), ()),
    "gelu_tanh": (lambda m, F, x: F.gelu(x, approximate="tanh"), ()),
    "silu": (lambda m, F, x: F.silu(x), ()),
    "sigmoid": (lambda m, F, x: m.sigmoid(x), ()),
    "tanh": (lambda m, F, x: m.tanh(x), ()),
    "exp_log_pow": (lambda m, F, x: m.log(m.exp(x) + x * x + 1) ** 3, ()),
    "softmax_dim1": (lambda m, F, x: F.softmax(x, dim=1), ()),
    "softmax_dim0": (lambda m, F, x: F.softmax(x, dim=0) * x, ()),
    "log_softmax_dim1": (lambda m, F, x: F.log_softmax(x, dim=1), ()),
    "log_softmax_dim0": (lambda m, F, x: F.log_softmax(x, dim=0) ** 2, ()),
    "softmax_transposed": (lambda m, F, x: F.softmax(x.mT, dim=-1), ()),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_double_backward_matches_torch(name):
    fn, kinks = ACTIVATIONS[name]
    x = away_from(np.random.default_rng(1).uniform(-3, 3, (4, 5)), *kinks)
    check_against_torch(fn, [x])


def test_softmax_family_3d_and_dtype_argument_match_torch():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    check_against_torch(lambda m, F, x_: F.softmax(x_, dim=1, dtype=m.float64), [x])
    check_against_torch(lambda m, F, x_: F.log_softmax(x_, dim=-1) * F.softmax(x_, dim=0), [x])
    # float32 in, float64 softmax out: the second derivative comes back as float32.
    x32 = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    u = np.random.default_rng(4).standard_normal((3, 4))
    results = []
    for m, F in ((pydl, PF), (torch, TF)):
        xt = m.tensor(x32, requires_grad=True)
        out = F.log_softmax(xt, dim=1, dtype=m.float64)
        gauto = grad if m is pydl else torch.autograd.grad
        (g,) = gauto((out * m.tensor(u)).sum(), xt, create_graph=True)
        (h,) = gauto((g * g).sum(), xt)
        results.append((g.detach().numpy(), h.detach().numpy()))
    assert results[0][1].dtype == np.float32
    assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    assert_close(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)


def test_dropout_double_backward_matches_torch_with_the_same_mask():
    # The masks come from different generators: pydl's mask, read off its output, is applied in
    # torch as the constant it is.
    rng = np.random.default_rng(5)
    x = rng.uniform(0.5, 2, (4, 6)) * np.where(rng.random((4, 6)) > 0.5, 1, -1)
    pydl.manual_seed(7)
    mask = PF.dropout(pydl.tensor(x), 0.4).numpy() / x

    def fn(m, F, x_):
        if m is pydl:
            pydl.manual_seed(7)
            return F.dropout(x_ * x_, 0.4) * x_
        return (x_ * x_) * torch.tensor(mask) * x_

    check_against_torch(fn, [x])
    # Evaluation mode is the identity in both.
    check_against_torch(lambda m, F, x_: F.dropout(x_ * x_, 0.4, training=False), [x])


MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)),
                 ((2, 1, 2, 3), (3, 3, 1)), ((3,), (2, 3, 4)), ((7, 5), (5, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_double_backward_matches_torch(sa, sb):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_against_torch(lambda m, F, a_, b_: m.matmul(a_, b_), [a, b])
    # A nonlinear use, so that d2/da2 is not zero: (a @ b)^2.
    check_against_torch(lambda m, F, a_, b_: m.matmul(a_, b_) ** 2, [a, b])


def test_mm_bmm_dot_and_transposed_operands_match_torch():
    rng = np.random.default_rng(7)
    check_against_torch(lambda m, F, a, b: m.mm(a, b) ** 2,
                        [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))])
    check_against_torch(lambda m, F, a, b: m.bmm(a, b).tanh(),
                        [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))])
    check_against_torch(lambda m, F, a, b: m.dot(a, b) ** 3,
                        [rng.standard_normal(5), rng.standard_normal(5)])
    check_against_torch(lambda m, F, a, b: (a.mT @ b.mT).sigmoid(),
                        [rng.standard_normal((4, 3)), rng.standard_normal((2, 5, 4))])


@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 5, 3), (2, 1, 2, 3)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_double_backward_matches_torch(x_shape, bias):
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((5, 3))]
    if bias:
        arrays.append(rng.standard_normal(5))
    check_against_torch(lambda m, F, *a: F.linear(*a), arrays)
    check_against_torch(lambda m, F, *a: F.linear(*a) ** 2, arrays)


def test_mlp_hessian_vector_products_match_torch():
    # linear -> gelu -> dropout(eval) -> linear -> log_softmax, the negative log-likelihood of
    # fixed classes: second derivatives w.r.t. input, every weight and bias at once.
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal((6, 4)), rng.standard_normal((8, 4)) * 0.5,
              rng.standard_normal(8), rng.standard_normal((3, 8)) * 0.5, rng.standard_normal(3)]
    onehot = np.eye(3)[rng.integers(0, 3, 6)]

    def mlp(m, F, x, w1, b1, w2, b2):
        h = F.dropout(F.gelu(F.linear(x, w1, b1)), 0.5, training=False)
        logp = F.log_softmax(F.linear(F.silu(h), w2, b2), dim=1)
        return -(logp * m.tensor(onehot)).sum() / 6

    check_against_torch(mlp, arrays)


# -- NaN: relu's gradient and its kin's, as PyTorch -----------------------------------------------
@pytest.mark.parametrize("name,call", [
    ("relu", lambda F, x: F.relu(x)),
    ("relu_inplace", lambda F, x: F.relu(x * 1.0, inplace=True)),
    ("hardtanh", lambda F, x: F.hardtanh(x, -0.5, 0.5)),
    ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.1)),
    ("elu", lambda F, x: F.elu(x, 0.7)),
])
def test_gradient_at_nan_matches_torch(name, call):
    values = np.array([np.nan, -1.0, 0.0, 0.3, 2.0])
    x = pydl.tensor(values, requires_grad=True)
    call(PF, x).sum().backward()
    tx = torch.tensor(values, requires_grad=True)
    call(TF, tx).sum().backward()
    assert_close(x.grad, tx.grad.numpy(), rtol=0, atol=0)
