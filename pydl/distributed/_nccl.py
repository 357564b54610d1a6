"""The ``nccl`` backend: CUDA (CuPy) arrays through NCCL, via ``cupy.cuda.nccl``.

The launcher part is MPI's (``_launcher.World``): rank and size come from the MPI world, each rank
takes the GPU ``local_rank % device_count`` (or ``device_id``), rank 0 makes the NCCL unique id
and broadcasts it over MPI, and every call's signature is checked over MPI before NCCL runs, so a
mismatched call raises instead of hanging the GPU. CPU tensors given to this backend go through
MPI (torch needs a second, gloo group for those; here the launcher's MPI is already there), so
DDP's bookkeeping and ``fit``'s metric sums work unchanged. Operations are enqueued on one stream owned by
the backend, ordered after the caller's current stream by an event; completion is an event
polled against the deadline, and on a timeout or a peer's failure the communicator is aborted
(``ncclCommAbort``) so that no kernel waits forever.
"""
from __future__ import annotations

import numpy as np

from pydl.distributed._core import ReduceOp
from pydl.distributed._launcher import _Poller

# ncclRedOp_t values (nccl.h); cupy.cuda.nccl exports SUM/PROD/MAX/MIN, AVG (NCCL >= 2.10) may be
# missing from older CuPy, so the numbers are spelled out.
_NCCL_SUM, _NCCL_PROD, _NCCL_MAX, _NCCL_MIN, _NCCL_AVG = 0, 1, 2, 3, 4


def nccl_dtype(nccl, dtype):
    """NCCL's datatype enum for a NumPy dtype (bool travels as uint8)."""
    table = {
        np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8,
        np.dtype(np.bool_): nccl.NCCL_UINT8,
        np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.int64): nccl.NCCL_INT64,
        np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
        np.dtype(np.float64): nccl.NCCL_FLOAT64,
    }
    d = table.get(np.dtype(dtype))
    if d is None:
        raise TypeError(f"the nccl backend cannot move {np.dtype(dtype)} tensors; NCCL has "
                        "int8, uint8, int32, int64, float16, float32, float64 (and bool as uint8)")
    return d


