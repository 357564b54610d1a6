"""Double backward (create_graph=True) of every loss and of batch norm: float64 gradgradcheck
over every mode and flag (reductions, weights, pos_weight, ignore_index, label smoothing,
log_target, beta/delta, training and eval, affine or not), shapes with 1, primes, K-dim class
inputs, zero-size batches and non-contiguous inputs; third order where a backward is an op of its
own (CrossEntropyBackward, BatchNormBackward); and the version check of the integer targets that
cross_entropy / nll_loss save (issue #12).

gradgradcheck needs contiguous inputs that it can perturb, so non-contiguous cases make the view
inside the checked function (a transpose), which hands the op a strided array.
"""
import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
import pydl.ops.loss as loss_ops
from pydl.autograd import grad
from pydl.autograd import gradcheck as _gradcheck
from pydl.autograd import gradgradcheck as _gradgradcheck
from pydl.autograd.functional import hessian
from pydl.ops.batchnorm import BatchNormBackward
from pydl.ops.loss import CrossEntropyBackward
from pydl.testing import assert_close

REDUCTIONS = ["none", "mean", "sum"]


def gradgradcheck(fn, inputs, **kw):
    """First and second derivatives against central differences. gradgradcheck alone compares
    the analytic first derivative's derivatives with differences of that same first derivative,
    so it cannot see a wrong first derivative (an extra constant, say): gradcheck does.
    Tighter than the defaults: float64 central differences of an analytic gradient are good to
    ~1e-9 here, so a wrong factor in a second-derivative formula cannot hide."""
    return (_gradcheck(fn, inputs, atol=1e-7, rtol=1e-6)
            and _gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6, **kw))


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def away_from(x, *kinks, gap=0.05):
    """Move values off the points where a derivative jumps, so central differences (eps 1e-6)
    see one branch only."""
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, x + 2 * gap, x)
    return x


def third_order_check(fn, x):
    """gradgradcheck of x -> d fn / dx (built with create_graph): checks third derivatives."""
    def first(x):
        (g,) = grad(fn(x), x, pydl.tensor(np.linspace(-1, 1, fn(x)._data.size).reshape(
            fn(x).shape)), create_graph=True)
        return g
    return _gradgradcheck(first, (x,), atol=1e-7, rtol=1e-6)


# -- elementwise losses -------------------------------------------------------------------------
def _regression_inputs(rng, shape, kinks=(0.0,)):
    x = rng.standard_normal(shape)
    t = rng.standard_normal(shape)
    d = away_from(x - t, *kinks, *(-k for k in kinks))  # |x - t| off the kinks
    return x, x - d, rng.uniform(0.5, 2.0, shape)


def _probability_inputs(rng, shape):
    return (rng.uniform(0.05, 0.95, shape), rng.uniform(0.05, 0.95, shape),
            rng.uniform(0.5, 2.0, shape))


