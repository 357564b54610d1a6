"""pydl.nn.utils: clip_grad_norm_ / get_total_norm / clip_grad_value_ against NumPy (norms from
their definition), and the L1/L2 penalties (values, bias skipping, gradcheck)."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.autograd import gradcheck
from pydl.nn.utils import (clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_,
                           get_total_norm, l1_penalty, l2_penalty)

SHAPES = [(3, 5), (7,), (), (1,), (0, 4), (40013,), (2, 3, 5)]


def params_with_grads(seed, dtype=np.float32, shapes=SHAPES, scale=1.0):
    rng = np.random.default_rng(seed)
    params = []
    for s in shapes:
        p = nn.Parameter(pydl.tensor(np.zeros(s, dtype)))
        p.grad = pydl.tensor(np.asarray(scale * rng.standard_normal(s), dtype=dtype))
        params.append(p)
    return params


def numpy_total_norm(grads, p):
    """The p-norm of all entries together, straight from the definition, in float64."""
    a = np.abs(np.concatenate([g.ravel() for g in grads]).astype(np.float64))
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    return np.sum(a ** p) ** (1.0 / p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, -math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_clip_grad_norm(dtype, norm_type, max_norm):
    params = params_with_grads(0, dtype, scale=2.0)
    grads = [p.grad._data.copy() for p in params]
    p = float(norm_type)
    total = numpy_total_norm(grads, p)
    result = clip_grad_norm_(params, max_norm, norm_type)
    assert result.shape == () and result.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(result), total, rtol=rtol)
    coef = min(max_norm / (total + 1e-6), 1.0)
    for prm, g in zip(params, grads):
        np.testing.assert_allclose(prm.grad._data, g * coef, rtol=rtol, atol=1e-30)
    if max_norm == 1.0 and p > 0:
        assert numpy_total_norm([prm.grad._data for prm in params], p) <= 1.0 + 1e-5


def test_clip_grad_norm_zero_norm_type_counts_nonzero_tensors_like_pytorch():
    params = params_with_grads(1, shapes=[(3,), (2,), (4,)])
    params[1].grad._data[...] = 0
    assert float(get_total_norm([p.grad for p in params], 0)) == 2.0


def test_clip_grad_norm_skips_params_without_grad_and_accepts_a_tensor():
    params = params_with_grads(2, shapes=[(4,), (3,)])
    params[1].grad = None
    g = params[0].grad._data.copy()
    total = clip_grad_norm_(params, 0.5)
    np.testing.assert_allclose(float(total), np.linalg.norm(g), rtol=1e-6)
    assert params[1].grad is None
    single = params_with_grads(3, shapes=[(5,)])[0]
    g = single.grad._data.copy()
    clip_grad_norm_(single, 0.1)
    np.testing.assert_allclose(single.grad._data, g * 0.1 / (np.linalg.norm(g) + 1e-6), rtol=1e-5)
    assert float(clip_grad_norm_([], 1.0)) == 0.0


def test_clip_grad_norm_nonfinite():
    params = params_with_grads(4, shapes=[(4,), (3,)])
    params[1].grad._data[1] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    params[1].grad._data[1] = np.nan
    total = clip_grad_norm_(params, 1.0)
    assert math.isnan(float(total))
    assert np.isnan(params[0].grad._data).all()  # scaled by NaN, as PyTorch does


def test_clip_grad_norm_handles_non_contiguous_and_read_only_grads():
    p = nn.Parameter(pydl.tensor(np.zeros((3, 4))))
    g = np.arange(12.0).reshape(4, 3).T  # non-contiguous
    p.grad = pydl.tensor(np.zeros(1))
    p.grad._data = g
    q = nn.Parameter(pydl.tensor(np.zeros(3)))
    q.grad = pydl.tensor(np.zeros(1))
    q.grad._data = np.broadcast_to(np.array([1.0]), (3,))  # read-only
    expected_total = np.sqrt(np.sum(g ** 2) + 3.0)
    total = clip_grad_norm_([p, q], 1.0)
    np.testing.assert_allclose(float(total), expected_total, rtol=1e-12)
    np.testing.assert_allclose(p.grad._data, g / (expected_total + 1e-6), rtol=1e-12)
    np.testing.assert_allclose(q.grad._data, np.ones(3) / (expected_total + 1e-6), rtol=1e-12)


def test_clip_grads_with_norm_uses_the_given_norm():
    params = params_with_grads(5, shapes=[(4,)])
    g = params[0].grad._data.copy()
    clip_grads_with_norm_(params, 1.0, 4.0)
    np.testing.assert_allclose(params[0].grad._data, g * (1.0 / (4.0 + 1e-6)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value(dtype):
    params = params_with_grads(6, dtype, scale=3.0)
    params[0].grad._data[0, 0] = np.nan
    grads = [p.grad._data.copy() for p in params]
    assert clip_grad_value_(params, 0.7) is None
    for p, g in zip(params, grads):
        expected = np.where(np.isnan(g), np.nan, np.clip(g, -0.7, 0.7)).astype(dtype)
        np.testing.assert_array_equal(p.grad._data, expected)


def test_clip_rejects_integer_grads():
    p = nn.Parameter(pydl.tensor(np.zeros(3)))
    p.grad = pydl.tensor(np.zeros(1))
    p.grad._data = np.zeros(3, np.int64)
    with pytest.raises(TypeError, match="float32 or float64"):
        clip_grad_value_([p], 1.0)


# ---- penalties -------------------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(7)
        self.fc1_weight = nn.Parameter(pydl.tensor(rng.standard_normal((3, 4))))
        self.bias = nn.Parameter(pydl.tensor(rng.standard_normal(3)))
        self.inner = nn.Module()
        self.inner.weight = nn.Parameter(pydl.tensor(rng.standard_normal((2, 3))))
        self.inner.bias = nn.Parameter(pydl.tensor(rng.standard_normal(2)))


def test_penalties_skip_biases_by_default():
    m = TwoLayer()
    w1, b1, w2, b2 = (m.fc1_weight._data, m.bias._data, m.inner.weight._data, m.inner.bias._data)
    np.testing.assert_allclose(float(l2_penalty(m, alpha=0.3)),
                               0.15 * (np.sum(w1 ** 2) + np.sum(w2 ** 2)), rtol=1e-12)
    np.testing.assert_allclose(float(l2_penalty(m, alpha=0.3, include_bias=True)),
                               0.15 * sum(np.sum(x ** 2) for x in (w1, b1, w2, b2)), rtol=1e-12)
    np.testing.assert_allclose(float(l1_penalty(m, alpha=0.2)),
                               0.2 * (np.abs(w1).sum() + np.abs(w2).sum()), rtol=1e-12)
    np.testing.assert_allclose(float(l1_penalty([m.bias])), np.abs(b1).sum(), rtol=1e-12)


def test_l2_penalty_gradient_is_sgd_weight_decay():
    m = TwoLayer()
    l2_penalty(m, alpha=0.5).backward()
    np.testing.assert_allclose(m.fc1_weight.grad._data, 0.5 * m.fc1_weight._data, rtol=1e-12)
    np.testing.assert_allclose(m.inner.weight.grad._data, 0.5 * m.inner.weight._data, rtol=1e-12)
    assert m.bias.grad is None and m.inner.bias.grad is None


def test_penalty_gradcheck():
    rng = np.random.default_rng(8)
    a = pydl.tensor(rng.standard_normal((3, 2)), dtype=pydl.float64, requires_grad=True)
    b = pydl.tensor(rng.standard_normal(5) + 0.5, dtype=pydl.float64, requires_grad=True)
    assert gradcheck(lambda x, y: l2_penalty([x, y], alpha=0.7), (a, b))
    assert gradcheck(lambda x, y: l1_penalty([x, y], alpha=1.3), (a, b))


def test_penalty_of_nothing_is_zero():
    assert float(l2_penalty([])) == 0.0
