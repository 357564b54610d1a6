"""Issue #13's reduction, softmax and copy rows on csrc/reduce/ (float32), side by side with
NumPy and PyTorch: sum(dim=1) and sum(dim=0) 4096x1024, the full sum of 4M values, mean(dim=1)
and max(dim=1) 2048x2048, mean over (0, 2, 3) of (32, 64, 32, 32), softmax and
log_softmax(dim=-1) 4096x1000, transpose + contiguous 4096x1024, var over (0, 2, 3) and
logsumexp(dim=-1). Bytes: the input read once (+ the output written once where it is as large)."""
import numpy as np

import pydl

from .harness import optional_torch


def run(suite):
    torch = optional_torch()
    rng = np.random.default_rng(0)
    t = torch is not None

    a_np = rng.standard_normal((4096, 1024)).astype(np.float32)
    a = pydl.from_numpy(a_np)
    ta = torch.from_numpy(a_np) if t else None
    suite.add("sum(dim=1) 4096x1024", pydl=lambda: a.sum(1),
              peers={"numpy": lambda: a_np.sum(1), "torch": t and (lambda: ta.sum(1))},
              nbytes=4 * a_np.size)
    suite.add("sum(dim=0) 4096x1024", pydl=lambda: a.sum(0),
              peers={"numpy": lambda: a_np.sum(0), "torch": t and (lambda: ta.sum(0))},
              nbytes=4 * a_np.size)
    f_np = rng.standard_normal(4 << 20).astype(np.float32)
    f = pydl.from_numpy(f_np)
    tf = torch.from_numpy(f_np) if t else None
    suite.add("sum (all) 4M", pydl=lambda: f.sum(),
              peers={"numpy": lambda: f_np.sum(), "torch": t and (lambda: tf.sum())},
              nbytes=4 * f_np.size)
    q_np = rng.standard_normal((2048, 2048)).astype(np.float32)
    q = pydl.from_numpy(q_np)
    tq = torch.from_numpy(q_np) if t else None
    suite.add("mean(dim=1) 2048x2048", pydl=lambda: q.mean(1),
              peers={"numpy": lambda: q_np.mean(1), "torch": t and (lambda: tq.mean(1))},
              nbytes=4 * q_np.size)
    suite.add("max(dim=1) 2048x2048 values+indices (numpy: values)", pydl=lambda: q.max(1),
              peers={"numpy": lambda: q_np.max(1),
                     "torch": t and (lambda: tq.max(1))}, nbytes=4 * q_np.size)
    m_np = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    m = pydl.from_numpy(m_np)
    tm = torch.from_numpy(m_np) if t else None
    suite.add("mean over (0,2,3) of (32,64,32,32)", pydl=lambda: m.mean((0, 2, 3)),
              peers={"numpy": lambda: m_np.mean((0, 2, 3)),
                     "torch": t and (lambda: tm.mean((0, 2, 3)))}, nbytes=4 * m_np.size)
    suite.add("var over (0,2,3) of (32,64,32,32)", pydl=lambda: m.var((0, 2, 3)),
              peers={"numpy": lambda: m_np.var((0, 2, 3), ddof=1),
                     "torch": t and (lambda: tm.var((0, 2, 3)))}, nbytes=8 * m_np.size)
    s_np = rng.standard_normal((4096, 1000)).astype(np.float32)
    s = pydl.from_numpy(s_np)
    ts = torch.from_numpy(s_np) if t else None

    def np_softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    F = pydl.nn.functional
    suite.add("softmax(dim=-1) 4096x1000", pydl=lambda: F.softmax(s, dim=-1),
              peers={"numpy": lambda: np_softmax(s_np),
                     "torch": t and (lambda: torch.softmax(ts, -1))}, nbytes=8 * s_np.size)
    suite.add("log_softmax(dim=-1) 4096x1000", pydl=lambda: F.log_softmax(s, dim=-1),
              peers={"torch": t and (lambda: torch.log_softmax(ts, -1))}, nbytes=8 * s_np.size)
    suite.add("logsumexp(dim=-1) 4096x1000", pydl=lambda: pydl.logsumexp(s, -1),
              peers={"torch": t and (lambda: torch.logsumexp(ts, -1))}, nbytes=4 * s_np.size)
    suite.add("transpose + contiguous 4096x1024", pydl=lambda: a.t().contiguous(),
              peers={"numpy": lambda: np.ascontiguousarray(a_np.T),
                     "torch": t and (lambda: ta.t().contiguous())}, nbytes=8 * a_np.size)
