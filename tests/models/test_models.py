"""pydl.models against float64 NumPy forward passes written here from the models' weights."""
import numpy as np
import pytest

import pydl
from pydl import models, nn
from pydl.autograd import gradcheck


def _np(t):
    return t.detach().numpy().astype(np.float64)


def ref_linear(x, layer):
    return x @ _np(layer.weight).T + _np(layer.bias)


def ref_conv2d(x, conv, stride=1, padding=0):
    """Cross-correlation by explicit sums over the kernel window (float64)."""
    w = _np(conv.weight)
    b = _np(conv.bias) if conv.bias is not None else np.zeros(w.shape[0])
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def ref_maxpool2(x):
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x):
    return np.maximum(x, 0)


def _linears(seq):
    return [m for m in seq if type(m).__name__ == "Linear"]


@pytest.mark.parametrize("sizes,activation", [([5, 7, 3], "relu"), ([4, 3], "tanh"),
                                              ([6, 11, 2, 5], "sigmoid")])
def test_mlp_forward_matches_reference(sizes, activation):
    model = models.MLP(sizes, activation, dropout=0.3)
    model.eval()  # dropout off
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, sizes[0])).astype(np.float32)
    out = model(pydl.from_numpy(x))
    act = {"relu": relu, "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[activation]
    ref = x.astype(np.float64)
    layers = _linears(model)
    assert len(layers) == len(sizes) - 1
    for i, layer in enumerate(layers):
        ref = ref_linear(ref, layer)
        if i < len(layers) - 1:
            ref = act(ref)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert sum(p.numel() for p in model.parameters()) == n_params
    n_dropout = sum(type(m).__name__ == "Dropout" for m in model)
    assert n_dropout == len(sizes) - 2


def test_mlp_flattens_images_and_gradchecks():
    model = models.MLP([12, 5, 3], "tanh").double()
    x = pydl.randn(2, 3, 2, 2, dtype=pydl.float64, requires_grad=True)
    assert model(x).shape == (2, 3)
    assert gradcheck(lambda inp: model(inp), (x,))
    with pytest.raises(ValueError, match="sizes"):
        models.MLP([5])
    with pytest.raises(ValueError, match="unknown activation"):
        models.MLP([5, 2], "swish!")
    with pytest.raises(ValueError, match="dropout"):
        models.MLP([5, 2], dropout=1.0)
    assert isinstance(models.MLP([3, 4, 2], nn.Tanh)[2], nn.Tanh)


def ref_lenet(model, x):
    convs = [m for m in model.features if type(m).__name__ == "Conv2d"]
    kinds = [type(m).__name__ for m in model.features]
    h = x
    for m, kind in zip(model.features, kinds):
        if kind == "Conv2d":
            h = ref_conv2d(h, m, padding=m.padding[0] if isinstance(m.padding, tuple)
                           else m.padding)
        elif kind == "ReLU":
            h = relu(h)
        elif kind == "MaxPool2d":
            h = ref_maxpool2(h)
    assert len(convs) == 2
    h = h.reshape(len(h), -1)
    fcs = _linears(model.classifier)
    for i, fc in enumerate(fcs):
        h = ref_linear(h, fc)
        if i < len(fcs) - 1:
            h = relu(h)
    return h


@pytest.mark.parametrize("size,in_ch,features,pools", [(8, 1, 256, 1), (28, 1, 400, 2),
                                                       (32, 3, 576, 2), (16, 1, 256, 2),
                                                       ((12, 20), 2, 16 * 4 * 8, 1)])
def test_lenet5_shapes_and_forward(size, in_ch, features, pools):
    model = models.LeNet5(in_ch, 10, input_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    fc1 = _linears(model.classifier)[0]
    assert fc1.in_features == features
    assert sum(type(m).__name__ == "MaxPool2d" for m in model.features) == pools
    x = np.random.default_rng(1).standard_normal((2, in_ch, h, w)).astype(np.float32)
    out = model(pydl.from_numpy(x))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.detach().numpy(), ref_lenet(model, x.astype(np.float64)),
                               rtol=1e-4, atol=1e-5)


def test_lenet5_classic_parameter_count():
    # LeNet-5 on 28x28 with padding 2: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706
    model = models.LeNet5(1, 10, input_size=28)
    assert sum(p.numel() for p in model.parameters()) == 61706
    with pytest.raises(ValueError, match="input_size"):
        models.LeNet5(input_size=0)


def test_small_vgg():
    model = models.SmallVGG(3, 10, input_size=16, widths=(8, 16))
    model.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    out = model(pydl.from_numpy(x))
    assert out.shape == (2, 10)
    # reference: conv (no bias) -> eval batch norm (running stats 0/1) -> relu, pool per block
    h = x.astype(np.float64)
    mods = list(model.features)
    i = 0
    while i < len(mods):
        kind = type(mods[i]).__name__
        if kind == "Conv2d":
            h = ref_conv2d(h, mods[i], padding=1)
        elif kind == "BatchNorm2d":
            bn = mods[i]
            h = (h - _np(bn.running_mean)[None, :, None, None]) / np.sqrt(
                _np(bn.running_var)[None, :, None, None] + bn.eps)
            h = h * _np(bn.weight)[None, :, None, None] + _np(bn.bias)[None, :, None, None]
        elif kind == "ReLU":
            h = relu(h)
        elif kind == "MaxPool2d":
            h = ref_maxpool2(h)
        i += 1
    h = h.reshape(2, -1)
    fc1, fc2 = _linears(model.classifier)
    ref = ref_linear(relu(ref_linear(h, fc1)), fc2)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    assert fc1.in_features == 16 * 4 * 4
    with pytest.raises(ValueError, match="divisible"):
        models.SmallVGG(input_size=20, widths=(8, 16, 32))
    no_bn = models.SmallVGG(1, 2, input_size=8, widths=(4,), batch_norm=False)
    assert not any(type(m).__name__ == "BatchNorm2d" for m in no_bn.modules())


def test_autoencoder_round_trip_shapes_and_forward():
    ae = models.Autoencoder([16, 8, 3])
    x = np.random.default_rng(3).random((5, 1, 4, 4)).astype(np.float32)
    out = ae(pydl.from_numpy(x))
    assert out.shape == x.shape
    z = ae.encode(pydl.from_numpy(x))
    assert z.shape == (5, 3)
    enc, dec = _linears(ae.encoder), _linears(ae.decoder)
    h = x.reshape(5, -1).astype(np.float64)
    h = ref_linear(relu(ref_linear(h, enc[0])), enc[1])
    np.testing.assert_allclose(z.detach().numpy(), h, rtol=1e-5, atol=1e-6)
    h = ref_linear(relu(ref_linear(h, dec[0])), dec[1])
    ref = 1 / (1 + np.exp(-h))
    np.testing.assert_allclose(out.detach().numpy().reshape(5, -1), ref, rtol=1e-5, atol=1e-6)
    assert [(m.in_features, m.out_features) for m in dec] == [(3, 8), (8, 16)]
    plain = models.Autoencoder([6, 2], output_activation=None)
    assert not any(type(m).__name__ == "Sigmoid" for m in plain.modules())


def test_conv_autoencoder_shapes():
    ae = models.ConvAutoencoder(1, widths=(4, 8))
    for hw in (8, 12):
        x = pydl.rand(2, 1, hw, hw)
        y = ae(x)
        assert y.shape == x.shape
        assert 0 <= y.detach().numpy().min() and y.detach().numpy().max() <= 1
    assert ae.encoder(pydl.rand(2, 1, 8, 8)).shape == (2, 8, 2, 2)
    with pytest.raises(ValueError, match="divisible"):
        ae(pydl.rand(1, 1, 6, 6))


def test_models_train_a_step():
    """Gradients reach every parameter of each model."""
    for model, x in ((models.LeNet5(1, 10, input_size=8), pydl.randn(3, 1, 8, 8)),
                     (models.SmallVGG(1, 10, input_size=8, widths=(4, 8)), pydl.randn(3, 1, 8, 8)),
                     (models.MLP([64, 16, 10], dropout=0.1), pydl.randn(3, 64))):
        loss = model(x).square().mean()
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.shape == p.shape, name
