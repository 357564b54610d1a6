"""L1 and L2 parameter-norm penalties (course notes 10.10-10.12), as differentiable scalars to add
to a loss. Biases are skipped by default: a bias controls a single variable and needs little
data to fit, so penalizing it mostly causes underfitting.

For plain L2 regularization prefer the optimizers' ``weight_decay`` (no extra graph nodes): the
gradient of ``l2_penalty(model, alpha)`` is ``alpha * w``, exactly what ``SGD(...,
weight_decay=alpha)`` adds to the gradient of every weight. ``AdamW`` applies *decoupled* weight
decay instead, which is not an L2 penalty.
"""
from __future__ import annotations

from typing import Iterable, List, Union

import numpy as np

from pydl import _C
from pydl.autograd import Function
from pydl.tensor import Tensor


def _penalized(params_or_module, include_bias: bool) -> List[Tensor]:
    """The tensors a penalty applies to: a module's parameters whose name does not end in
    ``bias`` (all of them with include_bias=True), or every tensor of an iterable."""
    from pydl.nn.module import Module

    if isinstance(params_or_module, Module):
        return [p for name, p in params_or_module.named_parameters()
                if include_bias or name.rsplit(".", 1)[-1] != "bias"]
    if isinstance(params_or_module, Tensor):
        return [params_or_module]
    return list(params_or_module)


def _norms(arrays, norm_type: float) -> List[float]:
    out = []
    for a in arrays:
        if a.dtype in (np.float32, np.float64):
            out.extend(_C.tensor_norms([np.asarray(a, order="C")], norm_type))
        else:
            out.append(float(np.linalg.norm(a.ravel().astype(np.float64), norm_type)))
    return out


class _L2Penalty(Function):
    """alpha/2 * sum_i ||w_i||^2 over all inputs in one node; d/dw_i = alpha * w_i."""

    def forward(self, alpha, *weights):
        self.alpha = alpha
        self.save_for_backward(*weights)
        total = sum(n * n for n in _norms(weights, 2.0))
        return np.asarray(0.5 * alpha * total, dtype=np.result_type(*weights))

    def backward(self, grad_out):
        weights = self.saved_tensors
        scale = grad_out * self.alpha
        return (None,) + tuple(
            (scale * w).astype(w.dtype, copy=False) if need else None
            for w, need in zip(weights, self.needs_input_grad[1:]))


class _L1Penalty(Function):
    """alpha * sum_i ||w_i||_1 in one node; d/dw_i = alpha * sign(w_i) (0 at w = 0)."""

    def forward(self, alpha, *weights):
        self.alpha = alpha
        self.save_for_backward(*weights)
        return np.asarray(alpha * sum(_norms(weights, 1.0)), dtype=np.result_type(*weights))

    def backward(self, grad_out):
        weights = self.saved_tensors
        scale = grad_out * self.alpha
        return (None,) + tuple(
            (scale * np.sign(w)).astype(w.dtype, copy=False) if need else None
            for w, need in zip(weights, self.needs_input_grad[1:]))


def l2_penalty(params_or_module: Union["Module", Iterable[Tensor], Tensor],  # noqa: F821
               alpha: float = 1.0, include_bias: bool = False) -> Tensor:
    r"""The L2 penalty :math:`\frac{\alpha}{2}\sum_w \|w\|_2^2` as a 0-d Tensor (differentiable).

    Args:
        params_or_module: a Module (its parameters, minus those named ``*bias`` unless
            ``include_bias``) or an iterable of tensors (all of them).
        alpha: the penalty weight :math:`\alpha`; the gradient is :math:`\alpha w`.
        include_bias: also penalize a Module's biases.
    """
    weights = _penalized(params_or_module, include_bias)
    if not weights:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    return _L2Penalty.apply(float(alpha), *weights)


def l1_penalty(params_or_module: Union["Module", Iterable[Tensor], Tensor],  # noqa: F821
               alpha: float = 1.0, include_bias: bool = False) -> Tensor:
    r"""The L1 penalty :math:`\alpha\sum_w \|w\|_1` as a 0-d Tensor (differentiable; its
    gradient :math:`\alpha\,\mathrm{sign}(w)` drives weights to exactly zero: sparse networks).

    Args:
        params_or_module: a Module (its parameters, minus those named ``*bias`` unless
            ``include_bias``) or an iterable of tensors (all of them).
        alpha: the penalty weight :math:`\alpha`.
        include_bias: also penalize a Module's biases.
    """
    weights = _penalized(params_or_module, include_bias)
    if not weights:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    return _L1Penalty.apply(float(alpha), *weights)


def _paired(a, b, include_bias: bool):
    """(name, tensor_a, tensor_b) triples: two Modules' parameters matched by name (they must
    have the same names and shapes), or two iterables of tensors zipped in order."""
    from pydl.nn.module import Module

    if isinstance(a, Module) != isinstance(b, Module):
        raise TypeError("soft_sharing_penalty: give two Modules or two iterables of tensors, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    if isinstance(a, Module):
        pa = {n: p for n, p in a.named_parameters()
              if include_bias or n.rsplit(".", 1)[-1] != "bias"}
        pb = {n: p for n, p in b.named_parameters()
              if include_bias or n.rsplit(".", 1)[-1] != "bias"}
        if pa.keys() != pb.keys():
            only_a = sorted(pa.keys() - pb.keys())
            only_b = sorted(pb.keys() - pa.keys())
            raise ValueError(f"soft_sharing_penalty: the modules' parameters differ by name: only "
                             f"in the first {only_a}, only in the second {only_b}")
        pairs = [(n, pa[n], pb[n]) for n in pa]
    else:
        ta = [a] if isinstance(a, Tensor) else list(a)
        tb = [b] if isinstance(b, Tensor) else list(b)
        if len(ta) != len(tb):
            raise ValueError(f"soft_sharing_penalty: {len(ta)} tensors against {len(tb)}")
        pairs = [(str(i), x, y) for i, (x, y) in enumerate(zip(ta, tb))]
    for name, x, y in pairs:
        if tuple(x.shape) != tuple(y.shape):
            raise ValueError(f"soft_sharing_penalty: parameter {name!r} has shape "
                             f"{tuple(x.shape)} in the first and {tuple(y.shape)} in the second")
    return pairs


def soft_sharing_penalty(a, b, alpha: float = 1.0, include_bias: bool = True) -> Tensor:
    r"""Soft parameter sharing (course notes 11.3): :math:`\alpha\,\|\theta_A - \theta_B\|_2^2`,
    the squared distance between two models' parameters, as a differentiable 0-d Tensor.

    Added to the sum of two models' losses it pulls the models towards each other instead of
    forcing them equal (hard sharing: one Parameter in both, ``pydl.nn.TiedLinear``). The
    gradient is :math:`2\alpha(\theta_A - \theta_B)` for A and its negative for B.

    Args:
        a, b: two Modules with the same parameter names and shapes (matched by name), or two
            sequences of tensors of equal shapes (matched by position).
        alpha: the penalty weight.
        include_bias: also pull biases together (default; set False to tie only weights).
    """
    pairs = _paired(a, b, include_bias)
    if not pairs:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    total = None
    for _, x, y in pairs:
        d = x - y
        term = (d * d).sum()
        total = term if total is None else total + term
    return total * float(alpha)
