"""Regularised autoencoders (lecture notes 19-21): the penalties Omega(h) added to the
reconstruction loss L(x, r), a straight-through binarisation for binary codes, and greedy
layer-wise pre-training of a deep network with stacked (denoising) autoencoders.

The models themselves are ``pydl.models.Autoencoder`` (fully connected; ``corruption`` makes
it denoising, ``code_activation``/``code_noise`` shape its code, ``loss(...)`` adds these
penalties) and ``pydl.models.ConvAutoencoder``. This module holds what they are trained with:

* ``l1_sparsity(h)``: Omega(h) = sum_j |h_j|, the Laplace prior's -log p(h) up to constants
  (lecture notes 21.1), averaged over the batch.
* ``kl_sparsity(h, rho)``: Omega(h) = sum_j KL(rho || rho_hat_j), rho_hat_j = the mean
  activation of code unit j over the batch: pushes every unit's firing rate towards ``rho``
  (Ng's sparse autoencoder). Needs codes in (0, 1) (a sigmoid code layer).
* ``contractive_penalty(h, x)``: Omega(h) = ||J_f(x)||_F^2 = sum_{j,i} (dh_j/dx_i)^2, averaged
  over the batch, computed with pydl's higher-order autograd (one ``create_graph=True`` backward
  per code unit, so the penalty itself can be differentiated by ``loss.backward()``).
* ``sigmoid_contractive_penalty(h, weight)``: the same for a one-layer sigmoid encoder
  h = sigmoid(W x + b) in closed form: ||diag(h (1 - h)) W||_F^2 = sum_j (h_j (1 - h_j))^2
  sum_i W_ji^2 (Rifai et al., 2011); one pass, no double backward.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional

import numpy as np

import pydl
from pydl import nn
from pydl.autograd import grad as _grad
from pydl.tensor import Tensor

__all__ = ["l1_sparsity", "kl_sparsity", "contractive_penalty", "sigmoid_contractive_penalty",
           "StraightThroughBinarize", "greedy_layerwise_pretrain", "fit_autoencoder"]


def _as_batch(code: Tensor, fn: str) -> Tensor:
    if not isinstance(code, Tensor):
        raise TypeError(f"{fn}: code must be a Tensor, got {type(code).__name__}")
    if code.ndim < 1:
        raise ValueError(f"{fn}: code must have a batch dimension, got shape {tuple(code.shape)}")
    return code.reshape(code.shape[0], int(np.prod(code.shape[1:])))


def l1_sparsity(code: Tensor) -> Tensor:
    """mean over the batch of sum_j |h_j| for a code of shape (N, *): the L1 sparsity penalty
    (a Laplace prior on the code). A zero-size batch gives 0."""
    h = _as_batch(code, "l1_sparsity")
    if h.shape[0] == 0:
        return h.sum()
    return h.abs().sum() / h.shape[0]


def kl_sparsity(code: Tensor, rho: float = 0.05, eps: float = 1e-6) -> Tensor:
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) with rho_hat_j = mean_n h_nj, for a code
    of shape (N, *) with values in [0, 1] (sigmoid units):
    rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)).

    Zero exactly when every unit's mean activation is ``rho``. rho_hat is clamped to
    [eps, 1 - eps] so that a unit that is always off (or on) gives a large finite penalty
    rather than inf (the clamp has zero gradient there, as torch.clamp's)."""
    if not isinstance(rho, (int, float)) or isinstance(rho, bool) or not 0.0 < rho < 1.0:
        raise ValueError(f"kl_sparsity: the target rate rho must lie in (0, 1), got {rho!r}")
    h = _as_batch(code, "kl_sparsity")
    if h.shape[0] == 0:
        raise ValueError("kl_sparsity: the mean activation of an empty batch is undefined "
                         f"(code shape {tuple(code.shape)})")
    lo, hi = float(h.detach().min()), float(h.detach().max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"kl_sparsity: code values must lie in [0, 1] (use a sigmoid code "
                         f"layer), got values in [{lo:.4g}, {hi:.4g}]")
    rho_hat = h.mean(0).clamp(eps, 1.0 - eps)
    return (rho * (math.log(rho) - rho_hat.log())
            + (1.0 - rho) * (math.log(1.0 - rho) - (1.0 - rho_hat).log())).sum()


