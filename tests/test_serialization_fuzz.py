"""Damaged and interrupted checkpoints (issue 17): every single-bit flip of a small checkpoint
loads exactly what was saved or raises CheckpointError; every truncation raises; a save killed
with SIGKILL never leaves a file that does not load, and its temporaries go at the next save;
load and save stay within about 1x the tensors' memory."""
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pydl
from pydl.serialization import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, pydl.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and \
            a.requires_grad == b.requires_grad and \
            np.array_equal(a.numpy_view(), b.numpy_view(), equal_nan=True)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b] and \
            all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


def _small_checkpoint():
    """What a training checkpoint holds, small: model, optimizer keyed by int, scheduler,
    epoch, a string and a tuple."""
    return {"model": {"fc.weight": pydl.tensor([[0.5, -1.0], [2.0, 0.25]]),
                      "fc.bias": pydl.tensor([1.0, -2.0]), "bn.count": pydl.tensor(7)},
            "optimizer": {"state": {0: {"step": pydl.tensor(3.0),
                                        "exp_avg": pydl.tensor([0.1, 0.2])},
                                    1: {"step": pydl.tensor(3.0)}},
                          "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999),
                                            "params": [0, 1]}]},
            "scheduler": {"last_epoch": 7}, "epoch": 7, "name": "run-a"}


def test_every_single_bit_flip_loads_identical_content_or_raises():
    obj = _small_checkpoint()
    buf = io.BytesIO()
    pydl.save(obj, buf)
    raw = buf.getvalue()
    assert _same(obj, pydl.load(io.BytesIO(raw)))
    identical = raised = 0
    wrong = []
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            out = pydl.load(io.BytesIO(bytes(flipped)))
        except CheckpointError:
            raised += 1
            continue
        if _same(obj, out):
            identical += 1
        else:
            wrong.append(bit)
    assert not wrong, f"{len(wrong)} flips loaded different content, e.g. bits {wrong[:10]}"
    assert identical + raised == len(raw) * 8 and raised > 0.9 * len(raw) * 8
    print(f"\nbit flips: {len(raw) * 8} tried on a {len(raw)}-byte file, {identical} loaded "
          f"identical content, {raised} raised CheckpointError")


def test_bit_flips_through_a_file_and_mmap(tmp_path):
    """The path and memory-map readers, on a sample of the flips."""
    obj = _small_checkpoint()
    path = tmp_path / "ck.safetensors"
    pydl.save(obj, path)
    raw = path.read_bytes()
    for bit in range(0, len(raw) * 8, 13):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        for mmap in (False, True):
            try:
                out = pydl.load(path, mmap=mmap)
            except CheckpointError:
                continue
            assert _same(obj, out), (bit, mmap)


def test_every_truncation_raises(tmp_path):
    obj = _small_checkpoint()
    buf = io.BytesIO()
    pydl.save(obj, buf)
    raw = buf.getvalue()
    path = tmp_path / "cut.safetensors"
    for cut in range(len(raw)):
        with pytest.raises(CheckpointError):
            pydl.load(io.BytesIO(raw[:cut]))
        if cut % 17 == 0:
            path.write_bytes(raw[:cut])
            with pytest.raises(CheckpointError):
                pydl.load(path, mmap=bool(cut % 2))


