"""Tensor.data is PyTorch's: a Tensor over the same memory, cut from the graph, with its own
version counter; assigning a Tensor to it swaps the memory (issue #20)."""
import numpy as np
import pytest

import pydl


def test_data_is_a_detached_tensor_sharing_memory():
    x = pydl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.data
    assert type(d) is pydl.Tensor
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), x.detach().numpy())
    d.mul_(2.0)
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 4.0, 6.0])


def test_parameter_data_is_a_plain_tensor_and_updates_in_place():
    lin = pydl.nn.Linear(3, 2)
    w0 = lin.weight.detach().numpy().copy()
    assert type(lin.weight.data) is pydl.Tensor          # torch: Tensor, not Parameter
    lin.weight.data.add_(pydl.ones(2, 3), alpha=0.5)
    np.testing.assert_allclose(lin.weight.detach().numpy(), w0 + 0.5)
    lin.weight.data.fill_(3.0)
    assert (lin.weight.detach().numpy() == 3.0).all()
    lin.bias.data.copy_(pydl.tensor([7.0, 8.0]))
    np.testing.assert_array_equal(lin.bias.detach().numpy(), [7.0, 8.0])
    assert lin.weight.requires_grad and lin.weight.is_leaf


def test_writes_through_data_are_invisible_to_the_saved_tensor_check():
    # torch: y = x * x saves x; x.data.mul_(2) does not bump x's version, so backward runs and
    # uses the new values (2 * (2x)); x.detach().mul_(2) would raise instead.
    torch = pytest.importorskip("torch")
    for lib in (pydl, torch):
        x = lib.tensor([1.0, 3.0], requires_grad=True)
        y = (x * x).sum()
        x.data.mul_(2.0)
        y.backward()
        np.testing.assert_array_equal(np.asarray(x.grad.detach().numpy()), [4.0, 12.0])
    x = pydl.tensor([1.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    x.detach().mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_assigning_data_swaps_memory_shape_and_dtype():
    x = pydl.zeros(2, 2, requires_grad=True)
    new = pydl.arange(6, dtype=pydl.float64).reshape(3, 2)
    x.data = new
    assert x.shape == (3, 2) and x.dtype == pydl.float64 and x.requires_grad
    assert np.shares_memory(x.detach().numpy(), new.numpy())
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(6.0).reshape(3, 2))


def test_assigning_data_rejects_non_tensors_and_integers_on_grad_tensors():
    x = pydl.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="must be set to a Tensor.*numpy.ndarray"):
        x.data = np.ones(2)
    with pytest.raises(RuntimeError, match="int64"):
        x.data = pydl.tensor([1, 2])
    y = pydl.zeros(2)
    y.data = pydl.tensor([1, 2])                          # no grad: any dtype, as torch
    assert y.dtype == pydl.int64


def test_matches_torch_on_the_same_idioms():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (pydl, torch):
        lib.manual_seed(0)
        p = lib.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
        loss = (p * p).sum()
        loss.backward()
        p.data.add_(p.grad, alpha=-0.1)                   # regression/main.py's update
        p.grad.data.zero_()
        results.append((p.detach().numpy().copy(), p.grad.numpy().copy(), p.data.requires_grad,
                        p.data.is_leaf))
    (pa, ga, ra, la), (pt, gt, rt, lt) = results
    np.testing.assert_allclose(pa, pt, rtol=1e-6)
    np.testing.assert_array_equal(ga, gt)
    assert (ra, la) == (rt, lt)


def test_wrapped_numpy_scalars_are_0d_host_arrays():
    # NumPy returns scalars for 0-d results; a Tensor made from one must behave as a 0-d CPU
    # tensor in binary ops (it used to fail the device check: "got cpu and cpu").
    s = pydl.Tensor._wrap(np.float32(2.0))
    assert type(s._data) is np.ndarray and s.shape == () and s.device.type == "cpu"
    out = s + pydl.tensor([1.0, 2.0])
    np.testing.assert_array_equal(out.numpy(), [3.0, 4.0])
    b = pydl.Tensor._wrap(np.float32(1.0) > np.float32(0.5))
    assert (b & pydl.tensor([True, False])).tolist() == [True, False]
