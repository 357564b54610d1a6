"""Safety of sizes, arguments, aliasing and hostile indices (issue #14, "Safety and
reproducibility"): every case here used to return a wrong result, print a negative size, lose
updates or kill the interpreter.

Overflow: every size derived from user values is checked against int64 in the Python layer
(pydl/ops/_sizes.py) and again in C++ (csrc/common/checked.h): RuntimeError, as PyTorch raises for
"value cannot be converted to type int64_t without overflow" / "Storage size calculation
overflowed". No message may contain a negative number.
"""
import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C

BIG = 2 ** 63 - 1
NEGATIVE_NUMBER = re.compile(r"(?<![\w.])-\d")


def _no_negative_size(excinfo):
    msg = str(excinfo.value)
    assert not NEGATIVE_NUMBER.search(msg), msg


X = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((1, 1, 3, 3)).astype(np.float32)


def _x():
    return pydl.tensor(X)


def _w():
    return pydl.tensor(W)


# ---- shape arithmetic: Python layer ---------------------------------------------------------
OVERFLOW_CASES = [
    ("conv2d padding 2**63-1", lambda: F.conv2d(_x(), _w(), padding=(BIG, 0))),
    ("conv2d padding 2**62", lambda: F.conv2d(_x(), _w(), padding=(2 ** 62, 0))),
    ("conv2d dilation 2**63-1", lambda: F.conv2d(_x(), _w(), dilation=(BIG, 1))),
    ("conv2d stride 2**64", lambda: F.conv2d(_x(), _w(), stride=(2 ** 64, 1))),
    ("conv1d padding 2**63-1", lambda: F.conv1d(pydl.randn(1, 1, 5), pydl.randn(1, 1, 3),
                                                padding=BIG)),
    ("conv_transpose2d padding 2**63-1", lambda: F.conv_transpose2d(_x(), _w(),
                                                                   padding=(BIG, 0))),
    ("conv_transpose2d stride 2**62", lambda: F.conv_transpose2d(_x(), _w(), stride=(2 ** 62, 1))),
    ("conv_transpose2d dilation 2**63-1", lambda: F.conv_transpose2d(_x(), _w(),
                                                                    dilation=(BIG, 1))),
    ("max_pool2d dilation 2**63-1", lambda: F.max_pool2d(_x(), 2, dilation=(BIG, 1))),
    ("max_pool2d kernel 2**63", lambda: F.max_pool2d(_x(), (2 ** 63, 2))),
    ("avg_pool2d stride 2**64", lambda: F.avg_pool2d(_x(), 2, stride=(2 ** 64, 1))),
    ("adaptive_avg_pool2d 2**62 x 4", lambda: F.adaptive_avg_pool2d(_x(), (2 ** 62, 4))),
    ("max_pool1d dilation 2**62", lambda: F.max_pool1d(pydl.randn(1, 1, 5), 3,
                                                       dilation=2 ** 62)),
]


@pytest.mark.parametrize("name,call", OVERFLOW_CASES, ids=[c[0] for c in OVERFLOW_CASES])
def test_overflowing_sizes_raise_runtime_error(name, call):
    with pytest.raises(RuntimeError, match="int64|overflow") as excinfo:
        call()
    _no_negative_size(excinfo)


def test_huge_but_representable_padding_is_a_shape_error_not_zeros():
    # 2**61 fits int64 after doubling; the output would then hold ~2**63 elements of 4 bytes:
    # the byte count overflows, which must raise before any allocation.
    with pytest.raises(RuntimeError, match="overflow") as excinfo:
        F.conv2d(_x(), _w(), padding=(2 ** 61, 2 ** 61))
    _no_negative_size(excinfo)


def test_kernel_larger_than_input_messages_have_no_negative_size():
    with pytest.raises(ValueError) as excinfo:
        F.max_pool2d(_x(), 2, dilation=(2 ** 40, 1))
    _no_negative_size(excinfo)
    with pytest.raises(ValueError) as excinfo:
        F.conv_transpose2d(_x(), _w(), padding=(2 ** 40, 0))
    _no_negative_size(excinfo)
    with pytest.raises(ValueError) as excinfo:
        F.conv2d(_x(), _w(), dilation=(2 ** 40, 1))
    _no_negative_size(excinfo)


def test_large_valid_stride_still_works():
    # Overflow checks must not reject sizes that fit: a huge stride keeps one output row.
    y = F.conv2d(_x(), _w(), stride=(BIG, 1))
    assert y.shape == (1, 1, 1, 3)
    direct = np.array([[(X[0, 0, 0:3, j:j + 3] * W[0, 0]).sum() for j in range(3)]])
    np.testing.assert_allclose(y.numpy()[0, 0], direct, rtol=1e-5, atol=1e-5)
    z = F.avg_pool2d(_x(), 2, stride=(BIG, 1))
    np.testing.assert_allclose(z.numpy()[0, 0, 0],
                               [X[0, 0, 0:2, j:j + 2].mean() for j in range(4)], rtol=1e-6)


