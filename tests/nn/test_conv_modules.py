"""Conv / pooling modules: shapes, PyTorch's default initialisation, padding modes, repr."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F


def arr(x):
    return x.detach().numpy()


def ref_conv2d_valid(x, w, b):
    """Unpadded stride-1 cross-correlation, for checking padding_mode (the padding is explicit)."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    y = np.zeros((N, K, H - R + 1, W - S + 1))
    for r in range(R):
        for s in range(S):
            y += np.einsum("nchw,kc->nkhw", x[:, :, r:r + H - R + 1, s:s + W - S + 1], w[:, :, r, s])
    return y + b[None, :, None, None]


def test_conv2d_module_default_init_matches_pytorch_bounds():
    pydl.manual_seed(0)
    m = nn.Conv2d(16, 32, (3, 5), groups=2)
    assert m.weight.shape == (32, 8, 3, 5) and m.bias.shape == (32,)
    bound = 1 / math.sqrt(8 * 3 * 5)  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ...)
    w, b = arr(m.weight), arr(m.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # std of U(-a, a) is a / sqrt(3)
    assert w.dtype == np.float32
    t = nn.ConvTranspose2d(6, 4, 3)
    assert t.weight.shape == (6, 4, 3, 3)  # (in, out / groups, k, k)
    assert np.abs(arr(t.bias)).max() <= 1 / math.sqrt(4 * 9)
    assert nn.Conv1d(3, 5, 4, bias=False).bias is None


def test_conv_module_forward_shapes_and_repr():
    x = pydl.randn(2, 3, 11, 10)
    m = nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=1)
    assert m(x).shape == (2, 8, 6, 5)
    assert repr(m) == "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))"
    assert nn.Conv2d(3, 8, 3, padding="same")(x).shape == (2, 8, 11, 10)
    assert nn.Conv1d(3, 4, 5, padding=2)(pydl.randn(2, 3, 9)).shape == (2, 4, 9)
    assert nn.ConvTranspose2d(3, 2, 3, stride=2)(x).shape == (2, 2, 23, 21)
    assert nn.ConvTranspose1d(3, 2, 4, stride=3, output_padding=1)(pydl.randn(1, 3, 5)).shape \
        == (1, 2, 17)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_conv2d_padding_modes(mode, padding):
    rng = np.random.default_rng(0)
    m = nn.Conv2d(2, 3, (3, 4) if padding == "same" else 3, padding=padding, padding_mode=mode)
    m.double()
    x = rng.standard_normal((2, 2, 6, 7))
    y = m(pydl.tensor(x))
    R, S = m.kernel_size
    if padding == "same":
        pads = [((R - 1) // 2, R - 1 - (R - 1) // 2), ((S - 1) // 2, S - 1 - (S - 1) // 2)]
    else:
        p = (padding, padding) if isinstance(padding, int) else padding
        pads = [(p[0], p[0]), (p[1], p[1])]
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads, mode=np_mode)
    np.testing.assert_allclose(arr(y), ref_conv2d_valid(xp, arr(m.weight), arr(m.bias)),
                               rtol=1e-10, atol=1e-12)
    assert f"padding_mode={mode}" in repr(m)


def test_conv_transpose2d_output_size():
    m = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = pydl.randn(1, 3, 5, 5)
    assert m(x).shape == (1, 2, 9, 9)
    assert m(x, output_size=(10, 9)).shape == (1, 2, 10, 9)
    # Upsampling back to the size a strided conv came from.
    down = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    z = pydl.randn(1, 2, 10, 10)
    assert m(down(z), output_size=z.shape).shape == z.shape
    with pytest.raises(ValueError, match="valid sizes"):
        m(x, output_size=(12, 9))


def test_conv_modules_train_end_to_end():
    # A conv -> pool -> bn -> conv stack: gradients reach every parameter with the right shape.
    pydl.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4),
                        nn.Conv2d(4, 2, 3), nn.AdaptiveAvgPool2d(1))
    x = pydl.randn(3, 1, 8, 8)
    net(x).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_module_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match='Only "zeros"'):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="has 2 channels"):
        nn.Conv2d(3, 4, 3)(pydl.randn(1, 2, 5, 5))


def test_pooling_modules():
    rng = np.random.default_rng(2)
    x = pydl.tensor(rng.standard_normal((2, 3, 8, 7)))
    y, idx = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(x)
    y2, idx2 = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(arr(y), arr(y2))
    np.testing.assert_array_equal(idx.numpy(), idx2.numpy())
    assert nn.MaxPool2d(2, ceil_mode=True)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(2)(x).shape == (2, 3, 4, 3)
    np.testing.assert_allclose(arr(nn.AvgPool2d(2, divisor_override=1)(x)),
                               arr(F.avg_pool2d(x, 2)) * 4, rtol=1e-12)
    assert nn.AdaptiveAvgPool2d((2, None))(x).shape == (2, 3, 2, 7)
    x1 = pydl.tensor(rng.standard_normal((2, 3, 9)))
    assert nn.MaxPool1d(2)(x1).shape == (2, 3, 4)
    assert nn.AvgPool1d(3, stride=2, padding=1)(x1).shape == (2, 3, 5)
    assert nn.AdaptiveAvgPool1d(4)(x1).shape == (2, 3, 4)
    assert "kernel_size=2" in repr(nn.MaxPool2d(2))
