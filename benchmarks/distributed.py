"""Data-parallel training across processes (pydl.distributed over MPI): time per training step
and scaling efficiency from 1 to 2 ranks, the communication left exposed after overlap, and
all-reduce bandwidth against message size (pydl.distributed.all_reduce beside mpi4py's own
blocking Allreduce on the same buffers, alternating, medians).

Each measurement runs as ``mpiexec -n R python benchmarks/distributed.py --worker ...`` (the
MPICH launcher from the ``distributed`` extra); ranks run one kernel thread each unless the row
says otherwise. Strong scaling: the global batch is fixed, so 2 ranks each compute half of it.
Efficiency = T(1 rank) / (R * T(R ranks)). "exposed comm" = step time minus the same step under
``no_sync()`` (no all-reduce): the part of communication that overlap did not hide.

    python -m benchmarks distributed          # or: pydl bench distributed
    python benchmarks/distributed.py          # the same, standalone (--quick: fewer cases)

Wall-clock times (perf_counter): several processes cannot be timed by one process's CPU clock.
On a machine shared with other work, read the medians, not single rounds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# -- the worker (runs under mpiexec; no relative imports so it can run as a script) ------------


def _worker(args) -> None:
    import numpy as np

    import pydl
    import pydl.distributed as dist
    from pydl import nn

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    out = {"world": world, "threads": pydl.get_num_threads()}
    kind = args[0]
    if kind == "step":
        model_name, global_batch, steps = args[1], int(args[2]), int(args[3])
        out.update(_time_steps(np, pydl, dist, nn, model_name, global_batch, steps, rank, world))
    elif kind == "allreduce":
        sizes = [int(s) for s in args[1].split(",")]
        out["allreduce"] = _time_allreduce(np, pydl, dist, sizes, float(args[2]))
    if rank == 0:
        with open(args[-1], "w") as f:
            json.dump(out, f)
    dist.barrier()
    dist.destroy_process_group()


def _models(pydl, nn, name):
    pydl.manual_seed(0)
    if name == "lenet":   # LeNet-5 on 28x28: 61.7k parameters, conv-heavy compute
        from pydl.models import LeNet5

        return LeNet5(1, 10, input_size=28), (1, 28, 28)
    if name == "mlp":     # 784-2048-1024-10: 3.7M parameters (14.7 MB of float32 gradient)
        return nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 1024), nn.ReLU(),
                             nn.Linear(1024, 10)), (784,)
    raise ValueError(name)


def _time_steps(np, pydl, dist, nn, name, global_batch, steps, rank, world):
    model, shape = _models(pydl, nn, name)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = pydl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    per = global_batch // world
    rng = np.random.default_rng(rank)
    x = pydl.from_numpy(rng.standard_normal((per,) + shape).astype(np.float32))
    y = pydl.from_numpy(rng.integers(0, 10, per))
    loss_fn = nn.CrossEntropyLoss()

    def step(sync=True):
        opt.zero_grad()
        if sync:
            loss_fn(ddp(x), y).backward()
        else:
            with ddp.no_sync():
                loss_fn(ddp(x), y).backward()
        opt.step()

    cpu = {True: [], False: []}

    def timed(sync):
        for _ in range(2):
            step(sync)
        samples = []
        for _ in range(steps):
            dist.barrier()
            t, c = time.perf_counter(), time.process_time()
            step(sync)
            cpu[sync].append(time.process_time() - c)
            dist.barrier()  # a step is done when the slowest rank is
            samples.append(time.perf_counter() - t)
        return float(np.median(samples))

    res = {"model": name, "global_batch": global_batch,
           "params": int(sum(p.numel() for p in model.parameters())),
           "buckets": len(ddp._buckets)}
    # alternate synced and no_sync rounds so both see the same machine load
    a, b = [], []
    for _ in range(3):
        a.append(timed(True))
        b.append(timed(False))
    res["step_s"], res["no_sync_s"] = float(np.median(a)), float(np.median(b))
    # CPU seconds per step summed over the ranks (this rank's median, gathered): the work a
    # step costs, whatever else the machine is running.
    every = [None] * world
    dist.all_gather_object(every, (float(np.median(cpu[True])), float(np.median(cpu[False]))))
    res["cpu_s"] = sum(e[0] for e in every)
    res["cpu_no_sync_s"] = sum(e[1] for e in every)
    return res


def _time_allreduce(np, pydl, dist, sizes, min_time):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rows = []
    for n in sizes:
        buf = np.ones(n, dtype=np.float32)
        t = pydl.Tensor._wrap(buf)

        def ours():
            dist.all_reduce(t)

        def raw():
            comm.Allreduce(MPI.IN_PLACE, [buf, MPI.FLOAT], MPI.SUM)

        # The same call count on every rank (collectives must pair up): rank 0 times a few
        # calls and broadcasts the count.
        per_call = 0.0
        for fn in (ours, raw):   # the slower of the two sets the count
            fn()
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(5):
                fn()
            per_call = max(per_call, (time.perf_counter() - start) / 5)
        calls = np.array([max(3, min(20000, int(min_time / max(per_call, 1e-7))))],
                         dtype=np.int64)
        comm.Bcast(calls, root=0)
        calls = int(calls[0])
        samples = {"pydl": [], "mpi4py": []}
        for _ in range(5):
            for name, fn in (("pydl", ours), ("mpi4py", raw)):
                comm.Barrier()
                s = time.perf_counter()
                for _ in range(calls):
                    fn()
                comm.Barrier()
                samples[name].append((time.perf_counter() - s) / calls)
        rows.append({"bytes": 4 * n, **{k: float(np.median(v)) for k, v in samples.items()}})
    return rows


# -- the driver ---------------------------------------------------------------------------------

def _mpiexec():
    here = os.path.dirname(sys.executable)
    for name in ("mpiexec", "mpirun"):
        if os.path.exists(os.path.join(here, name)):
            return os.path.join(here, name)
    return shutil.which("mpiexec") or shutil.which("mpirun")


def available() -> str:
    """'' when the suite can run, else why not."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'pydl-nn[distributed]')"
    if _mpiexec() is None:
        return "no mpiexec/mpirun on PATH (pip install mpich)"
    return ""


