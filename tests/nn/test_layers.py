"""Layers: Linear, Bilinear, Identity, Flatten, Unflatten, Embedding, GaussianNoise and weight
noise. Forward against float64 references written here (loops / einsum), gradients through
gradcheck, PyTorch's default initialisations, reprs, errors."""
import copy
import math
import pickle

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.autograd import gradcheck as _gradcheck
from pydl.testing import assert_close, noncontiguous


def gradcheck(fn, inputs):
    return _gradcheck(fn, inputs, atol=1e-8, rtol=1e-6)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def as_param64(module):
    """Make a module's parameters float64 leaves (for gradcheck)."""
    return module.double()


# -- Linear --------------------------------------------------------------------------------------
def linear_ref(x, w, b):
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape[:-1] + (w.shape[0],))
    for idx in np.ndindex(x.shape[:-1]):
        for o in range(w.shape[0]):
            out[idx + (o,)] = math.fsum(x[idx + (i,)] * w[o, i] for i in range(w.shape[1])) + \
                (b[o] if b is not None else 0.0)
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_f,out_f,batch", [(4, 3, (5,)), (1, 1, (1,)), (7, 2, (2, 3)),
                                              (3, 5, (0,)), (6, 4, ())], ids=str)
def test_linear_forward_and_grad(in_f, out_f, batch, bias, rng):
    layer = nn.Linear(in_f, out_f, bias=bias).double()
    x = rng.standard_normal(batch + (in_f,))
    w = layer.weight._data
    b = layer.bias._data if bias else None
    out = layer(t64(x, False))
    assert out.shape == batch + (out_f,)
    assert_close(out, linear_ref(x, w, b), rtol=1e-12, atol=1e-12)
    if x.size:
        params = [layer.weight] + ([layer.bias] if bias else [])
        assert gradcheck(lambda xx, *ps: F.linear(xx, *ps), [t64(x)] + params)


def test_linear_noncontiguous_input_and_float32(rng):
    layer = nn.Linear(6, 3)
    assert layer.weight.dtype == pydl.float32 and layer.bias.dtype == pydl.float32
    x = rng.standard_normal((4, 6))
    w, b = layer.weight._data.astype(np.float64), layer.bias._data.astype(np.float64)
    xin = pydl.from_numpy(noncontiguous(x.astype(np.float32)))
    assert not xin.is_contiguous()
    out = layer(xin)
    assert out.dtype == pydl.float32
    assert_close(out, linear_ref(x, w, b), rtol=1e-5, atol=1e-6)


def test_linear_default_init_matches_pytorch_bounds():
    """kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)); the bias too."""
    layer = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)
    w, b = layer.weight._data, layer.bias._data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # Uniform on [-bound, bound]: variance bound^2 / 3; 20000 draws pin it within a few %.
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.05
    assert np.abs(w).max() > 0.99 * bound
    pydl.manual_seed(5)
    a = nn.Linear(3, 2).weight._data.copy()
    pydl.manual_seed(5)
    assert np.array_equal(a, nn.Linear(3, 2).weight._data)


def test_linear_zero_in_features_and_dtype_argument():
    layer = nn.Linear(0, 3)
    out = layer(pydl.zeros(2, 0))
    assert out.shape == (2, 3)
    assert_close(out, np.broadcast_to(layer.bias._data, (2, 3)))
    assert np.array_equal(layer.bias._data, np.zeros(3))  # bound 0 when fan_in is 0
    assert nn.Linear(2, 2, dtype=pydl.float64).weight.dtype == pydl.float64


def test_linear_repr_state_and_errors():
    layer = nn.Linear(4, 3)
    assert repr(layer) == "Linear(in_features=4, out_features=3, bias=True)"
    assert repr(nn.Linear(2, 1, bias=False)) == "Linear(in_features=2, out_features=1, bias=False)"
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Linear(2, 1, bias=False).bias is None
    assert list(nn.Linear(2, 1, bias=False).state_dict()) == ["weight"]
    with pytest.raises(RuntimeError, match="in_features=4"):
        layer(pydl.randn(2, 5))
    with pytest.raises(ValueError, match="in_features must be a non-negative int"):
        nn.Linear(-1, 3)
    with pytest.raises(TypeError, match="floating point"):
        nn.Linear(2, 2, dtype=pydl.int64)


