"""``DataLoader`` and ``default_collate`` (as ``torch.utils.data``).

A ``DataLoader`` iterates over a dataset in mini-batches: its sampler picks the order of indices
(sequential, or a fresh permutation each epoch with ``shuffle=True``), a ``BatchSampler`` groups
them, and ``collate_fn`` stacks the samples of a batch. With ``num_workers=0`` loading runs in
the calling process; with ``num_workers=N > 0`` N worker processes fetch and collate batches
(``pydl/data/_worker.py``) while the main process hands out index batches and puts the results
back in sampler order, as PyTorch's ``_MultiProcessingDataLoaderIter`` does.
"""
from __future__ import annotations

import collections.abc
import itertools
import numbers
import pickle
import queue
import signal
import sys
import time
import warnings
from typing import Callable, Optional

import numpy as np

from pydl import random as _random
from pydl.data import _worker
from pydl.data._worker import (ExceptionWrapper, IterableEnd, ResetIterator, WorkerInfo,
                               get_worker_info)
from pydl.data.dataset import IterableDataset
from pydl.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from pydl.tensor import Tensor


def default_collate(batch):
    """Stack a list of samples into a batch, keeping the samples' structure.

    Tensors and NumPy arrays are stacked along a new dimension 0 into a Tensor; Python ints
    become an int64 Tensor, floats a float64 Tensor and bools a bool Tensor (as in PyTorch);
    strings stay a list; tuples/lists and dicts are collated element by element (tuples and
    lists come back as lists).
    """
    if len(batch) == 0:
        raise ValueError("default_collate: cannot collate an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(b.shape) for b in batch}
        if len(shapes) != 1:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, "
                               f"got shapes {sorted(shapes)}")
        return Tensor(np.stack([b.numpy_view() for b in batch]))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            raise TypeError(f"default_collate: arrays of dtype {elem.dtype} are not supported")
        return Tensor(np.stack(batch))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, (numbers.Integral, np.integer)):
        return Tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, (numbers.Real, np.floating)):
        return Tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of "
                               "equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


def default_convert(data):
    """NumPy arrays (of numbers) to Tensors, recursively through mappings, namedtuples and
    sequences; everything else unchanged (as ``torch.utils.data.default_convert``, the collate
    function of ``batch_size=None`` loaders in PyTorch)."""
    if isinstance(data, np.ndarray):
        return Tensor(data) if data.dtype.kind in "biuf" else data
    if isinstance(data, np.generic) and data.dtype.kind in "biuf":
        return Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:  # a mapping type that cannot be built from a dict
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


