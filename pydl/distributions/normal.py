"""The normal (Gaussian) distribution N(loc, scale^2)."""
from __future__ import annotations

import math
import numbers

import pydl
from pydl.distributions import constraints
from pydl.distributions.distribution import Distribution
from pydl.distributions.utils import broadcast_all

__all__ = ["Normal"]

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class Normal(Distribution):
    """A normal distribution with mean ``loc`` and standard deviation ``scale`` (numbers or
    tensors, broadcast together; the batch shape is theirs).

    log p(x) = -(x - loc)^2 / (2 scale^2) - log scale - log sqrt(2 pi);
    entropy = 1/2 + 1/2 log(2 pi) + log scale (in nats; the lecture notes' Shannon entropy
    2.13, -E[log p(X)], with the sum an integral);
    ``rsample`` is the reparameterisation loc + scale * eps, eps ~ N(0, 1) drawn from pydl's
    generator, so d sample / d loc = 1 and d sample / d scale = eps.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        if isinstance(loc, numbers.Real) and isinstance(scale, numbers.Real):
            batch_shape = ()
        else:
            batch_shape = tuple(self.loc.shape)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Normal, _instance)
        batch_shape = tuple(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        super(Normal, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = pydl.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * var) - pydl.log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + pydl.erf((value - self.loc) / self.scale / math.sqrt(2)))

    def icdf(self, value):
        return self.loc + self.scale * pydl.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + pydl.log(self.scale)
