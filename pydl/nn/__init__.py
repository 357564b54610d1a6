"""``pydl.nn``: modules, layers, losses, initialisation (as ``torch.nn``)."""
from pydl.nn import functional, init  # noqa: F401
from pydl.nn.containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from pydl.nn.module import Module, Parameter  # noqa: F401
from pydl.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401
from pydl.nn.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d,  # noqa: F401
                             AvgPool2d, MaxPool1d, MaxPool2d)
from pydl.nn.batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
