"""Fused optimizer steps, gradient clipping and EMA: pydl against PyTorch CPU (for-loop, foreach
and fused=True implementations, where each exists) and a vectorised NumPy formula.

Each case is one ``step()`` over float32 parameters split into 10 equal tensors (1M and 10M
parameters in all), with gradients in place. Bytes moved per parameter (float32): SGD 12,
SGD+momentum 20, Adagrad 20, RMSprop 20, Adam/AdamW 28 (read p, g, m, v; write p, m, v),
clip_grad_norm_ 16 (read g for the norm, then read+write g), EMA 12. Two more cases time the
fixed cost of a step: SGD with momentum and Adam over 200 tensors of 1000 parameters, where the
time is per-tensor Python and binding work (Optimizer.step's cached group plan), not memory.

The table ends with a summary: pydl's GB/s, its share of the measured memory bandwidth (the best
batch of an in-place ``a += b``-like stream moving as many bytes as the 10M Adam step, pydl's
``lerp_`` or PyTorch's ``add_``, measured before and after the cases), and the speedup against
PyTorch's fastest implementation.
"""
from __future__ import annotations

import time

import numpy as np

import pydl

from .harness import format_time, optional_torch

N_TENSORS = 10
SIZES = [1_000_000, 10_000_000]
SMALL_TENSORS, SMALL_SIZE = 200, 1000  # the per-step overhead case


def _params(total, seed, tensors=N_TENSORS):
    rng = np.random.default_rng(seed)
    n = total // tensors
    return [rng.standard_normal(n, dtype=np.float32) for _ in range(tensors)]


def _pydl_optimizer(cls, kwargs, total, tensors=N_TENSORS):
    params = [pydl.nn.Parameter(pydl.from_numpy(a)) for a in _params(total, 0, tensors)]
    for p, g in zip(params, _params(total, 1, tensors)):
        p.grad = pydl.from_numpy(g * 1e-3)
    opt = cls(params, **kwargs)
    opt.step()  # creates the state
    return opt.step


def _torch_optimizer(torch, name, kwargs, total, impl, tensors=N_TENSORS):
    cls = getattr(torch.optim, name)
    params = [torch.nn.Parameter(torch.from_numpy(a)) for a in _params(total, 0, tensors)]
    for p, g in zip(params, _params(total, 1, tensors)):
        p.grad = torch.from_numpy(g * 1e-3)
    extra = {"foreach": False} if impl == "loop" else {"foreach": True} if impl == "foreach" \
        else {"fused": True}
    try:
        opt = cls(params, **kwargs, **extra)
        opt.step()
    except (TypeError, RuntimeError):  # this optimizer has no such implementation
        return None
    return opt.step


def _numpy_adam(total, kwargs, decoupled):
    """The vectorised formula in NumPy, one parameter at a time, with in-place ufuncs."""
    ps, gs = _params(total, 0), [g * 1e-3 for g in _params(total, 1)]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]
    lr, (b1, b2), eps = kwargs.get("lr", 1e-3), (0.9, 0.999), 1e-8
    wd = kwargs.get("weight_decay", 0.0)
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        bc1, bc2 = 1 - b1 ** t, np.sqrt(1 - b2 ** t)
        for p, g, m, v, w in zip(ps, gs, ms, vs, tmp):
            if decoupled and wd:
                p *= 1 - lr * wd
            m *= b1
            m += (1 - b1) * g
            v *= b2
            np.multiply(g, g, out=w)
            w *= 1 - b2
            v += w
            np.sqrt(v, out=w)
            w /= bc2
            w += eps
            np.divide(m, w, out=w)
            w *= -lr / bc1
            p += w

    return step


def _numpy_sgd(total, momentum):
    ps, gs = _params(total, 0), [g * 1e-3 for g in _params(total, 1)]
    bufs = [g.copy() for g in gs]
    tmp = [np.empty_like(p) for p in ps]

    def step():
        for p, g, b, w in zip(ps, gs, bufs, tmp):
            if momentum:
                b *= momentum
                b += g
                np.multiply(b, -0.01, out=w)
            else:
                np.multiply(g, -0.01, out=w)
            p += w

    return step


def _numpy_adagrad(total):
    ps, gs = _params(total, 0), [g * 1e-3 for g in _params(total, 1)]
    sums = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]

    def step():
        for p, g, s, w in zip(ps, gs, sums, tmp):
            np.multiply(g, g, out=w)
            s += w
            np.sqrt(s, out=w)
            w += 1e-10
            np.divide(g, w, out=w)
            w *= -0.01
            p += w

    return step


