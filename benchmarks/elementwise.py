"""Elementwise ops, reductions, and the Python overhead of one small op.

Large cases show how close pydl's NumPy-backed elementwise path is to memory bandwidth (bytes
counted: inputs read + output written); the small cases measure per-op overhead (microseconds
per call): Tensor wrapping, autograd recording and dispatch, compared with PyTorch's.
"""
import numpy as np

import pydl

from .harness import optional_torch


def run(suite):
    torch = optional_torch()
    rng = np.random.default_rng(0)

    # -- per-op overhead on tiny tensors ------------------------------------------------------------
    a_np = rng.standard_normal(8).astype(np.float32)
    a, b = pydl.from_numpy(a_np), pydl.from_numpy(a_np.copy())
    ta = tb = None
    if torch is not None:
        ta, tb = torch.from_numpy(a_np), torch.from_numpy(a_np.copy())
    suite.add("overhead: add (8 floats)", pydl=lambda: a + b,
              peers={"numpy": lambda: a_np + a_np, "torch": ta is not None and (lambda: ta + tb)})
    ag = pydl.from_numpy(a_np.copy()).requires_grad_()
    tg = torch.from_numpy(a_np.copy()).requires_grad_() if torch is not None else None
    suite.add("overhead: mul, recording grad", pydl=lambda: ag * 2.0,
              peers={"torch": tg is not None and (lambda: tg * 2.0)})

    def pydl_fwd_bwd():
        y = (ag * ag).sum()
        y.backward()

    def torch_fwd_bwd():
        y = (tg * tg).sum()
        y.backward()

    suite.add("overhead: (x*x).sum().backward()", pydl=pydl_fwd_bwd,
              peers={"torch": tg is not None and torch_fwd_bwd})

    # -- bandwidth-bound elementwise ops and reductions -------------------------------------------
    n = 1 << 22  # 4M floats = 16 MiB per array: larger than the L3 share, streams from DRAM
    x_np = rng.standard_normal(n).astype(np.float32)
    y_np = rng.standard_normal(n).astype(np.float32)
    x, y = pydl.from_numpy(x_np), pydl.from_numpy(y_np)
    tx = ty = None
    if torch is not None:
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
    cases = [
        ("add 4M", lambda: x + y, lambda: x_np + y_np, tx is not None and (lambda: tx + ty), 12),
        ("mul 4M", lambda: x * y, lambda: x_np * y_np, tx is not None and (lambda: tx * ty), 12),
        ("exp 4M", lambda: x.exp(), lambda: np.exp(x_np), tx is not None and (lambda: tx.exp()), 8),
        ("relu 4M", lambda: x.relu(), lambda: np.maximum(x_np, 0),
         tx is not None and (lambda: tx.relu()), 8),
        ("sigmoid 4M", lambda: x.sigmoid(), lambda: 1 / (1 + np.exp(-x_np)),
         tx is not None and (lambda: tx.sigmoid()), 8),
        ("sum 4M", lambda: x.sum(), lambda: x_np.sum(), tx is not None and (lambda: tx.sum()), 4),
        ("mean dim=1 (2048x2048)", lambda: x.reshape(2048, 2048).mean(1),
         lambda: x_np.reshape(2048, 2048).mean(1),
         tx is not None and (lambda: tx.reshape(2048, 2048).mean(1)), 4),
        ("max dim=1 (2048x2048)", lambda: x.reshape(2048, 2048).max(1),
         lambda: x_np.reshape(2048, 2048).max(1),
         tx is not None and (lambda: tx.reshape(2048, 2048).max(1)), 4),
    ]
    for name, fp, fn, ft, bytes_per_elem in cases:
        suite.add(name, pydl=fp, peers={"numpy": fn, "torch": ft}, nbytes=n * bytes_per_elem)
