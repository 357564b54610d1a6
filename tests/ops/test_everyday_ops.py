"""Everyday PyTorch ops of issue #20: rounding and division, pointwise math, shape ops, cumprod,
cdist, finfo/iinfo. Each is checked against a float64 NumPy reference written here, against
torch (values, dtype, shape, errors; skipped without torch), and through gradcheck and
gradgradcheck; shapes include 1, primes, zero-size and non-contiguous inputs, 0-d tensors and
Python scalars."""
import math
import warnings

import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck, gradgradcheck
from pydl.testing import assert_close

rng = np.random.default_rng(20)

SHAPES = [(), (1,), (7,), (3, 5), (0, 3), (2, 1, 13)]


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def noncontig(a):
    """A transposed (non-contiguous) tensor holding ``a``."""
    t = pydl.tensor(np.ascontiguousarray(np.asarray(a).T)).t()
    assert not t.is_contiguous()
    return t


def to_torch(x):
    torch = pytest.importorskip("torch")
    if isinstance(x, pydl.Tensor):
        return torch.from_numpy(np.array(x.numpy()))
    return x


def torch_dtype(d):
    torch = pytest.importorskip("torch")
    return getattr(torch, str(np.dtype(d)).replace("bool", "bool"))


def same_as_torch(ours, theirs, rtol=1e-6, atol=1e-6):
    """Values (NaNs matching), dtype and shape of a pydl result against torch's."""
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "")), \
        (ours.dtype, theirs.dtype)
    assert ours.shape == tuple(theirs.shape)
    assert_close(ours, theirs.numpy(), rtol=rtol, atol=atol)


def values(shape, dtype=np.float64, lo=-5, hi=5, avoid_integers=False):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(lo, hi, size=shape).astype(dtype)
    v = rng.uniform(lo, hi, size=shape)
    if avoid_integers:  # keep finite differences off the steps of floor & co.
        v = np.floor(v) + rng.uniform(0.1, 0.4, size=shape) * np.where(v >= 0, 1, 1)
    return v.astype(dtype)


# -- rounding ------------------------------------------------------------------------------------
def ref_round(x, decimals=0):
    x = np.asarray(x, dtype=np.float64)
    if decimals == 0:
        return np.rint(x)
    if decimals > 0:
        return np.rint(x * 10.0 ** decimals) / 10.0 ** decimals
    return np.rint(x / 10.0 ** -decimals) * 10.0 ** -decimals


UNARY_STEP = {
    "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "round": ref_round,
    "frac": lambda x: x - np.trunc(x),
}


@pytest.mark.parametrize("name", sorted(UNARY_STEP))
@pytest.mark.parametrize("shape", SHAPES)
def test_rounding_values_against_numpy(name, shape):
    x = values(shape, lo=-9, hi=9) * 1.37
    x = np.where(np.abs(x) < 100, x, 0)
    out = getattr(pydl, name)(pydl.tensor(x))
    assert out.shape == shape and out.dtype == np.float64
    assert_close(out, UNARY_STEP[name](x), rtol=0, atol=0)
    f32 = getattr(pydl, name)(pydl.tensor(x.astype(np.float32)))
    assert f32.dtype == np.float32
    method = getattr(pydl.tensor(x), name)()
    assert_close(method, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round"])
def test_rounding_integers_stay_integers_and_bools_refused(name):
    i = pydl.tensor([5, -7, 3])
    out = getattr(pydl, name)(i)
    assert out.dtype == np.int64 and out.tolist() == [5, -7, 3]
    with pytest.raises(NotImplementedError, match="Bool"):
        getattr(pydl, name)(pydl.tensor([True, False]))


def test_round_halves_to_even_and_decimals():
    x = pydl.tensor([2.5, 3.5, -0.5, -1.5, 0.49999997])
    assert pydl.round(x).tolist() == [2.0, 4.0, -0.0, -2.0, 0.0]
    y = pydl.tensor([1.2345, -2.675, 1250.0, 1350.0], dtype=pydl.float64)
    assert_close(pydl.round(y, decimals=2), ref_round(y.numpy(), 2), rtol=0, atol=0)
    assert_close(pydl.round(y, decimals=-2), ref_round(y.numpy(), -2), rtol=0, atol=0)
    with pytest.raises(NotImplementedError, match="Long"):
        pydl.round(pydl.tensor([1, 2]), decimals=1)
    with pytest.raises(TypeError, match="decimals"):
        pydl.round(y, decimals=1.5)
    assert not hasattr(pydl.Tensor, "__round__")  # torch defines none either
    with pytest.raises(TypeError):
        round(pydl.tensor(2.6))


def test_frac_refuses_integers():
    with pytest.raises(NotImplementedError, match="Long"):
        pydl.frac(pydl.tensor([1, 2]))
    assert pydl.frac(pydl.tensor(-2.25)).item() == -0.25


@pytest.mark.parametrize("name", sorted(UNARY_STEP))
def test_rounding_against_torch(name):
    torch = pytest.importorskip("torch")
    x = pydl.tensor(values((4, 6), np.float32, -20, 20) * 1.1)
    for inp in (x, noncontig(x.numpy()), pydl.tensor(np.float32(-2.5))):
        same_as_torch(getattr(pydl, name)(inp), getattr(torch, name)(to_torch(inp)), 0, 0)
    if name == "round":
        for d in (1, 2, -1):
            same_as_torch(pydl.round(x, decimals=d), torch.round(to_torch(x), decimals=d), 0, 0)


@pytest.mark.parametrize("name", sorted(UNARY_STEP))
def test_rounding_gradients(name):
    x = t64(values((3, 4), avoid_integers=True))
    gradcheck(getattr(pydl, name), (x,))
    y = getattr(pydl, name)(x)
    y.sum().backward()
    expected = np.ones(x.shape) if name == "frac" else np.zeros(x.shape)
    assert_close(x.grad, expected, rtol=0, atol=0)
    if name == "frac":
        gradgradcheck(lambda a: pydl.frac(a) * a, (x,))


def test_rounding_in_place():
    x = pydl.tensor([1.5, -1.5, 2.7])
    assert x.floor_() is x and x.tolist() == [1.0, -2.0, 2.0]
    y = pydl.tensor([1.26, -1.5])
    y.round_(decimals=1)
    assert_close(y, [1.3, -1.5])
    z = pydl.tensor([1.75, -1.25])
    z.frac_()
    assert z.tolist() == [0.75, -0.25]
    for name in ("ceil_", "trunc_", "fix_"):
        w = pydl.tensor([1.5, -1.5])
        getattr(w, name)()
        assert w.tolist() == getattr(np, name[:-1] if name != "fix_" else "trunc")(
            [1.5, -1.5]).tolist()


# -- remainder, fmod, floor_divide, div(rounding_mode) -------------------------------------------
def ref_remainder(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(all="ignore"):
        return a - b * np.floor(a / b)


def ref_fmod(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(all="ignore"):
        return a - b * np.trunc(a / b)


def ref_floor_div(a, b):
    with np.errstate(all="ignore"):
        return np.floor(np.asarray(a, np.float64) / np.asarray(b, np.float64))


def ref_trunc_div(a, b):
    with np.errstate(all="ignore"):
        return np.trunc(np.asarray(a, np.float64) / np.asarray(b, np.float64))


DIVISION = {
    "remainder": (pydl.remainder, ref_remainder),
    "fmod": (pydl.fmod, ref_fmod),
    "floor_divide": (pydl.floor_divide, ref_floor_div),
    "div_floor": (lambda a, b: pydl.div(a, b, rounding_mode="floor"), ref_floor_div),
    "div_trunc": (lambda a, b: pydl.div(a, b, rounding_mode="trunc"), ref_trunc_div),
}


@pytest.mark.parametrize("name", sorted(DIVISION))
@pytest.mark.parametrize("shapes", [((7,), (7,)), ((3, 5), (5,)), ((2, 1, 13), (3, 1)),
                                    ((0, 3), (3,)), ((), ()), ((1,), ())])
def test_division_floats_against_numpy(name, shapes):
    fn, ref = DIVISION[name]
    a = values(shapes[0], lo=-50, hi=50)
    b = values(shapes[1], lo=1, hi=9) * rng.choice([-1, 1], size=shapes[1]) * 1.3
    out = fn(pydl.tensor(a), pydl.tensor(b))
    expected = ref(a, b)
    assert out.shape == expected.shape and out.dtype == np.float64
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(DIVISION))
def test_division_integers_against_numpy(name):
    fn, ref = DIVISION[name]
    a = rng.integers(-40, 40, size=(6, 11))
    b = rng.integers(1, 7, size=(11,)) * rng.choice([-1, 1], size=(11,))
    out = fn(pydl.tensor(a), pydl.tensor(b))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), ref(a, b).astype(np.int64))
    # a Python int divisor, and a non-contiguous dividend
    out = fn(noncontig(a), -3)
    np.testing.assert_array_equal(out.numpy(), ref(a, -3).astype(np.int64))


