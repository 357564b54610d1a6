"""Double backward (create_graph=True) of the activation, softmax, dropout/noise, matmul and
linear ops, and of the elementwise ops they are built from: float64 gradgradcheck over every
mode and flag, shapes with 1, primes, zero-size batches and non-contiguous inputs; a third-order
check where a backward is an op of its own (GELUBackward, MatMul with transpose flags).

gradgradcheck needs contiguous inputs that it can perturb, so non-contiguous cases make the view
inside the checked function (a transpose), which hands the op a strided array.
"""
import warnings

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.autograd import grad
from pydl.autograd import gradgradcheck as _gradgradcheck
from pydl.ops.activation import GELUBackward, MaskMul
from pydl.ops.matmul import MatMul, gemm
from pydl.testing import assert_close


def gradgradcheck(fn, inputs, **kw):
    """Tighter than the defaults: float64 central differences of an analytic gradient are good
    to ~1e-9 here, so a wrong factor in a second-derivative formula cannot hide."""
    return _gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6, **kw)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def away_from(x, *kinks, gap=0.05):
    """Move values off the points where a derivative jumps, so central differences (eps 1e-6)
    see one branch only."""
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, x + 2 * gap, x)
    return x


def double_backward_shapes(fn, inputs):
    """For zero-size inputs (where gradgradcheck has no element to check): the double backward
    runs and gives gradients of the inputs' shapes."""
    out = fn(*inputs)
    u = pydl.tensor(np.ones(out.shape), requires_grad=True)
    gs = grad(out, inputs, u, create_graph=True, allow_unused=True)
    total = None
    for g in gs:
        if g is not None:
            s = (g * g).sum()
            total = s if total is None else total + s
    if total is None or not total.requires_grad:
        return
    second = grad(total, list(inputs) + [u], allow_unused=True)
    for x, g2 in zip(list(inputs) + [u], second):
        assert g2 is None or g2.shape == x.shape


# -- elementwise ops (pydl/ops/elementwise.py) ----------------------------------------------------
# name -> (function, input domain (low, high), kinks to stay away from)
UNARY = {
    "exp": (pydl.exp, (-2, 2), ()),
    "log": (pydl.log, (0.3, 3), ()),
    "sqrt": (pydl.sqrt, (0.3, 3), ()),
    "rsqrt": (pydl.rsqrt, (0.3, 3), ()),
    "abs": (pydl.abs, (-2, 2), (0.0,)),
    "sign": (pydl.sign, (-2, 2), (0.0,)),
    "sin": (pydl.sin, (-3, 3), ()),
    "cos": (pydl.cos, (-3, 3), ()),
    "tanh": (pydl.tanh, (-2, 2), ()),
    "sigmoid": (pydl.sigmoid, (-4, 4), ()),
    "relu": (pydl.relu, (-2, 2), (0.0,)),
    "square": (pydl.square, (-2, 2), ()),
    "neg": (lambda x: -x, (-2, 2), ()),
    "clone": (lambda x: x.clone(), (-2, 2), ()),
    "pow_3": (lambda x: x ** 3, (-2, 2), ()),
    "pow_half": (lambda x: x ** 0.5, (0.3, 3), ()),
    "pow_0": (lambda x: x ** 0, (-2, 2), ()),
    "pow_neg2": (lambda x: x ** -2, (0.3, 3), ()),
    "rpow": (lambda x: 2.0 ** x, (-2, 2), ()),
    "clamp": (lambda x: pydl.clamp(x, -0.5, 0.7), (-2, 2), (-0.5, 0.7)),
    "clamp_min": (lambda x: pydl.clamp(x, min=0.2), (-2, 2), (0.2,)),
    "clamp_max": (lambda x: pydl.clamp(x, max=0.2), (-2, 2), (0.2,)),
    "div_by_scalar": (lambda x: x / 3.0, (-2, 2), ()),
    "rdiv": (lambda x: 3.0 / x, (0.3, 3), ()),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(3, 5), (1,), (7,), ()], ids=str)
def test_elementwise_unary_gradgradcheck(name, shape, rng):
    fn, (lo, hi), kinks = UNARY[name]
    x = away_from(rng.uniform(lo, hi, shape), *kinks)
    assert gradgradcheck(fn, [t64(x)])