# -- Bilinear ------------------------------------------------------------------------------------
def bilinear_ref(x1, x2, w, b):
    out = np.zeros(x1.shape[:-1] + (w.shape[0],))
    for idx in np.ndindex(x1.shape[:-1]):
        for o in range(w.shape[0]):
            out[idx + (o,)] = math.fsum(x1[idx + (i,)] * w[o, i, j] * x2[idx + (j,)]
                                        for i in range(w.shape[1]) for j in range(w.shape[2]))
            if b is not None:
                out[idx + (o,)] += b[o]
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(3,), (1,), (2, 2), (0,)], ids=str)
def test_bilinear_forward_and_grad(batch, bias, rng):
    layer = nn.Bilinear(3, 2, 4, bias=bias).double()
    x1 = rng.standard_normal(batch + (3,))
    x2 = rng.standard_normal(batch + (2,))
    out = layer(t64(x1, False), t64(x2, False))
    assert out.shape == batch + (4,)
    b = layer.bias._data if bias else None
    assert_close(out, bilinear_ref(x1, x2, layer.weight._data, b), rtol=1e-12, atol=1e-12)
    if x1.size:
        params = [layer.weight] + ([layer.bias] if bias else [None])
        assert gradcheck(F.bilinear, [t64(x1), t64(x2)] + params)


def test_bilinear_init_repr_and_errors():
    layer = nn.Bilinear(25, 3, 200)
    bound = 1 / math.sqrt(25)
    assert np.abs(layer.weight._data).max() <= bound and np.abs(layer.bias._data).max() <= bound
    assert abs(layer.weight._data.var() / (bound ** 2 / 3) - 1) < 0.05
    assert repr(nn.Bilinear(2, 3, 4)) == \
        "Bilinear(in1_features=2, in2_features=3, out_features=4, bias=True)"
    with pytest.raises(ValueError, match="same leading dims"):
        nn.Bilinear(2, 3, 4)(pydl.randn(2, 2), pydl.randn(3, 3))
    with pytest.raises(ValueError, match="do not match weight"):
        nn.Bilinear(2, 3, 4)(pydl.randn(2, 3), pydl.randn(2, 3))


# -- Identity, Flatten, Unflatten ----------------------------------------------------------------
def test_identity_returns_its_input():
    x = pydl.randn(2, 3)
    assert nn.Identity(54, unused="x")(x) is x
    assert repr(nn.Identity()) == "Identity()"


@pytest.mark.parametrize("shape,start,end,expected", [
    ((2, 3, 4, 5), 1, -1, (2, 60)), ((2, 3, 4, 5), 0, -1, (120,)), ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
    ((3, 1), 1, -1, (3, 1)), ((0, 4, 2), 1, -1, (0, 8)),
], ids=str)
def test_flatten(shape, start, end, expected, rng):
    x = rng.standard_normal(shape)
    out = nn.Flatten(start, end)(t64(x, False))
    assert out.shape == expected
    assert_close(out, x.reshape(expected))
    if x.size:
        assert gradcheck(nn.Flatten(start, end), [t64(x)])


def test_unflatten_and_roundtrip(rng):
    x = rng.standard_normal((2, 12))
    out = nn.Unflatten(1, (3, 4))(t64(x, False))
    assert out.shape == (2, 3, 4)
    assert_close(out, x.reshape(2, 3, 4))
    assert nn.Unflatten(1, (2, -1))(t64(x, False)).shape == (2, 2, 6)
    assert nn.Unflatten(-1, [3, 2, 2])(t64(x, False)).shape == (2, 3, 2, 2)
    back = nn.Flatten()(nn.Unflatten(1, (3, 4))(t64(x, False)))
    assert_close(back, x)
    assert gradcheck(nn.Unflatten(1, (3, 4)), [t64(x)])
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Unflatten(1, (2, 3))) == "Unflatten(dim=1, unflattened_size=(2, 3))"
    with pytest.raises(RuntimeError, match="invalid"):
        nn.Unflatten(1, (5, 3))(pydl.randn(2, 12))
    with pytest.raises(TypeError, match="tuple of ints"):
        nn.Unflatten(1, 12)


