"""PyTorch as a reference for the double backward of convolution and pooling (float64,
rtol 1e-7): the first derivatives g = grad(f(inputs), inputs, v, create_graph=True) and the
gradient of sum_i <g_i, u_i> w.r.t. the inputs and v, for every mode and flag of the ops; and a
Hessian-vector product through a small CNN. Skipped where torch is not installed."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import grad

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-7, 1e-9


def distinct(rng, shape):
    """Values 0.1 apart in random order: the maxima of pooling windows are unambiguous."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape)


def double_backward(lib, fn, arrays, seed=0):
    """(first derivatives, second derivatives w.r.t. inputs and v) of fn in pydl or torch."""
    """arrays: NumPy arrays (made tensors that require grad) or tensors of lib to use as they are
    (a module's parameters)."""
    if lib == "torch":
        autograd_grad, wrap = torch.autograd.grad, torch.tensor
    else:
        autograd_grad, wrap = grad, pydl.tensor
    ins = [wrap(a, requires_grad=True) if isinstance(a, np.ndarray) else a for a in arrays]
    rng = np.random.default_rng(seed)
    out = fn(*ins)
    v = wrap(rng.standard_normal(tuple(out.shape)), requires_grad=True)
    firsts = autograd_grad(out, ins, v, create_graph=True, allow_unused=True)
    total = None
    for x, g in zip(ins, firsts):
        u = wrap(rng.standard_normal(tuple(x.shape)))
        if g is not None and g.requires_grad:
            s = (g * u).sum()
            total = s if total is None else total + s
    seconds = autograd_grad(total, ins + [v], allow_unused=True)

    def values(gs, like):
        return [np.zeros(tuple(x.shape)) if g is None else g.detach().numpy()
                for g, x in zip(gs, like)]
    return values(firsts, ins), values(seconds, ins + [v])


def check(fn_pydl, fn_torch, arrays, torch_arrays=None):
    firsts, seconds = double_backward("pydl", fn_pydl, arrays)
    t_firsts, t_seconds = double_backward("torch", fn_torch,
                                          arrays if torch_arrays is None else torch_arrays)
    for a, b in zip(firsts + seconds, t_firsts + t_seconds):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# -- convolution ----------------------------------------------------------------------------------
# (function name, x shape, w shape, bias, keyword arguments)
CONV = [
    ("conv2d", (2, 4, 7, 6), (6, 4, 3, 3), True, dict(stride=2, padding=1)),
    ("conv2d", (2, 4, 7, 8), (6, 2, 2, 3), True,
     dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2)),
    ("conv2d", (1, 3, 6, 5), (3, 1, 4, 3), False, dict(padding="same", groups=3,
                                                       dilation=(1, 2))),
    ("conv2d", (2, 3, 5, 5), (2, 3, 3, 3), True, dict(padding="valid")),
    ("conv2d", (3, 5, 7), (2, 3, 2, 2), True, dict(padding=1)),                      # unbatched
    ("conv1d", (2, 3, 11), (4, 3, 3), True, dict(stride=2, padding=2, dilation=2)),
    ("conv1d", (2, 4, 8), (2, 2, 4), False, dict(padding="same", groups=2)),
    ("conv1d", (3, 7), (2, 3, 3), True, {}),                                          # unbatched
    ("conv_transpose2d", (2, 4, 4, 3), (4, 3, 3, 2), True,
     dict(stride=(2, 3), padding=1, output_padding=(1, 0), groups=2, dilation=(2, 1))),
    ("conv_transpose2d", (2, 2, 3, 4), (2, 3, 2, 2), True, dict(dilation=2, output_padding=1)),
    ("conv_transpose2d", (3, 4, 4), (3, 2, 3, 3), False, dict(stride=2)),            # unbatched
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), True,
     dict(stride=3, padding=1, output_padding=2, groups=2)),
    ("conv_transpose1d", (2, 2, 4), (2, 3, 3), True,
     dict(padding=1, dilation=2, output_padding=1)),
    ("conv_transpose1d", (3, 5), (3, 2, 2), True, dict(stride=2)),                   # unbatched
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's copy note
@pytest.mark.parametrize("case", CONV, ids=lambda c: f"{c[0]}-x{'x'.join(map(str, c[1]))}")
def test_conv_double_backward_matches_torch(case):
    name, xs, ws, bias, kw = case
    rng = np.random.default_rng(1)
    groups = kw.get("groups", 1)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws)]
    if bias:
        arrays.append(rng.standard_normal(ws[1] * groups if "transpose" in name else ws[0]))
    check(lambda *a: getattr(F, name)(*a, **kw), lambda *a: getattr(TF, name)(*a, **kw), arrays)


