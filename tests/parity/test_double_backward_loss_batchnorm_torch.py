"""PyTorch as a second reference for the double backward of the losses and of batch norm
(float64, rtol 1e-7): for out = f(inputs), the first derivatives g_k = d<out, u>/d input_k are
taken with create_graph=True, then s = sum_k <g_k, v_k> is differentiated again w.r.t. every
differentiable input and the incoming gradient u. All of these (first and second order) must
equal torch's. Skipped where torch is not installed.
"""
import warnings

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
import pydl.ops.loss as loss_ops
from pydl.autograd import grad as pgrad
from pydl.testing import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["none", "mean", "sum"]


def double_backward(lib, fn, arrays, diff, seed=0, third=False):
    """[first derivatives..., second derivatives...] of ``fn`` in ``lib`` (pydl or torch) as
    NumPy arrays. ``arrays``: inputs (None allowed); ``diff``: indices of those that are
    differentiable (the others are constants; integer arrays stay integers). With ``third``,
    also the derivative of the sum of the second derivatives w.r.t. the first input."""
    is_torch = lib is torch
    grad = torch.autograd.grad if is_torch else pgrad

    def make(a, requires):
        if a is None:
            return None
        if is_torch:
            return torch.tensor(a, requires_grad=requires)
        return pydl.tensor(a.copy(), requires_grad=requires)

    ins = [make(a, i in diff) for i, a in enumerate(arrays)]
    xs = [ins[i] for i in diff]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div 'mean' warns in both
        out = fn(*ins)
    rng = np.random.default_rng(seed)
    u = make(rng.standard_normal(tuple(out.shape)), True)
    firsts = grad(out, xs, u, create_graph=True)
    vs = [make(rng.standard_normal(tuple(x.shape)), False) for x in xs]
    s = sum((g * v).sum() for g, v in zip(firsts, vs))
    seconds = grad(s, xs + [u], create_graph=third, allow_unused=True)
    result = list(firsts) + list(seconds)
    if third:
        total = sum(g.sum() for g in seconds if g is not None)
        result += list(grad(total, xs[:1], allow_unused=True))

    def as_array(g):
        if g is None:
            return None
        # np.asarray: pydl's grad() may hand back a 0-d gradient summed over two paths as a
        # NumPy scalar (engine: 0-d array + 0-d array); the values are what is compared here.
        return g.detach().numpy(force=True) if is_torch else np.asarray(g.detach()._data)
    return [as_array(g) for g in result]


def check_against_torch(fn_pydl, fn_torch, arrays, diff, third=False, rtol=1e-7, atol=1e-10):
    assert_same_derivatives(double_backward(pydl, fn_pydl, arrays, diff, third=third),
                            double_backward(torch, fn_torch, arrays, diff, third=third),
                            rtol, atol)


def assert_same_derivatives(mine, ref, rtol=1e-7, atol=1e-10):
    assert len(mine) == len(ref)
    for k, (a, b) in enumerate(zip(mine, ref)):
        if b is None:  # torch: no dependence; pydl may return None or zeros
            assert a is None or not np.any(a), f"entry {k}"
            continue
        if a is None:
            a = np.zeros_like(b)
        assert_close(a, b, rtol=rtol, atol=atol, msg=f"entry {k} of {len(ref)}")


def away_from(x, *kinks, gap=0.05):
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, x + 2 * gap, x)
    return x


# -- elementwise losses -------------------------------------------------------------------------
def _regression(rng, shape, kinks=(0.0,)):
    x = rng.standard_normal(shape)
    d = away_from(x - rng.standard_normal(shape), *kinks, *(-k for k in kinks))
    return [x, x - d, rng.uniform(0.5, 2.0, shape)]


def _probabilities(rng, shape):
    return [rng.uniform(0.05, 0.95, shape), rng.uniform(0.05, 0.95, shape),
            rng.uniform(0.5, 2.0, shape)]


def _logits(rng, shape):
    return [rng.standard_normal(shape) * 3] + _probabilities(rng, shape)[1:]


