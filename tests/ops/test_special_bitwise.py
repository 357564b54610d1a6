"""erfinv (float64 accuracy against a bisection on math.erf written here), addcmul/addcdiv and
their in-place forms, bitwise ops on integer and bool tensors."""
import math

import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck, gradgradcheck
from pydl.testing import assert_close

rng = np.random.default_rng(21)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def erfinv_bisection(x: float) -> float:
    """The y with erf(y) = x by bisection on the C library's erf/erfc (slow, obviously right)."""
    if x == 0:
        return 0.0
    if abs(x) < 1e-8:  # below bisection's reach: the series sqrt(pi)/2 (x + pi x^3 / 12 + ...)
        return math.sqrt(math.pi) / 2 * x * (1 + math.pi * x * x / 12)
    a = abs(x)
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # compare in the form without cancellation near 1
        too_small = (math.erfc(mid) > 1 - a) if a > 0.5 else (math.erf(mid) < a)
        lo, hi = (mid, hi) if too_small else (lo, mid)
    return math.copysign(0.5 * (lo + hi), x)


def test_erfinv_float64_accuracy():
    xs = np.concatenate([rng.uniform(-1, 1, 200), [0.0, 1e-300, -1e-12, 0.5, -0.5, 0.9999,
                                                   1 - 2 ** -52, -(1 - 2 ** -40), 0.3]])
    out = pydl.erfinv(pydl.tensor(xs)).numpy()
    ref = np.array([erfinv_bisection(float(v)) for v in xs])
    np.testing.assert_allclose(out, ref, rtol=4e-15, atol=0)
    # erf(erfinv(x)) == x to float64 precision
    back = np.array([math.erf(v) for v in out])
    np.testing.assert_allclose(back, xs, rtol=1e-15, atol=1e-300)


def test_erfinv_edges_dtypes_and_shapes():
    out = pydl.erfinv(pydl.tensor([1.0, -1.0, 1.5, -2.0, float("nan")], dtype=pydl.float64))
    assert out.tolist()[:2] == [math.inf, -math.inf]
    assert all(math.isnan(v) for v in out.tolist()[2:])
    f32 = pydl.tensor([0.25, -0.75])
    assert pydl.erfinv(f32).dtype == np.float32
    assert_close(pydl.erfinv(f32), [erfinv_bisection(float(np.float32(v)))
                                    for v in (0.25, -0.75)], rtol=1e-6)
    assert pydl.erfinv(pydl.tensor([0, 1])).dtype == np.float32  # ints: the default dtype
    assert pydl.erfinv(pydl.zeros(0, 3)).shape == (0, 3)
    assert pydl.erfinv(pydl.tensor(0.5)).shape == ()
    x = pydl.tensor(rng.uniform(-0.9, 0.9, (4, 6))).t()  # non-contiguous
    assert_close(x.erfinv(), [[erfinv_bisection(float(v)) for v in r] for r in x.numpy()],
                 rtol=1e-6)
    y = pydl.tensor([0.1, 0.2], dtype=pydl.float64)
    y.erfinv_()
    assert_close(y, [erfinv_bisection(0.1), erfinv_bisection(0.2)], rtol=1e-14)


@pytest.mark.parametrize("shape", [(7,), (1,), (3, 5), ()], ids=str)
def test_erfinv_gradients(shape):
    x = t64(rng.uniform(-0.95, 0.95, shape))
    assert gradcheck(pydl.erfinv, [x])
    assert gradgradcheck(pydl.erfinv, [x])
    xv = x.detach()
    (g,) = pydl.autograd.grad(pydl.erfinv(x).sum(), [x])
    ref = math.sqrt(math.pi) / 2 * np.exp(np.vectorize(erfinv_bisection)(xv.numpy()) ** 2)
    assert_close(g, ref, rtol=1e-12)


# -- addcmul / addcdiv ----------------------------------------------------------------------------
SHAPES3 = [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((1,), (5,), (1,)), ((0, 2), (2,),
                                                                                 (0, 2))]


