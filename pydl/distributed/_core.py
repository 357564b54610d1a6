"""The process group and the collectives (``torch.distributed``'s c10d API over MPI or NCCL).

Every collective works in place on contiguous memory; a non-contiguous tensor is staged through
a contiguous copy that is written back when the operation completes. Before the data moves, the
ranks exchange a small signature of the call (which collective, dtype, shape, root) over MPI, so a
call that differs across ranks raises the same clear ``RuntimeError`` on every rank instead of
hanging or corrupting memory. ``async_op=True`` returns a ``Work``; ``wait()`` completes it.
"""
from __future__ import annotations

import datetime
import zlib
from contextlib import contextmanager
from typing import List, Optional, Sequence

import numpy as np

from pydl.distributed import _launcher
from pydl.distributed._launcher import DistributedError, _Poller


class ReduceOp:
    """How ``all_reduce``/``reduce_scatter`` combine: ``ReduceOp.SUM`` etc. (as torch's)."""

    class RedOpType:
        def __init__(self, name: str):
            self.name = name

        def __repr__(self) -> str:
            return f"<RedOpType.{self.name}>"

    SUM = RedOpType("SUM")
    AVG = RedOpType("AVG")
    PRODUCT = RedOpType("PRODUCT")
    MIN = RedOpType("MIN")
    MAX = RedOpType("MAX")
    BAND = RedOpType("BAND")
    BOR = RedOpType("BOR")
    BXOR = RedOpType("BXOR")


_OPS = [ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.BAND,
        ReduceOp.BOR, ReduceOp.BXOR]
_COLLECTIVES = ["all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier",
                "all_gather_into_tensor", "reduce_scatter_tensor"]


def _op_index(op) -> int:
    for i, o in enumerate(_OPS):
        if op is o:
            return i
    raise ValueError(f"unknown reduce op {op!r}; use pydl.distributed.ReduceOp.SUM, AVG, "
                     "PRODUCT, MIN, MAX, BAND, BOR or BXOR")


class Work:
    """A collective in flight (``async_op=True``): ``wait()`` blocks until it is done (or raises
    ``DistributedError`` after the process group's timeout), ``is_completed()`` asks."""

    def __init__(self, poller: Optional[_Poller], finish=None, result=None):
        self._poller, self._finish, self._result = poller, finish, result
        self._done = poller is None
        self._exc: Optional[BaseException] = None
        if self._done and finish is not None:
            finish()
            self._finish = None

    def is_completed(self) -> bool:
        if not self._done and self._poller.test():
            self._complete()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed() and self._exc is None

    def exception(self) -> Optional[BaseException]:
        return self._exc

    def wait(self, timeout=None) -> bool:
        if self._exc is not None:
            raise self._exc
        if not self._done:
            if timeout is not None:
                secs = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) \
                    else float(timeout)
                self._poller.timeout = secs
                self._poller.deadline = min(self._poller.deadline,
                                            _now() + secs)
            try:
                self._poller.wait()
            except BaseException as e:
                self._exc = e
                raise
            self._complete()
        return True

    def result(self) -> list:
        self.wait()
        return list(self._result or [])

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()


def _now() -> float:
    import time

    return time.monotonic()


# -- the process group ------------------------------------------------------------------------

class ProcessGroup:
    """The default group: all ranks of the launcher's world, on one backend."""

    def __init__(self, world: "_launcher.World", backend, timeout: float):
        self.world, self.backend, self.timeout = world, backend, timeout
        self.check_signatures = True

    def rank(self) -> int:
        return self.world.rank

    def size(self) -> int:
        return self.world.size

    def name(self) -> str:
        return self.backend.name


_pg: Optional[ProcessGroup] = None
_BACKENDS = ("mpi", "nccl")


def is_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return True


def is_initialized() -> bool:
    return _pg is not None


def _default_pg() -> ProcessGroup:
    if _pg is None:
        raise ValueError("Default process group has not been initialized, please make sure to "
                         "call init_process_group.")
    return _pg


