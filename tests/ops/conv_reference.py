"""Float64 NumPy references for conv2d shared by tests/ops/test_conv.py and test_conv_taps.py
(imported by path: the suite runs in pytest's importlib mode)."""
import numpy as np


def ref_conv2d_grads_general(x, w, dy, stride, padding, dilation, groups):
    """dx and dw of conv2d in float64 for any stride, padding and dilation: output pixel
    (n, k, i, j) reads x_pad[n, c, i*sh + r*dh, j*sw + s*dw] with weight w[k, c, r, s], so each
    tap (r, s) scatters dy back through that strided slice (dx) and correlates it (dw)."""
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // groups
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    OH, OW = dy.shape[2:]
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for r in range(R):
            for s in range(S):
                rows = slice(r * dh, r * dh + sh * (OH - 1) + 1, sh)
                cols = slice(s * dw_, s * dw_ + sw * (OW - 1) + 1, sw)
                dxp[:, cs, rows, cols] += np.einsum("nkij,kc->ncij", dy[:, ks], w[ks, :, r, s])
                dw[ks, :, r, s] = np.einsum("nkij,ncij->kc", dy[:, ks], xp[:, cs, rows, cols])
    return dxp[:, :, ph:ph + H, pw:pw + W], dw
