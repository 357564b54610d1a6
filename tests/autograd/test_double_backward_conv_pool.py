"""Double backward (create_graph=True) of convolution and pooling: float64 gradgradcheck over
stride, padding (ints, 'same', 'valid', reflect/replicate/circular modes), dilation, groups,
output_padding, bias, ceil_mode, count_include_pad, divisor_override, return_indices, unbatched
inputs, sizes with 1 and primes, zero batches and non-contiguous inputs; third order (each
backward is an op with a backward of its own); the version check of the inputs conv1d,
unbatched conv2d and transposed conv save (issue #12); first order still on the fused kernel.

gradgradcheck needs contiguous inputs that it can perturb, so non-contiguous cases make the view
inside the checked function (a transpose), which hands the op a strided array.
"""
import contextlib

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import grad
from pydl.autograd import gradgradcheck as _gradgradcheck
from pydl.ops import conv as conv_ops
from pydl.ops import pool as pool_ops


def gradgradcheck(fn, inputs, **kw):
    """Tighter than the defaults: conv and pooling are (bi)linear in what the second derivative
    differentiates, so central differences are good to ~1e-9 and a wrong term cannot hide."""
    return _gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6, **kw)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def randn(rng, *shape):
    return t64(rng.standard_normal(shape))


def distinct(rng, *shape):
    """Values 0.1 apart in random order: no two elements of a pooling window within a finite
    difference step of each other, so every argmax is stable under the perturbation."""
    n = int(np.prod(shape))
    return t64((rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape))


def first_derivatives(fn, n_inputs):
    """(inputs..., v) -> grad(fn(inputs), inputs, v, create_graph=True): gradgradcheck of this
    is a third-order check of fn."""
    def derivs(*args):
        ins, v = args[:n_inputs], args[n_inputs]
        return grad(fn(*ins), ins, v, create_graph=True)
    return derivs


def double_backward_shapes(fn, inputs):
    """For zero-size inputs (nothing for gradgradcheck to perturb): the double backward runs and
    gives gradients of the inputs' shapes."""
    out = fn(*inputs)
    u = pydl.tensor(np.ones(out.shape), requires_grad=True)
    gs = grad(out, inputs, u, create_graph=True, allow_unused=True)
    total = sum((g * g).sum() for g in gs if g is not None)
    second = grad(total, list(inputs) + [u], allow_unused=True)
    for x, g2 in zip(list(inputs) + [u], second):
        assert g2 is None or g2.shape == x.shape


