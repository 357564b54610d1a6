"""Run benchmark suites: ``python -m benchmarks [suite ...] [--json F] [--plot F.png] [--quick]``
from a source checkout; ``pydl bench`` and ``python -m pydl.bench`` run the same suites from an
installed pydl, which carries this folder as ``pydl.benchmarks``.

Every module in this folder that defines ``run(suite)`` is a suite, named after its file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
import time

from . import harness
from .harness import Suite, SuiteUnavailable, save_json, save_plot

PACKAGE = __package__ or "benchmarks"  # "benchmarks" in a checkout, "pydl.benchmarks" installed


def available_suites() -> list:
    package = importlib.import_module(PACKAGE)
    names = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("harness",) or info.name.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def main(argv=None, prog: str = "python -m benchmarks", module: str = "") -> int:
    """Run the suites named in ``argv`` (all by default). ``module`` is what ``python -m`` runs
    to restart this command when OpenBLAS pins must leave the environment (see harness)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    removed = harness.clean_openblas_environment(module or PACKAGE, argv)
    suites = available_suites()
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("suites", nargs="*", help=f"suites to run (default: all): {', '.join(suites)}")
    parser.add_argument("--json", metavar="FILE", help="save results as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot of rate against size")
    parser.add_argument("--quick", action="store_true",
                        help="fewer cases, fewer and shorter rounds: every suite in under a "
                             "minute on 2 cores (smoke test, not for quoting)")
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

    start = time.perf_counter()
    machine = harness.measure_machine(quick=args.quick, removed_env=removed)
    print(f"pydl {pydl.__version__} | numpy {np.__version__} | {pydl.__name__} from "
          f"{pydl.__file__.rsplit('/', 2)[0]}")
    print(machine.describe(), flush=True)
    peers = args.peers.split(",") if args.peers else None
    results = []
    for name in chosen:
        module = importlib.import_module(f"{PACKAGE}.{name}")
        suite = Suite(name, rounds=args.rounds, quick=args.quick, peers=peers, device=args.device,
                      settle=args.settle, machine=machine)
        try:
            module.run(suite)
        except SuiteUnavailable as e:
            # Named explicitly: refuse clearly. Part of "all suites": say so and go on.
            if args.suites:
                print(f"{PACKAGE}/{name}: {e}", file=sys.stderr)
                return 2
            print(f"\n== {name} == skipped: {e}")
            continue
        results.extend(suite.results)
    print(f"\n{len(results)} cases in {time.perf_counter() - start:.1f} s")
    if args.json:
        meta = {"pydl": pydl.__version__, "numpy": np.__version__, "simd": pydl._C.simd_path(),
                "threads": pydl.get_num_threads(), "machine": platform.machine(),
                "limits": machine.to_dict(), "quick": args.quick, "suites": chosen}
        save_json(results, args.json, meta)
        print(f"results written to {args.json}")
    if args.plot:
        save_plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
