"""Loss functions (torch.nn.functional's names, arguments, defaults and reductions).

Every loss is one ``Function`` node: forward computes the per-element loss and its reduction in
one vectorised pass, backward writes the closed-form derivative. In particular cross-entropy
with class indices fuses log-softmax and the negative log-likelihood (max-shifted, so large
logits are exact) and its backward is softmax minus the (smoothed, weighted) one-hot target:
no chain of small autograd ops.

Each loss is the negative log-likelihood of a model distribution (lecture notes, 3.7-3.13):

* ``cross_entropy`` / ``nll_loss``: a categorical p(y | x) = softmax(z)_y, loss -log p(y | x);
  averaged over a batch it is the cross-entropy H(p_data, p_model) = -E log p_model.
* ``mse_loss``: a Gaussian N(y; mu(x), sigma^2) with fixed sigma: -log p = (y - mu)^2 / (2
  sigma^2) + const, i.e. the squared error up to scale and shift.
* ``l1_loss``: a Laplace(y; mu(x), b): -log p = |y - mu| / b + const.
* ``binary_cross_entropy``: a Bernoulli(y; p): -[y log p + (1 - y) log(1 - p)].
* ``kl_div``: D_KL(P || Q) = sum P (log P - log Q) = H(P, Q) - H(P).

Reductions: ``'mean'`` divides the sum by the number of elements (for weighted class losses, by
the summed weights of the counted targets, as PyTorch does), ``'sum'`` sums, ``'none'`` returns
the per-element losses. The deprecated ``size_average``/``reduce`` arguments are honoured with
PyTorch's warning.

Double backward (``create_graph=True``; the Hessian of a loss, lecture notes 5.8): every
backward formula here is written with Python operators and ``Op.call`` (see
``pydl.autograd.function``), so on arrays it is the plain first-order computation and on
Tensors it records a differentiable graph. The elementwise losses save only their inputs (and
output) and write their derivatives in terms of them. The fused cross-entropy keeps its C++
kernel for first order: its gradient is an op of its own (``CrossEntropyBackward``) whose
backward is the softmax Jacobian, written with differentiable ops, so third order works too.
"""
from __future__ import annotations

import warnings

import numpy as np

from pydl.autograd import grad_mode
from pydl import _C
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.elementwise import (Abs, Exp, Log, Maximum, Sigmoid, Where, raw, unbroadcast,
                                  zeros_like)
from pydl.ops.reduction import Sum
from pydl.ops.special import Log1p
from pydl.ops.shape import Expand, Permute, Reshape
from pydl.tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]



# -- argument handling ----------------------------------------------------------------------------
def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    return reduction


def _check_reduction(reduction, allowed=("none", "mean", "sum")) -> str:
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction (expected one of "
                         f"{', '.join(repr(a) for a in allowed)})")
    return reduction


def _as_tensor(x, name: str, op: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, tuple, int, float, np.generic)):
        return Tensor(np.asarray(x))
    raise TypeError(f"{op}: expected {name} to be a pydl.Tensor, got {type(x).__name__}")


def _check_float(x: Tensor, name: str, op: str) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected {name} to be a floating point tensor, got dtype "
                        f"{x.dtype}")


def _same_dtype(t: Tensor, like: Tensor) -> Tensor:
    return t if t.dtype == like.dtype else t.to(like.dtype)


def _reduce(lw, reduction: str, denom):
    """Reduce the (weighted) per-element losses ``lw`` (an array: forward only). Full reductions
    come back as 0-d arrays, not NumPy scalars, so that a node can save its output."""
    if reduction == "none":
        return lw
    xp = array_module(lw)
    total = lw.sum()
    if reduction == "sum":
        return xp.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.asarray(total / denom).astype(lw.dtype, copy=False)


def _scale(g, reduction: str, denom):
    """d(output) / d(lw_i): the incoming gradient spread back over the elements. ``g`` is an
    array, or a Tensor under create_graph (``denom`` then may be a Tensor too: sum(weight))."""
    if reduction != "mean":
        return g
    with np.errstate(invalid="ignore", divide="ignore"):
        if isinstance(denom, Tensor):
            return g / denom
        if isinstance(g, Tensor):
            return g / float(denom)  # a NumPy scalar operand would be saved as a float array
        return (g / denom).astype(g.dtype, copy=False)


def _flat(a):
    """``a`` (array or Tensor) as a 1-D vector (a 0-d value becomes shape (1,))."""
    if isinstance(a, Tensor):
        return Reshape.apply(a, (a._data.size,), False)
    return a.reshape(-1)  # first order: no node, no Function.call on the hot path


def _expand(a, shape):
    """``a`` broadcast to ``shape`` (a view; recorded under create_graph)."""
    return a if a.shape == shape else Expand.call(a, shape)