class DataLoader:
    """Mini-batches of ``dataset``.

    Args (as ``torch.utils.data.DataLoader``):
        dataset: a map-style dataset (``__getitem__`` and ``__len__``), or an
            ``IterableDataset`` (``__iter__``; no sampler or shuffle: each worker iterates its
            own copy, so shard it with ``get_worker_info()``, and batches come round-robin from
            the workers until every copy is exhausted).
        batch_size: samples per batch (None: yield single samples, uncollated).
        shuffle: a new random order every epoch, drawn from ``generator`` (default: pydl's
            global generator, so ``pydl.manual_seed`` makes the sequence of epochs reproducible).
        sampler / batch_sampler: custom index order (exclusive with ``shuffle``).
        num_workers: 0 loads in the calling process; N > 0 starts N worker processes.
        collate_fn: merges a list of samples into a batch (default ``default_collate``).
        pin_memory: accepted; a no-op (pydl has no page-locked host memory; CPU batches are
            used where they are and ``.to('cuda')`` copies them).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        timeout: with workers, seconds to wait for a batch before raising (0: no limit).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: ``"fork"``, ``"spawn"``, ``"forkserver"`` or a context from
            ``multiprocessing.get_context``. Default: fork on Linux (unless CuPy is loaded,
            which must not be forked), the platform's default elsewhere.
        generator: a ``pydl.Generator`` for the shuffling and the workers' base seed.
        prefetch_factor: batches each worker loads ahead (default 2; only with workers).
        persistent_workers: keep the workers (and their dataset copies) between epochs.
        in_order: with workers, yield batches in sampler order (False: as they arrive).

    Every epoch visits each index of the sampler exactly once (``shuffle=False`` or ``True``),
    and the batches and their order do not depend on ``num_workers``: the sampler always runs
    in the main process, and every epoch draws one base seed from ``generator`` first (as
    PyTorch, whatever the number of workers, so the random stream stays aligned). Worker ``i``
    seeds pydl's global generator and ``random`` with ``base_seed + i`` and NumPy's global state
    with PyTorch's hash of the two, so random transforms in workers are reproducible under
    ``pydl.manual_seed``; ``get_worker_info()`` tells a dataset which worker it runs in.

    An exception in a worker is raised in the main process with the worker's number and its
    traceback text; a worker that dies (killed, ``os._exit``) raises ``RuntimeError`` naming it
    and its exit code. Either error, a timeout, the end of an epoch (unless
    ``persistent_workers``) or the iterator being garbage-collected stops every worker.
    """

    def __init__(self, dataset, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *,
                 prefetch_factor: Optional[int] = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True):
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             f"disable multiprocessing, got num_workers={num_workers!r}")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or
                                            prefetch_factor < 0):
            raise ValueError(f"prefetch_factor option should be a non-negative int, got "
                             f"{prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None and num_workers == 0:
            raise ValueError("multiprocessing_context can only be used with multi-process "
                             "loading (num_workers > 0), but got num_workers=0")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                     f"{name} option, but got {name}={value!r}")
            if batch_size is None and drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is "
                                 "mutually exclusive with drop_last")
            sampler = _InfiniteConstantSampler()
            batch_sampler = _IterableBatches(batch_size, drop_last) \
                if batch_size is not None else None
        elif sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        elif batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = _mp_context(multiprocessing_context) \
            if num_workers > 0 else None
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else _identity
        self.collate_fn = collate_fn
        self._iterator = None  # the persistent workers' iterator

    def __len__(self) -> int:
        if self._iterable:  # as PyTorch: from len(dataset) when the dataset has one
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def _index_iter(self):
        """One epoch of what a worker fetches: index batches, or single indices (for an
        iterable dataset: endless batch sizes; the workers' iterators end the epoch)."""
        if self._iterable:
            return itertools.repeat(self.batch_size)
        if not self._auto_collation:
            return iter(self.sampler)
        if isinstance(self.batch_sampler, BatchSampler):
            return iter(self.batch_sampler._index_batches())
        return iter(self.batch_sampler)

    def __iter__(self):
        # One draw per epoch whatever num_workers is (PyTorch's _BaseDataLoaderIter does the
        # same), so that shuffling orders do not depend on the number of workers.
        base_seed = int(_random.generator(self.generator).integers(0, 2 ** 63, dtype=np.int64))
        if self.num_workers == 0:
            return self._single_process_batches(self._index_iter())
        if self.persistent_workers:
            if self._iterator is None or self._iterator._shutdown:
                self._iterator = _MultiProcessIter(self, base_seed)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self, base_seed)

    def _single_process_batches(self, indices_iter):
        if self._iterable:
            fetch = _IterableFetch(self.drop_last)
            while True:
                batch = fetch(self.dataset, next(indices_iter), self._auto_collation,
                              self.collate_fn)
                if isinstance(batch, IterableEnd):
                    return
                yield batch
        fast = self._auto_collation and self.collate_fn is default_collate and \
            hasattr(self.dataset, "_get_batch")
        for indices in indices_iter:
            if fast:
                batch = self.dataset._get_batch(np.asarray(indices, dtype=np.int64))
                if batch is not None:
                    yield batch
                    continue
                fast = False  # e.g. a Subset of a dataset without a batch path
            yield _fetch(self.dataset, indices, self._auto_collation, self.collate_fn)


def _fetch(dataset, indices, auto_collation: bool, collate_fn):
    """One batch (or one sample without auto-collation), as a worker or the main process
    makes it."""
    if not auto_collation:
        return collate_fn(dataset[indices])
    if collate_fn is default_collate and hasattr(dataset, "_get_batch"):
        batch = dataset._get_batch(np.asarray(indices, dtype=np.int64))
        if batch is not None:
            return batch
    return collate_fn([dataset[int(i)] for i in indices])