@pytest.mark.parametrize("name", sorted(DIVISION))
def test_integer_division_by_zero_raises(name):
    fn, _ = DIVISION[name]
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(pydl.tensor([5, -7]), 0)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(pydl.tensor([5, -7]), pydl.tensor([1, 0]))
    with pytest.raises(NotImplementedError, match="Bool"):
        fn(pydl.tensor([True]), pydl.tensor([True]))


def test_float_division_by_zero_is_ieee():
    a = pydl.tensor([5.0, -5.0, 0.0])
    assert_close(pydl.floor_divide(a, 0.0), [math.inf, -math.inf, math.nan])
    assert all(math.isnan(v) for v in pydl.remainder(a, 0.0).tolist())
    assert all(math.isnan(v) for v in pydl.fmod(a, 0.0).tolist())


def test_division_signs_and_operators():
    a = pydl.tensor([5, -5, 5, -5])
    b = pydl.tensor([3, 3, -3, -3])
    assert (a % b).tolist() == [2, 1, -1, -2]             # Python's: the divisor's sign
    assert pydl.fmod(a, b).tolist() == [2, -2, 2, -2]    # C's: the dividend's sign
    assert (a // b).tolist() == [1, -2, -2, 1]
    assert pydl.div(a, b, rounding_mode="trunc").tolist() == [1, -1, -1, 1]
    assert (7 % pydl.tensor([5, -7, 3])).tolist() == [2, 0, 1]
    assert_close(7.5 // pydl.tensor([5, -7, 3]), [1.0, -2.0, 2.0])
    assert (7.5 // pydl.tensor([5, -7, 3])).dtype == np.float32
    assert [int(v) for v in [5, -5, 5, -5]] and [x % y for x, y in
                                                  zip([5, -5, 5, -5], [3, 3, -3, -3])] == \
        (a % b).tolist()
    x = pydl.tensor([7, -7])
    x %= 4
    assert x.tolist() == [3, 1]
    y = pydl.tensor([7, -7])
    y //= 2
    assert y.tolist() == [3, -4]
    with pytest.raises(RuntimeError, match="div expected rounding_mode"):
        pydl.div(a, b, rounding_mode="bad")
    # div without rounding_mode is true division, method and function alike
    assert pydl.tensor([1, 2]).div(2).tolist() == [0.5, 1.0]
    assert pydl.tensor([5, -5]).div(2, rounding_mode="floor").tolist() == [2, -3]


def test_division_in_place_dtype_rules():
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        pydl.tensor([5]).floor_divide_(2.5)
    with pytest.raises(RuntimeError, match="can't be cast"):
        pydl.tensor([5]).fmod_(2.5)
    x = pydl.tensor([5.0, -3.0])
    x.remainder_(pydl.tensor([2.0], dtype=pydl.float64))
    assert x.dtype == np.float32 and x.tolist() == [1.0, 1.0]
    z = pydl.tensor([5, -5])
    z.div_(2, rounding_mode="trunc")
    assert z.tolist() == [2, -2]


DTYPE_PAIRS = [("int64", "int64"), ("int32", "int64"), ("uint8", "int64"), ("float32", "int64"),
               ("float32", "float64"), ("int64", "float16"), ("float16", "float32")]


@pytest.mark.parametrize("name", ["remainder", "fmod", "floor_divide", "div_floor",
                                  "div_trunc"])
@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
def test_division_against_torch(name, da, db):
    torch = pytest.importorskip("torch")
    a = pydl.tensor(rng.integers(0 if da == "uint8" else -30, 30, (4, 5)).astype(da))
    b = pydl.tensor(rng.integers(1, 6, (5,)).astype(db))
    tfn = {"remainder": torch.remainder, "fmod": torch.fmod,
           "floor_divide": torch.floor_divide,
           "div_floor": lambda x, y: torch.div(x, y, rounding_mode="floor"),
           "div_trunc": lambda x, y: torch.div(x, y, rounding_mode="trunc")}[name]
    fn = DIVISION[name][0]
    same_as_torch(fn(a, b), tfn(to_torch(a), to_torch(b)), rtol=1e-3, atol=1e-3)
    for scalar in (3, -2.5):
        same_as_torch(fn(a, scalar), tfn(to_torch(a), scalar), rtol=1e-3, atol=1e-3)
    zero_d = pydl.tensor(np.asarray(4, dtype=db))
    same_as_torch(fn(a, zero_d), tfn(to_torch(a), to_torch(zero_d)), rtol=1e-3, atol=1e-3)


def test_division_gradients():
    a = t64(values((3, 4), lo=-9, hi=9))
    b = t64(np.where(rng.random(4) < 0.5, -1, 1) * rng.uniform(1.1, 2.9, 4))
    # keep a / b away from integers so the finite differences do not cross a step
    q = a.detach().numpy() / b.detach().numpy()
    a = t64(a.detach().numpy() + (np.round(q) - q) * 0 + 0.3 * b.detach().numpy()
            * (np.abs(q - np.round(q)) < 0.1))
    gradcheck(pydl.remainder, (a, b))
    gradcheck(pydl.fmod, (a, b))
    gradgradcheck(pydl.remainder, (a, b))
    gradgradcheck(pydl.fmod, (a, b))
    gradcheck(lambda x, y: pydl.div(x, y, rounding_mode="floor"), (a, b))
    a.grad = b.grad = None
    pydl.remainder(a, b).sum().backward()
    q = a.detach().numpy() / b.detach().numpy()
    assert_close(a.grad, np.ones(a.shape))
    assert_close(b.grad, -np.floor(q).sum(0))
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="derivative for aten::floor_divide"):
        pydl.floor_divide(x, 2.0).sum().backward()


def test_division_gradients_against_torch():
    torch = pytest.importorskip("torch")
    a, b = [5.0, -7.0], [2.0, 3.0]
    for ours, theirs in ((pydl.remainder, torch.remainder), (pydl.fmod, torch.fmod)):
        pa, pb = t64(a), t64(b)
        ours(pa, pb).sum().backward()
        ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        theirs(ta, tb).sum().backward()
        assert_close(pa.grad, ta.grad.numpy())
        assert_close(pb.grad, tb.grad.numpy())


# -- pointwise math -----------------------------------------------------------------------------
def ref_xlogy(x, y):
    with np.errstate(all="ignore"):
        out = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), 0.0, out)


