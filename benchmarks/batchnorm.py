"""Batch normalization forward and forward+backward against PyTorch CPU, side by side.

Bytes counted are the ones that must move (float32, per-channel vectors ignored):
    train fwd: read x, write y (2 x 51 MB)      bwd: read dy and x, write dx (3 x 51 MB)
    eval fwd:  read x, write y
on the issue's (64, 64, 56, 56) tensor, and on a BatchNorm1d (N, C) = (4096, 512) batch.
Each value is counted once: the kernels keep a channel in L2 between their two loops over it,
so x (and dy) are read from memory once per pass. Outputs come from pydl's host cache
(pydl.memory): after the first call y and dx reuse mapped pages. Each pydl row also gives its
rate as a percentage of the machine's memory bandwidth (harness.memory_bandwidth).
"""
import numpy as np

import pydl
import pydl.nn as nn

from .harness import optional_torch


def run(suite):
    torch = optional_torch()
    suite.use_bandwidth_reference()
    rng = np.random.default_rng(0)
    cases = [((64, 64, 56, 56), nn.BatchNorm2d, "BatchNorm2d"),
             ((4096, 512), nn.BatchNorm1d, "BatchNorm1d")]
    if suite.quick:  # --quick: BatchNorm2d on a quarter of the batch
        cases = [((16, 64, 56, 56), nn.BatchNorm2d, "BatchNorm2d")]
    for shape, cls, tcls in cases:
        x_np = rng.standard_normal(shape).astype(np.float32)
        gy_np = rng.standard_normal(shape).astype(np.float32)
        C, size = shape[1], x_np.size
        bn = cls(C)
        x, gy = pydl.tensor(x_np, requires_grad=True), pydl.tensor(gy_np)
        tbn = tx = tgy = None
        if torch is not None:
            tbn = getattr(torch.nn, tcls)(C)
            tx = torch.from_numpy(x_np.copy()).requires_grad_()
            tgy = torch.from_numpy(gy_np)

        def pydl_fwd():
            with pydl.no_grad():
                bn(x)

        def pydl_step():
            x.grad = bn.weight.grad = bn.bias.grad = None
            bn(x).backward(gy)

        def torch_fwd():
            with torch.no_grad():
                tbn(tx)

        def torch_step():
            tx.grad = tbn.weight.grad = tbn.bias.grad = None
            tbn(tx).backward(tgy)

        label = f"{tcls} {shape}"
        bn.train()
        if tbn is not None:
            tbn.train()
        suite.add(f"{label} train fwd", pydl=pydl_fwd,
                  peers={"torch": tbn is not None and torch_fwd}, nbytes=8 * size)
        suite.add(f"{label} train fwd+bwd", pydl=pydl_step,
                  peers={"torch": tbn is not None and torch_step}, nbytes=20 * size)
        bn.eval()
        if tbn is not None:
            tbn.eval()
        suite.add(f"{label} eval fwd", pydl=pydl_fwd,
                  peers={"torch": tbn is not None and torch_fwd}, nbytes=8 * size)
