"""``pydl.nn.functional`` (F): the functional form of every layer and loss.

This module is a hub: each function lives in ``pydl/ops/<family>.py`` next to its backward and
kernel dispatch, and is re-exported here under PyTorch's name.
"""
from pydl.ops.elementwise import relu, sigmoid, tanh  # noqa: F401
from pydl.ops.matmul import linear  # noqa: F401
from pydl.ops.shape import pad  # noqa: F401
from pydl.ops.conv import (conv1d, conv2d, conv_transpose1d, conv_transpose2d,  # noqa: F401
                           convolve1d, convolve2d)
from pydl.ops.pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d,  # noqa: F401
                           avg_pool2d, max_pool1d, max_pool2d)
from pydl.ops.batchnorm import batch_norm  # noqa: F401