# -- Embedding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (2, 3), (1,), (0,), (2, 0, 3), ()], ids=str)
def test_embedding_forward_and_grad(shape, rng):
    emb = nn.Embedding(7, 3).double()
    idx = rng.integers(0, 7, shape)
    out = emb(pydl.tensor(idx))
    assert out.shape == shape + (3,)
    expected = np.zeros(shape + (3,))
    for pos in np.ndindex(shape):
        expected[pos] = emb.weight._data[idx[pos]]
    assert_close(out, expected)
    if idx.size:
        assert gradcheck(lambda w: F.embedding(pydl.tensor(idx), w), [emb.weight])


def test_embedding_gradient_accumulates_repeated_rows(rng):
    emb = nn.Embedding(5, 2).double()
    idx = np.array([[1, 3, 1], [1, 0, 3]])
    g = rng.standard_normal((2, 3, 2))
    (emb(pydl.tensor(idx)) * t64(g, False)).sum().backward()
    expected = np.zeros((5, 2))
    for pos in np.ndindex(idx.shape):
        expected[idx[pos]] += g[pos]
    assert_close(emb.weight.grad, expected)


def test_embedding_padding_idx(rng):
    emb = nn.Embedding(6, 4, padding_idx=2)
    assert np.array_equal(emb.weight._data[2], np.zeros(4))
    idx = pydl.tensor([[2, 1, 2], [5, 2, 0]])
    emb(idx).sum().backward()
    assert np.array_equal(emb.weight.grad._data[2], np.zeros(4))
    assert_close(emb.weight.grad._data[1], np.ones(4))
    assert nn.Embedding(6, 4, padding_idx=-1).padding_idx == 5
    assert repr(emb) == "Embedding(6, 4, padding_idx=2)"
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(6, 4, padding_idx=6)


def test_embedding_scale_grad_by_freq(rng):
    emb = nn.Embedding(4, 2, scale_grad_by_freq=True).double()
    idx = np.array([0, 0, 0, 2, 3, 3])
    g = rng.standard_normal((6, 2))
    (emb(pydl.tensor(idx)) * t64(g, False)).sum().backward()
    counts = np.bincount(idx, minlength=4)
    expected = np.zeros((4, 2))
    for k, row in enumerate(idx):
        expected[row] += g[k] / counts[row]
    assert_close(emb.weight.grad, expected)


def test_embedding_max_norm_renormalises_rows_in_place():
    w = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [1.0, 0.0]])
    emb = nn.Embedding.from_pretrained(pydl.tensor(w), max_norm=1.0)
    out = emb(pydl.tensor([0, 1, 0]))
    # Rows read whose norm exceeds 1 are scaled to norm 1 (PyTorch's 1e-7 guard included).
    assert_close(out._data[0], np.array([3.0, 4.0]) / (5 + 1e-7), rtol=1e-12)
    assert_close(out._data[1], [0.3, 0.4])
    assert_close(emb.weight._data[0], np.array([3.0, 4.0]) / (5 + 1e-7), rtol=1e-12)
    assert_close(emb.weight._data[2], [6.0, 8.0])  # not looked up: unchanged
    emb_inf = nn.Embedding.from_pretrained(pydl.tensor(w), max_norm=2.0, norm_type=float("inf"))
    emb_inf(pydl.tensor([2]))
    assert_close(emb_inf.weight._data[2], np.array([6.0, 8.0]) * 2 / (8 + 1e-7), rtol=1e-12)


def test_embedding_from_pretrained_and_init(rng):
    w = rng.standard_normal((4, 3))
    frozen = nn.Embedding.from_pretrained(pydl.tensor(w))
    assert not frozen.weight.requires_grad
    assert_close(frozen(pydl.tensor([3, 0])), w[[3, 0]])
    assert nn.Embedding.from_pretrained(pydl.tensor(w), freeze=False).weight.requires_grad
    big = nn.Embedding(300, 200)
    assert abs(big.weight._data.mean()) < 0.01 and abs(big.weight._data.std() - 1) < 0.01


