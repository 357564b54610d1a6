"""KL(p || q) between distributions, with torch's registry: ``register_kl(P, Q)`` decorates
the closed form for a pair of types; ``kl_divergence(p, q)`` dispatches to the most specific
registered pair (by subclass order) and raises NotImplementedError when there is none.

The closed forms below are the lecture notes' D_KL(p||q) = H(p, q) - H(p) = E_p[log p(X) /
q(X)] (2.15) worked out for each family.
"""
from __future__ import annotations

import warnings
from functools import total_ordering

import pydl
import pydl.nn.functional as F
from pydl.distributions.bernoulli import Bernoulli
from pydl.distributions.categorical import Categorical
from pydl.distributions.distribution import Distribution
from pydl.distributions.independent import Independent
from pydl.distributions.normal import Normal
from pydl.distributions.utils import sum_rightmost

__all__ = ["register_kl", "kl_divergence"]

_KL_REGISTRY: dict = {}  # (type_p, type_q) -> function, as registered
_KL_MEMOIZE: dict = {}  # (type(p), type(q)) -> function found for them


def register_kl(type_p, type_q):
    """Decorator registering ``fn(p, q)`` as KL(p || q) for p an instance of ``type_p`` and q
    of ``type_q`` (subclasses included, the most specific registration wins)::

        @register_kl(Normal, Normal)
        def kl_normal_normal(p, q): ...
    """
    if not isinstance(type_p, type) or not issubclass(type_p, Distribution):
        raise TypeError(f"Expected type_p to be a Distribution subclass but got {type_p}")
    if not isinstance(type_q, type) or not issubclass(type_q, Distribution):
        raise TypeError(f"Expected type_q to be a Distribution subclass but got {type_q}")

    def decorator(fun):
        _KL_REGISTRY[type_p, type_q] = fun
        _KL_MEMOIZE.clear()  # a new registration may be more specific than a remembered one
        return fun

    return decorator


@total_ordering
class _Match:
    """Orders registered type pairs lexicographically by subclass relation."""
    __slots__ = ["types"]

    def __init__(self, *types):
        self.types = types

    def __eq__(self, other):
        return self.types == other.types

    def __le__(self, other):
        for x, y in zip(self.types, other.types):
            if not issubclass(x, y):
                return False
            if x is not y:
                break
        return True


def _dispatch_kl(type_p, type_q):
    matches = [(sp, sq) for sp, sq in _KL_REGISTRY
               if issubclass(type_p, sp) and issubclass(type_q, sq)]
    if not matches:
        return NotImplemented
    left_p, left_q = min(_Match(*m) for m in matches).types
    right_q, right_p = min(_Match(*reversed(m)) for m in matches).types
    left_fun = _KL_REGISTRY[left_p, left_q]
    right_fun = _KL_REGISTRY[right_p, right_q]
    if left_fun is not right_fun:
        warnings.warn(f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). "
                      f"Please register_kl({left_p.__name__}, {right_q.__name__})",
                      RuntimeWarning, stacklevel=2)
    return left_fun


def kl_divergence(p: Distribution, q: Distribution):
    """KL(p || q) = E_p[log p(X) - log q(X)], batched over the distributions' batch shape.

    Raises NotImplementedError when no closed form is registered for the pair of types."""
    try:
        fun = _KL_MEMOIZE[type(p), type(q)]
    except KeyError:
        fun = _dispatch_kl(type(p), type(q))
        _KL_MEMOIZE[type(p), type(q)] = fun
    if fun is NotImplemented:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type "
                                  f"{p.__class__.__name__} and q type {q.__class__.__name__}")
    return fun(p, q)


def _inf_where(mask, value):
    return pydl.where(mask, pydl.full_like(value, float("inf")), value)


def _zero_where(mask, value):
    return pydl.where(mask, pydl.zeros_like(value), value)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    """KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2,
    written as 1/2 (r + t - 1 - log r) with r = (s1/s2)^2, t = ((m1 - m2)/s2)^2. Against the
    standard normal prior it is the VAE's KL term 1/2 (s^2 + m^2 - 1 - log s^2)."""
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - pydl.log(var_ratio))


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    """p log(p/q) + (1 - p) log((1 - p)/(1 - q)), with log p - log q = softplus(-lq) -
    softplus(-lp) from the logits (no log of a rounded probability); infinite where q gives
    zero probability to what p can draw, and 0 log 0 = 0."""
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = _zero_where(p.probs == 0, _inf_where(q.probs == 0, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _zero_where(p.probs == 1, _inf_where(q.probs == 1, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    """sum_k p_k (log p_k - log q_k): the lecture notes' sum_x p(x) log(p(x)/q(x)) (2.15)."""
    t = p.probs * (p.logits - q.logits)
    t = _inf_where((q.probs == 0).expand(t.shape), t)
    t = _zero_where((p.probs == 0).expand(t.shape), t)
    return t.sum(-1)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    """Independent coordinates: the KL of the joint is the sum of the coordinates' KLs."""
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    result = kl_divergence(p.base_dist, q.base_dist)
    return sum_rightmost(result, p.reinterpreted_batch_ndims)
