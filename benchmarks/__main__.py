"""Run benchmark suites: ``python -m benchmarks [suite ...] [--json F] [--plot F.png] [--quick]``.

Every module in this folder that defines ``run(suite)`` is a suite, named after its file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys

import benchmarks
from benchmarks.harness import Suite, SuiteUnavailable, save_json, save_plot


def available_suites() -> list:
    names = []
    for info in pkgutil.iter_modules(benchmarks.__path__):
        if info.name in ("harness",) or info.name.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def main(argv=None) -> int:
    suites = available_suites()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"suites to run (default: all): {', '.join(suites)}")
    parser.add_argument("--json", metavar="FILE", help="save results as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot of rate against size")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (smoke test)")
    parser.add_argument("--peers", help="comma-separated peers to include (default: all available)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contender")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (suites that support it)")
    parser.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                        help="idle time before each timed batch, so a peer's spinning threads do "
                             "not steal cores from the next contender (default 0.25, 0 with --quick)")
    args = parser.parse_args(argv)

    chosen = args.suites or suites
    unknown = [s for s in chosen if s not in suites]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; available: {suites}")

    import numpy as np

    import pydl

    print(f"pydl {pydl.__version__} | simd {pydl._C.simd_path()} | threads {pydl.get_num_threads()}"
          f" | numpy {np.__version__} | python {platform.python_version()} | {platform.machine()}")
    peers = args.peers.split(",") if args.peers else None
    results = []
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        suite = Suite(name, rounds=args.rounds, quick=args.quick, peers=peers, device=args.device,
                      settle=args.settle)
        try:
            module.run(suite)
        except SuiteUnavailable as e:
            # Named explicitly: refuse clearly. Part of "all suites": say so and go on.
            if args.suites:
                print(f"benchmarks/{name}: {e}", file=sys.stderr)
                return 2
            print(f"\n== {name} == skipped: {e}")
            continue
        results.extend(suite.results)
    if args.json:
        meta = {"pydl": pydl.__version__, "numpy": np.__version__, "simd": pydl._C.simd_path(),
                "threads": pydl.get_num_threads(), "machine": platform.machine()}
        save_json(results, args.json, meta)
        print(f"results written to {args.json}")
    if args.plot:
        save_plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
