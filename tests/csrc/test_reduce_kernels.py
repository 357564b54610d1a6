"""csrc/reduce/ kernels against float64 NumPy references: sums (x, (x - c)^2, |x|, exp(x - c)),
max/min/max|x| with indices, softmax rows, the transposing copy; on every SIMD path, random axes
sets, strided / broadcast / zero-size views, prime sizes; and bitwise determinism across thread
counts. Also the ops that dispatch to them (sum, mean, var, std, logsumexp, norm, amax, argmax,
softmax, log_softmax, contiguous) on arrays large enough to take the kernels."""
import itertools

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C


@pytest.fixture(params=_C.available_simd_paths())
def simd_path(request):
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


@pytest.fixture
def restore_threads():
    threads = pydl.get_num_threads()
    yield
    pydl.set_num_threads(threads)


def _views(rng, dtype):
    """(name, array view) pairs: contiguous, transposed, sliced with steps, broadcast, primes."""
    base = rng.standard_normal((7, 11, 13)).astype(dtype)
    big = rng.standard_normal((37, 41, 29)).astype(dtype)
    yield "prime", base
    yield "big", big
    yield "transposed", big.transpose(2, 0, 1)
    yield "sliced", big[::2, 3:, ::3]
    yield "broadcast", np.broadcast_to(rng.standard_normal((1, 41, 1)).astype(dtype), (5, 41, 7))
    yield "long_row", rng.standard_normal((3, 70001)).astype(dtype)
    yield "zero", np.zeros((4, 0, 3), dtype)


def _axes_sets(ndim):
    for r in range(0, ndim + 1):
        yield from itertools.combinations(range(ndim), r)


