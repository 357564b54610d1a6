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

    _issue13_rows(suite, torch, rng)


def _issue13_rows(suite, torch, rng):
    """The elementwise rows of issue #13's table (float32, 4096x1024 = 16 MiB per array, and the
    conv-shaped channel broadcast), forward and forward+backward, on pydl's native elementwise
    engine (csrc/elementwise/) against NumPy and PyTorch. Bytes: arrays read + written once."""
    import math

    shape = (4096, 1024)
    n = shape[0] * shape[1]
    a_np = rng.standard_normal(shape).astype(np.float32)
    b_np = rng.standard_normal(shape).astype(np.float32)
    a, b = pydl.from_numpy(a_np), pydl.from_numpy(b_np)
    ta = tb = None
    if torch is not None:
        ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
    t = ta is not None

    def np_sigmoid(x):
        return 1 / (1 + np.exp(-x))

    c = math.sqrt(2 / math.pi)

    def np_gelu_tanh(x):
        return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x * x * x)))

    suite.add("add 4096x1024", pydl=lambda: a + b, peers={"numpy": lambda: a_np + b_np,
              "torch": t and (lambda: ta + tb)}, nbytes=12 * n)
    m_np = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    s_np = rng.standard_normal((1, 64, 1, 1)).astype(np.float32)
    m, s = pydl.from_numpy(m_np), pydl.from_numpy(s_np)
    tm = torch.from_numpy(m_np) if t else None
    tsc = torch.from_numpy(s_np) if t else None
    suite.add("mul broadcast (32,64,32,32)*(1,64,1,1)", pydl=lambda: m * s,
              peers={"numpy": lambda: m_np * s_np, "torch": t and (lambda: tm * tsc)},
              nbytes=8 * m_np.size)
    suite.add("mul by scalar 4096x1024", pydl=lambda: a * 2.0,
              peers={"numpy": lambda: a_np * np.float32(2.0), "torch": t and (lambda: ta * 2.0)},
              nbytes=8 * n)
    unary = [
        ("sigmoid", lambda: a.sigmoid(), lambda: np_sigmoid(a_np), t and (lambda: ta.sigmoid())),
        ("tanh", lambda: a.tanh(), lambda: np.tanh(a_np), t and (lambda: ta.tanh())),
        ("exp", lambda: a.exp(), lambda: np.exp(a_np), t and (lambda: ta.exp())),
        ("gelu", lambda: pydl.nn.functional.gelu(a), None,
         t and (lambda: torch.nn.functional.gelu(ta))),
        ("gelu tanh", lambda: pydl.nn.functional.gelu(a, approximate="tanh"),
         lambda: np_gelu_tanh(a_np),
         t and (lambda: torch.nn.functional.gelu(ta, approximate="tanh"))),
        ("silu", lambda: pydl.nn.functional.silu(a), lambda: a_np * np_sigmoid(a_np),
         t and (lambda: torch.nn.functional.silu(ta))),
        ("relu", lambda: a.relu(), lambda: np.maximum(a_np, 0), t and (lambda: ta.relu())),
    ]
    for name, fp, fn, ft in unary:
        suite.add(f"{name} 4096x1024", pydl=fp, peers={"numpy": fn, "torch": ft}, nbytes=8 * n)

    # forward + backward: y = f(x); y.backward(g). Bytes: x read, y written (forward); g and
    # the saved operand read, x.grad written (backward) = 20 bytes per element.
    g_np = rng.standard_normal(shape).astype(np.float32)
    g = pydl.from_numpy(g_np)
    xg = pydl.from_numpy(a_np.copy()).requires_grad_()
    txg = torch.from_numpy(a_np.copy()).requires_grad_() if t else None
    tg = torch.from_numpy(g_np) if t else None
    F = pydl.nn.functional
    fwd_bwd = [
        ("sigmoid", lambda x: x.sigmoid(), lambda x: x.sigmoid()),
        ("tanh", lambda x: x.tanh(), lambda x: x.tanh()),
        ("relu", lambda x: x.relu(), lambda x: x.relu()),
        ("gelu", lambda x: F.gelu(x), lambda x: torch.nn.functional.gelu(x)),
        ("silu", lambda x: F.silu(x), lambda x: torch.nn.functional.silu(x)),
    ]
    for name, fp, ft in fwd_bwd:
        def run_pydl(fp=fp):
            xg.grad = None
            fp(xg).backward(g)

        def run_torch(ft=ft):
            txg.grad = None
            ft(txg).backward(tg)

        suite.add(f"{name} fwd+bwd 4096x1024", pydl=run_pydl,
                  peers={"torch": t and run_torch}, nbytes=20 * n)
