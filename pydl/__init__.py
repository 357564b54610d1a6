"""pydl: PyTorch's API over small, readable C++ and CUDA kernels.

    import pydl
    x = pydl.randn(3, 4, requires_grad=True)
    y = (x @ x.T).relu().sum()
    y.backward()          # x.grad now holds dy/dx
"""
from pydl import _C
from pydl._config import (__version__, are_deterministic_algorithms_enabled, get_num_threads,
                          set_num_threads, show_config, use_deterministic_algorithms)
from pydl import cuda
from pydl.dtypes import (bool_, double, float, float16, float32, float64, get_default_dtype, half,
                         int, int32, int64, is_floating_point, long, promote_types, result_type,
                         set_default_dtype, uint8)
from pydl.device import device
from pydl.random import Generator, initial_seed, manual_seed, seed
from pydl.tensor import Tensor
from pydl.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from pydl.autograd.inference_mode import inference_mode, is_inference_mode_enabled
from pydl import autograd, ops
from pydl.creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full,
                           full_like, linspace, normal, ones, ones_like, rand, rand_like, randint,
                           randn, randn_like, randperm, tensor, zeros, zeros_like)
from pydl.ops.elementwise import (abs, add, allclose, clamp, clip, cos, div, eq, equal, exp, ge,
                                  gt, isfinite, isinf, isnan, le, log, logical_and, logical_not,
                                  logical_or, lt, maximum, minimum, mul, ne, neg, pow, relu,
                                  rsqrt, sigmoid, sign, sin, sqrt, square, sub, tanh, where)
from pydl.ops.reduction import (all, amax, amin, any, argmax, argmin, cumsum, logsumexp, max,
                                mean, min, norm, prod, std, sum, var)
from pydl.ops.shape import (broadcast_to, cat, chunk, concatenate, expand, flatten, flip,
                            permute, repeat, reshape, split, squeeze, stack, t, transpose,
                            unbind, unflatten, unsqueeze)
from pydl.ops.indexing import gather, index_select, masked_fill
from pydl.ops.matmul import bmm, dot, matmul, mm
from pydl.ops.activation import log_softmax, softmax
from pydl.ops.sorting import argsort, msort, sort, topk, unique
from pydl.ops.scatter import scatter, scatter_add
from pydl.ops.einsum import einsum
from pydl.ops.special import addcdiv, addcmul, erf, erfinv, expm1, log1p
from pydl.ops.bitwise import (bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                              bitwise_right_shift, bitwise_xor)
from pydl.ops.rounding import (ceil, div, divide, fix, floor, floor_divide, fmod, frac,
                              remainder, round, true_divide, trunc)
from pydl.ops.pointwise_math import (arctan2, atan2, clamp_max, clamp_min, deg2rad, hypot,
                                    isclose, lerp, logaddexp, logaddexp2, nan_to_num, rad2deg,
                                    sgn, sign, xlogy)
from pydl.ops.shape_extra import (broadcast_shapes, broadcast_tensors, diff, ger, kron,
                                  meshgrid, outer, roll, rot90, tril, triu)
from pydl.ops.cumulative import cumprod
from pydl.ops.distance import cdist
from pydl.typeinfo import finfo, iinfo

bool = bool_  # noqa: A001  (pydl.bool, as torch.bool)
from pydl import nn  # noqa: E402
from pydl import optim  # noqa: E402
from pydl import linalg  # noqa: E402
from pydl.serialization import load, save  # noqa: E402
from pydl import data, models, train, utils  # noqa: E402
from pydl import distributions  # noqa: E402  (torch.distributions)
from pydl import distributed  # noqa: E402  (torch.distributed; mpi4py loads at init only)
from pydl import ensemble, transfer, viz  # noqa: E402  (viz loads matplotlib lazily)
from pydl import memory  # noqa: E402
from pydl import accelerator, backends  # noqa: E402
from pydl.dlpack import from_dlpack  # noqa: E402  (also attaches Tensor.__dlpack__)
