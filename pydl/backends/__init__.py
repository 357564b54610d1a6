"""``pydl.backends``: the flags PyTorch scripts set on their backends, as ``torch.backends``.

pydl does not use cuDNN or MPS: its convolutions, pooling and batch norm are its own kernels
(``csrc/``, ``cuda/``). The flags exist so that scripts setting them run unchanged; each one's
docstring says what it does in pydl (mostly nothing).
"""
from pydl.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