def _check_group(group) -> ProcessGroup:
    pg = _default_pg()
    if group is not None and group is not pg:
        raise ValueError("pydl.distributed has only the default process group (group=None)")
    return pg


def init_process_group(backend: Optional[str] = None, init_method: Optional[str] = None,
                       timeout: Optional[datetime.timedelta] = None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Join the job the MPI launcher started (``mpirun -n N python script.py``; a plain
    ``python script.py`` is a world of one). ``backend``: ``"mpi"`` for CPU tensors,
    ``"nccl"`` for CUDA tensors (one GPU per rank, by local rank); default ``"mpi"``.
    ``rank``/``world_size``, when given, must agree with the launcher's. ``timeout`` (default
    30 min, as torch) bounds every collective: past it, the collective raises instead of
    waiting forever."""
    global _pg
    if _pg is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend not in _BACKENDS:
        raise ValueError(f"init_process_group: backend must be one of {_BACKENDS} in pydl, got "
                         f"{backend!r}")
    if init_method not in (None, "env://", "mpi://") or store is not None:
        raise ValueError("init_process_group: pydl takes rank and world size from the MPI "
                         "launcher (mpirun); init_method and store are not used")
    if timeout is None:
        secs = 1800.0
    elif isinstance(timeout, datetime.timedelta):
        secs = timeout.total_seconds()
    else:
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got "
                        f"{type(timeout).__name__}")
    if secs <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout}")
    w = _launcher.world()
    if world_size not in (-1, None) and world_size != w.size:
        raise ValueError(f"init_process_group: world_size={world_size} but the launcher started "
                         f"{w.size} processes")
    if rank not in (-1, None) and rank != w.rank:
        raise ValueError(f"init_process_group: rank={rank} but the launcher made this process "
                         f"rank {w.rank}")
    if backend == "mpi":
        from pydl.distributed._mpi import MPIBackend

        be = MPIBackend(w)
    else:
        from pydl.distributed._nccl import NCCLBackend

        be = NCCLBackend(w, secs, device_id)
    _pg = ProcessGroup(w, be, secs)
    # Every rank must agree on the backend (one rank on nccl, another on mpi would deadlock).
    names = w.allgather_object(backend, timeout=secs, what="init_process_group")
    if len(set(names)) != 1:
        _pg = None
        raise RuntimeError(f"init_process_group: ranks chose different backends: {names}")


def destroy_process_group(group=None) -> None:
    """Leave the process group (collectives raise until ``init_process_group`` again)."""
    global _pg
    pg = _check_group(group)
    pg.backend.close()
    _pg = None


def get_rank(group=None) -> int:
    return _check_group(group).rank()


def get_world_size(group=None) -> int:
    return _check_group(group).size()


def get_backend(group=None) -> str:
    return _check_group(group).name()


def get_node_local_rank(fallback_rank: Optional[int] = None) -> int:
    """This rank's index among the ranks on its node."""
    return _launcher.world().local_rank


# -- argument handling ----------------------------------------------------------------------------

def _tensor_array(t, what: str):
    from pydl.tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a pydl.Tensor, got {type(t).__name__}")
    return t._data


def _bump(t) -> None:
    t._vc[0] += 1  # an in-place write: autograd's saved-tensor checks must see it


_MAX_DIMS = 6


def _signature(coll: str, arr, op_index: int = -1, root: int = -1, extra: int = 0) -> np.ndarray:
    """What every rank must agree on, as int64s: collective, op, root, dtype, ndim, dims."""
    sig = np.zeros(6 + _MAX_DIMS, dtype=np.int64)
    sig[0] = _COLLECTIVES.index(coll)
    sig[1] = op_index
    sig[2] = root
    if arr is not None:
        sig[3] = zlib.crc32(arr.dtype.str.encode())
        sig[4] = arr.ndim
        dims = list(arr.shape)
        sig[6:6 + min(len(dims), _MAX_DIMS)] = dims[:_MAX_DIMS]
        if len(dims) > _MAX_DIMS:
            sig[5] = zlib.crc32(np.asarray(dims[_MAX_DIMS:], dtype=np.int64).tobytes())
    if arr is not None and not isinstance(arr, np.ndarray):
        extra ^= 1 << 40   # a CUDA tensor on this rank, maybe a CPU one on another
    sig[5] ^= extra
    return sig