BINARY_MATH = {
    "xlogy": (pydl.xlogy, ref_xlogy),
    "logaddexp": (pydl.logaddexp, lambda a, b: np.maximum(a, b) + np.log1p(
        np.exp(-np.abs(a - b)))),
    "logaddexp2": (pydl.logaddexp2, lambda a, b: np.maximum(a, b) + np.log2(
        1 + 2.0 ** -np.abs(a - b))),
    "atan2": (pydl.atan2, np.arctan2),
    "hypot": (pydl.hypot, lambda a, b: np.sqrt(a * a + b * b)),
}


@pytest.mark.parametrize("name", sorted(BINARY_MATH))
@pytest.mark.parametrize("shapes", [((7,), (7,)), ((3, 5), (5,)), ((2, 1, 13), (3, 1)),
                                    ((0, 3), (3,)), ((), ()), ((1,), ())])
def test_binary_math_against_numpy(name, shapes):
    fn, ref = BINARY_MATH[name]
    a = values(shapes[0])
    b = values(shapes[1], lo=0.1 if name == "xlogy" else -5, hi=5)
    out = fn(pydl.tensor(a), pydl.tensor(b))
    expected = ref(a, b)
    assert out.shape == expected.shape and out.dtype == np.float64
    assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert_close(getattr(pydl.tensor(a), name)(pydl.tensor(b)), expected, rtol=1e-12,
                 atol=1e-12)


@pytest.mark.parametrize("name", sorted(BINARY_MATH))
def test_binary_math_gradcheck(name):
    fn, _ = BINARY_MATH[name]
    a = t64(values((3, 4)))
    b = t64(values((4,), lo=0.5 if name == "xlogy" else -5, hi=5))
    gradcheck(fn, (a, b))
    gradgradcheck(fn, (a, b))
    # a non-contiguous operand (gradcheck perturbs contiguous leaves; the op sees a transpose)
    # and a 0-d one
    gradcheck(lambda x, y: fn(x.t(), y), (t64(values((3, 5))), t64(values((), lo=0.5,
                                                                           hi=3.0))))


@pytest.mark.parametrize("name", sorted(BINARY_MATH))
@pytest.mark.parametrize("da,db", [("float32", "float32"), ("int64", "int64"),
                                   ("float32", "float64"), ("int32", "float16"),
                                   ("float64", "float32")])
def test_binary_math_dtypes_against_torch(name, da, db):
    torch = pytest.importorskip("torch")
    a = pydl.tensor(values((3, 5), lo=1, hi=6).astype(da))
    b = pydl.tensor(values((5,), lo=1, hi=6).astype(db))
    tfn = getattr(torch, name)
    try:
        expected = tfn(to_torch(a), to_torch(b))
    except (RuntimeError, NotImplementedError) as e:
        with pytest.raises(type(e)):
            BINARY_MATH[name][0](a, b)
        return
    same_as_torch(BINARY_MATH[name][0](a, b), expected, rtol=2e-3, atol=2e-3)
    zero_d = pydl.tensor(np.asarray(2, dtype=db))
    same_as_torch(BINARY_MATH[name][0](a, zero_d), tfn(to_torch(a), to_torch(zero_d)),
                  rtol=2e-3, atol=2e-3)


def test_binary_math_special_points_against_torch():
    torch = pytest.importorskip("torch")
    inf, nan = math.inf, math.nan
    cases = {
        "xlogy": ([0.0, 0.0, 2.0, 0.0, 1.0], [0.0, -1.0, 3.0, nan, 0.0]),
        "logaddexp": ([-inf, inf, 1.0, -inf], [-inf, inf, 2.0, 3.0]),
        "logaddexp2": ([-inf, 1.0, inf], [-inf, 2.0, 5.0]),
        "atan2": ([0.0, 3.0, -0.0, 1.0], [0.0, 4.0, -1.0, -inf]),
        "hypot": ([0.0, 3.0, inf], [0.0, 4.0, nan]),
    }
    for name, (a, b) in cases.items():
        pa, pb = t64(a), t64(b)
        ours = BINARY_MATH[name][0](pa, pb)
        ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        theirs = getattr(torch, name)(ta, tb)
        same_as_torch(ours.detach(), theirs.detach(), 1e-12, 1e-12)
        ours.backward(pydl.ones_like(ours))  # (sum() of +inf and -inf would be NaN)
        theirs.backward(torch.ones_like(theirs))
        assert_close(pa.grad, ta.grad.numpy(), msg=name)
        assert_close(pb.grad, tb.grad.numpy(), msg=name)


def test_binary_math_scalars_and_errors():
    f = pydl.tensor([2.5, 1.5])
    assert_close(pydl.xlogy(2, f), 2 * np.log([2.5, 1.5]))
    assert_close(pydl.xlogy(f, 2), np.array([2.5, 1.5]) * np.log(2))
    assert pydl.xlogy(f, 2).dtype == np.float32
    assert pydl.xlogy(pydl.tensor([1, 2]), pydl.tensor([3, 4])).dtype == np.float32
    for fn in (pydl.atan2, pydl.hypot, pydl.logaddexp):
        with pytest.raises(TypeError, match="must be Tensor"):
            fn(f, 2.0)
    with pytest.raises(NotImplementedError, match="Long"):
        pydl.hypot(pydl.tensor([1]), pydl.tensor([2]))
    with pytest.raises(NotImplementedError, match="Long"):
        pydl.logaddexp(pydl.tensor([1]), pydl.tensor([2]))
    assert pydl.arctan2 is pydl.atan2
    x = pydl.tensor([1.0, -1.0])
    x.atan2_(pydl.tensor([1.0, 1.0]))
    assert_close(x, [math.pi / 4, -math.pi / 4])
    with pytest.raises(RuntimeError, match="size of tensor a"):
        pydl.atan2(pydl.ones(3), pydl.ones(2))


