"""``DistributedDataParallel``: the same model on every rank, each rank on its part of the batch,
gradients averaged over ranks during backward (as ``torch.nn.parallel.DistributedDataParallel``).

Construction checks that every rank holds the same parameters (names, shapes, dtypes) and
broadcasts rank 0's parameters and buffers, so every replica starts equal. The parameters are
laid out in buckets of at most ``bucket_cap_mb`` (25 MB, torch's default), in reverse
registration order (roughly the order backward produces their gradients). A post-accumulate-grad
hook on every parameter marks it ready; when all of a bucket's parameters are ready, its
gradients are copied into one flat buffer, divided by the world size and all-reduced
asynchronously, while backward goes on computing earlier layers' gradients. Buckets start in
index order on every rank (so the collectives match up); when the last bucket has started, the
results are waited for and written back to ``.grad``. After backward, every rank holds the
gradient of the mean loss over the global batch, and the optimizer steps the same everywhere.

``no_sync()`` skips the all-reduce (gradients accumulate locally); the first backward outside it
averages the accumulated gradients. A parameter that gets no gradient leaves its bucket
unfinished: the next forward raises, naming it, unless ``find_unused_parameters=True``, which
walks the output's graph at each forward and marks unreached parameters ready up front (their
bucket slots are zeros; a parameter unused on every rank keeps its ``.grad``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, List, Optional

import numpy as np

from pydl.autograd import grad_mode
from pydl.autograd.function import Function
from pydl.nn.module import Module
from pydl.tensor import Tensor


class _Bucket:
    __slots__ = ("index", "params", "offsets", "buffer", "pending", "work", "dtype")

    def __init__(self, index: int, params: list, dtype):
        self.index, self.params, self.dtype = index, params, dtype
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p._data.size
        xp = _xp(params[0]._data)
        self.buffer = xp.zeros(n, dtype=dtype)
        self.pending = len(params)
        self.work = None


def _xp(a):
    if isinstance(a, np.ndarray):
        return np
    import cupy

    return cupy


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training over the default process group
    (``pydl.distributed.init_process_group`` first). Call it as the module; ``.module`` is the
    wrapped model (its ``state_dict`` keys gain the ``module.`` prefix, as torch)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: Optional[float] = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False):
        super().__init__()
        from pydl import distributed as dist

        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a pydl.nn.Module, got "
                            f"{type(module).__name__}")
        if not dist.is_initialized():
            raise ValueError("DistributedDataParallel: call pydl.distributed.init_process_group "
                             "first (Default process group has not been initialized)")
        if dim != 0:
            raise ValueError("DistributedDataParallel: the batch is split along dim 0 only")
        if gradient_as_bucket_view:
            raise ValueError("DistributedDataParallel: gradient_as_bucket_view=True is not "
                             "supported by pydl (gradients are copied into the buckets)")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if self.bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb}")
        self.world_size = dist.get_world_size(process_group)
        self.rank = dist.get_rank(process_group)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        object.__setattr__(self, "_named_params", named)
        self._check_same_model(module)
        self._sync_from_rank0(list(module.parameters()) + self._buffers_to_sync())
        object.__setattr__(self, "_buckets", self._make_buckets([p for _, p in named]))
        self._slot: Dict[int, tuple] = {}
        for b in self._buckets:
            for k, p in enumerate(b.params):
                self._slot[id(p)] = (b, k)
        self._next_bucket = 0
        self._ready: set = set()
        self._in_progress = False
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready)
                         for _, p in named]

    # -- construction ----------------------------------------------------------------------------
    def _buffers_to_sync(self) -> List[Tensor]:
        return [b for b in self.module.buffers() if b is not None]

    def _check_same_model(self, module) -> None:
        from pydl import distributed as dist

        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
        mine += [("buffer " + n, tuple(b.shape), str(b.dtype))
                 for n, b in module.named_buffers() if b is not None]
        every: list = [None] * self.world_size
        dist.all_gather_object(every, mine)
        ref = every[0]
        for r, theirs in enumerate(every):
            if theirs == ref:
                continue
            if len(theirs) != len(ref):
                raise RuntimeError(
                    f"DistributedDataParallel: DDP expects the same model across all ranks, but "
                    f"rank {r} has {len(theirs)} parameters and buffers while rank 0 has "
                    f"{len(ref)}")
            for a, b in zip(ref, theirs):
                if a != b:
                    raise RuntimeError(
                        f"DistributedDataParallel: DDP expects the same model across all ranks, "
                        f"but {b[0]!r} is {b[2]} of shape {b[1]} on rank {r} and "
                        f"{a[0]!r} is {a[2]} of shape {a[1]} on rank 0")

    def _sync_from_rank0(self, tensors: List[Tensor]) -> None:
        """Broadcast rank 0's values, coalesced: one flat buffer per dtype."""
        from pydl import distributed as dist

        groups: Dict[tuple, list] = {}
        for t in tensors:
            if t._data.size:
                groups.setdefault((str(t.dtype), type(t._data)), []).append(t)
        for ts in groups.values():
            xp = _xp(ts[0]._data)
            flat = Tensor._wrap(xp.concatenate([t._data.reshape(-1) for t in ts]))
            dist.broadcast(flat, src=0, group=self.process_group)
            off = 0
            for t in ts:
                n = t._data.size
                t._data[...] = flat._data[off:off + n].reshape(t._data.shape)
                t._vc[0] += 1
                off += n

    def _make_buckets(self, params: list) -> List[_Bucket]:
        cap = int(self.bucket_cap_mb * 1024 * 1024)
        buckets: List[_Bucket] = []
        open_: Dict[tuple, list] = {}   # (dtype, device kind) -> [params, bytes]
        order = []
        for p in reversed(params):
            key = (str(p.dtype), type(p._data))
            cur = open_.get(key)
            if cur is None:
                cur = open_[key] = [[], 0]
                order.append(cur)
            cur[0].append(p)
            cur[1] += p._data.nbytes
            if cur[1] >= cap:
                buckets.append(_Bucket(len(buckets), cur[0], p._data.dtype))
                del open_[key]
                order.remove(cur)
        for cur in order:
            if cur[0]:
                buckets.append(_Bucket(len(buckets), cur[0], cur[0][0]._data.dtype))
        return buckets

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers and self.world_size > 1 and self.module.training:
            bufs = self._buffers_to_sync()
            if bufs:
                with grad_mode.no_grad():
                    self._sync_from_rank0(bufs)
        out = self.module(*inputs, **kwargs)
        if grad_mode.is_grad_enabled() and self.require_backward_grad_sync:
            self._prepare_for_backward(out)
        return out

    def _check_previous_reduction(self) -> None:
        if not self._in_progress:
            return
        missing = [n for n, p in self._named_params
                   if id(p) not in self._ready]
        raise RuntimeError(
            "DistributedDataParallel: expected to have finished reduction in the prior "
            "iteration before starting a new one. This error indicates that the module has "
            "parameters that were not used in producing the loss: "
            f"{', '.join(missing) or '(none)'}. Pass find_unused_parameters=True to "
            "DistributedDataParallel, or make sure every forward output takes part in the loss.")

    def _prepare_for_backward(self, out) -> None:
        self._ready = set()
        self._next_bucket = 0
        for b in self._buckets:
            b.pending = len(b.params)
            b.work = None
        self._in_progress = True
        if self.find_unused_parameters:
            used = _reachable_leaves(out)
            self._locally_used = np.array([id(p) in used for _, p in self._named_params],
                                          dtype=np.uint8)
            for _, p in self._named_params:
                if id(p) not in used:
                    self._mark_ready(p, unused=True)

    @contextmanager
    def no_sync(self):
        """Inside: backward accumulates gradients locally, without all-reduce. The first
        backward after it averages everything accumulated."""
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    # -- backward --------------------------------------------------------------------------------
    def _grad_ready(self, p) -> None:
        if not self.require_backward_grad_sync or not self._in_progress:
            return
        self._mark_ready(p, unused=False)

    def _mark_ready(self, p, unused: bool) -> None:
        if id(p) in self._ready:
            return
        self._ready.add(id(p))
        b, k = self._slot[id(p)]
        n = p._data.size
        view = b.buffer[b.offsets[k]:b.offsets[k] + n]
        if unused or p.grad is None:
            view[...] = 0
        else:
            view[...] = p.grad._data.reshape(-1)
        b.pending -= 1
        # Buckets start in index order on every rank so that the collectives pair up.
        while self._next_bucket < len(self._buckets) and \
                self._buckets[self._next_bucket].pending == 0:
            self._launch(self._buckets[self._next_bucket])
            self._next_bucket += 1
        if self._next_bucket == len(self._buckets):
            self._finalize()
        else:
            for bb in self._buckets[:self._next_bucket]:
                bb.work.is_completed()  # lets MPI progress the reductions already started

    def _launch(self, b: _Bucket) -> None:
        from pydl import distributed as dist
        from pydl.distributed._core import _default_pg, _no_signature_checks

        if b.dtype.kind in "fc":
            b.buffer /= self.world_size  # before the sum, as torch: no overflow in half types
        t = Tensor._wrap(b.buffer)
        # The buckets are the same on every rank by construction (checked at __init__): skip
        # the per-call signature exchange.
        with _no_signature_checks(_default_pg()):
            b.work = dist.all_reduce(t, op=dist.ReduceOp.SUM if b.dtype.kind in "fc"
                                     else dist.ReduceOp.AVG, async_op=True)

    def _finalize(self) -> None:
        from pydl import distributed as dist

        for b in self._buckets:
            b.work.wait()
        self._in_progress = False
        globally_used = None
        if self.find_unused_parameters:
            used = Tensor._wrap(self._locally_used.copy())
            dist.all_reduce(used, op=dist.ReduceOp.MAX)
            globally_used = used._data
        for i, (_, p) in enumerate(self._named_params):
            if globally_used is not None and not globally_used[i]:
                continue  # unused on every rank: .grad stays as it was (None or accumulated)
            b, k = self._slot[id(p)]
            val = b.buffer[b.offsets[k]:b.offsets[k] + p._data.size].reshape(p._data.shape)
            if p.grad is None or p.grad.grad_fn is not None:
                p.grad = Tensor._wrap(val.copy())
            else:
                p.grad._data[...] = val
                p.grad._vc[0] += 1

    # -- module plumbing -------------------------------------------------------------------------
    def __getstate__(self):  # pragma: no cover - DDP is not pickled across ranks
        raise TypeError("DistributedDataParallel cannot be pickled; pickle .module instead")


def _reachable_leaves(out) -> set:
    """ids of the leaf tensors the graph of ``out`` (a tensor or nested tuple/list/dict of them)
    reaches: the parameters this forward used."""
    roots = []

    def collect(o):
        if isinstance(o, Tensor):
            if o.grad_fn is not None:
                roots.append(o.grad_fn)
            elif o.requires_grad:
                leaves.add(id(o))
        elif isinstance(o, (list, tuple)):
            for x in o:
                collect(x)
        elif isinstance(o, dict):
            for x in o.values():
                collect(x)

    leaves: set = set()
    collect(out)
    seen = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for p in node.parents:
            if p is None:
                continue
            if isinstance(p[0], Function):
                stack.append(p[0])
            else:
                leaves.add(id(p[0]))
    return leaves
