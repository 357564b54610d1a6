"""PyTorch as a second reference for conv, pooling and batch norm (forward, gradients, running
statistics, ceil_mode edge cases). Skipped where torch is not installed."""
import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def both(a, requires_grad=True):
    return (pydl.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def check_grads(pairs):
    for p, t in pairs:
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(dilation=2, groups=2),
                                dict(padding="same", dilation=(1, 2)), dict(stride=(1, 3))])
def test_conv2d_matches_torch(kw):
    rng = np.random.default_rng(0)
    (x, tx), (w, tw), (b, tb) = both(rng.standard_normal((2, 4, 9, 10))), \
        both(rng.standard_normal((6, 4 // kw.get("groups", 1), 3, 3))), both(rng.standard_normal(6))
    y, ty = F.conv2d(x, w, b, **kw), TF.conv2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(ty.shape)
    y.backward(pydl.tensor(g))
    ty.backward(torch.tensor(g))
    check_grads([(x, tx), (w, tw), (b, tb)])


def test_conv_transpose2d_matches_torch():
    rng = np.random.default_rng(1)
    (x, tx), (w, tw), (b, tb) = both(rng.standard_normal((2, 4, 5, 4))), \
        both(rng.standard_normal((4, 3, 3, 2))), both(rng.standard_normal(6))
    kw = dict(stride=(2, 3), padding=1, output_padding=(1, 0), groups=2, dilation=(2, 1))
    y, ty = F.conv_transpose2d(x, w, b, **kw), TF.conv_transpose2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(ty.shape)
    y.backward(pydl.tensor(g))
    ty.backward(torch.tensor(g))
    check_grads([(x, tx), (w, tw), (b, tb)])


@pytest.mark.parametrize("size,k,s,p,d", [(7, 2, 2, 1, 1), (8, 3, 2, 1, 1), (5, 3, 3, 1, 1),
                                          (9, 2, 3, 0, 2), (6, 4, 3, 2, 1)])
def test_pooling_ceil_mode_matches_torch(size, k, s, p, d):
    rng = np.random.default_rng(2)
    x, tx = both(rng.standard_normal((2, 3, size, size + 1)))
    for ceil in (False, True):
        y, i = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        ty, ti = TF.max_pool2d(tx, k, s, p, d, ceil, return_indices=True)
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        for include in (False, True):
            ya = F.avg_pool2d(x, k, s, p, ceil, include)
            tya = TF.avg_pool2d(tx, k, s, p, ceil, include)
            np.testing.assert_allclose(ya.detach().numpy(), tya.detach().numpy(), rtol=1e-12)
    ya = F.adaptive_avg_pool2d(x, (3, 4))
    np.testing.assert_allclose(ya.detach().numpy(), TF.adaptive_avg_pool2d(tx, (3, 4)).detach().numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 7), (3, 5, 4, 6)])
def test_batchnorm_modules_match_torch(shape):
    rng = np.random.default_rng(3)
    cls, tcls = (nn.BatchNorm2d, torch.nn.BatchNorm2d) if len(shape) == 4 else \
        (nn.BatchNorm1d, torch.nn.BatchNorm1d)
    bn, tbn = cls(5, momentum=0.2, dtype=pydl.float64), tcls(5, momentum=0.2).double()
    for step in range(3):
        x, tx = both(rng.standard_normal(shape) * 2 + step)
        y, ty = bn(x), tbn(tx)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-10)
        g = rng.standard_normal(shape)
        y.backward(pydl.tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(bn.weight.grad.numpy(), tbn.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-12)
    bn.eval(), tbn.eval()
    x, tx = both(rng.standard_normal(shape), requires_grad=False)
    np.testing.assert_allclose(bn(x).detach().numpy(), tbn(tx).detach().numpy(), rtol=1e-10)
