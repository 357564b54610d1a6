"""conv2d forward + backward (dx, dw, db) against PyTorch CPU, side by side.

Shapes from the issue: LeNet's two conv layers and a ResNet 3x3 layer. One step is
y = conv2d(x, w, b); y.backward(dy) with x, w, b all requiring grad, so both contenders compute
the output, the input gradient and the weight and bias gradients (gradients are reset to None
before each step so neither pays for accumulation). FLOPs counted: 3 x 2*N*K*OH*OW*(C/g)*R*S
(forward, backward-input and backward-weight GEMMs) - the direct convolution's count, also for
the Winograd path, which does 2.25x fewer multiplications (its rate is "effective").
A forward-only row per shape follows. The scratch memory a kernel call may take (column tiles,
padded copies or transformed tiles) is printed for each shape; it does not grow with N.

Kernel paths (float32): with AVX-512 LeNet's layers take the row-flat kernels (csrc/conv_avx512.cpp;
the three gradients in one pass over the batch), with AVX2 only the direct stride-1 loops; the
ResNet 3x3 layer takes Winograd F(2x2, 3x3) on the packed GEMM; the depthwise layers take the
AVX2 tap-list kernels (padded, column-phase-split planes, 8 columns per vector).
`PYDL_SIMD=avx2` runs the suite on the AVX2 paths for comparison.
"""
import numpy as np

import pydl
import pydl.nn.functional as F
from pydl.ops.conv import conv2d_column_buffer_bytes

from .harness import optional_torch

CASES = [
    # name, (N, C, H, W), (K, C/g, R, S), stride, padding, groups
    ("LeNet conv1 N64 C1 H28 K6 R5", (64, 1, 28, 28), (6, 1, 5, 5), 1, 0, 1),
    ("LeNet conv2 N64 C6 H12 K16 R5", (64, 6, 12, 12), (16, 6, 5, 5), 1, 0, 1),
    ("ResNet N32 C64 H56 K64 R3 p1", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1),
    # depthwise (MobileNet): the AVX2 tap-list kernels, stride 1 and 2
    ("depthwise N32 C64 H28 R3 p1", (32, 64, 28, 28), (64, 1, 3, 3), 1, 1, 64),
    ("depthwise N32 C64 H56 R3 s2 p1", (32, 64, 56, 56), (64, 1, 3, 3), 2, 1, 64),
]


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def run(suite):
    torch = optional_torch()
    rng = np.random.default_rng(0)
    for name, xs, ws, stride, padding, groups in CASES:
        if suite.quick:  # --quick: the same layers on a batch of 4, fwd+bwd only
            name = name.replace(f"N{xs[0]} ", "N4 ")
            xs = (4,) + xs[1:]
        N, C, H, W = xs
        K, Cg, R, S = ws
        OH, OW = _out(H, R, stride, padding), _out(W, S, stride, padding)
        fwd_flops = 2.0 * N * K * OH * OW * Cg * R * S
        x_np = rng.standard_normal(xs).astype(np.float32)
        w_np = (rng.standard_normal(ws) * 0.1).astype(np.float32)
        b_np = rng.standard_normal(K).astype(np.float32)
        dy_np = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
        x, w, b = (pydl.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        dy = pydl.tensor(dy_np)

        def pydl_step():
            x.grad = w.grad = b.grad = None
            F.conv2d(x, w, b, stride, padding, 1, groups).backward(dy)

        def pydl_fwd():
            with pydl.no_grad():
                F.conv2d(x, w, b, stride, padding, 1, groups)

        torch_step = torch_fwd = None
        if torch is not None:
            tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x_np, w_np, b_np))
            tdy = torch.from_numpy(dy_np)

            def torch_step():
                tx.grad = tw.grad = tb.grad = None
                torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups).backward(tdy)

            def torch_fwd():
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups)

        col = conv2d_column_buffer_bytes(xs, ws, stride, padding, 1, groups, 4)
        suite.add(f"{name} fwd+bwd", pydl=pydl_step, peers={"torch": torch_step},
                  flops=3 * fwd_flops, scratch_bytes=col)
        if not suite.quick:
            suite.add(f"{name} fwd", pydl=pydl_fwd, peers={"torch": torch_fwd}, flops=fwd_flops)
        print(f"{'':<34} scratch: {col / 2**20:.2f} MiB (batch {N}); "
              f"whole im2col matrix would be {N * Cg * R * S * OH * OW * 4 / 2**20:.1f} MiB")
