"""Multi-process tests: each test launches ``mpirun -n N python workers/<name>.py`` (the MPICH
launcher from the ``[distributed]`` extra, found next to this Python), one kernel thread per
rank, and reads what every rank wrote to ``out_<rank>.json`` in its working directory. Skipped
when mpi4py or the launcher is missing."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import pydl

HERE = os.path.dirname(os.path.abspath(__file__))
# The folder holding the pydl this test process imported (the checkout with an in-place build,
# or site-packages): the ranks must import that one, not the source tree, which has no compiled
# modules after a plain `pip install .`.
PYDL_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
WORKERS = os.path.join(HERE, "workers")


def find_mpiexec():
    """The launcher of the MPI that mpi4py uses: the venv's bin first (the mpich wheel puts
    mpiexec there), then PATH."""
    here = os.path.dirname(sys.executable)
    for name in ("mpiexec", "mpirun"):
        cand = os.path.join(here, name)
        if os.path.exists(cand):
            return cand
    return shutil.which("mpiexec") or shutil.which("mpirun")


def rank_env():
    env = dict(os.environ)
    env["PYDL_NUM_THREADS"] = "1"   # one kernel thread per rank: ranks share the cores
    env["OMP_NUM_THREADS"] = "1"
    env.pop("PYDL_SIMD", None)
    env["PYTHONPATH"] = PYDL_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def mpirun(tmp_path):
    """``mpirun(n, worker, *args, timeout=60, launcher_args=())`` -> (CompletedProcess, outputs
    per rank). ``outputs`` is the list of the ranks' JSON results (None where a rank wrote
    none)."""
    pytest.importorskip("mpi4py")
    exe = find_mpiexec()
    if exe is None:
        pytest.skip("no mpiexec/mpirun (pip install 'pydl-nn[distributed]')")

    def run(n, worker, *args, timeout=90, launcher_args=()):
        # -W error: warnings are errors in the ranks too, as in the rest of the suite
        cmd = [exe, *launcher_args, "-n", str(n), sys.executable, "-W", "error",
               os.path.join(WORKERS, worker), *map(str, args)]
        proc = subprocess.run(cmd, cwd=tmp_path, env=rank_env(), capture_output=True,
                              text=True, timeout=timeout)
        outs = []
        for r in range(n):
            p = tmp_path / f"out_{r}.json"
            outs.append(json.loads(p.read_text()) if p.exists() else None)
        return proc, outs

    return run


@pytest.fixture
def python_worker(tmp_path):
    """Run a worker as one plain process (an MPI world of one, no launcher)."""
    pytest.importorskip("mpi4py")

    def run(worker, *args, timeout=90):
        cmd = [sys.executable, "-W", "error", os.path.join(WORKERS, worker), *map(str, args)]
        proc = subprocess.run(cmd, cwd=tmp_path, env=rank_env(), capture_output=True,
                              text=True, timeout=timeout)
        p = tmp_path / "out_0.json"
        return proc, (json.loads(p.read_text()) if p.exists() else None)

    return run
