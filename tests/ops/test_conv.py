"""conv1d/conv2d/conv_transpose: float64 NumPy loop references, gradcheck, properties, errors."""
import os
import sys

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C
from pydl.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # conv_reference (importlib mode)
from conv_reference import ref_conv2d_grads_general  # noqa: E402


# ---- references (float64, written from the definition; never the code under test) ------------
def ref_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """y[n,k,i,j] = b[k] + sum_{c,r,s} w[k,c,r,s] x[n, g*Cg + c, i*sh - ph + r*dh, j*sw - pw + s*dw]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    OH = (H + 2 * ph - dh * (R - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (S - 1) - 1) // sw + 1
    y = np.zeros((N, K, OH, OW))
    Kg = K // groups
    for k in range(K):
        g = k // Kg
        for r in range(R):
            for s in range(S):
                patch = xp[:, g * Cg:(g + 1) * Cg,
                           r * dh:r * dh + sh * (OH - 1) + 1:sh,
                           s * dw:s * dw + sw * (OW - 1) + 1:sw]
                y[:, k] += np.einsum("nchw,c->nhw", patch, w[k, :, r, s])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def ref_conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                         groups=1, dilation=(1, 1)):
    """Scatter form: every input pixel adds w * x into the output at i*s - p + r*d."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C_in, H, W = x.shape
    _, Cog, R, S = w.shape
    C_out = Cog * groups
    Cig = C_in // groups
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = stride, padding, dilation, output_padding
    OH = (H - 1) * sh - 2 * ph + dh * (R - 1) + oph + 1
    OW = (W - 1) * sw - 2 * pw + dw * (S - 1) + opw + 1
    big = np.zeros((N, C_out, OH + 2 * ph + sh + dh * R, OW + 2 * pw + sw + dw * S))
    for c in range(C_in):
        g = c // Cig
        for o in range(Cog):
            for i in range(H):
                for j in range(W):
                    for r in range(R):
                        for s in range(S):
                            big[:, g * Cog + o, i * sh + r * dh, j * sw + s * dw] += \
                                x[:, c, i, j] * w[c, o, r, s]
    y = big[:, :, ph:ph + OH, pw:pw + OW]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def t(a, requires_grad=False):
    return pydl.tensor(a, requires_grad=requires_grad)


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)


def random_config(seed):
    """A random, valid conv2d configuration: strides, paddings, dilations, groups, odd sizes."""
    rng = np.random.default_rng(seed)
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        Cg, Kg = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if rng.random() < 0.2:  # depthwise
            Cg, groups = 1, int(rng.integers(2, 5))
        N = int(rng.choice([0, 1, 2, 3]))
        H, W = int(rng.choice([1, 2, 5, 7])), int(rng.choice([1, 3, 6, 7]))
        R, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        if rng.random() < 0.2:  # the 1x1 GEMM-only path
            R = S = 1
            stride, padding = (1, 1), (0, 0)
        if dilation[0] * (R - 1) + 1 <= H + 2 * padding[0] and \
                dilation[1] * (S - 1) + 1 <= W + 2 * padding[1]:
            return dict(N=N, C=Cg * groups, K=Kg * groups, H=H, W=W, R=R, S=S, stride=stride,
                        padding=padding, dilation=dilation, groups=groups,
                        bias=bool(rng.random() < 0.7))


# ---- forward against the reference --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(16))
def test_conv2d_forward_random_configs(seed, dtype):
    cfg = random_config(seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["K"], cfg["C"] // cfg["groups"], cfg["R"], cfg["S"])).astype(dtype)
    b = rng.standard_normal(cfg["K"]).astype(dtype) if cfg["bias"] else None
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    y = F.conv2d(t(x), t(w), None if b is None else t(b), *args)
    expected = ref_conv2d(x, w, b, *args)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), expected, **tol(dtype))


