"""What runs inside a ``DataLoader`` worker process (as ``torch.utils.data._utils.worker``).

A worker is started by the loader's iterator with its own index queue and the loader's shared
result queue. It seeds its random generators (PyTorch's rule: ``base_seed + worker_id`` for
pydl's global generator and Python's ``random``, a hash of both for NumPy's legacy global
state), records a ``WorkerInfo`` for ``get_worker_info()``, runs ``worker_init_fn(worker_id)``
and then loops: take ``(task, indices)`` from its index queue, fetch and collate the batch, put
``(task, batch)`` -- or ``(task, ExceptionWrapper)`` when fetching raised -- on the result queue.
``None`` on the index queue ends the loop. A worker whose parent process has gone (the main
process was killed) notices within a second and exits instead of lingering.
"""
from __future__ import annotations

import os
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Optional

# Seconds between checks for a dead parent (worker) or a dead worker (main process).
STATUS_CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker (fields as PyTorch's ``WorkerInfo``).

    ``id``: this worker's number, 0 .. num_workers - 1; ``num_workers``; ``seed``: the seed this
    worker's generators were given (``base_seed + id``); ``dataset``: this process's copy of the
    dataset (configure it from ``worker_init_fn``, e.g. to shard an index range).
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any
    worker_method: str = "multiprocessing"


_worker_info: Optional[WorkerInfo] = None


def get_worker_info() -> Optional[WorkerInfo]:
    """The ``WorkerInfo`` of the current DataLoader worker process; ``None`` in the main
    process (as ``torch.utils.data.get_worker_info``)."""
    return _worker_info


class IterableEnd:
    """A worker's answer to a task once its copy of an iterable dataset is exhausted."""


class ResetIterator:
    """Sent to persistent workers at a new epoch: restart the iterable dataset's iterator."""


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process as its type and traceback
    text (tracebacks themselves do not pickle)."""

    def __init__(self, exc_info, where: str):
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        """Raise the worker's exception type in the main process; its message names the worker
        and holds the worker's traceback. Types that cannot be built from one message string
        are raised as ``RuntimeError`` with the same message."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)  # KeyError would repr() the message: keep it readable
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


class _KeyErrorMessage(str):
    def __repr__(self):
        return str(self)


def generate_numpy_seed(base_seed: int, worker_id: int) -> list:
    """Four 32-bit words seeding NumPy's legacy global state in a worker: the same hash of
    ``(base_seed, worker_id)`` as PyTorch's ``_generate_state`` (NumPy's SeedSequence mixing),
    so that workers never share a NumPy stream even when ``base_seed + id`` would collide."""
    init_a, mult_a, init_b, mult_b = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
    mix_l, mix_r, xshift, mask = 0xCA01F9DD, 0x4973F715, 16, 0xFFFFFFFF
    entropy = [worker_id, base_seed & mask, (base_seed >> 32) & mask, 0]
    const_a = init_a

    def hash32(value):
        nonlocal const_a
        value = (value ^ const_a) & mask
        const_a = (const_a * mult_a) & mask
        value = (value * const_a) & mask
        return (value ^ (value >> xshift)) & mask

    def mix(x, y):
        r = ((mix_l * x) & mask) - ((mix_r * y) & mask)
        r &= mask
        return (r ^ (r >> xshift)) & mask

    pool = [hash32(e) for e in entropy]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash32(pool[i_src]))
    const_b, state = init_b, []
    for value in pool:
        value = (value ^ const_b) & mask
        const_b = (const_b * mult_b) & mask
        value = (value * const_b) & mask
        state.append((value ^ (value >> xshift)) & mask)
    return state


def _dumps(task: int, worker_id: int, batch) -> bytes:
    """Pickle a result here rather than in the queue's feeder thread, where a failure would be
    printed and the result dropped, leaving the main process waiting for it."""
    from multiprocessing.reduction import ForkingPickler

    try:
        return bytes(ForkingPickler.dumps((task, worker_id, batch)))
    except Exception:
        err = ExceptionWrapper(sys.exc_info(), f"in DataLoader worker process {worker_id} "
                                               f"(sending the batch to the main process)")
        if isinstance(batch, ExceptionWrapper):  # the exception type itself would not pickle
            err = batch
            err.exc_msg = f"{err.exc_type.__module__}.{err.exc_type.__qualname__}: " + err.exc_msg
            err.exc_type = RuntimeError
        return bytes(ForkingPickler.dumps((task, worker_id, err)))


def worker_loop(dataset, index_queue, data_queue, fetch, auto_collation, collate_fn,
                worker_init_fn, base_seed: int, worker_id: int, num_workers: int,
                parent_pid: int, forked: bool) -> None:
    """The body of worker process ``worker_id``. Never raises: errors go to ``data_queue``."""
    global _worker_info
    import numpy as np

    import pydl

    try:
        if not forked:
            # A fresh (spawned) process owns its kernel thread pool: one thread per worker, as
            # PyTorch's workers, so that N workers do not each start a pool of every core. (A
            # forked child must not resize the pool it inherited: the pool's threads were not
            # copied, and joining them would hang. Its kernels run on the calling thread.)
            pydl.set_num_threads(1)
        seed = base_seed + worker_id
        random.seed(seed)
        pydl.manual_seed(seed)
        np.random.seed(generate_numpy_seed(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        init_error = None
        if worker_init_fn is not None:
            try:
                worker_init_fn(worker_id)
            except Exception:
                init_error = ExceptionWrapper(sys.exc_info(),
                                              f"in DataLoader worker process {worker_id} "
                                              f"(worker_init_fn)")
        while True:
            try:
                item = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:  # the main process is gone
                    break
                continue
            if item is None:
                break
            if isinstance(item, ResetIterator):
                if hasattr(fetch, "reset"):
                    fetch.reset()
                continue
            task, indices = item
            if init_error is not None:
                data_queue.put(_dumps(task, worker_id, init_error))
                continue
            try:
                batch = fetch(dataset, indices, auto_collation, collate_fn)
            except Exception:
                batch = ExceptionWrapper(sys.exc_info(),
                                         f"in DataLoader worker process {worker_id}")
            data_queue.put(_dumps(task, worker_id, batch))
            del batch, item, indices
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C and shuts the workers down
    # The main process asked this worker to stop and reads nothing more: do not block exit on
    # flushing results nobody will take.
    data_queue.cancel_join_thread()
    data_queue.close()