# ---- shape arithmetic: C++ bindings (checked.h) ----------------------------------------------
CPP_OVERFLOW_CASES = [
    ("conv2d_forward padding", lambda: _C.conv2d_forward(X, W, None, (1, 1), (BIG, 0), (1, 1), 1)),
    ("conv2d_forward padding 2**62", lambda: _C.conv2d_forward(X, W, None, (1, 1), (2 ** 62, 0),
                                                               (1, 1), 1)),
    ("conv2d_forward dilation", lambda: _C.conv2d_forward(X, W, None, (1, 1), (0, 0), (BIG, 1),
                                                          1)),
    ("conv2d_backward_input hw", lambda: _C.conv2d_backward_input(
        np.ones((1, 1, 3, 3), np.float32), W, (BIG, 5), (1, 1), (0, 0), (1, 1), 1)),
    ("column bytes huge shape", lambda: _C.conv2d_column_buffer_bytes(
        (2 ** 40, 2 ** 40, 8, 8), (4, 2 ** 40, 3, 3), (1, 1), (0, 0), (1, 1), 1, 4)),
    ("max_pool2d_forward out 2**62", lambda: _C.max_pool2d_forward(
        X, (2, 2), (2, 2), (0, 0), (1, 1), (2 ** 62, 4))),
    ("max_pool2d_forward dilation", lambda: _C.max_pool2d_forward(
        X, (2, 2), (1, 1), (0, 0), (BIG, 1), (1, 4))),
    ("avg_pool2d_forward stride", lambda: _C.avg_pool2d_forward(
        X, (2, 2), (BIG, 1), (0, 0), (2, 4), True, 0)),
    ("adaptive out", lambda: _C.adaptive_avg_pool2d_forward(X, (2 ** 62, 2 ** 62))),
]


@pytest.mark.parametrize("name,call", CPP_OVERFLOW_CASES, ids=[c[0] for c in CPP_OVERFLOW_CASES])
def test_bindings_check_size_arithmetic(name, call):
    with pytest.raises((RuntimeError, ValueError)) as excinfo:
        call()
    assert "int64" in str(excinfo.value) or "larger than" in str(excinfo.value), excinfo.value
    _no_negative_size(excinfo)


def test_checked_overflow_is_runtime_error_from_cpp():
    with pytest.raises(RuntimeError, match="overflows int64"):
        _C.conv2d_forward(X, W, None, (1, 1), (BIG, 0), (1, 1), 1)


