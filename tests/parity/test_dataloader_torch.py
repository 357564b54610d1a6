"""DataLoader(num_workers > 0) against torch.utils.data: seeds, worker info, errors and
argument checks follow PyTorch's."""
import os
import sys

import numpy as np
import pytest

import pydl
import pydl.data._worker as pw

torch = pytest.importorskip("torch")
from torch.utils.data._utils.worker import _generate_state  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
import loader_workers_helpers as H  # noqa: E402


@pytest.mark.parametrize("base_seed", [0, 1, 12345, 2 ** 32 + 7, 2 ** 63 - 1])
@pytest.mark.parametrize("worker_id", [0, 1, 7])
def test_numpy_worker_seed_is_torchs(base_seed, worker_id):
    assert pw.generate_numpy_seed(base_seed, worker_id) == _generate_state(base_seed, worker_id)


class _TorchInfo(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = torch.utils.data.get_worker_info()
        return torch.tensor([info.id, info.num_workers, info.seed % 2 ** 62])


def test_worker_info_fields_and_seed_rule_match_torch():
    torch.manual_seed(0)
    t_rows = torch.cat(list(torch.utils.data.DataLoader(_TorchInfo(), batch_size=2,
                                                        num_workers=2))).tolist()
    pydl.manual_seed(0)
    p_rows = [r for b in pydl.data.DataLoader(H.WhoAmI(6), batch_size=2, num_workers=2)
              for r in zip(b["id"].tolist(), b["num_workers"].tolist(), b["seed"].tolist())]
    # the same round-robin assignment of batches to workers, and seeds base + id in both
    assert [r[:2] for r in t_rows] == [list(r[:2]) for r in p_rows]
    for rows in (t_rows, p_rows):
        seeds = {r[0]: r[2] for r in rows}
        assert seeds[1] - seeds[0] == 1
    assert set(pydl.data.WorkerInfo.__dataclass_fields__) >= {"id", "num_workers", "seed",
                                                              "dataset"}


class _TorchRaises(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 3:
            raise ValueError(f"sample {i} is broken")
        return i


def test_worker_exception_reads_as_torchs():
    with pytest.raises(ValueError) as t_err:
        list(torch.utils.data.DataLoader(_TorchRaises(), batch_size=2, num_workers=2))
    with pytest.raises(ValueError) as p_err:
        list(pydl.data.DataLoader(H.RaisesAt(4, bad=3), batch_size=2, num_workers=2))
    t_head, p_head = str(t_err.value).split("\n")[:2], str(p_err.value).split("\n")[:2]
    assert t_head == p_head == ["Caught ValueError in DataLoader worker process 1.",
                                "Original Traceback (most recent call last):"]
    assert str(t_err.value).rstrip().endswith("ValueError: sample 3 is broken")
    assert str(p_err.value).rstrip().endswith("ValueError: sample 3 is broken")


@pytest.mark.parametrize("kwargs", [
    dict(num_workers=-1), dict(prefetch_factor=2), dict(persistent_workers=True),
    dict(num_workers=1, prefetch_factor=-1), dict(timeout=-1),
    dict(num_workers=1, multiprocessing_context="nope"), dict(multiprocessing_context="fork"),
])
def test_argument_errors_match_torch(kwargs):
    with pytest.raises(Exception) as t_err:
        torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4)), **kwargs)
    with pytest.raises(Exception) as p_err:
        pydl.data.DataLoader(pydl.data.TensorDataset(pydl.zeros(4)), **kwargs)
    assert type(p_err.value) is type(t_err.value), (t_err.value, p_err.value)


def test_same_batches_as_torch_for_a_sequential_loader():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    t = [b.numpy() for (b,) in torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x)), batch_size=4, num_workers=2)]
    p = [b.numpy() for (b,) in pydl.data.DataLoader(
        pydl.data.TensorDataset(pydl.from_numpy(x)), batch_size=4, num_workers=2)]
    assert len(t) == len(p) == 3
    for a, b in zip(t, p):
        np.testing.assert_array_equal(a, b)


