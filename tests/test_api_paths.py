"""PyTorch's module paths (issue #20): pydl.utils.data, pydl.accelerator, pydl.backends,
pydl.inference_mode, and Tensor.__format__."""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl


def test_utils_data_is_pydl_data_not_a_copy():
    import pydl.utils.data
    from pydl.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split
    from pydl.utils.data.dataloader import default_collate
    from pydl.utils.data.dataset import ConcatDataset
    from pydl.utils.data.sampler import RandomSampler

    assert pydl.utils.data is pydl.data
    assert (DataLoader, Dataset, Subset, TensorDataset, random_split) == (
        pydl.data.DataLoader, pydl.data.Dataset, pydl.data.Subset, pydl.data.TensorDataset,
        pydl.data.random_split)
    assert default_collate is pydl.data.default_collate
    assert ConcatDataset is pydl.data.ConcatDataset
    assert RandomSampler is pydl.data.RandomSampler
    assert pydl.utils.data.get_worker_info() is None
    for name in ("dataloader", "dataset", "sampler", "transforms", "datasets"):
        assert importlib.import_module(f"pydl.utils.data.{name}") is \
            importlib.import_module(f"pydl.data.{name}")


def test_utils_data_path_in_a_fresh_interpreter(tmp_path):
    # `import torch.utils.data` as a script's first line, with pydl in torch's place
    code = ("import pydl.utils.data.dataloader as m, pydl.data.dataloader as n, sys; "
            "assert m is n, (m, n); "
            "assert sum(1 for k in sys.modules if k.endswith('dataloader')) == 2; "
            "from pydl.utils import summary, ModelSummary, LayerInfo; print('ok')")
    # The pydl under test (installed wheel or in-place build), run from outside the checkout so
    # that a source tree without a compiled _C in the working directory cannot shadow it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_utils_keeps_summary():
    from pydl.utils import LayerInfo, ModelSummary, summary

    assert callable(summary) and LayerInfo and ModelSummary
    assert pydl.utils.summary is summary


def test_accelerator_without_gpu_picks_cpu():
    acc = pydl.accelerator
    assert acc.is_available() == pydl.cuda.is_available()
    assert acc.device_count() == pydl.cuda.device_count()
    device = acc.current_accelerator() if acc.is_available() else pydl.device("cpu")
    x = pydl.ones(2).to(device)
    assert x.device == device
    if not acc.is_available():
        assert acc.current_accelerator(check_available=True) is None
        with pytest.raises(RuntimeError, match="no accelerator"):
            acc.current_device_index()
        acc.synchronize()  # no-op
    else:
        assert acc.current_accelerator() == pydl.device("cuda")
        assert acc.current_device_index() == 0


def test_cudnn_flags_are_accepted_bools_and_restored():
    cudnn = pydl.backends.cudnn
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == \
        (True, False, False, True)
    assert cudnn.is_available() is False and cudnn.version() is None
    try:
        cudnn.benchmark = True
        cudnn.deterministic = True
        assert cudnn.benchmark and cudnn.deterministic
        with pytest.raises(RuntimeError, match="benchmark expects a bool"):
            cudnn.benchmark = 1
        with cudnn.flags(enabled=False, benchmark=False, deterministic=False, allow_tf32=False):
            assert not cudnn.enabled and not cudnn.allow_tf32 and not cudnn.benchmark
        assert cudnn.enabled and cudnn.allow_tf32 and cudnn.benchmark
    finally:
        cudnn.benchmark = False
        cudnn.deterministic = False
    assert pydl.backends.mps.is_available() is False
    assert pydl.backends.cuda.is_built() == (pydl._config.cuda_module() is not None)
    pydl.backends.cuda.matmul.allow_tf32 = True  # accepted
    pydl.backends.cuda.matmul.allow_tf32 = False


def test_inference_mode_records_nothing():
    x = pydl.randn(3, requires_grad=True)
    assert not pydl.is_inference_mode_enabled()
    with pydl.inference_mode():
        assert pydl.is_inference_mode_enabled() and not pydl.is_grad_enabled()
        y = (x * 2).sum()
        assert not y.requires_grad and y.grad_fn is None
        with pydl.inference_mode(False):
            assert not pydl.is_inference_mode_enabled()
            assert not pydl.is_grad_enabled()  # mode=False leaves grad mode as it is
    assert pydl.is_grad_enabled() and not pydl.is_inference_mode_enabled()
    assert (x * 2).sum().requires_grad


def test_inference_mode_as_decorator_with_and_without_call():
    x = pydl.randn(2, requires_grad=True)

    @pydl.inference_mode()
    def f(t):
        return t * 3

    @pydl.inference_mode
    def g(t):
        return t * 3

    @pydl.inference_mode(mode=False)
    def h(t):
        return t * 3

    assert not f(x).requires_grad and not g(x).requires_grad and h(x).requires_grad
    assert f.__name__ == "f" and g.__name__ == "g"
    assert pydl.is_grad_enabled()
    with pytest.raises(TypeError, match="mode must be a bool"):
        pydl.inference_mode("yes")


def test_inference_mode_restores_on_exception():
    with pytest.raises(ZeroDivisionError):
        with pydl.inference_mode():
            1 / 0
    assert pydl.is_grad_enabled() and not pydl.is_inference_mode_enabled()


@pytest.mark.parametrize("value,spec,expected", [
    (1.23456, ".4f", "1.2346"), (1.23456, "+.2f", "+1.23"), (3, "+d", "+3"), (3, "", "3"),
    (True, "", "True"), (2.5, ">8", "     2.5"), (0.000123, ".2e", "1.23e-04")])
def test_format_of_0d_tensor_is_its_number(value, spec, expected):
    t = pydl.tensor(value)
    assert format(t, spec) == expected
    assert "{:{}}".format(t, spec) == expected


def test_format_of_other_tensors_is_repr():
    t = pydl.tensor([1.5])
    assert f"{t}" == repr(t)
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{t:.2f}"
    x = pydl.tensor(2.0, requires_grad=True)
    assert f"{x * 3:.1f}" == "6.0"
    assert f"{pydl.tensor(np.float64(1) / 3):.3f}" == "0.333"