# name -> (functional form (x, t, w, reduction), input maker, which of x, t, w are differentiable)
ELEMENTWISE = {
    "mse": (lambda x, t, w, r: F.mse_loss(x, t, reduction=r), _regression_inputs, "xt"),
    "mse_weight": (lambda x, t, w, r: F.mse_loss(x, t, reduction=r, weight=w),
                   _regression_inputs, "xtw"),
    "l1": (lambda x, t, w, r: F.l1_loss(x, t, reduction=r), _regression_inputs, "xt"),
    "l1_weight": (lambda x, t, w, r: F.l1_loss(x, t, reduction=r, weight=w),
                  _regression_inputs, "xtw"),
    "smooth_l1_beta1": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r),
                        lambda rng, s: _regression_inputs(rng, s, (0.0, 1.0)), "xt"),
    "smooth_l1_beta0.3": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.3),
                          lambda rng, s: _regression_inputs(rng, s, (0.0, 0.3)), "xt"),
    "smooth_l1_beta0": (lambda x, t, w, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        _regression_inputs, "xt"),
    "huber_delta0.7": (lambda x, t, w, r: F.huber_loss(x, t, reduction=r, delta=0.7),
                       lambda rng, s: _regression_inputs(rng, s, (0.0, 0.7)), "xt"),
    "huber_weight": (lambda x, t, w, r: F.huber_loss(x, t, reduction=r, delta=1.3, weight=w),
                     lambda rng, s: _regression_inputs(rng, s, (0.0, 1.3)), "xtw"),
    "bce": (lambda x, t, w, r: F.binary_cross_entropy(x, t, reduction=r),
            _probability_inputs, "xt"),
    "bce_weight": (lambda x, t, w, r: F.binary_cross_entropy(x, t, weight=w, reduction=r),
                   _probability_inputs, "xtw"),
    "bce_logits": (lambda x, t, w, r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
                   lambda rng, s: (rng.standard_normal(s) * 3,) + _probability_inputs(rng, s)[1:],
                   "xt"),
    "bce_logits_weight": (lambda x, t, w, r: F.binary_cross_entropy_with_logits(
        x, t, weight=w, reduction=r),
        lambda rng, s: (rng.standard_normal(s) * 3,) + _probability_inputs(rng, s)[1:], "xtw"),
    "kl": (lambda x, t, w, r: F.kl_div(x, t, reduction=r), _probability_inputs, "xt"),
    "kl_log_target": (lambda x, t, w, r: F.kl_div(x, t, reduction=r, log_target=True),
                      lambda rng, s: (rng.standard_normal(s), rng.standard_normal(s) - 1, None),
                      "xt"),
}
SHAPES = [(1,), (7,), (3, 5), (2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_loss_gradgradcheck(name, reduction, shape):
    fn, make, diff = ELEMENTWISE[name]
    rng = np.random.default_rng(abs(hash((name, reduction, shape))) % 2**32)
    x, t, w = make(rng, shape)
    inputs = [t64(x), t64(t, "t" in diff), None if w is None else t64(w, "w" in diff)]
    if name.startswith("kl") and reduction == "mean":
        with pytest.warns(UserWarning, match="batchmean"):
            assert gradgradcheck(lambda x, t, w: fn(x, t, w, reduction), inputs)
    else:
        assert gradgradcheck(lambda x, t, w: fn(x, t, w, reduction), inputs)


@pytest.mark.parametrize("name", ["kl", "kl_log_target"])
def test_kl_div_batchmean_gradgradcheck(name):
    fn, make, _ = ELEMENTWISE[name]
    x, t, _ = make(np.random.default_rng(1), (3, 4))
    assert gradgradcheck(lambda x, t: fn(x, t, None, "batchmean"), (t64(x), t64(t)))


def test_bce_with_logits_pos_weight_gradgradcheck():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(0.05, 0.95, (4, 3))
    w, pw = rng.uniform(0.5, 2, (4, 3)), rng.uniform(0.5, 2, 3)  # pos_weight per class
    for reduction in REDUCTIONS:
        assert gradgradcheck(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction=reduction), (t64(x), t64(t), t64(w), t64(pw)))


def test_bce_broadcast_class_weight_gradgradcheck():
    rng = np.random.default_rng(3)
    x, t = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0.05, 0.95, (4, 3))
    w = rng.uniform(0.5, 2, 3)  # broadcast over the batch
    assert gradgradcheck(lambda x, t: F.binary_cross_entropy(x, t, weight=pydl.tensor(w)),
                         (t64(x), t64(t)))


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("name", ["mse", "l1", "smooth_l1_beta0.3", "kl"])
def test_elementwise_loss_broadcast_target_gradgradcheck(name):
    """A target that broadcasts against the input (PyTorch warns but computes)."""
    fn = ELEMENTWISE[name][0]
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 0.9, (3, 4)) if name == "kl" else rng.standard_normal((3, 4))
    t = rng.uniform(0.1, 0.9, (4,)) if name == "kl" else away_from(rng.standard_normal(4), 0)
    for reduction in ("sum", "none"):
        assert gradgradcheck(lambda x, t: fn(x, t, None, reduction), (t64(x), t64(t)))