def test_embedding_errors():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="out of range"):
        emb(pydl.tensor([0, 5]))
    with pytest.raises(IndexError, match="out of range"):
        emb(pydl.tensor([-1]))
    with pytest.raises(TypeError, match="integer indices"):
        emb(pydl.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="sparse"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(ValueError, match="2-D"):
        F.embedding(pydl.tensor([0]), pydl.randn(5))
    with pytest.raises(ValueError, match="_weight shape"):
        nn.Embedding(5, 2, _weight=pydl.randn(4, 2))


# -- noise ---------------------------------------------------------------------------------------
def test_gaussian_noise_module_train_and_eval():
    layer = nn.GaussianNoise(0.5)
    x = pydl.zeros(400, 100)
    y = layer(x)
    assert abs(y._data.std() - 0.5) < 0.01
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="non-negative"):
        nn.GaussianNoise(-0.1)


def test_weight_noise_perturbs_the_weight_in_training_only(rng):
    layer = nn.Linear(4, 3).double()
    w0 = layer.weight._data.copy()
    nn.add_weight_noise(layer, "weight", std=0.1)
    x = rng.standard_normal((5, 4))
    pydl.manual_seed(21)
    out = layer(t64(x, False))
    pydl.manual_seed(21)
    eps = pydl.random.generator().standard_normal(w0.shape) * 0.1
    assert_close(out, linear_ref(x, w0 + eps, layer.bias._data), rtol=1e-12)
    # The clean parameter is back after the call, and nothing else changed.
    assert np.array_equal(layer.weight._data, w0)
    assert isinstance(layer.weight, nn.Parameter)
    assert list(layer.state_dict()) == ["weight", "bias"]
    # Evaluation mode uses the clean weight.
    layer.eval()
    assert_close(layer(t64(x, False)), linear_ref(x, w0, layer.bias._data), rtol=1e-12)


def test_weight_noise_gradient_reaches_the_clean_parameter(rng):
    layer = nn.Linear(3, 2).double()
    nn.add_weight_noise(layer, std=0.2)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))
    (layer(t64(x, False)) * t64(g, False)).sum().backward()
    # d/dW of sum(g * (x (W + eps)^T + b)) = g^T x, whatever eps was.
    assert_close(layer.weight.grad, g.T @ x, rtol=1e-12)
    assert_close(layer.bias.grad, g.sum(0), rtol=1e-12)


def test_weight_noise_restores_after_an_error_and_can_be_removed():
    layer = nn.Linear(3, 2)
    nn.add_weight_noise(layer, std=0.1)
    weight = layer.weight
    with pytest.raises(RuntimeError):
        layer(pydl.randn(2, 5))
    assert layer.weight is weight
    nn.remove_weight_noise(layer)
    x = pydl.randn(2, 3)
    assert_close(layer(x), x._data @ weight._data.T + layer.bias._data)
    with pytest.raises(ValueError, match="no weight noise"):
        nn.remove_weight_noise(layer)
    with pytest.raises(ValueError, match="has no parameter 'kernel'"):
        nn.add_weight_noise(layer, "kernel")
    with pytest.raises(ValueError, match="non-negative"):
        nn.add_weight_noise(layer, std=-1.0)


def test_weight_noise_survives_deepcopy_and_pickle(rng):
    layer = nn.add_weight_noise(nn.Linear(3, 2).double(), std=0.0)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        clone.weight._data[...] = 0.0
        x = rng.standard_normal((2, 3))
        # std 0: the clone's own (zeroed) weight is used, not the original's.
        assert_close(clone(t64(x, False)), np.broadcast_to(clone.bias._data, (2, 2)))
    assert np.abs(layer.weight._data).sum() > 0


def test_noise_in_a_model_for_inputs_hidden_units_and_weights(rng):
    model = nn.Sequential(nn.GaussianNoise(0.1), nn.Linear(4, 8), nn.ReLU(),
                          nn.GaussianNoise(0.1), nn.Linear(8, 2))
    nn.add_weight_noise(model[1], std=0.05)
    x = pydl.tensor(rng.standard_normal((3, 4)), dtype=pydl.float32)
    a, b = model(x)._data, model(x)._data
    assert not np.array_equal(a, b)
    model.eval()
    assert np.array_equal(model(x)._data, model(x)._data)
    loss = model.train()(x).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
