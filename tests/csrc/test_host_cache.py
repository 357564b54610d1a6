"""The caching host allocator behind large kernel outputs (csrc/host_cache.h, pydl.memory)."""
import gc
import io
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C

MiB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache and a 256 MiB cap, and restores the cap after."""
    gc.collect()
    old = pydl.memory.set_cache_limit(256 * MiB)
    pydl.memory.empty_cache()
    yield
    gc.collect()
    pydl.memory.set_cache_limit(old)


def addr(a):
    return a.__array_interface__["data"][0]


def test_freed_block_is_reused_for_the_same_size():
    a = _C.host_empty([3 * MiB // 4 + 5], "float32")
    p = addr(a)
    del a
    b = _C.host_empty([3 * MiB // 4 + 5], "float32")
    assert addr(b) == p
    stats = pydl.memory.memory_stats()
    assert stats["num_cache_hits"] >= 1


def test_freed_block_is_reused_for_a_slightly_smaller_request_but_not_a_much_smaller_one():
    a = _C.host_empty([8 * MiB], "uint8")
    p = addr(a)
    del a
    small = _C.host_empty([2 * MiB], "uint8")  # a quarter of the block: must not pin it
    assert addr(small) != p
    b = _C.host_empty([8 * MiB - 100_000], "uint8")
    assert addr(b) == p


def test_block_is_not_handed_out_while_an_array_uses_it():
    a = _C.host_empty([MiB], "float32")
    a[:] = 1.0
    b = _C.host_empty([MiB], "float32")
    assert addr(b) != addr(a)
    b[:] = 2.0
    assert np.all(a == 1.0)


def test_a_view_keeps_the_block_alive():
    a = _C.host_empty([2, MiB], "float32")
    a[:] = 7.0
    p = addr(a)
    v = a[1, ::2]
    del a
    gc.collect()
    b = _C.host_empty([2, MiB], "float32")
    assert addr(b) != p
    b[:] = 0.0
    assert np.all(v == 7.0)
    del v, b
    c = _C.host_empty([2, MiB], "float32")
    assert addr(c) == p


def test_cached_arrays_behave_like_numpy_arrays(tmp_path):
    a = _C.host_empty([512, 1024], "float64")
    assert a.shape == (512, 1024) and a.dtype == np.float64
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert a.base is not None and not a.flags.owndata
    assert addr(a) % 4096 == 0
    a[:] = np.arange(a.size, dtype=np.float64).reshape(a.shape)
    b = pickle.loads(pickle.dumps(a))
    assert np.array_equal(a, b)
    a[0, 0] = -1.0  # the unpickled copy is independent of the block
    assert b[0, 0] == 0.0
    buf = io.BytesIO()
    np.save(buf, a)
    buf.seek(0)
    assert np.array_equal(np.load(buf), a)
    assert np.array_equal(a.copy(), a)
    with pytest.raises(ValueError):  # NumPy refuses to resize memory it does not own
        a.resize((10,))


def test_small_and_zero_size_requests_are_plain_numpy_arrays():
    before = pydl.memory.memory_stats()["num_allocs"]
    small = _C.host_empty([1000], "float32")
    zero = _C.host_empty([0, 10 * MiB], "float32")
    assert small.flags.owndata and zero.flags.owndata
    assert zero.shape == (0, 10 * MiB) and zero.size == 0
    assert pydl.memory.memory_stats()["num_allocs"] == before


def test_large_request_round_trip():
    n = 96 * MiB // 8
    a = _C.host_empty([n], "float64")
    a[::4096] = 3.0
    a[-1] = 5.0
    assert pydl.memory.memory_allocated() >= 96 * MiB
    assert a[-1] == 5.0 and a[4096] == 3.0
    p = addr(a)
    del a
    assert pydl.memory.memory_stats()["cached_bytes"] >= 96 * MiB
    b = _C.host_empty([n], "float64")
    assert addr(b) == p


def test_allocated_and_peak_track_live_arrays():
    pydl.memory.reset_peak_memory_stats()
    base = pydl.memory.memory_allocated()
    a = _C.host_empty([4 * MiB], "uint8")
    assert pydl.memory.memory_allocated() == base + 4 * MiB
    del a
    assert pydl.memory.memory_allocated() == base
    assert pydl.memory.max_memory_allocated() >= base + 4 * MiB
    assert pydl.memory.memory_reserved() >= base + 4 * MiB  # the block is cached now


def test_cap_is_respected_and_oldest_blocks_go_first():
    pydl.memory.set_cache_limit(5 * MiB)
    arrays = [_C.host_empty([2 * MiB], "uint8") for _ in range(4)]
    ptrs = [addr(a) for a in arrays]
    for i in range(4):
        arrays[i] = None  # freed in order 0, 1, 2, 3
    stats = pydl.memory.memory_stats()
    assert stats["cached_bytes"] <= 5 * MiB
    assert stats["cached_bytes"] == 4 * MiB  # the two most recently freed
    got = {addr(_C.host_empty([2 * MiB], "uint8"))}
    assert got <= {ptrs[2], ptrs[3]}


def test_block_larger_than_the_cap_is_not_cached():
    pydl.memory.set_cache_limit(2 * MiB)
    a = _C.host_empty([4 * MiB], "uint8")
    del a
    assert pydl.memory.memory_stats()["cached_bytes"] == 0


def test_disabled_cache_keeps_nothing_and_never_hits():
    assert pydl.memory.set_cache_limit(0) == 256 * MiB
    pydl.memory.reset_peak_memory_stats()
    for _ in range(3):
        a = _C.host_empty([2 * MiB], "uint8")
        a[:] = 1
        del a
    stats = pydl.memory.memory_stats()
    assert stats["cached_bytes"] == 0
    assert stats["num_cache_hits"] == 0
    assert stats["num_os_allocs"] == 3 and stats["num_os_frees"] == 3


def test_lowering_the_cap_releases_cached_blocks():
    a = _C.host_empty([3 * MiB], "uint8")
    del a
    assert pydl.memory.memory_stats()["cached_bytes"] > 0
    pydl.memory.set_cache_limit(MiB)
    assert pydl.memory.memory_stats()["cached_bytes"] == 0


def test_empty_cache_returns_cached_blocks_but_not_live_ones():
    live = _C.host_empty([2 * MiB], "uint8")
    live[:] = 9
    dead = _C.host_empty([3 * MiB], "uint8")
    del dead
    pydl.memory.reset_peak_memory_stats()
    assert pydl.memory.memory_stats()["cached_bytes"] >= 3 * MiB
    pydl.memory.empty_cache()
    stats = pydl.memory.memory_stats()
    assert stats["cached_bytes"] == 0 and stats["num_os_frees"] >= 1
    assert stats["allocated_bytes"] >= 2 * MiB
    assert np.all(live == 9)


def test_threads_never_share_a_block():
    errors = []

    def worker(tid):
        try:
            for i in range(30):
                a = _C.host_empty([MiB // 4 + 1000 * (i % 3)], "float32")
                a[:] = tid
                b = _C.host_empty([MiB // 4 + 1000 * (i % 3)], "float32")
                b[:] = -tid
                if not (np.all(a == tid) and np.all(b == -tid)):
                    errors.append(f"thread {tid} saw its block overwritten")
                del a, b
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pydl.memory.memory_stats()["num_cache_hits"] > 0


def test_kernels_running_in_threads_get_distinct_outputs():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 8, 96, 96)).astype(np.float32) for _ in range(4)]
    expected = [x.reshape(4, 8, 48, 2, 48, 2).max(axis=(3, 5)) for x in xs]
    errors = []

    def worker(i):
        for _ in range(10):
            y = F.max_pool2d(pydl.tensor(xs[i]), 2)._data
            if not np.array_equal(y, expected[i]):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_kernel_outputs_come_from_the_cache():
    x = pydl.tensor(np.ones((8, 16, 64, 64), np.float32), requires_grad=True)
    base = pydl.memory.memory_allocated()
    y = F.avg_pool2d(x, 1)  # an output as large as x: 2 MiB
    assert pydl.memory.memory_allocated() >= base + y._data.nbytes
    assert not y._data.flags.owndata
    p = addr(y._data)
    del y
    y2 = F.avg_pool2d(x, 1)
    assert addr(y2._data) == p
    np.testing.assert_array_equal(y2._data, 1.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        pydl.memory.set_cache_limit(-1)
    with pytest.raises(TypeError):
        pydl.memory.set_cache_limit(1.5)
    with pytest.raises(TypeError):
        _C.host_empty([10], "complex64")
    with pytest.raises(ValueError):
        _C.host_empty([-1], "float32")
    with pytest.raises(RuntimeError, match="overflows int64"):  # torch: RuntimeError too
        _C.host_empty([1 << 62, 1 << 62], "float32")


@pytest.mark.parametrize("value, expected", [("0", 0), ("7", 7 * MiB)])
def test_environment_sets_the_cap(value, expected, tmp_path):
    env = dict(os.environ, PYDL_HOST_CACHE_MB=value)
    # The pydl under test (installed wheel or in-place build), imported from outside the checkout
    # so the source tree (which has no compiled _C in a wheel install) cannot shadow it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c",
                          "import pydl; print(pydl.memory.get_cache_limit())"],
                         env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert int(out.stdout.strip()) == expected


def test_owns_host_block_is_true_only_for_the_array_that_owns_the_block():
    a = _C.host_empty([MiB], "float32")
    assert _C.owns_host_block(a)
    assert not _C.owns_host_block(a[1:])
    assert not _C.owns_host_block(a.reshape(2, -1))
    assert not _C.owns_host_block(np.empty(MiB, np.float32))
    assert not _C.owns_host_block(_C.host_empty([10], "float32"))  # small: NumPy's own


def test_backward_keeps_a_cached_gradient_without_copying_it():
    x = pydl.tensor(np.ones((8, 16, 64, 64), np.float32), requires_grad=True)
    F.avg_pool2d(x, 1).sum().backward()
    assert _C.owns_host_block(x.grad._data)
    np.testing.assert_array_equal(x.grad._data, 1.0)
    x.grad._data[0, 0, 0, 0] = 5.0  # the leaf's gradient is its own, writeable array
    assert x.grad._data[0, 0, 0, 1] == 1.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_allocates():
    """The cache's lock is held across fork(), so a child never inherits it locked: each child
    allocates and frees a block while a thread of the parent hammers the cache."""
    import time
    import warnings

    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            a = _C.host_empty([MiB], "uint8")
            del a

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for _ in range(20):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
                pid = os.fork()
            if pid == 0:  # child: must not block on an inherited lock
                try:
                    b = _C.host_empty([2 * MiB], "uint8")
                    b[:] = 1
                    del b
                    os._exit(0)
                finally:
                    os._exit(1)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail("child process deadlocked in the host cache after fork")
                time.sleep(0.005)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        thread.join()
