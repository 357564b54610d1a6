"""PyTorch as the reference for double backward of the reductions, shape and indexing ops,
embedding and bilinear (float64, rtol 1e-7): the first derivative (with create_graph=True) and
the gradient of <first derivative, u> with respect to every input equal torch's. Also the
PyTorch behaviours of issue #20 in these ops: norm's gradient at a zero vector, cumsum of a 0-d
tensor, max/min/arg* over tensors with an empty dim, var/std of integers.
Skipped where torch is not installed (it is never a pydl dependency)."""
import zlib

import numpy as np
import pytest

import pydl
from pydl.testing import assert_close

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-7, 1e-10


def sq(out):
    if isinstance(out, (tuple, list)):
        return tuple(o * o for o in out)
    return out * out


def _idx(m, a):
    return m.tensor(np.asarray(a))


MASK = np.array([[True, False, True, True, False], [False, False, True, False, True],
                 [True, True, False, False, False]])
IDX = np.array([[0, 2, 2], [3, 2, 0]])
GATHER_IDX = np.array([[0, 4, 4, 1], [2, 2, 0, 3], [1, 0, 3, 3]])

# name -> (fn(m, *inputs), input shapes)
CASES = {
    # reductions
    "sum_dims_keepdim": (lambda m, x: sq(x.sum((0, 2), keepdim=True)), [(3, 4, 2)]),
    "mean_dim": (lambda m, x: sq(x.mean(1)), [(3, 5)]),
    "var_all": (lambda m, x: x.var(), [(3, 5)]),
    "var_dim_correction0": (lambda m, x: x.var(1, correction=0), [(3, 5)]),
    "var_dims_correction2_keepdim": (lambda m, x: x.var((0, 2), correction=2, keepdim=True),
                                     [(3, 2, 4)]),
    "std_all": (lambda m, x: x.std(), [(3, 5)]),
    "std_dim_keepdim": (lambda m, x: x.std(0, keepdim=True), [(3, 5)]),
    "std_noncontiguous": (lambda m, x: x.t().std(1, correction=0), [(3, 5)]),
    "max_dim_values": (lambda m, x: sq(x.max(1).values), [(3, 5)]),
    "min_dim_keepdim": (lambda m, x: sq(x.min(0, keepdim=True)[0]), [(3, 5)]),
    "max_all": (lambda m, x: x.max().exp(), [(3, 5)]),
    "amax_dims": (lambda m, x: sq(m.amax(x, (0, 2))), [(3, 4, 2)]),
    "amin_keepdim": (lambda m, x: sq(m.amin(x, 1, keepdim=True)), [(3, 5)]),
    "prod_dim": (lambda m, x: x.prod(1), [(3, 5)]),
    "prod_dim0_keepdim": (lambda m, x: x.prod(0, keepdim=True), [(3, 4)]),
    "prod_all": (lambda m, x: x.prod(), [(2, 3)]),
    "logsumexp_dim": (lambda m, x: m.logsumexp(x, 1), [(3, 5)]),
    "logsumexp_dims_keepdim": (lambda m, x: m.logsumexp(x * 3, (0, 1), keepdim=True),
                               [(3, 5)]),
    "norm_fro": (lambda m, x: m.norm(x), [(3, 5)]),
    "norm_2_dim": (lambda m, x: m.norm(x, 2, 1), [(3, 5)]),
    "norm_1_dim": (lambda m, x: sq(m.norm(x, 1, 1)), [(3, 5)]),
    "norm_3_dim_keepdim": (lambda m, x: m.norm(x, 3, 0, keepdim=True), [(3, 5)]),
    "norm_1.5": (lambda m, x: m.norm(x, 1.5, 1), [(3, 5)]),
    "norm_0.5": (lambda m, x: m.norm(x, 0.5, 1), [(3, 5)]),
    "norm_-1": (lambda m, x: m.norm(x, -1, 1), [(3, 5)]),
    "norm_inf": (lambda m, x: sq(m.norm(x, float("inf"), 1)), [(3, 5)]),
    "norm_-inf": (lambda m, x: sq(m.norm(x, float("-inf"), 0)), [(3, 5)]),
    "cumsum": (lambda m, x: sq(m.cumsum(x, 1)), [(3, 5)]),
    "cumsum_dim0": (lambda m, x: sq(x.cumsum(0)), [(3, 5)]),
    # shape
    "reshape_view_flatten": (lambda m, x: sq(x.reshape(5, 3).view(15).unsqueeze(0).flatten()),
                             [(3, 5)]),
    "squeeze_unsqueeze": (lambda m, x: sq(x.squeeze(1).unsqueeze(-1)), [(3, 1, 5)]),
    "expand": (lambda m, x: sq(x.expand(2, 3, 5)) * m.arange(5.0, dtype=m.float64),
               [(3, 1)]),
    "permute_transpose": (lambda m, x: sq(x.permute(2, 0, 1).transpose(0, 1)) *
                          m.arange(3.0, dtype=m.float64), [(2, 3, 3)]),
    "t_mT": (lambda m, x: sq(x.t()) * m.arange(3.0, dtype=m.float64), [(3, 5)]),
    "cat": (lambda m, x, y: sq(m.cat([x, y, x], 1)), [(3, 2), (3, 4)]),
    "stack": (lambda m, x, y: sq(m.stack([x, y * 2], 2)), [(3, 2), (3, 2)]),
    "split_chunk": (lambda m, x: sq(x.split(2, 1) + x.chunk(2, 0)), [(3, 5)]),
    "split_sections_unbind": (lambda m, x: sq(x.split([1, 3, 1], 1) + x.unbind(0)), [(3, 5)]),
    "flip": (lambda m, x: m.flip(x, (0, 1)) * x, [(3, 5)]),
    "repeat": (lambda m, x: sq(x.repeat(2, 1, 3)) * m.arange(6.0, dtype=m.float64), [(3, 2)]),
    "pad_constant": (lambda m, x: sq(m.nn.functional.pad(x, (2, -1, 1, 0), value=1.5)),
                     [(2, 3, 4)]),
    "pad_reflect_1d": (lambda m, x: sq(m.nn.functional.pad(x, (2, 3), mode="reflect")) *
                       m.arange(10.0, dtype=m.float64), [(2, 3, 5)]),
    "pad_reflect_2d": (lambda m, x: sq(m.nn.functional.pad(x, (1, 2, 2, 1), mode="reflect")),
                       [(1, 2, 4, 5)]),
    "pad_replicate": (lambda m, x: sq(m.nn.functional.pad(x, (3, 1, 0, 2), mode="replicate")),
                      [(1, 2, 4, 5)]),
    "pad_circular": (lambda m, x: sq(m.nn.functional.pad(x, (2, 3, 1, 0), mode="circular")),
                     [(1, 2, 4, 5)]),
    # indexing
    "getitem_basic": (lambda m, x: sq(x[1:, ::2]) + sq(x[0, None, -1]), [(3, 5)]),
    "getitem_advanced": (lambda m, x: sq(x[[0, 2, 2], 1:]) * m.arange(4.0, dtype=m.float64),
                         [(3, 5)]),
    "getitem_tensor_index": (lambda m, x: sq(x[:, _idx(m, [4, 0, 4])]), [(3, 5)]),
    "getitem_mask": (lambda m, x: sq(x[_idx(m, MASK)]) * m.arange(7.0, dtype=m.float64),
                     [(3, 5)]),
    "setitem_index": (lambda m, x, v: sq(_setitem(x * 1.0, ([0, 2], slice(1, 3)), v * v)),
                      [(3, 5), (2, 2)]),
    "setitem_mask": (lambda m, x, v: sq(_setitem(x * 1.0, _idx(m, MASK), v.exp())),
                     [(3, 5), ()]),
    "masked_fill": (lambda m, x: sq(x.masked_fill(_idx(m, MASK), 2.0)), [(3, 5)]),
    "index_select": (lambda m, x: sq(x.index_select(1, _idx(m, [4, 0, 4, 2]))), [(3, 5)]),
    "gather": (lambda m, x: sq(x.gather(1, _idx(m, GATHER_IDX))), [(3, 5)]),
    "gather_dim0": (lambda m, x: sq(x.gather(0, _idx(m, GATHER_IDX[:, :4] % 3))), [(3, 5)]),
    "embedding": (lambda m, w: sq(m.nn.functional.embedding(_idx(m, IDX), w)), [(5, 3)]),
    "embedding_padding_idx": (lambda m, w: sq(m.nn.functional.embedding(
        _idx(m, IDX), w, padding_idx=2)), [(5, 3)]),
    "bilinear": (lambda m, a, b, w, c: m.nn.functional.bilinear(a, b, w, c),
                 [(4, 3), (4, 2), (5, 3, 2), (5,)]),
    "bilinear_batch_nobias": (lambda m, a, b, w: sq(m.nn.functional.bilinear(a, b, w)),
                              [(2, 3, 3), (2, 3, 2), (4, 3, 2)]),
}


