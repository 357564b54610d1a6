"""Fuzz: conv1d/conv2d/conv_transpose2d forward and backward against a float64 NumPy reference,
over shapes, strides, paddings, dilations, groups, dtypes and memory layouts; invalid
hyper-parameters must raise cleanly."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import CLEAN_ERRORS, fuzz, strided, tol  # noqa: E402

import pydl
import pydl.nn.functional as F
from pydl import _C


def conv2d_ref(x, w, stride, padding, dilation, groups):
    """y[n, k, i, j] = sum_{c, r, s} w[k, c, r, s] xpad[n, g(k) Cg + c, i sh + r dh, j sw + s dw]
    in float64, with the column tensor built explicitly."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    OH = (H + 2 * ph - dh * (R - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (S - 1) - 1) // sw + 1
    cols = np.zeros((N, C, R, S, OH, OW))
    for r in range(R):
        for s in range(S):
            cols[:, :, r, s] = xp[:, :, r * dh:r * dh + sh * (OH - 1) + 1:sh,
                                  s * dw:s * dw + sw * (OW - 1) + 1:sw]
    Kg = K // groups
    y = np.zeros((N, K, OH, OW))
    for g in range(groups):
        y[:, g * Kg:(g + 1) * Kg] = np.einsum("ncrsij,kcrs->nkij",
                                              cols[:, g * Cg:(g + 1) * Cg],
                                              w[g * Kg:(g + 1) * Kg])
    return y, cols


def conv2d_grads_ref(x, w, dy, stride, padding, dilation, groups):
    """dx and dw of <dy, conv2d(x, w)> by the chain rule through the column tensor."""
    _, cols = conv2d_ref(x, w, stride, padding, dilation, groups)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    OH, OW = dy.shape[2:]
    Kg = K // groups
    dy = dy.astype(np.float64)
    w64 = w.astype(np.float64)
    dw = np.zeros(w.shape)
    dcols = np.zeros(cols.shape)
    for g in range(groups):
        dw[g * Kg:(g + 1) * Kg] = np.einsum("ncrsij,nkij->kcrs", cols[:, g * Cg:(g + 1) * Cg],
                                            dy[:, g * Kg:(g + 1) * Kg])
        dcols[:, g * Cg:(g + 1) * Cg] = np.einsum("nkij,kcrs->ncrsij", dy[:, g * Kg:(g + 1) * Kg],
                                                  w64[g * Kg:(g + 1) * Kg])
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    for r in range(R):
        for s in range(S):
            dxp[:, :, r * dh:r * dh + sh * (OH - 1) + 1:sh,
                s * dw_:s * dw_ + sw * (OW - 1) + 1:sw] += dcols[:, :, r, s]
    return dxp[:, :, ph:ph + H, pw:pw + W], dw


conv_case = st.fixed_dictionaries(dict(
    N=st.integers(0, 3), groups=st.integers(1, 3), Cg=st.integers(1, 3), Kg=st.integers(1, 3),
    H=st.integers(1, 9), W=st.integers(1, 11), R=st.integers(1, 4), S=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dtype=st.sampled_from([np.float32, np.float64]), layout=st.integers(0, 3),
    bias=st.booleans(), seed=st.integers(0, 2 ** 16)))


@fuzz
@given(conv_case)
def test_conv2d_forward_backward_matches_reference(c):
    rng = np.random.default_rng(c["seed"])
    C, K = c["Cg"] * c["groups"], c["Kg"] * c["groups"]
    x = rng.standard_normal((c["N"], C, c["H"], c["W"])).astype(c["dtype"])
    w = rng.standard_normal((K, c["Cg"], c["R"], c["S"])).astype(c["dtype"])
    b = rng.standard_normal(K).astype(c["dtype"]) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
              groups=c["groups"])
    fits = all(d * (k - 1) + 1 <= n + 2 * p for d, k, n, p in
               zip(c["dilation"], (c["R"], c["S"]), (c["H"], c["W"]), c["padding"]))
    xt = pydl.tensor(strided(x, c["layout"]), requires_grad=True)
    wt = pydl.tensor(w, requires_grad=True)
    bt = None if b is None else pydl.tensor(b, requires_grad=True)
    if not fits:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.conv2d(xt, wt, bt, **kw)
        return
    y = F.conv2d(xt, wt, bt, **kw)
    ref, _ = conv2d_ref(x, w, c["stride"], c["padding"], c["dilation"], c["groups"])
    if b is not None:
        ref = ref + b.astype(np.float64)[None, :, None, None]
    assert y.shape == ref.shape and y.dtype == c["dtype"]
    np.testing.assert_allclose(y.detach().numpy(), ref, **tol(c["dtype"]))
    dy = rng.standard_normal(ref.shape).astype(c["dtype"])
    (y * pydl.tensor(dy)).sum().backward()
    dx_ref, dw_ref = conv2d_grads_ref(x, w, dy, c["stride"], c["padding"], c["dilation"],
                                      c["groups"])
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, **tol(c["dtype"]))
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, **tol(c["dtype"]))
    if b is not None:
        np.testing.assert_allclose(bt.grad.numpy(), dy.astype(np.float64).sum((0, 2, 3)),
                                   **tol(c["dtype"]))


