"""The ``mpi`` backend: CPU (NumPy) arrays through MPI's non-blocking collectives.

Data moves as raw bytes where nothing is combined (broadcast, all-gather) and as MPI's typed
reductions otherwise. float16 has no portable MPI reduction: it is reduced in float32 (one
rounding at the end, better than NCCL's half sums) and cast back. bool reduces logically (SUM and
MAX as OR, MIN and PRODUCT as AND, as torch). AVG is SUM then a division by the world size (for
integers, rounded toward zero as NCCL's ncclAvg).
"""
from __future__ import annotations

import numpy as np

from pydl.distributed._core import ReduceOp
from pydl.distributed._launcher import _Poller

_REDUCE_UPCAST = {np.dtype(np.float16): np.dtype(np.float32)}


class _Compound:
    """Requests whose completion runs a last step (cast back, divide for AVG)."""

    def __init__(self, reqs, then=None):
        self.reqs, self.then = reqs, then

    def Test(self) -> bool:
        for r in self.reqs:
            if not r.Test():
                return False
        if self.then is not None:
            f, self.then = self.then, None
            f()
        return True


class MPIBackend:
    name = "mpi"

    def __init__(self, world):
        self.world = world
        MPI = world.MPI
        self.MPI = MPI
        self._types = {}
        self._ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                     ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND,
                     ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}
        self._bool_ops = {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.BOR: MPI.LOR,
                          ReduceOp.MIN: MPI.LAND, ReduceOp.PRODUCT: MPI.LAND,
                          ReduceOp.BAND: MPI.LAND, ReduceOp.BXOR: MPI.LXOR}

    # -- checks ----------------------------------------------------------------------------------
    def check_array(self, arr, what: str) -> None:
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{what}: the mpi backend takes CPU tensors; this one is on "
                             "CUDA (use backend='nccl')")

    def check_reduce(self, dtype, op, what: str, arr=None) -> None:
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            if op is ReduceOp.AVG:
                raise TypeError(f"{what}: ReduceOp.AVG is not defined for bool tensors")
            return
        if dtype.kind == "c" and op in (ReduceOp.MIN, ReduceOp.MAX):
            raise TypeError(f"{what}: {op.name} is not defined for complex tensors ({dtype})")
        if dtype.kind in "fc" and op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR):
            raise TypeError(f"{what}: bitwise {op.name} needs an integer or bool tensor, got "
                            f"{dtype}")

    def _type(self, dtype):
        # The predefined types (mpi4py.util.dtlib gives duplicates, which MPICH will not reduce).
        MPI = self.MPI
        table = {"int8": MPI.INT8_T, "int16": MPI.INT16_T, "int32": MPI.INT32_T,
                 "int64": MPI.INT64_T, "uint8": MPI.UINT8_T, "uint16": MPI.UINT16_T,
                 "uint32": MPI.UINT32_T, "uint64": MPI.UINT64_T, "float32": MPI.FLOAT,
                 "float64": MPI.DOUBLE, "complex64": MPI.C_FLOAT_COMPLEX,
                 "complex128": MPI.C_DOUBLE_COMPLEX}
        t = table.get(np.dtype(dtype).name)
        if t is None:
            raise TypeError(f"the mpi backend cannot reduce {np.dtype(dtype)} tensors")
        return t

    # -- collectives -----------------------------------------------------------------------------
    def _poll(self, req, what, timeout):
        return _Poller(self.world, [req], what, timeout)

    def allreduce(self, buf: np.ndarray, op, what: str, timeout: float):
        MPI, comm = self.MPI, self.world.comm
        work = buf
        if buf.dtype in _REDUCE_UPCAST:
            work = buf.astype(_REDUCE_UPCAST[buf.dtype])
        if buf.dtype == np.bool_:
            mop, mtype = self._bool_ops[op], MPI.C_BOOL
        else:
            mop, mtype = self._ops[op], self._type(work.dtype)
        req = comm.Iallreduce(MPI.IN_PLACE, [work, mtype], mop)
        avg = op is ReduceOp.AVG
        if work is buf and not avg:
            return self._poll(req, what, timeout)
        n = self.world.size

        def then():
            res = _average(work, n) if avg else work
            if res is not buf:
                buf[...] = res
        return self._poll(_Compound([req], then), what, timeout)

    def broadcast(self, buf: np.ndarray, src: int, what: str, timeout: float):
        req = self.world.comm.Ibcast([_bytes(buf), self.MPI.BYTE], root=src)
        return self._poll(req, what, timeout)

    def allgather(self, send: np.ndarray, recv: np.ndarray, what: str, timeout: float):
        MPI = self.MPI
        req = self.world.comm.Iallgather([_bytes(send), MPI.BYTE], [_bytes(recv), MPI.BYTE])
        return self._poll(req, what, timeout)

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op, what: str,
                       timeout: float):
        MPI = self.MPI
        s, r = send, recv
        if send.dtype in _REDUCE_UPCAST:
            s, r = send.astype(_REDUCE_UPCAST[send.dtype]), np.empty(recv.shape,
                                                                     _REDUCE_UPCAST[send.dtype])
        if send.dtype == np.bool_:
            mop, mtype = self._bool_ops[op], MPI.C_BOOL
        else:
            mop, mtype = self._ops[op], self._type(s.dtype)
        s = np.ascontiguousarray(s)
        req = self.world.comm.Ireduce_scatter_block([s, mtype], [r, mtype], mop)
        avg = op is ReduceOp.AVG
        n = self.world.size

        def then():
            res = _average(r, n) if avg else r
            if res is not recv:
                recv[...] = res
        return self._poll(_Compound([req], then), what, timeout)

    def barrier(self, timeout: float):
        return self._poll(self.world.comm.Ibarrier(), "barrier", timeout)

    def close(self) -> None:
        pass


def _bytes(a: np.ndarray) -> np.ndarray:
    """The array's memory as uint8 (contiguous arrays only), so any dtype moves as bytes."""
    return a.reshape(-1).view(np.uint8)


def _average(a: np.ndarray, n: int) -> np.ndarray:
    if a.dtype.kind in "fc":
        a /= n
        return a
    # Integers: the quotient rounded toward zero, without a float detour (int64 stays exact).
    q = np.abs(a) // n
    return np.where(a < 0, -q, q).astype(a.dtype)