def _describe(sig, dtype_names) -> str:
    ndim = int(sig[4])
    dims = tuple(int(d) for d in sig[6:6 + min(ndim, _MAX_DIMS)])
    if ndim > _MAX_DIMS:
        dims = dims + ("...",)
    dt = dtype_names.get(int(sig[3]), "?")
    s = f"{_COLLECTIVES[int(sig[0])]} of {dt} {dims}"
    if int(sig[5]) & (1 << 40):
        s += " on cuda"
    if sig[1] >= 0:
        s += f" op={_OPS[int(sig[1])].name}"
    if sig[2] >= 0:
        s += f" root={int(sig[2])}"
    return s


def _agree(pg: ProcessGroup, sig: np.ndarray, what: str) -> None:
    """Exchange call signatures; raise on every rank if any rank's differs."""
    if not pg.check_signatures or pg.size() == 1:
        return
    table, req = _exchange(pg, sig)
    _Poller(pg.world, [req], what, pg.timeout).wait()
    _check_table(_signatures(table, sig), what)


def _exchange(pg: ProcessGroup, sig: np.ndarray, payload: Optional[np.ndarray] = None):
    """Start the all-gather of this call's signature, and ``payload`` (a small contiguous array)
    after it. Every call exchanges the same fixed size, so that calls which differ across ranks
    (another collective, a small tensor here and a large one there) still pair up and are
    caught by the comparison instead of breaking MPI."""
    w = pg.world
    packed = np.zeros(sig.nbytes + _SMALL_BYTES, dtype=np.uint8)
    packed[:sig.nbytes] = sig.view(np.uint8)
    if payload is not None and payload.size:
        packed[sig.nbytes:sig.nbytes + payload.nbytes] = payload.reshape(-1).view(np.uint8)
    table = np.empty((w.size, packed.size), dtype=np.uint8)
    return table, w.comm.Iallgather([packed, w.MPI.BYTE], [table, w.MPI.BYTE])


def _signatures(table: np.ndarray, sig: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(table[:, :sig.nbytes]).view(np.int64)


def _check_table(table: np.ndarray, what: str) -> None:
    """Raise (on every rank: they all hold the same table) unless all rows are equal."""
    if (table == table[0]).all():
        return
    names = {zlib.crc32(np.dtype(d).str.encode()): str(np.dtype(d)) for d in
             ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "bool", "complex64", "complex128")}
    lines = "; ".join(f"rank {r}: {_describe(table[r], names)}" for r in range(len(table)))
    raise RuntimeError(f"pydl.distributed.{what}: the ranks called it with different arguments "
                       f"(every rank must pass the same dtype and shape): {lines}")


def _stage(arr):
    """A contiguous array to communicate through, and whether it is a copy."""
    xp = _xp(arr)
    if arr.flags.c_contiguous:
        return arr, False
    return xp.ascontiguousarray(arr), True


def _xp(arr):
    if isinstance(arr, np.ndarray):
        return np
    import cupy

    return cupy


def _check_device(pg: ProcessGroup, arr, what: str) -> None:
    pg.backend.check_array(arr, what)


# -- collectives -----------------------------------------------------------------------------------

