"""Activations, softmax / log-softmax, dropout and Gaussian noise: forward against float64
NumPy references written here (math per element, never the code under test), gradients through
gradcheck, shapes with 1, primes, zero-size dims and non-contiguous inputs, modules and errors."""
import math
import warnings

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.autograd import gradcheck as _gradcheck
from pydl.testing import assert_close, noncontiguous

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (0, 3), (4, 0), (13, 1, 2)]


def gradcheck(fn, inputs):
    """Tighter than gradcheck's defaults: float64 central differences are good to ~1e-9 here, so
    a 0.1% error in a backward formula cannot hide."""
    return _gradcheck(fn, inputs, atol=1e-8, rtol=1e-6)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _sigmoid_ref(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _elementwise_ref(f):
    """Apply a scalar Python function to every element (the reference, in float64)."""
    return lambda x: np.vectorize(f, otypes=[np.float64])(np.asarray(x, dtype=np.float64))


# name -> (pydl call, scalar reference)
ACTIVATIONS = {
    "relu": (F.relu, lambda v: max(v, 0.0)),
    "sigmoid": (F.sigmoid, _sigmoid_ref),
    "tanh": (F.tanh, math.tanh),
    "hardtanh": (F.hardtanh, lambda v: min(max(v, -1.0), 1.0)),
    "hardtanh_0.5_2": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda v: min(max(v, -0.5), 2.0)),
    "softplus": (F.softplus, lambda v: math.log1p(math.exp(v)) if v < 30 else v),
    "softplus_beta2_thr3": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                            lambda v: v if 2 * v > 3 else math.log1p(math.exp(2 * v)) / 2),
    "leaky_relu": (F.leaky_relu, lambda v: v if v > 0 else 0.01 * v),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda v: v if v > 0 else 0.2 * v),
    "elu": (F.elu, lambda v: v if v > 0 else math.expm1(v)),
    "elu_0.5": (lambda x: F.elu(x, 0.5), lambda v: v if v > 0 else 0.5 * math.expm1(v)),
    "elu_neg_alpha": (lambda x: F.elu(x, -0.3), lambda v: v if v > 0 else -0.3 * math.expm1(v)),
    "gelu": (F.gelu, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                      * (v + 0.044715 * v ** 3)))),
    "silu": (F.silu, lambda v: v * _sigmoid_ref(v)),
}


