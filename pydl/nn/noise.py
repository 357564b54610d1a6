"""Noise injection (lecture notes 11.5): Gaussian noise on inputs, hidden units or weights,
active only in training mode. Not part of torch.nn; pydl's own, in PyTorch's style.

* ``GaussianNoise(std)``: a layer adding std * N(0, 1) noise to its input while training; put
  it first for input noise or between layers for hidden-unit noise.
* ``add_weight_noise(module, name='weight', std=...)``: every training-mode forward of
  ``module`` uses ``weight + std * N(0, 1)`` (fresh noise per call) instead of ``weight``; the
  gradient reaches the clean parameter (d(w + eps)/dw = 1), so optimizers, ``state_dict`` and
  ``parameters()`` keep seeing the unperturbed Parameter. Evaluation mode uses the clean
  weight. ``remove_weight_noise`` undoes it.
* ``MaskingNoise(p)``: the masking corruption of denoising autoencoders (Vincent et al., 2008):
  each input element is set to 0 with probability ``p`` while training, the others kept as
  they are. Unlike ``Dropout`` the survivors are not rescaled by 1 / (1 - p): the corrupted
  input is meant to look like the data with pixels missing, not to keep its expectation.

How weight noise is applied: the module's ``forward`` is wrapped (an instance attribute) so
that, for the duration of one call, the named entry of ``module._parameters`` holds the noisy
tensor, and it is restored afterwards even when forward raises. Within that call,
``module.weight`` reads the noisy value. This is the effect of
``torch.nn.utils.parametrize.register_parametrization`` with a noise parametrisation, without
changing the parameter's name in the state_dict.
"""
from __future__ import annotations

import numpy as np

from pydl import random as _random
from pydl.device import to_device_array
from pydl.nn.module import Module
from pydl.ops.activation import gaussian_noise
from pydl.ops.elementwise import mul
from pydl.tensor import Tensor

__all__ = ["GaussianNoise", "MaskingNoise", "masking_noise", "add_weight_noise",
           "remove_weight_noise"]


def _check_std(std) -> float:
    if not isinstance(std, (int, float)) or isinstance(std, bool) or std < 0:
        raise ValueError(f"noise std must be a non-negative number, got {std!r}")
    return float(std)


class GaussianNoise(Module):
    """y = x + std * eps, eps ~ N(0, I), in training mode; y = x in evaluation mode.

    A regulariser: the network must be robust to small perturbations of what this layer
    feeds forward (for inputs this is a form of data augmentation). Noise is drawn from pydl's
    global generator, so ``pydl.manual_seed`` reproduces it."""

    def __init__(self, std: float = 0.1):
        super().__init__()
        self.std = _check_std(std)

    def forward(self, input: Tensor) -> Tensor:
        return gaussian_noise(input, self.std, self.training)

    def extra_repr(self) -> str:
        return f"std={self.std}"


def masking_noise(input: Tensor, p: float = 0.25, training: bool = True) -> Tensor:
    """Masking corruption: each element of ``input`` is zeroed with probability ``p`` (one
    Bernoulli draw per element from pydl's global generator) while training; the identity in
    evaluation. The mask is a constant for autograd: dy/dx = mask. Not a PyTorch function."""
    if not isinstance(input, Tensor):
        raise TypeError(f"masking_noise: expected a Tensor, got {type(input).__name__}")
    p = _check_p(p, "masking_noise")
    if not training or p == 0.0:
        return input
    keep = _random.generator().random(input.shape) >= p
    keep = keep.astype(input._data.dtype)
    if not isinstance(input._data, np.ndarray):
        keep = to_device_array(keep, input.device)
    return mul(input, Tensor._wrap(keep))


def _check_p(p, name: str) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be a probability in [0, 1], got {p!r}")
    return float(p)


class MaskingNoise(Module):
    """y = x * m, m_i ~ Bernoulli(1 - p) independently, in training mode; y = x in evaluation.

    The corruption process of a denoising autoencoder with "masking noise": a fraction ``p``
    of the input's elements is set to zero and the network is trained to restore them (its
    loss compares the reconstruction with the clean input)."""

    def __init__(self, p: float = 0.25):
        super().__init__()
        self.p = _check_p(p, "MaskingNoise")

    def forward(self, input: Tensor) -> Tensor:
        return masking_noise(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _WeightNoiseForward:
    """The wrapped forward of a module with weight noise (see the module docstring).

    A class rather than a closure so that ``copy.deepcopy`` and pickling of the module copy it
    along with the module it refers to."""

    def __init__(self, module: Module, stds: dict):
        self.module = module
        self.stds = stds

    def __call__(self, *args, **kwargs):
        module = self.module
        forward = type(module).forward
        if not module.training:
            return forward(module, *args, **kwargs)
        params = module._parameters
        originals = {}
        try:
            for name, std in self.stds.items():
                originals[name] = params[name]
                params[name] = gaussian_noise(params[name], std)
            return forward(module, *args, **kwargs)
        finally:
            params.update(originals)


def add_weight_noise(module: Module, name: str = "weight", std: float = 0.01) -> Module:
    """Perturb parameter ``name`` of ``module`` with N(0, std^2) noise at every training-mode
    forward (noise injection on the weights). Returns ``module``. Calling it again for the
    same name changes the std."""
    if not isinstance(module, Module):
        raise TypeError(f"add_weight_noise: expected a pydl.nn.Module, got "
                        f"{type(module).__name__}")
    std = _check_std(std)
    if module._parameters.get(name) is None:
        names = [n for n, p in module._parameters.items() if p is not None]
        raise ValueError(f"add_weight_noise: {type(module).__name__} has no parameter {name!r} "
                         f"(parameters: {names})")
    wrapper = module.__dict__.get("forward")
    if not isinstance(wrapper, _WeightNoiseForward):
        wrapper = _WeightNoiseForward(module, {})
        object.__setattr__(module, "forward", wrapper)
    wrapper.stds[name] = std
    return module


def remove_weight_noise(module: Module, name: str = "weight") -> Module:
    """Undo ``add_weight_noise`` for parameter ``name``; returns ``module``."""
    wrapper = module.__dict__.get("forward")
    if not isinstance(wrapper, _WeightNoiseForward) or name not in wrapper.stds:
        raise ValueError(f"remove_weight_noise: {type(module).__name__} has no weight noise on "
                         f"{name!r}")
    del wrapper.stds[name]
    if not wrapper.stds:
        del module.__dict__["forward"]
    return module