@pytest.mark.parametrize("name", ["mse_weight", "l1", "huber_weight", "bce_weight",
                                  "bce_logits_weight", "kl"])
def test_elementwise_loss_noncontiguous_gradgradcheck(name):
    fn, make, diff = ELEMENTWISE[name]
    x, t, w = make(np.random.default_rng(5), (5, 3))
    inputs = (t64(x), t64(t), t64(w, "w" in diff))
    # The checked leaves are contiguous (3, 5); the loss sees their strided transposes.
    assert gradgradcheck(lambda x, t, w: fn(x.transpose(0, 1), t.transpose(0, 1),
                                            w.transpose(0, 1), "sum"),
                         [a.detach().transpose(0, 1).contiguous().requires_grad_(a.requires_grad)
                          for a in inputs])


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("name", ["mse_weight", "smooth_l1_beta1", "bce_weight",
                                  "bce_logits_weight", "kl"])
def test_elementwise_loss_zero_batch(name, reduction):
    fn, make, diff = ELEMENTWISE[name]
    x, t, w = make(np.random.default_rng(6), (0, 3))
    x, t = t64(x), t64(t)
    w = t64(w, "w" in diff)
    out = fn(x, t, w, reduction)
    (gx,) = grad(out, x, pydl.ones(out.shape, dtype=np.float64), create_graph=True)
    (hx,) = grad(gx.sum() + 0.0 * out.sum(), x, allow_unused=True, materialize_grads=True)
    assert gx.shape == hx.shape == (0, 3)


# -- cross-entropy and nll -----------------------------------------------------------------------
def _class_problem(rng, shape, ignore=False, all_ignored=False):
    """Logits of ``shape`` ((C,), (N, C) or (N, C, d...)) and class-index targets, with some
    (or all) set to ignore_index -100."""
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else shape[:1] + shape[2:]
    y = rng.integers(0, c, tshape)
    if all_ignored:
        y = np.full(tshape, -100)
    elif ignore and y.size > 1:
        y.reshape(-1)[::3] = -100
    return rng.standard_normal(shape) * 2, y, rng.uniform(0.5, 2.0, c)


@pytest.fixture(params=["kernel", "arrays"])
def ce_path(request, monkeypatch):
    """Class-index cross-entropy through the fused C++ kernel and through the array path."""
    monkeypatch.setattr(loss_ops, "_USE_KERNEL", request.param == "kernel")
    return request.param


