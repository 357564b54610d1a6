"""pydl.nn.init: every initialiser against the formula it implements (bounds, means and
standard deviations of large draws within a few standard errors), orthogonality, gains, fans,
reproducibility and errors."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn as nn
from pydl.nn import init
from pydl.testing import assert_close


def empty(*shape, dtype=pydl.float64):
    return pydl.empty(*shape, dtype=dtype)


def check_uniform(values, low, high):
    """Inside [low, high], with the uniform's mean (low + high) / 2 and variance
    (high - low)^2 / 12, each within 6 standard errors."""
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    assert v.min() >= low and v.max() <= high
    width = high - low
    assert abs(v.mean() - (low + high) / 2) < 6 * width / math.sqrt(12 * n)
    # Var of (x - mu)^2 for a uniform: width^4 / 80 - (width^2 / 12)^2.
    var_se = math.sqrt((width ** 4 / 80 - (width ** 2 / 12) ** 2) / n)
    assert abs(v.var() - width ** 2 / 12) < 6 * var_se
    # Both ends are reached (not a narrower interval).
    assert v.min() < low + 0.01 * width and v.max() > high - 0.01 * width


def check_normal(values, mean, std):
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    assert abs(v.mean() - mean) < 6 * std / math.sqrt(n)
    assert abs(v.std() - std) < 6 * std / math.sqrt(2 * n)


def test_uniform_and_normal():
    t = init.uniform_(empty(200, 300), -0.5, 2.0)
    check_uniform(t._data, -0.5, 2.0)
    check_uniform(init.uniform_(empty(50000))._data, 0.0, 1.0)
    check_normal(init.normal_(empty(200, 300), 1.5, 0.3)._data, 1.5, 0.3)
    check_normal(init.normal_(empty(60000))._data, 0.0, 1.0)


def test_init_returns_the_tensor_in_place_and_keeps_dtype():
    t = empty(3, 4, dtype=pydl.float32)
    v = t._version
    assert init.normal_(t) is t
    assert t.dtype == pydl.float32 and t._version > v
    p = nn.Parameter(pydl.zeros(3, 4))
    init.uniform_(p)  # parameters (leaves requiring grad) are filled without autograd
    assert p.requires_grad and p.grad_fn is None and p._data.any()


def test_constant_zeros_ones_eye():
    assert np.array_equal(init.constant_(empty(2, 3), 0.7)._data, np.full((2, 3), 0.7))
    assert np.array_equal(init.zeros_(empty(4))._data, np.zeros(4))
    assert np.array_equal(init.ones_(empty(2, 2))._data, np.ones((2, 2)))
    for shape in ((3, 3), (2, 5), (5, 2)):
        expected = np.array([[1.0 if i == j else 0.0 for j in range(shape[1])]
                             for i in range(shape[0])])
        assert np.array_equal(init.eye_(empty(*shape))._data, expected)
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(empty(2, 2, 2))


@pytest.mark.parametrize("shape,fan_in,fan_out", [((5, 3), 3, 5), ((8, 4, 3, 3), 36, 72),
                                                  ((6, 2, 5), 10, 30), ((1, 1), 1, 1)], ids=str)
def test_fan_in_and_fan_out(shape, fan_in, fan_out):
    assert init._calculate_fan_in_and_fan_out(empty(*shape)) == (fan_in, fan_out)


def test_fan_of_a_vector_raises():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(empty(5))


def test_calculate_gain_table():
    # PyTorch's table: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
    # leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4.
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid"):
        assert init.calculate_gain(name) == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "big")


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier(gain):
    fan_in, fan_out = 300, 200
    bound = gain * math.sqrt(6 / (fan_in + fan_out))
    check_uniform(init.xavier_uniform_(empty(fan_out, fan_in), gain=gain)._data, -bound, bound)
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    check_normal(init.xavier_normal_(empty(fan_out, fan_in), gain=gain)._data, 0.0, std)
    # Conv weights: fans include the receptive field.
    w = init.xavier_uniform_(empty(16, 8, 5, 5), gain=gain)._data
    conv_bound = gain * math.sqrt(6 / (8 * 25 + 16 * 25))
    check_uniform(w, -conv_bound, conv_bound)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0),
                                            ("linear", 0)])
def test_kaiming(mode, nonlinearity, a):
    shape = (250, 150)
    fan = 150 if mode == "fan_in" else 250
    gain = init.calculate_gain(nonlinearity, a if nonlinearity == "leaky_relu" else None)
    bound = gain * math.sqrt(3 / fan)
    w = init.kaiming_uniform_(empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    check_uniform(w._data, -bound, bound)
    w = init.kaiming_normal_(empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)
    check_normal(w._data, 0.0, gain / math.sqrt(fan))


def test_kaiming_default_layer_rule_gives_one_over_sqrt_fan_in():
    # kaiming_uniform_(w, a=sqrt(5)): gain sqrt(2 / 6), bound = gain sqrt(3 / fan_in)
    # = 1 / sqrt(fan_in), the bound every default Linear/Conv weight uses.
    w = init.kaiming_uniform_(empty(400, 100), a=math.sqrt(5))
    check_uniform(w._data, -0.1, 0.1)


def test_kaiming_errors_and_empty():
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(empty(3, 3), mode="fan_avg")
    t = empty(0, 3)
    assert init.kaiming_uniform_(t) is t
    assert init.kaiming_normal_(t) is t


def test_lecun_normal():
    check_normal(init.lecun_normal_(empty(300, 120))._data, 0.0, 1 / math.sqrt(120))
    check_normal(init.lecun_normal_(empty(40, 6, 3, 3))._data, 0.0, 1 / math.sqrt(54))


@pytest.mark.parametrize("shape", [(6, 6), (3, 8), (8, 3), (4, 2, 3, 3), (1, 5)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape, gain):
    w = init.orthogonal_(empty(*shape), gain=gain)._data
    rows = shape[0]
    flat = w.reshape(rows, -1)
    cols = flat.shape[1]
    if rows <= cols:
        assert_close(flat @ flat.T, gain ** 2 * np.eye(rows), atol=1e-10)
    else:
        assert_close(flat.T @ flat, gain ** 2 * np.eye(cols), atol=1e-10)


def test_orthogonal_is_random_and_reproducible():
    pydl.manual_seed(3)
    a = init.orthogonal_(empty(5, 5))._data.copy()
    b = init.orthogonal_(empty(5, 5))._data
    assert not np.allclose(a, b)
    pydl.manual_seed(3)
    assert np.array_equal(a, init.orthogonal_(empty(5, 5))._data)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(empty(4))


def test_generator_argument_gives_an_independent_stream():
    g1 = pydl.Generator().manual_seed(9)
    g2 = pydl.Generator().manual_seed(9)
    a = init.normal_(empty(10), generator=g1)._data
    b = init.normal_(empty(10), generator=g2)._data
    assert np.array_equal(a, b)


def test_default_layer_initialisations_follow_pytorch():
    """Linear/Bilinear: U(+-1/sqrt(in)) weights and biases; Embedding: N(0, 1)."""
    lin = nn.Linear(64, 500)
    check_uniform(lin.weight._data, -1 / 8, 1 / 8)
    bil = nn.Bilinear(16, 10, 400)
    check_uniform(bil.weight._data, -0.25, 0.25)
    check_normal(nn.Embedding(500, 100).weight._data, 0.0, 1.0)