def _setitem(y, key, value):
    y[key] = value
    return y


def _inputs(name, shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    arrays = []
    for s in shapes:
        # away from |x|'s kink; asarray: a 0-d array, not a NumPy scalar
        arrays.append(np.asarray(rng.uniform(0.3, 1.5, s) * rng.choice([-1.0, 1.0], s)))
    if name.startswith("prod"):
        arrays[0].flat[1] = 0.0  # one zero: the exclusive-product path
    return arrays


def _run(lib, fn, arrays, vs, us):
    """The outputs, the first derivatives (v^T J, with create_graph) and the gradient of
    <first derivatives, u> with respect to the inputs and to v."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *xs)
    outs = list(out) if isinstance(out, tuple) else [out]
    vts = [lib.tensor(v, requires_grad=True) for v in vs]
    gs = lib.autograd.grad(outs, xs, vts, create_graph=True, allow_unused=True)
    total = None
    for g, u in zip(gs, us):
        if g is not None and g.requires_grad:
            s = (g * lib.tensor(u)).sum()
            total = s if total is None else total + s
    hs = [None] * (len(xs) + len(vts)) if total is None else \
        lib.autograd.grad(total, xs + vts, allow_unused=True)
    return outs, gs, hs


def _numpy(t, shape):
    if t is None:
        return np.zeros(shape)
    return t.detach().numpy() if hasattr(t, "detach") else t.numpy()


def check_against_torch(fn, arrays, seed=0):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        touts = fn(torch, *[torch.tensor(a) for a in arrays])
    touts = list(touts) if isinstance(touts, tuple) else [touts]
    vs = [np.asarray(rng.standard_normal(tuple(o.shape))) for o in touts]
    us = [np.asarray(rng.standard_normal(a.shape)) for a in arrays]
    outs, gs, hs = _run(pydl, fn, arrays, vs, us)
    touts, tgs, ths = _run(torch, fn, arrays, vs, us)
    for o, to in zip(outs, touts):
        assert_close(o, to.detach().numpy(), rtol=RTOL, atol=ATOL)
    for a, g, tg in zip(arrays, gs, tgs):
        assert_close(_numpy(g, a.shape), _numpy(tg, a.shape), rtol=RTOL, atol=ATOL)
    for a, h, th in zip(arrays + vs, hs, ths):
        assert_close(_numpy(h, a.shape), _numpy(th, a.shape), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_double_backward_matches_torch(name):
    fn, shapes = CASES[name]
    check_against_torch(fn, _inputs(name, shapes))


def test_ties_and_constant_slices_match_torch():
    """Where PyTorch picks a convention (ties share max's gradient; std's gradient on a
    constant slice is 0), the first and second derivatives follow it."""
    ties = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.0, 4.0, 4.0]])
    check_against_torch(lambda m, x: sq(m.amax(x, 1)), [ties])
    check_against_torch(lambda m, x: x.max().exp(), [ties])
    check_against_torch(lambda m, x: sq(m.norm(x, float("inf"), 1)), [ties])
    # std of a constant row: the first derivative is 0 for every v, so its derivatives are 0;
    # torch's derivative in v is NaN there (its masked grad / std still divides by 0).
    const = np.array([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]])
    v, u = np.array([0.7, -1.3]), np.array([[0.5, 2.0, 1.0], [-1.0, 0.25, 3.0]])
    _, gs, hs = _run(pydl, lambda m, x: x.std(1), [const], [v], [u])
    _, tgs, ths = _run(torch, lambda m, x: x.std(1), [const], [v], [u])
    assert_close(gs[0], tgs[0].detach().numpy(), rtol=RTOL, atol=ATOL)
    assert_close(hs[0], ths[0].numpy(), rtol=RTOL, atol=ATOL)
    assert_close(hs[1][1], ths[1][1].numpy(), rtol=RTOL, atol=ATOL)
    assert hs[1][0].item() == 0.0


def test_prod_with_two_zeros_matches_torch():
    a = np.array([[0.0, 2.0, 0.0, 3.0], [1.5, 0.0, -2.0, 0.5], [0.7, 1.1, -0.9, 1.3]])
    check_against_torch(lambda m, x: x.prod(1), [a])
    check_against_torch(lambda m, x: x.prod(), [a[1:]])


def test_embedding_scale_grad_by_freq_double_backward_against_torch():
    """dW = sum of v's rows read from r, / count(r): its derivative in v is u[idx] / count. The
    derivatives in w equal torch's; in v torch's lacks the 1/count (its
    embedding_dense_double_backward assumes the first backward took care of the scale), so it
    is checked as torch's / count."""
    w = np.random.default_rng(3).standard_normal((5, 3))
    c = np.arange(18.0).reshape(2, 3, 3)
    fn = lambda m, w_: m.nn.functional.embedding(  # noqa: E731
        _idx(m, IDX), w_, scale_grad_by_freq=True) * m.tensor(c)
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal((2, 3, 3)), rng.standard_normal((5, 3))
    _, gs, hs = _run(pydl, fn, [w], [v], [u])
    _, tgs, ths = _run(torch, fn, [w], [v], [u])
    assert_close(gs[0], tgs[0].detach().numpy(), rtol=RTOL, atol=ATOL)
    assert_close(_numpy(hs[0], w.shape), _numpy(ths[0], w.shape), rtol=RTOL, atol=ATOL)
    counts = np.bincount(IDX.reshape(-1), minlength=5)[IDX][..., None]
    assert_close(hs[1], ths[1].numpy() / counts, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("p", [2, 3, 1, 1.5, 0.5, -1, float("inf")], ids=str)
def test_norm_gradient_at_a_zero_vector_matches_torch(p):
    """Issue #20: PyTorch's gradient of norm at a zero vector is 0 (pydl's was NaN)."""
    a = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0]])
    x, tx = pydl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    pydl.norm(x, p, 1).sum().backward()
    torch.norm(tx, p, 1).sum().backward()
    assert_close(x.grad, tx.grad.numpy(), rtol=RTOL, atol=ATOL)
    x, tx = pydl.tensor(np.zeros(4), requires_grad=True), torch.zeros(4, dtype=torch.float64,
                                                                      requires_grad=True)
    pydl.norm(x, p).backward()
    torch.norm(tx, p).backward()
    assert_close(x.grad, tx.grad.numpy())


