"""Side-by-side timing of pydl against its peers (NumPy, PyTorch CPU, CuPy).

Timing rules (shared machines are noisy):
  * every contender of a case runs in the same process, in alternating rounds
    (pydl, numpy, torch, pydl, numpy, torch, ...), so a slow spell hits all of them;
  * each contender is warmed up first (caches, lazy allocation, thread pools);
  * each round times a batch of calls sized to take about `min_time` seconds, and the
    reported time is the median over rounds, per call;
  * before each timed batch the process sleeps ``settle`` seconds, because peers leave busy
    threads behind: OpenBLAS's workers spin for about 0.1-0.2 s after every call and take a
    core from whatever runs next (measured: pydl's 1024^3 sgemm drops from 206 to 150 GFLOP/s
    when it follows a NumPy matmul directly, and recovers fully after 0.2 s of sleep). Each
    contender is timed on an otherwise idle machine, as it would run in a program of its own;
  * speedup = peer time / pydl time (> 1 means pydl is faster).

A suite is a module in benchmarks/ with a function ``run(suite: Suite)`` that calls
``suite.add(...)`` once per case. ``python -m benchmarks [suite ...]`` runs them from a source
checkout; the wheel carries this folder as ``pydl.benchmarks`` (``pydl bench``,
``python -m pydl.bench``). Imports between the suites are relative, so both work.

The report opens with the machine (``Machine``): CPU model, SIMD path, threads, and its limits
measured in the same run: peak FLOP/s from a short loop of independent FMAs on every thread
(``pydl._C.fma_loop``) and DRAM bandwidth from a large threaded copy (``pydl._C.parallel_copy``).
Every row gives its rate as a percentage of the limit that bounds it (FLOP/s for cases that count
FLOPs, the copy bandwidth for cases that count bytes), next to the peer ratio.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

# OpenBLAS reads these when NumPy loads it. A machine that pins an older core type (some images
# set OPENBLAS_CORETYPE=Haswell) slows NumPy's GEMM by up to 2x on AVX-512 CPUs, which would make
# NumPy look slower than it is; the benchmarks time NumPy as a user's own program would run it.
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED_ENV = "PYDL_BENCH_REMOVED_ENV"


def clean_openblas_environment(module: str, argv: List[str]) -> List[str]:
    """Remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from this process's environment before
    NumPy loads; returns the ``NAME=value`` settings removed (now or before a restart).

    When NumPy is already loaded (``pydl`` imports it, so ``pydl bench`` always finds it loaded)
    and one of them is set, the process restarts itself once as ``python -m module argv`` with
    the cleaned environment, so OpenBLAS starts without the pin."""
    removed = [f"{k}={os.environ[k]}" for k in OPENBLAS_PINS if k in os.environ]
    if not removed:
        previous = os.environ.pop(_REMOVED_ENV, "")
        return previous.split(";") if previous else []
    for k in OPENBLAS_PINS:
        os.environ.pop(k, None)
    if "numpy" not in sys.modules:
        return removed
    os.environ[_REMOVED_ENV] = ";".join(removed)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])
    raise AssertionError("unreachable")  # pragma: no cover


def openblas_core() -> str:
    """The OpenBLAS core type NumPy's BLAS runs (threadpoolctl, else OpenBLAS's own
    ``openblas_get_corename`` found in the loaded libraries), or a reason it is unknown."""
    import numpy  # noqa: F401  (loads the BLAS)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        for info in threadpool_info():
            if info.get("internal_api") == "openblas":
                return (f"{info.get('architecture')} ({os.path.basename(info['filepath'])}, "
                        f"{info.get('num_threads')} threads, threadpoolctl)")
        return "none (NumPy's BLAS is not OpenBLAS, per threadpoolctl)"
    return _openblas_core_from_maps()


def _openblas_core_from_maps() -> str:
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()
                            and line.split()[-1].startswith("/")})
    except OSError:
        return "unknown (no threadpoolctl: pip install threadpoolctl)"
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                    "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return f"{fn().decode()} ({os.path.basename(path)})"
    return "unknown (no OpenBLAS found loaded; no threadpoolctl)"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class Machine:
    """The machine a report was measured on, and its measured limits."""

    cpu: str
    simd: str
    threads: int
    peak_gflops: Dict[str, float]  # dtype name -> GFLOP/s, FMA loop on every thread
    dram_gbs: float  # GB/s (bytes read + written) of a large threaded copy
    copy_mib: int
    openblas: str = ""
    removed_env: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"machine: {self.cpu} | simd {self.simd} | {self.threads} threads | "
            f"{platform.machine()} | python {platform.python_version()}",
            f"limits:  peak {self.peak_gflops['float32']:.1f} GFLOP/s float32, "
            f"{self.peak_gflops['float64']:.1f} float64 (FMA loop, {self.threads} threads); "
            f"DRAM {self.dram_gbs:.1f} GB/s (copy of {self.copy_mib} MiB, read + write)",
        ]
        if self.openblas:
            pins = f"; removed {', '.join(self.removed_env)}" if self.removed_env else ""
            lines.append(f"openblas: core {self.openblas}{pins}")
        return "\n".join(lines)


def measure_peak_gflops(dtype: str = "float32", quick: bool = False) -> float:
    """Peak GFLOP/s of pydl's current SIMD path: the best of several calls of a loop of
    independent FMAs on every kernel thread (pydl._C.fma_loop), each about 20 ms long."""
    from pydl import _C

    iters = 1 << 14
    while True:  # calibrate to about 20 ms a call
        start = time.perf_counter()
        _C.fma_loop(iters, dtype)
        elapsed = time.perf_counter() - start
        if elapsed > 0.005 or iters >= 1 << 30:
            break
        iters *= 4
    iters = max(1, int(iters * 0.02 / max(elapsed, 1e-9)))
    best = 0.0
    for _ in range(3 if quick else 7):
        start = time.perf_counter()
        flops = _C.fma_loop(iters, dtype)
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def measure_dram_bandwidth(quick: bool = False) -> tuple:
    """(GB/s, MiB): the best of several threaded copies (pydl._C.parallel_copy) of an array
    far larger than any cache, counting the bytes read and the bytes written."""
    import numpy as np

    from pydl import _C

    mib = 128 if quick else 256
    src = np.ones(mib * 2**20, np.uint8)
    dst = np.zeros_like(src)
    best = float("inf")
    for _ in range(3 if quick else 6):
        start = time.perf_counter()
        _C.parallel_copy(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9, mib


_machine: Optional[Machine] = None


def measure_machine(quick: bool = False, removed_env: Optional[List[str]] = None) -> Machine:
    """Measure the machine once per process (see Machine)."""
    global _machine
    if _machine is None:
        import pydl
        from pydl import _C

        dram, mib = measure_dram_bandwidth(quick)
        _machine = Machine(
            cpu=cpu_model(), simd=_C.simd_path(), threads=pydl.get_num_threads(),
            peak_gflops={dt: measure_peak_gflops(dt, quick) for dt in ("float32", "float64")},
            dram_gbs=dram, copy_mib=mib, openblas=openblas_core(),
            removed_env=list(removed_env or []))
    return _machine


class SuiteUnavailable(Exception):
    """Raised by a suite's run() when this machine cannot run it (e.g. no GPU)."""


