"""Elementwise ops: forward against float64 NumPy, backward through gradcheck, broadcasting
over random shapes (size-1 and size-0 dims), non-contiguous inputs, errors."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import pydl
from pydl.autograd import gradcheck
from pydl.testing import assert_close, noncontiguous


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (pydl.maximum, np.maximum),
    "minimum": (pydl.minimum, np.minimum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                            max_side=4))
def test_binary_broadcast_forward_and_grad(name, shapes):
    op, ref = BINARY[name]
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, shapes.input_shapes[0])
    b = rng.uniform(0.5, 2.0, shapes.input_shapes[1]) * rng.choice([-1, 1], shapes.input_shapes[1])
    out = op(t64(a, False), t64(b, False))
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    assert_close(out, ref(a, b))
    if out.numel() <= 64:
        assert gradcheck(op, [t64(a), t64(b)])


def test_binary_float32_keeps_dtype_and_matches_float64():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((3,))
    for name, (op, ref) in BINARY.items():
        out = op(pydl.tensor(a, dtype=pydl.float32), pydl.tensor(b, dtype=pydl.float32))
        assert out.dtype == pydl.float32, name
        assert_close(out, ref(a, b), rtol=1e-5, atol=1e-6)


def test_pow_both_arguments():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 2, (3, 4)), rng.uniform(-2, 2, (4,))
    assert_close(t64(a) ** t64(b), a ** b)
    assert gradcheck(lambda x, y: x ** y, [t64(a), t64(b)])
    assert gradcheck(lambda x: x ** 3, [t64(a)])
    assert gradcheck(lambda x: 2.0 ** x, [t64(b)])


def test_reflected_scalars():
    a = np.array([1.0, 2.0, 4.0])
    x = t64(a, False)
    assert_close(1 - x, 1 - a)
    assert_close(3 / x, 3 / a)
    assert_close(2 * x, 2 * a)
    assert_close(5 + x, 5 + a)
    assert_close(-x, -a)
    assert_close(abs(t64(-a, False)), a)


UNARY = {
    "exp": (pydl.exp, np.exp, (-2, 2)),
    "log": (pydl.log, np.log, (0.1, 3)),
    "sqrt": (pydl.sqrt, np.sqrt, (0.1, 3)),
    "rsqrt": (pydl.rsqrt, lambda x: 1 / np.sqrt(x), (0.1, 3)),
    "abs": (pydl.abs, np.abs, (-2, 2)),
    "sin": (pydl.sin, np.sin, (-3, 3)),
    "cos": (pydl.cos, np.cos, (-3, 3)),
    "tanh": (pydl.tanh, np.tanh, (-3, 3)),
    "sigmoid": (pydl.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-5, 5)),
    "relu": (pydl.relu, lambda x: np.maximum(x, 0), (-2, 2)),
    "neg": (pydl.neg, np.negative, (-2, 2)),
    "square": (pydl.square, np.square, (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(), (1,), (0, 3), (5,), (2, 3, 7)])
def test_unary_forward_and_grad(name, shape):
    op, ref, (lo, hi) = UNARY[name]
    rng = np.random.default_rng(3)
    a = rng.uniform(lo, hi, shape)
    if name in ("abs", "relu"):  # keep away from the kink, where the derivative is undefined
        a = np.where(np.abs(a) < 0.05, 0.5, a)
    assert_close(op(t64(a, False)), ref(a))
    assert gradcheck(op, [t64(a)])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_noncontiguous_input(name):
    op, ref, (lo, hi) = UNARY[name]
    a = np.random.default_rng(4).uniform(lo, hi, (4, 5)).astype(np.float32)
    nc = noncontiguous(a)
    assert not nc.flags.c_contiguous
    assert_close(op(pydl.from_numpy(nc)), ref(a.astype(np.float64)), rtol=1e-5, atol=1e-6)
    assert_close(op(pydl.from_numpy(a.T)), ref(a.T.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_sigmoid_is_stable_for_large_inputs():
    x = pydl.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = pydl.sigmoid(x).numpy()
    assert_close(y, [0.0, 1.9287498e-22, 0.5, 1.0, 1.0], rtol=1e-5, atol=0)


def test_clamp_forward_grad_and_inclusive_bounds():
    a = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    x = t64(a)
    y = pydl.clamp(x, -1.0, 1.0)
    assert_close(y, np.clip(a, -1, 1))
    y.sum().backward()
    assert_close(x.grad, [0, 1, 1, 1, 1, 0])
    assert_close(pydl.clamp(t64(a, False), min=0.0), np.maximum(a, 0))
    assert_close(pydl.clamp(t64(a, False), max=0.0), np.minimum(a, 0))
    with pytest.raises(ValueError, match="at least one"):
        pydl.clamp(x)


def test_maximum_splits_gradient_on_ties():
    a, b = t64([1.0, 2.0, 3.0]), t64([1.0, 1.0, 4.0])
    pydl.maximum(a, b).sum().backward()
    assert_close(a.grad, [0.5, 1.0, 0.0])
    assert_close(b.grad, [0.5, 0.0, 1.0])


def test_where_forward_and_grad():
    rng = np.random.default_rng(5)
    c = rng.random((3, 4)) > 0.5
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    cond = pydl.tensor(c)
    assert_close(pydl.where(cond, t64(a, False), t64(b, False)), np.where(c, a, b))
    assert gradcheck(lambda x, y: pydl.where(cond, x, y), [t64(a), t64(b)])
    assert_close(pydl.where(cond, t64(a, False), 0.0), np.where(c, a, 0.0))


def test_sign_has_zero_gradient():
    x = t64([-2.0, 0.0, 3.0])
    y = pydl.sign(x)
    assert_close(y, [-1, 0, 1])
    y.sum().backward()
    assert_close(x.grad, [0, 0, 0])


def test_comparisons_return_bool_without_grad():
    a = t64([1.0, 2.0, 3.0])
    for out, ref in [(a < 2, [True, False, False]), (a <= 2, [True, True, False]),
                     (a > 2, [False, False, True]), (a >= 2, [False, True, True]),
                     (a == 2, [False, True, False]), (a != 2, [True, False, True])]:
        assert out.dtype == pydl.bool
        assert not out.requires_grad
        assert out.tolist() == ref
    assert ((a > 1) & (a < 3)).tolist() == [False, True, False]
    assert ((a < 2) | (a > 2)).tolist() == [True, False, True]
    assert (~(a > 1)).tolist() == [True, False, False]


def test_device_and_dtype_errors_are_clear():
    with pytest.raises(TypeError, match="unsupported operand"):
        pydl.ones(2) + object()
    with pytest.raises(RuntimeError, match=r"size of tensor a \(2\) must match the size of "
                                           r"tensor b \(3\) at non-singleton dimension 0"):
        pydl.ones(2) + pydl.ones(3)  # torch's error and type


def test_integer_tensors_do_arithmetic_without_grad():
    a = pydl.tensor([1, 2, 3])
    assert a.dtype == pydl.int64
    assert (a * 2).tolist() == [2, 4, 6]
    with pytest.raises(RuntimeError, match="floating point"):
        a.requires_grad_()


def test_exp_log_identities_hold_in_float64():
    a = np.linspace(0.1, 5, 11)
    assert_close(pydl.log(pydl.exp(t64(a, False))), a)
    assert math.isclose(pydl.sqrt(t64([4.0], False)).item(), 2.0)
