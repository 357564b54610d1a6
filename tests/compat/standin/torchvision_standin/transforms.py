"""torchvision.transforms names the examples use: pydl's own transforms, or with
``TORCHVISION_STANDIN_BACKEND=torch`` the same three over torch tensors (tests/parity runs the
scripts with PyTorch itself on the same data)."""
import os

if os.environ.get("TORCHVISION_STANDIN_BACKEND") == "torch":
    import numpy as np
    import torch

    from pydl.data.transforms import Compose, Lambda

    class ToTensor:
        """uint8 (H, W) -> float32 (1, H, W) in [0, 1], as torchvision's."""

        def __call__(self, pic):
            arr = np.asarray(pic)
            if arr.ndim == 2:
                arr = arr[:, :, None]
            out = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
            return out.float().div(255) if arr.dtype == np.uint8 else out.float()

    class Normalize:
        def __init__(self, mean, std, inplace=False):
            self.mean, self.std = mean, std

        def __call__(self, t):
            mean = torch.as_tensor(self.mean, dtype=t.dtype).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=t.dtype).view(-1, 1, 1)
            return (t - mean) / std
else:
    from pydl.data.transforms import Compose, Lambda, Normalize, ToTensor

__all__ = ["Compose", "Lambda", "Normalize", "ToTensor"]
