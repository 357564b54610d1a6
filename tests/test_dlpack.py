"""DLPack (pydl/dlpack.py): zero-copy exchange with NumPy, PyTorch and CuPy, both ways; a write on
one side is seen on the other; PyTorch's rules for requires_grad and version counters."""
import numpy as np
import pytest

import pydl
from pydl import cuda


def _shares(a, b) -> bool:
    return np.shares_memory(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_numpy_from_pydl_shares_memory_both_ways(dtype, rng):
    t = pydl.tensor(rng.standard_normal((3, 5)).astype(dtype))
    a = np.from_dlpack(t)
    assert a.dtype == dtype and a.shape == (3, 5) and _shares(a, t._data)
    a[1, 2] = 1
    assert t._data[1, 2] == 1
    with pydl.no_grad():
        t.zero_()
    assert not a.any()


def test_pydl_from_numpy_shares_memory_and_is_a_fresh_leaf(rng):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    t = pydl.from_dlpack(a)
    assert isinstance(t, pydl.Tensor) and t.dtype == np.float32 and t.shape == (4, 3)
    assert t.device == "cpu" and t.__dlpack_device__() == (1, 0)
    assert not t.requires_grad and t.is_leaf and t.grad_fn is None and t._version == 0
    a[0, 0] = 42.0
    assert float(t[0, 0].item()) == 42.0
    t.fill_(3.0)
    assert (a == 3.0).all()


def test_non_contiguous_views_keep_their_strides(rng):
    a = rng.standard_normal((4, 6))
    t = pydl.from_dlpack(a.T)
    assert t.shape == (6, 4) and _shares(t._data, a)
    np.testing.assert_array_equal(t.numpy(), a.T)
    back = np.from_dlpack(pydl.from_numpy(a)[:, 1::2])
    np.testing.assert_array_equal(back, a[:, 1::2])
    assert _shares(back, a)


def test_zero_size_and_zero_dim():
    t = pydl.from_dlpack(np.zeros((0, 3), np.float32))
    assert t.shape == (0, 3)
    s = pydl.from_dlpack(np.array(2.5))
    assert s.shape == () and float(s.item()) == 2.5


def test_export_of_a_tensor_that_requires_grad_is_refused():
    w = pydl.randn(3, requires_grad=True)
    with pytest.raises(BufferError, match="require gradient, use tensor.detach"):
        w.__dlpack__()
    with pytest.raises(BufferError, match="require gradient"):
        np.from_dlpack(w)
    d = np.from_dlpack(w.detach())
    assert _shares(d, w._data)


def test_copy_argument(rng):
    a = rng.standard_normal(5)
    assert _shares(pydl.from_dlpack(a, copy=False)._data, a)
    c = pydl.from_dlpack(a, copy=True)
    assert not _shares(c._data, a)
    np.testing.assert_array_equal(c.numpy(), a)
    with pytest.raises(TypeError, match="copy must be"):
        pydl.from_dlpack(a, copy="yes")


def test_bad_inputs_are_clear_errors():
    with pytest.raises(TypeError, match="expected an object with __dlpack__"):
        pydl.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="no dtype"):
        pydl.from_dlpack(np.ones(3, np.complex64))
    with pytest.raises(BufferError, match="takes no stream"):
        pydl.ones(2).__dlpack__(stream=1)


def test_round_trip_through_pydl_keeps_memory(rng):
    t = pydl.tensor(rng.standard_normal(6).astype(np.float32))
    u = pydl.from_dlpack(t)
    assert _shares(u._data, t._data) and u is not t and u._version == 0


# -- PyTorch ------------------------------------------------------------------------------------

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_torch_from_pydl_shares_memory(torch, dtype, rng):
    t = pydl.tensor(rng.standard_normal((2, 3)).astype(dtype))
    x = torch.from_dlpack(t)
    assert str(x.dtype) == f"torch.{dtype}" and tuple(x.shape) == (2, 3)
    assert x.data_ptr() == t._data.ctypes.data
    x[0, 1] = 1
    assert t._data[0, 1] == 1
    t._data[1, 2] = 0
    assert not bool(x[1, 2])


def test_pydl_from_torch_shares_memory(torch):
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = pydl.from_dlpack(x)
    assert t._data.ctypes.data == x.data_ptr() and t.shape == (3, 4)
    assert not t.requires_grad and t._version == 0
    t.fill_(-1.0)
    assert (x == -1).all()
    x[2, 3] = 7.0
    assert float(t[2, 3].item()) == 7.0
    # a transposed torch view arrives with its strides, still sharing
    tt = pydl.from_dlpack(x.t())
    assert tt.shape == (4, 3) and tt.stride() == (1, 4)


def test_torch_rules_for_requires_grad(torch):
    x = torch.ones(3, requires_grad=True)
    with pytest.raises((BufferError, RuntimeError), match="require gradient"):
        pydl.from_dlpack(x)
    assert pydl.from_dlpack(x.detach())._data.ctypes.data == x.data_ptr()
    w = pydl.ones(3, requires_grad=True)
    with pytest.raises(BufferError, match="use tensor.detach"):
        torch.from_dlpack(w)
    y = torch.from_dlpack(w.detach())
    assert not y.requires_grad and y.data_ptr() == w._data.ctypes.data


def test_a_legacy_capsule_is_accepted_once(torch):
    x = torch.arange(4, dtype=torch.float64)
    cap = torch.utils.dlpack.to_dlpack(x)
    t = pydl.from_dlpack(cap)
    assert t._data.ctypes.data == x.data_ptr()
    with pytest.raises(ValueError, match="consumed only once"):
        pydl.from_dlpack(cap)


# -- CUDA (CuPy) --------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not cuda.is_available(), reason="needs a CUDA GPU and CuPy")


@needs_gpu
def test_cupy_both_ways_on_cuda():
    import cupy

    c = cupy.arange(6, dtype=cupy.float32)
    t = pydl.from_dlpack(c)
    assert t.device.type == "cuda" and t.__dlpack_device__()[0] == 2
    assert t._data._data.ptr == c._data.ptr
    c[0] = 5
    assert float(t._data[0].get()) == 5
    back = cupy.from_dlpack(t)
    back[1] = -3
    assert float(c[1].get()) == -3


@needs_gpu
def test_torch_cuda_both_ways(torch):
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    x = torch.zeros(4, device="cuda")
    t = pydl.from_dlpack(x)
    assert t.device.type == "cuda" and t._data._data.ptr == x.data_ptr()
    y = torch.from_dlpack(t)
    y[2] = 1.5
    torch.cuda.synchronize()
    assert float(x[2]) == 1.5
