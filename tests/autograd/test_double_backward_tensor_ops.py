"""Double backward (create_graph=True) of the reductions, shape and indexing ops, embedding and
bilinear: float64 gradgradcheck over every mode and flag (dims, keepdim, correction, p, padding
modes, index kinds, padding_idx, scale_grad_by_freq, bias), shapes with 1, primes, zero-size dims
and non-contiguous inputs; third-order checks where a backward is an op of its own (ExclusiveProd,
the gather/scatter pairs, BilinearWeightGrad); and the version check of every index tensor saved
for backward (issue #12).

Linear ops (shape and indexing) are checked on op(x) ** 2, so that the second derivative runs
through the op's backward and the backward of that backward. gradgradcheck needs contiguous
inputs that it can perturb, so non-contiguous cases make the view inside the checked function.
"""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.autograd import grad
from pydl.autograd import gradgradcheck as _gradgradcheck
from pydl.testing import assert_close


def gradgradcheck(fn, inputs, **kw):
    """Tighter than the defaults: float64 central differences of an analytic gradient are good
    to ~1e-9 here, so a wrong factor in a second-derivative formula cannot hide."""
    return _gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6, **kw)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def rand(rng, shape, low=-1.5, high=1.5, gap=0.0):
    """Uniform values; with ``gap``, none closer than gap to 0 (kinks of |x|, norms)."""
    x = rng.uniform(low, high, shape)
    if gap:
        x = np.where(np.abs(x) < gap, np.sign(x + 1e-300) * gap * 2, x)
    return x


def double_backward_shapes(fn, inputs):
    """For zero-size inputs (where gradgradcheck has no element to check): the double backward
    runs and gives gradients of the inputs' shapes."""
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    us = [pydl.tensor(np.ones(o.shape), requires_grad=True) for o in outs]
    gs = grad(list(outs), inputs, us, create_graph=True, allow_unused=True)
    total = None
    for g in gs:
        if g is not None:
            s = (g * g).sum()
            total = s if total is None else total + s
    if total is None or not total.requires_grad:
        return
    second = grad(total, list(inputs) + us, allow_unused=True)
    for x, g2 in zip(list(inputs) + us, second):
        assert g2 is None or g2.shape == x.shape


def sq(out):
    """Square every output: a linear op's second derivative then runs through its backward."""
    if isinstance(out, (tuple, list)):
        return tuple(o * o for o in out)
    return out * out


# -- reductions (pydl/ops/reduction.py) -----------------------------------------------------------
DIMS = [None, 0, -1, (0, 2), (1,)]
SHAPES = [(3, 1, 5), (2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "logsumexp", "amax", "amin",
                                  "norm"])
def test_reduction_gradgradcheck(name, shape, dim, keepdim, rng):
    a = rand(rng, shape, gap=0.1)
    fn = {
        "sum": lambda x: sq(pydl.sum(x, dim, keepdim)),
        "mean": lambda x: sq(pydl.mean(x, dim, keepdim)),
        "var": lambda x: pydl.var(x, dim, keepdim=keepdim, correction=0),
        "std": lambda x: pydl.std(x, dim, keepdim=keepdim, correction=0),
        "logsumexp": lambda x: pydl.logsumexp(x, dim, keepdim),
        "amax": lambda x: sq(pydl.amax(x, dim, keepdim)),
        "amin": lambda x: sq(pydl.amin(x, dim, keepdim)),
        "norm": lambda x: pydl.norm(x, 2, dim, keepdim),
    }[name]
    if name == "std" and dim is not None and np.prod([shape[d] for d in np.atleast_1d(dim)]) == 1:
        pytest.skip("std of one element with correction 0 is 0: its derivative is a kink")
    assert gradgradcheck(fn, [t64(a)])


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("which", ["var", "std"])
def test_var_std_correction_gradgradcheck(which, correction, rng):
    fn = getattr(pydl, which)
    assert gradgradcheck(lambda x: fn(x, 1, correction=correction), [t64(rand(rng, (3, 5)))])
    assert gradgradcheck(lambda x: fn(x, correction=correction), [t64(rand(rng, (7,)))])
    # non-contiguous: the reduced dim is strided
    assert gradgradcheck(lambda x: fn(x.transpose(0, 1), 0, correction=correction),
                         [t64(rand(rng, (3, 5)))])