def test_lerp():
    torch = pytest.importorskip("torch")
    s = values((4, 5))
    e = values((5,))
    w = rng.uniform(-0.5, 1.5, (4, 1))
    out = pydl.lerp(pydl.tensor(s), pydl.tensor(e), pydl.tensor(w))
    assert_close(out, s + w * (e - s), rtol=1e-12, atol=1e-12)
    assert_close(pydl.lerp(pydl.tensor(s), pydl.tensor(e), 0.3), s + 0.3 * (e - s),
                 rtol=1e-12, atol=1e-12)
    # exact at both ends, as torch's two-sided formula
    assert pydl.lerp(pydl.tensor([1e8]), pydl.tensor([1.0]), 1.0).item() == 1.0
    gradcheck(pydl.lerp, (t64(s), t64(e), t64(w)))
    gradgradcheck(pydl.lerp, (t64(s), t64(e), t64(w)))
    gradcheck(lambda a, b: pydl.lerp(a, b, 0.25), (t64(s), t64(e)))
    f32 = [pydl.tensor(values((3,)).astype(np.float32)) for _ in range(3)]
    same_as_torch(pydl.lerp(*f32), torch.lerp(*map(to_torch, f32)))
    same_as_torch(pydl.lerp(f32[0], f32[1], 2), torch.lerp(to_torch(f32[0]), to_torch(f32[1]),
                                                         2))
    with pytest.raises(RuntimeError, match="expected dtype float for `end` but got dtype "
                                           "double"):
        pydl.lerp(f32[0], f32[1].double(), 0.5)
    with pytest.raises(RuntimeError, match="for `weight`"):
        pydl.lerp(f32[0], f32[1], f32[2].double())
    with pytest.raises(NotImplementedError, match="Long"):
        pydl.lerp(pydl.tensor([1]), pydl.tensor([2]), 0.5)
    x = pydl.tensor([0.0, 10.0])
    x.lerp_(pydl.tensor([10.0, 0.0]), 0.5)
    assert x.tolist() == [5.0, 5.0]


def test_deg2rad_rad2deg():
    torch = pytest.importorskip("torch")
    for shape in SHAPES:
        x = values(shape, lo=-360, hi=360)
        assert_close(pydl.deg2rad(pydl.tensor(x)), x * np.pi / 180, rtol=1e-14, atol=0)
        assert_close(pydl.rad2deg(pydl.tensor(x)), x * 180 / np.pi, rtol=1e-14, atol=0)
    for inp in (pydl.tensor([90, -45]), pydl.tensor([True, False]), pydl.tensor([1.5])):
        same_as_torch(pydl.deg2rad(inp), torch.deg2rad(to_torch(inp)))
        same_as_torch(pydl.rad2deg(inp), torch.rad2deg(to_torch(inp)), rtol=1e-6, atol=1e-4)
    gradcheck(pydl.deg2rad, (t64(values((3,))),))
    x = pydl.tensor([180.0])
    x.deg2rad_()
    assert_close(x, [math.pi])


def test_nan_to_num():
    torch = pytest.importorskip("torch")
    x = np.array([math.nan, math.inf, -math.inf, 1.5, -2.0])
    for dtype in ("float16", "float32", "float64"):
        p = pydl.tensor(x.astype(dtype))
        same_as_torch(pydl.nan_to_num(p), torch.nan_to_num(to_torch(p)), 0, 0)
        same_as_torch(pydl.nan_to_num(p, nan=1.0, posinf=5.0),
                      torch.nan_to_num(to_torch(p), nan=1.0, posinf=5.0), 0, 0)
    fmax = np.finfo(np.float64).max
    assert_close(pydl.nan_to_num(pydl.tensor(x)), [0.0, fmax, -fmax, 1.5, -2.0], rtol=0, atol=0)
    i = pydl.tensor([1, 2])
    assert pydl.nan_to_num(i).tolist() == [1, 2] and pydl.nan_to_num(i).dtype == np.int64
    a = t64(x)
    pydl.nan_to_num(a).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    gradcheck(pydl.nan_to_num, (t64(values((2, 3))),))
    y = pydl.tensor([math.nan, 1.0])
    y.nan_to_num_(nan=-1.0)
    assert y.tolist() == [-1.0, 1.0]


def ref_isclose(a, b, rtol, atol, equal_nan):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        close = (a == b) | (np.isfinite(a - b) & (np.abs(a - b) <= atol + rtol * np.abs(b)))
    if equal_nan:
        close |= np.isnan(a) & np.isnan(b)
    return close


def test_isclose():
    torch = pytest.importorskip("torch")
    a = np.array([1.0, math.nan, math.inf, -math.inf, 1.0, 0.0, 1e-9])
    b = np.array([1.0 + 1e-6, math.nan, math.inf, math.inf, 1.1, 1e-8, 0.0])
    for equal_nan in (False, True):
        for rtol, atol in ((1e-5, 1e-8), (0.0, 0.0), (0.2, 0.0)):
            out = pydl.isclose(pydl.tensor(a), pydl.tensor(b), rtol=rtol, atol=atol,
                               equal_nan=equal_nan)
            assert out.dtype == np.bool_
            np.testing.assert_array_equal(out.numpy(), ref_isclose(a, b, rtol, atol, equal_nan))
            same_as_torch(out, torch.isclose(torch.tensor(a), torch.tensor(b), rtol=rtol,
                                             atol=atol, equal_nan=equal_nan))
    i, j = pydl.tensor([1, 5]), pydl.tensor([2, 5])
    same_as_torch(pydl.isclose(i, j, rtol=0.5, atol=0),
                  torch.isclose(to_torch(i), to_torch(j), rtol=0.5, atol=0))
    assert pydl.tensor([1.0]).isclose(pydl.tensor([1.0])).tolist() == [True]
    assert pydl.isclose(pydl.ones(3, 1), pydl.ones(4)).shape == (3, 4)
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        pydl.isclose(pydl.ones(2), pydl.ones(2, dtype=pydl.float64))
    with pytest.raises(TypeError, match="must be Tensor"):
        pydl.isclose(pydl.ones(2), 1.0)
    with pytest.raises(RuntimeError, match="rtol must be greater"):
        pydl.isclose(pydl.ones(2), pydl.ones(2), rtol=-1)


def test_clamp_min_max():
    torch = pytest.importorskip("torch")
    x = values((3, 7))
    assert_close(pydl.clamp_min(pydl.tensor(x), 0.5), np.maximum(x, 0.5), rtol=0, atol=0)
    assert_close(pydl.clamp_max(pydl.tensor(x), 0.5), np.minimum(x, 0.5), rtol=0, atol=0)
    i = pydl.tensor([5, -7, 3])
    same_as_torch(pydl.clamp_min(i, 2.5), torch.clamp_min(to_torch(i), 2.5))
    same_as_torch(pydl.clamp_max(i, 2), torch.clamp_max(to_torch(i), 2))
    lo = pydl.tensor(values((7,)))
    same_as_torch(pydl.clamp_min(pydl.tensor(x), lo), torch.clamp_min(torch.tensor(x),
                                                                      to_torch(lo)))
    # ties: the gradient goes to the input, as torch
    a, b = t64([1.0, 0.0, 2.0]), t64([1.0, 1.0, 1.0])
    pydl.clamp_min(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 1.0] and b.grad.tolist() == [0.0, 1.0, 0.0]
    gradcheck(pydl.clamp_max, (t64(values((4, 3))), t64(values((3,)))))
    gradcheck(lambda t: pydl.clamp_min(t, 0.3), (t64(values((5,))),))
    y = pydl.tensor([1.0, -1.0])
    y.clamp_min_(0.0)
    assert y.tolist() == [1.0, 0.0]


