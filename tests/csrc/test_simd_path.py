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
