"""A variational autoencoder (Kingma & Welling, 2014) for flat or image inputs.

The lecture notes' stochastic autoencoder (23.1) has an encoder p_encoder(h|x) and a decoder
p_decoder(x|h) trained on -log p_decoder(x|h): mean squared error for a Gaussian decoder, binary
cross-entropy for a Bernoulli one. The VAE makes the encoder a Gaussian q(z|x) =
N(mu(x), diag sigma(x)^2), puts a prior p(z) = N(0, I) on the code, and maximises the evidence
lower bound

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x),

estimated with reparameterised draws z = mu + sigma * eps (``Normal.rsample``) so that the
gradient reaches the encoder; the KL between the two Gaussians is in closed form
(``kl_divergence``: 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)). (The notes stop at
stochastic encoders and decoders; the ELBO is the standard VAE objective.)
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence, Union

import pydl
from pydl import nn
from pydl.distributions import Bernoulli, Independent, Normal, kl_divergence
from pydl.tensor import Tensor

__all__ = ["VAE", "ELBO"]


class ELBO(NamedTuple):
    """Per-example means over a batch, in nats: ``loss`` (to minimise: reconstruction +
    beta * kl), ``elbo`` (E_q[log p(x|z)] - KL, the bound itself), ``reconstruction``
    (-E_q[log p(x|z)], the decoder's negative log-likelihood: BCE or Gaussian NLL summed over
    the features) and ``kl`` (KL(q(z|x) || p(z)))."""
    loss: Tensor
    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor


def _mlp(sizes, activation):
    from pydl.models import _activation  # the package's activation names

    layers = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), _activation(activation)]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """A fully connected VAE: encoder ``in_features -> hidden... -> (mu, log sigma^2)`` of size
    ``latent_dim`` each, decoder ``latent_dim -> reversed(hidden)... -> in_features``.

    Args:
        in_features: input size; inputs of shape (N, *) are flattened (an (N, 1, 8, 8) digit
            is 64 features) and reconstructions come back in the input's shape.
        latent_dim: size of the code z.
        hidden: widths of the hidden layers of the encoder (the decoder mirrors them).
        likelihood: ``"bernoulli"``: p(x|z) = Bernoulli(logits = decoder(z)) per feature, the
            reconstruction term is the binary cross-entropy (for data in [0, 1]; grey values
            are allowed as targets, as is usual for MNIST-like data, so ``log_prob`` is used
            without support validation); ``"gaussian"``: p(x|z) = N(decoder(z), sigma^2) per
            feature, the reconstruction term is the squared error / (2 sigma^2) + log sigma +
            1/2 log 2 pi.
        gaussian_scale: the Gaussian decoder's sigma: a float fixes it; ``"learned"`` learns
            one sigma per feature, sigma = softplus(``log_scale``) + ``min_scale`` (starting at
            ``init_scale``): the floor keeps constant pixels from driving the likelihood to
            infinity.
        activation: hidden activation name or module class (as ``pydl.models.MLP``).

    ``encode(x)`` is q(z|x) (an ``Independent(Normal)``, batch (N,), event (latent_dim,));
    ``decode(z)`` is p(x|z); ``forward(x)`` is the mean reconstruction E[x|z = mu(x)];
    ``elbo(x)`` returns an :class:`ELBO`; ``sample(n)`` decodes draws from the prior and
    ``interpolate(x1, x2, steps)`` decodes points on the line between two codes.
    """

    def __init__(self, in_features: int, latent_dim: int = 2, hidden: Sequence[int] = (128,),
                 likelihood: str = "bernoulli", gaussian_scale: Union[float, str] = "learned",
                 min_scale: float = 0.05, init_scale: float = 1.0,
                 activation: Union[str, Callable] = "relu"):
        super().__init__()
        hidden = list(hidden)
        for name, v in (("in_features", in_features), ("latent_dim", latent_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"VAE: {name} must be a positive int, got {v!r}")
        if any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"VAE: hidden must hold positive ints, got {hidden}")
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', got "
                             f"{likelihood!r}")
        self.in_features, self.latent_dim, self.likelihood = in_features, latent_dim, likelihood
        self.encoder = _mlp([in_features] + hidden, activation)
        width = hidden[-1] if hidden else in_features
        self.to_loc = nn.Linear(width, latent_dim)
        self.to_logvar = nn.Linear(width, latent_dim)
        self.decoder = nn.Sequential(*_mlp([latent_dim] + hidden[::-1], activation),
                                     nn.Linear(hidden[0] if hidden else latent_dim, in_features))
        self.min_scale = float(min_scale)
        self.fixed_scale = None
        if likelihood == "gaussian":
            if gaussian_scale == "learned":
                if not self.min_scale >= 0:
                    raise ValueError(f"VAE: min_scale must be >= 0, got {min_scale!r}")
                if not init_scale > self.min_scale:
                    raise ValueError(f"VAE: init_scale ({init_scale!r}) must exceed min_scale "
                                     f"({min_scale!r})")
                # sigma = softplus(log_scale) + min_scale starts at init_scale
                raw = math.log(math.expm1(init_scale - self.min_scale))
                self.log_scale = nn.Parameter(pydl.full((in_features,), raw))
            elif isinstance(gaussian_scale, (int, float)) and not isinstance(gaussian_scale, bool) \
                    and gaussian_scale > 0:
                self.fixed_scale = float(gaussian_scale)
            else:
                raise ValueError(f"VAE: gaussian_scale must be a positive number or 'learned', "
                                 f"got {gaussian_scale!r}")

    # -- the model ------------------------------------------------------------------------------
    def prior(self, like: Tensor = None) -> Independent:
        """p(z) = N(0, I) in latent_dim dimensions."""
        dtype = like.dtype if like is not None else self.to_loc.weight.dtype
        device = like.device if like is not None else self.to_loc.weight.device
        zeros = pydl.zeros(self.latent_dim, dtype=dtype, device=device)
        return Independent(Normal(zeros, pydl.ones_like(zeros)), 1)

    def _flat(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or (x.ndim >= 2 and math.prod(x.shape[1:]) != self.in_features) or \
                (x.ndim == 1 and x.shape[0] != self.in_features):
            raise ValueError(f"VAE: expected inputs of shape (N, *) with {self.in_features} "
                             f"features per example, got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0] if x.ndim >= 2 else 1, self.in_features)

    def encode(self, x: Tensor) -> Independent:
        """q(z|x) = N(mu(x), diag exp(logvar(x))), batch (N,), event (latent_dim,)."""
        h = self.encoder(self._flat(x))
        loc, logvar = self.to_loc(h), self.to_logvar(h)
        return Independent(Normal(loc, pydl.exp(0.5 * logvar)), 1)

    def _scale(self):
        if self.fixed_scale is not None:
            return self.fixed_scale
        # softplus keeps sigma positive with a gradient everywhere; min_scale bounds it below
        return nn.functional.softplus(self.log_scale) + self.min_scale

    def decode(self, z: Tensor) -> Independent:
        """p(x|z) over the flattened features: Bernoulli(logits) or Normal(mean, sigma)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return Independent(Bernoulli(logits=out, validate_args=False), 1)
        scale = self._scale()
        if isinstance(scale, Tensor):
            scale = scale.expand(out.shape)
        return Independent(Normal(out, scale, validate_args=False), 1)

    def forward(self, x: Tensor) -> Tensor:
        """The mean reconstruction E[x | z = mu(x)], in x's shape."""
        return self.decode(self.encode(x).mean).mean.reshape(x.shape)

    def elbo(self, x: Tensor, n_samples: int = 1, beta: float = 1.0) -> ELBO:
        """The ELBO of each example of the batch, averaged: reconstruction -E_q[log p(x|z)]
        from ``n_samples`` reparameterised draws of z, KL(q(z|x) || p(z)) in closed form;
        ``loss = reconstruction + beta * kl`` (beta = 1: the negative ELBO; other values give
        the beta-VAE)."""
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"VAE.elbo: n_samples must be a positive int, got {n_samples!r}")
        xf = self._flat(x)
        qz = self.encode(xf)
        z = qz.rsample((n_samples,))  # (S, N, latent_dim)
        px = self.decode(z.reshape(-1, self.latent_dim))
        target = xf.unsqueeze(0).expand((n_samples,) + tuple(xf.shape)).reshape(
            -1, self.in_features)
        log_lik = px.log_prob(target).reshape(n_samples, -1).mean(0)  # (N,)
        kl = kl_divergence(qz, self.prior(xf))  # (N,)
        reconstruction = -log_lik.mean()
        kl = kl.mean()
        return ELBO(loss=reconstruction + beta * kl, elbo=-(reconstruction + kl),
                    reconstruction=reconstruction, kl=kl)

    # -- generation -----------------------------------------------------------------------------
    @pydl.no_grad()
    def sample(self, n: int, mean: bool = True, generator=None) -> Tensor:
        """``n`` new examples (N, in_features): z ~ p(z), then the decoder's mean (``mean``)
        or a draw from p(x|z)."""
        w = self.to_loc.weight
        z = pydl.randn((n, self.latent_dim), dtype=w.dtype, device=w.device,
                       generator=generator)
        px = self.decode(z)
        return px.mean if mean else px.sample()

    @pydl.no_grad()
    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 8) -> Tensor:
        """Decoder means along the straight line between the posterior means of ``x1`` and
        ``x2`` (single examples, any shape with in_features elements): ``steps`` rows from
        x1's code (t = 0) to x2's (t = 1), shape (steps, *x1.shape)."""
        if not isinstance(steps, int) or steps < 2:
            raise ValueError(f"VAE.interpolate: steps must be an int >= 2, got {steps!r}")
        if x1.numel() != self.in_features or x2.numel() != self.in_features:
            raise ValueError(f"VAE.interpolate: expects two single examples of "
                             f"{self.in_features} features, got shapes {tuple(x1.shape)} and "
                             f"{tuple(x2.shape)}")
        z1 = self.encode(x1.reshape(1, -1)).mean
        z2 = self.encode(x2.reshape(1, -1)).mean
        t = pydl.linspace(0, 1, steps, dtype=z1.dtype, device=z1.device).reshape(-1, 1)
        z = z1 + t * (z2 - z1)
        return self.decode(z).mean.reshape((steps,) + tuple(x1.shape))