def test_sgn_and_sign():
    torch = pytest.importorskip("torch")
    for inp in (pydl.tensor([1.5, -2.0, 0.0]), pydl.tensor([3, -1, 0]),
                pydl.tensor([True, False])):
        same_as_torch(pydl.sgn(inp), torch.sgn(to_torch(inp)), 0, 0)
        same_as_torch(pydl.sign(inp), torch.sign(to_torch(inp)), 0, 0)
    x = t64([1.5, -2.0])
    pydl.sgn(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


# -- shape ops ----------------------------------------------------------------------------------
def test_broadcast_tensors():
    torch = pytest.importorskip("torch")
    a, b, c = pydl.ones(3), pydl.zeros(2, 1), pydl.tensor(5.0)
    outs = pydl.broadcast_tensors(a, b, c)
    assert [o.shape for o in outs] == [(2, 3)] * 3
    assert pydl.broadcast_shapes((3,), (2, 1), ()) == tuple(torch.broadcast_shapes((3,), (2, 1),
                                                                                   ()))
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of "
                                           r"tensor b \(2\) at non-singleton dimension 0"):
        pydl.broadcast_tensors(pydl.ones(3), pydl.ones(2))
    assert pydl.broadcast_tensors() == ()
    x = t64(values((3, 1)))
    gradcheck(lambda t: pydl.broadcast_tensors(t, pydl.ones(4, 3, 5, dtype=pydl.float64))[0],
              (x,))
    assert pydl.broadcast_tensors(pydl.ones(0, 1), pydl.ones(4))[0].shape == (0, 4)
    assert pydl.ones(3).broadcast_to((2, 3)).shape == (2, 3)


@pytest.mark.parametrize("shape,shifts,dims", [((7,), 3, None), ((3, 5), (1, -2), (0, 1)),
                                               ((3, 5), 4, None), ((2, 1, 13), 5, -1),
                                               ((0, 3), 1, 1), ((4, 6), 11, 0)])
def test_roll(shape, shifts, dims):
    torch = pytest.importorskip("torch")
    x = values(shape)
    out = pydl.roll(pydl.tensor(x), shifts, dims)
    assert_close(out, np.roll(x, shifts, axis=dims), rtol=0, atol=0)
    same_as_torch(out, torch.roll(torch.tensor(x), shifts, dims), 0, 0)
    if x.size:
        gradcheck(lambda t: pydl.roll(t, shifts, dims) * pydl.tensor(np.arange(x.size).reshape(
            shape) + 1.0), (t64(x),))


def test_roll_errors_and_0d():
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        pydl.roll(pydl.ones(2, 3), (1, 2))
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        pydl.roll(pydl.ones(2, 3), (1, 2), (0,))
    with pytest.raises(IndexError, match="Dimension out of range"):
        pydl.roll(pydl.ones(2, 3), 1, 2)
    assert pydl.roll(pydl.tensor(5), 1).item() == 5
    assert pydl.tensor([1, 2, 3]).roll(1).tolist() == [3, 1, 2]


@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (2, 7, 4), (0, 3), (3, 0)])
@pytest.mark.parametrize("diagonal", [0, 1, -2, 9])
def test_tril_triu(name, shape, diagonal):
    x = values(shape)
    out = getattr(pydl, name)(pydl.tensor(x), diagonal)
    r, c = np.indices(shape[-2:])
    keep = (c - r <= diagonal) if name == "tril" else (c - r >= diagonal)
    assert_close(out, x * keep, rtol=0, atol=0)
    if len(shape) == 2 and min(shape) > 1:
        assert_close(getattr(pydl, name)(noncontig(x), diagonal), x * keep, rtol=0, atol=0)
    if x.size:
        gradcheck(lambda t: getattr(pydl, name)(t, diagonal) * 1.5, (t64(x),))


def test_tril_triu_torch_and_errors():
    torch = pytest.importorskip("torch")
    b = pydl.ones(3, 3, dtype=pydl.bool)
    same_as_torch(pydl.tril(b, -1), torch.tril(to_torch(b), -1), 0, 0)
    same_as_torch(pydl.triu(pydl.arange(12).reshape(3, 4), 1),
                  torch.triu(torch.arange(12).reshape(3, 4), 1), 0, 0)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        pydl.tril(pydl.ones(3))
    x = pydl.ones(3, 3)
    x.triu_()
    assert x.numpy().tolist() == np.triu(np.ones((3, 3))).tolist()


def ref_diff(x, n, axis, prepend=None, append=None):
    parts = [p for p in (prepend, x, append) if p is not None]
    x = np.concatenate(parts, axis=axis) if len(parts) > 1 else x
    for _ in range(n):
        if x.shape[axis] == 0:
            break
        x = np.diff(x, axis=axis)
    return x


@pytest.mark.parametrize("shape,n,dim", [((7,), 1, -1), ((3, 5), 2, 1), ((3, 5), 1, 0),
                                         ((2, 1, 13), 3, 2), ((0, 3), 1, 1), ((1,), 1, 0),
                                         ((4,), 6, 0), ((4, 3), 0, 0)])
def test_diff(shape, n, dim):
    torch = pytest.importorskip("torch")
    x = values(shape)
    out = pydl.diff(pydl.tensor(x), n=n, dim=dim)
    assert_close(out, ref_diff(x, n, dim), rtol=1e-12, atol=1e-12)
    same_as_torch(out, torch.diff(torch.tensor(x), n=n, dim=dim), 1e-12, 1e-12)
    pre_shape = list(shape)
    pre_shape[dim] = 2
    pre, app = values(tuple(pre_shape)), values(tuple(pre_shape))
    out = pydl.diff(pydl.tensor(x), n, dim, prepend=pydl.tensor(pre), append=pydl.tensor(app))
    assert_close(out, ref_diff(x, n, dim, pre, app), rtol=1e-12, atol=1e-12)
    if x.size and n:
        gradcheck(lambda t, p: pydl.diff(t, n, dim, prepend=p), (t64(x), t64(pre)))


def test_diff_dtypes_and_errors():
    torch = pytest.importorskip("torch")
    i = pydl.tensor([1, 5, 2])
    same_as_torch(pydl.diff(i, prepend=pydl.tensor([1.0])),
                  torch.diff(to_torch(i), prepend=torch.tensor([1.0])))
    b = pydl.tensor([True, False, False])
    same_as_torch(pydl.diff(b), torch.diff(to_torch(b)), 0, 0)
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        pydl.diff(pydl.tensor(1.0))
    with pytest.raises(RuntimeError, match="order must be non-negative"):
        pydl.diff(pydl.ones(3), n=-1)
    with pytest.raises(RuntimeError, match="same dimension as input"):
        pydl.diff(pydl.ones(3, 4), dim=0, append=pydl.ones(4))
    with pytest.raises(RuntimeError, match="input.size\\(1\\) = 4"):
        pydl.diff(pydl.ones(3, 4), dim=0, append=pydl.ones(1, 2))
    assert pydl.ones(3).diff().tolist() == [0.0, 0.0]