# -- convolution ----------------------------------------------------------------------------------
# id -> (x shape, w shape, keyword arguments)
CONV2D = {
    "plain": ((2, 3, 5, 6), (4, 3, 3, 3), {}),
    "stride2_pad1": ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=2, padding=1)),
    "stride_pad_dilation_tuples": ((1, 2, 7, 8), (3, 2, 2, 3),
                                   dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))),
    "groups2": ((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 3, 5, 5), (3, 1, 3, 3), dict(groups=3, stride=2)),
    "pointwise_primes": ((2, 5, 3, 7), (2, 5, 1, 1), {}),
    "same_odd": ((2, 3, 5, 5), (2, 3, 3, 3), dict(padding="same")),
    "same_even_dilated": ((1, 2, 6, 5), (3, 2, 2, 4), dict(padding="same", dilation=(2, 1))),
    "valid": ((2, 2, 4, 5), (3, 2, 2, 2), dict(padding="valid")),
    "unbatched": ((3, 5, 5), (2, 3, 3, 3), dict(padding=1)),
    "ones": ((1, 1, 1, 1), (1, 1, 1, 1), {}),
    "kernel_covers_input": ((2, 2, 3, 3), (3, 2, 3, 3), {}),
}
CONV1D = {
    "plain": ((2, 3, 7), (4, 3, 3), {}),
    "stride_pad_dilation": ((2, 2, 11), (3, 2, 3), dict(stride=2, padding=2, dilation=2)),
    "groups": ((2, 4, 5), (2, 2, 2), dict(groups=2)),
    "same_even": ((1, 3, 6), (2, 3, 4), dict(padding="same")),
    "valid": ((2, 2, 5), (3, 2, 5), dict(padding="valid")),
    "unbatched": ((3, 7), (2, 3, 3), dict(padding=1)),
    "ones": ((1, 1, 1), (1, 1, 1), {}),
}
# id -> (x shape, w shape, keyword arguments); w is (C_in, C_out / groups, *kernel)
CONV_T2D = {
    "plain": ((2, 3, 4, 4), (3, 2, 3, 3), {}),
    "stride2_pad1_outpad1": ((2, 2, 3, 4), (2, 3, 3, 3),
                             dict(stride=2, padding=1, output_padding=1)),
    "groups_dilation_tuples": ((1, 4, 3, 3), (4, 1, 2, 3),
                               dict(groups=2, stride=(1, 2), dilation=(2, 1),
                                    output_padding=(1, 1))),
    # output_padding >= stride (allowed below dilation): the gradient crops conv's output
    "outpad_over_stride": ((2, 2, 3, 4), (2, 2, 2, 2), dict(dilation=2, output_padding=1)),
    "unbatched": ((3, 4, 4), (3, 2, 3, 3), dict(stride=2)),
    "ones": ((1, 1, 1, 1), (1, 1, 1, 1), {}),
}
CONV_T1D = {
    "plain": ((2, 3, 5), (3, 2, 3), {}),
    "stride_pad_outpad": ((2, 2, 4), (2, 3, 3), dict(stride=3, padding=1, output_padding=2)),
    "groups": ((1, 4, 5), (4, 3, 2), dict(groups=2, dilation=2)),
    "outpad_over_stride": ((2, 2, 4), (2, 3, 3), dict(padding=1, dilation=2, output_padding=1)),
    "unbatched": ((3, 5), (3, 2, 2), dict(stride=2)),
}
# "op-case" -> (op, x shape, w shape, keyword arguments)
CONV = {f"{op.__name__}-{name}": (op, xs, ws, kw)
        for op, table in ((F.conv2d, CONV2D), (F.conv1d, CONV1D), (F.conv_transpose2d, CONV_T2D),
                          (F.conv_transpose1d, CONV_T1D))
        for name, (xs, ws, kw) in table.items()}


def conv_inputs(rng, op, xs, ws, kw, bias=True):
    """x, w and (with bias) b for op: b has the output channels (w.shape[0] for conv,
    w.shape[1] * groups for the transposed one)."""
    ins = [randn(rng, *xs), randn(rng, *ws)]
    if bias:
        transposed = "transpose" in op.__name__
        ins.append(randn(rng, ws[1] * kw.get("groups", 1) if transposed else ws[0]))
    return ins


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("name", list(CONV))
def test_conv_gradgradcheck(name, bias):
    op, xs, ws, kw = CONV[name]
    ins = conv_inputs(np.random.default_rng(0), op, xs, ws, kw, bias)
    assert gradgradcheck(lambda x, w, *b: op(x, w, *b, **kw), ins)


@pytest.mark.parametrize("name", list(CONV))
def test_conv_gradients_under_create_graph_equal_first_order(name):
    """The recorded ops (create_graph) and the first-order kernels (the fused dx/dw/db call)
    give the same first derivatives."""
    op, xs, ws, kw = CONV[name]
    rng = np.random.default_rng(16)
    ins = conv_inputs(rng, op, xs, ws, kw)
    y = op(*ins, **kw)
    v = t64(rng.standard_normal(y.shape), grad=False)
    recorded = grad(y, ins, v, create_graph=True)
    plain = grad(op(*ins, **kw), ins, v)
    # dx and dw depend on w and x; db = sum(v) on nothing that requires grad.
    assert [g.requires_grad for g in recorded] == [True, True, False]
    for a, b in zip(recorded, plain):
        assert not b.requires_grad
        np.testing.assert_allclose(a._data, b._data, rtol=1e-12, atol=1e-12)