def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank reaches this point."""
    pg = _check_group(group)
    _agree(pg, _signature("barrier", None), "barrier")
    work = Work(pg.backend.barrier(pg.timeout))
    return work if async_op else work.wait() and None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` over all ranks with ``op``, in place on every rank."""
    pg = _check_group(group)
    arr = _tensor_array(tensor, "all_reduce")
    _check_device(pg, arr, "all_reduce")
    opi = _op_index(op)
    pg.backend.check_reduce(arr.dtype, op, "all_reduce", arr)
    # the size class is part of the signature: a rank cannot take the small path alone
    small = isinstance(arr, np.ndarray) and arr.nbytes <= _SMALL_BYTES
    sig = _signature("all_reduce", arr, opi, extra=int(small) << 41)
    if small and pg.check_signatures and pg.size() > 1:
        return _small_all_reduce(pg, tensor, arr, op, sig, async_op)
    _agree(pg, sig, "all_reduce")
    return _in_place(tensor, arr, async_op,
                     lambda buf: pg.backend.allreduce(buf, op, "all_reduce", pg.timeout))


# A checked all-reduce costs two collectives (signatures, then data). For small host tensors (a
# loss, metric sums, batch-norm statistics) that doubles the latency, so they travel in one
# fixed-size all-gather (signature and data together, padded to this size) and every rank
# reduces the gathered rows itself, in rank order: one collective, the same result everywhere.
_SMALL_BYTES = 1024


def _small_all_reduce(pg: ProcessGroup, tensor, arr: np.ndarray, op, sig: np.ndarray,
                      async_op: bool):
    w = pg.world
    head = sig.nbytes
    table, req = _exchange(pg, sig, np.ascontiguousarray(arr))

    def finish():
        _check_table(_signatures(table, sig), "all_reduce")
        if arr.size:
            rows = np.ascontiguousarray(table[:, head:head + arr.nbytes]).view(arr.dtype)
            arr[...] = _reduce_rows(rows.reshape((w.size,) + arr.shape), op)
        _bump(tensor)

    work = Work(_Poller(w, [req], "all_reduce", pg.timeout), finish)
    return work if async_op else work.wait() and None


def _reduce_rows(rows: np.ndarray, op) -> np.ndarray:
    """The reduction over axis 0 (ranks) that the MPI path computes (float16 in float32, bool
    logically, AVG as a sum then a division, integers rounded toward zero)."""
    with np.errstate(all="ignore"):  # MPI's reductions overflow silently (IEEE): so do these
        return _reduce_rows_quiet(rows, op)


def _reduce_rows_quiet(rows: np.ndarray, op) -> np.ndarray:
    from pydl.distributed._mpi import _average

    dtype = rows.dtype
    if dtype == np.bool_:
        if op in (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.BOR):
            return rows.any(axis=0)
        if op in (ReduceOp.MIN, ReduceOp.PRODUCT, ReduceOp.BAND):
            return rows.all(axis=0)
        return np.logical_xor.reduce(rows, axis=0)
    work = rows.astype(np.float32) if dtype == np.float16 else rows
    if op in (ReduceOp.SUM, ReduceOp.AVG):
        # pairwise in rank order, as a reduction tree would (np.sum on axis 0 of a C array adds
        # row by row)
        r = np.add.reduce(work, axis=0)
        if op is ReduceOp.AVG:
            r = _average(np.asarray(r), rows.shape[0])
    elif op is ReduceOp.PRODUCT:
        r = np.multiply.reduce(work, axis=0)
    elif op is ReduceOp.MAX:
        r = np.maximum.reduce(work, axis=0)
    elif op is ReduceOp.MIN:
        r = np.minimum.reduce(work, axis=0)
    elif op is ReduceOp.BAND:
        r = np.bitwise_and.reduce(work, axis=0)
    elif op is ReduceOp.BOR:
        r = np.bitwise_or.reduce(work, axis=0)
    else:
        r = np.bitwise_xor.reduce(work, axis=0)
    return np.asarray(r).astype(dtype, copy=False)