@pytest.mark.parametrize("shapes", SHAPES3, ids=str)
@pytest.mark.parametrize("value", [1, 0.5, -2])
def test_addcmul_addcdiv(shapes, value):
    a, b, c = (rng.standard_normal(s) for s in shapes)
    c = np.where(np.abs(c) < 0.3, 0.5, c)
    assert_close(pydl.addcmul(t64(a, False), t64(b, False), t64(c, False), value=value),
                 a + value * b * c)
    assert_close(pydl.addcdiv(t64(a, False), t64(b, False), t64(c, False), value=value),
                 a + value * b / c)
    ins = [t64(a), t64(b), t64(c)]
    assert gradcheck(lambda x, y, z: pydl.addcmul(x, y, z, value=value), ins)
    assert gradgradcheck(lambda x, y, z: pydl.addcdiv(x, y, z, value=value), ins)


def test_addcmul_addcdiv_inplace_and_errors():
    a = rng.standard_normal((2, 3))
    t = t64(a, False)
    t.addcmul_(t64(np.ones(3), False), t64(np.full(3, 2.0), False), value=0.5)
    assert_close(t, a + 1.0)
    t.addcdiv_(t64(np.ones((2, 3)), False), t64(np.full((2, 3), 4.0), False))
    assert_close(t, a + 1.25)
    assert t._version == 2
    w = t64(a)
    y = w * 1.0
    y.addcmul_(w, w, value=2)
    y.sum().backward()
    assert_close(w.grad, 1.0 + 4.0 * a)
    with pytest.raises(RuntimeError, match="Integer division with addcdiv"):
        pydl.addcdiv(pydl.zeros(2), pydl.tensor([1, 2]), pydl.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="must not be a floating point"):
        pydl.addcmul(pydl.tensor([1]), pydl.tensor([1]), pydl.tensor([1]), value=0.5)
    i = pydl.tensor([1, 2])
    i.addcmul_(pydl.tensor([3, 4]), pydl.tensor([1, 1]), value=2)
    assert i.tolist() == [7, 10]


# -- bitwise --------------------------------------------------------------------------------------
def test_bitwise_on_integers_matches_python():
    a = rng.integers(-50, 50, (4, 5))
    b = rng.integers(-50, 50, (5,))
    ta, tb = pydl.tensor(a), pydl.tensor(b)
    ref = {"and": [[x & y for x, y in zip(r, b)] for r in a.tolist()],
           "or": [[x | y for x, y in zip(r, b)] for r in a.tolist()],
           "xor": [[x ^ y for x, y in zip(r, b)] for r in a.tolist()]}
    assert (ta & tb).tolist() == ref["and"] and pydl.bitwise_and(ta, tb).tolist() == ref["and"]
    assert (ta | tb).tolist() == ref["or"] and ta.bitwise_or(tb).tolist() == ref["or"]
    assert (ta ^ tb).tolist() == ref["xor"] and pydl.bitwise_xor(ta, tb).tolist() == ref["xor"]
    assert (~ta).tolist() == [[~x for x in r] for r in a.tolist()]
    assert pydl.bitwise_not(ta).dtype == np.int64
    assert (ta & 6).tolist() == [[x & 6 for x in r] for r in a.tolist()]
    assert (6 | ta).tolist() == [[6 | x for x in r] for r in a.tolist()]
    assert (pydl.tensor([1, 8]) << 2).tolist() == [4, 32]
    assert (pydl.tensor([-16, 9]) >> 2).tolist() == [-4, 2]
    assert pydl.bitwise_left_shift(pydl.tensor([3]), pydl.tensor([4])).tolist() == [48]
    assert (5 & pydl.tensor([3])).tolist() == [1]
    assert (ta & tb).dtype == np.int64
    i32 = pydl.tensor(np.array([5, 6], dtype=np.int32))
    assert (i32 & 3).dtype == np.int32
    assert (i32 & pydl.tensor([3, 3])).dtype == np.int64