# One process imports pydl once, then forks a saver per trial (a fresh interpreter per trial
# would spend the test's time importing); the saver is killed with SIGKILL mid-save and reaped
# by the process that forked it.
_ZYGOTE = r"""
import os, sys
import pydl
path = sys.argv[1]
# ~24 MB in several tensors: a save takes long enough to be killed part way
obj = {"model": {f"layer{i}.weight": pydl.zeros(1000, 1500) for i in range(4)}, "gen": 0}
for line in sys.stdin:
    if line.strip() == "fork":
        pid = os.fork()
        if pid == 0:
            gen = os.getpid() * 1000
            while True:
                gen += 1
                for t in obj["model"].values():
                    t._data.fill(gen % 65536)
                obj["gen"] = gen % 65536
                pydl.save(obj, path)
        print(pid, flush=True)
    elif line.startswith("reap"):
        os.waitpid(int(line.split()[1]), 0)
        print("reaped", flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_kill_9_during_saves_never_leaves_a_bad_file_or_an_orphan(tmp_path):
    path = tmp_path / "ck.safetensors"
    pydl.save({"model": {}, "gen": 0}, path)
    script = tmp_path / "zygote.py"
    script.write_text(_ZYGOTE)
    rnd = random.Random(17)
    gens = set()
    zygote = subprocess.Popen([sys.executable, str(script), str(path)], cwd=tmp_path,
                              env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        for trial in range(20):
            zygote.stdin.write("fork\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            if trial % 2:  # let one of its saves complete first: the kill hits a later one
                inode, deadline = path.stat().st_ino, time.monotonic() + 10
                while path.stat().st_ino == inode and time.monotonic() < deadline:
                    time.sleep(0.002)
                time.sleep(rnd.uniform(0.0, 0.1))
            else:
                time.sleep(rnd.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            zygote.stdin.write(f"reap {pid}\n")
            zygote.stdin.flush()
            assert zygote.stdout.readline().strip() == "reaped"
            # the previous file or a complete new one, never a broken one
            ck = pydl.load(path)
            gens.add(ck["gen"])
            assert all(np.all(t.numpy() == ck["gen"]) for t in ck["model"].values()), trial
            # the next save (by another process) removes what the killed one left
            pydl.save({"model": {}, "gen": 0}, path)
            left = sorted(p.name for p in tmp_path.iterdir())
            assert left == ["ck.safetensors", "zygote.py"], (trial, left)
    finally:
        zygote.kill()
        zygote.wait()
        zygote.stdin.close()
        zygote.stdout.close()
    assert len(gens) > 1  # some kills came after a completed save
    print(f"\nkill -9 trials: 20; {len(gens) - (0 in gens)} found a save of the killed "
          "process on disk, the rest the previous file")


_MEMORY = r"""
import json, resource, sys
import numpy as np
import pydl
mode, path, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
def peak():  # the high-water mark since reset_peak() (ru_maxrss cannot be reset)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
def now():  # resident now
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
if mode == "save":
    n = mb * (1 << 20) // 4 // 8
    obj = {f"w{i}": pydl.ones(n) for i in range(8)}
    reset_peak(); base = now()
    pydl.save(obj, path)
else:
    reset_peak(); base = now()
    out = pydl.load(path, mmap=(mode == "mmap"))
    # touch one element of each tensor (fault-around maps 64 KB around each touched page)
    assert all(float(t.numpy_view()[-1]) == 1.0 for t in out.values())
print(json.dumps({"base": base, "peak": peak()}))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux /proc")
def test_peak_memory_of_save_and_load_is_about_the_tensors(tmp_path):
    """Peak RSS (VmHWM, reset just before the call) of fresh processes: save adds little beyond
    the tensors, load (copy) about the tensors, load(mmap=True) much less (memory, not time:
    deterministic enough to assert)."""
    mb = 96
    script = tmp_path / "mem.py"
    script.write_text(_MEMORY)
    path = tmp_path / "big.safetensors"

    def run(mode):
        res = subprocess.run([sys.executable, str(script), mode, str(path), str(mb)],
                             capture_output=True, text=True, env=_env(), cwd=tmp_path,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        r = json.loads(res.stdout.strip().splitlines()[-1])
        return (r["peak"] - r["base"]) / (mb << 20)

    save_extra = run("save")
    assert path.stat().st_size > mb << 20
    load_copy = run("copy")
    load_mmap = run("mmap")
    assert save_extra < 0.25, save_extra
    assert 0.8 < load_copy < 1.3, load_copy
    assert load_mmap < 0.3, load_mmap
