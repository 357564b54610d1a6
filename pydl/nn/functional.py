"""``pydl.nn.functional`` (F): the functional form of every layer and loss.

This module is a hub: each function lives in ``pydl/ops/<family>.py`` next to its backward and
kernel dispatch, and is re-exported here under PyTorch's name.
"""
from pydl.ops.elementwise import sigmoid, tanh  # noqa: F401
from pydl.ops.matmul import linear  # noqa: F401
from pydl.ops.shape import pad  # noqa: F401
from pydl.ops.conv import (conv1d, conv2d, conv_transpose1d, conv_transpose2d,  # noqa: F401
                           convolve1d, convolve2d)
from pydl.ops.pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d,  # noqa: F401
                           avg_pool2d, max_pool1d, max_pool2d)
from pydl.ops.batchnorm import batch_norm  # noqa: F401
# Activations, softmax, dropout, noise (F.relu: the elementwise Relu node, plus inplace=).
from pydl.ops.activation import (dropout, dropout2d, elu, elu_, gaussian_noise,  # noqa: F401,E402
                                 gelu, hardtanh, hardtanh_, leaky_relu, leaky_relu_,
                                 log_softmax, relu, relu_, silu, softmax, softplus)
from pydl.ops.bilinear import bilinear  # noqa: F401,E402
from pydl.ops.embedding import embedding  # noqa: F401,E402
from pydl.ops.loss import (binary_cross_entropy,  # noqa: F401,E402
                           binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
                           l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from pydl.ops.scatter import one_hot  # noqa: F401,E402
from pydl.ops.normalization import group_norm, layer_norm  # noqa: F401,E402
from pydl.ops.interpolate import interpolate, upsample  # noqa: F401,E402