def test_norm_p2_double_backward_next_to_a_zero_vector_matches_torch():
    """The non-zero row's second derivative is torch's; the zero row's is 0 here, where torch's
    is NaN (its masked x / norm still divides 0 by 0 in the double backward)."""
    a = np.array([[0.0, 0.0], [1.0, 2.0]])
    v, u = np.array([0.7, -1.3]), np.array([[0.5, 2.0], [-1.0, 0.25]])
    _, gs, hs = _run(pydl, lambda m, x: m.norm(x, 2, 1), [a], [v], [u])
    _, tgs, ths = _run(torch, lambda m, x: m.norm(x, 2, 1), [a], [v], [u])
    assert_close(gs[0], tgs[0].detach().numpy(), rtol=RTOL, atol=ATOL)
    assert_close(hs[0][1], ths[0][1].numpy(), rtol=RTOL, atol=ATOL)
    assert_close(hs[0][0], [0.0, 0.0])


def test_cumsum_of_a_zero_d_tensor_matches_torch():
    """Issue #20: cumsum of a 0-d tensor is 0-d."""
    y, ty = pydl.cumsum(pydl.tensor(2.5), 0), torch.cumsum(torch.tensor(2.5), 0)
    assert y.shape == tuple(ty.shape) == ()
    assert y.item() == ty.item()
    assert pydl.tensor(2.5).cumsum(-1).shape == ()