def broadcast(tensor, src: int = 0, group=None, async_op: bool = False, group_src=None):
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every rank."""
    pg = _check_group(group)
    if group_src is not None:
        src = group_src
    arr = _tensor_array(tensor, "broadcast")
    _check_device(pg, arr, "broadcast")
    _check_rank(pg, src, "broadcast", "src")
    _agree(pg, _signature("broadcast", arr, root=src), "broadcast")
    return _in_place(tensor, arr, async_op,
                     lambda buf: pg.backend.broadcast(buf, src, "broadcast", pg.timeout))


def all_gather(tensor_list: List, tensor, group=None, async_op: bool = False):
    """``tensor_list[r]`` receives rank r's ``tensor`` (one entry per rank, each of
    ``tensor``'s shape and dtype)."""
    pg = _check_group(group)
    arr = _tensor_array(tensor, "all_gather")
    _check_device(pg, arr, "all_gather")
    outs = _check_list(pg, tensor_list, arr, "all_gather", "tensor_list")
    _agree(pg, _signature("all_gather", arr), "all_gather")
    xp = _xp(arr)
    send = xp.ascontiguousarray(arr)
    recv = xp.empty((pg.size(),) + arr.shape, dtype=arr.dtype)

    def finish():
        for t, o, r in zip(tensor_list, outs, recv):
            o[...] = r
            _bump(t)

    if arr.size == 0:
        return _finish_now(finish, async_op)
    work = Work(pg.backend.allgather(send, recv, "all_gather", pg.timeout), finish)
    return work if async_op else work.wait() and None


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """``output_tensor`` (world_size * n elements: (world_size * d0, ...) or
    (world_size, d0, ...)) receives every rank's ``input_tensor`` in rank order."""
    pg = _check_group(group)
    arr = _tensor_array(input_tensor, "all_gather_into_tensor")
    out = _tensor_array(output_tensor, "all_gather_into_tensor")
    _check_device(pg, arr, "all_gather_into_tensor")
    n = pg.size()
    if out.dtype != arr.dtype or out.size != n * arr.size:
        raise ValueError(f"all_gather_into_tensor: output of {out.dtype} {tuple(out.shape)} "
                         f"cannot hold {n} inputs of {arr.dtype} {tuple(arr.shape)}")
    _agree(pg, _signature("all_gather_into_tensor", arr), "all_gather_into_tensor")
    send = _xp(arr).ascontiguousarray(arr)
    recv, staged = _stage(out)

    def finish():
        if staged:
            out[...] = recv
        _bump(output_tensor)

    if arr.size == 0:
        return _finish_now(finish, async_op)
    work = Work(pg.backend.allgather(send, recv.reshape((n,) + arr.shape), "all_gather",
                                     pg.timeout), finish)
    return work if async_op else work.wait() and None


