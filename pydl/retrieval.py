"""Retrieval with binary codes (semantic hashing, lecture notes 20.2) and the measures to judge
it.

* ``HammingIndex(codes)``: a hash table whose keys are the binary codes (packed into ints) and
  whose values are the ids of the items with that code. ``search(code, k, radius)`` looks up
  the query's own bucket, then every code one bit flip away, two flips away, ... (the Hamming
  ball grown one radius at a time) and returns the ids found, nearest first. A lookup costs
  sum_{d <= r} C(bits, d) hash probes whatever the size of the database: the point of
  semantic hashing. When a radius would need more probes than the table has distinct codes,
  the table's codes are scanned instead (the same result, fewer operations).
* ``knn_search(database, queries, k)``: brute-force k nearest neighbours (Euclidean or
  Hamming), the baseline.
* ``precision_at_k(retrieved_labels, query_labels)``: the fraction of retrieved items that share
  the query's label.

Ties are broken by id everywhere, so every search is deterministic and ``HammingIndex.search``
returns exactly what sorting all items by (Hamming distance, id) would.

This lives at the top of the package, not in ``pydl.models``: it is a data structure over
codes of any origin (an autoencoder's, thresholded PCA's, random projections'), works on NumPy
arrays and holds no parameters; the autoencoder that makes the codes is
``pydl.models.Autoencoder(..., code_activation="sigmoid", code_noise=...)``.
"""
from __future__ import annotations

import itertools
from math import comb
from typing import Dict, Optional, Tuple

import numpy as np

from pydl.tensor import Tensor

__all__ = ["HammingIndex", "pack_bits", "hamming_distances", "knn_search", "precision_at_k"]

_MAX_BITS = 64


def _numpy(x, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _bits(codes, what: str) -> np.ndarray:
    """(N, b) codes as a bool array; accepts bool or 0/1 numbers."""
    a = _numpy(codes, what)
    if a.ndim != 2:
        raise ValueError(f"{what}: codes must be (N, bits), got shape {a.shape}")
    if a.dtype != bool:
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"{what}: codes must be bool or 0/1 values")
        a = a.astype(bool)
    if not 1 <= a.shape[1] <= _MAX_BITS:
        raise ValueError(f"{what}: codes of 1 to {_MAX_BITS} bits are supported, got "
                         f"{a.shape[1]}")
    return a


def pack_bits(codes) -> np.ndarray:
    """(N, b) binary codes -> (N,) uint64 keys; bit j of the key is code[:, j]."""
    bits = _bits(codes, "pack_bits")
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[1], dtype=np.uint64))
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(x).astype(np.int64)
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int64)
    for shift in range(0, 64, 8):
        count += _BYTE_POPCOUNT[((x >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)]
    return count


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def hamming_distances(queries, database) -> np.ndarray:
    """(Q, N) Hamming distances between (Q, b) and (N, b) binary codes."""
    q, d = _bits(queries, "hamming_distances"), _bits(database, "hamming_distances")
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"hamming_distances: queries have {q.shape[1]} bits, database "
                         f"{d.shape[1]}")
    return _popcount(pack_bits(q)[:, None] ^ pack_bits(d)[None, :])


