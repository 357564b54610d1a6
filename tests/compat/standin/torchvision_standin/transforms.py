"""torchvision.transforms names the examples use: pydl's own transforms."""
from pydl.data.transforms import Compose, Lambda, Normalize, ToTensor

__all__ = ["Compose", "Lambda", "Normalize", "ToTensor"]
