"""Pooling forward and forward+backward against PyTorch CPU, side by side.

Bytes counted are the ones that must move between memory and the cores (float32 data):
    max fwd (no grad):  read x, write y
    max fwd+bwd:        read x, write y and the argmax (one byte per output: the window position
                        of the maximum, which is all backward needs), then read dy and the argmax,
                        write dx
    avg fwd:            read x, write y                  avg bwd: read dy, write dx
(PyTorch writes and reads 8-byte int64 indices instead, so it moves more than this.) Outputs
come from pydl's host cache (pydl.memory), so after the first call dx reuses mapped pages; a
fresh mapping would add the OS's zeroing of every page, which is not counted here either. The
issue's case is 2x2 max pooling on (64, 64, 56, 56) (51 MB of input). Each pydl row also gives
its rate as a percentage of the machine's memory bandwidth (harness.memory_bandwidth).
"""
import numpy as np

import pydl
import pydl.nn.functional as F

from .harness import optional_torch

SHAPE = (64, 64, 56, 56)


def run(suite):
    torch = optional_torch()
    rng = np.random.default_rng(0)
    # --quick: a quarter of the batch and two of the cases.
    shape = (SHAPE[0] // 4,) + SHAPE[1:] if suite.quick else SHAPE
    x_np = rng.standard_normal(shape).astype(np.float32)
    x = pydl.tensor(x_np, requires_grad=True)
    tx = torch.from_numpy(x_np.copy()).requires_grad_() if torch is not None else None
    n_in = x_np.size

    cases = [
        # name, pydl fn, torch fn, output elements per input element, max pooling?
        ("max_pool2d 2x2", lambda a: F.max_pool2d(a, 2),
         lambda a: torch.nn.functional.max_pool2d(a, 2), 1 / 4, True),
        ("max_pool2d 3x3 s2 p1", lambda a: F.max_pool2d(a, 3, 2, 1),
         lambda a: torch.nn.functional.max_pool2d(a, 3, 2, 1), 1 / 4, True),
        ("avg_pool2d 2x2", lambda a: F.avg_pool2d(a, 2),
         lambda a: torch.nn.functional.avg_pool2d(a, 2), 1 / 4, False),
        ("adaptive_avg_pool2d 1x1", lambda a: F.adaptive_avg_pool2d(a, 1),
         lambda a: torch.nn.functional.adaptive_avg_pool2d(a, 1), 1 / (56 * 56), False),
    ]
    if suite.quick:
        cases = [cases[0], cases[2]]
    # Each pydl row is also read against the machine's memory bandwidth, measured in this run.
    suite.use_bandwidth_reference()

    for name, fn, tfn, ratio, is_max in cases:
        n_out = int(n_in * ratio)
        argmax_bytes = n_out if is_max else 0
        fwd_bytes = 4 * n_in + 4 * n_out
        bwd_bytes = 4 * n_out + argmax_bytes + 4 * n_in
        gy_np = rng.standard_normal(fn(x.detach()).shape).astype(np.float32)
        gy = pydl.tensor(gy_np)

        def pydl_fwd(fn=fn):
            with pydl.no_grad():
                fn(x)

        def pydl_step(fn=fn):
            x.grad = None
            fn(x).backward(gy)

        torch_fwd = torch_step = None
        if torch is not None:
            tgy = torch.from_numpy(gy_np)

            def torch_fwd(tfn=tfn):
                with torch.no_grad():
                    tfn(tx)

            def torch_step(tfn=tfn, tgy=tgy):
                tx.grad = None
                tfn(tx).backward(tgy)

        suite.add(f"{name} fwd", pydl=pydl_fwd, peers={"torch": torch_fwd}, nbytes=fwd_bytes)
        suite.add(f"{name} fwd+bwd", pydl=pydl_step, peers={"torch": torch_step},
                  nbytes=fwd_bytes + argmax_bytes + bwd_bytes)
