"""Checkpoint figures for issue 17 (not a timed suite: it measures peak memory, which needs a
fresh process per measurement): ``python -m benchmarks._checkpoint_figures [--old FILE]
[--mb 200]``.

* load time (wall and CPU, median of 3 fresh processes, warm page cache) and peak RSS (VmHWM,
  reset before the call) above the process's resident size before the call, of a checkpoint
  of ``--mb`` MB in 20 tensors, for ``pydl.load`` (copy and ``mmap=True``), ``safetensors.numpy.load_file`` and, when installed,
  ``safetensors.torch.load_file`` and ``torch.load(mmap=True)`` of the same tensors as ``.pt``;
* peak RSS of ``pydl.save`` and ``safetensors.numpy.save_file``;
* the single-bit-flip fuzz counts of a small checkpoint;
* the time to load (or refuse) a file that references one 8 MiB tensor 4000 times.

``--old FILE`` names a copy of an earlier ``pydl/serialization.py`` (e.g. ``git show
8ec0218:pydl/serialization.py > /tmp/old.py``) to measure the same things for it ("before").
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = r"""
import importlib.util, json, resource, sys, time
import numpy as np
what, path, old = sys.argv[1], sys.argv[2], sys.argv[3]
import pydl
def now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
def peak():  # the high-water mark since reset_peak() (ru_maxrss cannot be reset)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
mod = pydl.serialization
if old != "-":
    spec = importlib.util.spec_from_file_location("old_serialization", old)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
if what.startswith("save"):
    mb = int(what.split(":")[1])
    n = mb * (1 << 20) // 4 // 20
    obj = {"model": {f"layer{i}.weight": pydl.ones(n) for i in range(20)}, "epoch": 3}
    if what.startswith("save_st"):
        import safetensors.numpy
        flat = {k: v.numpy() for k, v in obj["model"].items()}
    reset_peak(); base, w0, c0 = now(), time.perf_counter(), time.process_time()
    if what.startswith("save_st"):
        safetensors.numpy.save_file(flat, path)
    else:
        mod.save(obj, path)
else:
    if what == "st_numpy":
        import safetensors.numpy
        load = safetensors.numpy.load_file
    elif what == "st_torch":
        import safetensors.torch
        load = safetensors.torch.load_file
    elif what == "torch_mmap":
        import torch
        load = lambda p: torch.load(p, mmap=True, weights_only=True)
    elif what == "mmap":
        load = lambda p: mod.load(p, mmap=True)
    else:
        load = mod.load
    reset_peak(); base, w0, c0 = now(), time.perf_counter(), time.process_time()
    out = load(path)