@pytest.mark.parametrize("simd", ["auto", "portable"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_many_column_tiles(dtype, simd):
    # (float32 with AVX2 takes the direct stride-1 path instead; "portable" keeps the tiles.)
    _C.set_simd_path(simd)
    try:
        _many_column_tiles(dtype)
    finally:
        _C.set_simd_path("auto")


def _many_column_tiles(dtype):
    # 64 channels x 3x3 = 576 rows: the column tile holds fewer than OH*OW = 529 pixels in float64
    # (and 448 in float32), so one image spans several tiles; batch 3 spreads over threads.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64, 25, 25)).astype(dtype)
    w = rng.standard_normal((5, 64, 3, 3)).astype(dtype)
    y = F.conv2d(t(x), t(w), stride=1, padding=0)
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x, w), **tol(dtype))
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt, wt = t(x, True), t(w, True)
    F.conv2d(xt, wt).backward(t(dy))
    # d<dy, conv(x, w)>/dw[k,c,r,s] = sum dy * shifted x, the reference via its own definition.
    gw = np.einsum("nkij,ncij->kc", dy.astype(np.float64),
                   x[:, :, 1:24, 2:25].astype(np.float64))  # tap (r, s) = (1, 2)
    np.testing.assert_allclose(wt.grad.numpy()[:, :, 1, 2], gw, rtol=1e-3 if dtype == np.float32 else 1e-10, atol=1e-2 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
def test_conv1d_forward_random_configs(seed, dtype):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    C, K = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 3))
    L, k = int(rng.choice([5, 7, 11])), int(rng.integers(1, 4))
    stride, padding, dilation = int(rng.integers(1, 3)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
    x = rng.standard_normal((2, C, L)).astype(dtype)
    w = rng.standard_normal((K, C // groups, k)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    y = F.conv1d(t(x), t(w), t(b), stride, padding, dilation, groups)
    expected = ref_conv2d(x[:, :, None], w[:, :, None], b, (1, stride), (0, padding),
                          (1, dilation), groups)[:, :, 0]
    np.testing.assert_allclose(y.numpy(), expected, **tol(dtype))


def test_conv2d_unbatched_and_noncontiguous():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((7, 4, 9, 2))
    x = base.transpose(3, 1, 0, 2)[:, :, ::2]  # (2, 4, 4, 9), non-contiguous, strided
    w = rng.standard_normal((3, 3, 4, 2)).transpose(0, 2, 1, 3)[:, :, :, ::-1]  # (3, 4, 3, 2)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y = F.conv2d(t(x), t(w), padding=(1, 0), stride=(1, 2))
    np.testing.assert_allclose(y.numpy(), ref_conv2d(x, w, None, (1, 2), (1, 0)), rtol=1e-10)
    y1 = F.conv2d(t(x[0]), t(w), padding=(1, 0), stride=(1, 2))
    assert y1.shape == y.shape[1:]
    np.testing.assert_allclose(y1.numpy(), y.numpy()[0], rtol=1e-12)


def test_conv2d_zero_batch():
    x = pydl.zeros(0, 3, 5, 5, dtype=pydl.float64, requires_grad=True)
    w = pydl.randn(4, 3, 3, 3, dtype=pydl.float64, requires_grad=True)
    b = pydl.randn(4, dtype=pydl.float64, requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.numpy(), 0)
    np.testing.assert_array_equal(b.grad.numpy(), 0)


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (4, 1), (3, 2), ((2, 5), (1, 2))])
def test_conv2d_padding_same_and_valid(kernel, dilation):
    rng = np.random.default_rng(2)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    x = rng.standard_normal((2, 3, 9, 10))
    w = rng.standard_normal((2, 3) + k)
    y = F.conv2d(t(x), t(w), padding="same", dilation=dilation)
    assert y.shape == (2, 2, 9, 10)
    # PyTorch's 'same': total padding d*(k-1), left = total // 2, the odd one on the right.
    total = [d[i] * (k[i] - 1) for i in range(2)]
    xp = np.pad(x, ((0, 0), (0, 0), (total[0] // 2, total[0] - total[0] // 2),
                    (total[1] // 2, total[1] - total[1] // 2)))
    np.testing.assert_allclose(y.numpy(), ref_conv2d(xp, w, dilation=d), rtol=1e-10, atol=1e-12)
    yv = F.conv2d(t(x), t(w), padding="valid", dilation=dilation)
    np.testing.assert_allclose(yv.numpy(), ref_conv2d(x, w, dilation=d), rtol=1e-10, atol=1e-12)


# ---- gradients ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_conv2d_gradcheck_random_configs(seed):
    cfg = random_config(1000 + seed)
    cfg["N"] = min(max(cfg["N"], 1), 2)
    rng = np.random.default_rng(seed)
    x = t(rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), True)
    w = t(rng.standard_normal((cfg["K"], cfg["C"] // cfg["groups"], cfg["R"], cfg["S"])), True)
    b = t(rng.standard_normal(cfg["K"]), True) if cfg["bias"] else None
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    inputs = (x, w) if b is None else (x, w, b)
    assert gradcheck(lambda *a: F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, *args), inputs)


@pytest.mark.parametrize("case", ["depthwise", "pointwise", "grouped_strided", "conv1d"])
def test_conv_gradcheck_paths(case):
    rng = np.random.default_rng(3)
    if case == "depthwise":  # groups == C, channel multiplier 2
        x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((6, 1, 3, 2))
        fn = lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=3)
    elif case == "pointwise":
        x, w = rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((3, 4, 1, 1))
        fn = lambda x, w, b: F.conv2d(x, w, b)
    elif case == "grouped_strided":
        x, w = rng.standard_normal((1, 4, 7, 5)), rng.standard_normal((6, 2, 3, 3))
        fn = lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=(2, 1), groups=2)
    else:
        x, w = rng.standard_normal((2, 2, 9)), rng.standard_normal((3, 2, 3))
        fn = lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2)
    b = rng.standard_normal(w.shape[0])
    assert gradcheck(fn, (t(x, True), t(w, True), t(b, True)))


def test_conv2d_only_some_grads():
    rng = np.random.default_rng(4)
    x = t(rng.standard_normal((2, 2, 5, 5)))
    w = t(rng.standard_normal((3, 2, 3, 3)), True)
    b = t(rng.standard_normal(3))
    assert gradcheck(lambda w: F.conv2d(x, w, b, padding=1), (w,))
    b2 = t(rng.standard_normal(3), True)
    assert gradcheck(lambda b2: F.conv2d(x, w.detach(), b2, padding=1), (b2,))


@pytest.mark.parametrize("seed", range(6))
def test_conv_transpose2d_forward_and_gradcheck(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    C_in, Cog = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    R, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = (int(rng.integers(0, R)), int(rng.integers(0, S)))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    x = rng.standard_normal((2, C_in, 3, 4))
    w = rng.standard_normal((C_in, Cog, R, S))
    b = rng.standard_normal(Cog * groups)
    args = (stride, padding, output_padding, groups, dilation)
    try:
        expected = ref_conv_transpose2d(x, w, b, *args)
    except ValueError:
        pytest.skip("configuration gives an empty output")
    if min(expected.shape[2:]) < 1:
        with pytest.raises(ValueError):
            F.conv_transpose2d(t(x), t(w), t(b), *args)
        return
    y = F.conv_transpose2d(t(x), t(w), t(b), *args)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
    y32 = F.conv_transpose2d(t(x.astype(np.float32)), t(w.astype(np.float32)),
                             t(b.astype(np.float32)), *args)
    np.testing.assert_allclose(y32.numpy(), expected, rtol=2e-4, atol=2e-4)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, *args),
                     (t(x[:1], True), t(w, True), t(b, True)))


def test_conv_transpose1d_matches_reference_and_gradcheck():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3)), rng.standard_normal(6)
    y = F.conv_transpose1d(t(x), t(w), t(b), stride=2, padding=1, output_padding=1, groups=2)
    expected = ref_conv_transpose2d(x[:, :, None], w[:, :, None], b, (1, 2), (0, 1), (0, 1), 2)
    np.testing.assert_allclose(y.numpy(), expected[:, :, 0], rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2),
                     (t(x, True), t(w, True), t(b, True)))


