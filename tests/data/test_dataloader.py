"""Dataset, samplers, DataLoader, random_split, KFold."""
import numpy as np
import pytest

import pydl
from pydl.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, KFold, RandomSampler,
                       SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                       default_collate, random_split)


def _dataset(n, rng=None):
    rng = rng or np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = np.arange(n, dtype=np.int64)  # the label is the sample's index: easy to track
    return TensorDataset(pydl.from_numpy(x), pydl.from_numpy(y)), x, y


class ListDataset(Dataset):
    """A dataset without a batch path: DataLoader must fetch samples one by one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.full((2,), i, dtype=np.float32), "y": i, "name": f"s{i}"}


def test_tensor_dataset_indexing_and_errors():
    ds, x, y = _dataset(7)
    assert len(ds) == 7
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi.numpy(), x[3])
    assert yi.item() == 3
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(pydl.zeros(3, 2), pydl.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


@pytest.mark.parametrize("n,batch_size,drop_last", [(0, 4, False), (1, 4, False), (13, 4, False),
                                                    (13, 4, True), (12, 4, True), (13, 13, False),
                                                    (7, 1, False), (5, 8, True)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(n, batch_size, drop_last, shuffle):
    ds, x, y = _dataset(n)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    expected_batches = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == expected_batches
    for _ in range(2):  # two epochs
        seen, batches = [], 0
        for xb, yb in loader:
            batches += 1
            assert xb.shape[0] == yb.shape[0] <= batch_size
            if drop_last:
                assert xb.shape[0] == batch_size
            assert xb.dtype == np.float32 and yb.dtype == np.int64
            np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])  # rows stay paired
            seen.extend(yb.tolist())
        assert batches == expected_batches
        if drop_last:
            assert len(seen) == len(set(seen)) == (n // batch_size) * batch_size
        else:
            assert sorted(seen) == list(range(n))
        if not shuffle:
            assert seen == sorted(seen)


def test_shuffle_reproducible_under_seed_and_differs_between_epochs():
    ds, _, _ = _dataset(50)

    def orders(make_loader):
        loader = make_loader()
        return [np.concatenate([yb.numpy() for _, yb in loader]) for _ in range(3)]

    pydl.manual_seed(123)
    a = orders(lambda: DataLoader(ds, batch_size=8, shuffle=True))
    pydl.manual_seed(123)
    b = orders(lambda: DataLoader(ds, batch_size=8, shuffle=True))
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1])  # a new permutation each epoch
    # An explicit generator gives the same orders regardless of the global seed.
    c = orders(lambda: DataLoader(ds, batch_size=8, shuffle=True,
                                  generator=pydl.Generator().manual_seed(5)))
    pydl.manual_seed(999)
    d = orders(lambda: DataLoader(ds, batch_size=8, shuffle=True,
                                  generator=pydl.Generator().manual_seed(5)))
    for ec, ed in zip(c, d):
        np.testing.assert_array_equal(ec, ed)


def test_generator_state_resumes_the_order():
    ds, _, _ = _dataset(20)
    gen = pydl.Generator().manual_seed(1)
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=gen)
    list(loader)
    state = gen.get_state()
    second = np.concatenate([yb.numpy() for _, yb in loader])
    gen2 = pydl.Generator()
    gen2.set_state(state)
    again = np.concatenate([yb.numpy() for _, yb in DataLoader(ds, batch_size=5, shuffle=True,
                                                               generator=gen2)])
    np.testing.assert_array_equal(second, again)


def test_slow_path_collates_dicts_numbers_strings():
    loader = DataLoader(ListDataset(5), batch_size=2)
    batches = list(loader)
    assert len(batches) == 3
    b = batches[1]
    np.testing.assert_array_equal(b["x"].numpy(), [[2, 2], [3, 3]])
    assert b["y"].dtype == np.int64 and b["y"].tolist() == [2, 3]
    assert b["name"] == ["s2", "s3"]
    assert batches[2]["y"].tolist() == [4]


def test_fast_path_matches_default_collate():
    ds, _, _ = _dataset(11)
    idx = [3, 0, 7, 7, 10]
    fast = ds._get_batch(np.asarray(idx))
    slow = default_collate([ds[i] for i in idx])
    assert isinstance(slow, list) and len(slow) == len(fast) == 2
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f.numpy(), s.numpy())
        assert f.dtype == s.dtype


def test_default_collate_types_and_errors():
    out = default_collate([(1, 2.5, True), (3, 4.5, False)])
    assert out[0].dtype == np.int64 and out[1].dtype == np.float64 and out[2].dtype == np.bool_
    arr = default_collate([np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)])
    assert isinstance(arr, pydl.Tensor) and arr.shape == (2, 2, 3)
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([pydl.zeros(2), pydl.zeros(3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="empty batch"):
        default_collate([])


def test_custom_collate_and_no_batching():
    ds, x, _ = _dataset(4)
    loader = DataLoader(ds, batch_size=3, collate_fn=lambda samples: len(samples))
    assert list(loader) == [3, 1]
    single = list(DataLoader(ds, batch_size=None))
    assert len(single) == 4 and single[2][0].shape == (3,)


def test_loader_argument_errors():
    ds, _, _ = _dataset(4)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-2)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(ds), 2, False))


def test_batch_sampler_and_samplers():
    ds, _, _ = _dataset(10)
    loader = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 4, False))
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    gen = pydl.Generator().manual_seed(0)
    sub = list(SubsetRandomSampler([1, 5, 9], generator=gen))
    assert sorted(sub) == [1, 5, 9]
    rep = list(RandomSampler(ds, replacement=True, num_samples=25, generator=gen))
    assert len(rep) == 25 and all(0 <= i < 10 for i in rep)
    more = list(RandomSampler(ds, num_samples=23, generator=gen))
    assert len(more) == 23 and sorted(more[:10]) == list(range(10))
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)


def test_subset_and_concat():
    ds, x, _ = _dataset(10)
    sub = Subset(ds, [9, 2, 4])
    assert len(sub) == 3 and sub[0][1].item() == 9
    loader = DataLoader(sub, batch_size=2)
    assert [yb.tolist() for _, yb in loader] == [[9, 2], [4]]
    nested = Subset(sub, [2, 0])
    assert [yb.tolist() for _, yb in DataLoader(nested, batch_size=5)] == [[4, 9]]
    with pytest.raises(IndexError, match="out of range"):
        Subset(ds, [10])
    cat = ConcatDataset([Subset(ds, [0, 1]), Subset(ds, [5, 6, 7])])
    assert len(cat) == 5 and cat[2][1].item() == 5 and cat[-1][1].item() == 7
    with pytest.raises(IndexError):
        cat[5]
    assert len(ds + ds) == 20
    # ConcatDataset has no batch path: the loader falls back to per-sample collation
    assert [yb.tolist() for _, yb in DataLoader(cat, batch_size=3)] == [[0, 1, 5], [6, 7]]


def test_random_split_lengths_fractions_and_reproducibility():
    ds, _, _ = _dataset(10)
    a, b = random_split(ds, [7, 3], generator=pydl.Generator().manual_seed(0))
    ids = sorted(a.indices + b.indices)
    assert ids == list(range(10)) and len(a) == 7 and len(b) == 3
    c, d = random_split(ds, [7, 3], generator=pydl.Generator().manual_seed(0))
    assert c.indices == a.indices and d.indices == b.indices
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(_dataset(11)[0], [0.5, 0.5])  # remainder dealt round-robin
    assert [len(p) for p in parts] == [6, 5]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [5, 4])


@pytest.mark.parametrize("n,k", [(10, 2), (11, 3), (7, 7), (23, 5)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_kfold_partitions(n, k, shuffle):
    kf = KFold(k, shuffle=shuffle, random_state=0 if shuffle else None)
    folds = list(kf.split(n))
    assert len(folds) == k == kf.get_n_splits()
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(n))  # each sample validates exactly once
    sizes = [len(v) for _, v in folds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    for train, val in folds:
        assert not set(train.tolist()) & set(val.tolist())
        assert len(train) + len(val) == n
    if not shuffle:
        np.testing.assert_array_equal(folds[0][1], np.arange(sizes[0]))
    again = list(KFold(k, shuffle=shuffle, random_state=0 if shuffle else None).split(n))
    for (_, v1), (_, v2) in zip(folds, again):
        np.testing.assert_array_equal(v1, v2)


def test_kfold_errors():
    with pytest.raises(ValueError, match="n_splits"):
        KFold(1)
    with pytest.raises(ValueError, match="greater than the number of samples"):
        list(KFold(5).split(3))
    with pytest.raises(ValueError, match="random_state"):
        KFold(3, random_state=1)