def test_std_of_constant_slice_has_zero_gradient_and_finite_double_backward():
    x = t64([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    y = pydl.std(x, 1)
    (g,) = grad(y.sum(), x, create_graph=True)
    assert_close(g[0], [0.0, 0.0, 0.0])
    (h,) = grad((g * g).sum(), x)
    assert np.isfinite(h.numpy()).all()


@pytest.mark.parametrize("which", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_max_min_dim_values_gradgradcheck(which, dim, keepdim, rng):
    fn = getattr(pydl, which)
    assert gradgradcheck(lambda x: sq(fn(x, dim, keepdim).values), [t64(rand(rng, (3, 5)))])
    assert gradgradcheck(lambda x: sq(fn(x.transpose(0, 1), dim, keepdim)[0]),
                         [t64(rand(rng, (3, 5)))])


@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_all_gradgradcheck(which, rng):
    fn = getattr(pydl, which)
    assert gradgradcheck(lambda x: sq(fn(x)), [t64(rand(rng, (3, 4)))])
    assert gradgradcheck(lambda x: sq(fn(x)), [t64(rand(rng, (1,)))])


def test_amax_ties_share_the_gradient_to_second_order():
    x = t64([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    share = np.array([[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (g,) = grad(pydl.amax(x, 1).sum(), x, create_graph=True)
    assert_close(g, share)
    # sum(m^2) with m = amax: g = 2 m share, so d/dx <g, u> = 2 <share, u> share per row
    u = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    (g,) = grad((pydl.amax(x, 1) ** 2).sum(), x, create_graph=True)
    (h,) = grad((g * pydl.tensor(u)).sum(), x)
    assert_close(h, 2 * (share * u).sum(1, keepdims=True) * share)


@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False)],
                         ids=str)
@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_gradgradcheck_with_zeros(dim, keepdim, zeros, rng):
    a = rng.uniform(0.5, 1.5, (3, 4)) * rng.choice([-1, 1], (3, 4))
    a[0, :zeros] = 0.0  # prod is a polynomial: exact zeros are fine for central differences
    a[2, 1:1 + zeros] = 0.0
    if dim is None:
        fn = lambda x: pydl.prod(x)  # noqa: E731
    else:
        fn = lambda x: pydl.prod(x, dim, keepdim)  # noqa: E731
    assert gradgradcheck(fn, [t64(a)])


def test_prod_shapes_with_one_and_primes_and_noncontiguous(rng):
    assert gradgradcheck(lambda x: pydl.prod(x, 0), [t64(rand(rng, (1, 3)))])
    assert gradgradcheck(lambda x: pydl.prod(x, 1), [t64(rand(rng, (2, 7)))])
    assert gradgradcheck(lambda x: pydl.prod(x.transpose(0, 1), 1), [t64(rand(rng, (5, 3)))])
    assert gradgradcheck(lambda x: pydl.prod(x), [t64(rand(rng, ()))])


def test_prod_third_order(rng):
    """ExclusiveProd's backward is ExclusiveProd on an n x n copy: one more order each time."""
    a = rand(rng, (2, 4))
    a[1, 2] = 0.0

    def first(x):
        return grad(pydl.prod(x, 1).sum(), x, create_graph=True)[0]

    assert gradgradcheck(first, [t64(a)])


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 1.5, 0.5, -1, 4, float("inf"), float("-inf")],
                         ids=str)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (0, True), ((0, 1), True)],
                         ids=str)
def test_norm_gradgradcheck(p, dim, keepdim, rng):
    a = rand(rng, (3, 4), gap=0.1)  # away from |x|'s kink at 0
    a[1, 2] = -a[1, 2] * 1.7  # and from ties of max |x|
    fn = lambda x: pydl.norm(x, p, dim, keepdim)  # noqa: E731
    if p in (1, float("inf"), float("-inf")):
        fn = lambda x: sq(pydl.norm(x, p, dim, keepdim))  # noqa: E731  (piecewise linear)
    assert gradgradcheck(fn, [t64(a)])


@pytest.mark.parametrize("p", [2, 3, 1.5, 0.5, 1, float("inf")], ids=str)
def test_norm_at_zero_vector_has_zero_gradient(p):
    x = t64(np.zeros((2, 3)))
    (g,) = grad(pydl.norm(x, p, 1).sum(), x)
    assert_close(g, np.zeros((2, 3)))
    # one zero row, one non-zero row: the non-zero row's gradient is untouched
    a = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0]])
    x = t64(a)
    (g,) = grad(pydl.norm(x, p, 1).sum(), x)
    assert np.isfinite(g.numpy()).all() and (g.numpy()[0] == 0).all()