def test_conv_transpose_is_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)>: the two ops are transposes of each other.
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2))
    y = F.conv2d(t(x), t(w), stride=2, padding=1, dilation=(2, 1), groups=2)
    v = rng.standard_normal(y.shape)
    xt = F.conv_transpose2d(t(v), t(w), stride=2, padding=1, output_padding=0, groups=2,
                            dilation=(2, 1))
    assert xt.shape == x.shape
    np.testing.assert_allclose((y.numpy() * v).sum(), (x * xt.numpy()).sum(), rtol=1e-10)


# ---- true convolution vs cross-correlation ------------------------------------------------------
def test_convolve1d_is_textbook_convolution():
    # Lecture notes 13.1: (1, 2, 3) * (4, 5, 6) = (4, 13, 28, 27, 18) ("full": padding k - 1).
    x = t(np.array([[[1.0, 2.0, 3.0]]]))
    w = t(np.array([[[4.0, 5.0, 6.0]]]))
    y = F.convolve1d(x, w, padding=2)
    np.testing.assert_allclose(y.numpy()[0, 0], np.convolve([1, 2, 3], [4, 5, 6]), rtol=1e-12)
    # Cross-correlation slides the kernel unflipped: it equals NumPy's correlate.
    yc = F.conv1d(x, w, padding=2)
    np.testing.assert_allclose(yc.numpy()[0, 0], np.correlate([1, 2, 3], [4, 5, 6], "full"))
    assert not np.allclose(y.numpy(), yc.numpy())


