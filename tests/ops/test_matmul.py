"""matmul / @ with torch.matmul's promotion and broadcasting rules, linear, against float64
NumPy (einsum); gradients by gradcheck; errors name the shapes."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.testing import assert_close, noncontiguous


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
          ((2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)), ((2, 1, 2, 3), (3, 3, 1)),
          ((0, 3), (3, 2)), ((2, 0), (0, 3)), ((1, 1), (1, 1)), ((7, 5), (5, 11))]


def ref_matmul(a, b):
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = np.einsum("...ij,...jk->...ik", a2, b2)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


@pytest.mark.parametrize("sa,sb", SHAPES)
def test_matmul_forward_and_grad(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = t64(a, False) @ t64(b, False)
    assert_close(out, ref_matmul(a, b), rtol=1e-12, atol=1e-12)
    assert gradcheck(pydl.matmul, [t64(a), t64(b)])


def test_matmul_float32_noncontiguous_and_transposed():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((13, 7)), rng.standard_normal((11, 7))
    x = pydl.from_numpy(noncontiguous(a.astype(np.float32)))
    y = pydl.from_numpy(b.astype(np.float32)).T
    assert_close(x @ y, a @ b.T, rtol=1e-5, atol=1e-5)


def test_linear_matches_formula_and_grads():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 2, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    out = pydl.nn.functional.linear(t64(x, False), t64(w, False), t64(b, False))
    assert_close(out, np.einsum("...i,oi->...o", x, w) + b)
    assert gradcheck(pydl.nn.functional.linear, [t64(x), t64(w), t64(b)])
    assert gradcheck(lambda x, w: pydl.nn.functional.linear(x, w), [t64(x), t64(w)])


def test_matmul_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4, 5\)"):
        pydl.zeros(2, 3) @ pydl.zeros(4, 5)
    with pytest.raises(RuntimeError, match="at least 1 dimension"):
        pydl.matmul(pydl.tensor(1.0), pydl.zeros(2))
    with pytest.raises(RuntimeError, match="do not broadcast"):
        pydl.zeros(2, 2, 3) @ pydl.zeros(3, 3, 2)
    with pytest.raises(RuntimeError, match="same dtype"):
        pydl.zeros(2, 2) @ pydl.zeros(2, 2, dtype=pydl.float64)
    with pytest.raises(RuntimeError, match="in_features=5"):
        pydl.nn.functional.linear(pydl.zeros(2, 4), pydl.zeros(3, 5))


def test_mm_bmm_dot():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    assert_close(pydl.bmm(t64(a, False), t64(b, False)), a @ b)
    assert_close(pydl.mm(t64(a[0], False), t64(b[0], False)), a[0] @ b[0])
    assert_close(pydl.dot(t64(a[0, 0], False), t64(a[0, 1], False)), a[0, 0] @ a[0, 1])
    with pytest.raises(RuntimeError, match="2-D"):
        pydl.mm(t64(a, False), t64(b, False))
