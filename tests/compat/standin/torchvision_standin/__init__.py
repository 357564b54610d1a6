"""A torchvision stand-in for pydl's compatibility tests (tests/compat): the few names the
pytorch/examples scripts import from torchvision, over pydl, never downloading anything.

* ``datasets.MNIST``: MNIST-shaped data (uint8 28x28 images, int labels 0-9; 60,000 training
  and 10,000 test samples) made from the 1,797 8x8 digits bundled with pydl, upsampled 3x and
  centred as MNIST centres its 20x20 digits, shifted by up to 2 pixels. The environment variable
  ``TORCHVISION_STANDIN_MNIST=TRAIN,TEST`` makes smaller sets for fast tests.
* ``transforms``: ``Compose``, ``ToTensor``, ``Normalize``, ``Lambda`` (pydl's own transforms).
* ``utils.save_image`` / ``utils.make_grid``: torchvision's grid layout, written as PNG.

``TORCHVISION_STANDIN_BACKEND=torch`` gives torch tensors instead (the same pixels), so that
tests/parity can run the upstream scripts with PyTorch on the same data.
"""
from torchvision_standin import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