def test_convolve2d_flips_the_kernel():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 3, 2))
    y = F.convolve2d(t(x), t(w), padding=1)
    np.testing.assert_allclose(y.numpy(), F.conv2d(t(x), t(w[:, :, ::-1, ::-1].copy()), padding=1)
                               .numpy(), rtol=1e-12)
    # Definition (x * w)[i, j] = sum_{r,s} x[i - r, j - s] w[r, s] with zero padding 1.
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    OH, OW = y.shape[2:]
    expected = np.zeros(y.shape)
    for i in range(OH):
        for j in range(OW):
            for r in range(3):
                for s in range(2):
                    expected[0, :, i, j] += w[:, :, r, s] @ xp[0, :, i + 2 - r, j + 1 - s]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10)
    assert gradcheck(lambda x, w: F.convolve2d(x, w, padding=1),
                     (t(x[:, :, :4, :4], True), t(w, True)))


# ---- property: translation equivariance ---------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_conv2d_translation_equivariance(seed):
    # Content surrounded by a zero margin: shifting the input shifts the output by as much.
    rng = np.random.default_rng(seed)
    R, S = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    dil = int(rng.integers(1, 3))
    margin = 3 + dil * max(R, S)
    canvas = np.zeros((2, 3, 6 + 2 * margin, 5 + 2 * margin))
    canvas[:, :, margin:-margin, margin:-margin] = rng.standard_normal((2, 3, 6, 5))
    w = t(rng.standard_normal((4, 3, R, S)))
    di, dj = (int(v) for v in rng.integers(-3, 4, 2))
    shifted = np.roll(canvas, (di, dj), axis=(2, 3))
    y = F.conv2d(t(canvas), w, padding="same" if dil == 1 else 0, dilation=dil).numpy()
    ys = F.conv2d(t(shifted), w, padding="same" if dil == 1 else 0, dilation=dil).numpy()
    np.testing.assert_allclose(ys, np.roll(y, (di, dj), axis=(2, 3)), atol=1e-12)


# ---- the direct stride-1 path (AVX2, float32, few output channels) and its portable twin ----
def ref_conv2d_grads(x, w, dy, padding=(0, 0), groups=1):
    """dx and dw of a stride-1 conv2d in float64, from the definition: every output pixel
    (n, k, i, j) reads x_pad[n, c, i + r, j + s] with weight w[k, c, r, s]."""
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // groups
    ph, pw = padding
    OH, OW = dy.shape[2:]
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for r in range(R):
            for s in range(S):
                dxp[:, cs, r:r + OH, s:s + OW] += np.einsum("nkij,kc->ncij", dy[:, ks],
                                                            w[ks, :, r, s])
                dw[ks, :, r, s] = np.einsum("nkij,ncij->kc", dy[:, ks],
                                            xp[:, cs, r:r + OH, s:s + OW])
    return dxp[:, :, ph:ph + H, pw:pw + W], dw


DIRECT_CASES = [
    # x shape, w shape, padding, groups
    ((5, 1, 28, 28), (6, 1, 5, 5), (0, 0), 1),      # LeNet conv1 (OW 24: three full vectors)
    ((5, 6, 12, 12), (16, 6, 5, 5), (0, 0), 1),     # LeNet conv2 (OW 8)
    ((3, 4, 9, 13), (7, 4, 3, 3), (1, 1), 1),       # padding, OW 13 (a partial vector)
    ((2, 6, 10, 20), (10, 3, 2, 7), (0, 3), 2),     # groups, S = 7 (tap blocks 5 + 2)
    ((37, 2, 8, 8), (3, 2, 3, 3), (0, 0), 1),       # batch past one weight chunk, OW 6
    ((2, 3, 5, 6), (4, 3, 1, 1), (1, 1), 1),        # 1x1 with padding: backward crops dy
    ((2, 8, 7, 11), (32, 4, 3, 2), (2, 1), 2),      # Kg = 16, padding past kernel - 1 in H
    ((2, 20, 10, 12), (24, 20, 3, 3), (1, 1), 1),   # Kg = 24: direct passes, GEMM weight pass
    ((3, 3, 4, 4), (4, 3, 3, 3), (0, 0), 1),        # OW 2: GEMM passes, direct weight pass
]