w, c = time.perf_counter() - w0, time.process_time() - c0
print(json.dumps({"wall": w, "cpu": c, "extra": peak() - base}))
"""


def _child(what, path, old="-"):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isdir(os.path.join(root, "pydl")):
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", _CHILD, what, path, old], capture_output=True,
                         text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median(what, path, old="-", runs=3):
    rs = [_child(what, path, old) for _ in range(runs)]
    return {k: statistics.median(r[k] for r in rs) for k in rs[0]}


def _row(label, r, mb):
    print(f"  {label:42s} {r['wall'] * 1e3:8.0f} ms wall {r['cpu'] * 1e3:8.0f} ms CPU   "
          f"peak +{r['extra'] / 2**20:6.0f} MB ({r['extra'] / (mb << 20):.2f}x)")


def _flip_counts(mod, obj):
    import numpy as np

    import pydl

    buf = io.BytesIO()
    mod.save(obj, buf)
    raw = buf.getvalue()

    def same(a, b):
        if type(a) is not type(b):
            return False
        if isinstance(a, pydl.Tensor):
            return a.dtype == b.dtype and a.shape == b.shape and \
                np.array_equal(a.numpy_view(), b.numpy_view())
        if isinstance(a, dict):
            return list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b] and \
                all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b

    counts = {"identical": 0, "raised": 0, "different": 0, "other exception": 0}
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            out = mod.load(io.BytesIO(bytes(flipped)))
        except mod.CheckpointError:
            counts["raised"] += 1
            continue
        except Exception:  # noqa: BLE001 -- what the old code let through
            counts["other exception"] += 1
            continue
        counts["identical" if same(obj, out) else "different"] += 1
    return len(raw), counts


def _alias_file(path, shared_offsets):
    """4000 references to one 8 MiB tensor, in the format-1 layout old pydl read (a CRC-32 per
    tensor): 4000 header entries over the same bytes (``shared_offsets``), or one entry that the
    structure uses 4000 times."""
    import struct
    import zlib

    data = bytes(8 << 20)
    crc = zlib.crc32(data)
    names = [f"t{i}" for i in range(4000)] if shared_offsets else ["t"] * 4000
    tree = {"kind": "list", "items": [{"name": n, "crc32": crc, "kind": "tensor"}
                                      for n in names]}
    header = {"__metadata__": {"format": "pydl.checkpoint", "format_version": "1",
                               "tree": json.dumps(tree)}}
    for n in names:
        header[n] = {"dtype": "F32", "shape": [len(data) // 4], "data_offsets": [0, len(data)]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", help="an earlier pydl/serialization.py to compare against")
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args(argv)
    import importlib.util
    import time

    import pydl
    from benchmarks.harness import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; warm page cache; medians of 3 "
          "fresh processes; peak = VmHWM (reset before the call) above the resident size "
          "before it")
    old_mod = None
    if args.old:
        spec = importlib.util.spec_from_file_location("old_serialization", args.old)
        old_mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old_mod)
    with tempfile.TemporaryDirectory() as tmp:
        mb = args.mb
        new, oldf = os.path.join(tmp, "new.safetensors"), os.path.join(tmp, "old.safetensors")
        print(f"\nsave of {mb} MB in 20 float32 tensors:")
        _row("pydl.save (now)", _median(f"save:{mb}", new), mb)
        if old_mod:
            _row("pydl.save (before)", _median(f"save:{mb}", oldf, args.old), mb)
        _row("safetensors.numpy.save_file", _median(f"save_st:{mb}", os.path.join(
            tmp, "st.safetensors")), mb)
        print(f"\nload of that checkpoint ({os.path.getsize(new) / 1e6:.1f} MB file):")
        _row("pydl.load (now)", _median("copy", new), mb)
        _row("pydl.load(mmap=True) (now)", _median("mmap", new), mb)
        if old_mod:
            _row("pydl.load (before)", _median("copy", oldf, args.old), mb)
        _row("safetensors.numpy.load_file", _median("st_numpy", new), mb)
        try:
            import torch

            _row("safetensors.torch.load_file", _median("st_torch", new), mb)
            pt = os.path.join(tmp, "same.pt")
            n = mb * (1 << 20) // 4 // 20
            torch.save({f"layer{i}.weight": torch.ones(n) for i in range(20)}, pt)
            _row("torch.load(.pt, mmap=True)", _median("torch_mmap", pt), mb)
        except ImportError:
            pass

        obj = {"model": {"fc.weight": pydl.tensor([[0.5, -1.0], [2.0, 0.25]]),
                         "fc.bias": pydl.tensor([1.0, -2.0]), "bn.count": pydl.tensor(7)},
               "optimizer": {"state": {0: {"step": pydl.tensor(3.0),
                                           "exp_avg": pydl.tensor([0.1, 0.2])},
                                       1: {"step": pydl.tensor(3.0)}},
                             "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999),
                                               "params": [0, 1]}]},
               "scheduler": {"last_epoch": 7}, "epoch": 7, "name": "run-a"}
        print("\nsingle-bit flips of a small checkpoint (model, optimizer, scheduler, epoch):")
        for label, mod in [("now", pydl.serialization)] + ([("before", old_mod)]
                                                            if old_mod else []):
            size, counts = _flip_counts(mod, obj)
            print(f"  {label:7s} {size} bytes, {size * 8} flips: " +
                  ", ".join(f"{v} {k}" for k, v in counts.items()))

        alias = os.path.join(tmp, "alias.safetensors")
        for shared in (True, False):
            _alias_file(alias, shared)
            what = "4000 header entries with the same byte range" if shared else \
                "one entry used 4000 times by the structure"
            print(f"\n4000 references to one 8 MiB tensor, {what} "
                  f"({os.path.getsize(alias) / 1e6:.1f} MB file):")
            for label, mod in [("now", pydl.serialization)] + ([("before", old_mod)]
                                                                if old_mod else []):
                t0 = time.perf_counter()
                try:
                    out = mod.load(alias)
                    result = f"loaded {len(out['items'] if isinstance(out, dict) else out)} " \
                             f"tensors sharing {len({id(t._data) for t in out})} array(s)"
                except Exception as e:  # noqa: BLE001
                    result = f"{type(e).__name__}: {str(e)[:150]}"
                print(f"  {label:7s} {time.perf_counter() - t0:8.3f} s  {result}")
                out = None


if __name__ == "__main__":
    main()
