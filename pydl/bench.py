"""pydl's kernel benchmarks from an installed pydl: ``python -m pydl.bench [suite ...] [--quick]
[--json FILE] [--plot FILE.png]``, the same as ``pydl bench``.

The suites are the source tree's top-level ``benchmarks/`` folder, which the wheel carries as
``pydl.benchmarks`` (one copy: pyproject.toml maps it into the package). In a source checkout
with an in-place build, where ``pydl/benchmarks`` does not exist, the checkout's ``benchmarks``
package is used instead.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import List, Optional


class BenchmarksNotFound(ImportError):
    pass


def suites_package() -> ModuleType:
    """``pydl.benchmarks`` (installed), else the source checkout's ``benchmarks`` package."""
    try:
        return importlib.import_module("pydl.benchmarks")
    except ImportError:
        pass
    import pydl

    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    if not os.path.isfile(os.path.join(root, "benchmarks", "harness.py")):
        raise BenchmarksNotFound(
            f"pydl bench: this pydl ({os.path.dirname(pydl.__file__)}) has no benchmarks: "
            "neither pydl/benchmarks (installed wheels carry it) nor a source checkout's "
            "benchmarks/ beside it; reinstall pydl")
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("benchmarks")


def main(argv: Optional[List[str]] = None, prog: str = "python -m pydl.bench") -> int:
    try:
        package = suites_package()
    except BenchmarksNotFound as e:
        print(e, file=sys.stderr)
        return 1
    runner = importlib.import_module(package.__name__ + ".__main__")
    return int(runner.main(argv, prog=prog, module="pydl.bench") or 0)


if __name__ == "__main__":
    sys.exit(main())
