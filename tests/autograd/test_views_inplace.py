"""Views share storage with their base, in-place writes are version-checked, and gradients flow
through in-place writes to views as in PyTorch (CopySlices). Values are checked against NumPy
written here; each case is what torch does (checked by hand against torch 2.13)."""
import numpy as np
import pytest

import pydl
from pydl.testing import assert_close


def leaf(values, dtype=pydl.float64):
    return pydl.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=True)


def test_write_through_a_view_changes_the_base_without_grad():
    x = pydl.zeros(5)
    v = x[1:3]
    v.add_(10)
    assert_close(x, [0, 10, 10, 0, 0])
    x.mul_(3)
    assert_close(v, [30, 30])  # a write to the base is seen through an existing view
    r = x.reshape(5)
    r[0] = 7
    assert float(x[0]) == 7


def test_write_through_a_view_while_recording_changes_the_base_and_its_gradient():
    a = leaf([1.0, 2.0, 3.0, 4.0])
    x = a * 1
    v = x[0:2]
    v.add_(10)
    assert_close(x, [11, 12, 3, 4])
    (x * pydl.tensor([1.0, 2.0, 3.0, 4.0], dtype=pydl.float64)).sum().backward()
    assert_close(a.grad, [1, 2, 3, 4])


def test_copy_slices_gradient_of_a_multiplied_view():
    a, w = leaf([1.0, 2.0, 3.0, 4.0]), leaf([2.0, 3.0])
    x = a * 1
    x[1:3].mul_(w)
    assert_close(x, [1, 4, 9, 4])
    (x * x).sum().backward()  # d/da_i: 2 x_i (w_j)^2 a_i inside the view, 2 a_i outside
    assert_close(a.grad, [2, 2 * 4 * 2, 2 * 9 * 3, 8])
    assert_close(w.grad, [2 * 4 * 2, 2 * 9 * 3])


def test_base_written_in_place_is_seen_by_an_existing_view_with_its_gradient():
    a = leaf([1.0, 2.0, 3.0])
    x = a * 1
    v = x[1:]
    x.mul_(3)
    assert_close(v, [6, 9])
    (v * v).sum().backward()  # v = 3 a[1:], d/da = 18 a
    assert_close(a.grad, [0, 36, 54])


def test_view_of_a_view_and_setitem_through_it():
    a = leaf(np.arange(6.0))
    x = a.reshape(2, 3) * 1
    row = x[1]
    row[0:2] = pydl.tensor([0.0, 0.0], dtype=pydl.float64)
    assert_close(x, [[0, 1, 2], [0, 0, 5]])
    x.sum().backward()
    assert_close(a.grad, [1, 1, 1, 0, 0, 1])


def test_in_place_on_a_leaf_or_a_view_of_a_leaf_raises():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        w[0:1].add_(1)
    with pydl.no_grad():
        w[0:1].add_(1)  # parameter updates go through no_grad
    assert_close(w, [2, 2])


def test_saved_tensor_modified_in_place_raises_version_error():
    a = leaf([0.5, -0.5])
    y = a.sigmoid()  # saves its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation.*Sigmoid"):
        y.sum().backward()
    b = leaf([1.0, 2.0])
    x = b * 1
    z = x * x  # saves x
    x[0:1].add_(1)  # writes x's memory through a view
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_in_place_op_needing_a_wider_dtype_raises():
    i = pydl.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i.mul_(1.5)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i.add_(pydl.tensor([0.5, 0.5, 0.5]))
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        i /= 2
    assert i.tolist() == [1, 2, 3]  # nothing was written
    i.add_(2)
    assert i.tolist() == [3, 4, 5]
    f = pydl.tensor([1.0, 2.0])
    f.add_(pydl.tensor([1.0, 1.0], dtype=pydl.float64))  # same category: allowed
    assert f.dtype == pydl.float32


def test_double_backward_through_an_in_place_write():
    a = leaf([0.5, 1.5, -1.0])
    x = a * 1
    x[0:2].mul_(x[0:2].detach() * 0 + 2)  # x = (2 a0, 2 a1, a2)
    y = (x ** 3).sum()
    (g,) = pydl.autograd.grad(y, a, create_graph=True)
    assert_close(g, [3 * 8 * 0.25, 3 * 8 * 2.25, 3 * 1.0])
    (h,) = pydl.autograd.grad(g.sum(), a)
    assert_close(h, [6 * 8 * 0.5, 6 * 8 * 1.5, 6 * -1.0])
