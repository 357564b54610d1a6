"""WeightedRandomSampler, StackDataset, default_convert (as torch.utils.data)."""
import collections

import numpy as np
import pytest

import pydl
from pydl.data import (DataLoader, StackDataset, TensorDataset, WeightedRandomSampler,
                       default_convert)


def test_weighted_sampler_frequencies_follow_weights():
    w = [0.0, 1.0, 3.0]
    s = WeightedRandomSampler(w, 4000, generator=pydl.Generator().manual_seed(0))
    idx = np.array(list(s))
    assert len(s) == len(idx) == 4000 and set(idx.tolist()) <= {1, 2}
    assert abs((idx == 2).mean() - 0.75) < 0.03
    again = list(WeightedRandomSampler(w, 4000, generator=pydl.Generator().manual_seed(0)))
    assert again == idx.tolist()


def test_weighted_sampler_without_replacement_and_with_a_loader():
    s = WeightedRandomSampler(pydl.tensor([1.0, 1.0, 5.0, 0.0]), 3, replacement=False)
    assert sorted(s) == [0, 1, 2]
    ds = TensorDataset(pydl.arange(4))
    got = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=s)]
    assert sorted(sum(got, [])) == [0, 1, 2]


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(weights=[1.0], num_samples=0), ValueError, "num_samples"),
    (dict(weights=[1.0], num_samples=2, replacement=1), ValueError, "replacement"),
    (dict(weights=[[1.0]], num_samples=1), ValueError, "1d"),
    (dict(weights=[1.0, -1.0], num_samples=1), RuntimeError, "invalid multinomial"),
    (dict(weights=[0.0, 0.0], num_samples=1), RuntimeError, "invalid multinomial"),
    (dict(weights=[1.0, 0.0], num_samples=3, replacement=False), RuntimeError,
     "without replacement"),
])
def test_weighted_sampler_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        WeightedRandomSampler(**kwargs)


def test_weighted_sampler_without_replacement_draws_heavy_first_zeros_last():
    g = pydl.Generator().manual_seed(1)
    firsts = [list(WeightedRandomSampler([1.0, 0.0, 9.0, 0.0], 4, replacement=False,
                                         generator=g)) for _ in range(400)]
    assert all(sorted(f) == [0, 1, 2, 3] and set(f[2:]) == {1, 3} for f in firsts)
    share = np.mean([f[0] == 2 for f in firsts])
    assert abs(share - 0.9) < 0.05


def test_stack_dataset_tuple_and_dict():
    a, b = TensorDataset(pydl.arange(3)), [10, 11, 12]
    t = StackDataset(a, b)
    assert len(t) == 3 and t[1][1] == 11 and t[1][0][0].item() == 1
    d = StackDataset(x=b, y=b)
    assert d[2] == {"x": 12, "y": 12}
    batch = next(iter(DataLoader(d, batch_size=3)))
    assert batch["x"].tolist() == [10, 11, 12]
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset(b, [1])
    with pytest.raises(ValueError, match="both types"):
        StackDataset(b, x=b)


def test_default_convert_recurses_and_keeps_structure():
    P = collections.namedtuple("P", "a b")
    data = {"arr": np.arange(3), "n": np.float32(2.5), "s": "x", "l": [np.ones(2), 3],
            "p": P(np.zeros(1), "k"), "od": collections.OrderedDict(z=np.ones(1))}
    out = default_convert(data)
    assert isinstance(out["arr"], pydl.Tensor) and out["arr"].tolist() == [0, 1, 2]
    assert isinstance(out["n"], pydl.Tensor) and out["n"].item() == 2.5
    assert out["s"] == "x" and out["l"][1] == 3 and isinstance(out["l"][0], pydl.Tensor)
    assert type(out["p"]) is P and isinstance(out["p"].a, pydl.Tensor) and out["p"].b == "k"
    assert type(out["od"]) is collections.OrderedDict
    strings = np.array(["a"])
    assert default_convert(strings) is strings
