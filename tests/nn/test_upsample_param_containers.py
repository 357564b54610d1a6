"""F.interpolate / nn.Upsample against float64 loops written here from the source-index rules
(nearest, linear, bilinear, align_corners, size or scale_factor), gradcheck/gradgradcheck,
non-contiguous and zero-size inputs, errors; nn.ParameterList / nn.ParameterDict registration,
names and state dicts."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import gradcheck, gradgradcheck
from pydl.testing import assert_close

rng = np.random.default_rng(5)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def src_nearest(o, n_in, n_out, sf):
    if n_out == n_in:
        return o
    scale = np.float32(1.0 / sf) if sf else np.float32(n_in) / np.float32(n_out)
    return min(int(math.floor(np.float32(o) * scale)), n_in - 1)


def taps_linear(o, n_in, n_out, sf, align):
    """[(index, weight)] that output o reads (PyTorch's area_pixel_compute_source_index)."""
    if align:
        s = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / sf if sf else n_in / n_out
        s = max((o + 0.5) * scale - 0.5, 0.0)
    i0 = min(int(math.floor(s)), n_in - 1)
    lam = s - i0
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    return [(i0, 1 - lam), (i1, lam)]


def reference(x, sizes, factors, mode, align):
    spatial = x.shape[2:]
    out = np.zeros(x.shape[:2] + tuple(sizes))
    for pos in np.ndindex(*sizes):
        per_axis = []
        for o, n_in, n_out, f in zip(pos, spatial, sizes, factors):
            if mode == "nearest":
                per_axis.append([(src_nearest(o, n_in, n_out, f), 1.0)])
            else:
                per_axis.append(taps_linear(o, n_in, n_out, f, align))
        acc = 0
        for combo in np.ndindex(*[len(a) for a in per_axis]):
            idx = tuple(per_axis[d][c][0] for d, c in enumerate(combo))
            w = np.prod([per_axis[d][c][1] for d, c in enumerate(combo)])
            acc = acc + w * x[(slice(None), slice(None)) + idx]
        out[(slice(None), slice(None)) + pos] = acc
    return out


CASES = [
    ((2, 3, 5, 7), dict(scale_factor=2), "nearest", None),
    ((1, 2, 4, 3), dict(size=(7, 5)), "nearest", None),
    ((2, 1, 6, 6), dict(scale_factor=0.5), "nearest", None),
    ((1, 2, 5), dict(size=11), "nearest", None),
    ((2, 2, 4, 5), dict(scale_factor=1.7), "bilinear", False),
    ((1, 3, 5, 4), dict(size=(8, 3)), "bilinear", True),
    ((1, 1, 3, 3), dict(size=(1, 5)), "bilinear", True),
    ((2, 2, 7), dict(scale_factor=2.5), "linear", False),
    ((1, 1, 1, 1), dict(size=(3, 2)), "bilinear", False),
    ((0, 2, 3, 3), dict(scale_factor=2), "bilinear", False),
]


@pytest.mark.parametrize("shape,kw,mode,align", CASES,
                         ids=[f"{s}-{m}-{k}-{a}" for s, k, m, a in CASES])
def test_interpolate(shape, kw, mode, align):
    x = rng.standard_normal(shape)
    nd = len(shape) - 2
    if "size" in kw:
        sizes = kw["size"] if isinstance(kw["size"], tuple) else (kw["size"],) * nd
        factors = (None,) * nd
    else:
        factors = (kw["scale_factor"],) * nd
        sizes = tuple(int(math.floor(n * f)) for n, f in zip(shape[2:], factors))
    out = F.interpolate(t64(x, False), mode=mode, align_corners=align, **kw)
    assert out.shape == shape[:2] + tuple(sizes)
    assert_close(out, reference(x, sizes, factors, mode, align), rtol=1e-12, atol=1e-12)
    fn = lambda t: F.interpolate(t, mode=mode, align_corners=align, **kw)  # noqa: E731
    assert gradcheck(fn, [t64(x)])
    assert gradgradcheck(lambda t: fn(t) ** 2, [t64(x)])


def test_upsample_module_float32_non_contiguous():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    xt = pydl.tensor(x).transpose(2, 3)  # (2, 3, 5, 4), strided
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    y = up(xt)
    assert y.dtype == np.float32 and y.shape == (2, 3, 10, 8)
    ref = reference(np.swapaxes(x, 2, 3).astype(np.float64), (10, 8), (2.0, 2.0), "bilinear",
                    False)
    assert_close(y, ref, rtol=1e-5, atol=1e-5)
    assert "scale_factor=2.0" in repr(up)
    assert nn.Upsample(size=(3, 3))(pydl.tensor(x)).shape == (2, 3, 3, 3)


def test_interpolate_errors():
    x = pydl.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D input"):
        F.interpolate(pydl.randn(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x, size=(2, 2, 2))
    with pytest.raises(NotImplementedError, match="'bicubic' is not supported"):
        F.interpolate(x, scale_factor=2, mode="bicubic")


# -- ParameterList / ParameterDict ----------------------------------------------------------------
class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.plist = nn.ParameterList([nn.Parameter(pydl.ones(2)), pydl.zeros(3)])
        self.pdict = nn.ParameterDict({"a": nn.Parameter(pydl.ones(1)), "b": pydl.zeros(2, 2)})


def test_parameter_containers_register_with_torch_names():
    h = Holder()
    names = [n for n, _ in h.named_parameters()]
    assert names == ["plist.0", "plist.1", "pdict.a", "pdict.b"]
    assert list(h.state_dict()) == names
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in h.parameters())
    h.plist.append(pydl.ones(4))
    h.pdict["c"] = nn.Parameter(pydl.ones(5))
    assert len(h.plist) == 3 and len(h.pdict) == 3 and "c" in h.pdict
    assert [n for n, _ in h.named_parameters()][-2:] == ["plist.2", "pdict.c"] or \
        "plist.2" in dict(h.named_parameters())
    assert h.plist[-1].shape == (4,) and h.pdict["c"].shape == (5,)
    assert list(h.pdict.keys()) == ["a", "b", "c"]
    h.plist[0] = pydl.full((2,), 7.0)
    assert h.plist[0].tolist() == [7.0, 7.0]
    sd = h.state_dict()
    h2 = Holder()
    h2.plist.append(pydl.zeros(4))
    h2.pdict["c"] = nn.Parameter(pydl.zeros(5))
    h2.load_state_dict(sd)
    assert h2.plist[0].tolist() == [7.0, 7.0]
    # gradients reach them
    loss = sum(p.sum() for p in h.plist) + sum(p.sum() for p in h.pdict.values())
    loss.backward()
    assert h.plist[1].grad.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="Parameters or Tensors"):
        h.plist.append(3.0)
    with pytest.raises(IndexError, match="out of range"):
        h.plist[5]
    del h.pdict["a"]
    assert "a" not in h.pdict and "pdict.a" not in h.state_dict()
