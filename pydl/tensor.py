"""``pydl.Tensor``: an ndarray plus the fields reverse-mode autograd needs.

* ``_data``: the array (NumPy on CPU, CuPy on CUDA). ``numpy()`` returns it without a copy.
  The public ``data`` is PyTorch's: a Tensor over the same memory, cut from the graph, whose
  in-place writes autograd does not see (``param.data.add_(...)``); assigning a Tensor to it
  swaps the memory a tensor holds.
* ``requires_grad``, ``grad``, ``grad_fn`` (the ``Function`` node that made it, None for leaves).
* ``_vc``: a one-element version counter, shared by a tensor and the views made from it, bumped
  by every in-place write so that backward can tell a saved tensor was overwritten.

Operators and methods forward to the ops in ``pydl/ops``; this file holds no math.
"""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np

from pydl import dtypes as _dtypes
import pydl.autograd as _autograd
from pydl.autograd import grad_mode
from pydl.device import device as _device
from pydl.device import device_of, to_device_array

_ndarray, _generic, _new = np.ndarray, np.generic, object.__new__


class Tensor:
    # _base: for a view, the tensor whose memory it shares (None otherwise); _view_fn remakes the
    # view from the base and _view_vc is the version the view's grad_fn was derived at
    # (pydl.autograd.views).
    __slots__ = ("_data", "requires_grad", "grad", "grad_fn", "_out_index", "_vc", "_hooks",
                 "_base", "_view_fn", "_view_vc", "__weakref__")

    # Make NumPy defer to Tensor's reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        """Wrap ``data`` (ndarray or anything array-like). Prefer ``pydl.tensor``."""
        if isinstance(data, Tensor):
            data = data._data
        if dtype is not None:
            dtype = _dtypes.as_dtype(dtype)
        if not isinstance(data, np.ndarray) and not _is_device_array(data):
            data = _to_array(data, dtype)
        elif dtype is not None and data.dtype != dtype:
            data = data.astype(dtype)
        self._data = data
        self.grad = None
        self.grad_fn = None
        self._out_index = 0
        self._vc = [0]
        self._hooks = None
        self._base = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data, grad_fn=None, out_index: int = 0, vc=None) -> "Tensor":
        """Fast constructor for op results (no checks beyond this one): NumPy hands back scalars
        (np.bool_, np.float32, ...) for 0-d results, and a scalar is not an ndarray, so the
        device checks would take it for device memory; it becomes a 0-d array here.
        A staticmethod: every op result comes through here, and a classmethod pays for binding
        on each call."""
        if type(data) is not _ndarray and isinstance(data, _generic):
            data = np.asarray(data)
        t = _new(Tensor)
        t._data = data
        t.grad = None
        t.grad_fn = grad_fn
        t._out_index = out_index
        t._vc = [0] if vc is None else vc
        t._hooks = None
        t._base = None
        t.requires_grad = grad_fn is not None
        return t

    # -- basic facts ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> _device:
        return device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def _version(self) -> int:
        return self._vc[0]

    def _bump_version(self) -> None:
        """Record an in-place write to this tensor's memory (kernels that update in place)."""
        self._vc[0] += 1

    def size(self, dim: Optional[int] = None):
        if dim is None:
            return self._data.shape
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: Optional[int] = None):
        s = tuple(x // self._data.itemsize for x in self._data.strides)
        return s if dim is None else s[_wrap_dim(dim, self._data.ndim)]

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy_view(), separator=", ", precision=4, threshold=200,
                               edgeitems=3, prefix="tensor(")
        extras = []
        if self._data.dtype not in (_dtypes.float32, _dtypes.int64, _dtypes.bool_) or \
                self._data.size == 0:
            extras.append(f"dtype=pydl.{self._data.dtype}")
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self._data.size == 0:
            extras.insert(0, f"size={self.shape}")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __format__(self, format_spec: str) -> str:
        # As torch: a 0-d tensor formats as its Python number (f"{loss:.4f}"); any other tensor
        # formats as its repr, and a format spec for it is a TypeError.
        if self._data.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of a tensor with {self._data.size} elements is ambiguous")
        return bool(self._data.reshape(-1)[0])

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy_view()
        return arr if dtype is None else arr.astype(dtype)

    # -- conversion -----------------------------------------------------------------------------
    def numpy_view(self) -> np.ndarray:
        """The data as a NumPy array (a device-to-host copy for CUDA tensors)."""
        if isinstance(self._data, np.ndarray):
            return self._data
        return self._data.get()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array, shared (no copy). CPU tensors only, as in PyTorch."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if isinstance(self._data, np.generic):
            self._data = np.asarray(self._data)  # a NumPy scalar that slipped in is host memory too
        if not isinstance(self._data, np.ndarray):
            raise TypeError(f"can't convert a {self.device} tensor to numpy. Use tensor.cpu() "
                            "first.")
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item(): a Tensor with {self._data.size} elements (shape "
                             f"{self.shape}) cannot be converted to a Python scalar")
        return self.numpy_view().reshape(-1)[0].item()

    def tolist(self):
        return self.numpy_view().tolist()

    @property
    def data(self) -> "Tensor":
        """This tensor's memory as a new leaf that does not require grad, as ``torch``'s
        ``.data``: unlike ``detach()`` it has its own version counter, so in-place writes
        through it (``p.data.mul_(0.9)``) are invisible to autograd's saved-tensor check."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, but got "
                            f"{type(value).__module__}.{type(value).__qualname__}")
        if self.requires_grad and value._data.dtype.kind not in "fc":
            raise RuntimeError(f"data set to a tensor of dtype {value._data.dtype} on a tensor "
                               "that requires gradients (only floating point can)")
        self._data = value._data

    def detach(self) -> "Tensor":
        """The same data (shared memory and version counter) cut from the graph."""
        return Tensor._wrap(self._data, vc=self._vc)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got {self._data.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use "
                               "detach() to cut a computed tensor from the graph")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return

        def _store(g):
            self.grad = g if self.grad is None else Tensor._wrap(self.grad._data + g._data)

        self.register_hook(_store)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(self._out_index, hook)
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after a backward pass has accumulated this leaf's ``.grad``
        (once per backward, after every gradient that backward sends it). Returns a handle with
        ``remove()``, as torch's."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        from pydl.autograd.engine import add_post_accumulate_hook

        return _HookHandle(add_post_accumulate_hook(self, hook), hook)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad
        (only into ``inputs`` when given).

        A scalar needs no ``gradient``; otherwise pass d(loss)/d(self), of self's shape.
        ``create_graph=True`` records the backward pass, so ``.grad`` can be differentiated.
        """
        _autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                           inputs=inputs)

    def to(self, *args, **kwargs) -> "Tensor":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``;
        differentiable; returns self when nothing changes."""
        dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, _device)):
                dev = a
            else:
                dtype = a
        out = self
        if dtype is not None and _dtypes.as_dtype(dtype) != self.dtype:
            out = _ops().elementwise.cast(out, _dtypes.as_dtype(dtype))
        if dev is not None and _device(dev) != out.device:
            out = _ops().elementwise.to_device(out, _device(dev))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def float(self) -> "Tensor":
        return self.to(_dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(_dtypes.float64)

    def long(self) -> "Tensor":
        return self.to(_dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(_dtypes.int32)

    def bool(self) -> "Tensor":
        return self.to(_dtypes.bool_)

    def half(self) -> "Tensor":
        return self.to(_dtypes.float16)

    def clone(self) -> "Tensor":
        return _ops().elementwise.clone(self)

    def contiguous(self) -> "Tensor":
        if self._data.flags.c_contiguous:
            return self
        return _ops().elementwise.clone(self)

    def new_tensor(self, data, dtype=None, requires_grad=False) -> "Tensor":
        from pydl.creation import tensor

        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad,
                      device=self.device)

    def new_zeros(self, *size, dtype=None) -> "Tensor":
        from pydl.creation import zeros

        return zeros(*size, dtype=dtype or self.dtype, device=self.device)

    def new_ones(self, *size, dtype=None) -> "Tensor":
        from pydl.creation import ones

        return ones(*size, dtype=dtype or self.dtype, device=self.device)

    def new_full(self, size, fill_value, dtype=None) -> "Tensor":
        from pydl.creation import full

        return full(size, fill_value, dtype=dtype or self.dtype, device=self.device)

    def new_empty(self, *size, dtype=None) -> "Tensor":
        from pydl.creation import empty

        return empty(*size, dtype=dtype or self.dtype, device=self.device)

    # -- in-place ops -----------------------------------------------------------------------------
    def _check_inplace(self) -> bool:
        """True when the in-place op must be recorded in the graph."""
        if not grad_mode._state.enabled:
            return False
        if self.requires_grad and self.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                               "operation (wrap it in pydl.no_grad() to update parameters)")
        if self._base is not None:
            _views().check_not_leaf_view(self)
        return True

    def _inplace(self, op, *args) -> "Tensor":
        """Apply ``op(self, *args)`` in place: the result is written into this tensor's memory
        (so its base and every view of it see the change) and the version counter is bumped, so
        nodes that saved this memory for backward raise instead of using the new values.

        When the graph is being recorded, the op runs on a copy standing in for the old value
        (its node may save it), and this tensor takes the op's node as its grad_fn; for a view,
        the base gets a CopySlices node (pydl.autograd.views).
        """
        involves_grad = self.requires_grad or any(
            isinstance(a, Tensor) and a.requires_grad for a in args)
        record = involves_grad and self._check_inplace()
        if record:
            if self._base is not None and self._view_vc != self._vc[0]:
                _views().refresh_view(self)
            before = Tensor._wrap(self._data.copy(), self.grad_fn, self._out_index)
            before.requires_grad = self.requires_grad
            result = op(before, *args)
        else:
            with grad_mode.no_grad():
                result = op(self, *args)
        if not self._data.flags.writeable:
            raise RuntimeError(f"in-place operation on a read-only tensor of shape {self.shape} "
                               "(an expand()ed view?); clone() it first")
        if not _broadcasts_to(result.shape, self.shape):
            raise RuntimeError(f"in-place result of shape {result.shape} cannot be written into "
                               f"a tensor of shape {self.shape}")
        if result.dtype != self.dtype and not _dtypes.can_cast_inplace(result.dtype,
                                                                        self.dtype):
            raise RuntimeError(f"result type {_dtypes.torch_name(result.dtype)} can't be cast to "
                               f"the desired output type {_dtypes.torch_name(self.dtype)}")
        xp = np if isinstance(self._data, np.ndarray) else _cupy()
        xp.copyto(self._data, result._data, casting="unsafe")
        self._vc[0] += 1
        if record:
            if result.dtype != self.dtype:
                result = result.to(self.dtype)
            if result.shape != self.shape:
                result = result.expand(self.shape)
            if self._base is not None:
                _views().rebase_after_write(self, result)
            else:
                self.grad_fn = result.grad_fn
                self._out_index = result._out_index
                self.requires_grad = result.requires_grad
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        e = _ops().elementwise
        return self._inplace(lambda s, o: e.add(s, o if alpha == 1 else e.mul(o, alpha)), other)

    def sub_(self, other, alpha=1) -> "Tensor":
        e = _ops().elementwise
        return self._inplace(lambda s, o: e.sub(s, o if alpha == 1 else e.mul(o, alpha)), other)

    def mul_(self, other) -> "Tensor":
        return self._inplace(_ops().elementwise.mul, other)

    def div_(self, other) -> "Tensor":
        return self._inplace(_ops().elementwise.div, other)

    def pow_(self, exponent) -> "Tensor":
        return self._inplace(_ops().elementwise.pow, exponent)

    def clamp_(self, min=None, max=None) -> "Tensor":  # noqa: A002
        return self._inplace(lambda s: _ops().elementwise.clamp(s, min, max))

    clip_ = clamp_

    def neg_(self) -> "Tensor":
        return self._inplace(_ops().elementwise.neg)

    def exp_(self) -> "Tensor":
        return self._inplace(_ops().elementwise.exp)

    def relu_(self) -> "Tensor":
        return self._inplace(_ops().elementwise.relu)

    def sqrt_(self) -> "Tensor":
        return self._inplace(_ops().elementwise.sqrt)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise RuntimeError(f"fill_ expects a 0-d value tensor, got shape {value.shape}")
            value = value.item()
        if self._check_inplace() and self.requires_grad:
            return self._inplace(lambda s: _ops().elementwise.full_like_const(s, value))
        if not self._data.flags.writeable:
            raise RuntimeError(f"in-place fill on a read-only tensor of shape {self.shape}")
        self._data.fill(value)
        self._vc[0] += 1
        return self

    def copy_(self, src) -> "Tensor":
        if not isinstance(src, Tensor):
            src = Tensor(src)
        if not _broadcasts_to(src.shape, self.shape):
            raise RuntimeError(f"copy_: source of shape {src.shape} cannot be broadcast to "
                               f"{self.shape}")
        src = src.to(self.device)
        return self._inplace(lambda s, o: _ops().elementwise.copy_from(s, o), src)

    def uniform_(self, a=0.0, b=1.0, generator=None) -> "Tensor":
        from pydl import random

        return self._fill_random(random.generator(generator).uniform(a, b, self.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None) -> "Tensor":
        from pydl import random

        return self._fill_random(random.generator(generator).normal(mean, std, self.shape))

    def bernoulli_(self, p=0.5, generator=None) -> "Tensor":
        from pydl import random

        return self._fill_random(random.generator(generator).random(self.shape) < p)

    def _fill_random(self, values: np.ndarray) -> "Tensor":
        if self.requires_grad and self.grad_fn is None and grad_mode._state.enabled:
            self._check_inplace()
        values = values.astype(self.dtype, copy=False)
        if isinstance(self._data, np.ndarray):
            self._data[...] = values
        else:
            self._data[...] = _cupy().asarray(values)
        self._vc[0] += 1
        return self

    def __setitem__(self, key, value) -> None:
        from pydl.ops import indexing

        if self.requires_grad and self.grad_fn is None and grad_mode._state.enabled:
            self._check_inplace()
        if isinstance(value, Tensor) and value.requires_grad or self.requires_grad:
            if grad_mode._state.enabled:
                self._inplace(lambda s, v: indexing.index_put(s, key, v),
                              value if isinstance(value, Tensor) else Tensor(value))
                return
        indexing.setitem_nograd(self, key, value)
        self._vc[0] += 1

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)


def _ops():
    ops = sys.modules.get("pydl.ops")  # an import statement per call costs microseconds
    if ops is None:
        import pydl.ops as ops
    return ops


def _cupy():
    import cupy

    return cupy


def _views():
    from pydl.autograd import views

    return views


def _is_device_array(x) -> bool:
    return type(x).__module__.startswith("cupy")


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _wrap_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _to_array(data, dtype=None) -> np.ndarray:
    """Python data to an ndarray with PyTorch's dtype rules (floats become the default dtype)."""
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flatten(data)):
        data = _nested_tensors_to_arrays(data)
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    kind = arr.dtype.kind
    if isinstance(data, np.generic):
        return arr  # a NumPy scalar keeps its dtype, as torch.tensor(np.float64(1)) does
    if kind == "f":
        if not isinstance(data, np.ndarray):
            return arr.astype(_dtypes.get_default_dtype(), copy=False)
        return arr
    if kind in "iu":
        if not isinstance(data, np.ndarray):
            return arr.astype(np.int64, copy=False)
        return arr
    if kind == "b":
        return arr
    raise TypeError(f"can't make a tensor from {type(data).__name__} holding mixed or non-numeric "
                    f"items (NumPy made dtype {arr.dtype} of it)")


def _flatten(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flatten(x)
        else:
            yield x


def _nested_tensors_to_arrays(data):
    if isinstance(data, Tensor):
        return data.numpy_view()
    if isinstance(data, (list, tuple)):
        return [_nested_tensors_to_arrays(x) for x in data]
    return data


# Operators and methods that forward to pydl.ops are attached in pydl/ops/__init__.py, next to
# the ops they call.
from pydl.autograd import function as _function  # noqa: E402

_function.Tensor = Tensor
_function._wrap = Tensor._wrap


class _HookHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