class HammingIndex:
    """A hash table from binary codes to the ids (row numbers) of the items that have them.

    ``codes``: (N, bits) bool or 0/1 array or Tensor, 1 <= bits <= 64; item i has id i.
    """

    def __init__(self, codes):
        keys = pack_bits(_bits(codes, "HammingIndex"))
        self.n_bits = int(_bits(codes, "HammingIndex").shape[1])
        self._size = len(keys)
        order = np.argsort(keys, kind="stable")  # ids ascending within each bucket
        unique, starts = np.unique(keys[order], return_index=True)
        bounds = list(starts) + [len(keys)]
        self.buckets: Dict[int, np.ndarray] = {
            int(key): order[bounds[i]:bounds[i + 1]] for i, key in enumerate(unique)}
        self._keys = unique  # the distinct codes, for the scan fallback

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"HammingIndex(items={self._size}, bits={self.n_bits}, "
                f"distinct_codes={len(self.buckets)})")

    def _key(self, code) -> int:
        if isinstance(code, (int, np.integer)) and not isinstance(code, bool):
            if not 0 <= int(code) < 2 ** self.n_bits:
                raise ValueError(f"HammingIndex.search: key {code} does not fit in "
                                 f"{self.n_bits} bits")
            return int(code)
        a = _numpy(code, "HammingIndex.search")
        if a.ndim != 1 or a.shape[0] != self.n_bits:
            raise ValueError(f"HammingIndex.search: expected a code of {self.n_bits} bits "
                             f"(shape ({self.n_bits},)), got shape {a.shape}")
        return int(pack_bits(a[None])[0])

    def _ring(self, key: int, distance: int, scanned: Optional[np.ndarray]):
        """Ids of the items at exactly ``distance`` from ``key``, ascending."""
        found = []
        if comb(self.n_bits, distance) <= len(self.buckets):
            for flips in itertools.combinations(range(self.n_bits), distance):
                probe = key
                for bit in flips:
                    probe ^= 1 << bit
                ids = self.buckets.get(probe)
                if ids is not None:
                    found.append(ids)
        else:  # fewer distinct codes than probes: scan the table's codes
            for probe in self._keys[scanned == distance]:
                found.append(self.buckets[int(probe)])
        if not found:
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate(found)).astype(np.int64)

    def search(self, code, k: Optional[int] = None,
               radius: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The items nearest to ``code`` (a (bits,) bool/0-1 array or Tensor, or a packed int
        key) in Hamming distance: (ids, distances), ordered by distance, then id.

        ``radius`` alone: every item within that many bit flips. ``k`` alone: the first ``k``
        items, growing the radius until ``k`` are found (fewer if the index holds fewer).
        Both: at most ``k`` items within ``radius``."""
        if k is None and radius is None:
            raise ValueError("HammingIndex.search: give k, radius or both")
        if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool)
                              or k < 1):
            raise ValueError(f"HammingIndex.search: k must be a positive int, got {k!r}")
        if radius is not None and (not isinstance(radius, (int, np.integer))
                                   or isinstance(radius, bool) or radius < 0):
            raise ValueError(f"HammingIndex.search: radius must be a non-negative int, got "
                             f"{radius!r}")
        key = self._key(code)
        last = self.n_bits if radius is None else min(int(radius), self.n_bits)
        scanned = None
        ids, dists, count = [], [], 0
        for distance in range(last + 1):
            if scanned is None and comb(self.n_bits, distance) > len(self.buckets):
                scanned = _popcount(self._keys ^ np.uint64(key))
            ring = self._ring(key, distance, scanned)
            ids.append(ring)
            dists.append(np.full(len(ring), distance, dtype=np.int64))
            count += len(ring)
            if k is not None and count >= k:
                break
        ids, dists = np.concatenate(ids), np.concatenate(dists)
        if k is not None:
            ids, dists = ids[:k], dists[:k]
        return ids, dists

    def query(self, codes, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """``search(code, k)`` for each row of (Q, bits) ``codes``: (Q, k) ids and distances
        (k must not exceed the number of items)."""
        codes = _bits(codes, "HammingIndex.query")
        if codes.shape[1] != self.n_bits:
            raise ValueError(f"HammingIndex.query: codes have {codes.shape[1]} bits, the index "
                             f"{self.n_bits}")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or \
                not 1 <= k <= self._size:
            raise ValueError(f"HammingIndex.query: k must be between 1 and the {self._size} "
                             f"items, got {k!r}")
        keys = pack_bits(codes)
        out_ids = np.empty((len(codes), k), dtype=np.int64)
        out_d = np.empty((len(codes), k), dtype=np.int64)
        for i, key in enumerate(keys):
            out_ids[i], out_d[i] = self.search(int(key), k=k)
        return out_ids, out_d


def knn_search(database, queries, k: int, metric: str = "euclidean") -> np.ndarray:
    """Brute-force k nearest neighbours: (Q, k) ids into ``database`` (N, d), nearest first,
    ties by id. ``metric``: ``"euclidean"`` (float features) or ``"hamming"`` (binary codes)."""
    if metric == "hamming":
        dist = hamming_distances(queries, database).astype(np.float64)
    elif metric == "euclidean":
        db = _numpy(database, "knn_search").astype(np.float64)
        q = _numpy(queries, "knn_search").astype(np.float64)
        if db.ndim != 2 or q.ndim != 2 or db.shape[1] != q.shape[1]:
            raise ValueError(f"knn_search: database (N, d) and queries (Q, d) must share d, got "
                             f"{db.shape} and {q.shape}")
        # |q|^2 - 2 q.x + |x|^2, without |q|^2 (the same for every candidate of a query)
        dist = (db * db).sum(1)[None, :] - 2.0 * q @ db.T
    else:
        raise ValueError(f"knn_search: metric must be 'euclidean' or 'hamming', got {metric!r}")
    n = dist.shape[1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= n:
        raise ValueError(f"knn_search: k must be between 1 and the {n} database items, "
                         f"got {k!r}")
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def precision_at_k(retrieved_labels, query_labels) -> float:
    """Mean over queries of the fraction of the k retrieved items whose label is the query's:
    ``retrieved_labels`` (Q, k), ``query_labels`` (Q,)."""
    r = _numpy(retrieved_labels, "precision_at_k")
    q = _numpy(query_labels, "precision_at_k")
    if r.ndim != 2 or q.shape != (r.shape[0],):
        raise ValueError(f"precision_at_k: expected retrieved labels (Q, k) and query labels "
                         f"(Q,), got {r.shape} and {q.shape}")
    if r.size == 0:
        raise ValueError("precision_at_k: no queries or k = 0")
    return float((r == q[:, None]).mean())

