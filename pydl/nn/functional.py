"""``pydl.nn.functional`` (F): the functional form of every layer and loss.

This module is a hub: each function lives in ``pydl/ops/<family>.py`` next to its backward and
kernel dispatch, and is re-exported here under PyTorch's name.
"""
from pydl.ops.elementwise import relu, sigmoid, tanh  # noqa: F401
from pydl.ops.matmul import linear  # noqa: F401
from pydl.ops.shape import pad  # noqa: F401