BINARY = {
    "add": (lambda a, b: a + b, (-2, 2)),
    "sub": (lambda a, b: a - b, (-2, 2)),
    "mul": (lambda a, b: a * b, (-2, 2)),
    "div": (lambda a, b: a / b, (0.5, 2)),
    "pow": (lambda a, b: a ** b, (0.5, 2)),
    "maximum": (pydl.maximum, (-2, 2)),
    "minimum": (pydl.minimum, (-2, 2)),
    "clamp_tensor_bounds": (lambda a, b: pydl.clamp(a, min=b), (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)),
                                   ((5,), ())], ids=str)
def test_elementwise_binary_gradgradcheck_with_broadcasting(name, sa, sb, rng):
    fn, (lo, hi) = BINARY[name]
    a, b = rng.uniform(lo, hi, sa), rng.uniform(lo, hi, sb)
    if name in ("maximum", "minimum", "clamp_tensor_bounds"):
        a = np.where(np.abs(a - b) < 0.05, a + 0.1, a)  # no ties: the split there is a kink
    assert gradgradcheck(fn, [t64(a), t64(b)])


def test_pow_with_zero_exponent_and_zero_base(rng):
    # d/da a^0 = 0 (also at a = 0), d/db a^b log a with the log taken as 0 at a = 0.
    a = np.array([0.0, 0.5, 1.5, 2.0])
    b = np.array([2.0, 0.0, 0.0, 1.5])
    assert gradgradcheck(lambda b_: pydl.tensor(a) ** b_, [t64(b)])
    assert gradgradcheck(lambda a_: a_ ** pydl.tensor(b), [t64(away_from(a + 0.3, 0.0))])


@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (3, 1))], ids=str)
def test_where_gradgradcheck(sa, sb, rng):
    cond = pydl.tensor(rng.random(np.broadcast_shapes(sa, sb)) > 0.5)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    assert gradgradcheck(lambda a_, b_: pydl.where(cond, a_ * a_, b_ * b_ * b_), [t64(a), t64(b)])
    assert gradgradcheck(lambda a_: pydl.where(cond, pydl.sin(a_), 0.5), [t64(a)])


def test_elementwise_noncontiguous_and_zero_size(rng):
    x = rng.uniform(0.5, 2, (4, 3))
    assert gradgradcheck(lambda x_: pydl.log(x_.mT) * pydl.exp(x_.mT) ** 2, [t64(x)])
    for fn in (pydl.exp, pydl.sigmoid, pydl.tanh, lambda x_: x_ ** 3):
        double_backward_shapes(fn, [t64(np.zeros((0, 3)))])


# -- activations ---------------------------------------------------------------------------------
# name -> (function, kinks)
ACTIVATIONS = {
    "relu": (F.relu, (0.0,)),
    "hardtanh": (F.hardtanh, (-1.0, 1.0)),
    "hardtanh_-0.5_0.7": (lambda x: F.hardtanh(x, -0.5, 0.7), (-0.5, 0.7)),
    "leaky_relu": (F.leaky_relu, (0.0,)),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), (0.0,)),
    "leaky_relu_neg": (lambda x: F.leaky_relu(x, -1.5), (0.0,)),
    "elu": (F.elu, (0.0,)),
    "elu_0.5": (lambda x: F.elu(x, 0.5), (0.0,)),
    "elu_neg_alpha": (lambda x: F.elu(x, -0.3), (0.0,)),
    "elu_zero_alpha": (lambda x: F.elu(x, 0.0), (0.0,)),
    "softplus": (F.softplus, ()),
    "softplus_beta2_thr1": (lambda x: F.softplus(x, beta=2.0, threshold=1.0), (0.5,)),
    "softplus_beta_neg": (lambda x: F.softplus(x, beta=-0.7), ()),
    "gelu": (F.gelu, ()),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ()),
    "silu": (F.silu, ()),
    "sigmoid": (F.sigmoid, ()),
    "tanh": (F.tanh, ()),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(3, 5), (1,), (2, 1, 3), ()], ids=str)
def test_activation_gradgradcheck(name, shape, rng):
    fn, kinks = ACTIVATIONS[name]
    x = away_from(rng.uniform(-3, 3, shape), *kinks)
    assert gradgradcheck(fn, [t64(x)])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_double_backward_noncontiguous_and_zero_batch(name, rng):
    fn, kinks = ACTIVATIONS[name]
    x = away_from(rng.uniform(-3, 3, (5, 3)), *kinks)
    assert gradgradcheck(lambda x_: fn(x_.mT), [t64(x)])
    double_backward_shapes(fn, [t64(np.zeros((0, 4)))])


