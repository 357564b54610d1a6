"""The ops' and optimizers' CUDA branches, run for real on the emulated kernels.

Inside ``emulate_cuda_on_cpu()`` every op takes the branch it takes for CuPy arrays (the
CudaKernels calls, with device pointers and a stream), but the module is pydl._C_cuda_emu (the
CUDA launchers and device code compiled by g++) working on NumPy arrays. Each case runs the same
public call twice, outside the context (pydl._C's CPU kernels) and inside it, and compares
outputs, gradients, running statistics and optimizer state. During the emulated run the ops'
``_C`` is replaced by a guard that fails on any use, so a silent fall back to the CPU kernels
cannot pass.
"""
import contextlib

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import gradcheck
from pydl.ops import batchnorm as bn_ops
from pydl.ops import conv as conv_ops
from pydl.ops import pool as pool_ops
from pydl.optim import adagrad as adagrad_mod
from pydl.optim import adam as adam_mod
from pydl.optim import rmsprop as rmsprop_mod
from pydl.optim import sgd as sgd_mod

emu = pytest.importorskip("pydl._C_cuda_emu", reason="pydl._C_cuda_emu not built")
from pydl._cuda_kernels import device_kernels, emulate_cuda_on_cpu

DT = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
GUARDED = (conv_ops, pool_ops, bn_ops, sgd_mod, adam_mod, adagrad_mod, rmsprop_mod)


class _NoCPUKernels:
    def __getattr__(self, name):
        raise AssertionError(f"pydl._C.{name} called inside emulate_cuda_on_cpu()")


@contextlib.contextmanager
def emulated(monkeypatch):
    with monkeypatch.context() as m:
        for mod in GUARDED:
            m.setattr(mod, "_C", _NoCPUKernels())
        with emulate_cuda_on_cpu():
            yield


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


def run_both(monkeypatch, fn, arrays, dtype, seed=0):
    """fn(*tensors) -> Tensor or tuple (first is differentiated with a random upstream grad);
    returns [(outputs, grads)] for the CPU run and the emulated CUDA run."""
    results = []
    for ctx in (contextlib.nullcontext(), emulated(monkeypatch)):
        tensors = [pydl.tensor(np.array(a, dtype=dtype), requires_grad=True) for a in arrays]
        with ctx:
            out = fn(*tensors)
            outs = out if isinstance(out, tuple) else (out,)
            gup = np.random.default_rng(seed).standard_normal(outs[0].shape).astype(dtype)
            outs[0].backward(pydl.tensor(gup))
        results.append(([o._data.copy() for o in outs],
                        [None if t.grad is None else t.grad._data.copy() for t in tensors]))
    return results


def assert_same(results, dtype):
    (cpu_out, cpu_grads), (cuda_out, cuda_grads) = results
    for a, b in zip(cpu_out, cuda_out):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(b, a, **tol(dtype))
    for a, b in zip(cpu_grads, cuda_grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(b, a, **tol(dtype))


def test_device_kernels_selects_by_array_and_context():
    x = np.zeros(3)
    assert device_kernels(x) is None
    with emulate_cuda_on_cpu() as k:
        assert device_kernels(x) is k and k.emulated
    assert device_kernels(x) is None


# ---- convolution ---------------------------------------------------------------------------------
CONV_CASES = [  # x shape, (cout, kh, kw), stride, padding, dilation, groups, bias
    ((2, 3, 7, 6), (4, 3, 3), 1, 0, 1, 1, True),
    ((1, 4, 5, 7), (6, 2, 3), (2, 1), (1, 2), 1, 2, False),
    ((3, 2, 9, 8), (2, 3, 2), 2, 1, (2, 1), 2, True),
    ((0, 3, 5, 5), (5, 3, 3), 1, 1, 1, 1, True),      # empty batch
    ((3, 5, 5), (2, 1, 1), 1, 0, 1, 1, True),         # unbatched, prime channels
    ((2, 4, 6, 6), (8, 3, 3), 1, 1, 1, 4, True),      # depthwise (groups = C_in)
]


@DT
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x" + "x".join(map(str, c[0])))
def test_conv2d(monkeypatch, dtype, case):
    xs, (cout, kh, kw), stride, padding, dilation, groups, use_bias = case
    rng = np.random.default_rng(1)
    cin = xs[-3]
    arrays = [rng.standard_normal(xs), rng.standard_normal((cout, cin // groups, kh, kw))]
    if use_bias:
        arrays.append(rng.standard_normal(cout))
    res = run_both(monkeypatch, lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride,
                                                          padding, dilation, groups),
                   arrays, dtype)
    assert_same(res, dtype)


@DT
def test_conv1d_and_noncontiguous_input(monkeypatch, dtype):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3)),
              rng.standard_normal(4)]
    res = run_both(monkeypatch, lambda x, w, b: F.conv1d(x.transpose(0, 1).transpose(0, 1), w, b,
                                                         stride=2, padding=1, dilation=2),
                   arrays, dtype)
    assert_same(res, dtype)


