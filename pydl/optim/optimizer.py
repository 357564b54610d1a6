"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and ``state_dict``, as
``torch.optim.Optimizer``.

Subclasses implement ``_step_group(group, batch)``: ``batch`` holds one group's parameters that
have a gradient and share a dtype, as contiguous arrays, and the subclass makes one fused C++
call (``pydl._C.*_step``) that updates all of them. Parameters whose ``grad`` is None are skipped
and their state is left untouched, as in PyTorch.
"""
from __future__ import annotations

import copy
import functools
import itertools
import operator
import warnings
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from pydl._cuda_kernels import device_kernels
from pydl.autograd import grad_mode
from pydl.tensor import Tensor


class _RequiredParameter:
    """Marks a hyperparameter without a default (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _byte_bounds(a: np.ndarray):
    try:
        from numpy.lib.array_utils import byte_bounds  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        byte_bounds = np.byte_bounds
    return byte_bounds(a)


def _first_shared_storage(arrays: List[np.ndarray]):
    """Indices (i, j) of two arrays that share memory, or None. Byte ranges sorted by start
    find the candidates (O(n log n)); np.shares_memory settles the few whose ranges overlap
    (interleaved strided views of one buffer overlap in range but not in memory)."""
    spans = sorted((*_byte_bounds(a), i) for i, a in enumerate(arrays) if a.size)
    active: List[tuple] = []
    for lo, hi, i in spans:
        active = [s for s in active if s[1] > lo]
        for _, _, j in active:
            if np.shares_memory(arrays[i], arrays[j]):
                return (min(i, j), max(i, j))
        active.append((lo, hi, i))
    return None


class _Batch:
    """One fused call's worth: the parameters of a group that have a gradient and one dtype.

    ``params[i]`` is the Tensor, ``arrays[i]`` its C-contiguous writable data (the tensor's own
    array, or a copy written back by ``finish``), ``grads[i]`` its contiguous gradient array.
    """

    def __init__(self):
        self.params: List[Tensor] = []
        self.arrays: List[np.ndarray] = []
        self.grads: List[np.ndarray] = []
        self._copies: List[int] = []
        self.kernels = None  # CudaKernels for a batch of CUDA parameters (pydl._cuda_kernels)

    def add(self, p: Tensor, grad: np.ndarray) -> None:
        data = p._data
        if not isinstance(data, np.ndarray):  # a CuPy array: its flags lack writeable/aligned
            self._add_device(p, data, grad)
            return
        flags = data.flags
        if not (flags.c_contiguous and flags.writeable and flags.aligned):
            # The kernels update in place and need contiguous memory: work on a copy and write it
            # back into the parameter's own array afterwards, so views of it stay consistent.
            if not flags.writeable:
                raise ValueError(f"optimizer: a parameter of shape {p.shape} is read-only; the "
                                 "optimizer updates parameters in place")
            self._copies.append(len(self.params))
            data = np.array(data, order="C", copy=True)
        if grad.shape != data.shape:
            raise ValueError(f"optimizer: a parameter of shape {p.shape} has a gradient of shape "
                             f"{grad.shape}")
        if grad.dtype != data.dtype:
            raise TypeError(f"optimizer: a parameter of dtype {data.dtype} has a gradient of "
                            f"dtype {grad.dtype}")
        if not grad.flags.c_contiguous:
            grad = np.array(grad, order="C")
        self.params.append(p)
        self.arrays.append(data)
        self.grads.append(grad)

    def _add_device(self, p, data, grad) -> None:
        import cupy

        if not data.flags.c_contiguous:
            self._copies.append(len(self.params))
            data = cupy.ascontiguousarray(data)
        if grad.shape != data.shape or grad.dtype != data.dtype:
            raise ValueError(f"optimizer: a parameter of shape {p.shape} ({data.dtype}) has a "
                             f"gradient of shape {grad.shape} ({grad.dtype})")
        self.params.append(p)
        self.arrays.append(data)
        self.grads.append(cupy.ascontiguousarray(grad))

    def finish(self) -> None:
        for i in self._copies:
            self.params[i]._data[...] = self.arrays[i]
        for p in self.params:
            p._bump_version()


_data_of = operator.attrgetter("_data")
_grad_of = operator.attrgetter("grad")


class _StepPlan:
    """What ``Optimizer.step`` worked out for one group, reused while it still holds.

    Building a group's batch checks every parameter (device, dtype, layout, gradient shape) and
    every pair for shared storage; redone at each step that cost ~3 us per parameter tensor. A
    plan is kept for a group whose parameters with a gradient form one CPU batch that needed no
    copies, and is valid for a later step while the group lists the same Tensors, each still over
    the same array (``p.data = ...``, ``p.set_``-like swaps of ``p._data`` make a new array, so
    a new plan), and the same parameters have a gradient. Gradients are read afresh at every
    step (they are reallocated whenever ``zero_grad`` sets them to None); their layout, dtype and
    shape are left to the fused kernel's own checks, which raise before touching any array, and
    such a step is redone on the full path (which copies a non-contiguous gradient or raises the
    optimizer's own error)."""

    __slots__ = ("params", "datas", "present", "index", "arrays")

    def __init__(self, params, datas, present, index, arrays):
        self.params = params  # a copy of the group's list of Tensors
        self.datas = datas  # each one's array when the plan was made
        self.present = present  # [p.grad is not None for p in params]
        self.index = index  # positions of the batch's parameters in params; None: all of them
        self.arrays = arrays  # the batch's arrays (the parameters' own)

    def batch(self, params) -> Optional["_Batch"]:
        """The group's batch for this step, or None when the plan no longer holds."""
        mine = self.params
        if len(params) != len(mine) or not all(map(operator.is_, params, mine)):
            return None
        if not all(map(operator.is_, map(_data_of, params), self.datas)):
            return None
        grads = list(map(_grad_of, params))
        try:
            if self.index is None:
                if any(map(operator.is_, grads, itertools.repeat(None))):
                    return None
                gdata = list(map(_data_of, grads))
            else:
                if [g is not None for g in grads] != self.present:
                    return None
                gdata = [grads[i]._data for i in self.index]
        except AttributeError:  # a gradient that is not a Tensor: the full path handles it
            return None
        batch = _Batch()
        batch.params = mine if self.index is None else [mine[i] for i in self.index]
        batch.arrays = self.arrays
        batch.grads = gdata
        return batch


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts defining
            parameter groups (each with a ``'params'`` entry and per-group options).
        defaults: the default value of every option, used where a group does not set it.
    """

    def __init_subclass__(cls, **kwargs):
        """Every subclass's ``step`` marks the optimizer as stepped (as PyTorch wraps each
        optimizer's step), so an LR scheduler can tell "scheduler.step() before
        optimizer.step()" from a user-defined optimizer it has simply not seen before."""
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is None or getattr(step, "_marks_opt_called", False):
            return

        @functools.wraps(step)
        def marked_step(self, *args, **kw):
            self._opt_called = True
            return step(self, *args, **kw)

        marked_step._marks_opt_called = True
        cls.step = marked_step

    def __init__(self, params, defaults: Dict[str, Any]):
        self.defaults = defaults
        self.state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. a new layer when fine-tuning);
        options it does not set take the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        group = dict(param_group)
        names = []
        plain = []
        for item in params:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                names.append(item[0])
                plain.append(item[1])
            else:
                plain.append(item)
        if names and len(names) != len(plain):
            raise ValueError("all optimizer params should be with/without names. Some param "
                             "names are missing")
        if names:
            group["param_names"] = names
        group["params"] = plain
        for p in plain:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        if len({id(p) for p in plain}) != len(plain):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          UserWarning, stacklevel=3)
        seen = set()
        for g in self.param_groups:
            seen.update(id(p) for p in g["params"])
            if ("param_names" in g) != bool(names):
                raise ValueError("all optimizer param groups should be with/without names.")
        if any(id(p) in seen for p in plain):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters: ``grad = None`` (the default, which
        also lets ``step`` skip parameters that get no new gradient), or zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad = False
                    if g._data.flags.writeable:
                        g._data[...] = 0
                    else:
                        g._data = np.zeros_like(g._data)

    # -- stepping -----------------------------------------------------------------------------
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """Update every parameter that has a gradient: one fused kernel call per group (per
        dtype within a group). ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        self._opt_called = True  # lets an LR scheduler warn when it is stepped first
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        with grad_mode.no_grad():
            for group in self.param_groups:
                plan = self.__dict__.get("_step_plans", {}).get(id(group))
                batch = None if plan is None else plan.batch(group["params"])
                if batch is not None:
                    try:
                        self._step_group(group, batch)
                    except (ValueError, TypeError):
                        # The kernel refused a gradient (layout, dtype, shape) before touching
                        # anything: the full path copies it or raises the optimizer's error.
                        batch = None
                    else:
                        batch.finish()
                        continue
                for batch in self._batches(group):
                    self._step_group(group, batch)
                    batch.finish()
        return loss

    def _step_group(self, group: Dict[str, Any], batch: _Batch) -> None:
        # The one hook each optimizer defines (as torch.optim.Optimizer.step is abstract).
        raise NotImplementedError(f"{type(self).__name__} must define _step_group")

    def _batches(self, group: Dict[str, Any]) -> List[_Batch]:
        by_dtype: Dict[Any, _Batch] = {}
        name = type(self).__name__
        seen = set()
        for p in group["params"]:
            # A duplicate (warned about at construction) is updated once: twice in one call,
            # its two entries could be written by two threads at the same time.
            grad = p.grad
            if grad is None or id(p) in seen:
                continue
            seen.add(id(p))
            data = p._data
            if not isinstance(data, np.ndarray) and p.device.type != "cuda":
                raise RuntimeError(f"{name}: the fused optimizer kernels run on CPU "
                                   f"(NumPy) and CUDA parameters; got one on {p.device}")
            dtype = data.dtype
            kernels = device_kernels(data)  # None: pydl._C; else the CUDA kernels
            batch = by_dtype.get((dtype, id(kernels)))
            if batch is None:
                if dtype not in _KERNEL_DTYPES:
                    raise TypeError(f"{name}: parameters must be float32 or float64, got one of "
                                    f"dtype {dtype} and shape {p.shape}")
                batch = by_dtype[(dtype, id(kernels))] = _Batch()
                batch.kernels = kernels
            batch.add(p, grad._data if isinstance(grad, Tensor) else np.asarray(grad))
        batches = list(by_dtype.values())
        self._check_no_shared_storage(group, batches)
        self._keep_plan(group, batches)
        return batches

    def _keep_plan(self, group: Dict[str, Any], batches: List[_Batch]) -> None:
        """Caches a _StepPlan for the group when its batch qualifies (one CPU batch, no copies),
        and drops the group's old one otherwise."""
        plans = self.__dict__.setdefault("_step_plans", {})
        plans.pop(id(group), None)
        if len(batches) != 1 or batches[0].kernels is not None or batches[0]._copies:
            return
        params = list(group["params"])
        grads = [p.grad for p in params]
        present = [g is not None for g in grads]
        batch = batches[0]
        index = None
        if not (all(present) and len(batch.params) == len(params)):
            position = {id(p): i for i, p in reversed(list(enumerate(params)))}
            index = [position[id(p)] for p in batch.params]
        if any(not isinstance(g, Tensor) for g in grads if g is not None):
            return
        # The plan keeps the group's Tensors and arrays alive, so the ids compared later cannot
        # be reused by new objects while it is cached.
        plans[id(group)] = _StepPlan(params, [p._data for p in params], present, index,
                                     list(batch.arrays))

    def _check_no_shared_storage(self, group: Dict[str, Any], batches: List[_Batch]) -> None:
        """Refuse two parameters over the same memory (views of one buffer, or one array under
        two Tensors): the fused kernels would update them on two threads at once, and strided
        ones, updated through copies written back one after the other, would overwrite each
        other's update; either way updates are lost. (The same Tensor twice is updated once,
        above.) The check runs once per composition of a group's arrays and is cached: a step
        with the same arrays as the last one costs one tuple of ids."""
        arrays = [p._data for b in batches if b.kernels is None for p in b.params]
        key = tuple(id(a) for a in arrays)
        cache = self.__dict__.setdefault("_storage_checked", {})
        hit = cache.get(id(group))
        if hit is not None and hit[0] == key:
            return
        clash = _first_shared_storage(arrays)
        if clash is not None:
            i, j = clash
            raise ValueError(f"{type(self).__name__}: parameters of shapes "
                             f"{tuple(arrays[i].shape)} and {tuple(arrays[j].shape)} share memory "
                             "(two parameters over one storage); their in-place updates would "
                             "race and lose updates. Give each parameter its own storage")
        # The arrays stay referenced by the cache, so their ids cannot be reused while cached.
        cache[id(group)] = (key, arrays)

    def _zeros_state(self, p: Tensor, value: float = 0.0) -> Tensor:
        """A state buffer like ``p``: same shape and dtype, C-contiguous."""
        xp = np if isinstance(p._data, np.ndarray) else __import__("cupy")
        arr = xp.full(p.shape, value, dtype=p._data.dtype)
        return Tensor._wrap(arr)

    def _zeros_states(self, params: List[Tensor], value: float = 0.0) -> List[Tensor]:
        """State buffers like ``params`` (one each; same shape and dtype, C-contiguous), carved
        out of one host allocation when they are NumPy arrays of one dtype.

        Why one allocation: NumPy asks the kernel for transparent huge pages only for arrays of
        4 MiB or more, so twenty 2 MB moment buffers sit on 4 KiB pages, and a memory-bound
        step that streams them (Adam: m and v, 4 of its 7 streams) loses ~15% of its bandwidth
        to TLB misses (measured: a 10M-parameter Adam step over 20 tensors 8.96 ms with separate
        state arrays, 7.73 ms with state carved from one array; AMD EPYC Zen 3, 1 thread). Each
        buffer starts on a 64-byte boundary; each is still its own Tensor (state_dict, pickling
        and pydl.save store the view alone)."""
        if not params:
            return []
        dtype = params[0]._data.dtype
        if not all(isinstance(p._data, np.ndarray) and p._data.dtype == dtype for p in params):
            return [self._zeros_state(p, value) for p in params]
        align = max(1, 64 // dtype.itemsize)
        sizes = [int(p._data.size) for p in params]
        offsets, total = [], 0
        for n in sizes:
            offsets.append(total)
            total += -(-n // align) * align
        # 64 extra bytes let the first buffer start on a line boundary whatever the base.
        raw = np.full(total + align, value, dtype=dtype)
        start = (-(raw.ctypes.data // dtype.itemsize)) % align
        return [Tensor._wrap(raw[start + o:start + o + n].reshape(p.shape))
                for p, o, n in zip(params, offsets, sizes)]

    def _cuda_steps(self, batch: _Batch, rows: List[tuple], keys: List[Any],
                    launch: Callable[[Any, Any], None]) -> None:
        """Run a CUDA multi-tensor step over ``rows`` (per parameter: param, grad, states...):
        one launch per distinct ``keys`` value (e.g. the step count, which the kernels take as
        one scalar per launch), ``launch(table, key)``. Tables are cached per row set and reused
        while the same arrays come back (gradients accumulated in place, persistent state)."""
        cache = self.__dict__.setdefault("_cuda_tables", {})
        for j, key in enumerate(dict.fromkeys(keys)):
            subset = [r for r, k in zip(rows, keys) if k == key]
            ident = tuple(id(a) for r in subset for a in r)
            slot = (id(batch.kernels), ident[0], j)  # one cached table per partition of a batch
            hit = cache.get(slot)
            if hit is None or hit[0] != ident:
                # The table holds references to its arrays, so their ids stay unique while cached.
                hit = cache[slot] = (ident, batch.kernels.tensor_table(subset))
            launch(hit[1], key)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state as ``{'state': {index: {...}}, 'param_groups': [...]}``.

        Parameters appear as indices in order of the groups (``'params': [0, 1, ...]``); the
        per-parameter state holds Tensors (shared with the optimizer, as in PyTorch: copy them,
        or save them, to keep a snapshot) and numbers such as ``'step'``.
        """
        param_mappings: Dict[int, int] = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start_index):
                param_mappings.setdefault(id(p), i)
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {param_mappings[id(p)]: dict(s) for p, s in self.state.items()
                        if id(p) in param_mappings}
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a ``state_dict()``: the groups must have the same sizes. State tensors are
        copied (cast to their parameter's dtype), so the restored optimizer continues exactly as
        the saved one would have."""
        saved_groups = state_dict["param_groups"]
        groups = self.param_groups
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than this optimizer ({len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group ({i}) with "
                                 f"{len(sg['params'])} parameters but this optimizer's group "
                                 f"has {len(g['params'])}")
        id_map = {}
        for g, sg in zip(groups, saved_groups):
            for old_id, p in zip(sg["params"], g["params"]):
                id_map[old_id] = p
        new_state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key not in id_map:
                continue
            p = id_map[key]
            new_state[p] = {k: self._restore_value(p, k, v) for k, v in value.items()}
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            ng = copy.deepcopy({k: v for k, v in sg.items() if k != "params"})
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups
        self.__dict__.pop("_step_plans", None)  # plans of the replaced groups

    @staticmethod
    def _restore_value(p: Tensor, key: str, value):
        if key == "step":
            return float(value.item() if isinstance(value, (Tensor, np.ndarray)) else value)
        if isinstance(value, Tensor) or isinstance(value, np.ndarray):
            arr = value.numpy_view() if isinstance(value, Tensor) else value
            if arr.dtype.kind == "f":
                arr = arr.astype(p._data.dtype)
            return Tensor._wrap(np.array(arr, order="C", copy=True))
        return copy.deepcopy(value)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _check_hyper(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _as_float(value) -> float:
    """A hyperparameter as a Python float (a learning rate may be a 1-element Tensor)."""
    return float(value.item()) if isinstance(value, (Tensor, np.ndarray)) else float(value)