# name -> (pydl form, torch form, inputs, differentiable inputs). Each form takes
# (x, target, weight, reduction). torch's binary_cross_entropy(_with_logits) has no weight
# derivative, so the weight is a constant there (pydl's is covered by gradgradcheck).
ELEMENTWISE = {
    "mse": (lambda x, t, w, r: F.mse_loss(x, t, reduction=r),
            lambda x, t, w, r: TF.mse_loss(x, t, reduction=r), _regression, (0, 1)),
    "mse_weight": (lambda x, t, w, r: F.mse_loss(x, t, reduction=r, weight=w),
                   lambda x, t, w, r: TF.mse_loss(x, t, reduction=r, weight=w), _regression,
                   (0, 1, 2)),
    "l1_weight": (lambda x, t, w, r: F.l1_loss(x, t, reduction=r, weight=w),
                  lambda x, t, w, r: TF.l1_loss(x, t, reduction=r, weight=w), _regression,
                  (0, 1, 2)),
    "smooth_l1_beta0.4": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.4),
                          lambda x, t, w, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.4),
                          lambda rng, s: _regression(rng, s, (0.0, 0.4)), (0, 1)),
    "smooth_l1_beta0": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        lambda x, t, w, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        _regression, (0, 1)),
    "huber_weight": (lambda x, t, w, r: F.huber_loss(x, t, reduction=r, delta=0.6, weight=w),
                     lambda x, t, w, r: TF.huber_loss(x, t, reduction=r, delta=0.6, weight=w),
                     lambda rng, s: _regression(rng, s, (0.0, 0.6)), (0, 1, 2)),
    "bce_weight": (lambda x, t, w, r: F.binary_cross_entropy(x, t, weight=w, reduction=r),
                   lambda x, t, w, r: TF.binary_cross_entropy(x, t, weight=w, reduction=r),
                   _probabilities, (0, 1)),
    "bce_logits_weight": (
        lambda x, t, w, r: F.binary_cross_entropy_with_logits(x, t, weight=w, reduction=r),
        lambda x, t, w, r: TF.binary_cross_entropy_with_logits(x, t, weight=w, reduction=r),
        _logits, (0, 1)),
    "kl": (lambda x, t, w, r: F.kl_div(x, t, reduction=r),
           lambda x, t, w, r: TF.kl_div(x, t, reduction=r), _probabilities, (0, 1)),
    "kl_log_target": (lambda x, t, w, r: F.kl_div(x, t, reduction=r, log_target=True),
                      lambda x, t, w, r: TF.kl_div(x, t, reduction=r, log_target=True),
                      lambda rng, s: [rng.standard_normal(s), rng.standard_normal(s) - 1, None],
                      (0, 1)),
}


@pytest.mark.parametrize("name,reduction", [
    (name, reduction) for name in ELEMENTWISE
    for reduction in REDUCTIONS + (["batchmean"] if name.startswith("kl") else [])])
def test_elementwise_loss_double_backward_matches_torch(name, reduction):
    fp, ft, make, diff = ELEMENTWISE[name]
    arrays = make(np.random.default_rng(1), (4, 3))
    check_against_torch(lambda x, t, w: fp(x, t, w, reduction),
                        lambda x, t, w: ft(x, t, w, reduction), arrays, diff)


def test_bce_with_logits_pos_weight_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    arrays = _logits(rng, (5, 3)) + [rng.uniform(0.5, 2.0, 3)]
    for reduction in REDUCTIONS:
        check_against_torch(
            lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
                x, t, weight=w, pos_weight=pw, reduction=reduction),
            lambda x, t, w, pw: TF.binary_cross_entropy_with_logits(
                x, t, weight=w, pos_weight=pw, reduction=reduction), arrays, (0, 1))


# -- cross-entropy and nll -----------------------------------------------------------------------
def _classes(rng, shape, ignore):
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    y = rng.integers(0, c, tshape)
    if ignore and y.size > 1:
        y.reshape(-1)[::3] = -100
    return rng.standard_normal(shape) * 2, y, rng.uniform(0.5, 2.0, c)


