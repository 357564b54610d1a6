"""Layers, activations and losses: the fused cross-entropy kernel, log-softmax, GELU, dropout,
and one MLP training step's forward + backward (the per-step Python overhead that dominates
small models).

Every case is forward + backward where training needs both. The NumPy peer of cross-entropy is
the best vectorised NumPy (max-shifted log-sum-exp, closed-form gradient), written here; the
pydl "arrays" peer is pydl's own array-module path (the one CuPy arrays take), to show what the
C++ kernel buys. Bytes: logits read twice forward+backward and the gradient written once.
"""
import numpy as np

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.ops import loss as loss_ops

from .harness import optional_torch


def _numpy_cross_entropy(z, t):
    """Fused cross-entropy mean loss and its gradient in vectorised NumPy."""
    zs = z - z.max(axis=1, keepdims=True)
    e = np.exp(zs)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    loss = (np.log(s[:, 0]) - zs[rows, t]).mean()
    grad = e / s
    grad[rows, t] -= 1
    grad /= z.shape[0]
    return loss, grad


def _ce_case(suite, torch, name, shape, classes_axis_last=True):
    rng = np.random.default_rng(0)
    z_np = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    tshape = shape[:1] + shape[2:]
    t_np = rng.integers(0, c, tshape)
    z = pydl.tensor(z_np, requires_grad=True)
    t = pydl.tensor(t_np)

    def pydl_step():
        F.cross_entropy(z, t).backward()

    def pydl_arrays_step():
        loss_ops._USE_KERNEL = False
        try:
            F.cross_entropy(z, t).backward()
        finally:
            loss_ops._USE_KERNEL = True

    z_rows = np.ascontiguousarray(np.moveaxis(z_np, 1, -1).reshape(-1, c))
    t_rows = t_np.reshape(-1)
    peers = {"numpy": lambda: _numpy_cross_entropy(z_rows, t_rows),
             "pydl-arrays": pydl_arrays_step}
    if torch is not None:
        tz = torch.tensor(z_np, requires_grad=True)
        tt = torch.tensor(t_np)

        def torch_step():
            torch.nn.functional.cross_entropy(tz, tt).backward()

        peers["torch"] = torch_step
    n = z_np.size
    suite.add(name, pydl=pydl_step, peers=peers, nbytes=3 * 4 * n, x=n, series="cross_entropy")


def run(suite):
    torch = optional_torch()
    rng = np.random.default_rng(0)

    # -- fused cross-entropy, forward + backward -------------------------------------------------
    _ce_case(suite, torch, "cross_entropy fwd+bwd 32x10", (32, 10))
    _ce_case(suite, torch, "cross_entropy fwd+bwd 256x1000", (256, 1000))
    if not suite.quick:
        _ce_case(suite, torch, "cross_entropy fwd+bwd seg 4x21x64x64", (4, 21, 64, 64))

    # -- log-softmax, forward + backward ---------------------------------------------------------
    x_np = rng.standard_normal((256, 1000)).astype(np.float32)
    x = pydl.tensor(x_np, requires_grad=True)
    peers = {}
    if torch is not None:
        tx = torch.tensor(x_np, requires_grad=True)
        peers["torch"] = lambda: torch.nn.functional.log_softmax(tx, 1).sum().backward()
    suite.add("log_softmax+sum fwd+bwd 256x1000",
              pydl=lambda: F.log_softmax(x, 1).sum().backward(), peers=peers,
              nbytes=4 * 4 * x_np.size)

    # -- elementwise activations and dropout, forward ----------------------------------------------
    n = 1 << 20
    a_np = rng.standard_normal(n).astype(np.float32)
    a = pydl.tensor(a_np)
    ta = torch.tensor(a_np) if torch is not None else None
    cases = [
        ("gelu 1M", lambda: F.gelu(a), ta is not None and (lambda: torch.nn.functional.gelu(ta))),
        ("gelu tanh 1M", lambda: F.gelu(a, approximate="tanh"),
         ta is not None and (lambda: torch.nn.functional.gelu(ta, approximate="tanh"))),
        ("silu 1M", lambda: F.silu(a), ta is not None and (lambda: torch.nn.functional.silu(ta))),
        ("dropout p=0.5 1M", lambda: F.dropout(a, 0.5),
         ta is not None and (lambda: torch.nn.functional.dropout(ta, 0.5))),
    ]
    if suite.quick:  # --quick: one activation and dropout
        cases = [cases[0], cases[3]]
    for name, fp, ft in cases:
        suite.add(name, pydl=fp, peers={"torch": ft}, nbytes=8 * n)

    # -- one MLP step: forward, cross-entropy, backward, zero_grad -------------------------------
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    xb = pydl.tensor(rng.standard_normal((32, 64)), dtype=pydl.float32)
    yb = pydl.tensor(rng.integers(0, 10, 32))

    def pydl_mlp():
        model.zero_grad()
        F.cross_entropy(model(xb), yb).backward()

    peers = {}
    if torch is not None:
        tmodel = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                     torch.nn.Linear(128, 10))
        txb, tyb = torch.tensor(xb._data), torch.tensor(yb._data)

        def torch_mlp():
            tmodel.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(txb), tyb).backward()

        peers["torch"] = torch_mlp
    suite.add("MLP 64-128-10 b32 fwd+bwd", pydl=pydl_mlp, peers=peers)
