"""``pydl.backends.cuda``: PyTorch's CUDA backend flags.

``is_built()`` says whether pydl's CUDA module was compiled. ``matmul.allow_tf32`` and
``matmul.allow_fp16_reduced_precision_reduction`` are accepted and change nothing: pydl's GEMM
never uses TF32 or reduced-precision accumulation.
"""
from __future__ import annotations


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    from pydl._config import cuda_module

    return cuda_module() is not None
