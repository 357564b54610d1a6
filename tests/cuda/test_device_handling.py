"""Device handling where CUDA is unavailable (no GPU here, usually no CuPy): asking for 'cuda'
raises a RuntimeError that names what is missing; CPU work is unchanged."""
import numpy as np
import pytest

import pydl
from pydl import cuda

pytestmark = pytest.mark.skipif(cuda.is_available(), reason="a usable GPU is present")


def test_is_available_false_with_reason():
    assert cuda.is_available() is False
    assert cuda.device_count() == 0
    reason = cuda.unavailable_reason()
    assert reason and any(w in reason for w in ("CuPy", "GPU", "CUDA module"))


@pytest.mark.parametrize("make", [
    lambda: pydl.zeros(2, device="cuda"),
    lambda: pydl.ones(2, 3, device="cuda:0"),
    lambda: pydl.tensor([1.0, 2.0], device="cuda"),
    lambda: pydl.tensor([1.0]).cuda(),
    lambda: pydl.tensor([1.0]).to("cuda"),
    lambda: cuda.kernels(),
], ids=["zeros", "ones", "tensor", "Tensor.cuda", "Tensor.to", "kernels"])
def test_cuda_requests_raise_naming_the_gap(make):
    with pytest.raises(RuntimeError, match="cannot use device 'cuda': .*(CuPy|GPU|CUDA module)"):
        make()


def test_module_to_cuda_raises():
    model = pydl.nn.Sequential(pydl.nn.Conv2d(3, 2, 3), pydl.nn.BatchNorm2d(2))
    with pytest.raises(RuntimeError, match="cannot use device 'cuda'"):
        model.to("cuda")
    assert model[0].weight.device == "cpu"


def test_cpu_paths_unchanged():
    x = pydl.tensor(np.arange(6.0).reshape(2, 3), dtype=pydl.float64)
    assert x.cpu() is x and x.to("cpu") is x
    np.testing.assert_allclose((x @ x.T).numpy(), np.arange(6.0).reshape(2, 3) @
                               np.arange(6.0).reshape(2, 3).T)


def test_bad_device_strings():
    with pytest.raises(ValueError, match="unknown device"):
        pydl.zeros(2, device="tpu")


def test_mixed_devices_raise_clear_error():
    # A stand-in for a CuPy array (no GPU here): any non-NumPy array is another device.
    class FakeDeviceArray(np.ndarray):
        pass

    a = pydl.tensor([1.0, 2.0])
    b = pydl.tensor([3.0, 4.0])
    b._data = np.asarray([3.0, 4.0]).view(FakeDeviceArray)
    with pytest.raises(RuntimeError, match="same device"):
        a + b
