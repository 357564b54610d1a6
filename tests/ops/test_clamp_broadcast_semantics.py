"""clamp's dtype and tie gradients, and the error for shapes that do not broadcast, as torch."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck, gradgradcheck


@pytest.mark.parametrize("lo,hi", [(2.5, None), (None, 1.5), (0, 2), (1, 2.5), (-1.0, 9)])
def test_clamp_number_bounds_promote_as_torch(lo, hi):
    torch = pytest.importorskip("torch")
    for dtype in ("int64", "int32", "uint8", "float32", "float64"):  # torch has no bool clamp
        x = np.array([0, 1, 2, 3]).astype(dtype)
        ours = pydl.clamp(pydl.tensor(x), lo, hi)
        theirs = torch.clamp(torch.tensor(x), lo, hi)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (dtype, lo, hi)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_clamp_tensor_bounds_values_dtype_and_tie_gradients_as_torch():
    torch = pytest.importorskip("torch")
    x = np.array([0.5, 2.0, 3.0, 5.0, 7.0, np.nan])
    lo = np.array([2.0, 2.0, 1.0, 6.0, 1.0, 0.0])
    hi = np.array([4.0, 4.0, 3.0, 5.5, 4.0, 1.0])
    results = []
    for lib in (pydl, torch):
        xs = lib.tensor(x, requires_grad=True)
        los = lib.tensor(lo, requires_grad=True)
        his = lib.tensor(hi, requires_grad=True)
        out = lib.clamp(xs, los, his)
        out.backward(lib.ones(6, dtype=lib.float64))
        results.append([out.detach().numpy(), xs.grad.numpy(), los.grad.numpy(),
                        his.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    # a float64 bound lifts a float32 input, as torch.clamp
    out = pydl.clamp(pydl.ones(3), pydl.zeros(3, dtype=pydl.float64))
    assert out.dtype == pydl.float64


def test_clamp_tensor_bounds_gradcheck():
    rng = np.random.default_rng(0)
    x = pydl.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    lo = pydl.tensor(rng.standard_normal((1, 5)) - 0.5, requires_grad=True)
    hi = pydl.tensor(rng.standard_normal((3, 1)) + 0.5, requires_grad=True)
    assert gradcheck(lambda a, b, c: pydl.clamp(a, b, c), (x, lo, hi))
    assert gradgradcheck(lambda a, b, c: pydl.clamp(a, b, c), (x, lo, hi))
    assert gradcheck(lambda a, b: pydl.clamp(a, min=b), (x, lo))
    assert gradcheck(lambda a, c: pydl.clamp(a, max=c), (x, hi))


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (4, 5)), ((3, 1, 2), (4, 3)),
                                   ((3000, 100), (4000, 100)), ((0, 3), (2, 3))])
def test_shapes_that_do_not_broadcast_raise_torchs_error(sa, sb):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(*sa) + torch.ones(*sb)
    for op in (pydl.add, pydl.mul, pydl.sub, pydl.div, pydl.maximum):
        with pytest.raises(RuntimeError) as ours:
            op(pydl.ones(*sa), pydl.ones(*sb))
        assert str(ours.value) == str(theirs.value)


def test_broadcasting_shapes_still_work():
    a = pydl.ones(3, 1, 2) + pydl.ones(4, 1)
    assert a.shape == (3, 4, 2)