# -- elementwise regression / binary losses --------------------------------------------------------
class _ElementwiseLoss(Function):
    """Shared forward/backward for losses of the form reduce(w * l(x, t)).

    Subclasses define ``pointwise(x, t, params) -> per_element_loss`` and
    ``derivatives(x, t, params, need_x, need_t) -> (dl/dx, dl/dt)`` (elementwise; None when not
    needed), both written for arrays and Tensors alike (Python operators, ``Op.call``;
    piecewise-constant factors such as signs and masks from the raw arrays), so the backward
    formula differentiates again under create_graph. Only x, t, w (and the output, for the
    weighted mean) are saved: backward recomputes x - t and friends, one elementwise pass.

    ``denom`` is the divisor of ``'mean'``; None means the summed weights (PyTorch's weighted
    mean for mse/l1), in which case the weight gradient also carries the -L / sum(w) term of
    the quotient rule.
    """

    def forward(self, x, t, w, reduction, denom, params):
        per = self.pointwise(x, t, params)
        # Weighted mean with denom None divides by sum(w): dL/dw_i then has a quotient term.
        self.weighted_mean = w is not None and denom is None and reduction == "mean"
        if w is not None:
            lw = per * w
            if denom is None:
                denom = w.sum()
        else:
            lw = per
        if denom is None:
            denom = per.size
        out = _reduce(lw, reduction, denom)
        self.meta = (x.shape, t.shape, None if w is None else w.shape, per.shape, reduction,
                     denom, params)
        self.save_for_backward(x, t, w, out if self.weighted_mean else None)
        return out

    def backward(self, g):
        x, t, w, out = self.saved_tensors
        xs, ts, ws, shape, reduction, denom, params = self.meta
        need_x, need_t, need_w = self.needs_input_grad[:3]
        if self.weighted_mean and isinstance(w, Tensor):
            # create_graph: the divisor sum(w) as a function of w, so d/dw of this gradient
            # has its quotient-rule term.
            denom = Sum.call(w, tuple(range(len(ws))), False)
        s = _scale(g, reduction, denom)
        sw = s if w is None else s * w
        gx = gt = gw = None
        if need_x or need_t:
            dx, dt = self.derivatives(x, t, params, need_x, need_t)
            if need_x:
                gx = unbroadcast(_expand(sw * dx, shape), xs)
            if need_t:
                gt = unbroadcast(_expand(sw * dt, shape), ts)
        if need_w:
            per = self.pointwise(x, t, params)
            gw = unbroadcast(_expand(s * (per - out) if self.weighted_mean else s * per, shape),
                             ws)
        return gx, gt, gw, None, None, None


class MSELoss(_ElementwiseLoss):
    """l = (x - t)^2; dl/dx = 2 (x - t) = -dl/dt (second derivative 2)."""

    def pointwise(self, x, t, params):
        d = x - t
        return d * d

    def derivatives(self, x, t, params, need_x, need_t):
        dx = 2 * (x - t)
        return dx, (-dx if need_t else None)


def _sign_of_difference(x, t):
    """sign(x - t) as a constant (0 at x == t, as PyTorch): the slope of |x - t|."""
    d = raw(x) - raw(t)
    return array_module(d).sign(d)


class L1Loss(_ElementwiseLoss):
    """l = |x - t|; dl/dx = sign(x - t) = -dl/dt (0 at x == t, as PyTorch); piecewise
    constant, so its own derivative is 0."""

    def pointwise(self, x, t, params):
        return Abs.call(x - t)

    def derivatives(self, x, t, params, need_x, need_t):
        dx = _sign_of_difference(x, t)
        return dx, (-dx if need_t else None)


class SmoothL1Loss(_ElementwiseLoss):
    """Huber-type loss: l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta (d = x - t);
    scaled by ``scale`` (huber_loss: delta, with beta = delta). dl/dx = d / beta or sign(d),
    so the second derivative is 1 / beta inside the quadratic zone and 0 outside."""

    def pointwise(self, x, t, params):
        beta, scale = params
        d = x - t
        ad = Abs.call(d)
        if beta == 0:
            per = ad
        else:
            per = Where.call(raw(ad) < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)
        return per * scale if scale != 1 else per

    def derivatives(self, x, t, params, need_x, need_t):
        beta, scale = params
        sign = _sign_of_difference(x, t)
        if beta == 0:
            dx = sign
        else:
            d = x - t
            dx = Where.call(array_module(sign).abs(raw(d)) < beta, d / beta, sign)
        if scale != 1:
            dx = dx * scale
        return dx, (-dx if need_t else None)


def _clamped_logs(x):
    """(log x, log(1 - x)), each clamped at -100 as PyTorch's BCE does (so x = 0 or 1 gives a
    finite loss; the clamped part has derivative 0)."""
    with np.errstate(divide="ignore"):
        return Maximum.call(Log.call(x), -100.0), Maximum.call(Log1p.call(-x), -100.0)


class BinaryCrossEntropy(_ElementwiseLoss):
    """l = -[t log x + (1 - t) log(1 - x)], each log clamped at -100 (PyTorch's choice, so
    x = 0 or 1 gives a finite loss). dl/dx = (x - t) / max(x (1 - x), 1e-12);
    dl/dt = log(1 - x) - log x (clamped logs). d2l/dx2 = (x^2 - 2 x t + t) / (x (1 - x))^2
    follows from differentiating the quotient (PyTorch's binary_cross_entropy_double_backward
    writes it out)."""

    def pointwise(self, x, t, params):
        log_x, log_1mx = _clamped_logs(x)
        return -(t * log_x + (1 - t) * log_1mx)

    def derivatives(self, x, t, params, need_x, need_t):
        dx = (x - t) / Maximum.call(x * (1 - x), 1e-12) if need_x else None
        dt = None
        if need_t:
            log_x, log_1mx = _clamped_logs(x)
            dt = log_1mx - log_x
        return dx, dt


