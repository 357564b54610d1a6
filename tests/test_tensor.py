"""Tensor fields, conversion and creation functions."""
import numpy as np
import pytest

import pydl
from pydl.testing import assert_close


def test_tensor_infers_pytorch_dtypes():
    assert pydl.tensor([1.0, 2.0]).dtype == pydl.float32
    assert pydl.tensor([1, 2]).dtype == pydl.int64
    assert pydl.tensor([True, False]).dtype == pydl.bool
    assert pydl.tensor(np.zeros(2, dtype=np.float64)).dtype == pydl.float64
    assert pydl.tensor([1, 2], dtype=pydl.float64).dtype == pydl.float64
    assert pydl.tensor(3.5).shape == ()
    with pytest.raises(TypeError, match="mixed or non-numeric"):
        pydl.tensor(["a", 1])
    with pytest.raises(TypeError, match="does not support dtype"):
        pydl.tensor([1.0], dtype=np.complex64)


def test_fields_and_basic_methods():
    x = pydl.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and x.numel() == 6
    assert x.size() == (2, 3) and x.size(-1) == 3
    assert x.device == "cpu" and str(x.device) == "cpu"
    assert x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    assert len(x) == 2
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [4.0, 5.0, 6.0]
    assert x.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert x[1, 2].item() == 6.0
    with pytest.raises(ValueError, match="6 elements"):
        x.item()
    with pytest.raises(TypeError, match="0-d"):
        len(pydl.tensor(1.0))


def test_numpy_is_zero_copy_and_from_numpy_shares_memory():
    a = np.zeros(3, dtype=np.float32)
    t = pydl.from_numpy(a)
    a[0] = 7
    assert t[0].item() == 7
    t.numpy()[1] = 5
    assert a[1] == 5
    with pytest.raises(RuntimeError, match="requires grad"):
        pydl.ones(2, requires_grad=True).numpy()
    with pytest.raises(TypeError, match="numpy.ndarray"):
        pydl.from_numpy([1, 2])


def test_tensor_copies_its_input():
    a = np.zeros(2, dtype=np.float32)
    t = pydl.tensor(a)
    a[0] = 1
    assert t[0].item() == 0


def test_clone_contiguous_detach_to():
    x = pydl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    c = x.clone()
    assert c.grad_fn is not None
    c.sum().backward()
    assert_close(x.grad, np.ones((2, 2)))
    t = x.detach().t()
    assert not t.is_contiguous()
    assert t.contiguous().is_contiguous()
    assert t.contiguous().tolist() == [[1, 3], [2, 4]]
    d = x.to(pydl.float64)
    assert d.dtype == pydl.float64 and d.requires_grad
    d.sum().backward()
    assert x.grad.dtype == pydl.float32
    assert x.to("cpu") is x
    assert x.double().dtype == pydl.float64 and x.long().dtype == pydl.int64
    assert x.float() is x


def test_repr_is_readable():
    assert repr(pydl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(pydl.ones(2, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(pydl.ones(2, requires_grad=True) * 2)
    assert "dtype=pydl.float64" in repr(pydl.ones(2, dtype=pydl.float64))
    assert "size=(0, 3)" in repr(pydl.zeros(0, 3))


def test_creation_functions():
    assert pydl.zeros(2, 3).tolist() == [[0] * 3] * 2
    assert pydl.ones((2,)).dtype == pydl.float32
    assert pydl.full((2, 2), 7).dtype == pydl.int64
    assert pydl.full((2,), 1.5).tolist() == [1.5, 1.5]
    assert pydl.empty(3, 0).shape == (3, 0)
    assert pydl.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert pydl.arange(5).dtype == pydl.int64
    assert_close(pydl.arange(0, 1, 0.25), [0, 0.25, 0.5, 0.75])
    assert pydl.arange(0, 1, 0.25).dtype == pydl.float32
    assert_close(pydl.linspace(0, 1, 5), np.linspace(0, 1, 5))
    assert_close(pydl.eye(3), np.eye(3))
    x = pydl.ones(2, 3, dtype=pydl.float64)
    assert pydl.zeros_like(x).dtype == pydl.float64
    assert pydl.ones_like(x).shape == (2, 3)
    assert pydl.full_like(x, 3).tolist() == [[3] * 3] * 2
    assert pydl.randn_like(x).shape == (2, 3)
    assert pydl.ones(2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="negative dimension"):
        pydl.zeros(-1)


def test_random_is_reproducible_under_manual_seed():
    pydl.manual_seed(42)
    a = [pydl.rand(3), pydl.randn(2, 2), pydl.randint(0, 10, (5,)), pydl.normal(0, 2, (3,)),
         pydl.randperm(6)]
    pydl.manual_seed(42)
    b = [pydl.rand(3), pydl.randn(2, 2), pydl.randint(0, 10, (5,)), pydl.normal(0, 2, (3,)),
         pydl.randperm(6)]
    for x, y in zip(a, b):
        assert x.tolist() == y.tolist()
    g = pydl.Generator().manual_seed(1)
    c = pydl.rand(4, generator=g)
    d = pydl.rand(4, generator=pydl.Generator().manual_seed(1))
    assert c.tolist() == d.tolist()
    r = pydl.rand(10000)
    assert 0 <= r.min().item() and r.max().item() < 1
    assert abs(pydl.randn(20000).mean().item()) < 0.05
    assert pydl.randint(3, (4,)).max().item() < 3


def test_in_place_random_fills():
    x = pydl.zeros(1000)
    x.uniform_(-2, 2)
    assert -2 <= x.min().item() and x.max().item() <= 2
    x.normal_(5, 0.1)
    assert abs(x.mean().item() - 5) < 0.05


def test_bool_of_tensor():
    assert bool(pydl.tensor([1.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(pydl.ones(2))


def test_show_config_prints_facts(capsys):
    pydl.show_config()
    out = capsys.readouterr().out
    for key in ("pydl", "compiler", "simd path", "threads", "cuda module built", "gpu visible"):
        assert key in out
    cfg = pydl._config.config()
    assert cfg["simd path"] in ("avx512", "avx2+fma", "portable")
    assert cfg["gpu visible"] is False or cfg["gpu count"] > 0


def test_threads_setting_roundtrip():
    n = pydl.get_num_threads()
    pydl.set_num_threads(1)
    assert pydl.get_num_threads() == 1
    pydl.set_num_threads(n)
    with pytest.raises(ValueError):
        pydl.set_num_threads(0)


def test_cuda_unavailable_is_reported_clearly():
    if pydl.cuda.is_available():
        pytest.skip("a GPU is present")
    assert pydl.cuda.unavailable_reason()
    with pytest.raises(RuntimeError, match="cannot use device 'cuda'"):
        pydl.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="cannot use device 'cuda'"):
        pydl.zeros(2).cuda()