@pytest.fixture(params=["kernel", "arrays"])
def ce_path(request, monkeypatch):
    monkeypatch.setattr(loss_ops, "_USE_KERNEL", request.param == "kernel")
    return request.param


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [False, True], ids=["all_counted", "some_ignored"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (6, 4), (2, 3, 5), (2, 4, 2, 3)], ids=str)
def test_cross_entropy_double_backward_matches_torch(ce_path, shape, reduction, weighted,
                                                     ignore, eps):
    z, y, w = _classes(np.random.default_rng(3), shape, ignore)
    if not weighted:
        w = None

    def mine(z, y, w):
        return F.cross_entropy(z, y, weight=w, reduction=reduction, label_smoothing=eps)

    def ref(z, y, w):
        return TF.cross_entropy(z, y, weight=w, reduction=reduction, label_smoothing=eps)
    check_against_torch(mine, ref, [z, y, w], (0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_third_order_matches_torch(ce_path, reduction):
    z, y, w = _classes(np.random.default_rng(4), (4, 5), ignore=True)
    check_against_torch(
        lambda z, y, w: F.cross_entropy(z, y, weight=w, reduction=reduction,
                                        label_smoothing=0.1),
        lambda z, y, w: TF.cross_entropy(z, y, weight=w, reduction=reduction,
                                         label_smoothing=0.1), [z, y, w], (0,), third=True)


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)], ids=str)
def test_cross_entropy_probability_target_double_backward_matches_torch(shape, reduction,
                                                                        weighted, eps):
    rng = np.random.default_rng(5)
    c = shape[0] if len(shape) == 1 else shape[1]
    z = rng.standard_normal(shape) * 2
    p = rng.dirichlet(np.ones(c), size=shape[:1] + shape[2:] if len(shape) > 1 else None)
    p = np.moveaxis(p, -1, 1) if len(shape) > 1 else p
    w = rng.uniform(0.5, 2.0, c) if weighted else None
    check_against_torch(
        lambda z, p, w: F.cross_entropy(z, p, weight=w, reduction=reduction,
                                        label_smoothing=eps),
        lambda z, p, w: TF.cross_entropy(z, p, weight=w, reduction=reduction,
                                         label_smoothing=eps), [z, p, w], (0, 1))


@pytest.mark.parametrize("ignore", [False, True], ids=["all_counted", "some_ignored"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4,), (5, 3), (2, 3, 4)], ids=str)
def test_nll_loss_double_backward_matches_torch(shape, reduction, weighted, ignore):
    z, y, w = _classes(np.random.default_rng(6), shape, ignore)
    if not weighted:
        w = None
    dim = 0 if len(shape) == 1 else 1
    check_against_torch(
        lambda z, y, w: F.nll_loss(F.log_softmax(z, dim), y, weight=w, reduction=reduction),
        lambda z, y, w: TF.nll_loss(TF.log_softmax(z, dim), y, weight=w, reduction=reduction),
        [z, y, w], (0,))


# -- batch normalization --------------------------------------------------------------------------
# (bias without weight is left to gradgradcheck: torch 2.13's batchnorm_double_backward fails
# there, "Expected a proper Tensor but got None".)
@pytest.mark.parametrize("affine", ["weight_bias", "weight", "none"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (2, 3, 2, 3), (3, 1, 4)], ids=str)
def test_batch_norm_double_backward_matches_torch(shape, training, affine):
    rng = np.random.default_rng(7)
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    w = rng.standard_normal(C) if affine in ("weight_bias", "weight") else None
    b = rng.standard_normal(C) if affine in ("weight_bias", "bias") else None
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    diff = (0,) + tuple(i for i, a in ((1, w), (2, b)) if a is not None)

    def mine(x, w, b):
        stats = (None, None) if training else (pydl.tensor(rm), pydl.tensor(rv))
        return F.batch_norm(x, *stats, w, b, training=training, eps=1e-3)

    def ref(x, w, b):
        stats = (None, None) if training else (torch.tensor(rm), torch.tensor(rv))
        return TF.batch_norm(x, *stats, w, b, training=training, eps=1e-3)
    check_against_torch(mine, ref, [x, w, b], diff)


def _bn_third_order_problem(training):
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5

    def form(lib, functional):
        def fn(x, w, b):
            stats = (None, None) if training else (lib.tensor(rm), lib.tensor(rv))
            return functional.batch_norm(x, *stats, w, b, training=training)
        return fn
    return [x, w, b], form(pydl, F), form(torch, TF)


def test_batch_norm_eval_third_order_matches_torch():
    arrays, mine, ref = _bn_third_order_problem(training=False)
    check_against_torch(mine, ref, arrays, (0, 1, 2), third=True)