# Every SIMD path this CPU can run, by name; the others are skipped (a CPU without AVX-512
# still runs the AVX2 and portable cases). "avx512" takes the row-flat kernels for the small
# stride-1 layers, "avx2+fma" the direct loops, "portable" im2col + GEMM.
SIMD_PATHS = ["avx512", "avx2+fma", "portable"]


def use_simd(simd):
    if simd != "auto" and simd not in _C.available_simd_paths():
        pytest.skip(f"this CPU (or build) has no {simd} path")
    _C.set_simd_path(simd)


def check_conv2d_step(xs, ws, padding, groups, simd, rng, w_scale, dw_atol):
    """conv2d forward and all three gradients on the given SIMD path, against the float64
    references (float32 data, stride and dilation 1)."""
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * w_scale).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    use_simd(simd)
    try:
        xt, wt, bt = t(x, True), t(w, True), t(b, True)
        y = F.conv2d(xt, wt, bt, 1, padding, 1, groups)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(t(dy))
    finally:
        _C.set_simd_path("auto")
    np.testing.assert_allclose(y._data, ref_conv2d(x, w, b, (1, 1), padding, (1, 1), groups),
                               rtol=1e-4, atol=1e-4)
    dx, dw = ref_conv2d_grads(x, w, dy, padding, groups)
    np.testing.assert_allclose(xt.grad._data, dx, rtol=1e-4, atol=1e-4)
    # dw sums N * OH * OW products: compare against that scale.
    scale = np.sqrt(dy.size / dy.shape[1])
    np.testing.assert_allclose(wt.grad._data / scale, dw / scale, rtol=1e-4, atol=dw_atol)
    np.testing.assert_allclose(bt.grad._data / scale, dy.astype(np.float64).sum(axis=(0, 2, 3)) / scale,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("simd", SIMD_PATHS)
@pytest.mark.parametrize("case", range(len(DIRECT_CASES)))
def test_conv2d_stride1_small_channel_paths(case, simd):
    xs, ws, padding, groups = DIRECT_CASES[case]
    check_conv2d_step(xs, ws, padding, groups, simd, np.random.default_rng(case), 0.3, 1e-5)


# The row-flat AVX-512 kernels (float32; stride 1 down the rows, any column stride, padding and
# dilation, Kg <= 32, Kg*Cg*R*S <= 16384 (K*Cg*R*S for the weight pass), one image's shifted
# copies <= 128 KiB), their edges, and shapes just outside them that must fall back (to the
# direct loops or im2col + GEMM).
ROWFLAT_CASES = [
    # x shape, w shape, stride, padding, dilation, groups, bias
    ((3, 6, 12, 12), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1, True),    # LeNet conv2
    ((1, 3, 7, 37), (5, 3, 2, 4), (1, 2), (1, 3), (2, 1), 1, True),      # column stride, OW 20
    ((2, 4, 9, 21), (6, 2, 3, 5), (1, 1), (2, 4), (1, 3), 2, False),     # groups, column dilation
    ((2, 2, 4, 20), (3, 2, 2, 17), (1, 1), (0, 1), (1, 1), 1, True),     # S = 17 > 16 taps
    ((3, 2, 6, 5), (4, 2, 3, 5), (1, 1), (0, 0), (1, 1), 1, True),       # OW 1
    ((1, 3, 5, 6), (8, 3, 2, 2), (1, 1), (3, 2), (1, 1), 1, True),       # padding past R - 1
    ((2, 5, 13, 40), (9, 5, 4, 3), (1, 3), (1, 0), (2, 2), 1, True),     # OW 13, rows dilated
    ((19, 3, 8, 9), (7, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),      # 19 images: 2 chunks
    ((2, 3, 11, 10), (5, 3, 3, 3), (2, 1), (1, 1), (1, 1), 1, True),     # row stride: falls back
    ((2, 2, 6, 7), (33, 2, 3, 3), (1, 1), (0, 1), (1, 1), 1, True),      # Kg 33: falls back
    ((1, 32, 6, 6), (32, 32, 5, 5), (1, 1), (2, 2), (1, 1), 1, True),    # 25600 weights: falls back
    ((1, 2, 64, 64), (4, 2, 5, 5), (1, 1), (0, 0), (1, 1), 1, True),     # 150 KiB copies: falls back
    ((2, 44, 6, 6), (32, 22, 5, 5), (1, 1), (2, 2), (1, 1), 2, True),    # weight pass falls back
]


@pytest.mark.parametrize("simd", SIMD_PATHS)
@pytest.mark.parametrize("case", range(len(ROWFLAT_CASES)))
def test_conv2d_rowflat_paths(case, simd):
    xs, ws, stride, padding, dilation, groups, with_bias = ROWFLAT_CASES[case]
    rng = np.random.default_rng(70 + case)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.3).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if with_bias else None
    use_simd(simd)
    try:
        xt, wt = t(x, True), t(w, True)
        bt = t(b, True) if with_bias else None
        y = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(t(dy))
    finally:
        _C.set_simd_path("auto")
    np.testing.assert_allclose(y._data, ref_conv2d(x, w, b, stride, padding, dilation, groups),
                               rtol=1e-4, atol=1e-4)
    dx, dw = ref_conv2d_grads_general(x, w, dy, stride, padding, dilation, groups)
    np.testing.assert_allclose(xt.grad._data, dx, rtol=1e-4, atol=1e-4)
    scale = np.sqrt(dy.size / dy.shape[1])
    np.testing.assert_allclose(wt.grad._data / scale, dw / scale, rtol=1e-4, atol=1e-5)
    if with_bias:
        np.testing.assert_allclose(bt.grad._data / scale,
                                   dy.astype(np.float64).sum(axis=(0, 2, 3)) / scale,
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("simd", SIMD_PATHS)
def test_conv2d_rowflat_batch_0_1_and_noncontiguous(simd):
    rng = np.random.default_rng(90)
    w = (rng.standard_normal((16, 6, 5, 5)) * 0.2).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    # A strided, reversed view: conv2d must read it as the array it shows.
    base = rng.standard_normal((1, 12, 13, 12)).astype(np.float32)
    views = [base[:, ::2, :12, ::-1], np.zeros((0, 6, 12, 12), np.float32)]
    use_simd(simd)
    try:
        results = []
        for x in views:
            xt, wt, bt = t(x, True), t(w, True), t(b, True)
            y = F.conv2d(xt, wt, bt)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            y.backward(t(dy))
            results.append((x, y, dy, xt, wt, bt))
    finally:
        _C.set_simd_path("auto")
    assert not views[0].flags.c_contiguous
    for x, y, dy, xt, wt, bt in results:
        assert y.shape == (x.shape[0], 16, 8, 8)
        np.testing.assert_allclose(y._data, ref_conv2d(x, w, b), rtol=1e-4, atol=1e-4)
        dx, dw = ref_conv2d_grads(x, w, dy)
        assert xt.grad.shape == x.shape
        np.testing.assert_allclose(xt.grad._data, dx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(wt.grad._data, dw, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(bt.grad._data, dy.astype(np.float64).sum(axis=(0, 2, 3)),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("simd", SIMD_PATHS)
@pytest.mark.parametrize("wanted", ["input", "weight", "weight_bias", "bias"])
def test_conv2d_rowflat_some_grads(wanted, simd):
    # A training step asks for all three gradients at once (one pass over the batch); a frozen
    # layer or the first layer asks for some of them (separate passes).
    rng = np.random.default_rng(92)
    x = rng.standard_normal((11, 6, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) * 0.2).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    xt = t(x, wanted == "input")
    wt = t(w, wanted in ("weight", "weight_bias"))
    bt = t(b, wanted in ("weight_bias", "bias"))
    use_simd(simd)
    try:
        y = F.conv2d(xt, wt, bt, padding=1)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(t(dy))
    finally:
        _C.set_simd_path("auto")
    dx, dw = ref_conv2d_grads(x, w, dy, (1, 1))
    for tensor, ref in [(xt, dx), (wt, dw), (bt, dy.astype(np.float64).sum(axis=(0, 2, 3)))]:
        if tensor.requires_grad:
            np.testing.assert_allclose(tensor.grad._data, ref, rtol=1e-4, atol=2e-4)
        else:
            assert tensor.grad is None


def test_conv2d_rowflat_shapes_gradcheck_float64():
    # float64 never takes the row-flat (or direct) kernels: it runs im2col + GEMM, checked here
    # on the shapes the float32 tests above send through the row-flat path.
    rng = np.random.default_rng(91)
    for xs, ws, stride, padding, dilation in [((2, 3, 7, 8), (4, 3, 3, 3), (1, 1), (1, 0), (1, 1)),
                                              ((1, 2, 6, 9), (3, 2, 2, 3), (1, 2), (0, 2), (2, 1))]:
        x = t(rng.standard_normal(xs), True)
        w = t(rng.standard_normal(ws), True)
        b = t(rng.standard_normal(ws[0]), True)
        assert gradcheck(lambda a, c, d: F.conv2d(a, c, d, stride, padding, dilation), (x, w, b))


# Winograd F(2x2, 3x3) (float32, AVX2; 3x3 stride 1, at least 16 channels in and out per group):
# odd output sizes (partial tiles), padding 0 to 3 (the backward pass then crops dy), groups,
# planes wide enough to need several tile chunks, and shapes where only some passes qualify.
WINOGRAD_CASES = [
    ((2, 16, 9, 11), (16, 16, 3, 3), (1, 1), 1),
    ((3, 17, 8, 20), (19, 17, 3, 3), (0, 0), 1),
    ((2, 32, 6, 40), (32, 16, 3, 3), (2, 2), 2),
    ((1, 16, 5, 300), (16, 16, 3, 3), (1, 1), 1),
    ((5, 16, 12, 9), (24, 16, 3, 3), (1, 0), 1),   # OW 7: forward and weight pass elsewhere
    ((2, 16, 3, 8), (16, 16, 3, 3), (3, 1), 1),
]


@pytest.mark.parametrize("simd", ["auto", "portable"])
@pytest.mark.parametrize("case", range(len(WINOGRAD_CASES)))
def test_conv2d_3x3_winograd_paths(case, simd):
    xs, ws, padding, groups = WINOGRAD_CASES[case]
    check_conv2d_step(xs, ws, padding, groups, simd, np.random.default_rng(50 + case), 0.2, 2e-5)


@pytest.mark.parametrize("simd", SIMD_PATHS)
def test_conv_transpose2d_stride1_uses_the_direct_kernels(simd):
    # A stride-1 transposed convolution runs the backward-input kernel forward (and output
    # height smaller than the natural one through output_padding is not possible at stride 1).
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 5, 9, 10)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    use_simd(simd)
    try:
        y = F.conv_transpose2d(t(x), t(w), padding=1)
    finally:
        _C.set_simd_path("auto")
    np.testing.assert_allclose(y.numpy(), ref_conv_transpose2d(x, w, padding=(1, 1)), rtol=1e-4,
                               atol=1e-4)


# ---- memory bound of the column buffer ---------------------------------------------------------
@pytest.mark.parametrize("simd", ["auto", "portable"])
def test_column_buffer_does_not_grow_with_batch(simd):
    from pydl.ops.conv import conv2d_column_buffer_bytes as bytes_for

    shape_w = (64, 64, 3, 3)
    _C.set_simd_path(simd)
    try:
        b64 = bytes_for((64, 64, 56, 56), shape_w, 1, 1)
        b4096 = bytes_for((4096, 64, 56, 56), shape_w, 1, 1)
        b64_f64 = bytes_for((64, 64, 56, 56), shape_w, 1, 1, itemsize=8)
    finally:
        _C.set_simd_path("auto")
    assert b64 == b4096 > 0
    rows = 64 * 3 * 3
    if simd == "portable":
        # im2col + GEMM: at most one ~1 MiB tile (never fewer than 64 pixels) per thread.
        assert b4096 <= pydl.get_num_threads() * max(1 << 20, rows * 64 * 4)
    else:
        # Winograd (float32, AVX2): one image's padded planes and one chunk of transformed tiles
        # per thread, a few MiB whatever the batch; float64 keeps the column tiles.
        assert b4096 <= pydl.get_num_threads() * (4 << 20)
    assert b64_f64 <= pydl.get_num_threads() * max(1 << 20, rows * 64 * 8)
    # The paths that need no column matrix allocate none.
    assert bytes_for((8, 16, 10, 10), (32, 16, 1, 1)) == 0
    # Depthwise: no column matrix either; the AVX2 tap path (float32) holds one padded plane
    # (and dx phases) per thread, whatever the batch; the portable loops hold nothing.
    dw8 = bytes_for((8, 16, 10, 10), (16, 1, 3, 3), padding=1, groups=16)
    assert dw8 == bytes_for((800, 16, 10, 10), (16, 1, 3, 3), padding=1, groups=16)
    assert dw8 <= pydl.get_num_threads() * 4 * (3 * 12 * 24 + 10 * 10 + 9)
    assert bytes_for((8, 16, 10, 10), (16, 1, 3, 3), padding=1, groups=16, itemsize=8) == 0


# ---- errors -------------------------------------------------------------------------------------
def test_conv2d_errors_name_the_problem():
    x = pydl.randn(2, 4, 6, 6)
    w = pydl.randn(6, 2, 3, 3)
    with pytest.raises(ValueError, match=r"4-D \(batched\).*\(2, 6, 6\)|got input of shape"):
        F.conv2d(pydl.randn(6, 6), w)
    with pytest.raises(ValueError, match="4-D weight"):
        F.conv2d(x, pydl.randn(6, 4, 3))
    with pytest.raises(ValueError, match=r"has 4 channels.*expects 2"):
        F.conv2d(x, w)  # groups=1: weight wants 2 input channels
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv2d(x, pydl.randn(5, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, pydl.randn(6, 4, 9, 3))
    with pytest.raises(ValueError, match="stride must be positive"):
        F.conv2d(x, w, stride=0, groups=2)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.conv2d(x, w, padding=-1, groups=2)
    with pytest.raises(ValueError, match="dilation must be positive"):
        F.conv2d(x, w, dilation=(1, 0), groups=2)
    with pytest.raises(ValueError, match="groups must be a positive"):
        F.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        F.conv2d(x, w, pydl.randn(5), groups=2)
    with pytest.raises(TypeError, match="same dtype"):
        F.conv2d(x, pydl.randn(6, 2, 3, 3, dtype=pydl.float64), groups=2)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.conv2d(pydl.ones(2, 4, 6, 6, dtype=pydl.int64), w, groups=2)
    with pytest.raises(ValueError, match="not supported for strided"):
        F.conv2d(x, w, padding="same", stride=2, groups=2)
    with pytest.raises(ValueError, match="'same', 'valid'"):
        F.conv2d(x, w, padding="full", groups=2)
    with pytest.raises(ValueError, match="tuple of 2 ints"):
        F.conv2d(x, w, stride=(1, 2, 3), groups=2)
    with pytest.raises(ValueError, match="3-D"):
        F.conv1d(x, pydl.randn(6, 4, 3))
    with pytest.raises(ValueError, match="output padding must be smaller"):
        F.conv_transpose2d(x, pydl.randn(4, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="has 4 channels"):
        F.conv_transpose2d(x, pydl.randn(3, 3, 3, 3))


def test_kernel_binding_rejects_bad_calls():
    # The C++ layer checks again: a direct call with inconsistent shapes raises, never crashes.
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="input channels per group"):
        _C.conv2d_forward(x, np.zeros((2, 3, 3, 3), np.float32), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _C.conv2d_forward(x, np.zeros((2, 4, 7, 3), np.float32), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="stride must be positive"):
        _C.conv2d_forward(x, np.zeros((2, 4, 3, 3), np.float32), None, (0, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="same dtype"):
        _C.conv2d_forward(x, np.zeros((2, 4, 3, 3)), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="exceeds the largest possible"):
        _C.conv2d_backward_input(np.zeros((1, 2, 9, 9), np.float32),
                                 np.zeros((2, 4, 3, 3), np.float32), (5, 5), (1, 1), (0, 0),
                                 (1, 1), 1)
    # The fused backward call (dx, dw, db at once) checks the three arrays against each other.
    w = np.zeros((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        _C.conv2d_backward(x, np.zeros((1, 3, 3, 3), np.float32), w, (1, 1), (0, 0), (1, 1), 1,
                           True)
    with pytest.raises(ValueError, match="exceeds the largest possible"):
        _C.conv2d_backward(x, np.zeros((1, 2, 4, 3), np.float32), w, (1, 1), (0, 0), (1, 1), 1,
                           True)
    with pytest.raises(TypeError, match="same dtype"):
        _C.conv2d_backward(x, np.zeros((1, 2, 3, 3)), w, (1, 1), (0, 0), (1, 1), 1, True)
    dx, dw, db = _C.conv2d_backward(x, np.ones((1, 2, 3, 3), np.float32), w, (1, 1), (0, 0),
                                    (1, 1), 1, False)
    assert dx.shape == x.shape and dw.shape == w.shape and db is None