def _numpy_rmsprop(total):
    ps, gs = _params(total, 0), [g * 1e-3 for g in _params(total, 1)]
    sqs = [np.zeros_like(p) for p in ps]
    tmp = [np.empty_like(p) for p in ps]

    def step():
        for p, g, s, w in zip(ps, gs, sqs, tmp):
            s *= 0.99
            np.multiply(g, g, out=w)
            w *= 0.01
            s += w
            np.sqrt(s, out=w)
            w += 1e-8
            np.divide(g, w, out=w)
            w *= -0.01
            p += w

    return step


OPTIMIZERS = [
    # (case, pydl class, torch name, kwargs, bytes per parameter, numpy peer)
    ("SGD", pydl.optim.SGD, "SGD", dict(lr=0.01), 12, lambda n: _numpy_sgd(n, 0.0)),
    ("SGD momentum", pydl.optim.SGD, "SGD", dict(lr=0.01, momentum=0.9), 20,
     lambda n: _numpy_sgd(n, 0.9)),
    ("Adagrad", pydl.optim.Adagrad, "Adagrad", dict(lr=0.01), 20, _numpy_adagrad),
    ("RMSprop", pydl.optim.RMSprop, "RMSprop", dict(lr=0.01), 20, _numpy_rmsprop),
    ("Adam", pydl.optim.Adam, "Adam", dict(lr=1e-3), 28,
     lambda n: _numpy_adam(n, dict(lr=1e-3), False)),
    ("AdamW", pydl.optim.AdamW, "AdamW", dict(lr=1e-3, weight_decay=1e-2), 28,
     lambda n: _numpy_adam(n, dict(lr=1e-3, weight_decay=1e-2), True)),
]


def _clip_cases(torch, total):
    grads = _params(total, 1)
    params = [pydl.nn.Parameter(pydl.from_numpy(np.zeros_like(g))) for g in grads]
    for p, g in zip(params, grads):
        p.grad = pydl.from_numpy(g)

    # After the first call the norm sits just under max_norm + 1e-6, so every call still scales
    # (by 1 - ~1e-6: the gradients neither vanish nor overflow over a benchmark's calls).
    def pydl_clip():
        pydl.nn.utils.clip_grad_norm_(params, 1.0)

    peers = {}
    if torch is not None:
        tparams = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g.copy())

        def torch_clip(foreach):
            return lambda: torch.nn.utils.clip_grad_norm_(tparams, 1.0, foreach=foreach)

        peers["torch-loop"] = torch_clip(False)
        peers["torch-foreach"] = torch_clip(True)
    return pydl_clip, peers


def _ema_cases(torch, total):
    model_params = [pydl.from_numpy(a) for a in _params(total, 0)]
    ema = pydl.optim.swa_utils.ExponentialMovingAverage(model_params, decay=0.999)
    peers = {}
    if torch is not None:
        src = [torch.from_numpy(a) for a in _params(total, 0)]
        dst = [s.clone() for s in src]
        peers["torch-foreach"] = lambda: torch._foreach_lerp_(dst, src, 0.001)
        peers["torch-loop"] = lambda: [d.lerp_(s, 0.001) for d, s in zip(dst, src)]
    nsrc = _params(total, 0)
    ndst = [s.copy() for s in nsrc]
    tmp = [np.empty_like(s) for s in nsrc]

    def numpy_ema():
        for d, s, w in zip(ndst, nsrc, tmp):
            np.subtract(s, d, out=w)
            w *= 0.001
            d += w

    peers["numpy"] = numpy_ema
    return ema.update, peers