@pytest.mark.parametrize("eps", [0.0, 0.15])
@pytest.mark.parametrize("ignore", [False, True], ids=["all_counted", "some_ignored"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradgradcheck_options(ce_path, reduction, weighted, ignore, eps):
    z, y, w = _class_problem(np.random.default_rng(7), (5, 4), ignore)
    weight = pydl.tensor(w) if weighted else None
    assert gradgradcheck(lambda z: F.cross_entropy(z, pydl.tensor(y), weight=weight,
                                                   reduction=reduction, label_smoothing=eps),
                         (t64(z),))


@pytest.mark.parametrize("shape", [(5,), (1, 3), (7, 2), (2, 3, 5), (2, 3, 2, 3), (1, 1, 3)],
                         ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradgradcheck_shapes(ce_path, reduction, shape):
    z, y, w = _class_problem(np.random.default_rng(8), shape, ignore=True)
    assert gradgradcheck(lambda z: F.cross_entropy(z, pydl.tensor(y), weight=pydl.tensor(w),
                                                   reduction=reduction, label_smoothing=0.1),
                         (t64(z),))


def test_cross_entropy_all_ignored_and_zero_batch(ce_path):
    z, y, w = _class_problem(np.random.default_rng(9), (3, 4), all_ignored=True)
    for reduction in ("sum", "none"):
        assert gradgradcheck(lambda z: F.cross_entropy(z, pydl.tensor(y), reduction=reduction,
                                                       label_smoothing=0.2), (t64(z),))
    z0 = t64(np.zeros((0, 4)))
    out = F.cross_entropy(z0, pydl.tensor(np.zeros(0, dtype=np.int64)), reduction="sum")
    (g,) = grad(out, z0, create_graph=True)
    (h,) = grad(g.sum(), z0, allow_unused=True, materialize_grads=True)
    assert g.shape == h.shape == (0, 4)


def test_cross_entropy_noncontiguous_gradgradcheck(ce_path):
    z, y, w = _class_problem(np.random.default_rng(10), (4, 5), ignore=True)
    zt = t64(z.T.copy())  # the op sees zt.transpose(0, 1): a strided (4, 5) view
    assert gradgradcheck(lambda zt: F.cross_entropy(zt.transpose(0, 1), pydl.tensor(y),
                                                    weight=pydl.tensor(w), label_smoothing=0.1),
                         (zt,))
    zk = np.random.default_rng(11).standard_normal((2, 4, 3))
    yk = np.random.default_rng(12).integers(0, 3, (2, 4))
    # K-dim: (N, C, d) = (2, 3, 4) as a transposed view of a (2, 4, 3) leaf
    assert gradgradcheck(lambda a: F.cross_entropy(a.transpose(1, 2), pydl.tensor(yk),
                                                   reduction="none"), (t64(zk),))


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 2)], ids=str)
def test_cross_entropy_probability_target_gradgradcheck(shape, reduction, weighted, eps):
    rng = np.random.default_rng(13)
    z = rng.standard_normal(shape) * 2
    p = rng.dirichlet(np.ones(shape[0] if len(shape) == 1 else shape[1]),
                      size=shape[:1] + shape[2:] if len(shape) > 1 else None)
    p = np.moveaxis(p, -1, 1) if len(shape) > 1 else p  # classes on dim 1
    weight = pydl.tensor(rng.uniform(0.5, 2, p.shape[1 if len(shape) > 1 else 0])) \
        if weighted else None
    assert gradgradcheck(lambda z, p: F.cross_entropy(z, p, weight=weight, reduction=reduction,
                                                      label_smoothing=eps), (t64(z), t64(p)))


@pytest.mark.parametrize("ignore", [False, True], ids=["all_counted", "some_ignored"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4,), (5, 3), (2, 3, 2)], ids=str)
def test_nll_loss_gradgradcheck(shape, reduction, weighted, ignore):
    z, y, w = _class_problem(np.random.default_rng(14), shape, ignore)
    weight = pydl.tensor(w) if weighted else None
    # log_softmax in front, so the second derivative w.r.t. the logits is not trivially 0
    assert gradgradcheck(lambda z: F.nll_loss(F.log_softmax(z, 0 if len(shape) == 1 else 1),
                                              pydl.tensor(y), weight=weight,
                                              reduction=reduction), (t64(z),))
    # and the loss alone: linear in its input (gradient w.r.t. the incoming gradient only)
    assert gradgradcheck(lambda z: F.nll_loss(z, pydl.tensor(y), weight=weight,
                                              reduction=reduction), (t64(z),))


def test_cross_entropy_third_order(ce_path):
    z, y, w = _class_problem(np.random.default_rng(15), (3, 4), ignore=True)
    for reduction in REDUCTIONS:
        assert third_order_check(lambda z: F.cross_entropy(
            z, pydl.tensor(y), weight=pydl.tensor(w), reduction=reduction,
            label_smoothing=0.1), t64(z))


def test_cross_entropy_backward_is_an_op_under_create_graph():
    z = t64(np.random.default_rng(16).standard_normal((3, 4)))
    (g,) = grad(F.cross_entropy(z, pydl.tensor([0, 3, 1])), z, create_graph=True)
    seen, stack = set(), [g.grad_fn]
    while stack:
        node = stack.pop()
        seen.add(type(node))
        stack += [p[0] for p in node.parents if p is not None and hasattr(p[0], "parents")]
    assert CrossEntropyBackward in seen