def test_bitwise_on_bools_stays_logical_and_inplace():
    p = pydl.tensor([True, True, False, False])
    q = pydl.tensor([True, False, True, False])
    assert (p & q).tolist() == [True, False, False, False] and (p & q).dtype == np.bool_
    assert (p | q).tolist() == [True, True, True, False]
    assert (p ^ q).tolist() == [False, True, True, False]
    assert (~p).tolist() == [False, False, True, True]
    assert (p & True).dtype == np.bool_
    assert (p & pydl.tensor([1, 1, 1, 1])).dtype == np.int64  # bool & int64: int64
    x = pydl.tensor([12, 10])
    x &= pydl.tensor([10, 3])
    assert x.tolist() == [8, 2] and x._version == 1
    x |= 1
    assert x.tolist() == [9, 3]
    x.bitwise_xor_(pydl.tensor([1, 1]))
    assert x.tolist() == [8, 2]
    assert (~pydl.tensor(0)).item() == -1 and (~pydl.tensor(0)).shape == ()
    assert (pydl.zeros(0, dtype=pydl.int64) & 1).shape == (0,)


def test_bitwise_refuses_floats():
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        pydl.tensor([1.0]) & pydl.tensor([1.0])
    with pytest.raises(RuntimeError, match="not implemented"):
        ~pydl.tensor([1.0])
    with pytest.raises(RuntimeError, match="float operand"):
        pydl.tensor([1]) | 1.5


# -- log1p / expm1 / erf (small arrays on NumPy, large ones on the native elementwise engine) ----
@pytest.mark.parametrize("name", ["log1p", "expm1", "erf"])
@pytest.mark.parametrize("shape", [(7,), (1,), (3, 5), (), (0, 2)], ids=str)
def test_log1p_expm1_erf(name, shape):
    lo = -0.9 if name == "log1p" else -3.0
    a = rng.uniform(lo, 3.0, shape)
    ref = {"log1p": lambda v: math.log1p(v), "expm1": lambda v: math.expm1(v),
           "erf": lambda v: math.erf(v)}[name]
    out = getattr(pydl, name)(t64(a, False))
    assert_close(out, np.vectorize(ref, otypes=[float])(a) if a.size else a, rtol=1e-14,
                 atol=1e-300)
    assert_close(getattr(t64(a, False), name)(), out.numpy())
    if a.size:
        assert gradcheck(getattr(pydl, name), [t64(a)])
        assert gradgradcheck(getattr(pydl, name), [t64(a)])


def test_log1p_expm1_erf_small_values_dtypes():
    tiny = pydl.tensor(np.array([1e-17, -1e-20]))
    assert pydl.log1p(tiny).tolist() == [1e-17, -1e-20]  # log(1 + x) would give 0
    assert pydl.expm1(tiny).tolist() == [1e-17, -1e-20]
    assert pydl.erf(pydl.tensor([0.5])).dtype == np.float32
    assert pydl.log1p(pydl.tensor([0, 1])).dtype == np.float32
    assert pydl.erf(pydl.tensor([float("inf"), -float("inf")])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("name", ["log1p", "expm1", "erf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
def test_log1p_expm1_erf_native_sizes(name, dtype, transposed):
    """Arrays of 1024+ elements run on csrc/elementwise (float erf and log1p/expm1 vectorised,
    float64 erf through the C library): checked against math.* in float64, strided input
    included, and the gradient against the formula's float64 value."""
    lo = -0.99 if name == "log1p" else -6.0
    a = rng.uniform(lo, 6.0, (67, 61))  # 4087 elements: over the engine's size threshold
    a[0, :4] = [0.0, 1e-7, -1e-7, lo]
    src = a.T.astype(dtype) if transposed else a.astype(dtype)
    ref_fn = {"log1p": math.log1p, "expm1": math.expm1, "erf": math.erf}[name]
    ref = np.vectorize(ref_fn, otypes=[float])(src.astype(np.float64))
    x = pydl.tensor(src, requires_grad=True)
    out = getattr(pydl, name)(x)
    assert out.dtype == dtype and out.shape == src.shape
    ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    err = np.abs(out.detach().numpy().astype(np.float64) - ref) / np.maximum(ulp, np.finfo(dtype).tiny)
    assert err.max() <= 4, (name, dtype, err.max())
    out.sum().backward()
    d = {"log1p": lambda v: 1 / (1 + v), "expm1": np.exp,
         "erf": lambda v: 2 / math.sqrt(math.pi) * np.exp(-v * v)}[name](src.astype(np.float64))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(x.grad.numpy(), d, rtol=rtol, atol=rtol * 1e-3)