def test_conv_gradgradcheck_noncontiguous_input_and_weight():
    rng = np.random.default_rng(2)
    x, w, b = randn(rng, 2, 3, 6, 5), randn(rng, 4, 3, 2, 3), randn(rng, 4)
    assert gradgradcheck(lambda x, w, b: F.conv2d(x.transpose(2, 3), w.transpose(2, 3), b,
                                                  padding=1, stride=(1, 2)), (x, w, b))
    x1, w1 = randn(rng, 2, 7, 3), randn(rng, 3, 2, 2)
    assert gradgradcheck(lambda x, w: F.conv1d(x.transpose(1, 2), w.transpose(0, 1)), (x1, w1))


def test_conv_gradgradcheck_only_some_inputs():
    """Inputs that need no gradient: the double backward still covers the others."""
    rng = np.random.default_rng(3)
    x, w, b = randn(rng, 2, 3, 5, 5), randn(rng, 4, 3, 3, 3), randn(rng, 4)
    assert gradgradcheck(lambda x: F.conv2d(x, w.detach(), b.detach()), (x,))
    assert gradgradcheck(lambda w: F.conv2d(x.detach(), w, padding=1), (w,))
    assert gradgradcheck(lambda w, b: F.conv2d(x.detach(), w, b, stride=2), (w, b))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_module_padding_modes_gradgradcheck(nd, mode):
    pydl.manual_seed(0)
    cls = nn.Conv1d if nd == 1 else nn.Conv2d
    m = cls(2, 3, 3, padding=2 if nd == 1 else (1, 2), padding_mode=mode, dtype=np.float64)
    rng = np.random.default_rng(4)
    x = randn(rng, *((2, 2, 5) if nd == 1 else (2, 2, 4, 5)))
    # gradgradcheck perturbs the parameters in place, which the module reads.
    assert gradgradcheck(lambda x, w, b: m(x), (x, m.weight, m.bias))


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_module_padding_same_with_mode_gradgradcheck(nd):
    pydl.manual_seed(0)
    cls = nn.Conv1d if nd == 1 else nn.Conv2d
    m = cls(2, 2, 4, padding="same", padding_mode="reflect", bias=False, dtype=np.float64)
    rng = np.random.default_rng(5)
    x = randn(rng, *((1, 2, 6) if nd == 1 else (1, 2, 5, 6)))
    assert gradgradcheck(lambda x, w: m(x), (x, m.weight))


def test_conv_transpose_gradgradcheck_noncontiguous():
    rng = np.random.default_rng(8)
    x, w = randn(rng, 2, 3, 5, 4), randn(rng, 3, 2, 2, 3)
    assert gradgradcheck(lambda x, w: F.conv_transpose2d(x.transpose(2, 3), w, stride=2), (x, w))


@pytest.mark.parametrize("op", ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"])
def test_conv_double_backward_zero_batch(op):
    rng = np.random.default_rng(9)
    nd = int(op[-2])
    spatial = (4,) * nd
    x = randn(rng, 0, 3, *spatial)
    w = randn(rng, *((3, 2) if "transpose" in op else (2, 3)), *((3,) * nd))
    b = randn(rng, 2)
    double_backward_shapes(lambda x, w, b: getattr(F, op)(x, w, b, padding=1), [x, w, b])


THIRD_ORDER_CONV = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
               [(2, 4, 5, 5), (4, 2, 3, 3), (4,)]),
    "conv1d_unbatched": (lambda x, w: F.conv1d(x, w, dilation=2), [(3, 7), (2, 3, 2)]),
    "conv_transpose1d_outpad_over_stride": (
        lambda x, w, b: F.conv_transpose1d(x, w, b, padding=1, output_padding=1, dilation=2),
        [(2, 2, 4), (2, 3, 3), (3,)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1),
                         [(1, 2, 3, 3), (2, 2, 2, 2)]),
}


@pytest.mark.parametrize("name", list(THIRD_ORDER_CONV))
def test_conv_third_order(name):
    fn, shapes = THIRD_ORDER_CONV[name]
    rng = np.random.default_rng(10)
    ins = [randn(rng, *s) for s in shapes]
    v = randn(rng, *fn(*ins).shape)
    assert gradgradcheck(first_derivatives(fn, len(ins)), ins + [v])