def test_create_graph_gradient_equals_first_order_gradient(ce_path):
    rng = np.random.default_rng(17)
    z, y, w = _class_problem(rng, (6, 5), ignore=True)
    for reduction in REDUCTIONS:
        kw = dict(weight=pydl.tensor(w), reduction=reduction, label_smoothing=0.1)
        zt = t64(z)
        out = F.cross_entropy(zt, pydl.tensor(y), **kw)
        gout = pydl.tensor(rng.standard_normal(out.shape))
        (plain,) = grad(out, zt, gout, retain_graph=True)
        (graphed,) = grad(out, zt, gout, create_graph=True)
        assert graphed.requires_grad
        assert_close(graphed, plain.numpy(), rtol=1e-14, atol=1e-15)


def test_logistic_regression_hessian_is_closed_form():
    """Hessian of mean bce_with_logits(X theta, y) = X^T diag(p (1 - p)) X / n (lecture notes
    5.8-5.9, the Newton step's matrix)."""
    rng = np.random.default_rng(18)
    X, y = rng.standard_normal((20, 4)), (rng.random(20) < 0.5).astype(np.float64)
    theta = rng.standard_normal(4)
    H = hessian(lambda th: F.binary_cross_entropy_with_logits(pydl.tensor(X) @ th,
                                                              pydl.tensor(y)), t64(theta))
    p = 1 / (1 + np.exp(-X @ theta))
    assert_close(H, X.T @ (X * (p * (1 - p))[:, None]) / len(y), rtol=1e-12, atol=1e-14)


# -- batch normalization --------------------------------------------------------------------------
AFFINE = {"weight_bias": (True, True), "weight": (True, False), "bias": (False, True),
          "none": (False, False)}
BN_SHAPES = [(4, 3), (3, 2, 5), (2, 3, 2, 3), (5, 1, 3), (2, 5, 1, 1)]


def _bn_fn(training, has_w, has_b, C, rng):
    rm, rv = pydl.tensor(rng.standard_normal(C)), pydl.tensor(rng.random(C) + 0.5)

    def fn(x, *params):
        it = iter(params)
        w = next(it) if has_w else None
        b = next(it) if has_b else None
        if training:  # no running statistics: every call sees the same function
            return F.batch_norm(x, None, None, w, b, training=True, eps=1e-3)
        return F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-3)
    return fn


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", list(AFFINE))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_gradgradcheck(training, affine, shape):
    rng = np.random.default_rng(19)
    has_w, has_b = AFFINE[affine]
    C = shape[1]
    x = t64(rng.standard_normal(shape) * 2 + 0.5)
    params = [t64(rng.standard_normal(C)) for flag in (has_w, has_b) if flag]
    assert gradgradcheck(_bn_fn(training, has_w, has_b, C, rng), (x, *params))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_only_parameters_or_only_input_gradgradcheck(training):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((4, 3, 2))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    fn = _bn_fn(training, True, True, 3, rng)
    assert gradgradcheck(lambda w, b: fn(t64(x, False), w, b), (t64(w), t64(b)))
    assert gradgradcheck(lambda x: fn(x, t64(w, False), t64(b, False)), (t64(x),))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_noncontiguous_gradgradcheck(training):
    rng = np.random.default_rng(21)
    fn = _bn_fn(training, True, True, 3, rng)
    xt = t64(rng.standard_normal((4, 3, 2)).transpose(2, 1, 0).copy())  # (2, 3, 4)
    # the op sees a strided (4, 3, 2) view
    assert gradgradcheck(lambda xt, w, b: fn(xt.permute(2, 1, 0), w, b),
                         (xt, t64(rng.standard_normal(3)), t64(rng.standard_normal(3))))