def contractive_penalty(code: Tensor, input: Tensor, create_graph: bool = True) -> Tensor:
    """mean over the batch of ||dh/dx||_F^2 for ``code = f(input)``, shapes (N, *) and (N, *).

    ``input`` must require grad and ``code`` must have been computed from it; each sample's
    code must depend on its own input only (true of Linear/conv encoders, not of BatchNorm in
    training mode), so that the gradient of sum_n h_nj with respect to the input holds row j
    of every sample's Jacobian. That takes one backward per code unit, each with
    ``create_graph`` (default True) so that the penalty can be differentiated again with
    respect to the encoder's parameters."""
    h = _as_batch(code, "contractive_penalty")
    if not isinstance(input, Tensor) or not input.requires_grad:
        raise ValueError("contractive_penalty: input must be a Tensor that requires grad, and "
                         "the code must be computed from it (x.requires_grad_() before encoding)")
    if not code.requires_grad:
        raise ValueError("contractive_penalty: the code does not require grad (computed under "
                         "pydl.no_grad()?); the penalty differentiates it with respect to input")
    if input.shape[:1] != code.shape[:1]:
        raise ValueError(f"contractive_penalty: code {tuple(code.shape)} and input "
                         f"{tuple(input.shape)} must share the batch size")
    n, k = h.shape
    if n == 0:
        return h.sum()
    total = None
    for j in range(k):
        (g,) = _grad(h[:, j].sum(), input, retain_graph=True, create_graph=create_graph,
                     allow_unused=True)
        if g is None:  # this unit does not depend on the input: a zero row of J
            continue
        term = (g * g).sum()
        total = term if total is None else total + term
    if total is None:
        return h.sum() * 0.0
    return total / n


def sigmoid_contractive_penalty(code: Tensor, weight: Tensor) -> Tensor:
    """Closed form of ``contractive_penalty`` for h = sigmoid(x W^T + b): mean over the batch
    of ||diag(h (1 - h)) W||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.
    ``code``: (N, k) sigmoid outputs; ``weight``: (k, d), the Linear layer's weight."""
    h = _as_batch(code, "sigmoid_contractive_penalty")
    if not isinstance(weight, Tensor) or weight.ndim != 2 or weight.shape[0] != h.shape[1]:
        raise ValueError(f"sigmoid_contractive_penalty: weight must be (k, d) with k = "
                         f"{h.shape[1]} code units, got "
                         f"{tuple(weight.shape) if isinstance(weight, Tensor) else weight!r}")
    if h.shape[0] == 0:
        return h.sum()
    slope = h * (1.0 - h)
    return ((slope * slope) * (weight * weight).sum(1)).sum() / h.shape[0]


class StraightThroughBinarize(nn.Module):
    """y = 1[x > threshold] in the forward pass, dy/dx = 1 in the backward pass (the
    straight-through estimator, Bengio et al., 2013): put it after a sigmoid code layer to
    train an autoencoder whose decoder only ever sees binary codes. In evaluation mode it
    binarises too (the codes a hash table stores)."""

    def __init__(self, threshold: float = 0.5):
        super().__init__()
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        hard = (x.detach() > self.threshold).to(x.dtype)
        return x + (hard - x.detach())

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    perm = rng.permutation(n)
    for i in range(0, n, batch_size):
        yield pydl.from_numpy(perm[i:i + batch_size])


def _as_tensor(data) -> Tensor:
    return data if isinstance(data, Tensor) else pydl.from_numpy(np.ascontiguousarray(data))