@pytest.mark.parametrize("name,call", [
    ("relu_", lambda x: F.relu(x, inplace=True)),
    ("hardtanh_", lambda x: F.hardtanh(x, -0.5, 0.5, inplace=True)),
    ("leaky_relu_", lambda x: F.leaky_relu(x, 0.3, inplace=True)),
    ("elu_", lambda x: F.elu(x, 0.8, inplace=True)),
    ("silu_inplace", lambda x: F.silu(x, inplace=True)),
    ("relu_method", lambda x: F.relu_(x)),
])
def test_inplace_activation_gradgradcheck(name, call, rng):
    x = away_from(rng.uniform(-2, 2, (3, 4)), 0.0, -0.5, 0.5)
    # In place on a non-leaf (a leaf that requires grad cannot be written in place).
    assert gradgradcheck(lambda x_: call(x_ * 1.5) * x_, [t64(x)])


def test_gelu_exact_second_derivative_value():
    # GELU''(x) = phi(x) (2 - x^2): the closed form at a few points.
    xs = np.array([-2.0, -0.5, 0.0, 0.7, 1.9])
    x = t64(xs)
    (g,) = grad(F.gelu(x).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    phi = np.exp(-xs * xs / 2) / np.sqrt(2 * np.pi)
    assert_close(h, phi * (2 - xs * xs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_third_order(approximate, rng):
    # gradgradcheck of the first derivative checks third derivatives: GELUBackward's own backward
    # is written with ops that differentiate again.
    x = rng.uniform(-2, 2, (2, 3))

    def first(x_):
        return grad(F.gelu(x_, approximate=approximate).sum(), x_, create_graph=True)[0]

    assert gradgradcheck(first, [t64(x)])


def test_gelu_backward_op_gradgradcheck(rng):
    g, x = rng.standard_normal((3, 4)), rng.uniform(-2, 2, (3, 4))
    assert gradgradcheck(GELUBackward.apply, [t64(g), t64(x)])


def test_activation_double_backward_records_nothing_on_first_order(rng):
    # The first-order pass stays on arrays: no node is made for the backward formulas.
    x = t64(rng.standard_normal((3, 4)))
    y = F.silu(F.gelu(x))
    (g,) = grad(y.sum(), x)
    assert g.grad_fn is None and not g.requires_grad


# -- softmax / log_softmax -----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((3, 5), 0), ((3, 5), -1), ((2, 3, 4), 1),
                                       ((2, 3, 4), -1), ((7,), 0), ((1, 1), 1), ((4, 1), 1)],
                         ids=str)
def test_softmax_family_gradgradcheck(which, shape, dim, rng):
    fn = getattr(F, which)
    x = rng.standard_normal(shape) * 2
    assert gradgradcheck(lambda x_: fn(x_, dim=dim), [t64(x)])


@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_double_backward_noncontiguous_dtype_zero_dim(which, rng):
    fn = getattr(F, which)
    x = rng.standard_normal((5, 3))
    assert gradgradcheck(lambda x_: fn(x_.mT, dim=1), [t64(x)])
    assert gradgradcheck(lambda x_: fn(x_, dim=0, dtype=pydl.float64), [t64(x)])
    assert gradgradcheck(lambda x_: fn(x_, dim=0) * x_, [t64(1.3)])
    double_backward_shapes(lambda x_: fn(x_, dim=1), [t64(np.zeros((0, 4)))])


@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_dtype_argument_double_backward_float32(which, rng):
    # A float32 input with dtype=float64: the Cast's backward brings the second derivative back
    # to float32.
    x = pydl.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    y = getattr(F, which)(x, dim=1, dtype=pydl.float64)
    assert y.dtype == pydl.float64
    w = pydl.tensor(rng.standard_normal((3, 4)))
    (g,) = grad((y * w).sum(), x, create_graph=True)
    assert g.dtype == pydl.float32
    (h,) = grad((g * g).sum(), x)
    assert h.dtype == pydl.float32 and np.isfinite(h._data).all()


def test_softmax_third_order(rng):
    x = rng.standard_normal((2, 4))
    w = pydl.tensor(rng.standard_normal((2, 4)))

    def first(x_):
        return grad((F.log_softmax(x_, dim=1) * w).sum(), x_, create_graph=True)[0]

    assert gradgradcheck(first, [t64(x)])


# -- dropout and noise ---------------------------------------------------------------------------
def _seeded(fn):
    """fn with the same random draw on every call (gradgradcheck calls it many times)."""
    def run(*args):
        pydl.manual_seed(3)
        return fn(*args)
    return run


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_gradgradcheck(p, training, rng):
    x = rng.standard_normal((4, 5))
    assert gradgradcheck(_seeded(lambda x_: F.dropout(x_, p, training) * x_), [t64(x)])
    assert gradgradcheck(_seeded(lambda x_: F.dropout(x_.mT, p, training)), [t64(x)])


@pytest.mark.parametrize("training", [True, False])
def test_dropout2d_gradgradcheck(training, rng):
    x = rng.standard_normal((2, 3, 2, 2))
    assert gradgradcheck(_seeded(lambda x_: F.dropout2d(x_, 0.5, training) ** 2), [t64(x)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 3-D input: PyTorch's (N, C, L) warning
        assert gradgradcheck(_seeded(lambda x_: F.dropout2d(x_.reshape(2, 3, 4), 0.4,
                                                            training) ** 2), [t64(x)])


def test_dropout_inplace_double_backward(rng):
    x = rng.standard_normal((3, 4))
    assert gradgradcheck(_seeded(lambda x_: F.dropout(x_ * x_, 0.4, inplace=True)), [t64(x)])


def test_dropout_double_backward_value_is_the_mask(rng):
    # d(dx)/dg = mask: differentiating the gradient w.r.t. the incoming gradient gives it back.
    x = t64(rng.standard_normal((6, 7)))
    pydl.manual_seed(1)
    y = F.dropout(x, 0.5)
    mask = y._data / x._data
    u = t64(rng.standard_normal((6, 7)))
    (gx,) = grad(y, x, u, create_graph=True)
    assert gx.requires_grad
    (gu,) = grad(gx.sum(), u)
    assert_close(gu, mask, rtol=1e-12, atol=0)


def test_mask_mul_gradgradcheck_and_backward_twice(rng):
    mask = (rng.random((3, 4)) > 0.5) * 2.0
    x = rng.standard_normal((3, 4))
    assert gradgradcheck(lambda x_: MaskMul.apply(x_ * x_, mask), [t64(x)])
    xt = t64(x)
    y = MaskMul.apply(xt, mask).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


@pytest.mark.parametrize("training", [True, False])
def test_gaussian_noise_gradgradcheck(training, rng):
    x = rng.standard_normal((3, 4))
    assert gradgradcheck(_seeded(lambda x_: F.gaussian_noise(x_, 0.5, training) ** 3), [t64(x)])


def test_dropout_and_noise_zero_batch():
    x = t64(np.zeros((0, 3)))
    for fn in (lambda x_: F.dropout(x_ * x_, 0.5), lambda x_: F.gaussian_noise(x_ * x_, 0.5)):
        double_backward_shapes(fn, [x])


# -- matmul, mm, bmm, dot, linear ----------------------------------------------------------------
MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)),
                 ((2, 1, 2, 3), (3, 3, 1)), ((3,), (2, 3, 4)), ((2, 2, 3), (3,)),
                 ((1, 1), (1, 1)), ((7, 5), (5, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_gradgradcheck(sa, sb, rng):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    assert gradgradcheck(pydl.matmul, [t64(a), t64(b)])


@pytest.mark.parametrize("sa,sb", [((0, 3), (3, 2)), ((2, 0), (0, 3)), ((0, 2, 3), (3, 4)),
                                   ((2, 3), (0, 3, 4))], ids=str)
def test_matmul_double_backward_zero_size(sa, sb):
    double_backward_shapes(pydl.matmul, [t64(np.zeros(sa)), t64(np.zeros(sb))])


def test_matmul_gradgradcheck_one_operand_constant(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert gradgradcheck(lambda a_: (a_ @ t64(b, False)) ** 2, [t64(a)])
    assert gradgradcheck(lambda b_: (t64(a, False) @ b_) ** 2, [t64(b)])


def test_matmul_noncontiguous_double_backward(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 5, 4))
    # a.mT is a transposed view (the GEMM reads it with a flag); b.mT a batched one.
    assert gradgradcheck(lambda a_, b_: a_.mT @ b_.mT, [t64(a), t64(b)])
    assert gradgradcheck(lambda a_, b_: (a_.mT @ b_.mT) ** 2, [t64(a), t64(b)])


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("batch", [((), ()), ((2,), ()), ((), (3,)), ((2, 1), (3,))], ids=str)
def test_matmul_transpose_flags_gradgradcheck(trans_a, trans_b, batch, rng):
    # MatMul(a, b, trans_a, trans_b) is the GEMM that every matmul/linear backward runs; its own
    # backward must be right for every flag pair and batch broadcast.
    ba, bb = batch
    m, k, n = 2, 3, 4
    a = rng.standard_normal(ba + ((k, m) if trans_a else (m, k)))
    b = rng.standard_normal(bb + ((n, k) if trans_b else (k, n)))
    ref = np.matmul(np.swapaxes(a, -1, -2) if trans_a else a,
                    np.swapaxes(b, -1, -2) if trans_b else b)
    assert_close(MatMul.apply(t64(a, False), t64(b, False), trans_a, trans_b), ref,
                 rtol=1e-12, atol=1e-12)
    fn = lambda a_, b_: MatMul.apply(a_, b_, trans_a, trans_b)  # noqa: E731
    assert gradgradcheck(fn, [t64(a), t64(b)])


def test_matmul_third_order(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))

    def first(a_, b_):
        ga, gb = grad(((a_ @ b_) ** 2).sum(), [a_, b_], create_graph=True)
        return ga, gb

    assert gradgradcheck(first, [t64(a), t64(b)])


def test_gemm_is_the_bare_kernel_on_arrays(rng):
    # The first-order path: arrays in, an array out, no Tensor or node on the way.
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    out = gemm(a, b, False, True)
    assert type(out) is np.ndarray
    assert_close(out, a @ b.T, rtol=1e-12, atol=1e-12)
    out_t = gemm(t64(a), b, False, True)
    assert isinstance(out_t, pydl.Tensor) and out_t.requires_grad


def test_mm_bmm_dot_gradgradcheck(rng):
    assert gradgradcheck(pydl.mm, [t64(rng.standard_normal((3, 4))),
                                   t64(rng.standard_normal((4, 2)))])
    assert gradgradcheck(pydl.bmm, [t64(rng.standard_normal((2, 3, 4))),
                                    t64(rng.standard_normal((2, 4, 5)))])
    assert gradgradcheck(pydl.dot, [t64(rng.standard_normal(5)), t64(rng.standard_normal(5))])
    assert gradgradcheck(lambda a, b: pydl.dot(a, b) ** 2,
                         [t64(rng.standard_normal(1)), t64(rng.standard_normal(1))])


@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 3, 3), (2, 1, 2, 3), (1, 3)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradgradcheck(x_shape, bias, rng):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((5, 3)), rng.standard_normal(5)
    inputs = [t64(x), t64(w)] + ([t64(b)] if bias else [])
    assert gradgradcheck(F.linear, inputs)


def test_linear_double_backward_noncontiguous_zero_rows_and_mlp(rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    # x.mT (4, 3) and w.mT (2, 3): both strided views.
    assert gradgradcheck(lambda x_, w_, b_: F.linear(x_.mT, w_.mT, b_),
                         [t64(x), t64(w), t64(rng.standard_normal(2))])
    double_backward_shapes(F.linear, [t64(np.zeros((0, 3))), t64(w.T.copy()),
                                      t64(np.zeros(2))])
    double_backward_shapes(F.linear, [t64(np.zeros((2, 0, 3))), t64(w.T.copy())])
    # A small MLP: linear -> tanh -> linear, second derivatives w.r.t. every tensor.
    w1, b1 = rng.standard_normal((4, 3)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((2, 4)), rng.standard_normal(2)
    mlp = lambda x_, w1_, b1_, w2_, b2_: F.linear(F.tanh(F.linear(x_, w1_, b1_)),  # noqa: E731
                                                   w2_, b2_)
    assert gradgradcheck(mlp, [t64(rng.standard_normal((2, 3))), t64(w1), t64(b1), t64(w2),
                               t64(b2)])


def test_linear_weight_only_and_input_only(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    assert gradgradcheck(lambda w_: F.linear(t64(x, False), w_) ** 2, [t64(w)])
    assert gradgradcheck(lambda x_: F.linear(x_, t64(w, False)) ** 2, [t64(x)])