def test_conv_double_backward_records_the_backward_ops():
    """Under create_graph, dx and dw are nodes of their own (transposed conv and the weight
    gradient), so they can be differentiated again."""
    rng = np.random.default_rng(11)
    x, w = randn(rng, 1, 2, 4, 4), randn(rng, 3, 2, 3, 3)
    y = F.conv2d(x, w)
    gx, gw = grad(y.sum(), (x, w), create_graph=True)
    assert isinstance(gx.grad_fn, conv_ops.ConvTransposeNd)
    assert isinstance(gw.grad_fn, conv_ops.ConvWeightGrad)
    gx1, gw1 = grad(y.sum(), (x, w))
    assert gx1.grad_fn is None and gw1.grad_fn is None
    np.testing.assert_allclose(gx._data, gx1._data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw._data, gw1._data, rtol=1e-12, atol=1e-12)


class _CountingKernels:
    """pydl._C with a count of each conv kernel called."""

    def __init__(self, real):
        self.real, self.calls = real, {}

    def __getattr__(self, name):
        fn = getattr(self.real, name)

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args, **kwargs)
        return counted


@pytest.mark.parametrize("wanted", ["x_w_b", "w_b", "x"])
def test_conv_first_order_still_uses_the_fused_kernels(monkeypatch, wanted):
    """First order keeps one kernel call for dx, dw and db (conv2d_backward) or dw and db
    (conv2d_backward_weight with the bias flag), and records nothing."""
    rng = np.random.default_rng(12)
    x = randn(rng, 2, 3, 6, 6)
    w = randn(rng, 4, 3, 3, 3)
    b = randn(rng, 4)
    x.requires_grad = "x" in wanted
    w.requires_grad = "w" in wanted
    b.requires_grad = "b" in wanted
    kernels = _CountingKernels(conv_ops._C)
    monkeypatch.setattr(conv_ops, "_C", kernels)
    F.conv2d(x, w, b, padding=1).sum().backward()
    expected = {"x_w_b": {"conv2d_forward": 1, "conv2d_backward": 1},
                "w_b": {"conv2d_forward": 1, "conv2d_backward_weight": 1},
                "x": {"conv2d_forward": 1, "conv2d_backward_input": 1}}[wanted]
    assert kernels.calls == expected
    for t in (x, w, b):
        assert (t.grad is not None) == t.requires_grad
        assert t.grad is None or t.grad.grad_fn is None


# -- version checks of what conv saves (issue #12) ------------------------------------------------
# op -> (function, x shape, w shape). Each saves its input and weight themselves (not a
# reshaped view of them), so an in-place change of either before backward is caught.
SAVES_VIEWS = {
    "conv1d": (F.conv1d, (2, 3, 7), (4, 3, 3)),
    "conv1d_unbatched": (F.conv1d, (3, 7), (4, 3, 3)),
    "conv2d_unbatched": (F.conv2d, (3, 5, 5), (4, 3, 3, 3)),
    "conv2d_noncontiguous": (lambda x, w: F.conv2d(x.transpose(2, 3), w), (2, 3, 5, 5),
                             (4, 3, 3, 3)),
    "conv_transpose1d": (F.conv_transpose1d, (2, 3, 5), (3, 4, 3)),
    "conv_transpose2d": (F.conv_transpose2d, (2, 3, 4, 4), (3, 4, 3, 3)),
    "conv_transpose2d_unbatched": (F.conv_transpose2d, (3, 4, 4), (3, 4, 3, 3)),
}


@pytest.mark.parametrize("changed", ["input", "weight"])
@pytest.mark.parametrize("name", list(SAVES_VIEWS))
def test_conv_inplace_change_of_saved_tensor_raises(name, changed):
    fn, xs, ws = SAVES_VIEWS[name]
    rng = np.random.default_rng(13)
    # The tensor that is changed needs no gradient (a leaf that requires grad cannot be changed
    # in place); the other one does, so backward reads the changed one.
    x = randn(rng, *xs) if changed == "weight" else t64(rng.standard_normal(xs), grad=False)
    w = randn(rng, *ws) if changed == "input" else t64(rng.standard_normal(ws), grad=False)
    y = fn(x, w)
    (x if changed == "input" else w).mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-?place operation"):
        y.sum().backward()


