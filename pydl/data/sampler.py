"""Samplers: which indices a ``DataLoader`` visits, in what order (as ``torch.utils.data``)."""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import numpy as np

from pydl import random as _random


class Sampler:
    """Base class: iterating yields dataset indices."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError

    def _index_array(self) -> np.ndarray:
        """One epoch's indices as an int64 array (samplers override this to avoid a loop)."""
        return np.fromiter(iter(self), dtype=np.int64)


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)

    def _index_array(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)


class RandomSampler(Sampler):
    """A new random permutation each epoch (or ``num_samples`` draws with replacement).

    Draws come from ``generator`` when given, else from pydl's global generator, so
    ``pydl.manual_seed(s)`` before building the loader makes every epoch's order reproducible.
    """

    def __init__(self, data_source, replacement: bool = False,
                 num_samples: Optional[int] = None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples!r}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self) -> int:
        return self.num_samples

    def _index_array(self) -> np.ndarray:
        rng = _random.generator(self.generator)
        n = len(self.data_source)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        reps = -(-self.num_samples // n) if n else 0
        perms = [rng.permutation(n) for _ in range(reps)]
        return np.concatenate(perms)[: self.num_samples].astype(np.int64) if perms else \
            np.zeros(0, dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())


class SubsetRandomSampler(Sampler):
    """The given indices in a new random order each epoch."""

    def __init__(self, indices: Sequence[int], generator=None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.generator = generator

    def __len__(self) -> int:
        return len(self.indices)

    def _index_array(self) -> np.ndarray:
        return self.indices[_random.generator(self.generator).permutation(len(self.indices))]

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights`` (with
    replacement by default), as ``torch.utils.data.WeightedRandomSampler``: the usual way to
    oversample rare classes. Draws come from ``generator`` or pydl's global generator."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or \
                num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        w = np.asarray(getattr(weights, "numpy", lambda: weights)(), dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (weights must be finite, "
                               "non-negative and not all zero)")
        if not replacement and num_samples > len(w):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                               "replacement")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __len__(self) -> int:
        return self.num_samples

    def _index_array(self) -> np.ndarray:
        rng = _random.generator(self.generator)
        w = self.weights
        if self.replacement:
            return rng.choice(len(w), size=self.num_samples, p=w / w.sum()).astype(np.int64)
        # Without replacement: successive weighted draws are the order of E_i / w_i for
        # E_i ~ Exp(1); zero weights come last, in random order, as torch.multinomial's do.
        with np.errstate(divide="ignore"):
            keys = np.where(w > 0, rng.exponential(size=len(w)) / w, np.inf)
        order = np.lexsort((rng.random(len(w)), keys))
        return order[:self.num_samples].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def _index_batches(self) -> List[np.ndarray]:
        if isinstance(self.sampler, Sampler):
            order = self.sampler._index_array()
        else:  # any iterable of indices
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __iter__(self) -> Iterator[List[int]]:
        for batch in self._index_batches():
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
