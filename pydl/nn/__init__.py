"""``pydl.nn``: modules, layers, losses, initialisation (as ``torch.nn``)."""
from pydl.nn import functional, init  # noqa: F401
from pydl.nn.containers import (ModuleDict, ModuleList, ParameterDict,  # noqa: F401
                                 ParameterList, Sequential)
from pydl.nn.module import Module, Parameter  # noqa: F401
from pydl.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401
from pydl.nn.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d,  # noqa: F401
                             AvgPool2d, MaxPool1d, MaxPool2d)
from pydl.nn.batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from pydl.nn.normalization import GroupNorm, LayerNorm  # noqa: F401
from pydl.nn.upsampling import Upsample  # noqa: F401
from pydl.nn.activation import (ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, ReLU,  # noqa: F401
                                Sigmoid, SiLU, Softmax, Softplus, Tanh)
from pydl.nn.dropout import Dropout, Dropout2d  # noqa: F401
from pydl.nn.linear import Bilinear, Flatten, Identity, Linear, Unflatten  # noqa: F401
from pydl.nn.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss,  # noqa: F401
                          KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss)
from pydl.nn.noise import (GaussianNoise, MaskingNoise, add_weight_noise,  # noqa: F401
                           remove_weight_noise)
from pydl.nn.sparse import Embedding  # noqa: F401
from pydl.nn.tied import TiedLinear, shared_parameters  # noqa: F401
from pydl.nn import utils  # noqa: F401,E402
from pydl.nn.sync_batchnorm import SyncBatchNorm  # noqa: F401,E402
from pydl.nn import parallel  # noqa: F401,E402