class KLDiv(_ElementwiseLoss):
    """Pointwise KL term with input = log Q: l = t (log t - x) (0 where t = 0), or, with
    log_target, l = e^t (t - x). dl/dx = -t (or -e^t); dl/dt = log t + 1 - x (or
    e^t (t - x + 1))."""

    def pointwise(self, x, t, params):
        (log_target,) = params
        if log_target:
            return Exp.call(t) * (t - x)
        positive = raw(t) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            xlogx = Where.call(positive, t * Log.call(Where.call(positive, t, 1.0)), 0.0)
        return xlogx - t * x

    def derivatives(self, x, t, params, need_x, need_t):
        (log_target,) = params
        if log_target:
            et = Exp.call(t)
            return (-et if need_x else None), (et * (t - x + 1) if need_t else None)
        dt = None
        if need_t:
            with np.errstate(divide="ignore"):
                dt = Log.call(t) + 1 - x
        return (-t if need_x else None), dt


def _broadcast_pair(input: Tensor, target: Tensor, op: str):
    if target.shape != input.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due to "
                      f"broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{op}: target shape {target.shape} does not broadcast with input "
                             f"shape {input.shape}") from None


def _regression(cls, op, input, target, weight, reduction, params, weighted_mean_by_count=False):
    input = _as_tensor(input, "input", op)
    target = _as_tensor(target, "target", op)
    _check_float(input, "input", op)
    target = _same_dtype(target, input)
    _broadcast_pair(input, target, op)
    if weight is not None:
        weight = _as_tensor(weight, "weight", op)
        if weight.shape != input.shape:
            raise ValueError(f"{op}: weights and input must have the same size, got weight "
                             f"{weight.shape} and input {input.shape}")
        weight = _same_dtype(weight, input)
    # PyTorch's weighted 'mean' divides by sum(weight) for mse/l1 but by the element count for
    # huber; denom None selects the former.
    denom = int(np.prod(np.broadcast_shapes(input.shape, target.shape))) \
        if weighted_mean_by_count else None
    return cls.apply(input, target, weight, reduction, denom, params)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight=None) -> Tensor:
    """Mean squared error (x - t)^2: the negative log-likelihood of a Gaussian with fixed
    variance, up to scale and an additive constant (lecture notes 3.12). ``weight`` (input's
    shape) weights each element; its ``'mean'`` divides by the summed weights."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    return _regression(MSELoss, "mse_loss", input, target, weight, reduction, ())


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight=None) -> Tensor:
    """Mean absolute error |x - t|: the negative log-likelihood of a Laplace distribution
    (lecture notes 3.13); its minimiser is the median, not the mean."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    return _regression(L1Loss, "l1_loss", input, target, weight, reduction, ())


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 (x - t)^2 / beta where |x - t| < beta, |x - t| - 0.5 beta elsewhere: quadratic
    near the target, L1 (robust to outliers) far from it. beta = 0 is the L1 loss."""
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    return _regression(SmoothL1Loss, "smooth_l1_loss", input, target, None, reduction,
                       (float(beta), 1.0))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """0.5 (x - t)^2 where |x - t| < delta, delta (|x - t| - 0.5 delta) elsewhere
    (= delta * smooth_l1_loss with beta = delta). With ``weight``, ``'mean'`` divides by the
    number of elements (PyTorch's rule for huber, unlike mse/l1 which divide by sum(weight))."""
    reduction = _check_reduction(reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _regression(SmoothL1Loss, "huber_loss", input, target, weight, reduction,
                       (float(delta), float(delta)), weighted_mean_by_count=True)


def _class_weight_like(weight, like: Tensor, op: str, shape=None):
    """A weight tensor broadcastable to ``shape`` (default: like's shape), in like's dtype."""
    weight = _as_tensor(weight, "weight", op)
    shape = like.shape if shape is None else shape
    try:
        if np.broadcast_shapes(weight.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: weight of shape {weight.shape} does not broadcast to the input "
                         f"shape {tuple(shape)}") from None
    return _same_dtype(weight, like)


def binary_cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """-w [t log x + (1 - t) log(1 - x)] for probabilities x in [0, 1]: the negative
    log-likelihood of a Bernoulli(x). Logs are clamped at -100. Prefer
    ``binary_cross_entropy_with_logits`` on raw scores (stable, no sigmoid round-off)."""
    op = "binary_cross_entropy"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    input = _as_tensor(input, "input", op)
    target = _as_tensor(target, "target", op)
    _check_float(input, "input", op)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         f"size.")
    target = _same_dtype(target, input)
    xd = input._data
    if xd.size and not bool(((xd >= 0) & (xd <= 1)).all()):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1 (input shape "
                           f"{input.shape}, min {float(xd.min())}, max {float(xd.max())})")
    if weight is not None:
        weight = _class_weight_like(weight, input, op)
    return BinaryCrossEntropy.apply(input, target, weight, reduction, input._data.size, ())



class _SoftplusPair(Function):
    """(softplus(x), softplus(-x)) with one shared tail: softplus(+-x) = max(+-x, 0) +
    log1p(e^-|x|), so no e^x overflows. d softplus(x)/dx = sigmoid(x)."""

    def forward(self, x):
        self.save_for_backward(x)
        xp = array_module(x)
        tail = xp.log1p(xp.exp(-xp.abs(x)))
        return xp.maximum(x, 0) + tail, xp.maximum(-x, 0) + tail

    def backward(self, g_pos, g_neg):
        (x,) = self.saved_tensors
        return g_pos * Sigmoid.call(x) - g_neg * Sigmoid.call(-x)


def _bce_logits_pointwise(x, t, pw):
    sp_pos, sp_neg = _SoftplusPair.call(x)
    pos = t * sp_neg if pw is None else pw * t * sp_neg
    return (1 - t) * sp_pos + pos


class BinaryCrossEntropyWithLogits(Function):
    """l = w [(1 - t) softplus(x) + pw t softplus(-x)] with softplus(+-x) = max(+-x, 0) +
    log1p(e^-|x|): -log(1 - sigmoid(x)) = softplus(x) and -log sigmoid(x) = softplus(-x), so no
    logit overflows and no two large terms cancel (PyTorch's (1 - t) x + softplus(-x) form loses
    the e^-40-sized loss of a confident right answer). pw (pos_weight) is 1 if absent.

    dl/dx = w [(1 - t) sigmoid(x) - pw t sigmoid(-x)] (= w (sigmoid(x) - t) with pw = 1),
    dl/dt = w [pw softplus(-x) - softplus(x)], dl/dw = l / w, dl/dpw = w t softplus(-x).
    Saves only the inputs; the formulas are differentiable ops (sigmoid' = sigmoid (1 -
    sigmoid)), so the second derivatives follow under create_graph."""

    def forward(self, x, t, w, pw, reduction, denom):
        per = _bce_logits_pointwise(x, t, pw)
        lw = per if w is None else per * w
        self.meta = (x.shape, t.shape, None if w is None else w.shape,
                     None if pw is None else pw.shape, per.shape, reduction, denom)
        self.save_for_backward(x, t, w, pw)
        return _reduce(lw, reduction, denom)

    def backward(self, g):
        x, t, w, pw = self.saved_tensors
        xs, ts, ws, ps, shape, reduction, denom = self.meta
        need_x, need_t, need_w, need_pw = self.needs_input_grad[:4]
        s = _scale(g, reduction, denom)
        sw = s if w is None else s * w
        gx = gt = gw = gpw = None
        if need_x:
            sig_neg = Sigmoid.call(-x)
            sig_pos = Sigmoid.call(x)
            dx = (1 - t) * sig_pos - (t * sig_neg if pw is None else pw * t * sig_neg)
            gx = unbroadcast(_expand(sw * dx, shape), xs)
        if need_t or need_pw:
            sp_pos, sp_neg = _SoftplusPair.call(x)
            if need_t:
                dt = (sp_neg if pw is None else pw * sp_neg) - sp_pos
                gt = unbroadcast(_expand(sw * dt, shape), ts)
            if need_pw:
                gpw = unbroadcast(_expand(sw * t * sp_neg, shape), ps)
        if need_w:
            gw = unbroadcast(_expand(s * _bce_logits_pointwise(x, t, pw), shape), ws)
        return gx, gt, gw, gpw, None, None

def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable node: the Bernoulli negative
    log-likelihood with p = sigmoid(x), written in log-sum-exp form so no logit overflows.
    ``pos_weight`` (broadcast along the last dim, e.g. one per class) multiplies the positive
    term, trading recall against precision."""
    op = "binary_cross_entropy_with_logits"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    input = _as_tensor(input, "input", op)
    target = _as_tensor(target, "target", op)
    _check_float(input, "input", op)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    target = _same_dtype(target, input)
    if weight is not None:
        weight = _class_weight_like(weight, input, op)
    if pos_weight is not None:
        pos_weight = _class_weight_like(pos_weight, input, op)
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction,
                                              input._data.size)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence D_KL(P || Q) = sum P (log P - log Q), with ``input`` = log Q
    (log-probabilities, e.g. from log_softmax) and ``target`` = P (or log P if ``log_target``).

    ``reduction='batchmean'`` (sum / batch size) gives the true KL divergence per sample;
    ``'mean'`` divides by every element (batch and support), with PyTorch's warning."""
    op = "kl_div"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction),
                                 ("none", "mean", "sum", "batchmean"))
    input = _as_tensor(input, "input", op)
    target = _as_tensor(target, "target", op)
    _check_float(input, "input", op)
    target = _same_dtype(target, input)
    try:
        shape = np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"kl_div: target shape {target.shape} does not broadcast with input "
                         f"shape {input.shape}") from None
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", UserWarning, stacklevel=2)
        denom = int(np.prod(shape))
    elif reduction == "batchmean":
        reduction = "mean" if input.ndim else "sum"
        denom = input.shape[0] if input.ndim else 1
    else:
        denom = 1
    return KLDiv.apply(input, target, None, reduction, denom, (bool(log_target),))