@pytest.mark.parametrize("name", list(SAVES_VIEWS))
def test_conv_backward_without_inplace_change_passes(name):
    fn, xs, ws = SAVES_VIEWS[name]
    rng = np.random.default_rng(14)
    x, w = randn(rng, *xs), randn(rng, *ws)
    y = fn(x, w)
    y.sum().backward()
    assert x.grad is not None and w.grad is not None


def test_conv_inplace_change_caught_under_create_graph():
    rng = np.random.default_rng(15)
    x, w = randn(rng, 2, 3, 7), t64(rng.standard_normal((4, 3, 3)), grad=False)
    y = F.conv1d(x, w)
    w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-?place operation"):
        grad(y.sum(), x, create_graph=True)
    # The backward ops recorded under create_graph check what they saved too.
    w0 = randn(rng, 4, 3, 3)
    w = w0 * 1.0
    gx, = grad((F.conv1d(x, w) ** 2).sum(), x, create_graph=True)
    with pydl.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-?place operation"):
        grad((gx * gx).sum(), w0)


# -- pooling --------------------------------------------------------------------------------------
# id -> (x shape, function); every input is built with distinct(): stable argmaxes
MAX_POOL = {
    "2d_k2": ((2, 3, 4, 6), lambda x: F.max_pool2d(x, 2)),
    "2d_k3_s2_p1": ((2, 2, 7, 6), lambda x: F.max_pool2d(x, 3, 2, 1)),
    "2d_tuples_dilation": ((1, 3, 7, 8), lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 0),
                                                                dilation=(2, 1))),
    "2d_ceil_mode": ((2, 2, 7, 5), lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    "2d_return_indices": ((2, 2, 5, 5), lambda x: F.max_pool2d(x, 2, 1,
                                                               return_indices=True)[0]),
    "2d_unbatched": ((3, 5, 7), lambda x: F.max_pool2d(x, (3, 2), 2)),
    "2d_ones": ((1, 1, 1, 1), lambda x: F.max_pool2d(x, 1)),
    # a window of 16 x 16 = 256 elements has no one-byte taps: the int64 argmax serves
    "2d_large_window": ((1, 1, 16, 17), lambda x: F.max_pool2d(x, 16, 1)),
    "1d_k2": ((2, 3, 8), lambda x: F.max_pool1d(x, 2)),
    "1d_pad_dilation_ceil": ((2, 2, 11), lambda x: F.max_pool1d(x, 3, 2, 1, dilation=2,
                                                               ceil_mode=True)),
    "1d_return_indices": ((2, 2, 7), lambda x: F.max_pool1d(x, 3, 2, return_indices=True)[0]),
    "1d_unbatched": ((3, 7), lambda x: F.max_pool1d(x, 3, 1, 1)),
    "2d_noncontiguous": ((2, 3, 6, 5), lambda x: F.max_pool2d(x.transpose(2, 3), 2, 1)),
}
AVG_POOL = {
    "2d_k2": ((2, 3, 4, 6), lambda x: F.avg_pool2d(x, 2)),
    "2d_k3_s2_p1": ((2, 2, 7, 6), lambda x: F.avg_pool2d(x, 3, 2, 1)),
    "2d_exclude_pad_ceil": ((2, 2, 7, 5), lambda x: F.avg_pool2d(
        x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    "2d_include_pad_ceil": ((1, 2, 5, 7), lambda x: F.avg_pool2d(x, (2, 3), (2, 3), (1, 1),
                                                                 ceil_mode=True)),
    "2d_divisor_override": ((2, 2, 5, 5), lambda x: F.avg_pool2d(x, 3, 2, 1,
                                                                 divisor_override=7)),
    "2d_unbatched": ((3, 5, 7), lambda x: F.avg_pool2d(x, (3, 2), 2)),
    "2d_ones": ((1, 1, 1, 1), lambda x: F.avg_pool2d(x, 1)),
    "1d": ((2, 3, 8), lambda x: F.avg_pool1d(x, 3, 2)),
    "1d_pad_exclude_ceil": ((2, 2, 11), lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True,
                                                               count_include_pad=False)),
    "1d_unbatched": ((3, 7), lambda x: F.avg_pool1d(x, 2, 1, 1)),
    "2d_noncontiguous": ((2, 3, 6, 5), lambda x: F.avg_pool2d(x.transpose(2, 3), 2, 1)),
    "adaptive_2d": ((2, 3, 7, 5), lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    "adaptive_2d_none_and_upsample": ((2, 2, 3, 5), lambda x: F.adaptive_avg_pool2d(x,
                                                                                   (5, None))),
    "adaptive_2d_global": ((2, 3, 4, 5), lambda x: F.adaptive_avg_pool2d(x, 1)),
    "adaptive_1d": ((2, 3, 7), lambda x: F.adaptive_avg_pool1d(x, 3)),
    "adaptive_1d_unbatched": ((3, 11), lambda x: F.adaptive_avg_pool1d(x, 4)),
    "adaptive_noncontiguous": ((2, 3, 6, 5), lambda x: F.adaptive_avg_pool2d(
        x.transpose(2, 3), 3)),
}


@pytest.mark.parametrize("name", list(MAX_POOL))
def test_max_pool_gradgradcheck(name):
    shape, fn = MAX_POOL[name]
    x = distinct(np.random.default_rng(20), *shape)
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name", list(AVG_POOL))
def test_avg_pool_gradgradcheck(name):
    shape, fn = AVG_POOL[name]
    x = randn(np.random.default_rng(21), *shape)
    assert gradgradcheck(fn, (x,))


def test_max_pool_second_derivative_in_x_is_zero_and_in_v_is_the_gather():
    """dx = scatter(v, argmax): no derivative in x, the gather of the argmax in v."""
    x = distinct(np.random.default_rng(22), 2, 3, 5, 5)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    v = randn(np.random.default_rng(23), *y.shape)
    gx, = grad(y, x, v, create_graph=True)
    u = np.random.default_rng(24).standard_normal(x.shape)
    hx, hv = grad((gx * t64(u, grad=False)).sum(), (x, v), allow_unused=True,
                  materialize_grads=True)
    np.testing.assert_array_equal(hx._data, 0.0)
    planes = u.reshape(6, 25)
    expected = np.take_along_axis(planes, idx._data.reshape(6, -1), axis=1).reshape(y.shape)
    np.testing.assert_array_equal(hv._data, expected)


@pytest.mark.parametrize("kind", ["taps", "int64"])
@pytest.mark.parametrize("nd", [1, 2])
def test_max_pool_gather_of_the_input_is_the_output(nd, kind):
    """MaxPoolGather reads the argmax in each of its forms (one-byte window taps with padding
    and dilation, int64 flat indices) exactly where the forward found the maximum."""
    rng = np.random.default_rng(25)
    shape = (2, 3, 11) if nd == 1 else (2, 3, 9, 8)
    x = t64(rng.standard_normal(shape))
    pool = F.max_pool1d if nd == 1 else F.max_pool2d
    y = pool(x, 3, 2, 1, dilation=2, ceil_mode=True, return_indices=kind == "int64")
    y = y[0] if kind == "int64" else y
    node = y.grad_fn
    assert node.where.kind == kind
    argmax, = node._saved
    gathered = pool_ops.MaxPoolGather.call(x._data, argmax, node.where)
    np.testing.assert_array_equal(gathered, y._data)


THIRD_ORDER_POOL = {
    "max_pool2d": ((1, 2, 5, 5), lambda x: F.max_pool2d(x, 3, 2, 1) ** 2),
    "max_pool1d_indices": ((2, 2, 7), lambda x: F.max_pool1d(x, 2, return_indices=True)[0] ** 2),
    "avg_pool2d": ((1, 2, 5, 5), lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                        count_include_pad=False) ** 2),
    "adaptive_avg_pool2d": ((1, 2, 5, 4), lambda x: F.adaptive_avg_pool2d(x, (2, 3)) ** 2),
}


@pytest.mark.parametrize("name", list(THIRD_ORDER_POOL))
def test_pool_third_order(name):
    shape, fn = THIRD_ORDER_POOL[name]
    x = distinct(np.random.default_rng(26), *shape)
    v = randn(np.random.default_rng(27), *fn(x).shape)
    assert gradgradcheck(first_derivatives(fn, 1), [x, v])


ZERO_BATCH_POOL = {
    "max_pool2d": ((0, 3, 4, 4), lambda x: F.max_pool2d(x, 2)),
    "max_pool1d_indices": ((0, 3, 4), lambda x: F.max_pool1d(x, 2, return_indices=True)[0]),
    "avg_pool2d": ((0, 3, 4, 4), lambda x: F.avg_pool2d(x, 2)),
    "adaptive_avg_pool2d": ((0, 3, 4, 4), lambda x: F.adaptive_avg_pool2d(x, 3)),
}


@pytest.mark.parametrize("name", list(ZERO_BATCH_POOL))
def test_pool_double_backward_zero_batch(name):
    shape, fn = ZERO_BATCH_POOL[name]
    double_backward_shapes(fn, [randn(np.random.default_rng(28), *shape)])


def test_max_pool_inplace_change_of_returned_indices_raises():
    """With return_indices the saved argmax is the returned index tensor (as in PyTorch)."""
    x = randn(np.random.default_rng(29), 1, 2, 4, 4)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    idx.zero_()
    with pytest.raises(RuntimeError, match="modified by an in-?place operation"):
        y.sum().backward()


# -- the CUDA branches, on the emulated kernels ---------------------------------------------------
EMULATED = {
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
               (2, 4, 5, 6), (6, 2, 3, 2)),
    "conv1d_unbatched": (lambda x, w: F.conv1d(x, w, stride=2, padding=1), (3, 7), (2, 3, 3)),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=(0, 1),
                                                         output_padding=1, groups=2),
                         (2, 4, 3, 4), (4, 2, 2, 3)),
    "max_pool2d": (lambda x, w: F.max_pool2d(x, 3, 2, 1) * w, (2, 3, 7, 6), (1,)),
    "max_pool1d_indices": (lambda x, w: F.max_pool1d(x, 3, 2, 1, return_indices=True)[0] * w,
                           (2, 3, 9), (1,)),
    "avg_pool2d": (lambda x, w: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                             count_include_pad=False) * w, (2, 3, 7, 6), (1,)),
}