@pytest.mark.parametrize("name", ["amax", "amin", "argmax", "argmin", "max", "min"])
def test_reductions_over_tensors_with_an_empty_dim_match_torch(name):
    """Issue #20: along a non-empty dim of a tensor with another dim of size 0 the result is
    empty (pydl raised); along the empty dim both raise IndexError."""
    a = np.zeros((0, 3))
    ours, theirs = getattr(pydl, name)(pydl.tensor(a), dim=1), \
        getattr(torch, name)(torch.tensor(a), dim=1)
    if name in ("max", "min"):
        assert ours.indices.shape == tuple(theirs.indices.shape)
        ours, theirs = ours.values, theirs.values
    assert ours.shape == tuple(theirs.shape) == (0,)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    b = np.zeros((2, 0, 3))
    ours = getattr(pydl, name)(pydl.tensor(b), dim=2, keepdim=True)
    theirs = getattr(torch, name)(torch.tensor(b), dim=2, keepdim=True)
    ours = ours[0] if name in ("max", "min") else ours
    theirs = theirs[0] if name in ("max", "min") else theirs
    assert ours.shape == tuple(theirs.shape) == (2, 0, 1)
    for lib, t in ((pydl, pydl.tensor(a)), (torch, torch.tensor(a))):
        with pytest.raises(IndexError, match="non-zero size"):
            getattr(lib, name)(t, dim=0)


def test_reductions_over_an_empty_tensor_without_dim_raise_as_torch():
    for name in ("amax", "amin", "argmax", "argmin", "max", "min"):
        for lib in (pydl, torch):
            with pytest.raises((RuntimeError, IndexError), match=r"numel\(\) == 0"):
                getattr(lib, name)(lib.zeros(0, 3))


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_of_integers_raise_as_torch(name):
    """Issue #20: var/std of an integer tensor raise (pydl returned a truncated integer)."""
    for lib in (pydl, torch):
        with pytest.raises(RuntimeError, match="std and var only support floating point"):
            getattr(lib, name)(lib.tensor([1, 2, 4]))
    assert_close(getattr(pydl, name)(pydl.tensor([1.0, 2.0, 4.0], dtype=pydl.float64)),
                 getattr(torch, name)(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
                 .numpy())