def _away_from_kinks(x):
    """Keep values off the points where the derivative jumps (0, +-1, -0.5, 2, 1.5), so the
    central differences of gradcheck see one branch only."""
    x = np.where(np.abs(x) < 0.05, x + 0.1, x)
    for k in (-1.0, 1.0, -0.5, 2.0, 1.5):
        x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_activation_forward_matches_reference(name, shape, rng):
    fn, ref = ACTIVATIONS[name]
    x = rng.uniform(-4, 4, shape)
    out = fn(t64(x, False))
    assert out.shape == shape and out.dtype == pydl.float64
    assert_close(out, _elementwise_ref(ref)(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name, rng):
    fn, _ = ACTIVATIONS[name]
    x = _away_from_kinks(rng.uniform(-3, 3, (3, 5)))
    assert gradcheck(fn, [t64(x)])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_noncontiguous_and_float32(name, rng):
    fn, ref = ACTIVATIONS[name]
    x = rng.uniform(-4, 4, (5, 6))
    nc = noncontiguous(x)
    assert not nc.flags.c_contiguous
    assert_close(fn(pydl.from_numpy(nc)), _elementwise_ref(ref)(x), rtol=1e-12, atol=1e-14)
    out32 = fn(pydl.tensor(x, dtype=pydl.float32))
    assert out32.dtype == pydl.float32
    assert_close(out32, _elementwise_ref(ref)(x), rtol=2e-6, atol=2e-6)


def test_activation_derivatives_at_the_kinks():
    # PyTorch's choices where the derivative is not defined.
    x = t64([0.0, -1.0, 1.0])
    F.relu(x).sum().backward()
    assert_close(x.grad, [0.0, 0.0, 1.0])
    x = t64([-1.0, 1.0, 0.0])
    F.hardtanh(x).sum().backward()
    assert_close(x.grad, [0.0, 0.0, 1.0])
    x = t64([0.0])
    F.leaky_relu(x, 0.1).sum().backward()
    assert_close(x.grad, [0.1])
    x = t64([0.0])
    F.elu(x, 0.7).sum().backward()
    assert_close(x.grad, [0.7])


def test_gradient_at_nan_passes_through_like_pytorch():
    # PyTorch's masks test x <= 0 (false at NaN): the incoming gradient passes a NaN input.
    values = [math.nan, -1.0, 0.0, 2.0]
    for call, expected in ((F.relu, [1.0, 0.0, 0.0, 1.0]),
                           (F.hardtanh, [1.0, 0.0, 1.0, 0.0]),
                           (lambda x: F.leaky_relu(x, 0.1), [0.1, 0.1, 0.1, 1.0]),
                           (lambda x: F.elu(x, 0.5), [1.0, 0.5 * math.exp(-1.0), 0.5, 1.0])):
        x = t64(values)
        out = call(x)
        assert math.isnan(out._data[0])
        out.sum().backward()
        assert_close(x.grad, expected, rtol=1e-15, atol=0)


def test_softplus_is_stable_and_linear_above_threshold():
    x = t64([-800.0, -30.0, 0.0, 19.0, 21.0, 800.0])
    out = F.softplus(x)
    expected = [math.exp(-800.0), math.log1p(math.exp(-30.0)), math.log(2.0),
                math.log1p(math.exp(19.0)), 21.0, 800.0]
    assert_close(out, expected, rtol=1e-12, atol=0)
    out.sum().backward()
    assert_close(x.grad, [_sigmoid_ref(-800), _sigmoid_ref(-30), 0.5, _sigmoid_ref(19), 1, 1])


def test_sigmoid_and_silu_are_stable_for_large_inputs():
    x = t64([-1000.0, 1000.0])
    assert np.isfinite(F.silu(x)._data).all()
    assert_close(F.silu(x), [0.0, 1000.0])
    assert_close(F.sigmoid(x), [0.0, 1.0])


def test_gelu_float16_runs_in_float32():
    x = np.linspace(-3, 3, 11)
    out = F.gelu(pydl.tensor(x, dtype=pydl.float16))
    assert out.dtype == pydl.float16
    ref = _elementwise_ref(ACTIVATIONS["gelu"][1])(x)
    assert_close(out, ref, rtol=2e-3, atol=2e-3)


def test_gelu_kernel_rejects_bad_arguments():
    from pydl import _C

    with pytest.raises(TypeError, match="float32 or float64"):
        _C.gelu_forward(np.arange(3))
    with pytest.raises(ValueError, match="differs from input shape"):
        _C.gelu_backward(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        _C.gelu_backward(np.ones(3, np.float32), np.ones(3))


# -- in-place forms -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,call", [
    ("relu", lambda x: F.relu(x, inplace=True)),
    ("hardtanh", lambda x: F.hardtanh(x, inplace=True)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2, inplace=True)),
    ("elu", lambda x: F.elu(x, inplace=True)),
    ("silu", lambda x: F.silu(x, inplace=True)),
])
def test_inplace_writes_input_and_keeps_gradient(name, call, rng):
    ref = {"relu": ACTIVATIONS["relu"][1], "hardtanh": ACTIVATIONS["hardtanh"][1],
           "leaky_relu": ACTIVATIONS["leaky_relu_0.2"][1], "elu": ACTIVATIONS["elu"][1],
           "silu": ACTIVATIONS["silu"][1]}[name]
    x_np = _away_from_kinks(rng.uniform(-3, 3, (4, 3)))
    # Without autograd: the tensor's memory is overwritten.
    x = pydl.tensor(x_np)
    out = call(x)
    assert out is x
    assert_close(x, _elementwise_ref(ref)(x_np))
    # With autograd on a non-leaf: the graph stays exact.
    assert gradcheck(lambda a: call(a * 1.0), [t64(x_np)])


def test_inplace_on_leaf_requiring_grad_raises():
    with pytest.raises(RuntimeError, match="leaf"):
        F.relu(t64([1.0, -1.0]), inplace=True)