@DT
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_transpose(monkeypatch, dtype, nd):
    rng = np.random.default_rng(3)
    xs = (2, 4) + (5,) * nd
    ws = (4, 3) + (3,) * nd  # groups=2: C_out = 6
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(6)]
    op = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    res = run_both(monkeypatch, lambda x, w, b: op(x, w, b, stride=2, padding=1, output_padding=1,
                                                   groups=2), arrays, dtype)
    assert_same(res, dtype)


def test_conv_transpose_large_output_padding_raises_on_cuda(monkeypatch):
    x = pydl.tensor(np.ones((1, 1, 4, 4)))
    w = pydl.tensor(np.ones((1, 1, 3, 3)))
    F.conv_transpose2d(x, w, stride=1, output_padding=1, dilation=2)  # fine on the CPU
    with emulated(monkeypatch), pytest.raises(RuntimeError, match="cuda"):
        F.conv_transpose2d(x, w, stride=1, output_padding=1, dilation=2)


# ---- pooling -------------------------------------------------------------------------------------
@DT
@pytest.mark.parametrize("args", [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=1, dilation=2),
    dict(kernel_size=2),
], ids=["pad", "ceil", "dilated", "default-stride"])
@pytest.mark.parametrize("xs", [(2, 3, 7, 8), (3, 5, 6), (0, 2, 5, 5)],
                         ids=["4d", "unbatched", "empty-batch"])
def test_max_pool2d(monkeypatch, dtype, args, xs):
    rng = np.random.default_rng(4)
    res = run_both(monkeypatch, lambda x: F.max_pool2d(x, return_indices=True, **args),
                   [rng.standard_normal(xs)], dtype)
    assert_same(res, dtype)
    np.testing.assert_array_equal(res[1][0][1], res[0][0][1])  # indices exactly


@DT
@pytest.mark.parametrize("args", [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(1, 2), divisor_override=5),
], ids=["pad", "ceil-nopad", "divisor"])
@pytest.mark.parametrize("xs", [(2, 3, 7, 8), (3, 5, 6)], ids=["4d", "unbatched"])
def test_avg_pool2d(monkeypatch, dtype, args, xs):
    rng = np.random.default_rng(5)
    res = run_both(monkeypatch, lambda x: F.avg_pool2d(x, **args), [rng.standard_normal(xs)],
                   dtype)
    assert_same(res, dtype)


@DT
def test_pool1d_routes_through_2d_kernels(monkeypatch, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 13))
    res = run_both(monkeypatch, lambda t: F.max_pool1d(t, 3, 2, 1, return_indices=True), [x],
                   dtype)
    assert_same(res, dtype)
    res = run_both(monkeypatch, lambda t: F.avg_pool1d(t, 4, 3, 2, ceil_mode=True), [x], dtype)
    assert_same(res, dtype)


def test_adaptive_pool_raises_on_cuda(monkeypatch):
    x = pydl.tensor(np.ones((1, 2, 4, 4)))
    with emulated(monkeypatch), pytest.raises(RuntimeError, match="cuda"):
        F.adaptive_avg_pool2d(x, 2)


# ---- batch norm ----------------------------------------------------------------------------------
@DT
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("xs,affine", [((4, 3, 5, 5), True), ((7, 2), False), ((3, 5, 7), True)])
def test_batch_norm(monkeypatch, dtype, training, xs, affine):
    rng = np.random.default_rng(7)
    C = xs[1]
    rm0, rv0 = rng.standard_normal(C), rng.random(C) + 0.5
    stats = []

    def fn(x, *wb):
        rm = pydl.tensor(rm0.astype(dtype))
        rv = pydl.tensor(rv0.astype(dtype))
        stats.append((rm, rv))
        return F.batch_norm(x, rm, rv, *wb, training=training, momentum=0.3, eps=1e-3)

    arrays = [rng.standard_normal(xs) * 2 + 1]
    if affine:
        arrays += [rng.standard_normal(C), rng.standard_normal(C)]
    res = run_both(monkeypatch, fn, arrays, dtype)
    assert_same(res, dtype)
    for a, b in zip(stats[0], stats[1]):
        np.testing.assert_allclose(b._data, a._data, **tol(dtype))
    if training:  # the running statistics did move
        assert not np.allclose(stats[1][0]._data, rm0.astype(dtype))


