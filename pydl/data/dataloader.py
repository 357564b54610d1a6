"""``DataLoader`` and ``default_collate`` (as ``torch.utils.data``).

A ``DataLoader`` iterates over a dataset in mini-batches: its sampler picks the order of indices
(sequential, or a fresh permutation each epoch with ``shuffle=True``), a ``BatchSampler`` groups
them, and ``collate_fn`` stacks the samples of a batch. Loading runs in the calling process
(``num_workers=0``).
"""
from __future__ import annotations

import collections.abc
import numbers
from typing import Callable, Optional

import numpy as np

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


class DataLoader:
    """Mini-batches of ``dataset``.

    Args (as ``torch.utils.data.DataLoader``):
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: samples per batch (None: yield single samples, uncollated).
        shuffle: a new random order every epoch, drawn from ``generator`` (default: pydl's
            global generator, so ``pydl.manual_seed`` makes the sequence of epochs reproducible).
        sampler / batch_sampler: custom index order (exclusive with ``shuffle``).
        num_workers: only 0 (loading in the main process) is supported.
        collate_fn: merges a list of samples into a batch (default ``default_collate``).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: a ``pydl.Generator`` for the shuffling.

    Every epoch visits each index of the sampler exactly once (``shuffle=False`` or ``True``).
    """

    def __init__(self, dataset, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None):
        if num_workers != 0:
            raise ValueError(f"DataLoader: num_workers={num_workers} is not supported; pydl "
                             "loads data in the main process (num_workers=0)")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
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
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self._auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else _identity
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if not self._auto_collation:
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        fast = self.collate_fn is default_collate and hasattr(self.dataset, "_get_batch")
        if isinstance(self.batch_sampler, BatchSampler):
            batches = self.batch_sampler._index_batches()
        else:
            batches = self.batch_sampler
        for indices in batches:
            if fast:
                batch = self.dataset._get_batch(np.asarray(indices, dtype=np.int64))
                if batch is not None:
                    yield batch
                    continue
                fast = False  # e.g. a Subset of a dataset without a batch path
            yield self.collate_fn([self.dataset[int(i)] for i in indices])


def _identity(x):
    return x


__all__ = ["DataLoader", "default_collate", "Sampler"]