# -- softmax / log-softmax ----------------------------------------------------------------------
def _softmax_ref(x, dim):
    x = np.asarray(x, dtype=np.float64)
    moved = np.moveaxis(x, dim, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = math.fsum(e)
        out[idx] = [v / s for v in e]
    return np.moveaxis(out, -1, dim)


def _log_softmax_ref(x, dim):
    x = np.asarray(x, dtype=np.float64)
    moved = np.moveaxis(x, dim, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        out[idx] = [v - lse for v in row]
    return np.moveaxis(out, -1, dim)


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 7), 1), ((3, 7), 0), ((2, 3, 5), -1),
                                       ((2, 3, 5), 1), ((1, 1), 1), ((4, 1), 1), ((0, 3), 1),
                                       ((3, 0), 1)], ids=str)
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_forward_and_grad(which, shape, dim, rng):
    fn = getattr(F, which)
    ref = _softmax_ref if which == "softmax" else _log_softmax_ref
    x = rng.standard_normal(shape) * 3
    out = fn(t64(x, False), dim=dim)
    assert out.shape == shape
    if x.size:
        assert_close(out, ref(x, dim), rtol=1e-12, atol=1e-14)
    if 0 < x.size <= 40:
        # A weighted sum makes the output's Jacobian fully visible to gradcheck.
        w = t64(rng.standard_normal(shape), False)
        assert gradcheck(lambda a: fn(a, dim=dim) * w, [t64(x)])


@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_is_stable_on_large_logits(which):
    fn = getattr(F, which)
    ref = _softmax_ref if which == "softmax" else _log_softmax_ref
    x = np.array([[1e4, 1e4 - 1.0, -1e4], [-5e3, -5e3 + 2.0, -5e3 + 1.0]])
    for dtype, tol in ((pydl.float64, 1e-12), (pydl.float32, 1e-6)):
        out = fn(pydl.tensor(x, dtype=dtype), dim=1)
        assert np.isfinite(out._data).all()
        assert_close(out, ref(x, 1), rtol=tol, atol=tol)


def test_softmax_rows_sum_to_one_and_handle_minus_inf():
    x = t64([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], False)
    p = F.softmax(x, dim=1)
    assert_close(p.sum(1), [1.0, 1.0])
    assert_close(p, [[1 / (1 + math.e), 0.0, math.e / (1 + math.e)], [0.0, 1.0, 0.0]])
    lp = F.log_softmax(x, dim=1)
    assert lp._data[0, 1] == -np.inf and lp._data[1, 1] == 0.0


def test_softmax_noncontiguous_dtype_and_zero_dim(rng):
    x = rng.standard_normal((4, 6))
    assert_close(F.softmax(pydl.from_numpy(noncontiguous(x)), dim=1), _softmax_ref(x, 1))
    out = F.log_softmax(pydl.tensor(x, dtype=pydl.float32), dim=1, dtype=pydl.float64)
    assert out.dtype == pydl.float64
    assert_close(F.softmax(t64(2.5, False), dim=0), 1.0)
    assert F.softmax(t64(2.5, False), dim=0).shape == ()


def test_softmax_implicit_dim_warns_like_pytorch(rng):
    x = t64(rng.standard_normal((3, 4)), False)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = F.softmax(x)
    assert_close(out, _softmax_ref(x._data, 1))
    with pytest.warns(UserWarning, match="log_softmax"):
        out = F.log_softmax(t64(rng.standard_normal(5), False))
    assert out.shape == (5,)


def test_softmax_errors():
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.softmax(t64(np.ones((2, 3)), False), dim=2)
    with pytest.raises(TypeError, match="floating point"):
        F.softmax(pydl.tensor([1, 2, 3]), dim=0)
    with pytest.raises(TypeError, match="pydl.Tensor"):
        F.log_softmax(np.ones(3), dim=0)


# -- dropout ------------------------------------------------------------------------------------
def _fixed_seed(fn, seed=3):
    """fn with the generator re-seeded before each call, so gradcheck's repeated calls see the
    same mask."""
    def call(*args):
        pydl.manual_seed(seed)
        return fn(*args)
    return call


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_training_mask_values_rate_and_gradient(p):
    x = t64(np.full((200, 250), 2.0))
    y = F.dropout(x, p)
    kept = y._data != 0
    # Survivors are scaled by 1 / (1 - p); the drop rate matches p within 6 standard errors.
    assert_close(y._data[kept], np.full(kept.sum(), 2.0 / (1 - p)))
    se = math.sqrt(p * (1 - p) / x.numel())
    assert abs((1 - kept.mean()) - p) < 6 * se
    y.sum().backward()
    assert_close(x.grad, np.where(kept, 1 / (1 - p), 0.0))


def test_dropout_gradcheck_with_fixed_mask(rng):
    x = t64(rng.standard_normal((4, 5)))
    assert gradcheck(_fixed_seed(lambda a: F.dropout(a, 0.3)), [x])
    x4 = t64(rng.standard_normal((2, 3, 2, 2)))
    assert gradcheck(_fixed_seed(lambda a: F.dropout2d(a, 0.4)), [x4])