def test_norm_p2_double_backward_at_zero_vector_is_finite():
    x = t64(np.array([[0.0, 0.0], [1.0, 2.0]]))
    (g,) = grad(pydl.norm(x, 2, 1).sum(), x, create_graph=True)
    (h,) = grad((g * g).sum(), x)
    assert np.isfinite(h.numpy()).all()


def test_norm_p0_counts_and_has_no_gradient():
    x = t64([[0.0, 2.0, -1.0], [0.0, 0.0, 3.0]])
    n = pydl.norm(x, 0, 1)
    assert_close(n, [2.0, 1.0])
    n.sum().backward()
    assert x.grad is None  # PyTorch: an undefined gradient


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_gradgradcheck(dim, rng):
    assert gradgradcheck(lambda x: sq(pydl.cumsum(x, dim)), [t64(rand(rng, (3, 5)))])
    assert gradgradcheck(lambda x: sq(pydl.cumsum(x.transpose(0, 1), dim)),
                         [t64(rand(rng, (3, 5)))])


def test_cumsum_zero_d_and_size_one(rng):
    x = t64(2.0)
    y = pydl.cumsum(x, 0)
    assert y.shape == ()
    assert gradgradcheck(lambda t: sq(pydl.cumsum(t, -1)), [t64(rng.standard_normal(()))])
    assert gradgradcheck(lambda t: sq(pydl.cumsum(t, 0)), [t64(rand(rng, (1, 3)))])


def test_reductions_double_backward_zero_size():
    for fn in (lambda x: pydl.sum(x, 1) ** 2, lambda x: pydl.var(x, 1),
               lambda x: pydl.std(x, 1), lambda x: pydl.logsumexp(x, 1),
               lambda x: pydl.amax(x, 1) ** 2, lambda x: pydl.max(x, 1).values ** 2,
               lambda x: pydl.prod(x, 1), lambda x: pydl.norm(x, 3, 1),
               lambda x: pydl.cumsum(x, 1) ** 2):
        double_backward_shapes(fn, [t64(np.zeros((0, 3)))])
    double_backward_shapes(lambda x: pydl.prod(x, 0), [t64(np.zeros((0, 3)))])
    double_backward_shapes(lambda x: pydl.sum(x, 0) ** 2, [t64(np.zeros((0, 3)))])


