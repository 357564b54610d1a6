"""The nccl backend on real GPUs (skipped without CuPy, NCCL and a CUDA device): collectives on
CUDA tensors and a DDP step, under mpirun with one rank per GPU (at most 2)."""
import pytest


def _gpus() -> int:
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


@pytest.mark.skipif(_gpus() == 0, reason="needs CuPy with NCCL and a CUDA device")
def test_nccl_collectives_and_ddp(mpirun):
    n = min(2, _gpus())
    proc, outs = mpirun(n, "nccl.py", timeout=300)
    assert proc.returncode == 0, proc.stderr
    for out in outs:
        assert out["failures"] == []
        assert out["grad_diff"] < 1e-12