def _launch(ranks: int, threads: int, args, timeout: float = 600):
    import pydl

    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ)
    env["PYDL_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker",
           *map(str, args), path]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def measure(quick: bool = False) -> dict:
    cores = os.cpu_count() or 1
    steps = 5 if quick else 15
    cases = [("lenet", 64), ("mlp", 128)] if not quick else [("lenet", 64)]
    scaling = []
    for name, batch in cases:
        one = _launch(1, 1, ["step", name, batch, steps])
        two = _launch(2, 1, ["step", name, batch, steps])
        one_wide = _launch(1, min(2, cores), ["step", name, batch, steps])
        scaling.append({"model": name, "params": one["params"], "global_batch": batch,
                        "buckets_2": two["buckets"],
                        "t1": one["step_s"], "t2": two["step_s"],
                        "t2_no_sync": two["no_sync_s"], "t1_2threads": one_wide["step_s"],
                        "cpu1": one["cpu_s"], "cpu2": two["cpu_s"],
                        "cpu2_no_sync": two["cpu_no_sync_s"],
                        "efficiency": one["step_s"] / (2 * two["step_s"]),
                        "exposed_comm_s": two["step_s"] - two["no_sync_s"]})
    exps = range(0, 25, 4) if quick else range(0, 25, 2)
    sizes = ",".join(str(1 << k) for k in exps)
    bw = _launch(2, 1, ["allreduce", sizes, 0.05 if quick else 0.3])["allreduce"]
    return {"scaling": scaling, "allreduce": bw, "cores": cores}


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"


def report(res: dict) -> str:
    lines = ["time per training step (median wall clock; global batch fixed; ranks x kernel "
             "threads), and CPU seconds per step summed over ranks:",
             f"{'model':<7} {'params':>9} {'batch':>5} {'1x1':>9} {'2x1':>9} {'eff.':>6} "
             f"{'2x1 no_sync':>12} {'exposed comm':>13} {'1x2 threads':>12} {'CPU 1x1':>9} "
             f"{'CPU 2x1':>9} {'CPU 2x1 no_sync':>16}"]
    for s in res["scaling"]:
        lines.append(f"{s['model']:<7} {s['params']:>9,} {s['global_batch']:>5} "
                     f"{s['t1'] * 1e3:>7.2f}ms {s['t2'] * 1e3:>7.2f}ms {s['efficiency']:>6.2f} "
                     f"{s['t2_no_sync'] * 1e3:>10.2f}ms {s['exposed_comm_s'] * 1e3:>11.2f}ms "
                     f"{s['t1_2threads'] * 1e3:>10.2f}ms {s['cpu1'] * 1e3:>7.2f}ms "
                     f"{s['cpu2'] * 1e3:>7.2f}ms {s['cpu2_no_sync'] * 1e3:>14.2f}ms")
    lines += ["", "all-reduce (SUM, float32) between 2 ranks on this node; algorithm bandwidth "
                  "= bytes / time (bus bandwidth = the same x 2(n-1)/n = x 1 for n = 2):",
              f"{'message':>9} {'pydl':>10} {'GB/s':>7} {'mpi4py':>10} {'GB/s':>7} "
              f"{'pydl/raw':>8}"]
    for r in res["allreduce"]:
        b = r["bytes"]
        lines.append(f"{_human_bytes(b):>9} {r['pydl'] * 1e6:>8.1f}us {b / r['pydl'] / 1e9:>7.3f} "
                     f"{r['mpi4py'] * 1e6:>8.1f}us {b / r['mpi4py'] / 1e9:>7.3f} "
                     f"{r['pydl'] / r['mpi4py']:>8.2f}")
    return "\n".join(lines)


def run(suite) -> None:
    """``python -m benchmarks distributed``: the measurements above as suite results."""
    from .harness import Result, SuiteUnavailable

    why = available()
    if why:
        raise SuiteUnavailable(why)
    res = measure(quick=suite.quick)
    print(f"\n== {suite.name} ==")
    print(report(res), flush=True)
    for s in res["scaling"]:
        suite.results.append(Result(
            suite.name, f"{s['model']} step, 2 ranks vs 1 (batch {s['global_batch']})",
            {"pydl": s["t2"], "1 rank": s["t1"]},
            extra={"scaling_efficiency": s["efficiency"], "exposed_comm_s": s["exposed_comm_s"],
                   "no_sync_s": s["t2_no_sync"], "one_rank_two_threads_s": s["t1_2threads"]}))
    for r in res["allreduce"]:
        suite.results.append(Result(
            suite.name, f"all_reduce {_human_bytes(r['bytes'])}",
            {"pydl": r["pydl"], "mpi4py": r["mpi4py"]}, nbytes=r["bytes"], x=r["bytes"],
            series="all_reduce"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        why = available()
        if why:
            sys.exit(f"benchmarks/distributed.py: {why}")
        quick = "--quick" in sys.argv[1:]
        t0 = time.perf_counter()
        out = measure(quick=quick)
        print(report(out))
        print(f"({time.perf_counter() - t0:.0f} s)")
        if "--json" in sys.argv:
            with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
                json.dump(out, f, indent=1)