# -- shape ops (pydl/ops/shape.py) ----------------------------------------------------------------
SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(5, 3), (3, 5)),
    "reshape_infer": (lambda x: x.reshape(-1), (3, 5)),
    "view": (lambda x: x.view(1, 15), (3, 5)),
    "flatten": (lambda x: x.flatten(1), (2, 3, 1)),
    "unflatten": (lambda x: x.unflatten(1, (3, 1)), (2, 3)),
    "squeeze": (lambda x: x.squeeze(), (3, 1, 5)),
    "squeeze_dim": (lambda x: x.squeeze(1), (3, 1, 5)),
    "unsqueeze": (lambda x: x.unsqueeze(-1), (3, 5)),
    "expand": (lambda x: x.expand(2, 3, 5), (3, 1)),
    "expand_as": (lambda x: x.expand_as(pydl.zeros(4, 3, 2)), (3, 1)),
    "permute": (lambda x: x.permute(2, 0, 1), (2, 3, 5)),
    "transpose": (lambda x: x.transpose(0, 2), (2, 3, 5)),
    "t": (lambda x: x.t(), (3, 5)),
    "T": (lambda x: x.T, (2, 3, 5)),
    "mT": (lambda x: x.mT, (2, 3, 5)),
    "cat_dim0": (lambda x: pydl.cat([x, x[1:] * 2, x], 0), (3, 5)),
    "cat_dim1": (lambda x: pydl.cat([x[:, :2], x], -1), (3, 5)),
    "stack": (lambda x: pydl.stack([x, x * 3], 1), (3, 5)),
    "split_int": (lambda x: x.split(2, 1), (3, 5)),
    "split_sections": (lambda x: x.split([1, 3, 1], 1), (3, 5)),
    "chunk": (lambda x: x.chunk(2, 0), (3, 5)),
    "unbind": (lambda x: x.unbind(1), (3, 2)),
    "flip": (lambda x: pydl.flip(x, (0, 1)) * x, (3, 5)),
    "flip_last": (lambda x: x.flip(-1), (3, 5)),
    "repeat": (lambda x: x.repeat(2, 1, 3), (3, 2)),
    "repeat_same_ndim": (lambda x: x.repeat(1, 2), (3, 2)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op_gradgradcheck(name, rng):
    fn, shape = SHAPE_OPS[name]
    assert gradgradcheck(lambda x: sq(fn(x)), [t64(rand(rng, shape))])


@pytest.mark.parametrize("name", ["permute", "transpose", "cat_dim1", "split_int", "flip",
                                  "repeat", "reshape", "expand"])
def test_shape_op_gradgradcheck_noncontiguous(name, rng):
    fn, shape = SHAPE_OPS[name]
    # x.permute(reversed dims) has the op's input shape, in a transposed (strided) layout.
    rev = tuple(range(len(shape)))[::-1]
    assert gradgradcheck(lambda x: sq(fn(x.permute(*rev))), [t64(rand(rng, shape[::-1]))])


PADS = [
    ("constant", (2, 1), 0.0), ("constant", (1, 2, 0, 1), 1.5), ("constant", (-1, 2, 1, -1), 0.0),
    ("reflect", (2, 1), None), ("reflect", (1, 2, 2, 1), None), ("replicate", (3, 1), None),
    ("replicate", (1, 0, 2, 3), None), ("circular", (2, 3), None), ("circular", (1, 2, 3, 0), None),
]


@pytest.mark.parametrize("mode,pad,value", PADS, ids=[f"{m}-{p}" for m, p, _ in PADS])
def test_pad_gradgradcheck(mode, pad, value, rng):
    kw = {} if value is None else {"value": value}
    shape = (2, 3, 4)
    assert gradgradcheck(lambda x: sq(F.pad(x, pad, mode=mode, **kw)), [t64(rand(rng, shape))])
    # non-contiguous input
    assert gradgradcheck(lambda x: sq(F.pad(x.transpose(1, 2), pad, mode=mode, **kw)),
                         [t64(rand(rng, (2, 4, 3)))])


def test_pad_3d_and_zero_batch(rng):
    for mode in ("constant", "reflect", "replicate", "circular"):
        fn = lambda x: sq(F.pad(x, (1, 1, 1, 0, 0, 1), mode=mode))  # noqa: E731
        assert gradgradcheck(fn, [t64(rand(rng, (1, 2, 2, 3)))])
        double_backward_shapes(fn, [t64(np.zeros((0, 2, 2, 3)))])


def test_shape_ops_double_backward_zero_size():
    z = t64(np.zeros((0, 3)))
    for fn in (lambda x: sq(x.reshape(3, 0)), lambda x: sq(x.t()),
               lambda x: sq(pydl.cat([x, x], 0)), lambda x: sq(x.split(1, 1)),
               lambda x: sq(x.flip(0)), lambda x: sq(x.repeat(2, 1)),
               lambda x: sq(x.expand(2, 0, 3)), lambda x: sq(pydl.stack([x, x], 2))):
        double_backward_shapes(fn, [z])


# -- indexing (pydl/ops/indexing.py) --------------------------------------------------------------
A = np.random.default_rng(0).standard_normal((4, 5, 3))
KEYS = [
    1, -1, (1, 2), slice(1, 3), (slice(None), 0), (Ellipsis, 1), (None, 2),
    (slice(None, None, 2),), (slice(1, None, 2), slice(None), 2),
    ([0, 2, 2],), (slice(None), [4, 0, 4]), (np.array([[0, 1], [3, 3]]),), ([0, 1], [2, 3]),
    (1, Ellipsis, None), (A[:, :, 0] > 0,), (slice(None), [True, False, True, True, False]),
]


@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_getitem_gradgradcheck(key):
    assert gradgradcheck(lambda x: sq(x[key]), [t64(A)])


def test_getitem_with_tensor_indices_gradgradcheck(rng):
    idx = pydl.tensor([3, 0, 3])
    mask = pydl.tensor(A > 0)
    assert gradgradcheck(lambda x: sq(x[idx]), [t64(A)])
    assert gradgradcheck(lambda x: sq(x[mask]), [t64(A)])
    assert gradgradcheck(lambda x: sq(x[:, pydl.tensor([1, 1]), pydl.tensor([2, 0])]), [t64(A)])
    # non-contiguous input
    assert gradgradcheck(lambda x: sq(x.transpose(0, 2)[1, idx[:2]]), [t64(A)])


def test_getitem_third_order():
    """GetItem's backward (a scatter) has GetItem as backward: any order."""
    def first(x):
        y = x[[0, 2, 2], 1:]
        return grad((y * y * y).sum(), x, create_graph=True)[0]

    assert gradgradcheck(first, [t64(A[:, :, 0])])


@pytest.mark.parametrize("key", [1, (slice(None), 0), ([0, 2],), "mask", (1, [0, 3])],
                         ids=["int", "slice", "index", "mask", "mixed"])
def test_index_put_gradgradcheck(key, rng):
    a = A[:, :, 0]
    if key == "mask":
        key = pydl.tensor(a > 0)
    shape = a[key.numpy() if isinstance(key, pydl.Tensor) else key].shape

    def fn(x, v):
        y = x * 1.0
        y[key] = v * v
        return sq(y)

    assert gradgradcheck(fn, [t64(a), t64(rand(rng, shape))])
    # a broadcast value
    assert gradgradcheck(fn, [t64(a), t64(rand(rng, ()))])


def test_masked_fill_gradgradcheck(rng):
    a = rand(rng, (3, 4))
    mask = pydl.tensor(a > 0)
    assert gradgradcheck(lambda x: sq(x.masked_fill(mask, 2.0)), [t64(a)])
    assert gradgradcheck(lambda x, v: sq(x.masked_fill(mask, v * v)), [t64(a), t64(0.7)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select_gradgradcheck(dim, rng):
    idx = pydl.tensor([2, 0, 2, 1])
    assert gradgradcheck(lambda x: sq(x.index_select(dim, idx)), [t64(rand(rng, (3, 3, 3)))])
    assert gradgradcheck(lambda x: sq(x.transpose(0, 2).index_select(dim, idx)),
                         [t64(rand(rng, (3, 3, 3)))])
    assert gradgradcheck(lambda x: sq(pydl.index_select(x, dim, pydl.tensor(1))),
                         [t64(rand(rng, (3, 3, 3)))])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_gradgradcheck(dim, rng):
    a = rand(rng, (3, 4))
    n = a.shape[dim]
    idx = pydl.tensor(rng.integers(0, n, (5, 4) if dim == 0 else (3, 6)))
    assert gradgradcheck(lambda x: sq(x.gather(dim, idx)), [t64(a)])
    one = pydl.tensor(rng.integers(0, n, (1, 4) if dim == 0 else (3, 1)))
    assert gradgradcheck(lambda x: sq(x.gather(dim, one)), [t64(a)])  # the put path


def test_gather_third_order_and_noncontiguous(rng):
    idx = pydl.tensor([[0, 0, 2], [1, 3, 3], [2, 1, 0]])

    def first(x):
        y = x.gather(1, idx)
        return grad((y * y * y).sum(), x, create_graph=True)[0]

    assert gradgradcheck(first, [t64(rand(rng, (3, 4)))])
    assert gradgradcheck(lambda x: sq(x.t().gather(1, idx)), [t64(rand(rng, (4, 3)))])


def test_indexing_double_backward_zero_size():
    z = t64(np.zeros((0, 3)))
    double_backward_shapes(lambda x: sq(x[:, 1:]), [z])
    double_backward_shapes(lambda x: sq(x[pydl.tensor(np.zeros((0, 3), dtype=bool))]), [z])
    double_backward_shapes(lambda x: sq(x.index_select(1, pydl.tensor([2, 2]))), [z])
    double_backward_shapes(lambda x: sq(x.gather(1, pydl.tensor(np.zeros((0, 2), np.int64)))),
                           [z])
    double_backward_shapes(lambda x: sq(t64(np.ones((2, 3))).index_select(
        0, pydl.tensor(np.zeros(0, np.int64))) * x.sum()), [z])


# -- embedding and bilinear -----------------------------------------------------------------------
IDX = np.array([[0, 2, 2], [3, 2, 0]])


@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_embedding_gradgradcheck(padding_idx, rng):
    w = t64(rand(rng, (5, 3)))
    # padding_idx row 1 / 4 is not read, so the gradient is the true derivative (gradcheck's)
    idx = pydl.tensor(IDX)
    assert gradgradcheck(lambda w_: sq(F.embedding(idx, w_, padding_idx=padding_idx)), [w])
    assert gradgradcheck(lambda w_: sq(F.embedding(pydl.tensor(np.array(3)), w_)), [w])


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scale_grad_by_freq_and_padding_double_backward(padding_idx, rng):
    """scale_grad_by_freq and padding_idx change the gradient away from the derivative (by
    design, as in PyTorch), so the first derivative is linear in w here: gradgradcheck then
    checks d/dv, the backward of EmbeddingBackward, scale and padding included."""
    w = t64(rand(rng, (5, 3)))
    c = t64(rand(rng, (2, 3, 3)), grad=False)
    idx = pydl.tensor(IDX)
    assert gradgradcheck(lambda w_: F.embedding(idx, w_, padding_idx=padding_idx,
                                                scale_grad_by_freq=True) * c, [w])
    # the value: d/dv <u, dW(v)> = u[idx] / count, padding row zeroed
    v = t64(rand(rng, (2, 3, 3)))
    y = F.embedding(idx, w, padding_idx=padding_idx, scale_grad_by_freq=True)
    (gw,) = grad(y, w, v, create_graph=True)
    u = rand(rng, (5, 3))
    (gv,) = grad((gw * pydl.tensor(u)).sum(), v)
    counts = np.bincount(IDX.reshape(-1), minlength=5)
    expected = u[IDX] / counts[IDX][..., None]
    if padding_idx is not None:
        expected[IDX == padding_idx] = 0
    assert_close(gv, expected)


def test_embedding_third_order_and_zero_size(rng):
    idx = pydl.tensor(IDX)

    def first(w_):
        y = F.embedding(idx, w_)
        return grad((y * y * y).sum(), w_, create_graph=True)[0]

    assert gradgradcheck(first, [t64(rand(rng, (4, 3)))])
    double_backward_shapes(lambda w_: sq(F.embedding(pydl.tensor(np.zeros((0, 2), np.int64)),
                                                     w_)), [t64(rand(rng, (4, 3)))])


@pytest.mark.parametrize("batch", [(2,), (1,), (2, 3), ()], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_gradgradcheck(batch, bias, rng):
    x1, x2 = t64(rand(rng, batch + (3,))), t64(rand(rng, batch + (2,)))
    w = t64(rand(rng, (4, 3, 2)))
    ins = [x1, x2, w] + ([t64(rand(rng, (4,)))] if bias else [])
    assert gradgradcheck(lambda *a: F.bilinear(*a), ins)


def test_bilinear_noncontiguous_third_order_and_zero_batch(rng):
    x1, x2 = t64(rand(rng, (3, 2))), t64(rand(rng, (2, 2)))
    w = t64(rand(rng, (2, 3, 2)))
    assert gradgradcheck(lambda a, b, c: F.bilinear(a.t(), b, c.transpose(1, 2).mT), [x1, x2, w])

    def first(a, b, c):
        y = F.bilinear(a, b, c)
        return grad((y * y).sum(), [a, b, c], create_graph=True)

    assert gradgradcheck(first, [t64(rand(rng, (2, 3))), x2, w])
    double_backward_shapes(lambda a, b, c: F.bilinear(a, b, c),
                           [t64(np.zeros((0, 3))), t64(np.zeros((0, 2))), w])


# -- saved index tensors are version-checked (issue #12) ------------------------------------------
INPLACE = "modified by an in-place operation"


def _change_in_place(idx):
    """Write an index tensor in place without changing its values' range."""
    idx[...] = idx.flip(0) if idx.ndim and idx.shape[0] > 1 else idx


@pytest.mark.parametrize("op", ["embedding", "gather", "index_select", "getitem", "index_put"])
def test_index_tensor_changed_before_backward_raises(op, rng):
    x = t64(rand(rng, (4, 3)))
    idx = pydl.tensor([[0, 2, 1], [3, 3, 0]]) if op == "gather" else pydl.tensor([2, 0, 2])
    y = {
        "embedding": lambda: F.embedding(idx, x),
        "gather": lambda: x.gather(0, idx),
        "index_select": lambda: x.index_select(0, idx),
        "getitem": lambda: x[idx],
        "index_put": lambda: _setitem(x * 1.0, idx, x[0] * 2.0),
    }[op]()
    _change_in_place(idx)
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()
    # create_graph checks too
    y = {"embedding": lambda: F.embedding(idx, x), "gather": lambda: x.gather(0, idx),
         "index_select": lambda: x.index_select(0, idx), "getitem": lambda: x[idx],
         "index_put": lambda: _setitem(x * 1.0, idx, x[0] * 2.0)}[op]()
    idx.add_(0)
    with pytest.raises(RuntimeError, match=INPLACE):
        grad(y.sum(), x, create_graph=True)


def _setitem(y, key, value):
    y[key] = value
    return y


def test_index_tensor_unchanged_gives_the_gradient(rng):
    x = t64(rand(rng, (4, 3)))
    idx = pydl.tensor([2, 0, 2])
    y = F.embedding(idx, x)
    idx2 = idx.clone()
    idx2.add_(1)  # a clone's change does not count
    y.sum().backward()
    assert_close(x.grad, np.array([[1.0] * 3, [0] * 3, [2.0] * 3, [0] * 3]))


def test_masked_index_backward_reports_the_version_error(rng):
    """Changing the mask changes how many elements x[mask] has: backward must report the
    in-place change, not fail in NumPy with a shape mismatch (or, with the same count, scatter
    silently to the wrong places)."""
    a = rand(rng, (3, 4))
    x = t64(a)
    mask = pydl.tensor(a > 0)
    y = x[mask]
    mask[...] = pydl.tensor(np.ones((3, 4), dtype=bool))
    with pytest.raises(RuntimeError, match=INPLACE):
        (y * y).sum().backward()

    mask = pydl.tensor(a > 0)
    y = x[mask]
    mask.copy_(pydl.tensor(np.roll(a > 0, 1)))  # same count, other places
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()

    # setitem with a mask: the mask is saved too
    mask = pydl.tensor(a > 0)
    y = x * 1.0
    y[mask] = 0.0
    mask[...] = pydl.tensor(np.zeros((3, 4), dtype=bool))
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()


def test_masked_index_of_a_modified_input_reports_the_version_error(rng):
    """x[mask] where x was saved by the op that made it (exp saves its output) and x is then
    changed in place: the version error, not a NumPy error."""
    a = rand(rng, (3, 4))
    w = t64(a)
    mask = pydl.tensor(a > 0)
    h = w.exp()
    y = h[mask]
    with pydl.no_grad():
        h.mul_(2.0)
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()
