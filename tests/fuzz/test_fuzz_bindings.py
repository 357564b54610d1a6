"""Fuzz: every remaining pydl._C binding with hostile arguments (wrong dtypes, ranks, empty and
zero-stride arrays, negative strides, read-only outputs, object arrays, int64 extremes, NaN).
A binding may accept an argument or raise a Python exception; it must never crash the
interpreter, so each batch runs in a fresh interpreter and its exit status is checked."""
import os
import subprocess
import sys
import textwrap

import pytest

import pydl

FAMILIES = ["elementwise", "reduce", "core"]

PROGRAM = r'''
import itertools, math, sys
import numpy as np
from pydl import _C

CLEAN = (ValueError, TypeError, RuntimeError, IndexError, MemoryError, OverflowError,
         KeyError, AttributeError)
rng = np.random.default_rng(int(sys.argv[2]))


def arrays():
    f = rng.standard_normal((3, 5)).astype(np.float32)
    ro = f.copy(); ro.flags.writeable = False
    yield from [f, f.astype(np.float64), f.astype(np.float16), f.astype(np.int64),
                f.astype(np.complex64), np.array([None, 1], object), np.zeros((0, 5), np.float32),
                f[:, ::-1], f[::2, ::2], np.broadcast_to(f[:1], (3, 5)), f.T, ro,
                np.float32(2.0), 3, 2.5, None, "x", np.zeros((1,) * 33, np.float32)
                if np.__version__ >= "2" else f,
                np.ones((4097,), np.float32)[::-1], np.ones((70000,), np.float64)]


SCALARS = [0, -1, 2 ** 62, 2 ** 63 - 1, -(2 ** 63), math.nan, math.inf, -0.0, 1e308]


def attempt(fn, *args):
    try:
        fn(*args)
    except CLEAN:
        pass


family = sys.argv[1]
arrs = list(arrays())
if family == "elementwise":
    ew = _C.elementwise
    for name in sorted(n for n in dir(ew) if not n.startswith("_")):
        fn = getattr(ew, name)
        for a in arrs:
            attempt(fn, a)
            for b in arrs[::3]:
                attempt(fn, a, b)
            for s in SCALARS[::2]:
                attempt(fn, a, s)
                attempt(fn, a, a, s)
                attempt(fn, a, s, s)
                attempt(fn, a, a, s, s)
        attempt(fn, arrs[0], arrs[0], arrs[0])
elif family == "reduce":
    for a in arrs:
        for axes in ([], [0], [1], [-1], [0, 1], [2], [0, 0], [2 ** 62], [-(2 ** 63)]):
            for op in (0, 1, 2, 3, 7, -1, 2 ** 40):
                attempt(_C.reduce_sum, a, axes, op)
                attempt(_C.reduce_sum, a, axes, op, a)
                attempt(_C.reduce_ext, a, axes, op, True)
        attempt(_C.softmax_rows, a, True)
        attempt(_C.softmax_rows, a, False)
        attempt(_C.copy_strided, a)
        for b in arrs[::2]:
            attempt(_C.parallel_copy, a, b)
        attempt(_C.gelu_forward, a)
        attempt(_C.gelu_backward, a, a)
        attempt(_C.tensor_norms, [a, a], 2.0)
        attempt(_C.tensor_norms, [a], math.nan)
        attempt(_C.lerp_, [a], [a], 0.5)
        attempt(_C.scale_, [a], math.nan)
        attempt(_C.clamp_, [a], math.nan, -math.nan)
else:
    for shape in ([], [0], [-1], [2 ** 62, 4], [2 ** 31, 2 ** 31, 4], [3, -2], [2 ** 63 - 1]):
        for dtype in ("float32", "float64", "int8", "bogus"):
            attempt(_C.host_empty, shape, dtype)
    for n in (0, -1, 2 ** 62, -(2 ** 63)):
        attempt(_C.set_num_threads, n)
        attempt(_C.fma_loop, n, "float32")
        attempt(_C.host_cache_set_limit, n)
    _C.set_num_threads(2)
    _C.host_cache_set_limit(1 << 30)
    for p in ("", "avx9", "scalar\0"):
        attempt(_C.set_simd_path, p)
    _C.set_simd_path("auto")
    for a in arrs:
        attempt(_C.owns_host_block, a)
print("survived", family)
'''


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0])
def test_bindings_survive_hostile_arguments(family, seed, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    script = tmp_path / "hostile.py"
    script.write_text(textwrap.dedent(PROGRAM))
    r = subprocess.run([sys.executable, str(script), family, str(seed)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and f"survived {family}" in r.stdout, \
        f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