@fuzz
@given(conv_case, st.integers(0, 2))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(c, out_pad):
    """<convT(u, w), v> = <u, conv(v, w)>: checks conv_transpose2d against the conv reference."""
    rng = np.random.default_rng(c["seed"])
    C, K = c["Cg"] * c["groups"], c["Kg"] * c["groups"]
    st_, pd, dl = c["stride"], c["padding"], c["dilation"]
    if c["N"] == 0:
        return
    w = rng.standard_normal((K, c["Cg"], c["R"], c["S"])).astype(np.float64)
    # conv maps (C, H, W) -> (K, OH, OW); conv_transpose2d with weight w maps K -> C.
    H, W = c["H"], c["W"]
    if any(d * (k - 1) + 1 > n + 2 * p for d, k, n, p in zip(dl, (c["R"], c["S"]), (H, W), pd)):
        return
    OH = (H + 2 * pd[0] - dl[0] * (c["R"] - 1) - 1) // st_[0] + 1
    OW = (W + 2 * pd[1] - dl[1] * (c["S"] - 1) - 1) // st_[1] + 1
    op = tuple(min(out_pad, max(s, d) - 1) for s, d in zip(st_, dl))
    u = rng.standard_normal((c["N"], K, OH, OW))
    y = F.conv_transpose2d(pydl.tensor(strided(u, c["layout"])), pydl.tensor(w), stride=st_,
                           padding=pd, dilation=dl, groups=c["groups"], output_padding=op)
    Ht = (OH - 1) * st_[0] - 2 * pd[0] + dl[0] * (c["R"] - 1) + op[0] + 1
    Wt = (OW - 1) * st_[1] - 2 * pd[1] + dl[1] * (c["S"] - 1) + op[1] + 1
    assert y.shape == (c["N"], C, Ht, Wt)
    v = rng.standard_normal(y.shape)
    conv_v, _ = conv2d_ref(v, w, st_, pd, dl, c["groups"])
    conv_v = conv_v[:, :, :OH, :OW]
    np.testing.assert_allclose(np.vdot(y.detach().numpy(), v), np.vdot(u, conv_v), rtol=1e-9, atol=1e-9)


@fuzz
@given(st.integers(0, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 5),
       st.integers(1, 3), st.integers(0, 3), st.integers(1, 3), st.integers(0, 2 ** 16))
def test_conv1d_matches_reference(N, C, L, k, s, p, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, L))
    w = rng.standard_normal((3, C, k))
    if d * (k - 1) + 1 > L + 2 * p:
        with pytest.raises(ValueError):
            F.conv1d(pydl.tensor(x), pydl.tensor(w), stride=s, padding=p, dilation=d)
        return
    y = F.conv1d(pydl.tensor(x), pydl.tensor(w), stride=s, padding=p, dilation=d)
    ref, _ = conv2d_ref(x[:, :, None], w[:, :, None], (1, s), (0, p), (1, d), 1)
    np.testing.assert_allclose(y.detach().numpy(), ref[:, :, 0], rtol=1e-10, atol=1e-10)


hostile_int = st.sampled_from([0, -1, -(2 ** 63), 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64])


@fuzz
@given(st.sampled_from(["stride", "padding", "dilation", "groups"]), st.integers(0, 1),
       hostile_int)
def test_conv2d_hostile_hyper_parameters_raise_cleanly(name, axis, value):
    x, w = pydl.randn(1, 2, 5, 5), pydl.randn(2, 2, 3, 3)
    kw = dict(stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1)
    if name == "groups":
        kw["groups"] = value
    else:
        kw[name][axis] = value
    try:
        y = F.conv2d(x, w, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})
    except CLEAN_ERRORS:
        return
    # Accepted: only a legitimate huge stride (one output row or column).
    assert name == "stride" and value > 0
    assert y.shape[2 + axis] == 1


@fuzz
@given(st.lists(hostile_int | st.integers(0, 9), min_size=19, max_size=19))
def test_conv_bindings_hostile_arguments_raise_cleanly(v):
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    calls = [
        lambda: _C.conv2d_forward(x, w, None, (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), v[6]),
        lambda: _C.conv2d_backward_input(np.ones((1, 2, 3, 3), np.float32), w, (v[7], v[8]),
                                         (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), v[6]),
        lambda: _C.conv2d_backward_weight(x, np.ones((1, 2, 3, 3), np.float32), (v[9], v[10]),
                                          (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), v[6], True),
        lambda: _C.conv2d_column_buffer_bytes((v[11], v[12], v[13], v[14]),
                                              (v[15], v[12], v[9], v[10]), (v[0], v[1]),
                                              (v[2], v[3]), (v[4], v[5]), v[6], v[16] % 9),
    ]
    for call in calls:
        try:
            call()
        except (*CLEAN_ERRORS, OverflowError):
            pass
