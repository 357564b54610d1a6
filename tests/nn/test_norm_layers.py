"""LayerNorm / GroupNorm (F.layer_norm, F.group_norm): forward against float64 NumPy loops
written here, the fused kernel's gradients against gradcheck and the closed form, double
backward (gradgradcheck, through the composite), shapes with 1, primes, zero batch,
non-contiguous inputs, float32, errors."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import gradcheck, gradgradcheck
from pydl.testing import assert_close

rng = np.random.default_rng(12)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def norm_reference(x, groups_of, eps):
    """Normalise x over the index sets groups_of(x) returns (lists of index tuples)."""
    y = np.empty_like(x)
    for idx in groups_of(x):
        vals = np.array([x[i] for i in idx])
        mu = vals.mean()
        var = ((vals - mu) ** 2).mean()
        for i in idx:
            y[i] = (x[i] - mu) / np.sqrt(var + eps)
    return y


def layer_groups(n):
    def groups(x):
        lead = x.shape[:x.ndim - n]
        tail = x.shape[x.ndim - n:]
        return [[l + t for t in np.ndindex(tail)] for l in np.ndindex(lead)]
    return groups


def group_groups(G):
    def groups(x):
        N, C = x.shape[:2]
        k = C // G
        out = []
        for n in range(N):
            for g in range(G):
                out.append([(n, c) + s for c in range(g * k, (g + 1) * k)
                            for s in np.ndindex(x.shape[2:])])
        return out
    return groups


LN_CASES = [((4, 5), (5,)), ((2, 3, 7), (3, 7)), ((3, 1), (1,)), ((0, 6), (6,)), ((11,), (11,)),
            ((2, 2, 3), (3,))]


@pytest.mark.parametrize("shape,nshape", LN_CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(shape, nshape, affine):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(nshape) if affine else None
    b = rng.standard_normal(nshape) if affine else None
    ref = norm_reference(x, layer_groups(len(nshape)), 1e-5)
    if affine:
        ref = ref * w + b
    out = F.layer_norm(t64(x, False), nshape, None if w is None else t64(w, False),
                       None if b is None else t64(b, False))
    assert_close(out, ref, rtol=1e-12, atol=1e-12)
    ins = [t64(x)] + ([t64(w), t64(b)] if affine else [])
    fn = (lambda x, w, b: F.layer_norm(x, nshape, w, b)) if affine else \
        (lambda x: F.layer_norm(x, nshape))
    assert gradcheck(fn, ins)
    assert gradgradcheck(fn, ins)


GN_CASES = [((2, 6, 5), 3), ((3, 4), 2), ((1, 3, 2, 2), 1), ((2, 5, 3), 5), ((0, 4, 3), 2),
            ((2, 4, 1, 1), 4)]


@pytest.mark.parametrize("shape,G", GN_CASES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm(shape, G, affine):
    x = rng.standard_normal(shape)
    C = shape[1]
    w = rng.standard_normal(C) if affine else None
    b = rng.standard_normal(C) if affine else None
    ref = norm_reference(x, group_groups(G), 1e-5)
    if affine:
        cshape = (1, C) + (1,) * (len(shape) - 2)
        ref = ref * w.reshape(cshape) + b.reshape(cshape)
    out = F.group_norm(t64(x, False), G, None if w is None else t64(w, False),
                       None if b is None else t64(b, False))
    assert_close(out, ref, rtol=1e-12, atol=1e-12)
    ins = [t64(x)] + ([t64(w), t64(b)] if affine else [])
    fn = (lambda x, w, b: F.group_norm(x, G, w, b)) if affine else (lambda x: F.group_norm(x, G))
    assert gradcheck(fn, ins)
    assert gradgradcheck(fn, ins)


def test_first_order_kernel_matches_composite_formula():
    """The fused kernel's gradients (first order) equal those of the op-written formula
    (create_graph), on float32 and float64, weight only / bias only."""
    for dtype in (np.float64, np.float32):
        x = rng.standard_normal((3, 8, 5)).astype(dtype)
        w = rng.standard_normal(8).astype(dtype)
        gy = rng.standard_normal((3, 8, 5)).astype(dtype)
        for wt, bt in ((True, True), (True, False), (False, True)):
            res = []
            for create in (False, True):
                xt = pydl.tensor(x.copy(), requires_grad=True)
                wt_ = pydl.tensor(w.copy(), requires_grad=True) if wt else None
                bt_ = pydl.tensor(np.zeros(8, dtype), requires_grad=True) if bt else None
                y = F.group_norm(xt, 4, wt_, bt_)
                ins = [t for t in (xt, wt_, bt_) if t is not None]
                gs = pydl.autograd.grad(y, ins, pydl.tensor(gy), create_graph=create)
                res.append([g.detach().numpy() for g in gs])
            tol = 1e-11 if dtype == np.float64 else 2e-4
            for a, b in zip(*res):
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_non_contiguous_and_float32():
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    xt = pydl.tensor(x).permute(2, 1, 0)  # (3, 4, 5), strided
    ref = norm_reference(np.transpose(x, (2, 1, 0)).astype(np.float64), layer_groups(1), 1e-5)
    out = F.layer_norm(xt, (5,))
    assert out.dtype == np.float32
    assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert gradcheck(lambda t: F.layer_norm(t.permute(2, 1, 0), (5,)),
                     [t64(x)])


def test_modules_parameters_and_state_dict():
    ln = nn.LayerNorm((3, 4))
    assert ln.weight.shape == (3, 4) and ln.bias.shape == (3, 4)
    assert sorted(ln.state_dict()) == ["bias", "weight"]
    assert nn.LayerNorm(4, bias=False).bias is None
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    gn = nn.GroupNorm(2, 6)
    assert gn.weight.shape == (6,) and sorted(gn.state_dict()) == ["bias", "weight"]
    x = pydl.randn(2, 6, 4, requires_grad=True)
    gn(x).sum().backward()
    assert gn.weight.grad.shape == (6,) and x.grad.shape == (2, 6, 4)
    y = ln(pydl.randn(2, 3, 4))
    assert y.shape == (2, 3, 4)
    assert_close(y.mean(dim=(1, 2)), np.zeros(2), atol=1e-5)
    assert "eps=1e-05" in repr(ln) and "GroupNorm(2, 6" in repr(gn)


def test_errors():
    with pytest.raises(RuntimeError, match=r"expected input with shape \[\*, 4\]"):
        F.layer_norm(pydl.randn(2, 3), (4,))
    with pytest.raises(RuntimeError, match="must have shape"):
        F.layer_norm(pydl.randn(2, 3), (3,), pydl.ones(4))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(pydl.randn(2, 6), 4)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(TypeError, match="dtype"):
        F.group_norm(pydl.randn(2, 6), 2, pydl.ones(6, dtype=pydl.float64))
    with pytest.raises(RuntimeError, match="at least 2"):
        F.group_norm(pydl.randn(6), 2)
