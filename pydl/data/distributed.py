"""``DistributedSampler``: each rank's share of a data set (as
``torch.utils.data.distributed.DistributedSampler``).

Every epoch, the indices 0..n-1 (shuffled by a generator seeded with ``seed + epoch``, the same
on every rank, when ``shuffle``) are padded by repeating from the start up to a multiple of
``num_replicas`` (or cut down to one, with ``drop_last``), and rank r takes every
``num_replicas``-th index from r. So the ranks together visit each example once per epoch (plus
the padding), and all ranks have the same number of batches. Call ``set_epoch(e)`` at the start
of each epoch, or every epoch has the same order.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np

from pydl.data.sampler import Sampler


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from pydl import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "pydl.distributed.init_process_group first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, int) or rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.drop_last, self.shuffle, self.seed = drop_last, shuffle, seed
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            # Cut to the largest multiple of num_replicas, so no rank needs padding.
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def _index_array(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n, dtype=np.int64)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:
                reps = math.ceil(pad / n) if n else 0
                indices = np.concatenate([indices, np.tile(indices, reps)[:pad]])
        else:
            indices = indices[:self.total_size]
        if indices.size != self.total_size:
            raise RuntimeError(f"DistributedSampler: {indices.size} indices for a total size of "
                               f"{self.total_size} (an empty data set?)")
        return indices[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch this iteration is for: with ``shuffle``, a different order each epoch, the
        same on all ranks."""
        self.epoch = epoch