# ---- binding arguments -----------------------------------------------------------------------
def _run_isolated(code, cwd):
    """Run ``code`` in a fresh interpreter (a crash there must not take the test run down),
    importing the pydl under test (source tree or installed wheel)."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("itemsize", [0, -4, 3, 16])
def test_column_buffer_bytes_itemsize_is_validated(itemsize, tmp_path):
    # itemsize=0 used to divide by zero in C++ (SIGFPE: the interpreter died). Checked in a
    # subprocess so that a regression shows as a failed test, not a dead test run.
    r = _run_isolated(cwd=tmp_path, code=f"""
        from pydl import _C
        try:
            _C.conv2d_column_buffer_bytes((8, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1),
                                          (1, 1), 1, {itemsize})
        except ValueError as e:
            print("ValueError", e)
    """)
    assert r.returncode == 0, r.stderr
    assert "ValueError" in r.stdout and "itemsize" in r.stdout


def test_column_buffer_bytes_valid_itemsizes():
    b4 = _C.conv2d_column_buffer_bytes((8, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1), (1, 1),
                                       1, 4)
    b8 = _C.conv2d_column_buffer_bytes((8, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1), (1, 1),
                                       1, 8)
    assert b4 >= 0 and b8 > 0


@pytest.mark.parametrize("kw", [dict(stride=(0, 1)), dict(dilation=(1, 0)), dict(groups=0),
                                dict(padding=(-1, 0)), dict(groups=-3)])
def test_column_buffer_bytes_hyper_parameters_are_validated(kw):
    args = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    args.update(kw)
    with pytest.raises(ValueError):
        _C.conv2d_column_buffer_bytes((2, 4, 8, 8), (4, 4, 3, 3), args["stride"],
                                      args["padding"], args["dilation"], args["groups"], 4)


# ---- optimizer aliasing ----------------------------------------------------------------------
STEPS = {
    "sgd": lambda p, g, s: _C.sgd_step(p, g, s[0], [True] * len(p), lr=0.1, momentum=0.9,
                                       dampening=0.0, weight_decay=0.0, nesterov=False,
                                       maximize=False),
    "adam": lambda p, g, s: _C.adam_step(p, g, s[0], s[1], [], [1.0] * len(p), lr=0.1,
                                         beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                         amsgrad=False, maximize=False,
                                         decoupled_weight_decay=False),
    "adagrad": lambda p, g, s: _C.adagrad_step(p, g, s[0], [1.0] * len(p), lr=0.1, lr_decay=0.0,
                                               weight_decay=0.0, eps=1e-10, maximize=False),
    "rmsprop": lambda p, g, s: _C.rmsprop_step(p, g, s[0], [], [], lr=0.1, alpha=0.99, eps=1e-8,
                                               weight_decay=0.0, momentum=0.0, centered=False,
                                               maximize=False),
    "adadelta": lambda p, g, s: _C.adadelta_step(p, g, s[0], s[1], lr=1.0, rho=0.9, eps=1e-6,
                                                 weight_decay=0.0, maximize=False),
    "adamax": lambda p, g, s: _C.adamax_step(p, g, s[0], s[1], [1.0] * len(p), lr=0.1,
                                             beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                             maximize=False),
    "nadam": lambda p, g, s: _C.nadam_step(p, g, s[0], s[1], [1.0] * len(p), [0.9] * len(p),
                                           lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                                           weight_decay=0.0, momentum_decay=0.004,
                                           maximize=False, decoupled_weight_decay=False),
    "radam": lambda p, g, s: _C.radam_step(p, g, s[0], s[1], [1.0] * len(p), lr=0.1, beta1=0.9,
                                           beta2=0.999, eps=1e-8, weight_decay=0.0,
                                           maximize=False, decoupled_weight_decay=False),
}


def _state(params):
    return [[np.zeros_like(p) for p in params] for _ in range(2)]


@pytest.mark.parametrize("name", sorted(STEPS))
@pytest.mark.parametrize("layout", ["same array twice", "overlapping views"])
def test_fused_steps_refuse_aliased_parameters(name, layout):
    base = np.zeros(300_000, np.float32)
    if layout == "same array twice":
        params = [base, base]
    else:
        params = [base[:200_000], base[100_000:]]
    grads = [np.ones_like(p) for p in params]
    before = base.copy()
    with pytest.raises(ValueError, match="share memory"):
        STEPS[name](params, grads, _state(params))
    np.testing.assert_array_equal(base, before)  # refused before anything was written


@pytest.mark.parametrize("name", sorted(STEPS))
def test_fused_steps_refuse_state_aliasing_a_parameter(name):
    p = np.zeros(1000, np.float32)
    params, grads = [p], [np.ones_like(p)]
    state = _state(params)
    state[0][0] = p
    with pytest.raises(ValueError, match="share memory"):
        STEPS[name](params, grads, state)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_fused_steps_accept_disjoint_views_of_one_buffer(name):
    # Adjacent, non-overlapping slices of one buffer are fine (a flat parameter buffer).
    base = np.zeros(2000, np.float32)
    params = [base[:1000], base[1000:]]
    grads = [np.ones_like(p) for p in params]
    STEPS[name](params, grads, _state(params))
    assert np.all(base != 0) or name == "adadelta"


def test_gradient_may_be_the_parameter_itself():
    # Reading and writing the same elements is elementwise in place: allowed.
    p = np.ones(100, np.float32)
    _C.sgd_step([p], [p], [], [], lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0,
                nesterov=False, maximize=False)
    np.testing.assert_array_equal(p, 0.5)


def test_optimizer_refuses_two_parameters_over_one_storage():
    base = np.zeros(64, np.float32)
    a = pydl.nn.Parameter(pydl.tensor(base))
    b = pydl.nn.Parameter(pydl.zeros(64))
    b._data = a._data  # two Parameters, one storage
    for p in (a, b):
        p.grad = pydl.ones(64)
    for make in (lambda ps: pydl.optim.SGD(ps, lr=0.1),
                 lambda ps: pydl.optim.Adam(ps, lr=0.1)):
        opt = make([a, b])
        with pytest.raises(ValueError, match="share memory"):
            opt.step()


def test_optimizer_refuses_overlapping_non_contiguous_parameters():
    # Strided views are updated through contiguous copies written back afterwards: overlapping
    # ones would lose updates just the same, so they are refused too.
    base = np.zeros((8, 8), np.float32)
    a = pydl.nn.Parameter(pydl.zeros(8, 4))
    b = pydl.nn.Parameter(pydl.zeros(8, 4))
    a._data, b._data = base[:, 0:8:2], base[:, 2:6]
    for p in (a, b):
        p.grad = pydl.ones(8, 4)
    with pytest.raises(ValueError, match="share memory"):
        pydl.optim.SGD([a, b], lr=0.1).step()


def test_optimizer_accepts_interleaved_strided_parameters():
    base = np.zeros((8, 8), np.float32)
    a = pydl.nn.Parameter(pydl.zeros(8, 4))
    b = pydl.nn.Parameter(pydl.zeros(8, 4))
    a._data, b._data = base[:, 0::2], base[:, 1::2]
    for p in (a, b):
        p.grad = pydl.ones(8, 4)
    pydl.optim.SGD([a, b], lr=0.5).step()
    np.testing.assert_array_equal(base, -0.5)


def test_same_parameter_listed_twice_is_updated_once():
    p = pydl.nn.Parameter(pydl.zeros(10))
    p.grad = pydl.ones(10)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        opt = pydl.optim.SGD([p, p], lr=0.5)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), -0.5)


# ---- hostile indices and bounds --------------------------------------------------------------
def test_max_pool_backward_refuses_float_indices():
    dy = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(TypeError, match="int64"):
        _C.max_pool2d_backward(dy, np.array([[[[0.7, 1.9], [8.2, 10.5]]]]), (4, 4))
    with pytest.raises(TypeError, match="int64"):
        _C.max_pool2d_backward(dy, np.zeros((1, 1, 2, 2), np.uint64), (4, 4))


def test_max_pool_backward_ignores_out_of_range_indices():
    dy = np.ones((1, 1, 2, 2), np.float32)
    idx = np.array([[[[-5, 2 ** 62], [16, 3]]]], np.int64)
    dx = _C.max_pool2d_backward(dy, idx, (4, 4))
    expect = np.zeros((1, 1, 4, 4), np.float32)
    expect[0, 0, 0, 3] = 1
    np.testing.assert_array_equal(dx, expect)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_uint64_targets_do_not_wrap_to_ignore_index(loss):
    logits = pydl.randn(3, 4)
    inp = logits if loss == "cross_entropy" else F.log_softmax(logits, dim=1)
    target = pydl.tensor(np.array([1, 2, 2 ** 64 - 100], np.uint64))
    with pytest.raises(RuntimeError, match="UInt64"):
        getattr(F, loss)(inp, target)


def test_cross_entropy_binding_refuses_uint64_targets():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="uint64"):
        _C.cross_entropy_forward(z, np.array([1, 2, 2 ** 64 - 100], np.uint64), None, -100, 0.0)


def test_cross_entropy_other_integer_targets_still_work():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 4))
    t = np.array([0, 3, 1, 2, 3])
    ref = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(5), t])
    for dt in (np.int64, np.int32, np.uint8, np.uint32):
        out = F.cross_entropy(pydl.tensor(z), pydl.tensor(t.astype(dt)))
        np.testing.assert_allclose(out.item(), ref, rtol=1e-12)


NAN = math.nan


@pytest.mark.parametrize("lo,hi", [(NAN, 1.0), (0.0, NAN), (NAN, NAN)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_kernel_nan_bounds_give_nan_as_torch(lo, hi, dtype):
    a = np.array([1.0, -2.0, 3.0, 0.5] * 300, dtype)
    _C.clamp_([a], lo, hi)
    assert np.isnan(a).all()


def test_clamp_kernel_ordinary_bounds_and_nan_elements():
    a = np.array([1.0, -2.0, 3.0, NAN], np.float32)
    _C.clamp_([a], -1.0, 2.0)
    np.testing.assert_array_equal(a[:3], [1.0, -1.0, 2.0])
    assert np.isnan(a[3])
    b = np.array([1.0, -2.0, 3.0], np.float64)
    _C.clamp_([b], 2.0, 1.0)  # min > max: every element is max, as torch.clamp
    np.testing.assert_array_equal(b, [1.0, 1.0, 1.0])


def test_clip_grad_value_nan_follows_torch():
    p = pydl.nn.Parameter(pydl.tensor([1.0, -2.0, 3.0]))
    p.grad = pydl.tensor([1.0, -2.0, 3.0])
    pydl.nn.utils.clip_grad_value_([p], NAN)
    assert np.isnan(p.grad.numpy()).all()


def test_torch_agrees_on_nan_clamp():
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.0, -2.0, 3.0])
    assert torch.isnan(t.clone().clamp_(NAN, 1.0)).all()
    assert torch.isnan(t.clone().clamp_(0.0, NAN)).all()
