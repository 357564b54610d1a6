"""Indexing with ints, slices, None, Ellipsis, integer arrays and boolean masks; gradients
scatter back and repeated indices accumulate; setitem."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.testing import assert_close

A = np.random.default_rng(0).standard_normal((4, 5, 3))


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


KEYS = [
    1, -1, (1, 2), slice(1, 3), (slice(None), 0), (Ellipsis, 1), (None, 2), (slice(None, None, 2),),
    ([0, 2, 2],), (slice(None), [4, 0, 4]), (np.array([[0, 1], [3, 3]]),), ([0, 1], [2, 3]),
    (1, Ellipsis, None),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_getitem_forward_and_grad(key):
    assert_close(t64(A, False)[key], A[key])
    assert gradcheck(lambda x: x[key], [t64(A)])


def test_boolean_mask_and_tensor_indices():
    mask = A > 0
    assert_close(t64(A, False)[pydl.tensor(mask)], A[mask])
    assert gradcheck(lambda x: x[pydl.tensor(mask)], [t64(A)])
    idx = pydl.tensor([3, 0])
    assert_close(t64(A, False)[idx], A[[3, 0]])


def test_repeated_indices_accumulate():
    x = t64([1.0, 2.0, 3.0])
    x[[0, 0, 2]].sum().backward()
    assert_close(x.grad, [2.0, 0.0, 1.0])


def test_index_errors_name_the_shape():
    with pytest.raises(IndexError, match=r"\(4, 5, 3\)"):
        pydl.tensor(A)[7]
    with pytest.raises(IndexError, match="long, int or bool"):
        pydl.tensor(A)[pydl.tensor([0.5])]


def test_setitem_without_grad_writes_in_place():
    x = pydl.zeros(3, 3)
    x[1] = 2.0
    x[:, 2] = pydl.tensor([7.0, 8.0, 9.0])
    assert x.tolist() == [[0, 0, 7], [2, 2, 8], [0, 0, 9]]
    assert x._version == 2


def test_setitem_with_grad_is_differentiable():
    w = t64([1.0, 2.0])

    def f(w):
        base = pydl.zeros(3, dtype=pydl.float64) + 0.0
        y = base * 1.0
        y[1:] = w * 3.0
        return y * pydl.tensor([1.0, 2.0, 4.0], dtype=pydl.float64)

    assert_close(f(t64([1.0, 2.0], False)), [0, 6, 24])
    assert gradcheck(f, [w])


def test_setitem_on_leaf_requiring_grad_raises():
    w = pydl.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0] = 1.0
    with pydl.no_grad():
        w[0] = 1.0
    assert w[0].item() == 1.0


def test_gather_index_select_masked_fill():
    a = np.random.default_rng(1).standard_normal((3, 4))
    idx = np.array([[0, 0], [3, 1], [2, 2]])
    assert_close(t64(a, False).gather(1, pydl.tensor(idx)), np.take_along_axis(a, idx, 1))
    assert gradcheck(lambda x: x.gather(1, pydl.tensor(idx)), [t64(a)])
    assert_close(t64(a, False).index_select(1, pydl.tensor([3, 0])), a[:, [3, 0]])
    mask = pydl.tensor(a > 0)
    assert_close(t64(a, False).masked_fill(mask, 0.0), np.where(a > 0, 0.0, a))


def test_gather_index_smaller_than_input_and_bad_index():
    a = np.random.default_rng(2).standard_normal((3, 5))
    idx = np.array([[2, 0], [1, 1]])  # fewer rows and columns than a: reads a's leading part
    assert_close(t64(a, False).gather(1, pydl.tensor(idx)), np.take_along_axis(a[:2], idx, 1))
    assert gradcheck(lambda x: x.gather(1, pydl.tensor(idx)), [t64(a)])
    assert gradcheck(lambda x: x.gather(0, pydl.tensor(idx[:1])), [t64(a)])
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        t64(a).gather(1, pydl.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="Size does not match"):
        t64(a).gather(1, pydl.tensor(np.zeros((4, 1), np.int64)))


def test_index_select_zero_d_index_keeps_the_dim():
    a = np.arange(12.0).reshape(3, 4)
    out = t64(a, False).index_select(1, pydl.tensor(2))
    assert out.shape == (3, 1)
    assert_close(out, a[:, [2]])
    with pytest.raises(IndexError, match="vector"):
        t64(a).index_select(0, pydl.tensor([[0]]))