class _InfiniteConstantSampler(Sampler):
    """The sampler of an iterable dataset: no indices, the dataset decides."""

    def __iter__(self):
        return itertools.repeat(None)


class _IterableBatches:
    """Stands in for the batch sampler of an iterable dataset (auto-collation on)."""

    def __init__(self, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        self.batch_size = batch_size
        self.drop_last = drop_last


class _IterableFetch:
    """Fetches from an iterable dataset: ``batch_size`` samples from one iterator kept across
    calls (``None``: one sample, uncollated). A short last batch is kept unless
    ``drop_last``; after the end every call answers ``IterableEnd``."""

    def __init__(self, drop_last: bool):
        self.drop_last = drop_last
        self.reset()

    def reset(self) -> None:
        self.it = None
        self.ended = False

    def __call__(self, dataset, batch_size, auto_collation: bool, collate_fn):
        if self.ended:
            return IterableEnd()
        if self.it is None:
            self.it = iter(dataset)
        if batch_size is None:
            try:
                return collate_fn(next(self.it))
            except StopIteration:
                self.ended = True
                return IterableEnd()
        samples = []
        for _ in range(batch_size):
            try:
                samples.append(next(self.it))
            except StopIteration:
                self.ended = True
                break
        if not samples or (self.ended and self.drop_last):
            self.ended = True
            return IterableEnd()
        return collate_fn(samples)


def _mp_context(spec):
    import multiprocessing as mp
    import multiprocessing.context

    if spec is None:
        # fork is fast and needs nothing picklable. It is safe here: pydl's kernel thread pool
        # lets the calling thread run every chunk itself, so a child that inherits the pool
        # without its threads still finishes every kernel call (csrc/parallel.cpp), and the
        # host cache holds its lock across fork (csrc/host_cache.cpp). A process that has
        # loaded CuPy may hold a CUDA context, which a forked child cannot use: spawn then.
        if sys.platform.startswith("linux") and "cupy" not in sys.modules:
            return mp.get_context("fork")
        return mp.get_context()
    if isinstance(spec, str):
        methods = mp.get_all_start_methods()
        if spec not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start "
                             f"method in {methods!r}, but got multiprocessing_context={spec!r}")
        return mp.get_context(spec)
    if isinstance(spec, multiprocessing.context.BaseContext):
        return spec
    raise TypeError(f"multiprocessing_context option should be a valid context object or a "
                    f"string specifying the start method, but got "
                    f"multiprocessing_context={spec!r}")


