"""The per-op fast paths (issue #13): ops with nothing to record skip Function.apply and run
their kernel on arrays; apply() records only what backward needs; the engine's plain backward
skips capture bookkeeping. Each test checks that a fast path decides exactly as the general
path does: dtypes, 0-d results, views written in place, errors, saved-tensor checks, gradients.
"""
import numpy as np
import pytest

import pydl
from pydl.autograd import Function, gradcheck, gradgradcheck
from pydl.testing import assert_close


def _f64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- binary and unary ops with nothing to record ----------------------------------------------------
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
@pytest.mark.parametrize("n", [1, 7, 1024, 1031])  # both sides of the native-engine threshold
def test_binary_without_grad_matches_float64_reference(op, n):
    a_np = np.abs(_f64(n, seed=1)) + 0.5
    b_np = _f64(n, seed=2)
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "pow": np.power, "maximum": np.maximum, "minimum": np.minimum}[op]
    fn = getattr(pydl, op)
    for a, b, expect in [(pydl.tensor(a_np), pydl.tensor(b_np), ref(a_np, b_np)),
                         (pydl.tensor(a_np), 2.5, ref(a_np, 2.5)),
                         (pydl.tensor(a_np, dtype=pydl.float32), 3, ref(a_np, 3))]:
        if op in ("maximum", "minimum") and not isinstance(b, pydl.Tensor):
            continue  # torch.maximum takes two tensors
        out = fn(a, b)
        assert out.dtype == a.dtype and out.grad_fn is None and not out.requires_grad
        assert_close(out, expect, rtol=1e-6 if a.dtype == pydl.float32 else 1e-12)


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div"])
def test_number_on_the_left(op):
    x_np = _f64(5) + 3.0
    x = pydl.tensor(x_np, dtype=pydl.float32)
    out = {"add": lambda: 2.0 + x, "mul": lambda: 2.0 * x, "sub": lambda: 2.0 - x,
           "div": lambda: 2.0 / x}[op]()
    ref = {"add": 2.0 + x_np, "mul": 2.0 * x_np, "sub": 2.0 - x_np, "div": 2.0 / x_np}[op]
    assert out.dtype == pydl.float32
    assert_close(out, ref, rtol=1e-6)


@pytest.mark.parametrize("fn", ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                                "abs", "relu", "neg", "sign"])
@pytest.mark.parametrize("n", [3, 2048])
def test_unary_without_grad_matches_float64_reference(fn, n):
    x_np = np.abs(_f64(n)) + 0.1
    ref = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda v: 1 / np.sqrt(v),
           "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
           "abs": np.abs, "relu": lambda v: np.maximum(v, 0), "neg": np.negative,
           "sign": np.sign}[fn]
    x = pydl.tensor(x_np, dtype=pydl.float32)
    out = getattr(x, fn)()
    assert out.dtype == pydl.float32 and out.grad_fn is None
    assert_close(out, ref(x_np), rtol=2e-6, atol=1e-6)


def test_integer_inputs_of_float_math_become_the_default_dtype():
    x = pydl.tensor([1, 2, 3])
    for out in (x.exp(), x.sqrt(), x.sigmoid(), x.tanh()):
        assert out.dtype == pydl.float32
    assert_close(x.exp(), np.exp([1.0, 2.0, 3.0]), rtol=1e-6)
    assert x.abs().dtype == pydl.int64 and x.neg().dtype == pydl.int64
    assert (x + x).dtype == pydl.int64 and (x / x).dtype == pydl.float32


def test_zero_dim_results_hold_arrays():
    # NumPy returns scalars (np.float32) for ufuncs on 0-d arrays; a Tensor holds an ndarray.
    s = pydl.tensor(2.0)
    for out in (s + s, s * 3.0, 3.0 - s, s.exp(), s.relu(), -s, s ** 2):
        assert type(out._data) is np.ndarray and out.shape == ()
    assert (s * 3.0).item() == 6.0


def test_mixed_dtypes_promote_as_torch():
    f32 = pydl.tensor([1.0, 2.0])
    f64 = pydl.tensor([1.0, 2.0], dtype=pydl.float64)
    i64 = pydl.tensor([1, 2])
    assert (f32 + f64).dtype == pydl.float64
    assert (i64 * 2.5).dtype == pydl.float32
    assert (f32 + pydl.tensor(1.0, dtype=pydl.float64)).dtype == pydl.float32  # 0-d tensor
    assert (f32 + True).dtype == pydl.float32
    assert (i64 + np.float64(1.5)).dtype == pydl.float32  # NumPy scalar: a Python number


def test_broadcast_error_names_the_sizes():
    a, b = pydl.ones(3, 4), pydl.ones(5)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(4\) must match the size of "
                                           r"tensor b \(5\) at non-singleton dimension 1"):
        a + b
    with pytest.raises(RuntimeError, match=r"\(4\).*\(5\)"):
        a.requires_grad_() * b


def test_nothing_recorded_under_no_grad_or_inference_mode():
    x = pydl.ones(3, requires_grad=True)
    with pydl.no_grad():
        for out in (x + x, x * 2.0, x.exp(), -x, x.relu()):
            assert out.grad_fn is None and not out.requires_grad
    with pydl.inference_mode():
        assert (x * x).grad_fn is None
    assert (x * 2.0).requires_grad and (x.exp()).grad_fn is not None