def test_meshgrid():
    torch = pytest.importorskip("torch")
    a, b, c = pydl.tensor([1.0, 2.0, 3.0]), pydl.tensor([4.0, 5.0]), pydl.tensor(7.0)
    for indexing in ("ij", "xy"):
        ours = pydl.meshgrid(a, b, c, indexing=indexing)
        np_grids = np.meshgrid(a.numpy(), b.numpy(), c.numpy().reshape(1), indexing=indexing)
        theirs = torch.meshgrid(to_torch(a), to_torch(b), to_torch(c), indexing=indexing)
        for o, r, t in zip(ours, np_grids, theirs):
            assert_close(o, r, rtol=0, atol=0)
            same_as_torch(o, t, 0, 0)
        assert [o.shape for o in pydl.meshgrid([a, b], indexing=indexing)] == \
            [tuple(t.shape) for t in torch.meshgrid([to_torch(a), to_torch(b)],
                                                    indexing=indexing)]
    with pytest.warns(UserWarning, match="indexing"):
        default = pydl.meshgrid(a, b)
    assert default[0].shape == (3, 2)  # "ij", as torch's default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pydl.meshgrid(a, b, indexing="ij")
    with pytest.raises(RuntimeError, match="indexing must be one of"):
        pydl.meshgrid(a, indexing="bad")
    with pytest.raises(RuntimeError, match="same dtype"):
        pydl.meshgrid(a, pydl.tensor([1]), indexing="ij")
    with pytest.raises(RuntimeError, match="0D or 1D"):
        pydl.meshgrid(pydl.ones(2, 2), indexing="ij")
    with pytest.raises(RuntimeError, match="non-empty"):
        pydl.meshgrid(indexing="ij")
    assert pydl.meshgrid(pydl.ones(0), b, indexing="xy")[0].shape == (2, 0)
    x, y = t64([1.0, 2.0, 3.0]), t64([4.0, 5.0])
    gradcheck(lambda p, q: pydl.meshgrid(p, q, indexing="xy")[0] *
              pydl.meshgrid(p, q, indexing="xy")[1], (x, y))


@pytest.mark.parametrize("k", [-3, -1, 0, 1, 2, 3, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (-1, 0), (0, 2)])
def test_rot90(k, dims):
    torch = pytest.importorskip("torch")
    x = values((2, 3, 5))
    out = pydl.rot90(pydl.tensor(x), k, dims)
    assert_close(out, np.rot90(x, k, axes=dims), rtol=0, atol=0)
    same_as_torch(out, torch.rot90(torch.tensor(x), k, dims), 0, 0)
    gradcheck(lambda t: pydl.rot90(t, k, dims) * pydl.tensor(np.rot90(x, k, axes=dims)),
              (t64(x),))


def test_rot90_errors():
    with pytest.raises(RuntimeError, match="total rotation dims == 2"):
        pydl.rot90(pydl.ones(2, 3), 1, (0,))
    with pytest.raises(RuntimeError, match="total dims >= 2"):
        pydl.rot90(pydl.ones(3))
    with pytest.raises(RuntimeError, match="rotation dims to be different"):
        pydl.rot90(pydl.ones(2, 3), 1, (0, 0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        pydl.rot90(pydl.ones(2, 3), 1, (0, 3))
    assert pydl.ones(2, 3).rot90().shape == (3, 2)


@pytest.mark.parametrize("n,m", [(1, 1), (7, 3), (0, 5), (13, 1)])
def test_outer(n, m):
    torch = pytest.importorskip("torch")
    a, b = values((n,)), values((m,))
    assert_close(pydl.outer(pydl.tensor(a), pydl.tensor(b)), np.outer(a, b), rtol=1e-15,
                 atol=0)
    ia, fb = pydl.tensor(a.astype(np.int64)), pydl.tensor(b.astype(np.float32))
    same_as_torch(pydl.outer(ia, fb), torch.outer(to_torch(ia), to_torch(fb)))
    if n and m:
        gradcheck(pydl.outer, (t64(a), t64(b)))
        gradgradcheck(pydl.outer, (t64(a), t64(b)))
    with pytest.raises(RuntimeError, match="Expected 1-D argument self"):
        pydl.outer(pydl.ones(2, 1), pydl.ones(2))


@pytest.mark.parametrize("sa,sb", [((2, 3), (4,)), ((1,), (7,)), ((3, 2), (2, 5)),
                                   ((2, 1, 3), (3, 2)), ((0, 2), (3, 1)), ((), (3,))])
def test_kron(sa, sb):
    torch = pytest.importorskip("torch")
    a, b = values(sa), values(sb)
    out = pydl.kron(pydl.tensor(a), pydl.tensor(b))
    assert_close(out, np.kron(a, b), rtol=1e-15, atol=0)
    same_as_torch(out, torch.kron(torch.tensor(a), torch.tensor(b)), 1e-15, 0)
    if a.size and b.size:
        gradcheck(pydl.kron, (t64(a), t64(b)))
    ia = pydl.tensor(a.astype(np.int64))
    same_as_torch(pydl.kron(ia, pydl.tensor(b.astype(np.float32))),
                  torch.kron(to_torch(ia), torch.tensor(b.astype(np.float32))))


# -- cumprod --------------------------------------------------------------------------------------
def ref_cumprod_grad(x, g):
    """dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j, term by term (1-d)."""
    n = len(x)
    out = np.zeros(n)
    for k in range(n):
        for i in range(k, n):
            out[k] += g[i] * np.prod([x[j] for j in range(i + 1) if j != k])
    return out


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 1, 13), -1),
                                       ((0, 3), 1), ((), 0), ((1,), 0)])
def test_cumprod_values(shape, dim):
    torch = pytest.importorskip("torch")
    x = values(shape, lo=-2, hi=2)
    out = pydl.cumprod(pydl.tensor(x), dim)
    ref = np.cumprod(x, axis=dim if x.ndim else None).reshape(x.shape)
    assert_close(out, ref, rtol=1e-12, atol=1e-12)
    same_as_torch(out, torch.cumprod(torch.tensor(x), dim), 1e-12, 1e-12)
    if x.size:
        gradcheck(lambda t: pydl.cumprod(t, dim), (t64(x),))
        gradgradcheck(lambda t: pydl.cumprod(t, dim), (t64(x),))


@pytest.mark.parametrize("row", [[2.0, 0.0, 3.0, 0.0, 5.0], [2.0, 0.0, 3.0, 4.0],
                                 [0.0, 1.5, -2.0], [1.5, -2.0, 0.0], [0.0, 0.0], [3.0, -1.5, 2.0]])