# -- classification: cross-entropy and NLL ---------------------------------------------------------
def _rows(x):
    """Input (C,), (N, C) or (N, C, d1, ...) as an (M, C) matrix with classes last (array or
    Tensor)."""
    if x.ndim == 2:
        return x
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    if x.ndim == 1:
        return Reshape.call(x, (1, c), False)
    m = x.shape[0] * int(np.prod(x.shape[2:]))
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return Reshape.call(Permute.call(x, perm), (m, c), False)


def _unrows(g, shape):
    """Inverse of ``_rows`` for a gradient of shape (M, C)."""
    if len(shape) == 2:
        return g
    if len(shape) == 1:
        return Reshape.call(g, tuple(shape), False)
    n, c, rest = shape[0], shape[1], tuple(shape[2:])
    perm = (0, len(shape) - 1) + tuple(range(1, len(shape) - 1))
    out = Permute.call(Reshape.call(g, (n,) + rest + (c,), False), perm)
    return out if isinstance(out, Tensor) else array_module(out).ascontiguousarray(out)


def _take_targets(t, valid, any_ignored):
    """Row targets with ignored entries mapped to class 0 (their loss is masked out)."""
    if any_ignored:
        return array_module(t).where(valid, t, 0)
    return t


def _shifted_logits(z):
    """z minus its row max (a constant: softmax and log-softmax do not depend on the shift, so
    the derivative is exact), for exponentials that never overflow."""
    zr = raw(z)
    xp = array_module(zr)
    shift = zr.max(axis=1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)  # rows of -inf: NaN as in PyTorch, not here
    return z - shift


