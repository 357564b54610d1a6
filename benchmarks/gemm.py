"""GEMM suite: pydl._C.gemm / pydl._C.matmul against NumPy (``a @ b``) and PyTorch (``torch.mm``).

Cases (m x k @ k x n, float32 "sgemm" and float64 "dgemm"):
  * square n = 64 .. 2048 (plotted: x = n, series "sgemm square" / "dgemm square");
  * the skinny products convolutions make through im2col: 4096 x 27 @ 27 x 64 (3x3 conv, 3 input
    channels, 64 x 64 output) and 64 x 2304 @ 2304 x 256 (3x3 conv, 256 channels, 8 x 8 output);
  * a Linear layer's forward x @ W^T with W stored (out, in), read transposed without a copy;
  * a batched product (attention-like), threaded over batch items.

Rate is 2 m n k / time. For scale: on the 2-core development VM (Sapphire Rapids class) an
FMA-only AVX-512 loop reaches about 433 GFLOP/s float32 on 2 cores (237 on one) and an AVX2 loop
about 258 (128 per core); float64 is half. pydl and OpenBLAS both pick their AVX-512 kernels
there (``_C.set_simd_path("avx2+fma")`` times pydl's AVX2 path, as CPUs without AVX-512 run it).

Reading the numbers: after each call OpenBLAS's (and PyTorch's OpenMP) worker threads keep
spinning for a while before they sleep, so in the alternating rounds they hold a core while
pydl's next round runs, and pydl's pool worker (which sleeps between calls) gets less of it.
On the 2-core VM, pydl's float32 1024^3 ran at 203 GFLOP/s timed alone and at 121 alternating
with NumPy. Time pydl alone (``--peers none``, which matches no peer) to see its own rate.
"""
from __future__ import annotations

import numpy as np

from pydl import _C

from .harness import optional_torch

SQUARE = [64, 128, 256, 512, 1024, 2048]
SKINNY = [(4096, 27, 64), (64, 2304, 256)]  # (m, k, n)
LINEAR = (256, 1024, 1024)  # (batch, in_features, out_features)
BATCHED = (32, 128, 64, 128)  # (batch, m, k, n)

DTYPES = [(np.float32, "sgemm"), (np.float64, "dgemm")]


def _gemm_case(suite, torch, rng, dtype, label, m, k, n, **plot):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    peers = {"numpy": lambda: a @ b}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        peers["torch"] = lambda: torch.mm(ta, tb)
    suite.add(f"{label} {m}x{k}x{n}", pydl=lambda: _C.gemm(a, b), peers=peers,
              flops=2.0 * m * n * k, dtype=np.dtype(dtype).name, **plot)


def _linear_case(suite, torch, rng, dtype, label):
    batch, fan_in, fan_out = LINEAR
    x = rng.standard_normal((batch, fan_in)).astype(dtype)
    w = rng.standard_normal((fan_out, fan_in)).astype(dtype)
    peers = {"numpy": lambda: x @ w.T}
    if torch is not None:
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        peers["torch"] = lambda: torch.mm(tx, tw.t())
    suite.add(f"{label} x@W^T {batch}x{fan_in}x{fan_out}",
              pydl=lambda: _C.gemm(x, w, trans_b=True), peers=peers,
              flops=2.0 * batch * fan_in * fan_out, dtype=np.dtype(dtype).name)


def _batched_case(suite, torch, rng, dtype, label):
    batch, m, k, n = BATCHED
    a = rng.standard_normal((batch, m, k)).astype(dtype)
    b = rng.standard_normal((batch, k, n)).astype(dtype)
    peers = {"numpy": lambda: np.matmul(a, b)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        peers["torch"] = lambda: torch.matmul(ta, tb)
    suite.add(f"{label} batched {batch}x({m}x{k}x{n})", pydl=lambda: _C.matmul(a, b),
              peers=peers, flops=2.0 * batch * m * n * k, dtype=np.dtype(dtype).name)


def run(suite) -> None:
    torch = optional_torch()
    rng = np.random.default_rng(0)
    # --quick (under a minute for every suite together): two square sizes, one skinny product
    # and the Linear case per dtype.
    square = [128, 512] if suite.quick else SQUARE
    skinny = SKINNY[1:] if suite.quick else SKINNY
    for dtype, label in DTYPES:
        for n in square:
            _gemm_case(suite, torch, rng, dtype, label, n, n, n, x=n, series=f"{label} square")
        for m, k, n in skinny:
            _gemm_case(suite, torch, rng, dtype, label, m, k, n)
        _linear_case(suite, torch, rng, dtype, label)
        if not suite.quick:
            _batched_case(suite, torch, rng, dtype, label)