class _MultiProcessIter:
    """An epoch (or, with persistent workers, every epoch) of a loader with worker processes.

    Index batches are numbered by a task counter that never restarts, handed round-robin to
    the workers' index queues (``prefetch_factor`` per worker ahead), and results come back on
    one shared queue as ``(task, worker_id, batch)``; out-of-order results wait in a buffer.
    Tasks of an abandoned epoch (a ``break`` with persistent workers) are recognised by their
    number and dropped.
    """

    def __init__(self, loader: DataLoader, base_seed: int):
        self._loader = loader
        self._shutdown = True  # until the workers exist: __del__ must not touch them
        ctx = loader.multiprocessing_context
        forked = ctx.get_start_method() == "fork"
        import os

        self._data_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        self._shutdown = False
        try:
            for wid in range(loader.num_workers):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()  # never block exit on tasks nobody will take
                w = ctx.Process(target=_worker.worker_loop, name=f"pydl DataLoader worker {wid}",
                                args=(loader.dataset, index_queue, self._data_queue,
                                      _IterableFetch(loader.drop_last) if loader._iterable
                                      else _fetch,
                                      loader._auto_collation, loader.collate_fn,
                                      loader.worker_init_fn, base_seed, wid,
                                      loader.num_workers, os.getpid(), forked),
                                daemon=True)
                with warnings.catch_warnings():
                    # Python 3.12+ warns that fork() in a process with threads may deadlock:
                    # see _mp_context for why pydl's threads are safe to fork over.
                    warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead",
                                            category=DeprecationWarning)
                    w.start()
                self._index_queues.append(index_queue)
                self._workers.append(w)
        except BaseException:
            self._shutdown_workers()
            raise
        self._next_task = 0
        self._reset()

    def _reset(self) -> None:
        loader = self._loader
        self._epoch_start = self._next_task
        self._rcvd = self._next_task  # next task to yield (in_order)
        self._outstanding = {}        # task -> worker id, this epoch
        self._buffer = {}             # results that came before their turn
        self._index_iter = loader._index_iter()
        self._worker_cycle = itertools.cycle(range(loader.num_workers))
        self._active = set(range(loader.num_workers))  # workers whose dataset is not exhausted
        self._exhausted = False
        if loader._iterable and self._next_task > 0:  # a new epoch of persistent workers
            for q in self._index_queues:
                q.put(ResetIterator())
        for _ in range(loader.prefetch_factor * loader.num_workers):
            if not self._put_task():
                break

    def _put_task(self) -> bool:
        if self._exhausted:
            return False
        try:
            indices = next(self._index_iter)
        except StopIteration:
            self._exhausted = True
            return False
        if not self._active:
            self._exhausted = True
            return False
        wid = next(self._worker_cycle)
        while wid not in self._active:
            wid = next(self._worker_cycle)
        task = self._next_task
        self._next_task += 1
        self._outstanding[task] = wid
        self._index_queues[wid].put((task, indices))
        return True

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        while True:
            batch = self._next_result()
            if not isinstance(batch, IterableEnd):  # else: that worker's dataset copy ended
                return batch

    def _next_result(self):
        if self._shutdown:
            raise StopIteration
        while True:
            if not self._outstanding and not self._buffer and not self._put_task():
                if not self._loader.persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if self._loader.in_order and self._rcvd in self._buffer:
                task, batch = self._rcvd, self._buffer.pop(self._rcvd)
                break
            if not self._loader.in_order and self._buffer:
                task = next(iter(self._buffer))
                batch = self._buffer.pop(task)
                break
            task, wid, batch = self._get_result()
            if task < self._epoch_start or task not in self._outstanding:
                continue  # left over from an abandoned epoch
            del self._outstanding[task]
            if isinstance(batch, IterableEnd):
                self._active.discard(wid)
            self._buffer[task] = batch
        self._rcvd = task + 1 if self._loader.in_order else self._rcvd
        if isinstance(batch, IterableEnd):
            return batch
        self._put_task()
        if isinstance(batch, ExceptionWrapper):
            self._shutdown_workers()
            batch.reraise()
        return batch

    def _get_result(self):
        timeout = self._loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            wait = _worker.STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                raw = self._data_queue.get(timeout=wait)
            except queue.Empty:
                self._check_workers_alive()
                if deadline is not None and time.monotonic() >= deadline:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None
                continue
            return pickle.loads(raw)

    def _check_workers_alive(self) -> None:
        for wid, w in enumerate(self._workers):
            if w.is_alive():
                continue
            code = w.exitcode
            if code is not None and code < 0:
                try:
                    how = f"was killed by signal {signal.Signals(-code).name}"
                except ValueError:
                    how = f"was killed by signal {-code}"
            else:
                how = f"exited unexpectedly with exit code {code}"
            self._shutdown_workers()
            raise RuntimeError(f"DataLoader worker {wid} (pid {w.pid}) {how}. It may have run "
                               f"out of memory or crashed in native code; run with "
                               f"num_workers=0 to see the error in the main process.")

    def _shutdown_workers(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        for q in self._index_queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        # An idle worker reads the None at once; one still inside __getitem__ (a break out of
        # the loop, a timeout) gets a moment to finish and is then terminated.
        deadline = time.monotonic() + _worker.STATUS_CHECK_INTERVAL
        for w in self._workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            if w.is_alive():
                w.terminate()
                w.join()
        for q in self._index_queues:
            q.cancel_join_thread()
            q.close()
        self._data_queue.cancel_join_thread()
        self._data_queue.close()
        if self._loader._iterator is self:
            self._loader._iterator = None

    def __del__(self):
        try:
            self._shutdown_workers()
        except Exception:
            pass


def _identity(x):
    return x


__all__ = ["DataLoader", "WorkerInfo", "default_collate", "default_convert", "get_worker_info",
           "Sampler"]