def _tol(dtype, x, axes):
    n = max(1, int(np.prod([x.shape[a] for a in axes])))
    return (1e-5 if dtype == np.float32 else 1e-12) * np.sqrt(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_any_axes(simd_path, dtype):
    rng = np.random.default_rng(0)
    for name, x in _views(rng, dtype):
        xd = x.astype(np.float64)
        for axes in _axes_sets(x.ndim):
            ref_shape = np.sum(xd, axis=axes).shape
            c = rng.standard_normal(ref_shape).astype(dtype)
            cd = np.expand_dims(c.astype(np.float64), axes)
            refs = {0: xd.sum(axis=axes), 1: ((xd - cd) ** 2).sum(axis=axes),
                    2: np.abs(xd).sum(axis=axes), 3: np.exp(xd - cd).sum(axis=axes)}
            for op, ref in refs.items():
                got = _C.reduce_sum(x, list(axes), op, c if op in (1, 3) else None)
                assert got.shape == ref.shape and got.dtype == dtype, (name, axes, op)
                scale = np.abs(refs[2] if op == 0 else ref) + 1
                err = np.abs(got - ref) / scale
                assert (err <= _tol(dtype, x, axes)).all(), (name, axes, op, err.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_indices_any_axes(simd_path, dtype):
    rng = np.random.default_rng(1)
    for name, x in _views(rng, dtype):
        for axes in _axes_sets(x.ndim):
            if any(x.shape[a] == 0 for a in axes) or (not axes and x.size == 0):
                if axes and x.size == 0 and any(x.shape[a] == 0 for a in axes):
                    with pytest.raises(ValueError):
                        _C.reduce_ext(x, list(axes), 0, False)
                continue
            for op, f in ((0, np.max), (1, np.min), (2, lambda a, axis: np.abs(a).max(axis=axis))):
                v, i = _C.reduce_ext(x, list(axes), op, len(axes) == 1)
                np.testing.assert_array_equal(v, f(x, axis=axes), err_msg=f"{name} {axes} {op}")
                if len(axes) == 1:
                    a = axes[0]
                    ref_i = (np.argmax(np.abs(x), axis=a) if op == 2 else
                             (np.argmax if op == 0 else np.argmin)(x, axis=a))
                    np.testing.assert_array_equal(i, ref_i, err_msg=f"{name} {axes} {op}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_nan_propagates_and_ties_first(simd_path, dtype):
    x = np.zeros((5, 3001), dtype)
    x[1, 2000] = np.nan
    x[2, 17] = x[2, 2999] = 5  # tie: first index
    x[3, :] = -np.inf
    x[4, 3000] = np.nan
    x[4, 5] = np.inf
    for axes in [(1,), (0, 1)]:
        v, i = _C.reduce_ext(x, list(axes), 0, True)
        np.testing.assert_array_equal(v, np.max(x, axis=axes))
        if axes == (1,):
            np.testing.assert_array_equal(i, np.argmax(x, axis=1))
    v, i = _C.reduce_ext(np.ascontiguousarray(x.T), [0], 1, True)
    np.testing.assert_array_equal(v, np.min(x, axis=1))
    np.testing.assert_array_equal(i, np.argmin(x, axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_at_every_lane_position(simd_path, dtype):
    """NaN / +inf / -inf at positions that land in each of the max kernel's four chains, the
    single-vector loop and the scalar tail, and in every row of the four-row sum: max/min and
    their first index propagate NaN (as torch.max); softmax / log_softmax rows holding NaN or
    +inf are all NaN, and rows of -inf too (torch); sums give NaN / inf as float64 NumPy."""
    for n in (1, 7, 9, 33, 67, 1000):
        for pos in sorted({0, n // 3, n // 2, n - 9, n - 2, n - 1} - {-1, -2, -8, -9} & set(range(n))):
            for bad in (np.nan, np.inf, -np.inf):
                x = np.linspace(-3, 3, 8 * n).astype(dtype).reshape(8, n)
                x[5, pos] = bad
                for op, f, argf in ((0, np.max, np.argmax), (1, np.min, np.argmin)):
                    v, i = _C.reduce_ext(x, [1], op, True)
                    np.testing.assert_array_equal(v, f(x, axis=1), err_msg=f"{n} {pos} {bad}")
                    np.testing.assert_array_equal(i, argf(x, axis=1), err_msg=f"{n} {pos} {bad}")
                np.testing.assert_allclose(_C.reduce_sum(x, [1]), x.astype(np.float64).sum(axis=1),
                                           rtol=1e-5, atol=1e-4)  # NaN / inf where NumPy has them
                for log in (False, True):
                    y = _C.softmax_rows(x, log)
                    rows_ok = np.isfinite(y[[0, 1, 2, 3, 4, 6, 7]]).all()
                    if bad == -np.inf and n > 1:  # e^-inf = 0: softmax 0, log_softmax -inf
                        assert rows_ok and y[5, pos] == (-np.inf if log else 0), (n, pos, log)
                        assert np.isfinite(np.delete(y[5], pos)).all(), (n, pos, log)
                    else:  # NaN, +inf, or a row that is all -inf
                        assert rows_ok and np.isnan(y[5]).all(), (n, pos, bad, log)


def test_float32_sum_accuracy_beats_pairwise(simd_path):
    """float32 sum of 4096 x 1024 (dim=1 and all): at least as close to the float64 sum as
    NumPy's pairwise float32 sum."""
    rng = np.random.default_rng(2)
    x = (rng.random((4096, 1024)) + 1).astype(np.float32)  # all positive: error accumulates
    xd = x.astype(np.float64)
    for axes in [(1,), (0,), (0, 1)]:
        ref = xd.sum(axis=axes)
        ours = np.abs(_C.reduce_sum(x, list(axes)) - ref).max()
        numpy_err = np.abs(x.sum(axis=axes).astype(np.float64) - ref).max()
        assert ours <= numpy_err * 1.01 + 1e-12, (axes, ours, numpy_err)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 1000), (5, 4099), (2, 70001)])
def test_softmax_rows(simd_path, dtype, shape):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    xd = x.astype(np.float64)
    e = np.exp(xd - xd.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    tol = 3e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(_C.softmax_rows(x, False), p, rtol=tol, atol=tol * 1e-3)
    np.testing.assert_allclose(_C.softmax_rows(x, True), np.log(p), rtol=tol,
                               atol=tol * np.abs(np.log(p)).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_non_finite(simd_path, dtype):
    x = np.array([[1, np.inf, 2, 0, 0, 0, 0, 0, 0, 1], [-np.inf] * 10,
                  [-np.inf, 0, 1, 2, 3, 4, 5, 6, 7, 8], [np.nan] + [0] * 9], dtype)
    for log in (False, True):
        y = _C.softmax_rows(x, log)
        assert np.isnan(y[0]).all() and np.isnan(y[1]).all() and np.isnan(y[3]).all()
        assert np.isfinite(y[2, 1:]).all()
        assert y[2, 0] == (-np.inf if log else 0)


@pytest.mark.parametrize("itemsize_dtype", [np.float32, np.float64, np.int64, np.uint8])
def test_copy_strided(itemsize_dtype):
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((3, 67, 45, 5)) * 100).astype(itemsize_dtype)
    for perm in itertools.permutations(range(4)):
        v = a.transpose(perm)
        np.testing.assert_array_equal(_C.copy_strided(v), np.ascontiguousarray(v))
    for v in (a[:, ::2, 1:, ::3], a[1], a[..., 0].T, np.broadcast_to(a[:, :1], (3, 9, 45, 5)),
              a[:, :0]):
        y = _C.copy_strided(v)
        assert y.flags.c_contiguous
        np.testing.assert_array_equal(y, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_transposing_copy_tiles_every_path(simd_path, dtype):
    """The tile kernel of the transposing copy (AVX2: 8x8 float / 4x4 double register
    transposes) on full blocks, ragged edges on both sides, a batch of transposes and sizes
    around the 32-element tile, bit for bit (NaN payloads included: moves only)."""
    rng = np.random.default_rng(12)
    for shape in [(8, 8), (4, 4), (16, 24), (67, 45), (33, 31), (7, 3), (1, 9), (1025, 40),
                  (64, 1000)]:
        a = (rng.standard_normal(shape) * 1000).astype(dtype)
        for v in (a.T, a[:, 1:].T, a.T[1:]):
            y = _C.copy_strided(v)
            assert y.flags.c_contiguous
            np.testing.assert_array_equal(y, np.ascontiguousarray(v), err_msg=f"{shape} {simd_path}")
    b = (rng.standard_normal((3, 67, 45)) * 1000).astype(dtype)
    np.testing.assert_array_equal(_C.copy_strided(b.transpose(0, 2, 1)),
                                  np.ascontiguousarray(b.transpose(0, 2, 1)))
    np.testing.assert_array_equal(_C.copy_strided(b.transpose(2, 1, 0)),
                                  np.ascontiguousarray(b.transpose(2, 1, 0)))
    if dtype in (np.float32, np.float64):
        bits = np.uint32 if dtype == np.float32 else np.uint64
        c = rng.standard_normal((40, 24)).astype(dtype)
        u = c.view(bits)
        u[::3, ::5] = np.array(0x7FC01234 if dtype == np.float32 else 0x7FF8000000ABCDEF,
                               dtype=bits)  # NaNs with payloads
        y = _C.copy_strided(c.T)
        np.testing.assert_array_equal(y.view(bits), np.ascontiguousarray(u.T))


def test_bad_arguments():
    x = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError):
        _C.reduce_sum(x.astype(np.int64), [0])
    with pytest.raises(ValueError):
        _C.reduce_sum(x, [2])
    with pytest.raises(ValueError):
        _C.reduce_sum(x[::-1], [0])
    with pytest.raises(ValueError):
        _C.reduce_sum(x, [0], 1, np.ones(3, np.float32))
    with pytest.raises(ValueError):
        _C.reduce_ext(x, [0], 7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vertical_sums_many_units(simd_path, dtype):
    """Reductions whose kept axis is contiguous (sum(dim=0)): columns added in registers in
    groups of rows, many units of partials added pairwise (n > 8 recurses), column blocks wider
    than one item (2053 > 2048), odd widths (vector and scalar column tails), an outer kept
    axis, and the centred / |x| / exp terms; against float64 NumPy."""
    rng = np.random.default_rng(7)
    cases = [(rng.standard_normal((1500, 2053)).astype(dtype), (0,)),
             (rng.standard_normal((20011, 37)).astype(dtype), (0,)),
             (rng.standard_normal((3, 1201, 131)).astype(dtype), (1,)),
             (rng.standard_normal((17, 5, 3, 257)).astype(dtype), (0, 2)),
             (rng.standard_normal((2053, 700)).astype(dtype)[::2, 5:], (0,))]
    for x, axes in cases:
        xd = x.astype(np.float64)
        c = rng.standard_normal(np.sum(xd, axis=axes).shape).astype(dtype)
        cd = np.expand_dims(c.astype(np.float64), axes)
        refs = {0: xd.sum(axis=axes), 1: ((xd - cd) ** 2).sum(axis=axes),
                2: np.abs(xd).sum(axis=axes), 3: np.exp(xd - cd).sum(axis=axes)}
        for op, ref in refs.items():
            got = _C.reduce_sum(x, list(axes), op, c if op in (1, 3) else None)
            assert got.shape == ref.shape and got.dtype == dtype
            scale = np.abs(refs[2] if op == 0 else ref) + 1
            err = (np.abs(got - ref) / scale).max()
            assert err <= _tol(dtype, x, axes), (x.shape, axes, op, err)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_in_segments(simd_path, dtype):
    """Rows longer than a unit (32768 values) are cut into segments, four per call where they
    are four whole segments of one row: lengths that end exactly on a group, one value short
    of it, and past it, over two rows (groups that would straddle rows), against float64."""
    rng = np.random.default_rng(8)
    for n in (4 * 32768, 4 * 32768 - 5, 5 * 32768 + 7, 8 * 32768 + 1):
        x = rng.standard_normal((2, n)).astype(dtype)
        xd = x.astype(np.float64)
        c = rng.standard_normal(2).astype(dtype)
        cd = c.astype(np.float64)[:, None]
        refs = {0: xd.sum(1), 1: ((xd - cd) ** 2).sum(1), 2: np.abs(xd).sum(1),
                3: np.exp(xd - cd).sum(1)}
        for op, ref in refs.items():
            got = _C.reduce_sum(x, [1], op, c if op in (1, 3) else None)
            scale = np.abs(refs[2] if op == 0 else ref) + 1
            assert (np.abs(got - ref) / scale).max() <= _tol(dtype, x, (1,)), (n, op)
        full = _C.reduce_sum(x, [0, 1])
        assert abs(full - xd.sum()) <= _tol(dtype, x, (0, 1)) * (np.abs(xd).sum() + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_same_for_any_thread_count(simd_path, restore_threads, dtype):
    rng = np.random.default_rng(5)
    cases = [(rng.standard_normal((4096, 257)).astype(dtype), axes)
             for axes in [(1,), (0,), (0, 1)]]
    cases.append((rng.standard_normal((9, 64, 33, 31)).astype(dtype), (0, 2, 3)))
    cases.append((rng.standard_normal((1, 300001)).astype(dtype), (1,)))
    cases.append((rng.standard_normal((20000, 300)).astype(dtype), (0,)))  # 23 units, pairwise
    for x, axes in cases:
        results = set()
        for threads in (1, 2, 3, 2, 1):
            pydl.set_num_threads(threads)
            for _ in range(2):
                results.add(_C.reduce_sum(x, list(axes)).tobytes())
                results.add(_C.reduce_sum(x, list(axes), 1, np.zeros(np.sum(x, axis=axes).shape,
                                                                      dtype)).tobytes())
        assert len(results) == 2, axes
    x = rng.standard_normal((2048, 1000)).astype(dtype)
    ys = set()
    for threads in (1, 2, 3):
        pydl.set_num_threads(threads)
        ys.add(_C.softmax_rows(x, False).tobytes())
    assert len(ys) == 1


# ---- the ops that dispatch to the kernels (arrays above _native_reduce.MIN_ELEMS) -------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_through_kernels(simd_path, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 50, 23)).astype(dtype)
    xt = pydl.tensor(x)
    xd = x.astype(np.float64)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    for dim in [None, 0, 1, 2, (0, 2), (1, 2)]:
        axes = dim
        for keepdim in (False, True):
            kw = dict(dim=dim, keepdim=keepdim) if dim is not None else {}
            np.testing.assert_allclose(pydl.sum(xt, **kw).numpy(),
                                       xd.sum(axis=axes, keepdims=keepdim and dim is not None), **tol)
            np.testing.assert_allclose(pydl.mean(xt, **kw).numpy(),
                                       xd.mean(axis=axes, keepdims=keepdim and dim is not None), **tol)
            np.testing.assert_allclose(pydl.var(xt, **kw).numpy(),
                                       xd.var(axis=axes, ddof=1, keepdims=keepdim and dim is not None), **tol)
            np.testing.assert_allclose(pydl.std(xt, correction=0, **kw).numpy(),
                                       xd.std(axis=axes, keepdims=keepdim and dim is not None), **tol)
            np.testing.assert_array_equal(pydl.amax(xt, **kw).numpy(),
                                          x.max(axis=axes, keepdims=keepdim and dim is not None))
            if dim is not None:
                m = np.max(xd, axis=axes, keepdims=True)
                lse = np.log(np.exp(xd - m).sum(axis=axes, keepdims=True)) + m
                np.testing.assert_allclose(pydl.logsumexp(xt, dim, keepdim).numpy(),
                                           lse if keepdim else np.squeeze(lse, axes), **tol)
                for p, ref in ((2, np.sqrt((xd * xd).sum(axis=axes, keepdims=keepdim))),
                               (1, np.abs(xd).sum(axis=axes, keepdims=keepdim)),
                               (np.inf, np.abs(xd).max(axis=axes, keepdims=keepdim))):
                    np.testing.assert_allclose(pydl.norm(xt, p, dim, keepdim).numpy(), ref, **tol)
    for d in range(3):
        v, i = pydl.max(xt, d)
        np.testing.assert_array_equal(v.numpy(), x.max(axis=d))
        np.testing.assert_array_equal(i.numpy(), x.argmax(axis=d))
        np.testing.assert_array_equal(pydl.argmin(xt, d).numpy(), x.argmin(axis=d))
    assert int(pydl.argmax(xt).item()) == int(x.argmax())
    for d in range(3):
        e = np.exp(xd - xd.max(d, keepdims=True))
        p = e / e.sum(d, keepdims=True)
        np.testing.assert_allclose(F.softmax(xt, dim=d).numpy(), p, **tol)
        np.testing.assert_allclose(F.log_softmax(xt, dim=d).numpy(), np.log(p), **tol)
    v = pydl.tensor(x).permute(2, 0, 1)
    c = v.contiguous()
    assert c._data.flags.c_contiguous
    np.testing.assert_array_equal(c.numpy(), x.transpose(2, 0, 1))


def test_ops_gradients_through_kernels():
    """First-order gradients of the dispatching ops on a kernel-sized input (float64)."""
    from pydl.autograd import gradcheck

    rng = np.random.default_rng(7)
    x = pydl.tensor(rng.standard_normal((4, 40, 30)), requires_grad=True)
    for fn in (lambda t: pydl.var(t, dim=(0, 2)), lambda t: pydl.logsumexp(t, 1),
               lambda t: pydl.norm(t, 2, (1,)), lambda t: F.softmax(t, dim=1),
               lambda t: F.log_softmax(t, dim=-1), lambda t: pydl.amax(t, dim=(0, 1))):
        y = fn(x)
        g = pydl.tensor(rng.standard_normal(y.shape))
        (y * g).sum().backward()
        grad = x.grad.numpy().copy()
        x.grad = None
        # central differences along one random direction
        d = rng.standard_normal(x.shape)
        eps = 1e-6
        fp = (fn(pydl.tensor(x.detach().numpy() + eps * d)) * g).sum().item()
        fm = (fn(pydl.tensor(x.detach().numpy() - eps * d)) * g).sum().item()
        np.testing.assert_allclose((fp - fm) / (2 * eps), (grad * d).sum(), rtol=1e-5, atol=1e-6)
