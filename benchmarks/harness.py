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
``suite.add(...)`` once per case. ``python -m benchmarks [suite ...]`` runs them.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional


class SuiteUnavailable(Exception):
    """Raised by a suite's run() when this machine cannot run it (e.g. no GPU)."""


def _time_batch(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def time_side_by_side(
    contenders: Dict[str, Callable[[], object]],
    rounds: int = 7,
    min_time: float = 0.05,
    warmup: int = 2,
    settle: float = 0.0,
) -> Dict[str, float]:
    """Median seconds per call for each contender, timed in alternating rounds.

    ``settle`` seconds of sleep precede every timed batch (see the module docstring)."""
    calls: Dict[str, int] = {}
    for name, fn in contenders.items():
        for _ in range(warmup):
            fn()
        # Calibrate: how many calls make one round last about min_time.
        n = 1
        while True:
            t = _time_batch(fn, n) * n
            if t >= min_time / 4 or n >= 1 << 20:
                break
            n *= 4
        calls[name] = max(1, int(n * min_time / max(t, 1e-9)))
    samples: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            if settle > 0:
                time.sleep(settle)
            samples[name].append(_time_batch(fn, calls[name]))
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
        d.update(self.extra)
        return d


class Suite:
    """Collects the cases of one suite; ``add`` times one case immediately and prints its row."""

    def __init__(self, name: str, rounds: int = 7, min_time: float = 0.05, quick: bool = False,
                 peers: Optional[List[str]] = None, device: str = "cpu",
                 settle: Optional[float] = None):
        self.name = name
        self.rounds = 3 if quick else rounds
        self.min_time = 0.01 if quick else min_time
        # Long enough for OpenBLAS's spinning workers to go to sleep (harness docstring).
        self.settle = (0.0 if quick else 0.25) if settle is None else settle
        self.quick = quick
        self.peers = peers  # None: every peer the suite offers
        self.device = device
        self.results: List[Result] = []
        self._printed_header = False

    def add(self, name: str, pydl: Callable[[], object], peers: Dict[str, Callable[[], object]],
            flops: Optional[float] = None, nbytes: Optional[float] = None,
            x: Optional[float] = None, series: Optional[str] = None,
            rounds: Optional[int] = None, **extra) -> Result:
        """Time ``pydl`` against each peer callable (None values are skipped)."""
        contenders = {"pydl": pydl}
        for peer, fn in peers.items():
            if fn is None or (self.peers is not None and peer not in self.peers):
                continue
            contenders[peer] = fn
        times = time_side_by_side(contenders, rounds=rounds or self.rounds, min_time=self.min_time,
                                  settle=self.settle)
        result = Result(self.name, name, times, flops, nbytes, x, series, dict(extra))
        self.results.append(result)
        self._print_row(result)
        return result

    def _print_row(self, r: Result) -> None:
        if not self._printed_header:
            print(f"\n== {self.name} ==")
            print(f"{'case':<34} {'contender':<10} {'time':>11} {'rate':>14} {'speedup':>8}")
            self._printed_header = True
        for i, (peer, t) in enumerate(r.times.items()):
            rate = ""
            if r.flops:
                rate = f"{r.flops / t / 1e9:9.1f} GF/s"
            elif r.nbytes:
                rate = f"{r.nbytes / t / 1e9:9.2f} GB/s"
            sp = "" if peer == "pydl" else f"{r.speedup(peer):7.2f}x"
            label = r.name if i == 0 else ""
            print(f"{label:<34} {peer:<10} {format_time(t):>11} {rate:>14} {sp:>8}", flush=True)


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
        print("matplotlib is not installed (pip install 'pydl[bench]'); plot skipped")
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


def optional_torch():
    """PyTorch as a peer when installed (never a dependency), limited to pydl's thread count."""
    try:
        import torch
    except ImportError:
        return None
    import pydl

    torch.set_num_threads(pydl.get_num_threads())
    return torch