def _time_batch(fn: Callable[[], object], calls: int,
                clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def time_side_by_side(
    contenders: Dict[str, Callable[[], object]],
    rounds: int = 7,
    min_time: float = 0.05,
    warmup: int = 2,
    settle: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> Dict[str, float]:
    """Median seconds per call for each contender, timed in alternating rounds.

    ``settle`` seconds of sleep precede every timed batch (see the module docstring).
    ``clock``: wall time by default; ``time.process_time`` (CPU time of the whole process) is
    steadier on a loaded machine, but only fair when every contender runs one thread."""
    calls: Dict[str, int] = {}
    for name, fn in contenders.items():
        for _ in range(warmup):
            fn()
        # Calibrate: how many calls make one round last about min_time.
        n = 1
        while True:
            t = _time_batch(fn, n, clock) * n
            if t >= min_time / 4 or n >= 1 << 20:
                break
            n *= 4
        calls[name] = max(1, int(n * min_time / max(t, 1e-9)))
    samples: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            if settle > 0:
                time.sleep(settle)
            samples[name].append(_time_batch(fn, calls[name], clock))
    return {name: statistics.median(s) for name, s in samples.items()}


@dataclass
class Result:
    suite: str
    name: str
    times: Dict[str, float]  # seconds per call, "pydl" first
    flops: Optional[float] = None
    nbytes: Optional[float] = None
    x: Optional[float] = None  # position on the plot's x axis (e.g. matrix size)
    series: Optional[str] = None  # plot line this case belongs to
    extra: Dict[str, object] = field(default_factory=dict)
    limit: Optional[float] = None  # the machine's limit for this case: FLOP/s or bytes/s
    limit_kind: str = ""  # "peak float32", "peak float64", "DRAM" or a suite's own reference

    def percent_of_limit(self, contender: str = "pydl") -> Optional[float]:
        work = self.flops or self.nbytes
        if not work or not self.limit or contender not in self.times:
            return None
        return 100.0 * work / self.times[contender] / self.limit

    def speedup(self, peer: str) -> Optional[float]:
        if peer not in self.times or "pydl" not in self.times:
            return None
        return self.times[peer] / self.times["pydl"]

    def to_dict(self) -> dict:
        d = {
            "suite": self.suite,
            "name": self.name,
            "times_s": self.times,
            "speedups": {p: self.speedup(p) for p in self.times if p != "pydl"},
        }
        if self.flops:
            d["gflops"] = {p: self.flops / t / 1e9 for p, t in self.times.items()}
        if self.nbytes:
            d["gbytes_per_s"] = {p: self.nbytes / t / 1e9 for p, t in self.times.items()}
        if self.x is not None:
            d["x"] = self.x
        if self.series is not None:
            d["series"] = self.series
        if self.limit:
            d["limit"] = {"kind": self.limit_kind, "value": self.limit,
                          "percent": {p: self.percent_of_limit(p) for p in self.times}}
        d.update(self.extra)
        return d


class Suite:
    """Collects the cases of one suite; ``add`` times one case immediately and prints its row."""

    def __init__(self, name: str, rounds: int = 7, min_time: float = 0.05, quick: bool = False,
                 peers: Optional[List[str]] = None, device: str = "cpu",
                 settle: Optional[float] = None, machine: Optional[Machine] = None):
        self.name = name
        self.rounds = 3 if quick else rounds
        self.min_time = 0.005 if quick else min_time
        self.machine = machine  # limits for the "% limit" column (None: no column values)
        # Long enough for OpenBLAS's spinning workers to go to sleep (harness docstring).
        self.settle = (0.0 if quick else 0.25) if settle is None else settle
        self.quick = quick
        self.peers = peers  # None: every peer the suite offers
        self.device = device
        self.results: List[Result] = []
        self._printed_header = False
        self.bandwidth: Optional[float] = None  # GB/s reference, see use_bandwidth_reference
        self.clock: Callable[[], float] = time.perf_counter  # see time_side_by_side

    def use_bandwidth_reference(self) -> float:
        """Also measure pydl's own streaming rate (memory_bandwidth: an in-place lerp_) and
        print each case's pydl rate as a percentage of it, next to the % of the machine's DRAM
        copy bandwidth that every byte-counting row gets."""
        self.bandwidth = memory_bandwidth(quick=self.quick)
        print(f"memory bandwidth reference: {self.bandwidth:.1f} GB/s (pydl lerp_ a += w*(b-a) "
              f"over two {_BANDWIDTH_MB} MiB float32 arrays: read a and b, write a; best call)")
        return self.bandwidth

    def _limit(self, flops, nbytes, dtype, extra) -> tuple:
        peak_bytes = extra.get("peak_bytes_per_s")
        if nbytes and peak_bytes:
            return float(peak_bytes), "device bandwidth"
        if self.machine is None or self.device != "cpu":
            return None, ""
        if flops:
            key = "float64" if dtype in ("float64", "double") else "float32"
            return self.machine.peak_gflops[key] * 1e9, f"peak {key}"
        if nbytes:
            return self.machine.dram_gbs * 1e9, "DRAM"
        return None, ""

    def add(self, name: str, pydl: Callable[[], object], peers: Dict[str, Callable[[], object]],
            flops: Optional[float] = None, nbytes: Optional[float] = None,
            x: Optional[float] = None, series: Optional[str] = None,
            rounds: Optional[int] = None, dtype: str = "float32", **extra) -> Result:
        """Time ``pydl`` against each peer callable (None or False values are skipped: suites
        write ``torch is not None and fn``). ``dtype`` names
        the precision whose peak bounds a FLOP-counting case."""
        contenders = {"pydl": pydl}
        for peer, fn in peers.items():
            if not callable(fn) or (self.peers is not None and peer not in self.peers):
                continue
            contenders[peer] = fn
        times = time_side_by_side(contenders, rounds=rounds or self.rounds, min_time=self.min_time,
                                  settle=self.settle, clock=self.clock)
        if nbytes and self.bandwidth:
            extra = {**extra, "percent_of_bandwidth": 100 * nbytes / times["pydl"] / 1e9
                     / self.bandwidth, "bandwidth_reference_gbs": self.bandwidth}
        limit, kind = self._limit(flops, nbytes, dtype, extra)
        result = Result(self.name, name, times, flops, nbytes, x, series, dict(extra), limit, kind)
        self.results.append(result)
        self._print_row(result)
        return result

    def _print_row(self, r: Result) -> None:
        if not self._printed_header:
            print(f"\n== {self.name} ==")
            print(f"{'case':<34} {'contender':<13} {'time':>11} {'rate':>14} {'speedup':>8} "
                  f"{'% limit':>12}")
            self._printed_header = True
        for i, (peer, t) in enumerate(r.times.items()):
            rate = ""
            if r.flops:
                rate = f"{r.flops / t / 1e9:9.1f} GF/s"
            elif r.nbytes:
                rate = f"{r.nbytes / t / 1e9:9.2f} GB/s"
            sp = "" if peer == "pydl" else f"{r.speedup(peer):7.2f}x"
            if peer == "pydl" and "percent_of_bandwidth" in r.extra:
                sp = f"{r.extra['percent_of_bandwidth']:5.0f}% bw"
            pct = r.percent_of_limit(peer)
            limit = f"{pct:5.1f}% {'DRAM' if r.limit_kind == 'DRAM' else 'peak'}" \
                if pct is not None else ""
            label = r.name if i == 0 else ""
            print(f"{label:<34} {peer:<13} {format_time(t):>11} {rate:>14} {sp:>8} {limit:>12}",
                  flush=True)


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def save_json(results: List[Result], path: str, meta: dict) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": [r.to_dict() for r in results]}, f, indent=1)


def save_plot(results: List[Result], path: str) -> bool:
    """One panel per suite: rate (GFLOP/s or GB/s) against x for each series and contender."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[bench]'); plot skipped")
        return False
    plotted = [r for r in results if r.x is not None and (r.flops or r.nbytes)]
    if not plotted:
        print("no case in these suites has a plot axis; plot skipped")
        return False
    suites = sorted({r.suite for r in plotted})
    fig, axes = plt.subplots(1, len(suites), figsize=(6 * len(suites), 4.5), squeeze=False)
    for ax, suite in zip(axes[0], suites):
        rows = [r for r in plotted if r.suite == suite]
        unit = "GFLOP/s" if rows[0].flops else "GB/s"
        lines: Dict[tuple, List[tuple]] = {}
        for r in rows:
            work = r.flops or r.nbytes
            for peer, t in r.times.items():
                lines.setdefault((r.series or suite, peer), []).append((r.x, work / t / 1e9))
        for (series, peer), pts in sorted(lines.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    label=f"{peer} ({series})", linestyle="-" if peer == "pydl" else "--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("size")
        ax.set_ylabel(unit)
        ax.set_title(suite)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")
    return True


_BANDWIDTH_MB = 256
_bandwidth_cache: Dict[bool, float] = {}


def memory_bandwidth(quick: bool = False) -> float:
    """Sustained main-memory bandwidth in GB/s, as pydl's kernels see it: pydl._C.lerp_ (an
    in-place a += w * (b - a), 12 bytes per element) over two 256 MiB float32 arrays, with
    pydl's thread count, best of several calls. The 512 MiB working set is well past the
    caches, so this is DRAM. On the development VM it swings between about 25 and 50 GB/s
    with the host's other tenants (sets of 64 MiB and less run partly from cache, faster), so a
    suite measures it in the same run as its cases rather than quoting a fixed figure."""
    if quick not in _bandwidth_cache:
        import numpy as np
        import pydl

        n = _BANDWIDTH_MB * 2**20 // 4
        a = np.ones(n, np.float32)
        b = np.ones(n, np.float32)
        best = float("inf")
        for _ in range(3 if quick else 8):
            start = time.perf_counter()
            pydl._C.lerp_([a], [b], 0.5)
            best = min(best, time.perf_counter() - start)
        _bandwidth_cache[quick] = 12 * n / best / 1e9
    return _bandwidth_cache[quick]


def optional_torch():
    """PyTorch as a peer when installed (never a dependency), limited to pydl's thread count."""
    try:
        import torch
    except ImportError:
        return None
    import pydl

    torch.set_num_threads(pydl.get_num_threads())
    return torch
