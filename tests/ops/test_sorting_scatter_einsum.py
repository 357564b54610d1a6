"""sort/argsort/topk/unique, scatter/scatter_add/one_hot/masked_fill_ and einsum against float64
NumPy references written here (loops and np.einsum), gradcheck and gradgradcheck; shapes with 1,
primes, zero-size and non-contiguous inputs; error messages."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.autograd import gradcheck, gradgradcheck
from pydl.testing import assert_close

rng = np.random.default_rng(20)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def distinct(shape):
    """Random float64 values with no ties (the sort order, hence the gradient, is unique)."""
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape).astype(np.float64) + rng.uniform(0, 0.5, shape)


def sort_reference(a, axis, descending):
    """Stable sort along axis by plain loops: (values, indices)."""
    a = np.moveaxis(a, axis, -1)
    vals, idxs = np.empty_like(a), np.empty(a.shape, dtype=np.int64)
    for pos in np.ndindex(a.shape[:-1]):
        line = list(a[pos])
        key = (lambda i: (-line[i], i)) if descending else (lambda i: (line[i], i))
        order = sorted(range(len(line)), key=key)
        idxs[pos] = order
        vals[pos] = [line[i] for i in order]
    return np.moveaxis(vals, -1, axis), np.moveaxis(idxs, -1, axis)


SHAPES = [(7,), (1,), (3, 5), (2, 1, 4), (0, 3), (3, 0)]


# -- sort / argsort / topk ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_reference_every_dim(shape, descending):
    a = distinct(shape)
    for dim in range(-len(shape), len(shape)):
        v, i = pydl.sort(t64(a, False), dim=dim, descending=descending)
        rv, ri = sort_reference(a, dim, descending)
        assert_close(v, rv)
        assert i.dtype == np.int64 and np.array_equal(i.numpy(), ri)
        assert np.array_equal(pydl.argsort(t64(a, False), dim, descending).numpy(), ri)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_with_ties_and_puts_nan_last_ascending(descending):
    a = np.array([[2.0, 1.0, 2.0, np.nan, 1.0, 2.0], [0.0, 0.0, -1.0, 0.0, np.inf, -np.inf]])
    v, i = pydl.tensor(a).sort(dim=1, descending=descending, stable=True)
    # Reference: NaN is the largest value; equal values keep their order.
    for r in range(2):
        key = [(np.inf if np.isnan(x) else x, 1 if np.isnan(x) else 0) for x in a[r]]
        order = sorted(range(6), key=(lambda k: ((-key[k][1], -key[k][0]), k)) if descending
                       else (lambda k: (key[k], k)))
        assert i[r].tolist() == order
        assert np.array_equal(v[r].numpy(), a[r][order], equal_nan=True)


def test_sort_of_integers_bools_and_0d():
    x = pydl.tensor([3, -1, 2, 2])
    assert x.sort().values.tolist() == [-1, 2, 2, 3]
    assert x.sort(descending=True).indices.tolist() == [0, 2, 3, 1]
    assert pydl.tensor([True, False, True]).sort().values.tolist() == [False, True, True]
    v, i = pydl.tensor(5.0).sort()
    assert v.shape == () and v.item() == 5.0 and i.item() == 0


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_gradcheck_and_gradgradcheck(shape, dim, descending):
    x = t64(distinct(shape))
    assert gradcheck(lambda x: x.sort(dim, descending).values * 1.5, [x])
    assert gradgradcheck(lambda x: (x.sort(dim, descending).values ** 2), [x])


def test_sort_gradient_goes_to_the_source_index():
    x = t64([3.0, 1.0, 2.0])
    (x.sort().values * pydl.tensor([1.0, 10.0, 100.0], dtype=pydl.float64)).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_sort_non_contiguous_input():
    a = distinct((5, 6))
    x = t64(a).transpose(0, 1)  # (6, 5), strided
    v, i = x.sort(dim=1)
    rv, ri = sort_reference(a.T, 1, False)
    assert_close(v, rv)
    assert np.array_equal(i.numpy(), ri)
    assert gradcheck(lambda t: t.transpose(0, 1).sort(dim=1).values, [t64(a)])


@pytest.mark.parametrize("shape,dim,k", [((7,), 0, 3), ((3, 5), 1, 5), ((3, 5), 0, 1),
                                         ((2, 11), -1, 0), ((4, 1), 1, 1)])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_reference(shape, dim, k, largest):
    a = distinct(shape)
    v, i = pydl.topk(t64(a, False), k, dim=dim, largest=largest)
    rv, ri = sort_reference(a, dim, largest)
    sl = [slice(None)] * len(shape)
    sl[dim] = slice(0, k)
    assert_close(v, rv[tuple(sl)])
    assert np.array_equal(i.numpy(), ri[tuple(sl)])
    if k:
        assert gradcheck(lambda x: x.topk(k, dim, largest).values, [t64(a)])
        assert gradgradcheck(lambda x: x.topk(k, dim, largest).values ** 2, [t64(a)])


def test_topk_named_tuple_and_errors():
    r = pydl.tensor([1.0, 5.0, 3.0]).topk(2)
    assert r.values.tolist() == [5.0, 3.0] and r.indices.tolist() == [1, 2]
    assert type(r).__name__ == "topk"
    with pytest.raises(RuntimeError, match=r"k \(4\) out of range"):
        pydl.tensor([1.0, 2.0, 3.0]).topk(4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        pydl.tensor([1.0, 2.0]).sort(dim=2)


# -- unique -----------------------------------------------------------------------------------
def unique_reference(values):
    out = sorted(set(values))
    inverse = [out.index(v) for v in values]
    counts = [values.count(v) for v in out]
    return out, inverse, counts


@pytest.mark.parametrize("shape", [(13,), (3, 4), (1,), (0,), (2, 1, 3)], ids=str)
def test_unique_flattened(shape):
    a = rng.integers(-3, 4, shape)
    u, inv, cnt = pydl.unique(pydl.tensor(a), return_inverse=True, return_counts=True)
    ru, rinv, rcnt = unique_reference(a.reshape(-1).tolist())
    assert u.tolist() == ru and cnt.tolist() == rcnt
    assert inv.shape == a.shape and inv.numpy().reshape(-1).tolist() == rinv
    assert inv.dtype == np.int64 and cnt.dtype == np.int64
    assert pydl.unique(pydl.tensor(a)).tolist() == ru  # a bare tensor without the flags
    u2, c2 = pydl.tensor(a).unique(return_counts=True)
    assert c2.tolist() == rcnt


def test_unique_along_dim():
    a = np.array([[1, 2], [3, 4], [1, 2], [0, 9]])
    u, inv, cnt = pydl.unique(pydl.tensor(a), dim=0, return_inverse=True, return_counts=True)
    rows = [tuple(r) for r in a.tolist()]
    ru, rinv, rcnt = unique_reference(rows)
    assert [tuple(r) for r in u.tolist()] == ru
    assert inv.tolist() == rinv and cnt.tolist() == rcnt
    u1 = pydl.unique(pydl.tensor(a), dim=1)
    assert u1.tolist() == a.tolist()  # columns (1,3,1,0) < (2,4,2,9): already sorted
    assert pydl.unique(pydl.zeros(3, 0), dim=0).shape == (1, 0)
    assert pydl.unique(pydl.zeros(0, 2), dim=0).shape == (0, 2)


def test_unique_float_and_nan_free_values():
    a = np.array([0.5, -1.0, 0.5, 2.0])
    assert pydl.unique(pydl.tensor(a)).tolist() == [-1.0, 0.5, 2.0]


# -- scatter ----------------------------------------------------------------------------------
def scatter_reference(x, dim, index, src, add=False):
    out = x.copy()
    for pos in np.ndindex(index.shape):
        tgt = list(pos)
        tgt[dim] = index[pos]
        v = src[pos] if isinstance(src, np.ndarray) else src
        if add:
            out[tuple(tgt)] += v
        else:
            out[tuple(tgt)] = v
    return out


def unique_index(shape_idx, size, dim):
    """An index with distinct entries along dim (scatter's result is then deterministic)."""
    idx = np.empty(shape_idx, dtype=np.int64)
    moved = np.moveaxis(idx, dim, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        moved[pos] = rng.permutation(size)[:moved.shape[-1]]
    return idx


CASES = [((5,), 0, (3,), (4,)), ((3, 5), 1, (3, 2), (3, 4)), ((3, 5), 0, (2, 5), (2, 5)),
         ((4, 3, 2), 1, (2, 3, 1), (3, 3, 2)), ((1, 1), 0, (1, 1), (1, 1)),
         ((3, 4), 1, (0, 4), (2, 4)), ((3, 4), 0, (3, 0), (3, 2))]


@pytest.mark.parametrize("xs,dim,ishape,sshape", CASES, ids=str)
def test_scatter_and_scatter_add_match_reference(xs, dim, ishape, sshape):
    x, src = rng.standard_normal(xs), rng.standard_normal(sshape)
    idx = unique_index(ishape, xs[dim], dim)
    out = pydl.scatter(t64(x, False), dim, pydl.tensor(idx), t64(src, False))
    assert_close(out, scatter_reference(x, dim, idx, src))
    out = t64(x, False).scatter(dim, pydl.tensor(idx), 2.5)
    assert_close(out, scatter_reference(x, dim, idx, 2.5))
    rep = rng.integers(0, xs[dim], ishape)  # repeats accumulate in scatter_add
    out = pydl.scatter_add(t64(x, False), dim, pydl.tensor(rep), t64(src, False))
    assert_close(out, scatter_reference(x, dim, rep, src, add=True))
    # gradients in input and src, first and second order
    ti = pydl.tensor(idx)
    assert gradcheck(lambda a, s: a.scatter(dim, ti, s), [t64(x), t64(src)])
    assert gradgradcheck(lambda a, s: a.scatter(dim, ti, s) ** 2, [t64(x), t64(src)])
    assert gradcheck(lambda a: a.scatter(dim, ti, -1.0), [t64(x)])
    tr = pydl.tensor(rep)
    assert gradcheck(lambda a, s: a.scatter_add(dim, tr, s), [t64(x), t64(src)])
    assert gradgradcheck(lambda a, s: a.scatter_add(dim, tr, s) ** 2, [t64(x), t64(src)])


def test_scatter_inplace_and_non_contiguous():
    x = np.zeros((4, 3))
    src = rng.standard_normal((3, 4))
    idx = np.array([[0, 1, 2], [3, 0, 1]])
    t = t64(x, False)
    t.scatter_(0, pydl.tensor(idx), t64(src, False).t())  # non-contiguous src
    assert_close(t, scatter_reference(x, 0, idx, src.T))
    assert t._version == 1
    t.scatter_add_(0, pydl.tensor(idx), t64(src, False).t())
    assert_close(t, scatter_reference(scatter_reference(x, 0, idx, src.T), 0, idx, src.T,
                                      add=True))
    # in-place on a non-leaf keeps the graph
    w = t64(rng.standard_normal((4, 3)))
    s = t64(rng.standard_normal((2, 3)))
    y = w * 2
    y.scatter_(0, pydl.tensor(idx), s)
    y.sum().backward()
    gw = np.full((4, 3), 2.0)
    for (r, c) in np.ndindex(idx.shape):
        gw[idx[r, c], c] = 0.0
    assert_close(w.grad, gw)
    assert_close(s.grad, np.ones((2, 3)))


def test_scatter_errors():
    x = pydl.zeros(3, 4)
    with pytest.raises(RuntimeError, match="int64 for index"):
        x.scatter(1, pydl.tensor([[0.5]]), 1.0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        x.scatter(1, pydl.tensor([0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="out of bounds for dimension 1 with size 4"):
        x.scatter(1, pydl.tensor([[4]]), 1.0)
    with pytest.raises(RuntimeError, match="smaller than self"):
        x.scatter(1, pydl.zeros(5, 1, dtype=pydl.int64), 1.0)
    with pytest.raises(RuntimeError, match="smaller than src"):
        x.scatter(1, pydl.zeros(2, 2, dtype=pydl.int64), pydl.zeros(2, 1))
    with pytest.raises(RuntimeError, match="dtype"):
        x.scatter_add(1, pydl.zeros(2, 2, dtype=pydl.int64), pydl.zeros(2, 2, dtype=pydl.float64))


def test_one_hot():
    a = np.array([[0, 3], [1, 1], [2, 0]])
    ref = np.zeros((3, 2, 4), dtype=np.int64)
    for pos in np.ndindex(a.shape):
        ref[pos + (a[pos],)] = 1
    out = F.one_hot(pydl.tensor(a))
    assert out.dtype == np.int64 and np.array_equal(out.numpy(), ref)
    assert F.one_hot(pydl.tensor([1]), num_classes=5).tolist() == [[0, 1, 0, 0, 0]]
    assert F.one_hot(pydl.zeros(0, dtype=pydl.int64), 3).shape == (0, 3)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(pydl.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(pydl.tensor([-1]), 3)
    with pytest.raises(RuntimeError, match="index tensor"):
        F.one_hot(pydl.tensor([1.0]))
    with pytest.raises(RuntimeError, match="empty tensor"):
        F.one_hot(pydl.zeros(0, dtype=pydl.int64))


def test_masked_fill_inplace():
    a = rng.standard_normal((3, 4))
    mask = rng.random((1, 4)) > 0.5
    t = t64(a, False)
    t.masked_fill_(pydl.tensor(mask), -7.0)
    assert_close(t, np.where(mask, -7.0, a))
    assert t._version == 1
    i = pydl.tensor([1, 2, 3])
    i.masked_fill_(pydl.tensor([True, False, True]), 9)
    assert i.tolist() == [9, 2, 9] and i.dtype == np.int64
    # gradient through masked_fill_ on a non-leaf, and into a 0-d value tensor
    w, v = t64(a), t64(2.0)
    y = w * 1.0
    y.masked_fill_(pydl.tensor(mask), v)
    (y * 3).sum().backward()
    assert_close(w.grad, np.where(np.broadcast_to(mask, a.shape), 0.0, 3.0))
    assert_close(v.grad, 3.0 * np.broadcast_to(mask, a.shape).sum())
    with pytest.raises(RuntimeError, match="boolean masks"):
        t.masked_fill_(pydl.tensor([1, 0, 1, 0]), 1.0)
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        t.masked_fill_(pydl.tensor([True, False]), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value"):
        t.masked_fill_(pydl.tensor([True, False, True, True]), pydl.ones(2))


# -- einsum -----------------------------------------------------------------------------------
EQUATIONS = [
    ("ij,jk->ik", [(3, 5), (5, 2)]),
    ("ij,jk", [(3, 5), (5, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 7)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij->...ji", [(2, 3, 4)]),
    ("i...->...", [(3, 2, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ijk,jl,kl->il", [(2, 3, 4), (3, 5), (4, 5)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    ("ij,jk->k", [(3, 5), (5, 2)]),
    ("ab,cd->", [(2, 3), (4, 1)]),
    ("ba", [(3, 4)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij,kj->ik", [(0, 3), (4, 3)]),
    ("ij,jk->ik", [(3, 0), (0, 2)]),
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_matches_numpy_and_gradchecks(eq, shapes):
    arrays = [rng.standard_normal(s) for s in shapes]
    out = pydl.einsum(eq, *[t64(a, False) for a in arrays])
    ref = np.einsum(eq, *arrays)
    assert out.shape == np.shape(ref)
    assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *xs: pydl.einsum(eq, *xs), [t64(a) for a in arrays])
    assert gradgradcheck(lambda *xs: pydl.einsum(eq, *xs), [t64(a) for a in arrays])


def test_einsum_list_operands_float32_non_contiguous_and_int():
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    out = pydl.einsum("ji,jk->ik", [pydl.tensor(a), pydl.tensor(b)])
    assert out.dtype == np.float32
    assert_close(out, a.T @ b, rtol=1e-5, atol=1e-5)
    x = pydl.tensor(a).t()  # non-contiguous operand
    assert_close(pydl.einsum("ij,jk->ik", x, pydl.tensor(b)), a.T @ b, rtol=1e-5, atol=1e-5)
    ints = np.arange(6).reshape(2, 3)
    assert pydl.einsum("ij,kj->ik", pydl.tensor(ints), pydl.tensor(ints)).tolist() == \
        (ints @ ints.T).tolist()


def test_einsum_third_order_through_diagonal():
    a = t64(rng.standard_normal((3, 3)))
    (g,) = pydl.autograd.grad(pydl.einsum("ii->", a * a * a), [a], create_graph=True)
    (h,) = pydl.autograd.grad(g.sum(), [a], create_graph=True)
    (t,) = pydl.autograd.grad(h.sum(), [a])
    assert_close(t, 6.0 * np.eye(3))  # d^3/da^3 of sum a_ii^3 on the diagonal


def test_einsum_errors():
    a = pydl.randn(2, 3)
    with pytest.raises(ValueError, match="subscript 'j' has size 4 in one operand and 3"):
        pydl.einsum("ij,jk->ik", a, pydl.randn(4, 2))
    with pytest.raises(ValueError, match="2 operand"):
        pydl.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="name 3 dims"):
        pydl.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="output subscript 'z'"):
        pydl.einsum("ij->z", a)
    with pytest.raises(ValueError, match="more than once"):
        pydl.einsum("ij->ii", a)
    with pytest.raises(ValueError, match="invalid subscript"):
        pydl.einsum("i1->i", a)
    with pytest.raises(RuntimeError, match="same dtype"):
        pydl.einsum("ij,ij->", a, a.double())


def test_einsum_random_equations_against_numpy():
    letters = "abcd"
    sizes = dict(zip(letters, (2, 3, 1, 4)))
    for trial in range(25):
        n_ops = 1 + trial % 3
        subs = ["".join(rng.choice(list(letters), rng.integers(1, 4))) for _ in range(n_ops)]
        used = sorted(set("".join(subs)))
        out = "".join(c for c in used if rng.random() < 0.5)
        eq = ",".join(subs) + "->" + out
        arrays = [rng.standard_normal([sizes[c] for c in s]) for s in subs]
        assert_close(pydl.einsum(eq, *[t64(a, False) for a in arrays]),
                     np.einsum(eq, *arrays), rtol=1e-12, atol=1e-12)
        assert gradcheck(lambda *xs: pydl.einsum(eq, *xs), [t64(a) for a in arrays])