def test_cumprod_gradient_with_zeros(row):
    torch = pytest.importorskip("torch")
    g = rng.standard_normal(len(row))
    x = t64(row)
    pydl.cumprod(x, 0).backward(pydl.tensor(g))
    assert_close(x.grad, ref_cumprod_grad(np.array(row), g), rtol=1e-12, atol=1e-12)
    tx = torch.tensor(row, dtype=torch.float64, requires_grad=True)
    torch.cumprod(tx, 0).backward(torch.tensor(g))
    assert_close(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    gradcheck(lambda t: pydl.cumprod(t, 0), (t64(row),))
    gradgradcheck(lambda t: pydl.cumprod(t, 0), (t64(row),))


def test_cumprod_batched_zeros_and_dtypes():
    torch = pytest.importorskip("torch")
    x = values((4, 6), lo=-2, hi=3)
    x[0, 2] = x[2, 0] = x[2, 4] = x[3, 5] = 0.0
    p = t64(x)
    g = rng.standard_normal((4, 6))
    pydl.cumprod(p, 1).backward(pydl.tensor(g))
    expected = np.stack([ref_cumprod_grad(x[r], g[r]) for r in range(4)])
    assert_close(p.grad, expected, rtol=1e-12, atol=1e-12)
    gradcheck(lambda t: pydl.cumprod(t, 1), (t64(x),))
    gradcheck(lambda t: pydl.cumprod(t.t(), 0), (t64(x.T.copy()),))
    for inp in (pydl.tensor([5, -7, 3]), pydl.tensor([True, False]),
                pydl.tensor([1.5, 2.0], dtype=pydl.float32)):
        same_as_torch(pydl.cumprod(inp, 0), torch.cumprod(to_torch(inp), 0))
    same_as_torch(pydl.cumprod(pydl.tensor([5, -7]), 0, dtype=pydl.float64),
                  torch.cumprod(torch.tensor([5, -7]), 0, dtype=torch.float64))
    y = pydl.tensor([1.0, 2.0, 3.0])
    y.cumprod_(0)
    assert y.tolist() == [1.0, 2.0, 6.0]
    with pytest.raises(IndexError, match="Dimension out of range"):
        pydl.cumprod(pydl.ones(3), 1)


# -- cdist ---------------------------------------------------------------------------------------
def ref_cdist(a, b, p):
    u = a[..., :, None, :] - b[..., None, :, :]
    if p == 0:
        return (u != 0).sum(-1).astype(np.float64)
    if p == math.inf:
        return np.abs(u).max(-1) if u.shape[-1] else np.zeros(u.shape[:-1])
    return (np.abs(u) ** p).sum(-1) ** (1 / p)


P_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf]


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("sa,sb", [((5, 3), (7, 3)), ((1, 1), (1, 1)), ((2, 4, 3), (5, 3)),
                                   ((0, 3), (4, 3)), ((3, 2, 13), (1, 5, 13)), ((3, 0), (2, 0))])
def test_cdist_values(p, sa, sb):
    a, b = values(sa), values(sb)
    out = pydl.cdist(pydl.tensor(a), pydl.tensor(b), p=p)
    expected = ref_cdist(a, b, p)
    assert out.shape == expected.shape and out.dtype == np.float64
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", P_VALUES)
def test_cdist_against_torch_with_ties_and_zero_distances(p):
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 0.0], [1.0, 2.0], [1.0, -1.0], [2.0, 3.0]])
    b = np.array([[0.0, 0.0], [0.0, 3.0], [1.0, 2.0]])
    pa, pb = t64(a), t64(b)
    ours = pydl.cdist(pa, pb, p=p)
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    theirs = torch.cdist(ta, tb, p=p)
    same_as_torch(ours.detach(), theirs.detach(), 1e-12, 1e-12)
    g = rng.standard_normal((4, 3))
    ours.backward(pydl.tensor(g))
    theirs.backward(torch.tensor(g))
    assert_close(pa.grad, ta.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert_close(pb.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-10)
    f32 = [pydl.tensor(values((2, 5, 4)).astype(np.float32)), pydl.tensor(
        values((3, 4)).astype(np.float32))]
    same_as_torch(pydl.cdist(*f32, p=p), torch.cdist(*map(to_torch, f32), p=p), 1e-5, 1e-5)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0, math.inf])
def test_cdist_gradcheck(p):
    a, b = t64(values((2, 4, 3))), t64(values((5, 3)))
    gradcheck(lambda x, y: pydl.cdist(x, y, p=p), (a, b))
    if p != math.inf:
        gradgradcheck(lambda x, y: pydl.cdist(x, y, p=p), (a, b))


@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                                  "donot_use_mm_for_euclid_dist"])
def test_cdist_euclidean_matrix_product_path(mode):
    """P > 25 takes torch's GEMM form under the default mode: values to float64 rounding of the
    expansion, gradients of the product form, against the reference and torch."""
    torch = pytest.importorskip("torch")
    a, b = values((2, 29, 5)), values((31, 5))
    a[0, 3] = b[7]  # an exact zero distance
    out = pydl.cdist(pydl.tensor(a), pydl.tensor(b), compute_mode=mode)
    assert_close(out, ref_cdist(a, b, 2), rtol=1e-9, atol=1e-6)
    same_as_torch(out, torch.cdist(torch.tensor(a), torch.tensor(b), compute_mode=mode),
                  1e-9, 1e-6)
    pa, pb = t64(a[:, :27]), t64(b[:4])
    gradcheck(lambda x, y: pydl.cdist(x, y, compute_mode=mode), (pa, pb))
    gradgradcheck(lambda x, y: pydl.cdist(x, y, compute_mode=mode), (t64(a[0, :26, :3]),
                                                                       t64(b[:3, :3])))
    f32 = pydl.cdist(pydl.tensor(a.astype(np.float32)), pydl.tensor(b.astype(np.float32)),
                     compute_mode=mode)
    assert f32.dtype == np.float32


def test_cdist_errors_and_modes():
    a = pydl.ones(3, 4)
    for mode in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                 "donot_use_mm_for_euclid_dist"):
        assert pydl.cdist(a, a, compute_mode=mode).shape == (3, 3)
    with pytest.raises(ValueError, match="not a valid value for compute_mode"):
        pydl.cdist(a, a, compute_mode="bad")
    with pytest.raises(RuntimeError, match="only supports floating-point dtypes, X2 got: Long"):
        pydl.cdist(a, pydl.ones(3, 4, dtype=pydl.int64))
    with pytest.raises(RuntimeError, match="at least 2D tensors, X1 got: 1D"):
        pydl.cdist(pydl.ones(4), a)
    with pytest.raises(RuntimeError, match="same number of columns. X1: 4 X2: 3"):
        pydl.cdist(a, pydl.ones(2, 3))
    with pytest.raises(RuntimeError, match="non-negative p"):
        pydl.cdist(a, a, p=-1)
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        pydl.cdist(a, pydl.ones(2, 4, dtype=pydl.float64))
    with pytest.raises(RuntimeError, match="must match"):
        pydl.cdist(pydl.ones(2, 3, 4), pydl.ones(3, 3, 4))


# -- finfo / iinfo --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_finfo_against_numpy_and_torch(dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = pydl.finfo(getattr(pydl, dtype)), torch.finfo(getattr(torch, dtype))
    info = np.finfo(dtype)
    assert ours.eps == float(info.eps) and ours.max == float(info.max)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field
        assert type(getattr(ours, field)) is type(getattr(theirs, field)), field
    assert ours.dtype == str(theirs.dtype) == dtype