def fit_autoencoder(model: nn.Module, data, epochs: int = 10, lr: float = 1e-3,
                    batch_size: int = 64, seed: int = 0, **penalties) -> List[float]:
    """Train an autoencoder to reconstruct ``data`` (an (N, *) Tensor or array): Adam with
    learning rate ``lr`` annealed to 0 over ``epochs`` (cosine), minibatches of ``batch_size``
    drawn without replacement (order from ``seed``). The loss is ``model.loss(x, **penalties)``
    for a ``pydl.models.Autoencoder`` (``l1=``, ``sparsity=``, ``rho=``, ``contractive=``,
    ``criterion=``) and the MSE between ``model(x)`` and ``x`` otherwise (penalties must then
    be empty). Leaves ``model`` in evaluation mode; returns the mean training loss per epoch."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit_autoencoder: epochs must be a positive int, got {epochs!r}")
    has_loss = callable(getattr(model, "loss", None))
    if penalties and not has_loss:
        raise ValueError(f"fit_autoencoder: {type(model).__name__} has no loss() method to take "
                         f"the penalties {sorted(penalties)}")
    x = _as_tensor(data)
    rng = np.random.default_rng(seed)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    schedule = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    history = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for idx in _batches(x.shape[0], batch_size, rng):
            batch = x[idx]
            if has_loss:
                loss = model.loss(batch, **penalties).total
            else:
                loss = nn.functional.mse_loss(model(batch), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * batch.shape[0]
            count += batch.shape[0]
        schedule.step()
        history.append(total / max(count, 1))
    model.eval()
    return history


def greedy_layerwise_pretrain(network: nn.Sequential, data, epochs: int = 10,
                              lr: float = 1e-3, batch_size: int = 64,
                              corruption: Optional[Callable[[], nn.Module]] = None,
                              seed: int = 0) -> List[float]:
    """Greedy layer-wise pre-training (lecture notes 21.4): train each hidden ``Linear`` of
    ``network`` in turn as the encoder of a one-layer autoencoder on the codes of the layers
    below it, frozen; the weights are written into ``network`` in place, ready for supervised
    fine-tuning.

    ``network``: a Sequential such as ``pydl.models.MLP`` (Flatten, Linear, activation, ...,
    Linear); every Linear but the last (the classifier, left as it is) is pre-trained, each
    with the activation module that follows it in ``network``. The decoder of each stage is a
    fresh ``Linear(out, in)`` without activation, trained with the MSE against the stage's clean
    input; ``corruption`` (a factory such as ``lambda: nn.MaskingNoise(0.25)``) corrupts that
    input first: stacked denoising autoencoders. ``data``: an (N, *) Tensor or array of inputs.
    Adam with ``lr``, ``epochs`` passes per layer. Returns each stage's final reconstruction MSE
    on ``data`` (evaluation mode)."""
    if not isinstance(network, nn.Sequential):
        raise TypeError(f"greedy_layerwise_pretrain: network must be an nn.Sequential (such "
                        f"as models.MLP), got {type(network).__name__}")
    layers = list(network)
    linear_at = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    if len(linear_at) < 2:
        raise ValueError("greedy_layerwise_pretrain: network needs a hidden Linear layer "
                         f"below its output layer, it has {len(linear_at)} Linear layer(s)")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"greedy_layerwise_pretrain: epochs must be a non-negative int, "
                         f"got {epochs!r}")
    x = _as_tensor(data)
    rng = np.random.default_rng(seed)
    losses = []
    start = 0  # layers[start:stop] are the next stage's encoder
    for at in linear_at[:-1]:
        stop = at + 1
        while stop < len(layers) and not isinstance(layers[stop], nn.Linear):
            stop += 1  # the activation (and dropout etc.) that follows this Linear
        with pydl.no_grad():  # the stage's input: the frozen layers below
            below = nn.Sequential(*layers[:start]) if start else None
            if below is not None:
                below.eval()
            inputs = below(x) if below is not None else x
            inputs = inputs.reshape(inputs.shape[0], -1).detach()
        encoder = nn.Sequential(*layers[start:stop])
        decoder = nn.Linear(layers[at].out_features, layers[at].in_features)
        noise = corruption() if corruption is not None else None
        params = list(encoder.parameters()) + list(decoder.parameters())
        opt = pydl.optim.Adam(params, lr=lr)
        encoder.train()
        for _ in range(epochs):
            for idx in _batches(inputs.shape[0], batch_size, rng):
                clean = inputs[idx]
                noisy = noise(clean) if noise is not None else clean
                loss = nn.functional.mse_loss(decoder(encoder(noisy)), clean)
                opt.zero_grad()
                loss.backward()
                opt.step()
        encoder.eval()
        with pydl.no_grad():
            losses.append(float(nn.functional.mse_loss(decoder(encoder(inputs)), inputs)))
        start = stop
    network.train()
    return losses