def test_dropout_is_reproducible_with_manual_seed():
    x = pydl.ones(50, 40)
    pydl.manual_seed(7)
    a = F.dropout(x, 0.5)._data.copy()
    pydl.manual_seed(7)
    b = F.dropout(x, 0.5)._data
    assert np.array_equal(a, b)
    assert not np.array_equal(a, F.dropout(x, 0.5)._data)


def test_dropout_identity_cases():
    x = pydl.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout2d(x.reshape(1, 3, 2, 2), 0.5, training=False).shape == (1, 3, 2, 2)
    zero = F.dropout(t64(np.ones((3, 3))), 1.0)
    assert np.array_equal(zero._data, np.zeros((3, 3)))
    empty = F.dropout(pydl.randn(0, 5), 0.5)
    assert empty.shape == (0, 5)


def test_dropout_weight_scaling_equivalence(rng):
    """Inverted dropout's expectation is the identity, so a layer after it sees, on average,
    exactly its evaluation-mode input (the weight-scaling inference rule with the factor moved
    into training): averaging a linear layer over many masks approaches the eval output."""
    x = rng.standard_normal((1, 6))
    w = rng.standard_normal((3, 6))
    layer_in = t64(np.repeat(x, 20000, axis=0), False)
    p = 0.4
    dropped = F.dropout(layer_in, p)
    mc_mean = (dropped._data @ w.T).mean(axis=0)
    eval_out = (x @ w.T)[0]
    # Standard error of the Monte-Carlo mean of each output.
    se = np.sqrt(((x ** 2) @ (w.T ** 2))[0] * p / (1 - p) / 20000)
    assert (np.abs(mc_mean - eval_out) < 6 * se).all()
    # The same network in the course's form: unscaled mask in training, weights times (1 - p)
    # at inference. Its inference output equals inverted dropout's eval output when the
    # weights relate by w_inverted = (1 - p) w_course.
    w_course = w / (1 - p)
    assert_close((1 - p) * (x @ w_course.T), x @ w.T)


def test_dropout2d_zeroes_whole_channels():
    x = t64(np.ones((6, 10, 4, 5)), False)
    y = F.dropout2d(x, 0.5)._data
    per_channel = y.reshape(6, 10, -1)
    assert ((per_channel == 0).all(axis=2) | (per_channel == 2.0).all(axis=2)).all()
    assert 0 < (per_channel[:, :, 0] == 0).sum() < 60


def test_dropout2d_3d_input_warns_like_pytorch():
    x = t64(np.ones((2, 3, 4)), False)
    with pytest.warns(UserWarning, match=r"interpreted as shape \(N, C, L\)"):
        y = F.dropout2d(x, 0.5)
    assert ((y._data == 0).all(axis=2) | (y._data == 2.0).all(axis=2)).all()


@pytest.mark.parametrize("p", [-0.1, 1.5, "a", True])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(pydl.randn(2), p)
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(p)


def test_dropout_inplace():
    x = pydl.ones(20, 20)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x and set(np.unique(x._data)) <= {0.0, 2.0}


# -- Gaussian noise -------------------------------------------------------------------------------
def test_gaussian_noise_statistics_gradient_and_eval():
    x = t64(np.zeros((300, 200)))
    y = F.gaussian_noise(x, std=0.3)
    noise = y._data
    n = noise.size
    assert abs(noise.mean()) < 6 * 0.3 / math.sqrt(n)
    assert abs(noise.std() - 0.3) < 6 * 0.3 / math.sqrt(2 * n)
    (y * 2.0).sum().backward()
    assert_close(x.grad, np.full(x.shape, 2.0))
    x2 = pydl.randn(3, 3)
    assert F.gaussian_noise(x2, 0.3, training=False) is x2
    assert F.gaussian_noise(x2, 0.0) is x2
    assert F.gaussian_noise(pydl.randn(3, dtype=pydl.float32), 0.1).dtype == pydl.float32


def test_gaussian_noise_reproducible_and_checked():
    x = pydl.zeros(5)
    pydl.manual_seed(11)
    a = F.gaussian_noise(x, 1.0)._data.copy()
    pydl.manual_seed(11)
    assert np.array_equal(a, F.gaussian_noise(x, 1.0)._data)
    with pytest.raises(ValueError, match="non-negative"):
        F.gaussian_noise(x, -1.0)


