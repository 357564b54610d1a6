"""``nn.Upsample`` (as ``torch.nn``): F.interpolate as a module (pydl/ops/interpolate.py)."""
from __future__ import annotations

from pydl.nn.module import Module
from pydl.ops.interpolate import interpolate


class Upsample(Module):
    """Resize (N, C, L) or (N, C, H, W) inputs to ``size`` or by ``scale_factor`` with
    ``mode`` 'nearest', 'linear' or 'bilinear' (``align_corners`` for the linear modes)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor}" if self.scale_factor is not None \
            else f"size={self.size}"
        return f"{what}, mode='{self.mode}'"
