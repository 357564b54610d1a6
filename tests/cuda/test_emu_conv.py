"""The CUDA convolution (cuda/conv.cuh: implicit GEMM for forward, backward-data and
backward-weight) on the emulation harness, against float64 NumPy references written here with
explicit window slicing. Geometries cover stride, padding, dilation, groups, 1x1 and
non-square kernels, channel counts around the 64-wide tile, batch 1 and the empty batch."""
import numpy as np
import pytest


def _windows(xp_, kh, kw, oh, ow, stride, dilation):
    """Yield (ky, kx, view) with view[n, c, oy, ox] = padded_x[n, c, oy*sh + ky*dh, ox*sw + kx*dw]."""
    (sh, sw), (dh, dw) = stride, dilation
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, (slice(None), slice(None), slice(y0, y0 + sh * (oh - 1) + 1, sh),
                           slice(x0, x0 + sw * (ow - 1) + 1, sw))


def out_hw(h, w, kh, kw, stride, padding, dilation):
    return ((h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
            (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1)


def ref_forward(x, w, b, stride, padding, dilation, groups):
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    oh, ow = out_hw(h, wd, kh, kw, stride, padding, dilation)
    xp_ = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((n, cout, oh, ow))
    cout_g = cout // groups
    for g in range(groups):
        xs = xp_[:, g * cin_g:(g + 1) * cin_g]
        wg = w[g * cout_g:(g + 1) * cout_g]
        for ky, kx, sl in _windows(xs, kh, kw, oh, ow, stride, dilation):
            y[:, g * cout_g:(g + 1) * cout_g] += np.einsum("ncyx,oc->noyx", xs[sl], wg[:, :, ky, kx])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def ref_backward(x, w, dy, stride, padding, dilation, groups):
    x, w, dy = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    xp_ = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    dxp = np.zeros_like(xp_)
    dw = np.zeros_like(w)
    cout_g = cout // groups
    for g in range(groups):
        ci, co = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
        for ky, kx, sl in _windows(xp_, kh, kw, oh, ow, stride, dilation):
            dxp[:, ci][sl] += np.einsum("noyx,oc->ncyx", dy[:, co], w[co, :, ky, kx])
            dw[co, :, ky, kx] += np.einsum("noyx,ncyx->oc", dy[:, co], xp_[:, ci][sl])
    dx = dxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]
    return dx, dw


CASES = [
    # (n, cin, h, w, cout, kh, kw, stride, padding, dilation, groups)
    (2, 3, 9, 9, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (1, 5, 11, 7, 7, 3, 2, (2, 1), (1, 0), (1, 1), 1),
    (3, 4, 10, 10, 6, 3, 3, (2, 2), (1, 1), (2, 2), 2),
    (2, 6, 8, 9, 6, 3, 3, (1, 1), (1, 1), (1, 1), 6),  # depthwise
    (1, 67, 5, 5, 65, 1, 1, (1, 1), (0, 0), (1, 1), 1),  # 1x1 across tile edges
    (2, 3, 13, 12, 70, 5, 4, (3, 2), (2, 1), (1, 2), 1),
    (0, 3, 6, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),  # empty batch
    (1, 2, 4, 4, 3, 4, 4, (1, 1), (0, 0), (1, 1), 1),  # kernel = input
]
IDS = [f"n{c[0]}-c{c[1]}-{c[2]}x{c[3]}-o{c[4]}-k{c[5]}x{c[6]}-s{c[7][0]}{c[7][1]}"
       f"-p{c[8][0]}{c[8][1]}-d{c[9][0]}{c[9][1]}-g{c[10]}" for c in CASES]


def make(rng, case, dtype):
    n, cin, h, w, cout, kh, kw, stride, padding, dilation, groups = case
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = rng.standard_normal((cout, cin // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    return x, wt, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def tol(dtype, terms):
    return (1e-5 if dtype == np.float32 else 1e-12) * max(1.0, np.sqrt(terms))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_forward(kernels, rng, case, dtype):
    x, w, b, geo = make(rng, case, dtype)
    y = kernels.conv2d_forward(x, w, b, **geo)
    ref = ref_forward(x, w, b, **geo)
    assert y.shape == ref.shape and y.dtype == dtype
    np.testing.assert_allclose(y, ref, rtol=tol(dtype, w[0].size), atol=tol(dtype, w[0].size))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_backward(kernels, rng, case, dtype):
    x, w, _, geo = make(rng, case, dtype)
    oh, ow = out_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], geo["stride"],
                    geo["padding"], geo["dilation"])
    dy = rng.standard_normal((x.shape[0], w.shape[0], oh, ow)).astype(dtype)
    dx_ref, dw_ref = ref_backward(x, w, dy, **geo)
    dx = kernels.conv2d_backward_data(dy, w, x.shape, **geo)
    dw = kernels.conv2d_backward_weight(x, dy, w.shape, **geo)
    t = tol(dtype, max(w.size, dy.size))
    np.testing.assert_allclose(dx, dx_ref, rtol=t, atol=t)
    np.testing.assert_allclose(dw, dw_ref, rtol=t, atol=t)


def test_backward_weight_split_k(kernels, rng):
    # A long reduction (batch*OH*OW = 2*24*24) over a tiny output makes the launcher split K
    # across blocks that add into grad_weight atomically; the sum must still be right.
    x, w, _, geo = make(rng, (2, 2, 24, 24, 3, 3, 3, (1, 1), (1, 1), (1, 1), 1), np.float32)
    dy = rng.standard_normal((2, 3, 24, 24)).astype(np.float32)
    dw = kernels.conv2d_backward_weight(x, dy, w.shape, **geo)
    _, dw_ref = ref_backward(x, w, dy, **geo)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4)


def test_non_contiguous_input(kernels, rng):
    x = rng.standard_normal((2, 3, 10, 14)).astype(np.float32)[:, :, :, ::2]
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    geo = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    np.testing.assert_allclose(kernels.conv2d_forward(x, w, None, **geo),
                               ref_forward(x, w, None, **geo), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("geo,match", [
    (dict(stride=(0, 1)), "stride"),
    (dict(padding=(-1, 0)), "padding"),
    (dict(dilation=(5, 5)), "larger than the padded input"),
])
def test_bad_geometry_raises(emu_module, geo, match):
    args = dict(batch=1, in_channels=2, height=5, width=5, out_channels=2, kernel_h=3, kernel_w=3,
                stride_h=1, stride_w=1, pad_h=0, pad_w=0, dilation_h=1, dilation_w=1, groups=1,
                stream=0)
    for key, (a, b) in geo.items():
        name = {"stride": "stride", "padding": "pad", "dilation": "dilation"}[key]
        args[f"{name}_h"], args[f"{name}_w"] = a, b
    with pytest.raises(ValueError, match=match):
        emu_module.conv2d_forward_f32(x=0, weight=0, bias=0, y=0, **args)


def test_groups_mismatch_raises(kernels):
    x = np.zeros((1, 6, 5, 5), np.float32)
    w = np.zeros((4, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups=2 expects 8 input channels"):
        kernels.conv2d_forward(x, w, groups=2)