def test_conv_noncontiguous_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 2, 3)),
              rng.standard_normal(4)]
    check(lambda x, w, b: F.conv2d(x.transpose(2, 3), w.transpose(2, 3), b, padding=1),
          lambda x, w, b: TF.conv2d(x.transpose(2, 3), w.transpose(2, 3), b, padding=1), arrays)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_module_padding_mode_double_backward_matches_torch(nd, mode):
    pydl.manual_seed(0)
    pcls, tcls = (nn.Conv1d, torch.nn.Conv1d) if nd == 1 else (nn.Conv2d, torch.nn.Conv2d)
    kw = dict(padding=2 if nd == 1 else (1, 2), padding_mode=mode, stride=1)
    m = pcls(3, 4, 3, dtype=np.float64, **kw)
    tm = tcls(3, 4, 3, dtype=torch.float64, **kw)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight._data))
        tm.bias.copy_(torch.tensor(m.bias._data))
    x = np.random.default_rng(3).standard_normal((2, 3, 6) if nd == 1 else (2, 3, 5, 6))
    check(lambda x, w, b: m(x), lambda x, w, b: tm(x), [x, m.weight, m.bias],
          [x, tm.weight, tm.bias])


# -- pooling --------------------------------------------------------------------------------------
# (function name, x shape, positional arguments, keyword arguments)
POOL = [
    ("max_pool2d", (2, 3, 7, 6), (3, 2, 1), {}),
    ("max_pool2d", (2, 2, 7, 8), ((2, 3), (1, 2), (1, 0)), dict(dilation=(2, 1))),
    ("max_pool2d", (2, 2, 7, 5), (3, 2, 1), dict(ceil_mode=True)),
    ("max_pool2d", (3, 5, 7), (2,), {}),                                              # unbatched
    ("max_pool2d", (1, 1, 16, 17), (16, 1), {}),                       # window > 255 elements
    ("max_pool1d", (2, 3, 11), (3, 2, 1), dict(dilation=2, ceil_mode=True)),
    ("max_pool1d", (3, 8), (2,), {}),                                                 # unbatched
    ("avg_pool2d", (2, 3, 7, 6), (3, 2, 1), {}),
    ("avg_pool2d", (2, 2, 7, 5), (3, 2, 1), dict(ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", (1, 2, 5, 7), ((2, 3), (2, 3), (1, 1)), dict(ceil_mode=True)),
    ("avg_pool2d", (2, 2, 5, 5), (3, 2, 1), dict(divisor_override=7)),
    ("avg_pool2d", (3, 5, 7), ((3, 2), 2), {}),                                       # unbatched
    ("avg_pool1d", (2, 3, 11), (3, 2, 1), dict(ceil_mode=True, count_include_pad=False)),
    ("avg_pool1d", (3, 8), (2, 1, 1), {}),                                            # unbatched
    ("adaptive_avg_pool2d", (2, 3, 7, 5), ((3, 2),), {}),
    ("adaptive_avg_pool2d", (2, 2, 3, 5), ((5, None),), {}),
    ("adaptive_avg_pool1d", (2, 3, 7), (3,), {}),
    ("adaptive_avg_pool1d", (3, 11), (4,), {}),                                       # unbatched
]


@pytest.mark.parametrize("case", POOL, ids=lambda c: f"{c[0]}-x{'x'.join(map(str, c[1]))}")
def test_pool_double_backward_matches_torch(case):
    name, xs, args, kw = case
    arrays = [distinct(np.random.default_rng(4), xs)]
    check(lambda x: getattr(F, name)(x, *args, **kw) ** 2,
          lambda x: getattr(TF, name)(x, *args, **kw) ** 2, arrays)


@pytest.mark.parametrize("nd", [1, 2])
def test_max_pool_return_indices_double_backward_matches_torch(nd):
    name = f"max_pool{nd}d"
    xs = (2, 3, 9) if nd == 1 else (2, 3, 6, 7)
    arrays = [distinct(np.random.default_rng(5), xs)]
    check(lambda x: getattr(F, name)(x, 3, 2, 1, return_indices=True)[0] ** 2,
          lambda x: getattr(TF, name)(x, 3, 2, 1, return_indices=True)[0] ** 2, arrays)


# -- a small CNN: Hessian-vector product w.r.t. every weight ---------------------------------------
def small_cnn(lib, x, w1, b1, w2, w3):
    Fn = F if lib == "pydl" else TF
    h = Fn.max_pool2d((Fn.conv2d(x, w1, b1, padding=1)).tanh(), 2)
    h = Fn.avg_pool2d(Fn.conv_transpose2d(h, w2, stride=2).tanh(), 2, ceil_mode=True)
    h = Fn.adaptive_avg_pool2d(Fn.conv1d(h.flatten(2), w3, padding=1).unsqueeze(2), (1, 2))
    return (h ** 2).sum()


def test_small_cnn_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((2, 1, 8, 8)), 0.5 * rng.standard_normal((3, 1, 3, 3)),
              rng.standard_normal(3), 0.5 * rng.standard_normal((3, 2, 2, 2)),
              0.5 * rng.standard_normal((4, 2, 3))]
    directions = [rng.standard_normal(a.shape) for a in arrays[1:]]
    results = []
    for lib, wrap, autograd_grad in (("pydl", pydl.tensor, grad),
                                     ("torch", torch.tensor, torch.autograd.grad)):
        x = wrap(arrays[0])
        params = [wrap(a, requires_grad=True) for a in arrays[1:]]
        loss = small_cnn(lib, x, *params)
        gs = autograd_grad(loss, params, create_graph=True)
        gv = sum((g * wrap(d)).sum() for g, d in zip(gs, directions))
        hv = autograd_grad(gv, params)
        results.append([g.detach().numpy() for g in gs] + [h.detach().numpy() for h in hv])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