def test_batch_norm_zero_batch_eval():
    rng = np.random.default_rng(22)
    fn = _bn_fn(False, True, True, 3, rng)
    x, w = t64(np.zeros((0, 3, 2))), t64(rng.standard_normal(3))
    y = fn(x, w, t64(rng.standard_normal(3)))
    (gx, gw) = grad(y.sum(), (x, w), create_graph=True)
    (hx,) = grad(gw.sum() + gx.sum(), x, allow_unused=True, materialize_grads=True)
    assert gx.shape == hx.shape == (0, 3, 2) and gw.shape == (3,)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_third_order(training):
    rng = np.random.default_rng(23)
    w, b = t64(rng.standard_normal(2), False), t64(rng.standard_normal(2), False)
    fn = _bn_fn(training, True, True, 2, rng)
    assert third_order_check(lambda x: fn(x, w, b), t64(rng.standard_normal((3, 2, 2))))


def test_batch_norm_running_statistics_under_create_graph():
    """Training with running statistics: one update per forward, create_graph or not."""
    rng = np.random.default_rng(24)
    bn = nn.BatchNorm1d(3).double()
    x = t64(rng.standard_normal((5, 3)) * 2 + 1)
    y = bn(x)
    (gx,) = grad((y * y * y).sum(), x, create_graph=True)
    (hx,) = grad(gx.sum(), x)
    mean = x.detach().numpy().mean(axis=0)
    assert_close(bn.running_mean, 0.1 * mean, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 1
    assert hx.shape == x.shape
    seen, stack = set(), [gx.grad_fn]
    while stack:
        node = stack.pop()
        seen.add(type(node))
        stack += [p[0] for p in node.parents if p is not None and hasattr(p[0], "parents")]
    assert BatchNormBackward in seen


# -- saved integer targets are version-checked (issue #12) ----------------------------------------
INPLACE = {
    "setitem": lambda y: y.__setitem__(0, 1),
    "add_": lambda y: y.add_(1),
    "fill_": lambda y: y.fill_(0),
    "copy_": lambda y: y.copy_(pydl.tensor(np.zeros(y.shape, dtype=y.dtype))),
}
CLASS_LOSSES = {
    "cross_entropy": lambda z, y: F.cross_entropy(z, y),
    "cross_entropy_ignore_smooth": lambda z, y: F.cross_entropy(
        z, y, ignore_index=2, label_smoothing=0.1, reduction="sum"),
    "nll_loss": lambda z, y: F.nll_loss(F.log_softmax(z, 1), y),
    "nll_loss_ignore": lambda z, y: F.nll_loss(z, y, ignore_index=2, reduction="none").sum(),
    "CrossEntropyLoss": lambda z, y: nn.CrossEntropyLoss(ignore_index=0)(z, y),
    "NLLLoss": lambda z, y: nn.NLLLoss()(z, y),
}


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("change", list(INPLACE))
@pytest.mark.parametrize("name", list(CLASS_LOSSES))
def test_inplace_change_of_saved_target_raises(ce_path, name, change, create_graph):
    z = pydl.randn(4, 3, requires_grad=True)
    y = pydl.tensor(np.array([0, 2, 1, 2]))
    loss = CLASS_LOSSES[name](z, y)
    INPLACE[change](y)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward(create_graph=create_graph)


def test_inplace_change_of_probability_target_raises():
    z = pydl.randn(4, 3, requires_grad=True)
    p = pydl.softmax(pydl.randn(4, 3), 1)
    loss = F.cross_entropy(z, p)
    p.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


@pytest.mark.parametrize("name", list(CLASS_LOSSES))
def test_unchanged_or_replaced_target_does_not_raise(ce_path, name):
    z = pydl.randn(4, 3, requires_grad=True)
    y = pydl.tensor(np.array([0, 2, 1, 2]))
    loss = CLASS_LOSSES[name](z, y)
    y = y.clone()  # a new tensor: the saved one is untouched
    y.add_(1)
    loss.backward()
    assert z.grad is not None