@pytest.mark.parametrize("name", list(EMULATED))
def test_double_backward_on_emulated_cuda_kernels_matches_cpu(monkeypatch, name):
    pytest.importorskip("pydl._C_cuda_emu", reason="pydl._C_cuda_emu not built")
    from pydl._cuda_kernels import emulate_cuda_on_cpu

    fn, xs, ws = EMULATED[name]
    rng = np.random.default_rng(30)
    xa, wa = np.asarray(distinct(rng, *xs)._data), rng.standard_normal(ws)
    results = []
    for emulated in (False, True):
        with monkeypatch.context() as m:
            ctx = contextlib.nullcontext()
            if emulated:  # every kernel call must take the CUDA branch
                for mod in (conv_ops, pool_ops):
                    m.setattr(mod, "_C", None)
                ctx = emulate_cuda_on_cpu()
            with ctx:
                x, w = t64(xa), t64(wa)
                y = fn(x, w)
                v = randn(np.random.default_rng(31), *y.shape)
                gx, gw = grad(y, (x, w), v, create_graph=True)
                second = grad((gx * gx).sum() + (gw * gw).sum(), (x, w, v))
        results.append([gx._data, gw._data] + [g._data for g in second])
    for cpu, emu in zip(*results):
        np.testing.assert_allclose(emu, cpu, rtol=1e-10, atol=1e-10)
