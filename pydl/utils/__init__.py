"""``pydl.utils``: ``summary(model, input_shape)`` (a layer table with output shapes and parameter
counts, as the ``torchsummary`` / ``torchinfo`` packages print for PyTorch models) and
``pydl.utils.data``, PyTorch's path to the data-loading API.

``pydl.utils.data`` *is* ``pydl.data`` (the short name): the same module object and the same
submodules (``pydl.utils.data.dataloader is pydl.data.dataloader``), so ``import pydl as torch``
followed by ``torch.utils.data.DataLoader`` or ``from torch.utils.data.dataset import Subset``
finds pydl's classes, never copies of them.
"""
from __future__ import annotations

import sys

from pydl import data
from pydl.data import (_worker, dataloader, dataset, datasets, distributed, sampler,
                       transforms)
from pydl.utils._summary import LayerInfo, ModelSummary, _parents_first, summary

# Alias the package and each of its submodules under PyTorch's path. Registering every submodule
# matters: otherwise ``import pydl.utils.data.dataloader`` would find pydl/data/dataloader.py
# through the alias's __path__ and execute it a second time as a new module.
sys.modules[__name__ + ".data"] = data
for _mod in (_worker, dataloader, dataset, datasets, distributed, sampler, transforms):
    sys.modules[__name__ + ".data." + _mod.__name__.rsplit(".", 1)[1]] = _mod
del _mod

__all__ = ["LayerInfo", "ModelSummary", "data", "summary"]