# ---- optimizers ----------------------------------------------------------------------------------
OPTIMIZERS = [
    (pydl.optim.SGD, dict(lr=0.1)),
    (pydl.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    (pydl.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    (pydl.optim.Adam, dict(lr=0.05, weight_decay=0.01)),
    (pydl.optim.Adam, dict(lr=0.05, amsgrad=True)),
    (pydl.optim.AdamW, dict(lr=0.05)),
    (pydl.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                              initial_accumulator_value=0.1)),
    (pydl.optim.RMSprop, dict(lr=0.01)),
    (pydl.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
]


def _train(cls, kwargs, dtype, ctx):
    rng = np.random.default_rng(8)
    shapes = [(5, 3), (7,), (1,), (0, 2)]
    params = [nn.Parameter(pydl.tensor(rng.standard_normal(s).astype(dtype))) for s in shapes]
    with ctx:
        opt = cls(params, **kwargs)
        for step in range(4):
            for i, p in enumerate(params):
                # Parameter 1 skips step 1: its step count (and first momentum step) lags.
                skip = i == 1 and step == 1
                p.grad = None if skip else pydl.tensor(rng.standard_normal(p.shape).astype(dtype))
            opt.step()
    state = [{k: (v._data.copy() if hasattr(v, "data") else v) for k, v in opt.state[p].items()}
             for p in params]
    return [p._data.copy() for p in params], state


@DT
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS,
                         ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(OPTIMIZERS)])
def test_optimizer_steps(monkeypatch, dtype, cls, kwargs):
    cpu_params, cpu_state = _train(cls, kwargs, dtype, contextlib.nullcontext())
    cuda_params, cuda_state = _train(cls, kwargs, dtype, emulated(monkeypatch))
    for a, b in zip(cpu_params, cuda_params):
        np.testing.assert_allclose(b, a, **tol(dtype))
    for sa, sb in zip(cpu_state, cuda_state):
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_allclose(sb[key], sa[key], **tol(dtype))


def test_optimizer_reuses_cached_table_for_stable_arrays(monkeypatch):
    p = nn.Parameter(pydl.tensor(np.ones(4)))
    grad = pydl.tensor(np.full(4, 0.5))
    with emulated(monkeypatch):
        opt = pydl.optim.SGD([p], lr=0.1, momentum=0.9)
        p.grad = grad
        opt.step()
        opt.step()
        tables = dict(opt._cuda_tables)
        opt.step()  # same param, grad and buffer arrays: the same table
        assert {k: v[1] for k, v in opt._cuda_tables.items()} == {k: v[1] for k, v in
                                                                   tables.items()}
    # buf: 0.5, 0.95, 1.355; p = 1 - 0.1 * (0.5 + 0.95 + 1.355)
    np.testing.assert_allclose(p._data, np.full(4, 1 - 0.1 * (0.5 + 0.95 + 1.355)))


# ---- gradient clipping ---------------------------------------------------------------------------
def _clip(dtype, ctx, max_norm, fn="norm"):
    rng = np.random.default_rng(9)
    params = [nn.Parameter(pydl.tensor(np.zeros(s, dtype=dtype))) for s in [(5, 3), (0,), (7,)]]
    for p in params:
        p.grad = pydl.tensor(rng.standard_normal(p.shape).astype(dtype))
    params[0].grad = pydl.tensor(params[0].grad._data.T.copy().T)  # Fortran-ordered gradient
    with ctx:
        if fn == "norm":
            total = float(nn.utils.clip_grad_norm_(params, max_norm))
        else:
            nn.utils.clip_grad_value_(params, max_norm)
            total = None
    return total, [p.grad._data.copy() for p in params]


@DT
@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clipped", "unclipped"])
def test_clip_grad_norm(monkeypatch, dtype, max_norm):
    cpu_total, cpu = _clip(dtype, contextlib.nullcontext(), max_norm)
    with monkeypatch.context() as m:
        m.setattr(nn.utils.clip_grad, "_C", _NoCPUKernels())
        cuda_total, cuda = _clip(dtype, emulated(monkeypatch), max_norm)
    np.testing.assert_allclose(cuda_total, cpu_total, **tol(dtype))
    assert cpu_total > 0.5  # the clipped case really scales
    for a, b in zip(cpu, cuda):
        np.testing.assert_allclose(b, a, **tol(dtype))


def test_clip_grad_value_and_norm_types(monkeypatch):
    _, cpu = _clip(np.float64, contextlib.nullcontext(), 0.3, fn="value")
    with monkeypatch.context() as m:
        m.setattr(nn.utils.clip_grad, "_C", _NoCPUKernels())
        _, cuda = _clip(np.float64, emulated(monkeypatch), 0.3, fn="value")
        for a, b in zip(cpu, cuda):
            np.testing.assert_array_equal(b, a)
        p = nn.Parameter(pydl.tensor(np.ones(3)))
        p.grad = pydl.tensor(np.ones(3))
        with emulated(monkeypatch), pytest.raises(RuntimeError, match="cuda"):
            nn.utils.clip_grad_norm_([p], 1.0, norm_type=float("inf"))



# ---- gradients of the CUDA branches themselves ---------------------------------------------------
def test_gradcheck_conv2d_on_emulated_kernels(monkeypatch):
    # Tiny: every numerical-gradient evaluation is an emulated launch (one host thread per
    # CUDA thread). The other ops' CUDA gradients are compared with the CPU ones above.
    rng = np.random.default_rng(10)
    x, w, b = (pydl.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(1, 2, 3, 3), (2, 1, 2, 2), (2,)])
    with emulated(monkeypatch):
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2), (x, w, b))