def _bandwidth(torch, suite):
    """Peak sustained GB/s of an in-place a += b-like stream (12 bytes per element: read a and b,
    write a) moving as many bytes as the 10M Adam step (280 MB), with pydl's thread count: the
    best batch of pydl's lerp_ and of PyTorch's add_ (the best, not the median: a peak to
    compare the cases' medians against)."""
    n = 70_000_000 // 3
    a = [np.ones(n // 10, np.float32) for _ in range(10)]
    b = [np.ones(n // 10, np.float32) for _ in range(10)]
    contenders = {"pydl lerp_": lambda: pydl._C.lerp_(a, b, 0.5)}
    if torch is not None:
        ta = [torch.from_numpy(x) for x in a]
        tb = [torch.from_numpy(x) for x in b]
        contenders["torch add_"] = lambda: [x.add_(y) for x, y in zip(ta, tb)]
    best = {k: float("inf") for k in contenders}
    for _ in range(3 if suite.quick else 10):
        for k, fn in contenders.items():
            fn()
            start = time.perf_counter()
            for _ in range(3):
                fn()
            best[k] = min(best[k], (time.perf_counter() - start) / 3)
    return {k: 12 * n / t / 1e9 for k, t in best.items()}


def run(suite) -> None:
    torch = optional_torch()
    sizes = SIZES[:1] if suite.quick else SIZES
    summary = []
    bandwidth_before = _bandwidth(torch, suite)
    # --quick: SGD with momentum and Adam on 1M parameters.
    optimizers = [o for o in OPTIMIZERS if o[0] in ("SGD momentum", "Adam")] if suite.quick \
        else OPTIMIZERS
    for total in sizes:
        label = f"{total // 1_000_000}M"
        for case, cls, torch_name, kwargs, bpp, numpy_peer in optimizers:
            peers = {}
            if torch is not None:
                for impl in ("loop", "foreach", "fused"):
                    peers[f"torch-{impl}"] = _torch_optimizer(torch, torch_name, kwargs, total,
                                                              impl)
            peers["numpy"] = numpy_peer(total)
            r = suite.add(f"{case} {label}", pydl=_pydl_optimizer(cls, kwargs, total),
                          peers=peers, nbytes=bpp * total, x=total, series=case)
            summary.append(r)
        if suite.quick:
            continue
        pydl_clip, peers = _clip_cases(torch, total)
        r = suite.add(f"clip_grad_norm_ {label}", pydl=pydl_clip, peers=peers, nbytes=16 * total,
                      x=total, series="clip_grad_norm_")
        summary.append(r)
        ema_update, peers = _ema_cases(torch, total)
        r = suite.add(f"EMA update {label}", pydl=ema_update, peers=peers, nbytes=12 * total,
                      x=total, series="EMA")
        summary.append(r)

    # Per-step fixed cost: many small tensors (the step is Python and binding work per tensor,
    # not memory traffic), against PyTorch's foreach and fused steps.
    for case, cls, torch_name, kwargs in (
            ("SGD momentum", pydl.optim.SGD, "SGD", dict(lr=0.01, momentum=0.9)),
            ("Adam", pydl.optim.Adam, "Adam", dict(lr=1e-3))):
        n = SMALL_TENSORS * SMALL_SIZE
        peers = {}
        if torch is not None:
            for impl in ("foreach", "fused"):
                peers[f"torch-{impl}"] = _torch_optimizer(torch, torch_name, kwargs, n, impl,
                                                          SMALL_TENSORS)
        suite.add(f"{case} {SMALL_TENSORS} x {SMALL_SIZE}", peers=peers,
                  pydl=_pydl_optimizer(cls, kwargs, n, SMALL_TENSORS), series="step overhead")

    # Measured before and after the cases; the larger is the machine's bandwidth at its best.
    after = bandwidth_before if suite.quick else _bandwidth(torch, suite)
    rates = {k: max(v, after[k]) for k, v in bandwidth_before.items()}
    bandwidth = max(rates.values())
    print(f"\nmemory bandwidth (a += b moving 280 MB, {pydl.get_num_threads()} threads, best "
          "batch before and after the cases): "
          + ", ".join(f"{k} {v:.1f} GB/s" for k, v in rates.items()))
    print(f"\n{'case':<24} {'pydl':>10} {'GB/s':>7} {'% bw':>6} {'best torch':>14} "
          f"{'time':>10} {'speedup':>8}")
    for r in summary:
        t = r.times["pydl"]
        rate = r.nbytes / t / 1e9
        torch_times = {k: v for k, v in r.times.items() if k.startswith("torch")}
        if torch_times:
            best = min(torch_times, key=torch_times.get)
            best_col = f"{best:>14} {format_time(torch_times[best]):>10} " \
                       f"{torch_times[best] / t:7.2f}x"
        else:
            best_col = f"{'-':>14} {'-':>10} {'-':>8}"
        print(f"{r.name:<24} {format_time(t):>10} {rate:7.1f} {100 * rate / bandwidth:5.0f}% "
              f"{best_col}")
