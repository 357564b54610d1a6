"""``pydl.utils.summary(model, input_shape)``, a layer table with output shapes and parameter
counts (as the ``torchsummary`` / ``torchinfo`` packages print for PyTorch models)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pydl.autograd import grad_mode
from pydl.tensor import Tensor


@dataclass
class LayerInfo:
    name: str            # dotted path in the model, e.g. "features.0"
    type: str            # class name, e.g. "Conv2d"
    depth: int           # 1 for the model's children, 2 for theirs, ...
    output_shape: Optional[Tuple[int, ...]]  # None when the output is not a tensor
    num_params: int      # parameters owned by this module itself (not its children)
    trainable_params: int


@dataclass
class ModelSummary:
    """What ``summary`` found; ``str()`` gives the table."""

    model_name: str
    input_shape: Tuple[int, ...]
    layers: List[LayerInfo] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    param_bytes: int = 0

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __str__(self) -> str:
        def shape(s):
            return "-" if s is None else str([-1, *s[1:]]) if s else "[]"

        rows = [("  " * (info.depth - 1) + f"{info.type} ({info.name})", shape(info.output_shape),
                 f"{info.num_params:,}" if info.num_params else "-") for info in self.layers]
        head = ("Layer (type)", "Output Shape", "Param #")
        w0 = max([len(head[0])] + [len(r[0]) for r in rows])
        w1 = max([len(head[1])] + [len(r[1]) for r in rows])
        w2 = max([len(head[2])] + [len(r[2]) for r in rows])
        line = "=" * (w0 + w1 + w2 + 6)
        out = [f"{self.model_name} (input {list(self.input_shape)}, -1 = batch)", line,
               f"{head[0]:<{w0}}   {head[1]:<{w1}}   {head[2]:>{w2}}", line]
        out += [f"{a:<{w0}}   {b:<{w1}}   {c:>{w2}}" for a, b, c in rows]
        out += [line, f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Params size (MB): {self.param_bytes / 2**20:.2f}", line]
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"ModelSummary({self.model_name}, total_params={self.total_params:,}, "
                f"trainable_params={self.trainable_params:,})")


def summary(model, input_shape: Sequence[int], batch_size: int = 2, dtype=np.float32,
            device=None, print_fn=print) -> ModelSummary:
    """Run ``model`` once on zeros of shape ``(batch_size, *input_shape)`` and print, for every
    submodule in the order it ran, its output shape (batch shown as -1) and the number of
    parameters it owns; then the totals. Returns the ``ModelSummary`` (``print_fn=None`` prints
    nothing).

    The forward pass runs in eval mode (so BatchNorm and Dropout do not change state) under
    ``no_grad``; the model's mode is restored afterwards. A module that runs more than once
    (shared weights) is listed each time it runs and its parameters are counted once.
    """
    shape = tuple(int(s) for s in input_shape)
    if any(s < 0 for s in shape) or batch_size < 1:
        raise ValueError(f"summary: input_shape must hold non-negative sizes and batch_size must "
                         f"be >= 1, got {input_shape} and {batch_size}")
    result = ModelSummary(type(model).__name__, shape)
    names = {}
    for name, m in model.named_modules():
        if m is not model:
            names[id(m)] = name
    handles = []

    def hook(module, inputs, output):
        name = names[id(module)]
        out_shape = tuple(output.shape) if isinstance(output, Tensor) else None
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
            out_shape = tuple(output[0].shape)
        own = [p for p in module.parameters(recurse=False)]
        result.layers.append(LayerInfo(
            name=name, type=type(module).__name__, depth=name.count(".") + 1,
            output_shape=out_shape, num_params=sum(p.numel() for p in own),
            trainable_params=sum(p.numel() for p in own if p.requires_grad)))

    for m in model.modules():
        if m is not model:
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    x = Tensor(np.zeros((batch_size, *shape), dtype=dtype))
    if device is not None:
        x = x.to(device)
    try:
        model.eval()
        with grad_mode.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # Hooks fire after a module's forward, so containers come after their children: put each
    # module before the first of its descendants, keeping execution order otherwise.
    result.layers = _parents_first(result.layers)
    params = list(model.parameters())
    result.total_params = sum(p.numel() for p in params)
    result.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    result.param_bytes = sum(p.numel() * p.element_size() for p in params)
    if print_fn is not None:
        print_fn(str(result))
    return result


def _parents_first(layers: List[LayerInfo]) -> List[LayerInfo]:
    out: List[LayerInfo] = []
    for info in layers:
        # insert before the earliest already-listed descendant that has no ancestor listed yet
        pos = len(out)
        for i, other in enumerate(out):
            if other.name.startswith(info.name + ".") and other.depth > info.depth:
                pos = i
                break
        out.insert(pos, info)
    return out