class _TorchStream(torch.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        for i in range(self.n):
            if info is None or i % info.num_workers == info.id:
                yield i


@pytest.mark.parametrize("num_workers", [0, 1, 2])
@pytest.mark.parametrize("batch_size,drop_last", [(2, False), (3, True), (None, False)])
def test_iterable_dataset_batches_in_torchs_order(num_workers, batch_size, drop_last):
    t_loader = torch.utils.data.DataLoader(_TorchStream(11), batch_size=batch_size,
                                           drop_last=drop_last, num_workers=num_workers)
    p_loader = pydl.data.DataLoader(H.Stream(11), batch_size=batch_size, drop_last=drop_last,
                                    num_workers=num_workers)
    t = [b.tolist() if hasattr(b, "tolist") else b for b in t_loader]
    p = [b["i"].tolist() if hasattr(b["i"], "tolist") else b["i"] for b in p_loader]
    assert p == t
    assert len(p_loader) == len(t_loader)


@pytest.mark.parametrize("kwargs", [dict(shuffle=True), dict(sampler=[0, 1]),
                                    dict(batch_sampler=[[0]]),
                                    dict(batch_size=None, drop_last=True)])
def test_iterable_dataset_argument_errors_match_torch(kwargs):
    with pytest.raises(Exception) as t_err:
        torch.utils.data.DataLoader(_TorchStream(3), **kwargs)
    with pytest.raises(Exception) as p_err:
        pydl.data.DataLoader(H.Stream(3), **kwargs)
    assert type(p_err.value) is type(t_err.value)


def test_every_public_torch_utils_data_name_but_datapipes_and_distributed_exists():
    import pydl.utils.data as pud
    import torch.utils.data as tud

    skipped = {"DistributedSampler"}  # with pydl.distributed, not here
    missing = [n for n in tud.__all__ if not n.startswith("_") and "DataPipe" not in n and
               "datapipe" not in n and "validation" not in n and n not in skipped and
               n not in ("DataChunk", "non_deterministic", "guaranteed_datapipes_determinism")
               and not hasattr(pud, n)]
    assert missing == []


@pytest.mark.parametrize("kwargs", [
    dict(weights=[1.0], num_samples=0), dict(weights=[1.0], num_samples=2, replacement=1),
    dict(weights=[[1.0]], num_samples=1), dict(weights=[1.0, -1.0], num_samples=1),
    dict(weights=[1.0, 0.0], num_samples=3, replacement=False)])
def test_weighted_sampler_errors_match_torch(kwargs):
    def outcome(lib, weights, **kw):
        try:
            list(lib.utils.data.WeightedRandomSampler(
                lib.tensor(weights, dtype=lib.float64), **kw))
        except Exception as e:
            return type(e)
        return None
    assert outcome(pydl, **kwargs) is outcome(torch, **kwargs) is not None


def test_weighted_sampler_without_replacement_uses_zero_weights_last_as_torch():
    for lib in (torch, pydl):
        got = list(lib.utils.data.WeightedRandomSampler(lib.tensor([1.0, 0.0, 0.0]), 3,
                                                        replacement=False))
        assert got[0] == 0 and sorted(got) == [0, 1, 2]


def test_stack_dataset_and_default_convert_match_torch():
    a = [1, 2, 3]
    assert pydl.utils.data.StackDataset(a, a)[1] == torch.utils.data.StackDataset(a, a)[1]
    assert pydl.utils.data.StackDataset(x=a)[2] == torch.utils.data.StackDataset(x=a)[2]
    data = {"arr": np.arange(3), "s": "x", "l": [np.ones(2), 3]}
    p, t = pydl.utils.data.default_convert(data), torch.utils.data.default_convert(data)
    assert p["arr"].tolist() == t["arr"].tolist() and str(p["arr"].dtype) == "int64"
    assert p["s"] == t["s"] and p["l"][1] == t["l"][1] and p["l"][0].tolist() == t["l"][0].tolist()