# -- errors --------------------------------------------------------------------------------------
def test_activation_errors():
    with pytest.raises(TypeError, match="floating point"):
        F.relu(pydl.tensor([1, -2]))
    with pytest.raises(TypeError, match="pydl.Tensor"):
        F.gelu(np.ones(3))
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(pydl.randn(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(pydl.randn(3), approximate="fast")
    with pytest.raises(ValueError, match="beta"):
        F.softplus(pydl.randn(3), beta=0)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)


# -- modules ---------------------------------------------------------------------------------------
MODULES = [
    (nn.ReLU(), "relu"), (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"),
    (nn.Hardtanh(-0.5, 2.0), "hardtanh_0.5_2"), (nn.Softplus(2.0, 3.0), "softplus_beta2_thr3"),
    (nn.LeakyReLU(0.2), "leaky_relu_0.2"), (nn.ELU(0.5), "elu_0.5"), (nn.GELU(), "gelu"),
    (nn.GELU("tanh"), "gelu_tanh"), (nn.SiLU(), "silu"),
]


@pytest.mark.parametrize("module,name", MODULES, ids=[n for _, n in MODULES])
def test_modules_match_functional_reference(module, name, rng):
    x = rng.uniform(-3, 3, (4, 5))
    assert_close(module(t64(x, False)), _elementwise_ref(ACTIVATIONS[name][1])(x), rtol=1e-12,
                 atol=1e-14)
    assert list(module.parameters()) == []


def test_softmax_modules(rng):
    x = rng.standard_normal((3, 4, 5))
    assert_close(nn.Softmax(dim=1)(t64(x, False)), _softmax_ref(x, 1))
    assert_close(nn.LogSoftmax(dim=-1)(t64(x, False)), _log_softmax_ref(x, 2))


def test_dropout_modules_follow_train_and_eval():
    d = nn.Dropout(0.5)
    x = pydl.ones(30, 30)
    assert (d(x)._data == 0).any()
    d.eval()
    assert d(x) is x
    d2 = nn.Dropout2d(0.5).eval()
    x4 = pydl.ones(2, 3, 4, 4)
    assert d2(x4) is x4


def test_inplace_modules():
    x = pydl.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(x) is x
    assert_close(x, [0.0, 2.0])


@pytest.mark.parametrize("module,text", [
    (nn.ReLU(), "ReLU()"), (nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (nn.Sigmoid(), "Sigmoid()"), (nn.Tanh(), "Tanh()"),
    (nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"),
    (nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"), (nn.Softmax(1), "Softmax(dim=1)"),
    (nn.LogSoftmax(dim=1), "LogSoftmax(dim=1)"), (nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (nn.ELU(), "ELU(alpha=1.0)"), (nn.GELU(), "GELU(approximate='none')"),
    (nn.GELU("tanh"), "GELU(approximate='tanh')"), (nn.SiLU(), "SiLU()"),
    (nn.SiLU(True), "SiLU(inplace=True)"), (nn.Dropout(), "Dropout(p=0.5, inplace=False)"),
    (nn.Dropout2d(0.2), "Dropout2d(p=0.2, inplace=False)"),
    (nn.GaussianNoise(0.2), "GaussianNoise(std=0.2)"),
])
def test_module_reprs_match_pytorch(module, text):
    assert repr(module) == text


def test_no_warnings_in_normal_use(rng):
    x = t64(rng.standard_normal((3, 4)), False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, _ in ACTIVATIONS.values():
            fn(x)
        F.softmax(x, dim=1)
        F.dropout(x, 0.5)


def test_noncontiguous_gradients(rng):
    """A non-contiguous leaf (a transposed view) gets gradients of its own shape."""
    x_np = _away_from_kinks(rng.uniform(-3, 3, (4, 6)))
    for fn, ref in (ACTIVATIONS["gelu"], ACTIVATIONS["elu"], ACTIVATIONS["softplus"]):
        base = np.ascontiguousarray(x_np.T)
        x = pydl.from_numpy(base.T).requires_grad_()
        assert not x.is_contiguous()
        y = fn(x)
        assert_close(y, _elementwise_ref(ref)(x_np), rtol=1e-12, atol=1e-14)
        y.sum().backward()
        assert x.grad.shape == (4, 6)
        eps = 1e-6
        f = _elementwise_ref(ref)
        numeric = (f(x_np + eps) - f(x_np - eps)) / (2 * eps)
        assert_close(x.grad, numeric, rtol=1e-6, atol=1e-8)