def _log_softmax_rows(z):
    """log softmax over the classes of (M, C) logits, differentiable (arrays or Tensors)."""
    zs = _shifted_logits(z)
    with np.errstate(divide="ignore"):
        return zs - Log.call(Sum.call(Exp.call(zs), (1,), True))


def _softmax_rows(z):
    e = Exp.call(_shifted_logits(z))
    return e / Sum.call(e, (1,), True)


# The fused C++ kernel (csrc/loss.cpp) runs float32/float64 NumPy logits; CuPy arrays and other
# dtypes take the vectorised array-module path below (tests also flip this to check that path).
_USE_KERNEL = True


class _ClassTargets:
    """The constant side of a class-index cross-entropy's gradient: row targets ``t`` (M,),
    class weights, ignore_index and smoothing eps, plus what forward kept for the gradient:
    the kernel's per-row statistics, or (array path) the softmax and the row weights."""

    __slots__ = ("t", "weight", "ignore_index", "eps", "stats", "probs", "tc", "v", "rw",
                 "w_total")

    def __init__(self, t, weight, ignore_index, eps, stats):
        self.t, self.weight, self.ignore_index, self.eps = t, weight, ignore_index, eps
        self.stats = stats  # None on the array path, which sets probs, tc, v, rw, w_total

    def mix(self, m, c, dtype):
        """The target distribution each row's loss is measured against, unnormalised: loss_i =
        sum_c a_ic (lse_i - z_ic) with a_ic = v_i ((1 - eps) w_y [c = y_i] + eps w_c / C)
        (v_i = 0 for ignored rows). Returns (a, A) with A_i = sum_c a_ic, shapes (M, C) and
        (M, 1); the gradient row is A_i softmax(z_i) - a_i."""
        t = self.t
        xp = array_module(t)
        valid = t != self.ignore_index
        tc = xp.where(valid, t, 0)
        wy = valid.astype(dtype) if self.weight is None else self.weight[tc] * valid
        a = xp.zeros((m, c), dtype=dtype)
        a[xp.arange(m), tc] = (1 - self.eps) * wy
        if self.eps:
            w = 1 if self.weight is None else self.weight
            a += (self.eps / c) * (valid[:, None].astype(dtype) * w)
        return a, a.sum(axis=1, keepdims=True)


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood for class-index targets.

    For row i with logits z, target y, class weights w (all 1 if none), W = sum_c w_c and
    smoothing eps over C classes (lse = log sum_c e^(z_c), computed max-shifted):
        loss_i = (1 - eps) w_y (lse - z_y) + (eps / C) sum_c w_c (lse - z_c)
    and its gradient, with p = softmax(z),
        dloss_i/dz = p ((1 - eps) w_y + eps W / C) - (1 - eps) w_y onehot(y) - (eps / C) w.
    Ignored rows (target == ignore_index) have loss and gradient 0; ``'mean'`` divides by the
    summed w_y of the counted rows (PyTorch's convention, also for the smoothing term).

    On CPU one C++ pass per direction (pydl._C.cross_entropy_forward/backward) saves the logits
    and the per-row log-sum-exp, and backward recomputes softmax from them; the array-module
    path keeps softmax(z) instead. Backward is ``CrossEntropyBackward`` (the same kernel, as an
    op whose own backward is the softmax Jacobian), so create_graph differentiates it again.
    The target is saved too: an in-place change to it before backward raises.
    """

    def forward(self, x, target, weight, ignore_index, eps, reduction):
        z = _rows(x)
        t = target.reshape(-1)
        if _USE_KERNEL and isinstance(z, np.ndarray) and z.dtype in (np.float32, np.float64):
            return self._forward_kernel(x, z, t, target, weight, ignore_index, eps, reduction)
        return self._forward_arrays(x, z, t, target, weight, ignore_index, eps, reduction)

    def backward(self, g):
        x, _target = self.saved_tensors  # the target only for its version check
        shape, reduction, denom = self.meta
        coef = _flat(_scale(g, reduction, denom))
        if isinstance(x, Tensor):
            # create_graph: the gradient as a recorded op of the input's rows
            dz = CrossEntropyBackward.apply(coef, _rows(x), self.targets)
        else:
            # first order: the same formula on the (M, C) logits forward made (what .call would
            # do, without building a node on the hot path)
            dz = _cross_entropy_grad(coef, self.rows, self.targets)
        return _unrows(dz, shape), None, None, None, None, None

    # -- C++ kernel path ---------------------------------------------------------------------
    def _forward_kernel(self, x, z, t, target, weight, ignore_index, eps, reduction):
        z = np.ascontiguousarray(z)
        t = t.astype(np.int64, copy=False)
        loss, stats, loss_sum, weight_sum = _C.cross_entropy_forward(z, t, weight, ignore_index,
                                                                   eps)
        if reduction == "none":
            out = loss.reshape(target.shape)
        elif reduction == "sum":
            out = np.asarray(loss_sum, dtype=z.dtype)
        else:
            out = np.asarray(loss_sum / weight_sum if weight_sum else np.nan, dtype=z.dtype)
        if self.needs_input_grad and self.needs_input_grad[0]:
            self.save_for_backward(x, target)
            self.rows, self.targets = z, _ClassTargets(t, weight, ignore_index, eps, stats)
            self.meta = (x.shape, reduction, weight_sum)
        return out

    # -- array-module path (NumPy or CuPy) ---------------------------------------------------
    def _forward_arrays(self, x, z, t, target, weight, ignore_index, eps, reduction):
        xp = array_module(x)
        m_rows, c = z.shape
        valid = t != ignore_index
        any_ignored = m_rows > 0 and not bool(valid.all())
        tc = _take_targets(t, valid, any_ignored)
        if m_rows and c:
            bad = (tc < 0) | (tc >= c)
            if bool(bad.any()):
                raise IndexError(f"cross_entropy: target {int(tc[bad][0])} is out of bounds for "
                                 f"{c} classes (ignore_index={ignore_index})")
        elif m_rows and not bool((~valid).all()):
            raise IndexError("cross_entropy: input has 0 classes but some targets are not "
                             "ignored")
        # v: 1 for counted rows (None: all counted); rw = v * w_y (None: all 1).
        v = valid.astype(z.dtype) if any_ignored else None
        if weight is None:
            rw = v
        else:
            rw = weight[tc] if v is None else weight[tc] * v
        with np.errstate(invalid="ignore"):  # a +inf logit: inf - inf, NaN loss as PyTorch's
            zs = z - z.max(axis=1, keepdims=True) if m_rows and c else z.copy()
        e = xp.exp(zs)
        s = e.sum(axis=1)
        with np.errstate(divide="ignore"):
            lse = xp.log(s)
        loss = lse - zs[xp.arange(m_rows), tc] if c else xp.zeros(m_rows, dtype=z.dtype)
        if rw is not None:
            loss = loss * rw
        w_total = float(c) if weight is None else weight.sum()
        if eps:
            # sum_c w_c (lse - zs_c) = W lse - sum_c w_c zs_c (z shifted by its row max)
            smooth = w_total * lse - (zs.sum(axis=1) if weight is None else zs @ weight)
            if v is not None:
                smooth = smooth * v
            loss = (1 - eps) * loss + (eps / c) * smooth
        denom = (m_rows if rw is None else rw.sum()) if reduction == "mean" else None
        out = _reduce(loss.astype(z.dtype, copy=False), reduction, denom)
        if reduction == "none":
            out = out.reshape(target.shape)
        if self.needs_input_grad and self.needs_input_grad[0]:
            e /= s[:, None]  # softmax, kept for backward
            targets = _ClassTargets(t, weight, ignore_index, eps, None)
            targets.probs, targets.tc, targets.v, targets.rw, targets.w_total = e, tc, v, rw, \
                w_total
            self.save_for_backward(x, target)
            self.rows, self.targets = z, targets
            self.meta = (x.shape, reduction, denom)
        return out


class CrossEntropyBackward(Function):
    """The gradient of the class-index cross-entropy w.r.t. its (M, C) logits, as an op:
    dz_i = coef_i (A_i p_i - a_i), p = softmax(z), a and A from ``_ClassTargets.mix``; coef
    has 1 or M entries (the incoming gradient, already divided by the mean's denominator).

    Forward is the fused kernel (or the array formula with the softmax kept by forward), so the
    first-order pass costs what it always did. Its backward, for a gradient gg of dz:
        d/dcoef_i = sum_c gg_ic (A_i p_ic - a_ic)
        d/dz_i    = coef_i A_i p_i * (gg_i - <gg_i, p_i>)        (the softmax Jacobian)
    written with differentiable ops on z (softmax recomputed from z), so it differentiates
    again (third order)."""

    def forward(self, coef, z, targets):
        self.targets = targets
        self.save_for_backward(coef, z)
        return _cross_entropy_grad(coef, z, targets)

    def backward(self, gg):
        coef, z = self.saved_tensors
        need_coef, need_z = self.needs_input_grad[:2]
        m, c = z.shape
        if m == 0 or c == 0:
            return (zeros_like(coef) if need_coef else None,
                    zeros_like(z) if need_z else None, None)
        a, a_sum = self.targets.mix(m, c, z.dtype)
        p = _softmax_rows(z)
        gcoef = gz = None
        if need_coef:
            gcoef = unbroadcast(Sum.call(gg * (a_sum * p - a), (1,), False), coef.shape)
        if need_z:
            col = Reshape.call(coef, (coef.shape[0], 1), False) * a_sum
            gz = col * p * (gg - Sum.call(gg * p, (1,), True))
        return gcoef, gz, None


def _cross_entropy_grad(coef, z, targets):
    """dz = coef_i (A_i softmax(z_i) - a_i) on arrays: the fused kernel (softmax from z and the
    forward's row statistics), or on the array path from the softmax forward kept."""
    if targets.stats is not None:
        return _C.cross_entropy_backward(np.ascontiguousarray(z), targets.stats, targets.t,
                                         targets.weight, targets.ignore_index, targets.eps, coef)
    p, tc, v, rw = targets.probs, targets.tc, targets.v, targets.rw
    weight, w_total, eps = targets.weight, targets.w_total, targets.eps
    xp = array_module(p)
    m_rows, c = p.shape
    cw = coef if rw is None else coef * rw      # coef_i v_i w_y
    b = (1 - eps) * cw if eps else cw           # one-hot coefficient
    if eps:
        cv = coef if v is None else coef * v    # coef_i v_i
        a = b + (eps * w_total / c) * cv        # softmax coefficient
    else:
        a = b
    grad = p * a[:, None]
    grad[xp.arange(m_rows), tc] -= b
    if eps:
        sc = (eps / c) * cv[:, None]
        grad -= sc if weight is None else sc * weight
    return grad.astype(p.dtype, copy=False)


class CrossEntropyProbs(Function):
    """Cross-entropy with a probability target T (same shape as the logits):
    loss_i = -sum_c w_c T'_ic log softmax(z_i)_c, T' = (1 - eps) T + eps / C.
    dloss_i/dz = p sum_c w_c T'_ic - w T'_i; dloss_i/dT_ic = -(1 - eps) w_c log p_ic.
    ``'mean'`` divides by the number of rows (not by weights).

    Forward keeps softmax, log-softmax and w T' for the first-order backward; under
    create_graph backward rebuilds them from the input tensors with differentiable ops."""

    def forward(self, x, target, weight, eps, reduction):
        xp = array_module(x)
        z = _rows(x)
        tr = _rows(target)
        m_rows, c = z.shape
        with np.errstate(invalid="ignore"):  # a +inf logit: inf - inf, NaN loss as PyTorch's
            zs = z - z.max(axis=1, keepdims=True) if m_rows and c else z.copy()
        e = xp.exp(zs)
        s = e.sum(axis=1, keepdims=True)
        logp = zs - xp.log(s)
        wt = _smoothed_target(tr, weight, eps, c)
        loss = -(wt * logp).sum(axis=1)
        out = _reduce(loss.astype(z.dtype, copy=False), reduction, m_rows)
        if reduction == "none":
            out = out.reshape(x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ())
        self.meta = (x.shape, target.shape, weight, eps, reduction, m_rows, c)
        self.save_for_backward(x, target)
        self.parts = (e / s, logp, wt)
        return out

    def backward(self, g):
        x, target = self.saved_tensors
        shape, tshape, weight, eps, reduction, m_rows, c = self.meta
        if isinstance(x, Tensor):  # create_graph: as functions of the input tensors
            z = _rows(x)
            logp = _log_softmax_rows(z)
            p = _softmax_rows(z)
            wt = _smoothed_target(_rows(target), weight, eps, c)
        else:
            p, logp, wt = self.parts
        coef = _scale(g, reduction, m_rows)
        if reduction == "none":
            coef = Reshape.call(coef, (m_rows, 1), False)
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = _unrows(coef * (p * Sum.call(wt, (1,), True) - wt), shape)
        if self.needs_input_grad[1]:
            w = 1 if weight is None else weight
            gt = _unrows(-(1 - eps) * coef * w * logp, tshape)
        return gx, gt, None, None, None


def _smoothed_target(tr, weight, eps, c):
    """w T' with T' = (1 - eps) T + eps / C (array or Tensor T)."""
    ts = (1 - eps) * tr + eps / c if eps else tr
    return ts if weight is None else ts * weight


class _GatherRows(Function):
    """z[i, idx_i] for each row of (M, C) logits: (M,). Its gradient scatters back."""

    def forward(self, z, idx):
        self.shape, self.idx = z.shape, idx
        return z[array_module(z).arange(z.shape[0]), idx]

    def backward(self, g):
        return _ScatterRows.call(g, self.idx, self.shape, g.dtype), None


class _ScatterRows(Function):
    """An (M, C) array of zeros holding vals_i at (i, idx_i) (vals of shape (M,) or a scalar):
    the gradient of picking one entry per row. Linear, its own gradient gathers."""

    def forward(self, vals, idx, shape, dtype):
        self.vals_shape, self.idx = vals.shape, idx
        xp = array_module(vals)
        out = xp.zeros(shape, dtype=dtype)
        if shape[1]:
            out[xp.arange(shape[0]), idx] = vals
        return out

    def backward(self, g):
        return unbroadcast(_GatherRows.call(g, self.idx), self.vals_shape), None, None, None


class NLLLoss(Function):
    """loss_i = -w_y x_{i,y} for log-probabilities x; ignored rows count 0; ``'mean'`` divides
    by the summed w_y of counted rows. The gradient is -coef_i w_y at (i, y), 0 elsewhere:
    linear in the incoming gradient and independent of x, so its own derivative w.r.t. the
    incoming gradient is a gather (``_ScatterRows``) and w.r.t. x is 0."""

    def forward(self, x, target, weight, ignore_index, reduction):
        xp = array_module(x)
        z = _rows(x)
        m_rows, c = z.shape
        t = target.reshape(-1)
        valid = t != ignore_index
        any_ignored = not bool(valid.all()) if m_rows else False
        tc = _take_targets(t, valid, any_ignored)
        if m_rows:
            bad = (tc < 0) | (tc >= c)
            if bool(bad.any()):
                raise IndexError(f"nll_loss: target {int(tc[bad][0])} is out of bounds for {c} "
                                 f"classes (ignore_index={ignore_index})")
        picked = z[xp.arange(m_rows), tc] if c else xp.zeros(m_rows, dtype=z.dtype)
        if weight is None:
            wy = valid.astype(z.dtype) if any_ignored else None
        else:
            wy = weight[tc] * valid if any_ignored else weight[tc]
        loss = -picked if wy is None else -picked * wy
        total_w = None
        if reduction == "mean":
            total_w = m_rows if wy is None else wy.sum()
        out = _reduce(loss.astype(z.dtype, copy=False), reduction, total_w)
        if reduction == "none":
            out = out.reshape(target.shape)
        self.meta = (x.shape, z.shape, tc, wy, reduction, total_w, z.dtype)
        self.save_for_backward(target)  # nothing to compute with: for its version check
        return out

    def backward(self, g):
        self.saved_tensors  # noqa: B018 (raises if the target was modified in place)
        shape, zshape, tc, wy, reduction, total_w, dtype = self.meta
        coef = _scale(g, reduction, total_w)
        vals = -(_flat(coef) if reduction == "none" else coef)
        if wy is not None:
            vals = vals * wy
        return _unrows(_ScatterRows.call(vals, tc, zshape, dtype), shape), None, None, None, None


def _class_args(op, input, target, weight, ignore_index):
    """Check (input, target, weight) of a class-index loss; returns them converted."""
    input = _as_tensor(input, "input", op)
    target = _as_tensor(target, "target", op)
    _check_float(input, "input", op)
    if target.dtype == np.uint64:
        # The kernels take int64 indices: a uint64 of 2**64 - 100 would become -100, the default
        # ignore_index, and silently drop its row. PyTorch refuses uint64 targets outright.
        raise RuntimeError(f"{op}: expected target dtype to be Long or Byte, but got UInt64 "
                           "(uint64 class indices can wrap to negative ones such as ignore_index; "
                           "convert them to int64)")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dimension (the classes), got a "
                         f"0-d tensor")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    w = None
    if weight is not None:
        weight = _as_tensor(weight, "weight", op)
        if weight.shape != (c,):
            raise ValueError(f"{op}: weight tensor should be defined either for all {c} classes "
                             f"or no classes but got weight tensor of shape {weight.shape}")
        if weight.requires_grad and grad_mode.is_grad_enabled():
            raise RuntimeError(f"{op}: the derivative for 'weight' is not implemented (as in "
                               "PyTorch); pass weight.detach()")
        w = _same_dtype(weight, input)._data
    return input, target, w, c


def _expected_target_shape(input: Tensor):
    return input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ()


def nll_loss(input: Tensor, target: Tensor, weight=None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood -w_y log p(y | x) of class indices ``target`` under the
    log-probabilities ``input`` ((C,), (N, C) or (N, C, d1, ...) with target (), (N) or
    (N, d1, ...)); ``ignore_index`` targets count zero and are left out of the mean."""
    op = "nll_loss"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    input, target, w, c = _class_args(op, input, target, weight, ignore_index)
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"nll_loss: expected target dtype to be an integer (class indices), "
                           f"got {target.dtype}")
    expected = _expected_target_shape(input)
    if target.shape != expected:
        raise ValueError(f"nll_loss: expected target of shape {expected} for input of shape "
                         f"{input.shape} (batch and spatial dims, without the class dim), got "
                         f"{target.shape}")
    return NLLLoss.apply(input, target, w, int(ignore_index), reduction)


def cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between softmax(input) and the target: the negative log-likelihood of a
    categorical p(y | x) = softmax(z)_y (lecture notes 3.9-3.11), fused with log-softmax.

    input: logits (C,), (N, C), or (N, C, d1, ...) for pixel-wise classification
    (segmentation: (N, C, H, W) logits with (N, H, W) targets, averaged over all pixels).
    target: class indices (integer dtype, shape (), (N) or (N, d1, ...)), or class
    probabilities (floating, input's shape). ``weight`` (C,) rescales each class;
    ``ignore_index`` targets count zero and leave the mean; ``label_smoothing`` eps mixes the
    target with the uniform distribution: (1 - eps) onehot + eps / C.
    """
    op = "cross_entropy"
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    input, target, w, c = _class_args(op, input, target, weight, ignore_index)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if target.dtype.kind in "iu":
        expected = _expected_target_shape(input)
        if target.shape != expected:
            raise ValueError(f"cross_entropy: expected target of shape {expected} (class indices "
                             f"for input of shape {input.shape}: batch and spatial dims without "
                             f"the class dim), got {target.shape}")
        return CrossEntropy.apply(input, target, w, int(ignore_index), eps, reduction)
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: a probability target must have the input's shape "
                             f"{input.shape}, got {target.shape} (class indices need an integer "
                             f"dtype)")
        target = _same_dtype(target, input)
        return CrossEntropyProbs.apply(input, target, w, eps, reduction)
    raise TypeError(f"cross_entropy: target must hold class indices (integer dtype) or class "
                    f"probabilities (floating dtype), got dtype {target.dtype}")