def test_batch_norm_training_third_order_matches_central_differences():
    """Third order in training mode: the reference is central differences of the second-order
    quantity, not torch. torch 2.13's batchnorm_double_backward uses the saved batch mean and
    1/sigma, which carry no derivative, so its third derivative w.r.t. the input misses the
    terms through the statistics (off by O(1) here); pydl recomputes them from x with
    differentiable ops. Orders one and two still equal torch's."""
    arrays, mine, ref = _bn_third_order_problem(training=True)
    assert_same_derivatives(double_backward(pydl, mine, arrays, (0, 1, 2)),
                            double_backward(torch, ref, arrays, (0, 1, 2)))
    third = double_backward(pydl, mine, arrays, (0, 1, 2), third=True)[-1]

    def second_order_total(x):  # the quantity whose x-gradient is `third`
        values = double_backward(pydl, mine, [x] + arrays[1:], (0, 1, 2))[3:]
        return sum(v.sum() for v in values if v is not None)
    x, h = arrays[0], 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        numeric[i] = (second_order_total(x + step) - second_order_total(x - step)) / (2 * h)
    assert_close(third, numeric, rtol=1e-6, atol=1e-7)


def test_small_cnn_with_batch_norm_hessian_vector_product_matches_torch():
    """Conv -> BatchNorm (training) -> ReLU -> Linear -> cross_entropy: the Hessian-vector
    product of the loss w.r.t. every parameter, the whole stack differentiated twice."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 2, 5, 5))
    y = rng.integers(0, 3, 4)
    params = [rng.standard_normal((3, 2, 3, 3)) * 0.5, rng.standard_normal(3) * 0.1,
              rng.standard_normal(3) + 1.0, rng.standard_normal(3) * 0.1,
              rng.standard_normal((3, 27)) * 0.3, rng.standard_normal(3) * 0.1]
    vs = [rng.standard_normal(p.shape) for p in params]

    def hvp(lib, fn):
        make = (lambda a: torch.tensor(a, requires_grad=True)) if lib is torch else \
            (lambda a: pydl.tensor(a.copy(), requires_grad=True))
        ps = [make(p) for p in params]
        g = (torch.autograd.grad if lib is torch else pgrad)(fn(*ps), ps, create_graph=True)
        s = sum((gi * (torch.tensor(v) if lib is torch else pydl.tensor(v))).sum()
                for gi, v in zip(g, vs))
        hv = (torch.autograd.grad if lib is torch else pgrad)(s, ps)
        return [h.detach().numpy() for h in hv]

    def mine(cw, cb, gw, gb, lw, lb):
        h = F.conv2d(pydl.tensor(x), cw, cb, padding=1)
        h = F.relu(F.batch_norm(h, None, None, gw, gb, training=True))
        h = F.avg_pool2d(h, 3, 2).reshape(4, 12)
        return F.cross_entropy(F.linear(h, lw[:, :12], lb), pydl.tensor(y))

    def ref(cw, cb, gw, gb, lw, lb):
        h = TF.conv2d(torch.tensor(x), cw, cb, padding=1)
        h = TF.relu(TF.batch_norm(h, None, None, gw, gb, training=True))
        h = TF.avg_pool2d(h, 3, 2).reshape(4, 12)
        return TF.cross_entropy(TF.linear(h, lw[:, :12], lb), torch.tensor(y))
    for a, b in zip(hvp(pydl, mine), hvp(torch, ref)):
        assert_close(a, b, rtol=1e-7, atol=1e-10)


# -- NaN and inf semantics (issue #13) -----------------------------------------------------------
def test_batch_norm_running_statistics_after_inf_input_match_torch():
    """An inf in a channel makes its batch mean inf and its variance NaN (inf - inf): the
    running statistics follow, as in PyTorch."""
    x = np.random.default_rng(10).standard_normal((4, 3, 5))
    x[1, 0, 2] = np.inf
    x[2, 1, 1] = -np.inf
    rm, rv = pydl.zeros(3, dtype=np.float64), pydl.ones(3, dtype=np.float64)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    y = F.batch_norm(pydl.tensor(x), rm, rv, training=True)
    ty = TF.batch_norm(torch.tensor(x), trm, trv, training=True)
    assert_close(rm, trm.numpy())
    assert_close(rv, trv.numpy())
    assert_close(y, ty.numpy())
