"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``: one fused
C++ pass computes every gradient's norm, one more scales (or clamps) them all in place.

Course notes, 10.1: *norm clipping* rescales the whole gradient when its norm exceeds a
threshold, :math:`g \\leftarrow g \\cdot \\min(1, \\frac{v}{\\|g\\|})`; *value clipping* clamps each
entry to :math:`[-v, v]`.
"""
from __future__ import annotations

import math
from typing import Iterable, List, Optional, Union

import numpy as np

from pydl import _C
from pydl._cuda_kernels import device_kernels
from pydl.tensor import Tensor

_TensorOrTensors = Union[Tensor, Iterable[Tensor]]
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_list(tensors: _TensorOrTensors) -> List[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads_of(parameters: _TensorOrTensors) -> List[Tensor]:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _check_grad_arrays(grads: List[Tensor], what: str) -> None:
    for g in grads:
        if not isinstance(g._data, np.ndarray) and g.device.type != "cuda":
            raise RuntimeError(f"{what}: the fused kernels run on CPU (NumPy) and CUDA "
                               f"gradients; got one on {g.device}")
        if g._data.dtype not in _KERNEL_DTYPES:
            raise TypeError(f"{what}: gradients must be float32 or float64, got one of dtype "
                            f"{g._data.dtype} and shape {g.shape}")


def _by_dtype(tensors: List[Tensor]) -> List[List[Tensor]]:
    groups = {}
    for t in tensors:  # CPU and CUDA arrays never share a fused call
        groups.setdefault((t._data.dtype, isinstance(t._data, np.ndarray)), []).append(t)
    return list(groups.values())


def _writable_arrays(grads: List[Tensor]) -> List[np.ndarray]:
    """The gradients' arrays, made C-contiguous and writable in place where they are not (a
    gradient's array is owned by its Tensor, so swapping it for a copy changes nothing else)."""
    arrays = []
    for g in grads:
        a = g._data
        if not (a.flags.c_contiguous and a.flags.writeable and a.flags.aligned):
            a = g._data = np.array(a, order="C", copy=True)
        arrays.append(a)
    return arrays


def get_total_norm(tensors: _TensorOrTensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """The norm of all ``tensors`` together, as if concatenated into one vector (the norm of
    their norms), as a 0-d Tensor. ``norm_type`` may be ``inf``/``-inf`` (largest/smallest
    ``|x|``), 0, or any p > 0."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    _check_grad_arrays(tensors, "get_total_norm")
    per_tensor: List[float] = []
    for group in _by_dtype(tensors):
        k = device_kernels(group[0]._data)
        if k is not None:  # CUDA: one sum-of-squares launch (cuda/optim.cuh) for the group
            if norm_type != 2.0:
                raise RuntimeError(f"get_total_norm: norm_type={norm_type} has no CUDA kernel on "
                                   "device 'cuda' (only the 2-norm does)")
            xp = k._xp(group[0]._data)
            table = k.tensor_table([(xp.ascontiguousarray(t._data),) for t in group])
            # The group's 2-norm stands for its tensors' norms: the total is the norm of norms.
            per_tensor.append(math.sqrt(float(k.sum_squares(table))))
            continue
        arrays = [np.asarray(t._data, order="C") for t in group]
        per_tensor.extend(_C.tensor_norms(arrays, norm_type))
    norms = np.asarray(per_tensor, dtype=np.float64)
    if norm_type == math.inf:
        total = norms.max()
    elif norm_type == -math.inf:
        total = norms.min()
    elif norm_type == 0.0:
        total = float(np.count_nonzero(norms))
    else:
        total = np.sum(norms ** norm_type) ** (1.0 / norm_type)
    dtype = np.result_type(*[t._data.dtype for t in tensors])
    total_norm = Tensor._wrap(np.asarray(total, dtype=dtype))
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total_norm


def clip_grads_with_norm_(parameters: _TensorOrTensors, max_norm: float,
                          total_norm: Union[Tensor, float],
                          foreach: Optional[bool] = None) -> None:
    """Scale the gradients by ``min(1, max_norm / (total_norm + 1e-6))`` in place."""
    grads = _grads_of(parameters)
    if len(grads) == 0:
        return
    _check_grad_arrays(grads, "clip_grads_with_norm_")
    clip_coef = float(max_norm) / (float(total_norm) + 1e-6)
    # min(nan, 1.0) is nan (the comparison is false), so a NaN norm poisons the gradients as in
    # PyTorch instead of silently passing them through.
    clip_coef_clamped = min(clip_coef, 1.0)
    if clip_coef_clamped == 1.0:
        return  # x * 1.0 == x for every x, NaN included
    for group in _by_dtype(grads):
        k = device_kernels(group[0]._data)
        if k is not None:  # CUDA: one scaling launch over the group (cuda/optim.cuh)
            xp = k._xp(group[0]._data)
            for g in group:
                if not g._data.flags.c_contiguous:
                    g._data = xp.ascontiguousarray(g._data)
            k.scale_(k.tensor_table([(g._data,) for g in group]), clip_coef_clamped)
            for g in group:
                g._bump_version()
            continue
        _C.scale_(_writable_arrays(group), clip_coef_clamped)
        for g in group:
            g._bump_version()


def clip_grad_norm_(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """Rescale the gradients of ``parameters`` in place so that their total norm is at most
    ``max_norm``: ``g <- g * min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped (those with
            ``grad is None`` are ignored).
        max_norm: the largest total norm allowed.
        norm_type: p of the p-norm (``float('inf')`` for the largest ``|g|``).
        error_if_nonfinite: raise RuntimeError when the total norm is NaN or infinite.
        foreach: accepted for PyTorch compatibility; pydl always uses its fused kernels.

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor.
    """
    parameters = _as_list(parameters)  # a generator is read once: norm and scaling share it
    grads = _grads_of(parameters)
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_value_(parameters: _TensorOrTensors, clip_value: float,
                     foreach: Optional[bool] = None) -> None:
    """Clamp every gradient entry of ``parameters`` to ``[-clip_value, clip_value]`` in place
    (NaN entries stay NaN)."""
    clip_value = float(clip_value)
    grads = _grads_of(parameters)
    if len(grads) == 0:
        return
    _check_grad_arrays(grads, "clip_grad_value_")
    for group in _by_dtype(grads):
        k = device_kernels(group[0]._data)
        if k is not None:  # CUDA: no clamp kernel; the array module clamps on the device
            xp = k._xp(group[0]._data)
            for g in group:
                xp.clip(g._data, -clip_value, clip_value, out=g._data)
                g._bump_version()
            continue
        _C.clamp_(_writable_arrays(group), -clip_value, clip_value)
        for g in group:
            g._bump_version()