def reduce_scatter(output, input_list: List, op=ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """Rank r's ``output`` receives the ``op`` over all ranks of their ``input_list[r]``."""
    pg = _check_group(group)
    out = _tensor_array(output, "reduce_scatter")
    _check_device(pg, out, "reduce_scatter")
    ins = _check_list(pg, input_list, out, "reduce_scatter", "input_list")
    opi = _op_index(op)
    pg.backend.check_reduce(out.dtype, op, "reduce_scatter", out)
    _agree(pg, _signature("reduce_scatter", out, opi), "reduce_scatter")
    xp = _xp(out)
    send = xp.stack([xp.asarray(a) for a in ins]) if ins else xp.empty((0,) + out.shape,
                                                                        dtype=out.dtype)
    recv = xp.empty(out.shape, dtype=out.dtype)

    def finish():
        out[...] = recv
        _bump(output)

    if out.size == 0:
        return _finish_now(finish, async_op)
    work = Work(pg.backend.reduce_scatter(send, recv, op, "reduce_scatter", pg.timeout), finish)
    return work if async_op else work.wait() and None


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """``output`` receives this rank's ``1/world_size`` slice (along dim 0) of the ``op`` of
    every rank's ``input``."""
    pg = _check_group(group)
    out = _tensor_array(output, "reduce_scatter_tensor")
    arr = _tensor_array(input, "reduce_scatter_tensor")
    _check_device(pg, out, "reduce_scatter_tensor")
    n = pg.size()
    if out.dtype != arr.dtype or arr.size != n * out.size:
        raise ValueError(f"reduce_scatter_tensor: input of {arr.dtype} {tuple(arr.shape)} must "
                         f"hold {n} outputs of {out.dtype} {tuple(out.shape)}")
    opi = _op_index(op)
    pg.backend.check_reduce(out.dtype, op, "reduce_scatter_tensor", out)
    _agree(pg, _signature("reduce_scatter_tensor", out, opi), "reduce_scatter_tensor")
    xp = _xp(out)
    send = xp.ascontiguousarray(arr).reshape((n,) + out.shape)
    recv = xp.empty(out.shape, dtype=out.dtype)

    def finish():
        out[...] = recv
        _bump(output)

    if out.size == 0:
        return _finish_now(finish, async_op)
    work = Work(pg.backend.reduce_scatter(send, recv, op, "reduce_scatter", pg.timeout), finish)
    return work if async_op else work.wait() and None


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace ``object_list``'s items on every rank with rank ``src``'s (pickled)."""
    pg = _check_group(group)
    _check_rank(pg, src, "broadcast_object_list", "src")
    got = pg.world.bcast_object(list(object_list), root=src, timeout=pg.timeout,
                                what="broadcast_object_list")
    if len(got) != len(object_list):
        raise RuntimeError(f"broadcast_object_list: rank {src} sent {len(got)} objects, this "
                           f"rank's list holds {len(object_list)}")
    object_list[:] = got


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[r]`` becomes rank r's ``obj`` (pickled)."""
    pg = _check_group(group)
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries, the "
                         f"world has {pg.size()} ranks")
    object_list[:] = pg.world.allgather_object(obj, timeout=pg.timeout, what="all_gather_object")


def _in_place(tensor, arr, async_op, start):
    """Run a collective that overwrites ``arr`` (``start(buf)`` returns its request) through a
    contiguous staging copy when ``arr`` is not contiguous; copy back and bump the tensor's
    version when it completes."""
    buf, staged = _stage(arr)

    def finish():
        if staged:
            arr[...] = buf
        _bump(tensor)

    if arr.size == 0:
        return _finish_now(finish, async_op)
    work = Work(start(buf), finish)
    return work if async_op else work.wait() and None


def _finish_now(finish, async_op):
    work = Work(None, finish)
    return work if async_op else None


def _check_rank(pg, r, what, name) -> None:
    if not isinstance(r, (int, np.integer)) or not 0 <= r < pg.size():
        raise ValueError(f"{what}: {name}={r!r} is not a rank of this world of {pg.size()}")


def _check_list(pg, tensors: Sequence, like, what: str, name: str) -> list:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != pg.size():
        n = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{what}: {name} must hold one tensor per rank ({pg.size()}), got {n}")
    arrs = []
    for k, t in enumerate(tensors):
        a = _tensor_array(t, what)
        if a.shape != like.shape or a.dtype != like.dtype:
            raise ValueError(f"{what}: {name}[{k}] is {a.dtype} {tuple(a.shape)}, expected "
                             f"{like.dtype} {tuple(like.shape)} (as the tensor argument)")
        arrs.append(a)
    return arrs


@contextmanager
def _no_signature_checks(pg: ProcessGroup):
    """For internal callers that guarantee agreement by construction (DDP's buckets)."""
    prev = pg.check_signatures
    pg.check_signatures = False
    try:
        yield
    finally:
        pg.check_signatures = prev


__all__ = ["DistributedError", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
           "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object_list",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "is_available", "is_initialized", "is_mpi_available",
           "is_nccl_available", "reduce_scatter", "reduce_scatter_tensor"]
