"""What every backend shares: the MPI world the launcher (``mpirun``/``mpiexec``) made, and the
fault handling on top of it.

Both backends take rank and world size from MPI: ``mpi`` moves CPU tensors through MPI itself,
``nccl`` moves CUDA tensors through NCCL but gets its unique id (and every argument check) over
MPI. So this module is the part the CPU tests exercise for both.

Faults. A collective never blocks in MPI: it is started non-blocking and polled (``_Poller``)
against a deadline (``init_process_group(timeout=...)``) while also watching a control channel
(a duplicate of COMM_WORLD, so user traffic cannot match it). A rank whose Python program dies
of an exception sends its error to every peer on that channel before aborting the job, and a
peer that is waiting in a collective raises ``DistributedError`` naming the failed rank and its
error. A peer that is killed outright (SIGKILL, OOM) cannot say anything: the launcher (Hydra)
then tears the job down, or, with auto-cleanup disabled, the survivors' collectives hit the
timeout and raise.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Optional

_ABORT_TAG = 7717
# How long a rank that failed waits, after telling its peers, before MPI_Abort kills the job:
# long enough for a peer polling a collective to print the reason even on a loaded machine (at
# 1 s, 1 run in ~20 lost the peer's message under load). It costs nothing when a peer is in a
# collective: that peer prints and aborts the job itself 0.2 s after the notice arrives.
_ABORT_GRACE_S = 5.0


class DistributedError(RuntimeError):
    """A collective could not complete: a peer rank failed, or the timeout passed."""


class PeerFailedError(DistributedError):
    """A peer rank said it failed; this rank stops too (and does not in turn blame others)."""


DistributedError.__module__ = PeerFailedError.__module__ = "pydl.distributed"
_PeerFailure = PeerFailedError


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - the [distributed] extra installs it
        raise ImportError(
            "pydl.distributed needs mpi4py and an MPI library: pip install 'pydl-nn[distributed]'"
            " (mpi4py and the mpich wheels), then launch with mpirun -n N python script.py"
        ) from e
    return MPI


class World:
    """COMM_WORLD as the launcher made it, plus pydl's private control channel."""

    def __init__(self):
        MPI = _mpi()
        if not MPI.Is_initialized():  # pragma: no cover - importing mpi4py.MPI initialises
            MPI.Init_thread()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()      # collectives on user tensors
        self.ctrl = MPI.COMM_WORLD.Dup()      # failure notices only
        self.pid = os.getpid()  # a forked child (a DataLoader worker) is not this rank
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.failed_peer: Optional[str] = None
        # Ranks sharing this node (for the GPU each rank takes): MPI-3 shared-memory split.
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        # Polling spins before it naps; with more ranks than cores on this node a spinning rank
        # takes the core a peer needs, so it naps almost at once.
        self.spin_limit = 2000 if self.local_size <= (os.cpu_count() or 1) else 20

    def check_peers(self) -> None:
        """Raise if a peer sent a failure notice."""
        if self.failed_peer is None and self.ctrl.Iprobe(source=self.MPI.ANY_SOURCE,
                                                         tag=_ABORT_TAG):
            status = self.MPI.Status()
            msg = self.ctrl.recv(source=self.MPI.ANY_SOURCE, tag=_ABORT_TAG, status=status)
            self.failed_peer = f"rank {status.Get_source()} failed: {msg}"
        if self.failed_peer is not None:
            raise _PeerFailure(
                f"pydl.distributed (rank {self.rank} of {self.size}): {self.failed_peer}; "
                "this rank stops too")

    def notify_peers(self, text: str) -> None:
        """Tell every other rank this one failed (small eager sends, never waited on long)."""
        reqs = [self.ctrl.isend(text, dest=r, tag=_ABORT_TAG)
                for r in range(self.size) if r != self.rank]
        deadline = time.monotonic() + _ABORT_GRACE_S
        while reqs and time.monotonic() < deadline:
            reqs = [r for r in reqs if not r.Test()]
            time.sleep(0.001)

    def bcast_object(self, obj, root: int = 0, timeout: float = 1800.0, what: str = "broadcast"):
        """A picklable object from ``root`` to all (the NCCL unique id travels this way)."""
        import pickle

        import numpy as np

        MPI = self.MPI
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if self.rank == root else None
        n = np.array([0 if data is None else data.size], dtype=np.int64)
        _Poller(self, [self.comm.Ibcast([n, MPI.INT64_T], root=root)], what, timeout).wait()
        if data is None:
            data = np.empty(int(n[0]), dtype=np.uint8)
        _Poller(self, [self.comm.Ibcast([data, MPI.BYTE], root=root)], what, timeout).wait()
        return pickle.loads(data.tobytes())

    def allgather_object(self, obj, timeout: float = 1800.0, what: str = "all_gather_object"):
        # mpi4py has no non-blocking pickled allgather: gather the pickles' sizes, then bytes.
        import pickle

        import numpy as np

        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        sizes = np.zeros(self.size, dtype=np.int64)
        mine = np.array([data.size], dtype=np.int64)
        MPI = self.MPI
        _Poller(self, [self.comm.Iallgather([mine, MPI.INT64_T], [sizes, MPI.INT64_T])], what,
                timeout).wait()
        recv = np.empty(int(sizes.sum()), dtype=np.uint8)
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        req = self.comm.Iallgatherv([data, MPI.BYTE],
                                    [recv, (sizes.tolist(), displs.tolist()), MPI.BYTE])
        _Poller(self, [req], what, timeout).wait()
        return [pickle.loads(recv[int(d):int(d) + int(s)].tobytes())
                for d, s in zip(displs, sizes)]

    def free(self) -> None:
        for c in (self.comm, self.ctrl):
            try:
                c.Free()
            except Exception:  # pragma: no cover - freeing after a failure
                pass


