"""Transfer learning (course notes 18): start a network from another one's weights, keep the
transferred layers fixed, and train a new head.

    state = pydl.load("runs/lenet-digits-0to4/model.safetensors")
    report = load_matching(model, state)        # every key whose shape fits; the head is new
    freeze(model, ["features"])                 # requires_grad_(False) under that prefix
    opt = pydl.optim.Adam(trainable_parameters(model), lr=1e-3)

``pydl train --init-from runs/NAME --freeze features`` does exactly this.
"""
from __future__ import annotations

from typing import Dict, Iterable, Iterator, List, Mapping, NamedTuple, Sequence, Union

import numpy as np

from pydl.nn.module import Module, Parameter

__all__ = ["LoadReport", "load_matching", "freeze", "unfreeze", "trainable_parameters",
           "matching_names"]


class LoadReport(NamedTuple):
    """What ``load_matching`` did: keys ``loaded``; ``mismatched`` (key, checkpoint shape, model
    shape) left at the model's values; ``missing`` (in the model, not the checkpoint) and
    ``unexpected`` (in the checkpoint, not the model) keys, as ``load_state_dict(strict=False)``
    reports them."""
    loaded: List[str]
    mismatched: List[tuple]
    missing: List[str]
    unexpected: List[str]


def _shape(value) -> tuple:
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)


def load_matching(model: Module, state_dict: Mapping[str, object],
                  exclude: Sequence[str] = ()) -> LoadReport:
    """Load every entry of ``state_dict`` whose key is in ``model.state_dict()`` with the same
    shape (``load_state_dict(strict=False)`` on that part), skipping keys under an ``exclude``
    prefix. PyTorch's ``load_state_dict`` raises on a shape mismatch even with strict=False;
    here a mismatched key -- typically the classifier head of a model trained on other classes
    -- is left as the model initialised it and reported in ``mismatched``."""
    if not isinstance(model, Module):
        raise TypeError(f"load_matching: expected an nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_matching: expected a state dict (a mapping of name -> tensor), "
                        f"got {type(state_dict).__name__}")
    own = model.state_dict()
    excluded = set(matching_names(state_dict, exclude)) if exclude else set()
    usable: Dict[str, object] = {}
    mismatched = []
    for key, value in state_dict.items():
        if key not in own or key in excluded:
            continue
        if _shape(value) != tuple(own[key].shape):
            mismatched.append((key, _shape(value), tuple(own[key].shape)))
        else:
            usable[key] = value
    result = model.load_state_dict(usable, strict=False)
    unexpected = [k for k in state_dict if k not in own]
    return LoadReport(list(usable), mismatched, list(result.missing_keys), unexpected)


def matching_names(names: Iterable[str], prefixes: Union[str, Sequence[str]]) -> List[str]:
    """The dotted ``names`` equal to a prefix or under it (``features`` matches
    ``features.0.weight``, not ``features2.weight``)."""
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefixes = [p.rstrip(".") for p in prefixes if p]
    return [n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)]


def _set_requires_grad(model: Module, prefixes, flag: bool, what: str) -> List[str]:
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    params = dict(model.named_parameters())
    modules = {n for n, _ in model.named_modules()}
    unknown = [p for p in prefixes if not matching_names(params, [p])
               and p.rstrip(".") not in modules]
    if unknown:
        tops = sorted({n.split(".")[0] for n in params})
        raise ValueError(f"{what}: no parameter of {type(model).__name__} under "
                         f"{', '.join(map(repr, unknown))}; its top-level modules with "
                         f"parameters are {tops}")
    names = matching_names(params, prefixes)
    for n in names:
        params[n].requires_grad_(flag)
    return names


def freeze(model: Module, prefixes: Union[str, Sequence[str]]) -> List[str]:
    """``requires_grad_(False)`` on every parameter whose dotted name is under one of
    ``prefixes`` (e.g. ``"features"`` or ``["features", "classifier.1"]``); returns the names
    frozen. A prefix naming no parameter raises ``ValueError``. Build the optimizer afterwards
    from ``trainable_parameters(model)`` so that frozen weights are not even decayed."""
    return _set_requires_grad(model, prefixes, False, "freeze")


def unfreeze(model: Module, prefixes: Union[str, Sequence[str]]) -> List[str]:
    """The inverse of ``freeze`` (for gradual unfreezing); returns the names made trainable."""
    return _set_requires_grad(model, prefixes, True, "unfreeze")


def trainable_parameters(model: Module) -> Iterator[Parameter]:
    """The parameters that still require grad (each once)."""
    return (p for p in model.parameters() if p.requires_grad)


