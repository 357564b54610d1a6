"""Hard parameter sharing (course notes 11.3): ``TiedLinear``, a layer that applies the
*transpose* of another ``Linear``'s weight -- the tied decoder of an autoencoder,
``x_hat = W^T h + c`` for the encoder's ``h = f(W x + b)``.

The two layers hold the same ``Parameter`` object, so (as in PyTorch when one Parameter is
assigned to two modules):

* ``parameters()`` / ``named_parameters()`` yield it once (they drop repeated objects), so an
  optimizer built from ``model.parameters()`` steps it once per ``step()``;
* its gradient is the sum of the gradients of both uses (the engine accumulates into the one
  leaf);
* ``state_dict()`` lists it under both names (``encoder.weight`` and ``decoder.weight``), as
  ``torch.nn.Module.state_dict`` does; the tensors are the same memory, ``pydl.save(sd,
  "x.pt")`` writes that memory once (one storage, as ``torch.save``), and ``load_state_dict``
  copies into the one Parameter, so the tie survives a round trip.
"""
from __future__ import annotations

import math

import numpy as np

from pydl.nn import init
from pydl.nn.module import Module, Parameter
from pydl.ops.matmul import linear as _linear

__all__ = ["TiedLinear", "shared_parameters"]


class TiedLinear(Module):
    """``y = x W_s + b``: a linear layer whose weight is ``source.weight`` used transposed.

    ``source`` is a ``Linear(in_features, out_features)`` (or any module with a 2-D ``weight``
    Parameter); the tied layer maps ``(*, source.out_features) -> (*, source.in_features)``.
    Only the bias (``source.in_features`` values, initialised as a ``Linear`` of that fan-in
    would be) is its own. ``self.weight`` *is* ``source.weight``: the same object.
    """

    def __init__(self, source: Module, bias: bool = True):
        super().__init__()
        weight = getattr(source, "weight", None)
        if not isinstance(weight, Parameter) or weight.ndim != 2:
            raise TypeError(f"TiedLinear: source must have a 2-D weight Parameter (a Linear), got "
                            f"{type(source).__name__} with weight "
                            f"{None if weight is None else tuple(weight.shape)}")
        self.weight = weight  # the same Parameter object: registered here too, as torch does
        self.in_features = int(weight.shape[0])
        self.out_features = int(weight.shape[1])
        if bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype=weight._data.dtype))
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)

    def forward(self, input):
        return _linear(input, self.weight.t(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, tied (weight used transposed)")


def shared_parameters(module: Module):
    """Groups of names under which ``module`` holds one and the same Parameter, e.g.
    ``[["encoder.weight", "decoder.weight"]]`` for a tied autoencoder (names in
    ``state_dict`` order; parameters held once are left out)."""
    by_id = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(name)
    return [names for names in by_id.values() if len(names) > 1]

