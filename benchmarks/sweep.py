"""Sweep: pydl against its best peer over grids of shapes, one kernel family at a time, ending
with the worst case of each family (issue 14).

Families and peers (speedup = best peer time / pydl time, the best peer being the faster of
those listed, so 1.0x means "as fast as the fastest"):
  * sgemm / dgemm: ``_C.gemm`` against NumPy/OpenBLAS (``a @ b``) and ``torch.mm``; square
    8..2048, tall and wide (4096 on one side), long-k and skinny products, and the im2col
    products that conv layers of LeNet, VGG (CIFAR-sized) and ResNet make: forward
    (OH*OW x C*R*S @ C*R*S x K), and the backward ones with a transposed operand;
  * conv2d fwd+bwd (float32, dx, dw and db) against PyTorch: LeNet, VGG and ResNet layers
    (stride 2, padding, a dilated and a depthwise layer) at batch 1, 8, 32 and 64; a case whose
    fwd+bwd exceeds CONV_MAX_GFLOP is left out (listed as skipped) to keep the sweep in minutes;
  * pool: max and avg pooling 2x2/2, 3x3/2 pad 1, 3x3/1 pad 1, global and adaptive avg (1x1,
    7x7; adaptive max once pydl has it), fwd and fwd+bwd, against PyTorch;
  * batchnorm: BatchNorm2d/1d train fwd+bwd and eval fwd against PyTorch;
  * optim: SGD+momentum, Adam and AdamW steps over 1M and 10M float32 parameters (10 tensors)
    against the fastest of PyTorch's foreach and fused implementations.

Timing: every peer runs on pydl's thread count (``PYDL_NUM_THREADS``; NumPy's OpenBLAS limited
through threadpoolctl, PyTorch through set_num_threads). With one thread each contender is
timed in CPU time (``time.process_time``), which a loaded machine disturbs far less than wall
time; with more, in wall time. Run both: ``PYDL_NUM_THREADS=1 python -m benchmarks sweep`` and
``PYDL_NUM_THREADS=2 ...``. The runner (``python -m benchmarks``) removes OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE from the environment before NumPy loads and prints the OpenBLAS core type;
``--json FILE`` saves every case with its family and best-peer speedup, and the summary under
each family's worst case (``"sweep_summary"`` rows). ``--quick``: a few points per family.
``PYDL_SWEEP_PARTS=gemm,conv`` runs only those parts (gemm, conv, pool, batchnorm, optim).
"""
from __future__ import annotations

import os
import time

import numpy as np

import pydl
from pydl import _C

from .harness import Result, optional_torch

CONV_MAX_GFLOP = 12.0  # fwd+bwd FLOPs above which a conv case is skipped

# (m, k, n) of op(A) m x k @ op(B) k x n.
GEMM_SQUARE = [8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048]
GEMM_SHAPES = [
    # tall / wide / long k / skinny
    (4096, 8, 8), (4096, 64, 64), (4096, 256, 256), (8, 4096, 8), (64, 4096, 64),
    (256, 4096, 256), (8, 8, 4096), (64, 64, 4096), (256, 256, 4096), (8, 512, 512),
    (512, 512, 8), (512, 8, 512), (33, 65, 129), (100, 100, 100), (200, 300, 100),
    (1000, 1000, 1000),
    # LeNet: conv1 / conv2 im2col (per image), fc layers at batch 64
    (576, 25, 6), (64, 150, 16), (64, 400, 120), (64, 120, 84), (64, 84, 10),
    # VGG (CIFAR-sized, 3x3 pad 1): conv1 .. conv4 im2col per image
    (1024, 27, 64), (1024, 576, 64), (256, 576, 128), (64, 1152, 256), (64, 2304, 256),
    (16, 2304, 512), (16, 4608, 512),
    # ResNet: 7x7/2 stem (224 input), layer1..layer4 3x3 (56, 28, 14, 7)
    (12544, 147, 64), (3136, 576, 64), (784, 1152, 128), (196, 2304, 256), (49, 4608, 512),
    # im2col with 3 input channels at 64x64 (the gemm suite's case)
    (4096, 27, 64),
]
# Backward im2col products (trans_a, trans_b): dW = dY (K x P) @ cols (P x CRS) -> stored as
# cols^T; dcols = W^T (CRS x K) @ dY (K x P).
GEMM_BACKWARD = [
    # (m, k, n, trans_a, trans_b)
    (64, 3136, 576, False, False),  # ResNet layer1 dW: K x P @ P x CRS
    (576, 64, 3136, True, False),  # ResNet layer1 dcols: (K x CRS)^T @ K x P
    (16, 64, 150, False, False),  # LeNet conv2 dW
    (150, 16, 64, True, False),  # LeNet conv2 dcols
    (64, 120, 400, False, True),  # LeNet fc x @ W^T (W stored out x in)
    (120, 64, 400, True, False),  # LeNet fc dW = dy^T @ x
]
GEMM_QUICK = [(64, 64, 64), (128, 128, 128), (100, 100, 100), (64, 400, 120), (64, 2304, 256),
              (4096, 27, 64)]

