"""Run-time SIMD path selection (csrc/cpu_features.cpp)."""
import os
import subprocess
import sys

import pytest

import pydl
from pydl import _C


def test_available_paths_are_ordered_and_end_with_portable():
    paths = _C.available_simd_paths()
    assert paths[-1] == "portable"
    order = ["avx512", "avx2+fma", "portable"]
    assert paths == [p for p in order if p in paths]
    assert ("avx2+fma" in paths) == _C.cpu_supports_avx2_fma()
    assert ("avx512" in paths) == _C.cpu_supports_avx512()


def test_every_available_path_can_be_selected_and_auto_restores_the_best():
    best = _C.available_simd_paths()[0]
    try:
        for path in _C.available_simd_paths():
            _C.set_simd_path(path)
            assert _C.simd_path() == path
        if "avx2+fma" in _C.available_simd_paths():
            _C.set_simd_path("avx2")  # alias
            assert _C.simd_path() == "avx2+fma"
    finally:
        _C.set_simd_path("auto")
    assert _C.simd_path() == best


def test_unknown_or_unavailable_path_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 'auto', 'avx512', 'avx2\\+fma' or 'portable'"):
        _C.set_simd_path("sse9")
    for path in ("avx512", "avx2+fma"):
        if path not in _C.available_simd_paths():
            with pytest.raises(ValueError, match="has no"):
                _C.set_simd_path(path)
    assert _C.simd_path() == _C.available_simd_paths()[0]


@pytest.mark.parametrize("env", ["portable", "avx2", "avx512", "nonsense"])
def test_environment_variable_selects_the_path_at_import(env, tmp_path):
    # Import the pydl under test (installed wheel or in-place build), from outside the checkout so
    # the source tree in the working directory cannot shadow it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    environ = {**os.environ, "PYDL_SIMD": env,
               "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "from pydl import _C; print(_C.simd_path())"
    out = subprocess.run([sys.executable, "-c", code], env=environ, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.strip()
    available = _C.available_simd_paths()
    wanted = {"portable": "portable", "avx2": "avx2+fma", "avx512": "avx512"}.get(env)
    # An unknown or unavailable request falls back to the best path instead of failing at import.
    assert out == (wanted if wanted in available else available[0])


def _proc_cpuinfo_flags():
    """The first CPU's flags as the kernel reports them (Linux only), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_cpuid_agrees_with_proc_cpuinfo():
    # pydl reads CPUID and XGETBV itself (csrc/cpu_features.cpp); Linux lists a flag only when
    # the CPU has it and the kernel enabled its register state, so the two must agree.
    flags = _proc_cpuinfo_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags on this system")
    feats = _C.cpu_features()
    assert feats["x86"] == ("avx" in flags or "sse2" in flags)
    for name in ("avx", "fma", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl"):
        assert feats[name] == (name in flags), name
    if "avx" in flags:
        assert feats["osxsave"] and feats["os_ymm"] and feats["xcr0"] & 0x6 == 0x6
    if "avx512f" in flags:
        assert feats["os_zmm"] and feats["xcr0"] & 0xE0 == 0xE0


def test_cpu_with_avx2_and_fma_never_gets_the_portable_path_unless_asked(tmp_path):
    flags = _proc_cpuinfo_flags()
    if flags is None or not {"avx2", "fma"} <= flags:
        pytest.skip("this CPU lacks AVX2+FMA (per /proc/cpuinfo)")
    feats = _C.cpu_features()
    assert feats["avx2_kernels_built"], "an x86-64 build must compile the AVX2 kernels"
    assert _C.cpu_supports_avx2_fma()
    assert "avx2+fma" in _C.available_simd_paths()
    best = "avx512" if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags \
        and feats["avx512_kernels_built"] else "avx2+fma"
    assert _C.available_simd_paths()[0] == best
    # A fresh interpreter with no PYDL_SIMD picks the best path at import.
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    environ = {k: v for k, v in os.environ.items() if k != "PYDL_SIMD"}
    environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
    code = "from pydl import _C; print(_C.simd_path())"
    out = subprocess.run([sys.executable, "-c", code], env=environ, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == best


def test_fma_loop_and_parallel_copy():
    import numpy as np

    for dtype, lanes in (("float32", 1), ("float64", 1)):
        flops = _C.fma_loop(1000, dtype)
        assert flops > 0 and flops % (2 * 1000 * lanes) == 0
    assert _C.fma_loop(0) == 0
    # The loop must really run: the implied rate stays below what any core can do (a clang build
    # once deleted the loop and claimed 10^13 GFLOP/s). 320 GFLOP/s is 2 AVX-512 FMA units at
    # 5 GHz in float32.
    import time

    start = time.perf_counter()
    flops = _C.fma_loop(2_000_000, "float32")
    rate = flops / (time.perf_counter() - start)
    assert rate / _C.num_threads() < 320e9, f"fma_loop claims {rate / 1e9:.0f} GFLOP/s"
    with pytest.raises(ValueError, match="dtype must be"):
        _C.fma_loop(10, "int8")
    with pytest.raises(ValueError, match="iters must be"):
        _C.fma_loop(-1)
    src = np.arange(3 * 2**20 + 5, dtype=np.uint8)
    dst = np.zeros_like(src)
    _C.parallel_copy(dst, src)
    assert np.array_equal(dst, src)
    with pytest.raises(ValueError, match="bytes"):
        _C.parallel_copy(dst[:-1], src)
    with pytest.raises(ValueError, match="overlap"):
        _C.parallel_copy(src[1:], src[:-1])