def test_finfo_default_and_errors():
    assert pydl.finfo().dtype == "float32"
    pydl.set_default_dtype(pydl.float64)
    try:
        assert pydl.finfo().bits == 64
    finally:
        pydl.set_default_dtype(pydl.float32)
    with pytest.raises(TypeError, match="requires a floating point input type"):
        pydl.finfo(pydl.int64)
    with pytest.raises(TypeError, match="requires an integer input type"):
        pydl.iinfo(pydl.float32)
    with pytest.raises(TypeError, match="bool is not supported"):
        pydl.iinfo(pydl.bool)
    assert pydl.finfo(pydl.float32) == pydl.finfo(pydl.float)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_against_torch(dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = pydl.iinfo(np.dtype(dtype)), torch.iinfo(getattr(torch, dtype))
    for field in ("bits", "max", "min"):
        assert getattr(ours, field) == getattr(theirs, field), field
        assert type(getattr(ours, field)) is int
    assert ours.dtype == str(theirs.dtype) == dtype
    assert ours.max == int(np.iinfo(dtype).max)


# -- the names are there -------------------------------------------------------------------------
def test_functions_methods_and_in_place_forms_exist():
    for name in ("floor ceil round trunc frac remainder fmod floor_divide xlogy logaddexp "
                 "logaddexp2 atan2 arctan2 hypot lerp deg2rad rad2deg nan_to_num isclose "
                 "clamp_min clamp_max sgn broadcast_tensors broadcast_to roll tril triu diff "
                 "meshgrid rot90 outer kron cumprod cdist finfo iinfo").split():
        assert hasattr(pydl, name), name
    for name in ("floor_ ceil_ round_ trunc_ frac_ remainder_ fmod_ floor_divide_ xlogy_ "
                 "atan2_ arctan2_ hypot_ lerp_ deg2rad_ rad2deg_ nan_to_num_ clamp_min_ "
                 "clamp_max_ sgn_ tril_ triu_ cumprod_ roll diff outer kron rot90 isclose "
                 "broadcast_to __mod__ __rmod__ __imod__ __floordiv__ __rfloordiv__ "
                 "__ifloordiv__ logaddexp logaddexp2").split():
        assert hasattr(pydl.Tensor, name), name


ALL_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64"]
ONE_INPUT = {"floor": {}, "ceil": {}, "trunc": {}, "round": {}, "frac": {}, "deg2rad": {},
             "rad2deg": {}, "nan_to_num": {}, "sgn": {}, "sign": {}, "cumprod": {"dim": 0},
             "roll": {"shifts": 1}, "tril": {}, "triu": {}, "diff": {}, "rot90": {}}


@pytest.mark.parametrize("name", sorted(ONE_INPUT))
def test_one_input_ops_every_dtype_against_torch(name):
    """Result dtype, shape and values, or the same exception type, for every pydl dtype, with
    a matrix, a 0-d tensor and a zero-size one."""
    torch = pytest.importorskip("torch")
    for dtype in ALL_DTYPES:
        for shape in ((3, 4), (), (0, 3)):
            if dtype == "bool":
                a = rng.random(shape) < 0.5
            elif dtype[0] in "iu":
                a = rng.integers(-3 if dtype[0] == "i" else 0, 9, shape).astype(dtype)
            else:
                a = rng.uniform(-9, 9, shape).astype(dtype)
            try:
                expected = getattr(torch, name)(torch.from_numpy(np.array(a)), **ONE_INPUT[name])
            except (RuntimeError, NotImplementedError, TypeError, IndexError) as e:
                with pytest.raises(type(e)):
                    getattr(pydl, name)(pydl.tensor(a), **ONE_INPUT[name])
                continue
            same_as_torch(getattr(pydl, name)(pydl.tensor(a), **ONE_INPUT[name]), expected,
                          rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["remainder", "fmod", "floor_divide", "xlogy", "atan2",
                                  "hypot", "logaddexp", "clamp_min", "clamp_max"])
def test_binary_ops_every_dtype_pair_against_torch(name):
    """torch.result_type's promotion (dimensioned, 0-d and Python-number operands) or the same
    exception type, over every pair of pydl's dtypes."""
    torch = pytest.importorskip("torch")

    def make(dtype, shape):
        if dtype == "bool":
            return rng.random(shape) < 0.5
        if dtype[0] in "iu":
            return rng.integers(1, 9, shape).astype(dtype)
        return rng.uniform(0.5, 9, shape).astype(dtype)

    for da in ALL_DTYPES:
        a = make(da, (3,))
        for db in ALL_DTYPES:
            for b in (make(db, (3,)), make(db, ())):
                ta, tb = torch.from_numpy(np.array(a)), torch.from_numpy(np.array(b))
                try:
                    expected = getattr(torch, name)(ta, tb)
                except (RuntimeError, NotImplementedError, TypeError) as e:
                    with pytest.raises(type(e)):
                        getattr(pydl, name)(pydl.tensor(a), pydl.tensor(b))
                    continue
                same_as_torch(getattr(pydl, name)(pydl.tensor(a), pydl.tensor(b)), expected,
                              rtol=2e-3, atol=2e-3)
        for scalar in (3, 2.5, True):
            try:
                expected = getattr(torch, name)(torch.from_numpy(np.array(a)), scalar)
            except (RuntimeError, NotImplementedError, TypeError) as e:
                with pytest.raises(type(e)):
                    getattr(pydl, name)(pydl.tensor(a), scalar)
                continue
            same_as_torch(getattr(pydl, name)(pydl.tensor(a), scalar), expected, rtol=2e-3,
                          atol=2e-3)


@pytest.mark.parametrize("name,args,kwargs", [
    ("remainder_", (1.2,), {}), ("fmod_", (1.2,), {}), ("frac_", (), {}),
    ("atan2_", ([1.0, 2.0, 3.0],), {}), ("lerp_", ([1.0, 2.0, 3.0], 0.3), {}),
    ("clamp_min_", (0.0,), {}), ("clamp_max_", (0.0,), {}), ("cumprod_", (0,), {}),
    ("xlogy_", (2.0,), {}), ("nan_to_num_", (), {}), ("round_", (), {"decimals": 1}),
    ("div_", (2.0,), {"rounding_mode": "floor"}), ("hypot_", ([1.0, 2.0, 3.0],), {}),
    ("deg2rad_", (), {}), ("sgn_", (), {})])
def test_in_place_forms_record_gradients_as_torch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    start = [1.5, -2.5, 3.25]
    x = t64(start)
    tx = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    ours_args = [pydl.tensor(a, dtype=pydl.float64) if isinstance(a, list) else a for a in args]
    their_args = [torch.tensor(a, dtype=torch.float64) if isinstance(a, list) else a
                  for a in args]
    y = x.clone()
    assert getattr(y, name)(*ours_args, **kwargs) is y
    ty = tx.clone()
    getattr(ty, name)(*their_args, **kwargs)
    same_as_torch(y.detach(), ty.detach(), 1e-12, 1e-12)
    y.sum().backward()
    ty.sum().backward()
    # (torch's zero gradient of sgn is a ZeroTensor, readable only after a copy)
    assert_close(x.grad, (tx.grad + 0).detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,fn", [
    ("roll", lambda t: pydl.roll(t, (1, -2), (0, 1)) * t),
    ("tril", lambda t: pydl.tril(t, 1) * t), ("triu", lambda t: pydl.triu(t, -1) * t),
    ("diff", lambda t: pydl.diff(t * t, n=2, dim=1)),
    ("rot90", lambda t: pydl.rot90(t, 1) * pydl.rot90(t, 3)),
    ("kron", lambda t: pydl.kron(t, t)),
    ("outer", lambda t: pydl.outer(t[0], t[1])),
    ("broadcast_tensors", lambda t: pydl.broadcast_tensors(t[:1], t)[0] * t),
    ("meshgrid", lambda t: pydl.meshgrid(t[0], t[1], indexing="xy")[0] * t[2, 0]),
    ("clamp_min", lambda t: pydl.clamp_min(t * t, 0.5)),
    ("nan_to_num", lambda t: pydl.nan_to_num(t * t)),
    ("deg2rad", lambda t: pydl.deg2rad(t * t)),
])
def test_double_backward_through_shape_and_pointwise_ops(name, fn):
    x = t64(values((3, 3)))
    gradcheck(fn, (x,))
    gradgradcheck(fn, (x,))
