"""The nvcc-built module pydl._C_cuda: loads without a GPU, reports no device, and its kernels
stay within the register-spill budget (cuda/check_spills.py) with SASS for sm_80 and sm_90 plus
PTX. Skipped where the module was not built (no nvcc) or cuobjdump is missing."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def cuda_module():
    try:
        from pydl import _C_cuda
    except ImportError as e:
        pytest.skip(f"pydl._C_cuda not built: {e}")
    return _C_cuda


@pytest.fixture(scope="module")
def check_spills():
    spec = importlib.util.spec_from_file_location(
        "check_spills", os.path.join(ROOT, "cuda", "check_spills.py"))
    if spec is None or not os.path.exists(spec.origin):
        pytest.skip("cuda/check_spills.py is not in this tree (installed package test run)")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_module_loads_and_is_real(cuda_module):
    assert cuda_module.emulated is False
    assert cuda_module.device_count() >= 0
    assert cuda_module.runtime_version() >= 13000


def test_no_register_spills(cuda_module, check_spills):
    tool = check_spills.find_cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    rows = check_spills.resource_usage(tool, cuda_module.__file__)
    names = " ".join(r["name"] for r in rows)
    for family in ("gemm_tiled_kernel", "implicit_gemm_kernel", "max_pool2d_forward_kernel",
                   "avg_pool2d_backward_kernel", "batch_norm_forward_train_kernel",
                   "batch_norm_backward_train_kernel", "adam_step_kernel", "sgd_step_kernel"):
        assert family in names, f"{family} missing from the module"
    assert check_spills.check(cuda_module.__file__, tool) == []


def test_launch_without_gpu_raises_runtime_error(cuda_module):
    if cuda_module.device_count() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="pydl_cuda: sgemm_cuda launch failed"):
        cuda_module.sgemm(False, False, 2, 2, 2, 1.0, 0, 2, 0, 0, 2, 0, 0.0, 0, 2, 0, 1, 0)
