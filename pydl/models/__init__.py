"""Reference models: ``MLP``, ``LeNet5``, ``SmallVGG``, ``Autoencoder``, ``ConvAutoencoder``;
the autoencoder regularisers and greedy pre-training of ``pydl.models.autoencoders``.

Each is an ordinary ``pydl.nn.Module`` built from pydl layers, so ``state_dict`` keys, ``repr``
and parameter counts read as in PyTorch (the same definitions in PyTorch give the same keys and
shapes).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union

import pydl
from pydl import nn
from pydl.tensor import Tensor

_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU",
                "leaky_relu": "LeakyReLU", "elu": "ELU", "silu": "SiLU", "softplus": "Softplus"}


def _activation(activation: Union[str, Callable[[], nn.Module]]) -> nn.Module:
    """A fresh activation module from a name (``"relu"``) or a module class/factory."""
    if isinstance(activation, str):
        key = activation.lower()
        if key not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{sorted(_ACTIVATIONS)} or pass a module class")
        return getattr(nn, _ACTIVATIONS[key])()
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory returned {type(module).__name__}, not a Module")
        return module
    raise TypeError(f"activation must be a name or a Module class, got {type(activation).__name__}")


def _hw(size: Union[int, Tuple[int, int]], name: str) -> Tuple[int, int]:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(not isinstance(s, int) or s < 1 for s in hw):
        raise ValueError(f"{name}: input_size must be a positive int or (H, W), got {size!r}")
    return hw


class MLP(nn.Sequential):
    """A multilayer perceptron: ``Linear(sizes[0], sizes[1])``, activation, dropout, ...,
    ``Linear(sizes[-2], sizes[-1])`` (no activation or dropout after the last layer, which gives
    the logits). Inputs of shape ``(N, *)`` are flattened to ``(N, sizes[0])`` first.

    Args:
        sizes: layer widths, input first: ``[64, 128, 10]`` is 64 -> 128 -> 10.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"``, ``"leaky_relu"``,
            ``"elu"``, ``"silu"``, ``"softplus"``, or a module class such as ``nn.ReLU``.
        dropout: probability of ``nn.Dropout`` after each hidden activation (0: none).
    """

    def __init__(self, sizes: Sequence[int], activation: Union[str, Callable] = "relu",
                 dropout: float = 0.0):
        sizes = list(sizes)
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"MLP: sizes must hold at least two positive ints, got {sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout must lie in [0, 1), got {dropout}")
        _activation(activation)  # check the name even when there is no hidden layer
        layers = [nn.Flatten()]
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(_activation(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) in its modern form: ReLU and max pooling.

    ``features``: Conv2d(in_channels, 6, 5, padding=2) - ReLU - MaxPool2d(2) -
    Conv2d(6, 16, 5, padding=p) - ReLU - MaxPool2d(2); ``classifier``: Flatten -
    Linear(16*h*w, 120) - ReLU - Linear(120, 84) - ReLU - Linear(84, num_classes).

    The first convolution pads by 2, as the classic network applied to 28x28 MNIST (it was
    designed for 32x32 inputs): 28 -> 28 -> 14 -> 10 -> 5, giving the classic 16*5*5 = 400
    features. ``input_size`` adapts the network to smaller images, which the classic layout
    would shrink to nothing: when the image is narrower than 16 pixels the first pooling is
    left out, and when the map entering the second convolution is narrower than 10 pixels
    that convolution pads by 2 (keeps its size). For the 8x8 digits: 8 -> 8 -> 8 -> 4, giving
    16*4*4 = 256 features.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 input_size: Union[int, Tuple[int, int]] = 28):
        super().__init__()
        h, w = _hw(input_size, "LeNet5")
        if min(h, w) < 2:
            raise ValueError(f"LeNet5: input_size {(h, w)} is too small (at least 2x2)")
        layers = [nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU()]
        if min(h, w) >= 16:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        pad2 = 0 if min(h, w) >= 10 else 2
        h, w = h + 2 * pad2 - 4, w + 2 * pad2 - 4
        layers += [nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), nn.MaxPool2d(2)]
        h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * h * w, 120), nn.ReLU(), nn.Linear(120, 84),
            nn.ReLU(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class SmallVGG(nn.Module):
    """A small VGG-style CNN (Simonyan & Zisserman, 2015): blocks of two 3x3 convolutions
    (padding 1, each followed by BatchNorm2d when ``batch_norm`` and ReLU) and a 2x2 max pool,
    one block per entry of ``widths``; then dropout - Linear(-, hidden) - ReLU - dropout -
    Linear(hidden, num_classes). Each block halves the image, so ``input_size`` must be
    divisible by ``2 ** len(widths)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10,
                 input_size: Union[int, Tuple[int, int]] = 32,
                 widths: Sequence[int] = (32, 64, 128),
                 hidden: int = 256, batch_norm: bool = True, dropout: float = 0.5):
        super().__init__()
        h, w = _hw(input_size, "SmallVGG")
        scale = 2 ** len(widths)
        if h % scale or w % scale:
            raise ValueError(f"SmallVGG: input_size {(h, w)} must be divisible by {scale} "
                             f"(2 ** len(widths), widths={tuple(widths)})")
        layers, c = [], in_channels
        for width in widths:
            for _ in range(2):
                layers.append(nn.Conv2d(c, width, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU())
                c = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * (h // scale) * (w // scale), hidden),
            nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class AutoencoderLoss(NamedTuple):
    """What ``Autoencoder.loss`` returns: ``total = reconstruction + penalty`` (a Tensor to
    call ``backward()`` on) and its two parts (Tensors, for reporting)."""
    total: Tensor
    reconstruction: Tensor
    penalty: Tensor


class Autoencoder(nn.Module):
    """A fully connected autoencoder: ``encoder = MLP(sizes)`` maps an input of ``sizes[0]``
    features to a code of ``sizes[-1]``, ``decoder = MLP(reversed(sizes))`` maps it back,
    followed by ``output_activation`` (``"sigmoid"`` for data in [0, 1], None for none).
    ``forward(x)`` returns the reconstruction in ``x``'s shape; train it with a loss between
    ``forward(x)`` and ``x`` (e.g. ``nn.MSELoss``), or with ``loss(x, ...)``, which adds the
    regularisers of lecture notes 21.

    A code smaller than the input makes it undercomplete, a larger one overcomplete (``kind``);
    an overcomplete one needs a regulariser not to learn the identity.

    Args:
        sizes: layer widths, input first, code last: ``[64, 32, 8]``.
        activation: hidden activation (as ``MLP``); ``output_activation``: after the decoder.
        code_activation: an activation after the encoder's last Linear (default None: a linear
            code). ``"sigmoid"`` gives codes in (0, 1), which ``kl_sparsity`` and binary codes
            need.
        code_noise: std of Gaussian noise (``nn.GaussianNoise``, training mode only) added
            before ``code_activation``: with a sigmoid, the decoder can only use what survives
            the noise, which drives the code units towards 0 and 1 (semantic hashing,
            Salakhutdinov & Hinton, 2009); ``binary_code`` thresholds them at 0.5.
        corruption: a module applied to the input before encoding in training mode, such as
            ``nn.GaussianNoise(0.3)`` or ``nn.MaskingNoise(0.25)``: a denoising autoencoder.
            ``forward`` and ``loss`` reconstruct from the corrupted input while ``loss``
            compares with the clean one. Evaluation mode leaves the input alone.
    """

    def __init__(self, sizes: Sequence[int], activation: Union[str, Callable] = "relu",
                 output_activation: Union[str, Callable, None] = "sigmoid",
                 code_activation: Union[str, Callable, None] = None,
                 code_noise: float = 0.0, corruption: Optional[nn.Module] = None):
        super().__init__()
        sizes = list(sizes)
        self.encoder = MLP(sizes, activation)
        if code_noise:
            self.encoder.append(nn.GaussianNoise(code_noise))
        if code_activation is not None:
            self.encoder.append(_activation(code_activation))
        decoder = MLP(sizes[::-1], activation)
        if output_activation is not None:
            decoder.append(_activation(output_activation))
        self.decoder = decoder
        if corruption is not None and not isinstance(corruption, nn.Module):
            raise TypeError(f"Autoencoder: corruption must be a Module such as "
                            f"nn.MaskingNoise(0.25), got {type(corruption).__name__}")
        self.corruption = corruption
        self.sizes = sizes

    @property
    def kind(self) -> str:
        """``"undercomplete"``, ``"complete"`` or ``"overcomplete"``: code size against input
        size."""
        code, inputs = self.sizes[-1], self.sizes[0]
        return "undercomplete" if code < inputs else "complete" if code == inputs else \
            "overcomplete"

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def binary_code(self, x) -> Tensor:
        """The code thresholded at 0.5 (a bool Tensor (N, code size)), computed without noise
        or corruption: for codes in (0, 1), the keys of a ``pydl.retrieval.HammingIndex``."""
        was_training = self.training
        self.eval()
        try:
            with pydl.no_grad():
                return self.encoder(x) > 0.5
        finally:
            self.train(was_training)

    def forward(self, x, return_code: bool = False):
        """The reconstruction of ``x`` (its shape); with ``return_code``, (reconstruction,
        code). In training mode the encoder sees ``corruption(x)``."""
        source = self.corruption(x) if self.corruption is not None else x
        code = self.encoder(source)
        out = self.decoder(code).reshape(x.shape)
        return (out, code) if return_code else out

    def loss(self, x, *, l1: float = 0.0, sparsity: float = 0.0, rho: float = 0.05,
             contractive: float = 0.0, criterion: Union[str, Callable] = "mse",
             contractive_method: str = "autograd") -> AutoencoderLoss:
        """L(x, r) + Omega(h) for a batch ``x`` (lecture notes 21): the reconstruction loss
        against the clean ``x`` plus ``l1 * l1_sparsity(h) + sparsity * kl_sparsity(h, rho)
        + contractive * contractive_penalty(h, x_encoded)`` (see pydl.models.autoencoders).

        ``criterion``: ``"mse"`` (mean squared error), ``"bce"`` (binary cross-entropy, for a
        sigmoid output and data in [0, 1]) or a callable (reconstruction, target) -> loss.
        The contractive term differentiates the code with respect to the (corrupted) input
        with ``create_graph=True``: one extra backward per code unit
        (``contractive_method="autograd"``, any encoder). ``contractive_method="sigmoid"``
        uses the closed form ||diag(h (1 - h)) W||_F^2 instead, one pass, for an encoder that
        is one Linear layer followed by a sigmoid code (``Autoencoder([d, k],
        code_activation="sigmoid")`` without code noise)."""
        for name, value in (("l1", l1), ("sparsity", sparsity), ("contractive", contractive)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Autoencoder.loss: {name} must be a non-negative weight, "
                                 f"got {value!r}")
        if isinstance(criterion, str):
            if criterion not in ("mse", "bce"):
                raise ValueError(f"Autoencoder.loss: criterion must be 'mse', 'bce' or a "
                                 f"callable, got {criterion!r}")
            criterion = (nn.functional.mse_loss if criterion == "mse"
                         else nn.functional.binary_cross_entropy)
        if contractive_method not in ("autograd", "sigmoid"):
            raise ValueError(f"Autoencoder.loss: contractive_method must be 'autograd' or "
                             f"'sigmoid', got {contractive_method!r}")
        closed_form = bool(contractive) and contractive_method == "sigmoid"
        if closed_form:
            kinds = [type(m).__name__ for m in self.encoder]
            if kinds != ["Flatten", "Linear", "Sigmoid"]:
                raise ValueError(f"Autoencoder.loss: the closed-form contractive penalty needs "
                                 f"an encoder Flatten - Linear - Sigmoid, this one is "
                                 f"{' - '.join(kinds)}; use contractive_method='autograd'")
        source = self.corruption(x) if self.corruption is not None else x
        if contractive and not closed_form and not source.requires_grad:
            source = source.detach().requires_grad_()
        code = self.encoder(source)
        reconstruction = criterion(self.decoder(code).reshape(x.shape), x)
        penalty = reconstruction * 0.0
        if l1:
            penalty = penalty + l1 * _ae.l1_sparsity(code)
        if sparsity:
            penalty = penalty + sparsity * _ae.kl_sparsity(code, rho)
        if closed_form:
            penalty = penalty + contractive * _ae.sigmoid_contractive_penalty(
                code, self.encoder[1].weight)
        elif contractive:
            penalty = penalty + contractive * _ae.contractive_penalty(code, source)
        return AutoencoderLoss(reconstruction + penalty, reconstruction, penalty)


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder for ``(N, C, H, W)`` images with H, W divisible by
    ``2 ** len(widths)``: the encoder is a stack of Conv2d(kernel 3, stride 2, padding 1) - ReLU
    halving the image per entry of ``widths``; the decoder mirrors it with
    ConvTranspose2d(kernel 4, stride 2, padding 1) layers that double it, ReLU between them and
    ``output_activation`` after the last (``"sigmoid"`` for images in [0, 1]).
    """

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (16, 32),
                 activation: Union[str, Callable] = "relu",
                 output_activation: Union[str, Callable, None] = "sigmoid"):
        super().__init__()
        widths = list(widths)
        if not widths:
            raise ValueError("ConvAutoencoder: widths must name at least one layer")
        enc, c = [], in_channels
        for width in widths:
            enc += [nn.Conv2d(c, width, 3, stride=2, padding=1), _activation(activation)]
            c = width
        dec = []
        for width in widths[-2::-1] + [in_channels]:
            dec += [nn.ConvTranspose2d(c, width, 4, stride=2, padding=1), _activation(activation)]
            c = width
        dec.pop()  # no hidden activation after the last layer
        if output_activation is not None:
            dec.append(_activation(output_activation))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.scale = 2 ** len(widths)

    def forward(self, x):
        if x.ndim != 4 or x.shape[-1] % self.scale or x.shape[-2] % self.scale:
            raise ValueError(f"ConvAutoencoder: expected (N, C, H, W) images with H and W "
                             f"divisible by {self.scale}, got shape {tuple(x.shape)}")
        return self.decoder(self.encoder(x))


# after the classes above: autoencoders.py does not import them, Autoencoder.loss uses it
from pydl.models import autoencoders as _ae  # noqa: E402
from pydl.models.autoencoders import (StraightThroughBinarize,  # noqa: E402
                                      contractive_penalty, fit_autoencoder,
                                      greedy_layerwise_pretrain,
                                      kl_sparsity, l1_sparsity, sigmoid_contractive_penalty)

__all__ = ["MLP", "LeNet5", "SmallVGG", "Autoencoder", "AutoencoderLoss", "ConvAutoencoder",
           "l1_sparsity", "kl_sparsity", "contractive_penalty", "sigmoid_contractive_penalty",
           "StraightThroughBinarize", "greedy_layerwise_pretrain", "fit_autoencoder"]

from pydl.models.vae import ELBO, VAE  # noqa: E402  (distributions and VAE, issue 15)
__all__ += ["VAE", "ELBO"]
