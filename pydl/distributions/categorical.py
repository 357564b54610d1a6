"""The categorical distribution over {0, ..., K - 1}, by ``probs`` or ``logits``."""
from __future__ import annotations

import numpy as np

import pydl
from pydl.distributions import constraints
from pydl.distributions.distribution import Distribution, _sample_shape_numel
from pydl.distributions.utils import lazy_property, logits_to_probs, probs_to_logits
from pydl.tensor import Tensor

__all__ = ["Categorical"]


class Categorical(Distribution):
    """A distribution over K categories, the last dimension of ``probs`` (non-negative,
    normalised here to sum to 1) or ``logits`` (unnormalised log-probabilities, normalised by
    subtracting their logsumexp); the leading dimensions are the batch. Give one, not both.

    log p(k) = logits[k]; entropy = -sum_k p_k log p_k (the lecture notes' Shannon entropy, 2.13,
    in nats; 0 log 0 = 0). Draws are int64 indices, by inverse-CDF sampling with uniforms from
    pydl's generator.
    """

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if not isinstance(probs, Tensor):
                raise TypeError(f"probs must be a Tensor, got {type(probs).__name__}")
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if not isinstance(logits, Tensor):
                raise TypeError(f"logits must be a Tensor, got {type(logits).__name__}")
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - pydl.logsumexp(logits, dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = tuple(self._param.shape[:-1])
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = tuple(batch_shape)
        param_shape = batch_shape + (self._num_events,)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        super(Categorical, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    @property
    def mean(self):
        return pydl.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype,
                         device=self.probs.device)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return pydl.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype,
                         device=self.probs.device)

    def sample(self, sample_shape=()):
        n = _sample_shape_numel(sample_shape)
        probs = np.asarray(self.probs.detach().cpu().numpy(), dtype=np.float64)
        probs2d = probs.reshape(-1, self._num_events)
        cdf = np.cumsum(probs2d, axis=-1)
        cdf /= cdf[:, -1:]  # the last entry is 1 exactly, so u < 1 always finds a category
        u = pydl.random.generator().random((n, probs2d.shape[0]))
        # first k with u < cdf[k]; zero-probability categories have cdf[k] == cdf[k-1] and
        # are never chosen
        idx = (u[..., None] >= cdf[None]).sum(-1)
        idx = np.minimum(idx, self._num_events - 1)
        out = idx.reshape(self._extended_shape(sample_shape)).astype(np.int64)
        return pydl.tensor(out, dtype=pydl.int64, device=self._param.device)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        shape = np.broadcast_shapes(tuple(value.shape), tuple(self.logits.shape))
        log_pmf = self.logits.expand(shape)
        index = value.expand(shape[:-1] + (1,))
        return pydl.gather(log_pmf, -1, index).squeeze(-1)

    def entropy(self):
        min_real = float(np.finfo(self.logits.dtype).min)
        logits = self.logits.clamp(min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = pydl.arange(self._num_events, dtype=pydl.int64, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((self._num_events,) + self._batch_shape)
        return values
