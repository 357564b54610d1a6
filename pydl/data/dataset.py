"""Datasets: ``Dataset``, ``IterableDataset``, ``TensorDataset``, ``StackDataset``, ``Subset``,
``ConcatDataset``, ``ChainDataset``, ``random_split`` (as ``torch.utils.data``), and ``KFold``
index splitting for k-fold cross-validation (as scikit-learn's ``KFold``).

A map-style dataset is anything with ``__getitem__(i)`` and ``__len__()``. Datasets that can
return a whole collated batch at once define ``_get_batch(indices)``; ``DataLoader`` uses it
instead of fetching samples one by one when the default collate function is in use (the batch is
then one NumPy fancy-indexing call instead of ``batch_size`` Python calls and a stack).
"""
from __future__ import annotations

import bisect
import math
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from pydl import random as _random
from pydl.tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of iterable-style datasets (as ``torch.utils.data.IterableDataset``): samples
    come from ``__iter__``, in the dataset's own order (a stream, a generator, a file read
    sequentially). A ``DataLoader`` with ``num_workers=N`` iterates one copy per worker, so a
    dataset that should not be read N times shards itself with ``get_worker_info()``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: "IterableDataset") -> "ChainDataset":
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class TensorDataset(Dataset):
    """Samples are the ``i``-th rows of the given tensors: ``ds[i] = (t0[i], t1[i], ...)``.

    Every tensor must have the same size in dimension 0. NumPy arrays are accepted and wrapped.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        sizes = [t.shape[0] if t.ndim > 0 else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError("Size mismatch between tensors: every tensor needs the same size in "
                             f"dimension 0, got shapes {[tuple(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _get_batch(self, indices: np.ndarray):
        return [Tensor(t._data[indices]) for t in self.tensors]


class StackDataset(Dataset):
    """Several datasets of one length side by side (as ``torch.utils.data.StackDataset``):
    ``StackDataset(a, b)[i] == (a[i], b[i])``, ``StackDataset(x=a, y=b)[i] == {"x": a[i],
    "y": b[i]}``."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via "
                             "``kwargs``) like input/output, but both types are given.")
        self.datasets = args if args else kwargs
        parts = list(self.datasets) if args else list(kwargs.values())
        if not parts:
            raise ValueError("At least one dataset should be passed")
        lengths = {len(d) for d in parts}
        if len(lengths) != 1:
            raise ValueError("Size mismatch between datasets")
        self._length = lengths.pop()

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: indices {bad[:5]} out of range for a dataset of size {n}")

    def __getitem__(self, idx):
        if isinstance(idx, (list, tuple, np.ndarray)):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)

    def _get_batch(self, indices: np.ndarray):
        base = getattr(self.dataset, "_get_batch", None)
        if base is None:
            return None
        return base(np.asarray(self.indices, dtype=np.int64)[indices])


class ConcatDataset(Dataset):
    """Several datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, idx: int):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} out of range for a dataset of size {n}")
        idx %= n
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if which == 0 else int(self.cumulative_sizes[which - 1])
        return self.datasets[which][idx - start]


def random_split(dataset, lengths: Sequence[Union[int, float]],
                 generator: Optional[_random.Generator] = None) -> List[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are sizes summing to ``len(dataset)``, or fractions summing to 1 (then each part
    gets ``floor(frac * n)`` samples and the remainder is dealt round-robin, as in PyTorch).
    The permutation is drawn from ``generator`` (default: pydl's global generator, so
    ``pydl.manual_seed`` makes it reproducible).
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and \
            math.isclose(sum(lengths), 1.0, abs_tol=1e-9):
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1")
        sizes = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(not isinstance(x, (int, np.integer)) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing "
                         f"to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths ({sum(lengths)}) does not equal the length of "
                         f"the input dataset ({n})")
    perm = _random.generator(generator).permutation(n)
    out, start = [], 0
    for size in lengths:
        out.append(Subset(dataset, perm[start:start + size]))
        start += size
    return out


class KFold:
    """K-fold cross-validation splits, as ``sklearn.model_selection.KFold``.

    ``split(data)`` yields ``(train_indices, val_indices)`` ``n_splits`` times; each sample is in
    the validation part of exactly one fold. The first ``n % n_splits`` folds get one sample
    more. With ``shuffle=True`` the samples are permuted first, by a generator seeded with
    ``random_state`` (an int) or drawn from pydl's global generator when it is None.
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False,
                 random_state: Optional[int] = None):
        if not isinstance(n_splits, (int, np.integer)) or isinstance(n_splits, bool) or \
                n_splits < 2:
            raise ValueError(f"KFold: n_splits must be an int >= 2, got {n_splits!r}")
        if random_state is not None and not shuffle:
            raise ValueError("KFold: random_state only has an effect with shuffle=True")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self) -> int:
        return self.n_splits

    def split(self, data) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """``data`` is a dataset (anything with ``len``) or a sample count."""
        n = int(data) if isinstance(data, (int, np.integer)) else len(data)
        if n < self.n_splits:
            raise ValueError(f"KFold: cannot have n_splits={self.n_splits} greater than the "
                             f"number of samples n={n}")
        order = np.arange(n)
        if self.shuffle:
            rng = (np.random.default_rng(self.random_state) if self.random_state is not None
                   else _random.generator())
            order = rng.permutation(n)
        sizes = np.full(self.n_splits, n // self.n_splits, dtype=np.int64)
        sizes[: n % self.n_splits] += 1
        start = 0
        for size in sizes:
            val = order[start:start + size]
            train = np.concatenate([order[:start], order[start + size:]])
            yield train, val
            start += size