def nccl_op(op, dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        if op in (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.BOR):
            return _NCCL_MAX   # logical or of 0/1 bytes
        if op in (ReduceOp.MIN, ReduceOp.PRODUCT, ReduceOp.BAND):
            return _NCCL_MIN
        raise TypeError(f"{op.name} is not supported for bool tensors on nccl")
    table = {ReduceOp.SUM: _NCCL_SUM, ReduceOp.AVG: _NCCL_AVG, ReduceOp.PRODUCT: _NCCL_PROD,
             ReduceOp.MIN: _NCCL_MIN, ReduceOp.MAX: _NCCL_MAX}
    if op not in table:
        raise TypeError(f"ReduceOp.{op.name} is not supported by NCCL")
    return table[op]


class _EventDone:
    """An MPI-request-like view of a CUDA event (``Test()``), and the abort on failure."""

    def __init__(self, event):
        self.event = event

    def Test(self) -> bool:
        return self.event.done


class NCCLBackend:
    name = "nccl"

    def __init__(self, world, timeout: float, device_id=None, nccl_module=None):
        self.world = world
        self._cupy = self.stream = None
        if nccl_module is None:
            try:
                import cupy
                from cupy.cuda import nccl as nccl_module
            except Exception as e:
                raise RuntimeError("init_process_group(backend='nccl') needs CuPy with NCCL "
                                   "(pip install 'pydl-nn[cuda]') and a GPU per rank") from e
            ndev = cupy.cuda.runtime.getDeviceCount()
            if ndev == 0:
                raise RuntimeError("init_process_group(backend='nccl'): no CUDA device")
            dev = _device_index(device_id)
            if dev is None:
                dev = world.local_rank % ndev
            cupy.cuda.Device(dev).use()
            self.stream = cupy.cuda.Stream(non_blocking=True)
            self._cupy = cupy
        self.nccl = nccl_module
        from pydl.distributed._mpi import MPIBackend

        self._cpu = MPIBackend(world)
        uid = nccl_module.get_unique_id() if world.rank == 0 else None
        uid = world.bcast_object(uid, root=0, timeout=timeout, what="init_process_group (nccl)")
        self.comm = nccl_module.NcclCommunicator(world.size, uid, world.rank)

    # -- checks ----------------------------------------------------------------------------------
    def check_array(self, arr, what: str) -> None:
        if not isinstance(arr, np.ndarray):
            nccl_dtype(self.nccl, arr.dtype)

    def check_reduce(self, dtype, op, what: str, arr=None) -> None:
        if arr is not None and isinstance(arr, np.ndarray):
            self._cpu.check_reduce(dtype, op, what)
        else:
            nccl_op(op, dtype)

    # -- collectives -----------------------------------------------------------------------------
    def _launch(self, what, timeout, fn):
        cupy = self._cupy
        # The op must see what the caller's stream wrote: order our stream after it.
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(cupy.cuda.get_current_stream())
        self.stream.wait_event(ready)
        fn(self.stream.ptr)
        done = cupy.cuda.Event(disable_timing=True)
        done.record(self.stream)
        # ...and the caller's later kernels see the result.
        cupy.cuda.get_current_stream().wait_event(done)
        return _AbortingPoller(self, [_EventDone(done)], what, timeout)

    def allreduce(self, buf, op, what, timeout):
        if isinstance(buf, np.ndarray):
            return self._cpu.allreduce(buf, op, what, timeout)
        dt, nop = nccl_dtype(self.nccl, buf.dtype), nccl_op(op, buf.dtype)
        return self._launch(what, timeout, lambda s: self.comm.allReduce(
            buf.data.ptr, buf.data.ptr, buf.size, dt, nop, s))

    def broadcast(self, buf, src, what, timeout):
        if isinstance(buf, np.ndarray):
            return self._cpu.broadcast(buf, src, what, timeout)
        dt = nccl_dtype(self.nccl, buf.dtype)
        return self._launch(what, timeout, lambda s: self.comm.broadcast(
            buf.data.ptr, buf.data.ptr, buf.size, dt, src, s))

    def allgather(self, send, recv, what, timeout):
        if isinstance(send, np.ndarray):
            return self._cpu.allgather(send, recv, what, timeout)
        dt = nccl_dtype(self.nccl, send.dtype)
        return self._launch(what, timeout, lambda s: self.comm.allGather(
            send.data.ptr, recv.data.ptr, send.size, dt, s))

    def reduce_scatter(self, send, recv, op, what, timeout):
        if isinstance(send, np.ndarray):
            return self._cpu.reduce_scatter(send, recv, op, what, timeout)
        dt, nop = nccl_dtype(self.nccl, send.dtype), nccl_op(op, send.dtype)
        send = self._cupy.ascontiguousarray(send)
        return self._launch(what, timeout, lambda s: self.comm.reduceScatter(
            send.data.ptr, recv.data.ptr, recv.size, dt, nop, s))

    def barrier(self, timeout):
        # As torch's NCCL barrier: an all-reduce of one element.
        one = self._cupy.zeros(1, dtype=np.float32)
        return self.allreduce(one, ReduceOp.SUM, "barrier", timeout)

    def abort(self) -> None:
        try:
            self.comm.abort()
        except Exception:  # pragma: no cover - already torn down
            pass

    def close(self) -> None:
        self.stream.synchronize()
        self.comm.destroy()


class _AbortingPoller(_Poller):
    """On timeout or a peer's failure, abort the NCCL communicator before raising, so the GPU's
    kernels do not spin forever on a peer that is gone."""

    def __init__(self, backend, reqs, what, timeout):
        super().__init__(backend.world, reqs, what, timeout)
        self.backend = backend

    def wait(self) -> None:
        try:
            super().wait()
        except BaseException:
            self.backend.abort()
            raise


def _device_index(device_id):
    if device_id is None:
        return None
    if isinstance(device_id, int):
        return device_id
    idx = getattr(device_id, "index", None)
    return idx
