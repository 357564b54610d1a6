"""Reductions with dim (int/tuple/None) and keepdim, against float64 NumPy; gradients by
gradcheck; zero-size and size-1 dims; non-contiguous inputs."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.testing import assert_close, noncontiguous


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


DIMS = [None, 0, -1, (0, 2), (1,)]
SHAPES = [(3, 1, 5), (2, 7, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "logsumexp", "amax",
                                  "amin", "norm"])
def test_reduction_forward_and_grad(name, shape, dim, keepdim):
    rng = np.random.default_rng(abs(hash((name, shape, str(dim)))) % 2**32)
    a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    axis = dim if dim is None or isinstance(dim, tuple) else (dim,)
    np_axis = None if dim is None else tuple(d % len(shape) for d in axis)
    refs = {
        "sum": lambda x: x.sum(axis=np_axis, keepdims=keepdim),
        "mean": lambda x: x.mean(axis=np_axis, keepdims=keepdim),
        "var": lambda x: x.var(axis=np_axis, keepdims=keepdim, ddof=1),
        "std": lambda x: x.std(axis=np_axis, keepdims=keepdim, ddof=1),
        "prod": lambda x: x.prod(axis=np_axis, keepdims=keepdim),
        "logsumexp": lambda x: np.log(np.exp(x).sum(axis=np_axis, keepdims=keepdim)),
        "amax": lambda x: x.max(axis=np_axis, keepdims=keepdim),
        "amin": lambda x: x.min(axis=np_axis, keepdims=keepdim),
        "norm": lambda x: np.sqrt((x * x).sum(axis=np_axis, keepdims=keepdim)),
    }
    if name == "prod" and isinstance(dim, tuple):
        pytest.skip("prod reduces one dim or all, as torch.prod")
    if name in ("var", "std") and dim is not None:
        n = np.prod([shape[d] for d in np_axis])
        if n < 2:
            pytest.skip("var of one element with correction=1 is NaN")
    fn = lambda x: getattr(pydl, name)(x, dim=dim, keepdim=keepdim)  # noqa: E731
    if name == "prod" and dim is None:
        fn = lambda x: pydl.prod(x)  # noqa: E731
        if keepdim:
            pytest.skip("prod without dim has no keepdim")
    out = fn(t64(a, False))
    assert_close(out, refs[name](a))
    assert gradcheck(fn, [t64(a)])


def test_float32_sum_and_noncontiguous():
    a = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    x = pydl.from_numpy(noncontiguous(a))
    assert_close(x.sum(dim=1), a.astype(np.float64).sum(1), rtol=1e-5, atol=1e-5)
    assert x.sum().dtype == pydl.float32
    assert_close(pydl.from_numpy(a.T).mean(0), a.T.astype(np.float64).mean(0), rtol=1e-5,
                 atol=1e-6)


def test_zero_size_reductions():
    x = t64(np.zeros((0, 3)))
    assert_close(x.sum(0), np.zeros(3))
    assert x.sum(1).shape == (0,)
    x.sum().backward()
    assert x.grad.shape == (0, 3)
    with pytest.raises(RuntimeError, match=r"numel\(\) == 0"):
        pydl.amax(pydl.zeros(0))
    with pytest.raises(IndexError, match="dim 1 to have non-zero size"):
        pydl.max(pydl.zeros(2, 0), dim=1)


def test_max_min_with_dim_return_values_and_indices():
    a = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    x = t64(a)
    values, indices = pydl.max(x, dim=1)
    assert values.tolist() == [5.0, 6.0]
    assert indices.tolist() == [1, 2]
    assert indices.dtype == pydl.int64 and not indices.requires_grad
    values.sum().backward()
    assert_close(x.grad, [[0, 1, 0], [0, 0, 1]])
    v, i = x.min(dim=0, keepdim=True)
    assert v.shape == (1, 3) and i.tolist() == [[0, 1, 0]]
    assert gradcheck(lambda t: pydl.max(t, 1).values, [t64(a)])
    assert gradcheck(lambda t: pydl.min(t, 0)[0], [t64(a)])


def test_full_max_splits_gradient_among_ties():
    x = t64([1.0, 3.0, 3.0])
    x.max().backward()
    assert_close(x.grad, [0, 0.5, 0.5])


def test_argmax_argmin():
    a = np.random.default_rng(1).standard_normal((4, 5))
    x = pydl.tensor(a)
    assert pydl.argmax(x).item() == a.argmax()
    assert pydl.argmax(x, dim=1).tolist() == a.argmax(1).tolist()
    assert pydl.argmin(x, dim=0, keepdim=True).shape == (1, 5)


def test_var_correction_and_unbiased():
    a = np.random.default_rng(2).standard_normal((5, 4))
    x = t64(a, False)
    assert_close(pydl.var(x, dim=0, correction=0), a.var(0))
    assert_close(pydl.var(x, dim=0, unbiased=False), a.var(0))
    assert_close(pydl.std(x, dim=1, correction=2), np.sqrt(((a - a.mean(1, keepdims=True)) ** 2)
                                                            .sum(1) / 2))


def test_prod_gradient_with_zeros():
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.5, 2.0, -1.0]])
    x = t64(a)
    pydl.prod(x, dim=1).sum().backward()
    assert_close(x.grad, [[0, 6, 0], [0, 0, 0], [-2, -1.5, 3]])
    assert gradcheck(lambda t: pydl.prod(t, 0), [t64(a)])


def test_logsumexp_is_stable():
    x = pydl.tensor([1000.0, 1000.0], dtype=pydl.float64)
    assert_close(pydl.logsumexp(x, 0), 1000 + np.log(2))
    x = pydl.tensor([-1000.0, -1000.0], dtype=pydl.float64)
    assert_close(pydl.logsumexp(x, 0), -1000 + np.log(2))


def test_norm_orders():
    a = np.random.default_rng(3).standard_normal((3, 4))
    x = t64(a, False)
    assert_close(pydl.norm(x), np.linalg.norm(a))
    assert_close(pydl.norm(x, p=1, dim=1), np.abs(a).sum(1))
    assert_close(pydl.norm(x, p=float("inf"), dim=0), np.abs(a).max(0))
    assert_close(pydl.norm(x, p=3, dim=1), (np.abs(a) ** 3).sum(1) ** (1 / 3))
    assert gradcheck(lambda t: pydl.norm(t, p=3, dim=1), [t64(a)])


def test_bad_dims_raise():
    x = pydl.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.sum(dim=2)
    with pytest.raises(ValueError, match="more than once"):
        x.sum(dim=(0, 0))
    with pytest.raises(RuntimeError, match="floating point"):
        pydl.tensor([1, 2]).mean()


def test_cumsum_and_bool_sum():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert_close(pydl.cumsum(t64(a, False), 1), a.cumsum(1))
    assert gradcheck(lambda t: pydl.cumsum(t, 0), [t64(a)])
    assert pydl.tensor([True, False, True]).sum().item() == 2


@pytest.mark.parametrize("name", ["amax", "amin", "argmax", "argmin", "max", "min"])
def test_reduction_along_a_non_empty_dim_of_an_empty_tensor_is_empty(name):
    def values(out):
        return out.values if name in ("max", "min") else out

    x = pydl.zeros(0, 3)
    assert values(getattr(pydl, name)(x, dim=1)).shape == (0,)
    assert values(getattr(pydl, name)(pydl.zeros(2, 0, 3), dim=-1, keepdim=True)).shape == \
        (2, 0, 1)
    with pytest.raises(IndexError, match="dim 0 to have non-zero size"):
        getattr(pydl, name)(x, dim=0)


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_of_integers_raise(name):
    with pytest.raises(RuntimeError, match="only support floating point"):
        getattr(pydl, name)(pydl.tensor([1, 2, 4]))


def test_cumsum_of_zero_d_is_zero_d():
    x = t64(3.0)
    y = pydl.cumsum(x, 0)
    assert y.shape == () and y.item() == 3.0
    y.backward()
    assert x.grad.item() == 1.0


def test_std_of_a_constant_slice_has_zero_gradient():
    x = t64([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    pydl.std(x, 1).sum().backward()
    assert_close(x.grad[0], [0.0, 0.0, 0.0])
    assert np.isfinite(x.grad.numpy()).all()
