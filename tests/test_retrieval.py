"""pydl.retrieval: HammingIndex against brute-force search, k-NN and precision@k against NumPy."""
import numpy as np
import pytest

import pydl
from pydl.retrieval import (HammingIndex, hamming_distances, knn_search, pack_bits,
                            precision_at_k)


def brute_force(codes, query, k=None, radius=None):
    """Every item sorted by (Hamming distance, id), filtered by radius, cut at k."""
    d = (codes != query[None]).sum(1)
    order = np.lexsort((np.arange(len(codes)), d))
    if radius is not None:
        order = order[d[order] <= radius]
    if k is not None:
        order = order[:k]
    return order, d[order]


@pytest.mark.parametrize("n,bits", [(1, 1), (40, 4), (200, 12), (300, 30), (97, 64)])
def test_hamming_index_matches_brute_force(rng, n, bits):
    # few distinct codes per bit count, so buckets hold several items and rings tie
    base = rng.random((max(2, n // 4), bits)) < 0.5
    codes = base[rng.integers(0, len(base), n)] ^ (rng.random((n, bits)) < 0.05)
    index = HammingIndex(codes)
    assert len(index) == n and index.n_bits == bits
    for q in range(6):
        query = codes[q % n] if q % 2 else rng.random(bits) < 0.5
        for k, radius in ((1, None), (7, None), (n, None), (None, 0), (None, 2), (5, 3)):
            if k is not None and k > n:
                continue
            ids, dist = index.search(query, k=k, radius=radius)
            ref_ids, ref_dist = brute_force(codes, query, k, radius)
            np.testing.assert_array_equal(ids, ref_ids)
            np.testing.assert_array_equal(dist, ref_dist)


def test_hamming_index_scan_path_equals_probe_path(rng):
    """Few distinct codes of 24 bits: radius 3 needs 2,024 probes, more than the 10 distinct
    codes, so the index scans them; the result is the brute force's either way."""
    codes = np.repeat(rng.random((10, 24)) < 0.5, 3, axis=0)
    index = HammingIndex(codes)
    query = rng.random(24) < 0.5
    ids, dist = index.search(query, k=30)
    ref_ids, ref_dist = brute_force(codes, query, 30)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(dist, ref_dist)


def test_hamming_index_buckets_and_keys():
    codes = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 0], [0, 1, 1]])
    index = HammingIndex(codes)
    assert set(index.buckets) == {5, 0, 6}
    np.testing.assert_array_equal(index.buckets[5], [0, 1])
    np.testing.assert_array_equal(pack_bits(codes), [5, 5, 0, 6])
    ids, dist = index.search(5, radius=1)  # a packed key works as a query
    np.testing.assert_array_equal(ids, [0, 1])
    ids, dist = index.search(np.array([True, False, True]), k=4)
    np.testing.assert_array_equal(ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(dist, [0, 0, 2, 2])
    ids, _ = index.search(pydl.tensor(np.array([0, 1, 1])), radius=0)  # a Tensor query
    np.testing.assert_array_equal(ids, [3])
    assert repr(index) == "HammingIndex(items=4, bits=3, distinct_codes=3)"
    qi, _ = index.query(codes[:2], k=3)
    np.testing.assert_array_equal(qi, [[0, 1, 2], [0, 1, 2]])


def test_hamming_index_errors():
    index = HammingIndex(np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="k, radius or both"):
        index.search(np.zeros(4, bool))
    with pytest.raises(ValueError, match="4 bits"):
        index.search(np.zeros(5, bool), k=1)
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.zeros(4, bool), k=0)
    with pytest.raises(ValueError, match="radius"):
        index.search(np.zeros(4, bool), radius=-1)
    with pytest.raises(ValueError, match="fit in 4 bits"):
        index.search(16, k=1)
    with pytest.raises(ValueError, match="0/1"):
        HammingIndex(np.full((2, 3), 2))
    with pytest.raises(ValueError, match="1 to 64 bits"):
        HammingIndex(np.zeros((2, 65), bool))
    with pytest.raises(ValueError, match=r"\(N, bits\)"):
        HammingIndex(np.zeros(4, bool))
    with pytest.raises(ValueError, match="between 1 and the 3"):
        index.query(np.zeros((1, 4), bool), k=4)


def test_hamming_distances_and_knn(rng):
    a, b = rng.random((5, 9)) < 0.5, rng.random((8, 9)) < 0.5
    np.testing.assert_array_equal(hamming_distances(a, b), (a[:, None] != b[None]).sum(2))
    ids = knn_search(b, a, 3, metric="hamming")
    for i in range(5):
        np.testing.assert_array_equal(ids[i], brute_force(b, a[i], 3)[0])
    x, q = rng.standard_normal((30, 4)), rng.standard_normal((6, 4))
    d = ((q[:, None] - x[None]) ** 2).sum(2)
    np.testing.assert_array_equal(knn_search(x, q, 5), np.argsort(d, 1, kind="stable")[:, :5])
    np.testing.assert_array_equal(knn_search(pydl.tensor(x), pydl.tensor(q), 5),
                                  knn_search(x, q, 5))
    with pytest.raises(ValueError, match="metric"):
        knn_search(x, q, 2, metric="cosine")
    with pytest.raises(ValueError, match="share d"):
        knn_search(x, q[:, :3], 2)
    with pytest.raises(ValueError, match="k must be"):
        knn_search(x, q, 31)


def test_precision_at_k():
    retrieved = np.array([[1, 1, 2], [0, 3, 3]])
    assert precision_at_k(retrieved, np.array([1, 3])) == pytest.approx((2 / 3 + 2 / 3) / 2)
    with pytest.raises(ValueError, match=r"\(Q, k\)"):
        precision_at_k(retrieved, np.array([1]))
