"""PyTorch's module paths and Tensor.__format__ (issue #20) against torch itself."""
import pytest

import pydl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("value", [1.23456, -0.5, 7, -3, True, False, 1e-7, 12345.678])
@pytest.mark.parametrize("spec", ["", ".4f", "+.2f", ">10", ".3e", "g", "d", "+d", "08.3f"])
def test_format_0d_matches_torch(value, spec):
    def fmt(t):
        try:
            return format(t, spec)
        except (TypeError, ValueError) as e:
            return type(e).__name__
    assert fmt(pydl.tensor(value)) == fmt(torch.tensor(value))


@pytest.mark.parametrize("shape", [(1,), (2,), (1, 1), (0,)])
@pytest.mark.parametrize("spec", ["", ".2f"])
def test_format_non_0d_matches_torch(shape, spec):
    def outcome(t):
        try:
            s = format(t, spec)
            return "repr" if s == repr(t) else s
        except TypeError:
            return "TypeError"
    assert outcome(pydl.ones(*shape)) == outcome(torch.ones(*shape))


def test_utils_data_names_exist_in_both():
    import torch.utils.data as tud

    import pydl.utils.data as pud

    for name in ("DataLoader", "Dataset", "TensorDataset", "Subset", "ConcatDataset",
                 "random_split", "default_collate", "get_worker_info", "Sampler",
                 "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler"):
        assert hasattr(tud, name) and hasattr(pud, name), name


def test_accelerator_and_cudnn_defaults_match_a_cpu_torch():
    if torch.accelerator.is_available() or pydl.accelerator.is_available():
        pytest.skip("compares the no-accelerator answers")
    assert pydl.accelerator.is_available() is torch.accelerator.is_available() is False
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(pydl.backends.cudnn, name) == getattr(torch.backends.cudnn, name), name
    assert pydl.backends.cudnn.version() == torch.backends.cudnn.version()
    assert pydl.backends.mps.is_available() == torch.backends.mps.is_available()
    with pytest.raises(RuntimeError):
        torch.backends.cudnn.benchmark = 1
    with pytest.raises(RuntimeError):
        pydl.backends.cudnn.benchmark = 1


def test_inference_mode_matches_torch():
    for lib in (torch, pydl):
        x = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            y = x * 2
            assert not lib.is_grad_enabled() and lib.is_inference_mode_enabled()
            with lib.inference_mode(False):
                assert not lib.is_inference_mode_enabled()
        assert not y.requires_grad and y.grad_fn is None
        assert lib.is_grad_enabled()