class _Poller:
    """Wait for requests (MPI requests, or objects with ``Test()``) to finish by a deadline,
    watching for peer failures meanwhile. Spins briefly first (a small all-reduce on one node
    completes in microseconds), then yields the core for up to 50 ms (the peer that has to act
    may be waiting for it: the process stays runnable, so it resumes as soon as the scheduler
    allows), then sleeps in growing steps up to 1 ms (a long wait, e.g. a slow peer's compute,
    should not burn a core)."""

    def __init__(self, world: World, reqs, what: str, timeout: float):
        self.world, self.reqs, self.what, self.timeout = world, list(reqs), what, timeout
        self.deadline = time.monotonic() + timeout

    def test(self) -> bool:
        if self.reqs:
            done = all(_test(r) for r in self.reqs)
            if not done:
                return False
        return True

    def wait(self) -> None:
        spins, nap, yield_until = 0, 0.0, None
        while not self.test():
            spins += 1
            if spins % 16 == 0:
                self.world.check_peers()
                if time.monotonic() > self.deadline:
                    raise DistributedError(
                        f"pydl.distributed (rank {self.world.rank} of {self.world.size}): "
                        f"{self.what} did not complete within {self.timeout:g} s; a peer rank "
                        "may have died, be stuck, or not have called the same collective")
            if spins > self.world.spin_limit:
                now = time.monotonic()
                if yield_until is None:
                    yield_until = now + 0.05
                if now < yield_until:
                    os.sched_yield()
                else:
                    nap = min(1e-3, nap * 2 or 2e-5)
                    time.sleep(nap)
        # A failure notice may have raced with completion of this op on a peer that then died;
        # it is caught at the next collective.


def _test(req) -> bool:
    t = req.Test()
    return t if isinstance(t, bool) else bool(t)


# -- the process-wide world and the excepthook ------------------------------------------------

_world: Optional[World] = None
_prev_excepthook = None


def world() -> World:
    global _world
    if _world is None:
        _world = World()
        _install_excepthook()
    return _world


def _install_excepthook() -> None:
    global _prev_excepthook
    if _prev_excepthook is not None:
        return
    _prev_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    # Threads: an exception in a worker thread of a rank is as fatal for the job.
    prev_thread_hook = threading.excepthook

    def _thread_hook(args):
        prev_thread_hook(args)
        if args.exc_type is not SystemExit:
            _fail_job(args.exc_type, args.exc_value)

    threading.excepthook = _thread_hook


def _excepthook(exc_type, exc, tb) -> None:
    (_prev_excepthook or sys.__excepthook__)(exc_type, exc, tb)
    _fail_job(exc_type, exc)


def _fail_job(exc_type, exc) -> None:
    """An uncaught exception on this rank: tell the peers (unless it was a peer's failure that
    stopped us), then abort the job so no rank waits forever in a collective."""
    w = _world
    if w is None or w.size == 1 or os.getpid() != w.pid:
        return
    try:
        sys.stderr.flush()
        if not issubclass(exc_type, _PeerFailure):
            text = "".join(traceback.format_exception_only(exc_type, exc)).strip()
            w.notify_peers(text)
            time.sleep(_ABORT_GRACE_S)
        sys.stdout.flush()
        sys.stderr.flush()
        # The launcher forwards a rank's output through pipes: give it a moment before the
        # abort tears the job down, or the traceback above can be lost.
        time.sleep(0.2)
    finally:
        w.MPI.COMM_WORLD.Abort(1)


def env_rank_hint() -> Optional[int]:
    """The rank a launcher announced in the environment (MPICH's PMI_RANK, Open MPI's
    OMPI_COMM_WORLD_RANK), without initialising MPI; None outside a launcher."""
    for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        v = os.environ.get(k)
        if v is not None and v.isdigit():
            return int(v)
    return None
