"""CUDA kernels against CuPy (cuBLAS via cupy.matmul) and PyTorch CUDA when installed:
``python -m benchmarks cuda``. Needs a GPU: refuses with the reason otherwise.

Rates are reported against the GPU's peaks (fp32 FLOP/s and memory bandwidth from CuPy's device
attributes). Targets on an H100: SGEMM >= 80% of cuBLAS fp32 at 4096^3; pooling, batch norm and
optimizer steps >= 70% of HBM bandwidth.
"""
from __future__ import annotations

import numpy as np


def _peaks(cp):
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    # Memory bandwidth: 2 (DDR) * clock (kHz) * bus width (bits) / 8.
    bw = 2 * props["memoryClockRate"] * 1e3 * props["memoryBusWidth"] / 8
    return props["name"].decode() if isinstance(props["name"], bytes) else props["name"], bw


def run(suite) -> None:
    from pydl import cuda

    if not cuda.is_available():
        from .harness import SuiteUnavailable

        raise SuiteUnavailable(f"needs a CUDA GPU ({cuda.unavailable_reason()})")
    import cupy as cp

    from .harness import optional_torch

    k = cuda.kernels()
    torch = optional_torch()
    if torch is not None and not torch.cuda.is_available():
        torch = None
    name, bandwidth = _peaks(cp)
    print(f"GPU: {name}, memory bandwidth {bandwidth / 1e9:.0f} GB/s")

    def sync(fn):
        def timed():
            fn()
            cp.cuda.get_current_stream().synchronize()
        return timed

    def tsync(fn):
        def timed():
            fn()
            torch.cuda.synchronize()
        return timed

    rng = np.random.default_rng(0)
    for n in (1024, 2048, 4096):
        a = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        peers = {"cupy": sync(lambda: cp.matmul(a, b))}
        if torch is not None:
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
            torch.backends.cuda.matmul.allow_tf32 = False
            peers["torch"] = tsync(lambda: ta @ tb)
        suite.add(f"sgemm {n}^3", pydl=sync(lambda: k.matmul(a, b)), peers=peers,
                  flops=2.0 * n ** 3, x=n, series="sgemm")

    x = cp.asarray(rng.standard_normal((32, 64, 56, 56), dtype=np.float32))
    w = cp.asarray(rng.standard_normal((64, 64, 3, 3), dtype=np.float32))
    flops = 2.0 * 32 * 64 * 56 * 56 * 64 * 9
    peers = {}
    if torch is not None:
        tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")
        peers["torch"] = tsync(lambda: torch.nn.functional.conv2d(tx, tw, padding=1))
    suite.add("conv2d fwd 32x64x56x56 k3", pydl=sync(lambda: k.conv2d_forward(
        x, w, None, (1, 1), (1, 1), (1, 1), 1)), peers=peers, flops=flops)

    big = cp.asarray(rng.standard_normal((64, 64, 112, 112), dtype=np.float32))
    nbytes = big.nbytes * 1.25  # read x, write y (a quarter of x)
    peers = {}
    if torch is not None:
        tbig = torch.as_tensor(big, device="cuda")
        peers["torch"] = tsync(lambda: torch.nn.functional.max_pool2d(tbig, 2, 2))
    suite.add("max_pool2d 2x2 64x64x112x112", pydl=sync(lambda: k.max_pool2d_forward(
        big, (2, 2), (2, 2))), peers=peers, nbytes=nbytes, peak_bytes_per_s=bandwidth)
    peers = {}
    if torch is not None:
        peers["torch"] = tsync(lambda: torch.nn.functional.batch_norm(
            tbig, None, None, training=True))
    suite.add("batch_norm train 64x64x112x112", pydl=sync(lambda: k.batch_norm_forward_train(
        big, None, None, None, None, 0.1, 1e-5)), peers=peers, nbytes=big.nbytes * 3,
        peak_bytes_per_s=bandwidth)

    sizes = [1 << 20] * 16 + [1000, 4099]
    lists = [[cp.zeros(n, dtype=cp.float32) for n in sizes] for _ in range(4)]
    table = k.tensor_table(list(zip(*lists)))
    nbytes = sum(sizes) * 4 * 7  # read p, g, m, v; write p, m, v
    suite.add("adam step 16.8M params", pydl=sync(lambda: k.adam_step(
        table, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)), peers={}, nbytes=nbytes,
        peak_bytes_per_s=bandwidth)