def test_stale_view_is_refreshed_before_a_fast_path_would_skip_it():
    # base does not require grad; writing a grad-requiring value into it in place makes its
    # existing views part of the graph (as torch), so ops on the view must record.
    w = pydl.tensor([2.0, 3.0, 4.0], requires_grad=True)
    base = pydl.zeros(3) + 1.0
    view = base[0:2]
    base.mul_(w)
    for out in (view + 1.0, view * view, view.exp(), 1.0 - view):
        assert out.requires_grad
    (view * view).sum().backward()
    assert_close(w.grad, [2 * 2.0, 2 * 3.0, 0.0])


def test_view_of_non_grad_base_stays_unrecorded():
    base = pydl.zeros(4)
    view = base[1:3]
    base.add_(1.0)  # in place, nothing requires grad: the view is re-derived, still no graph
    out = view * 2.0
    assert not out.requires_grad
    assert_close(out, [2.0, 2.0])


# -- recording: what apply() keeps ------------------------------------------------------------------
def test_in_place_change_of_saved_input_is_caught_after_the_fast_record():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y * 3.0  # Mul saves y (a tensor) and 3.0 (a number: no version to check)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_saved_python_number_and_constant_array_under_create_graph():
    class ScaleByArray(Function):
        """x * c, with c a raw float array given as an argument: a constant, not an input."""

        def forward(self, x, c):
            self.save_for_backward(x, c)
            return x * c

        def backward(self, g):
            x, c = self.saved_tensors
            return g * c, None

    x = pydl.tensor(_f64(4), requires_grad=True)
    c = _f64(4, seed=3)
    assert gradcheck(lambda t: ScaleByArray.apply(t, c), (x,))
    assert gradgradcheck(lambda t: ScaleByArray.apply(t, c) * t, (x,))
    assert gradgradcheck(lambda t: (t * 2.5) * t, (x,))
    assert gradgradcheck(lambda t: (2.5 / t) * t.exp(), (pydl.tensor(_f64(3) + 3.0,
                                                                     requires_grad=True),))


def test_multi_output_function_records_each_output():
    class SplitTwo(Function):
        def forward(self, x):
            a, b = x[:2].copy(), x[2:].copy()
            return a, b

        def backward(self, ga, gb):
            return np.concatenate([ga, gb])

    x = pydl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = SplitTwo.apply(x)
    assert a.grad_fn is b.grad_fn and (a._out_index, b._out_index) == (0, 1)
    (a.sum() * 2 + b.sum() * 3).backward()
    assert_close(x.grad, [2.0, 2.0, 3.0])
    with pydl.no_grad():
        a2, b2 = SplitTwo.apply(x)
    assert a2.grad_fn is None and b2.grad_fn is None


def test_one_op_mixing_devices_raises():
    class Pair(Function):
        def forward(self, a, b):
            return a

    x = pydl.ones(2)
    y = pydl.ones(2)
    y._data = y._data.view(np.matrix)  # another array type stands in for device memory
    with pytest.raises(RuntimeError, match="expected all tensors to be on the same device"):
        Pair.apply(x, y)


# -- the engine -----------------------------------------------------------------------------------
def test_scalar_seed_for_one_element_outputs_of_any_rank():
    x = pydl.tensor([[2.0]], requires_grad=True)
    (x * x).backward()  # a (1, 1) output: the implicit gradient is ones of that shape
    assert_close(x.grad, [[4.0]])
    s = pydl.tensor(3.0, dtype=pydl.float64, requires_grad=True)
    (s * s).backward()
    assert s.grad.dtype == pydl.float64
    assert_close(s.grad, 6.0)


def test_root_reachable_from_another_root():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    z = y * y
    pydl.autograd.backward([y.sum(), z.sum(), y], [None, None, pydl.ones(2)])
    # d/dx (sum(3x) + sum(9x^2) + sum(3x)) = 3 + 18x + 3
    assert_close(x.grad, [24.0, 42.0])


def test_read_only_grad_is_replaced_not_written():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    frozen = np.array([10.0, 10.0], dtype=np.float32)
    frozen.flags.writeable = False
    x.grad = pydl.Tensor._wrap(frozen)
    (x * x).sum().backward()
    assert_close(x.grad, [12.0, 14.0])
    assert_close(frozen, [10.0, 10.0])


def test_gradient_of_leaf_root_is_a_copy():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    g = pydl.tensor([5.0, 6.0])
    x.backward(g)
    x.grad.add_(1.0)
    assert_close(g, [5.0, 6.0])


def test_same_array_reaching_two_leaves_is_copied_for_each():
    a = pydl.tensor([1.0, 2.0], requires_grad=True)
    b = pydl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add hands the same gradient array to both leaves
    a.grad.add_(1.0)
    assert_close(b.grad, [1.0, 1.0])


def test_grad_mode_restored_after_backward_and_errors():
    x = pydl.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert pydl.is_grad_enabled()
    with pydl.no_grad():
        y = pydl.tensor([1.0], requires_grad=True)
        with pydl.enable_grad():
            z = (y * y).sum()
        z.backward()
        assert not pydl.is_grad_enabled()
    assert pydl.is_grad_enabled()

    class Broken(Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, g):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        Broken.apply(x).sum().backward()
    assert pydl.is_grad_enabled()
    from pydl.autograd import grad_mode
    assert not grad_mode._state.backward_tensors