# name, (C, H, W), (K, C/g, R, S), stride, padding, dilation, groups
CONV_LAYERS = [
    ("LeNet conv1", (1, 28, 28), (6, 1, 5, 5), 1, 0, 1, 1),
    ("LeNet conv2", (6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1),
    ("VGG conv1 C3 H32", (3, 32, 32), (64, 3, 3, 3), 1, 1, 1, 1),
    ("VGG conv2 C64 H16", (64, 16, 16), (128, 64, 3, 3), 1, 1, 1, 1),
    ("VGG conv4 C256 H4", (256, 4, 4), (512, 256, 3, 3), 1, 1, 1, 1),
    ("ResNet stem 7x7/2 H64", (3, 64, 64), (64, 3, 7, 7), 2, 3, 1, 1),
    ("ResNet 3x3 C64 H28", (64, 28, 28), (64, 64, 3, 3), 1, 1, 1, 1),
    ("ResNet 3x3/2 C128 H28", (128, 28, 28), (256, 128, 3, 3), 2, 1, 1, 1),
    ("ResNet 1x1/2 C128 H28", (128, 28, 28), (256, 128, 1, 1), 2, 0, 1, 1),
    ("ResNet 3x3 C256 H14", (256, 14, 14), (256, 256, 3, 3), 1, 1, 1, 1),
    ("dilated 3x3 d2 C32 H28", (32, 28, 28), (32, 32, 3, 3), 1, 2, 2, 1),
    ("depthwise 3x3 C64 H28", (64, 28, 28), (64, 1, 3, 3), 1, 1, 1, 64),
]
CONV_BATCHES = [1, 8, 32, 64]

POOL_SHAPE = (32, 64, 56, 56)
BN_SHAPES = [(64, 64, 28, 28), (8, 256, 14, 14), (4096, 512)]
OPTIM_SIZES = [1_000_000, 10_000_000]


def _pin_peer_threads(threads: int) -> str:
    """Limit NumPy's BLAS to ``threads`` (threadpoolctl); returns what was done, for the log."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "NumPy BLAS threads not limited (no threadpoolctl: pip install threadpoolctl)"
    threadpool_limits(limits=threads, user_api="blas")
    return f"NumPy BLAS limited to {threads} thread(s) (threadpoolctl)"


def _add(suite, family, name, pydl_fn, peers, **kw) -> Result:
    r = suite.add(name, pydl=pydl_fn, peers=peers, **kw)
    speedups = [s for s in (r.speedup(p) for p in r.times if p != "pydl") if s is not None]
    r.extra["family"] = family
    r.extra["speedup_vs_best_peer"] = min(speedups) if speedups else None
    return r


# ---- GEMM ------------------------------------------------------------------------------------

def _gemm_case(suite, torch, rng, dtype, m, k, n, trans_a=False, trans_b=False, tag=""):
    family = "sgemm" if dtype == np.float32 else "dgemm"
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    peers = {"numpy": lambda: opa @ opb}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ta, tb = (ta.t() if trans_a else ta), (tb.t() if trans_b else tb)
        peers["torch"] = lambda: torch.mm(ta, tb)
    t = ("A^T" if trans_a else "") + ("B^T" if trans_b else "")
    name = f"{family} {m}x{k}x{n}{' ' + t if t else ''}{' ' + tag if tag else ''}"
    _add(suite, family, name, lambda: _C.gemm(a, b, trans_a=trans_a, trans_b=trans_b), peers,
         flops=2.0 * m * n * k, dtype=np.dtype(dtype).name)


def _gemm(suite, torch, rng):
    if suite.quick:
        for dtype in (np.float32, np.float64):
            for m, k, n in GEMM_QUICK:
                _gemm_case(suite, torch, rng, dtype, m, k, n)
        return
    for n in GEMM_SQUARE:
        _gemm_case(suite, torch, rng, np.float32, n, n, n)
    for m, k, n in GEMM_SHAPES:
        _gemm_case(suite, torch, rng, np.float32, m, k, n)
    for m, k, n, ta, tb in GEMM_BACKWARD:
        _gemm_case(suite, torch, rng, np.float32, m, k, n, ta, tb)
    # float64: the square sizes and a share of the others (every third), same peers.
    for n in GEMM_SQUARE:
        _gemm_case(suite, torch, rng, np.float64, n, n, n)
    for m, k, n in GEMM_SHAPES[::3]:
        _gemm_case(suite, torch, rng, np.float64, m, k, n)
    for m, k, n, ta, tb in GEMM_BACKWARD[::2]:
        _gemm_case(suite, torch, rng, np.float64, m, k, n, ta, tb)


# ---- conv ------------------------------------------------------------------------------------

def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv(suite, torch, rng):
    import pydl.nn.functional as F

    layers = CONV_LAYERS
    batches = CONV_BATCHES
    if suite.quick:
        layers = [CONV_LAYERS[1], CONV_LAYERS[6], CONV_LAYERS[7]]
        batches = [8]
    skipped = []
    for name, (C, H, W), ws, stride, padding, dilation, groups in layers:
        K, Cg, R, S = ws
        OH, OW = _out(H, R, stride, padding, dilation), _out(W, S, stride, padding, dilation)
        for N in batches:
            flops = 3 * 2.0 * N * K * OH * OW * Cg * R * S
            label = f"{name} N{N}"
            if flops > CONV_MAX_GFLOP * 1e9:
                skipped.append(label)
                continue
            x_np = rng.standard_normal((N, C, H, W)).astype(np.float32)
            w_np = (rng.standard_normal(ws) * 0.1).astype(np.float32)
            b_np = rng.standard_normal(K).astype(np.float32)
            dy_np = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
            x, w, b = (pydl.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
            dy = pydl.tensor(dy_np)
            args = (stride, padding, dilation, groups)

            def step(x=x, w=w, b=b, dy=dy, args=args):
                x.grad = w.grad = b.grad = None
                F.conv2d(x, w, b, *args).backward(dy)

            tstep = None
            if torch is not None:
                tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_()
                              for a in (x_np, w_np, b_np))
                tdy = torch.from_numpy(dy_np)

                def tstep(tx=tx, tw=tw, tb=tb, tdy=tdy, args=args):
                    tx.grad = tw.grad = tb.grad = None
                    torch.nn.functional.conv2d(tx, tw, tb, *args).backward(tdy)

            _add(suite, "conv2d fwd+bwd", f"conv {label} fwd+bwd", step, {"torch": tstep},
                 flops=flops)
    if skipped:
        print(f"conv cases over {CONV_MAX_GFLOP:g} GFLOP fwd+bwd, skipped: {', '.join(skipped)}")


# ---- pooling ---------------------------------------------------------------------------------

def _pool(suite, torch, rng):
    import pydl.nn.functional as F

    shape = (8,) + POOL_SHAPE[1:] if suite.quick else POOL_SHAPE
    x_np = rng.standard_normal(shape).astype(np.float32)
    x = pydl.tensor(x_np, requires_grad=True)
    tx = torch.from_numpy(x_np.copy()).requires_grad_() if torch is not None else None
    tf = torch.nn.functional if torch is not None else None
    H = shape[2]
    cases = [  # name, pydl fn, torch fn (on the module namespace)
        ("max 2x2/2", lambda f, a: f.max_pool2d(a, 2)),
        ("avg 2x2/2", lambda f, a: f.avg_pool2d(a, 2)),
        ("max 3x3/2 p1", lambda f, a: f.max_pool2d(a, 3, 2, 1)),
        ("avg 3x3/2 p1", lambda f, a: f.avg_pool2d(a, 3, 2, 1)),
        ("max 3x3/1 p1", lambda f, a: f.max_pool2d(a, 3, 1, 1)),
        ("avg 3x3/1 p1", lambda f, a: f.avg_pool2d(a, 3, 1, 1)),
        ("avg global", lambda f, a: f.avg_pool2d(a, H)),
        ("adaptive avg 1x1", lambda f, a: f.adaptive_avg_pool2d(a, 1)),
        ("adaptive avg 7x7", lambda f, a: f.adaptive_avg_pool2d(a, 7)),
    ]
    if hasattr(F, "adaptive_max_pool2d"):  # not in pydl yet
        cases.append(("adaptive max 7x7", lambda f, a: f.adaptive_max_pool2d(a, 7)))
    if suite.quick:
        cases = [cases[0], cases[3], cases[7]]
    for name, fn in cases:
        out_size = fn(F, x.detach()).numel()
        gy_np = rng.standard_normal(fn(F, x.detach()).shape).astype(np.float32)
        gy = pydl.tensor(gy_np)

        def fwd(fn=fn):
            with pydl.no_grad():
                fn(F, x)

        def step(fn=fn, gy=gy):
            x.grad = None
            fn(F, x).backward(gy)

        tfwd = tstep = None
        if torch is not None:
            tgy = torch.from_numpy(gy_np)

            def tfwd(fn=fn):
                with torch.no_grad():
                    fn(tf, tx)

            def tstep(fn=fn, tgy=tgy):
                tx.grad = None
                fn(tf, tx).backward(tgy)

        fwd_bytes = 4 * (x_np.size + out_size)
        _add(suite, "pool", f"pool {name} fwd", fwd, {"torch": tfwd}, nbytes=fwd_bytes)
        _add(suite, "pool", f"pool {name} fwd+bwd", step, {"torch": tstep},
             nbytes=2 * fwd_bytes)


# ---- batch norm ------------------------------------------------------------------------------

def _batchnorm(suite, torch, rng):
    shapes = [(16, 64, 28, 28)] if suite.quick else BN_SHAPES
    for shape in shapes:
        cls = "BatchNorm2d" if len(shape) == 4 else "BatchNorm1d"
        x_np = rng.standard_normal(shape).astype(np.float32)
        gy_np = rng.standard_normal(shape).astype(np.float32)
        bn = getattr(pydl.nn, cls)(shape[1])
        x, gy = pydl.tensor(x_np, requires_grad=True), pydl.tensor(gy_np)
        tbn = tx = tgy = None
        if torch is not None:
            tbn = getattr(torch.nn, cls)(shape[1])
            tx = torch.from_numpy(x_np.copy()).requires_grad_()
            tgy = torch.from_numpy(gy_np)

        def step():
            x.grad = bn.weight.grad = bn.bias.grad = None
            bn(x).backward(gy)

        def fwd():
            with pydl.no_grad():
                bn(x)

        def tstep():
            tx.grad = tbn.weight.grad = tbn.bias.grad = None
            tbn(tx).backward(tgy)

        def tfwd():
            with torch.no_grad():
                tbn(tx)

        size = x_np.size
        label = f"{cls} {shape}"
        bn.train()
        if tbn is not None:
            tbn.train()
        _add(suite, "batchnorm", f"{label} train fwd+bwd", step,
             {"torch": tbn is not None and tstep}, nbytes=20 * size)
        bn.eval()
        if tbn is not None:
            tbn.eval()
        _add(suite, "batchnorm", f"{label} eval fwd", fwd, {"torch": tbn is not None and tfwd},
             nbytes=8 * size)


# ---- optimizers ------------------------------------------------------------------------------

def _optim(suite, torch, rng):
    from .optim import _pydl_optimizer, _torch_optimizer

    cases = [  # pydl class, torch name, kwargs, bytes per parameter
        (pydl.optim.SGD, "SGD", {"lr": 1e-3, "momentum": 0.9}, 20),
        (pydl.optim.Adam, "Adam", {"lr": 1e-3}, 28),
        (pydl.optim.AdamW, "AdamW", {"lr": 1e-3, "weight_decay": 1e-2}, 28),
    ]
    sizes = OPTIM_SIZES
    if suite.quick:
        cases, sizes = cases[1:2], OPTIM_SIZES[:1]
    for cls, tname, kwargs, bpp in cases:
        for total in sizes:
            peers = {}
            if torch is not None:
                for impl in ("foreach", "fused"):
                    fn = _torch_optimizer(torch, tname, kwargs, total, impl)
                    if fn is not None:
                        peers[f"torch {impl}"] = fn
            _add(suite, "optim", f"{tname} step {total // 1_000_000}M",
                 _pydl_optimizer(cls, kwargs, total), peers, nbytes=bpp * total)


# ---- summary ---------------------------------------------------------------------------------

FAMILIES = ["sgemm", "dgemm", "conv2d fwd+bwd", "pool", "batchnorm", "optim"]


def summarize(results) -> list:
    """The worst case (lowest best-peer speedup) of each family, plus its median and count."""
    rows = []
    for family in FAMILIES:
        cases = [r for r in results if r.extra.get("family") == family
                 and r.extra.get("speedup_vs_best_peer") is not None]
        if not cases:
            continue
        speedups = sorted(r.extra["speedup_vs_best_peer"] for r in cases)
        worst = min(cases, key=lambda r: r.extra["speedup_vs_best_peer"])
        rows.append({"family": family, "cases": len(cases), "worst_case": worst.name,
                     "worst_speedup": worst.extra["speedup_vs_best_peer"],
                     "median_speedup": speedups[len(speedups) // 2],
                     "below_1x": sum(s < 1.0 for s in speedups)})
    return rows


def run(suite) -> None:
    torch = optional_torch()
    threads = pydl.get_num_threads()
    pinned = _pin_peer_threads(threads)
    if threads == 1:
        suite.clock = time.process_time
    clock = "CPU time (process_time)" if threads == 1 else "wall time"
    print(f"sweep: {threads} thread(s) for pydl and every peer; {pinned}; timed in {clock}")
    rng = np.random.default_rng(0)
    parts = {"gemm": _gemm, "conv": _conv, "pool": _pool, "batchnorm": _batchnorm,
             "optim": _optim}
    only = os.environ.get("PYDL_SWEEP_PARTS")  # e.g. "gemm,conv": run only these parts
    chosen = only.split(",") if only else list(parts)
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        raise ValueError(f"PYDL_SWEEP_PARTS: unknown part(s) {unknown}; parts: {list(parts)}")
    for name in chosen:
        parts[name](suite, torch, rng)
    rows = summarize(suite.results)
    print(f"\n== sweep: worst case per family ({threads} thread(s), {clock}; speedup = best "
          f"peer time / pydl time) ==")
    print(f"{'family':<16} {'cases':>5} {'<1x':>4} {'median':>7} {'worst':>7}  worst case")
    for row in rows:
        print(f"{row['family']:<16} {row['cases']:>5} {row['below_1x']:>4} "
              f"{row['median_speedup']:>6.2f}x {row['worst_speedup']:>6.2f}x  {row['worst_case']}")
    for row in rows:  # carried into --json with the cases
        suite.results.append(Result(suite.name, f"summary {row['family']}", {}, extra={
            "sweep_summary": row, "threads": threads, "clock": clock}))
