"""Entropy, cross-entropy and Kullback-Leibler divergence, in the lecture notes' forms.

* Shannon entropy (2.13): H(p) = -sum_x p(x) log p(x) = E[-log p(X)].
* Cross-entropy (2.14): H(p, q) = -sum_x p(x) log q(x) = E_p[-log q(X)].
* KL divergence (2.15), ``relative_entropy``: D_KL(p || q) = H(p, q) - H(p) =
  sum_x p(x) log(p(x)/q(x)). (Not named ``kl``: ``pydl.distributions.kl`` is the module of
  ``kl_divergence``, as in torch.)

Each takes either probability tensors (``p``, ``q``: non-negative, summing to 1 over ``dim``;
the sum runs over ``dim``, the rest is a batch) or ``pydl.distributions`` objects (then the
closed forms: ``p.entropy()``, ``kl_divergence(p, q)`` and H(p, q) = H(p) + D_KL(p || q), the
identity 2.15 read backwards, which also covers densities). ``base`` picks the unit: None for
nats (natural log, PyTorch's unit), 2 for bits (the notes' coin flip: H = 1 bit).

Terms with p(x) = 0 count as 0 (0 log 0 = 0, the limit); where q(x) = 0 < p(x) the
cross-entropy and KL are infinite. Gradients flow to both arguments.
"""
from __future__ import annotations

import math
from typing import Optional

import pydl
from pydl.distributions.distribution import Distribution
from pydl.distributions.kl import kl_divergence
from pydl.tensor import Tensor

__all__ = ["entropy", "cross_entropy", "relative_entropy"]


def _unit(value: Tensor, base: Optional[float]) -> Tensor:
    if base is None:
        return value
    if not isinstance(base, (int, float)) or isinstance(base, bool) or base <= 0 or base == 1:
        raise ValueError(f"base must be a positive number other than 1 (or None for nats), "
                         f"got {base!r}")
    return value / math.log(base)


def _check_probs(name: str, p) -> Tensor:
    if not isinstance(p, Tensor):
        raise TypeError(f"{name} must be a Tensor of probabilities or a Distribution, got "
                        f"{type(p).__name__}")
    if p.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {p.dtype}")
    if p.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the outcomes), got a scalar")
    return p


def _xlogy(x: Tensor, y: Tensor) -> Tensor:
    """x log y with 0 log y = 0 (also for y = 0, with a zero gradient there) and x log 0 = -inf
    for x > 0; no log of 0 is evaluated (which would warn)."""
    zero_x, zero_y = x == 0, y == 0
    safe_y = pydl.where(pydl.logical_or(zero_x, zero_y), pydl.ones_like(y), y)
    out = x * pydl.log(safe_y)
    out = pydl.where(pydl.logical_and(zero_y, pydl.logical_not(zero_x)),
                     pydl.full_like(out, float("-inf")), out)
    return pydl.where(zero_x, pydl.zeros_like(out), out)


def entropy(p, dim: int = -1, base: Optional[float] = None) -> Tensor:
    """Shannon entropy H(p) = -sum_x p(x) log p(x) over ``dim`` (lecture notes 2.13), or
    ``p.entropy()`` for a Distribution."""
    if isinstance(p, Distribution):
        return _unit(p.entropy(), base)
    p = _check_probs("p", p)
    return _unit(-_xlogy(p, p).sum(dim), base)


def cross_entropy(p, q, dim: int = -1, base: Optional[float] = None) -> Tensor:
    """Cross-entropy H(p, q) = -sum_x p(x) log q(x) over ``dim`` (lecture notes 2.14), or
    H(p) + D_KL(p || q) for two Distributions.

    Not ``pydl.nn.functional.cross_entropy``, which takes logits and class targets: with a
    one-hot p and q = softmax(logits) the two agree."""
    if isinstance(p, Distribution) or isinstance(q, Distribution):
        if not (isinstance(p, Distribution) and isinstance(q, Distribution)):
            raise TypeError("cross_entropy: give two Distributions or two probability tensors, "
                            f"got {type(p).__name__} and {type(q).__name__}")
        return _unit(p.entropy() + kl_divergence(p, q), base)
    p, q = _check_probs("p", p), _check_probs("q", q)
    return _unit(-_xlogy(p, q).sum(dim), base)


def relative_entropy(p, q, dim: int = -1, base: Optional[float] = None) -> Tensor:
    """The Kullback-Leibler divergence (relative entropy)
    D_KL(p || q) = sum_x p(x) log(p(x)/q(x)) = H(p, q) - H(p) over ``dim`` (lecture notes
    2.15), or ``kl_divergence(p, q)`` for two Distributions. Not symmetric in p and q."""
    if isinstance(p, Distribution) or isinstance(q, Distribution):
        if not (isinstance(p, Distribution) and isinstance(q, Distribution)):
            raise TypeError("relative_entropy: give two Distributions or two probability tensors, "
                            f"got {type(p).__name__} and {type(q).__name__}")
        return _unit(kl_divergence(p, q), base)
    p, q = _check_probs("p", p), _check_probs("q", q)
    return _unit((_xlogy(p, p) - _xlogy(p, q)).sum(dim), base)
