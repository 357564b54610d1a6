"""DataLoader(num_workers > 0): worker processes as PyTorch's (pydl/data/_worker.py).

Every test checks that no worker process outlives it (the `no_leaked_workers` fixture)."""
import gc
import multiprocessing
import os
import sys
import time

import numpy as np
import pytest

import pydl
from pydl.data import DataLoader, TensorDataset, get_worker_info

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loader_workers_helpers as H  # noqa: E402  (by this name, so spawned workers find it)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork-based tests")


@pytest.fixture(autouse=True)
def no_leaked_workers():
    yield
    gc.collect()
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == [], "DataLoader workers outlived the test"


def _epochs(loader, n_epochs, key=lambda b: b[1].tolist()):
    return [[key(b) for b in loader] for _ in range(n_epochs)]


def _tensor_ds(n=23):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(pydl.from_numpy(x), pydl.arange(n))


@pytest.mark.parametrize("num_workers", [1, 2, 3])
@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("batch_size,drop_last", [(4, False), (4, True), (1, False)])
def test_same_batches_in_same_order_as_main_process(num_workers, persistent, batch_size,
                                                    drop_last):
    ds = _tensor_ds()
    pydl.manual_seed(7)
    ref = _epochs(DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=drop_last), 3)
    after_ref = pydl.rand(3).tolist()
    pydl.manual_seed(7)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                        num_workers=num_workers, persistent_workers=persistent)
    got = _epochs(loader, 3)
    assert got == ref
    assert ref[0] != ref[1]  # shuffled anew each epoch
    # the global stream is where it would be with num_workers=0 (one base seed per epoch)
    assert pydl.rand(3).tolist() == after_ref
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.numpy(), ds.tensors[0].numpy()[yb.numpy()])
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    del loader


def test_samples_without_batch_path_collate_as_in_main_process():
    ds = H.Samples(11)
    ref = list(DataLoader(ds, batch_size=3))
    got = list(DataLoader(ds, batch_size=3, num_workers=2, prefetch_factor=1))
    assert len(got) == len(ref) == 4
    for a, b in zip(got, ref):
        assert a.keys() == b.keys()
        np.testing.assert_array_equal(a["x"].numpy(), b["x"].numpy())
        assert a["y"].tolist() == b["y"].tolist()


def test_prefetch_factor_zero_still_loads_every_batch():
    got = [b["y"].tolist() for b in DataLoader(H.Samples(7), batch_size=2, num_workers=2,
                                               prefetch_factor=0)]
    assert got == [[0, 1], [2, 3], [4, 5], [6]]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_run_threaded_kernels_after_the_parent_started_its_pool(context):
    # The parent's kernel thread pool is running; a forked worker inherits it without its
    # threads and must still finish every kernel call (the caller runs all chunks itself).
    before = pydl.get_num_threads()
    pydl.set_num_threads(2)
    try:
        big = pydl.ones(512, 512)
        assert (big @ big)[0, 0].item() == 512.0
        got = list(DataLoader(H.Kernels(), batch_size=2, num_workers=2, timeout=60,
                              multiprocessing_context=context))
    finally:
        pydl.set_num_threads(before)
    for b in got:
        assert b["mm"].tolist() == [256.0, 256.0] and b["conv"].tolist() == [27.0, 27.0]


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
@pytest.mark.parametrize("batch_size,drop_last", [(2, False), (2, True), (None, False)])
def test_iterable_dataset_sharded_by_worker_info(num_workers, batch_size, drop_last):
    ds = H.Stream(11)
    loader = DataLoader(ds, batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
    seen = []
    for b in loader:
        if batch_size is None:
            seen.append(b["i"])
        else:
            assert len(b["i"]) == 2 or not drop_last
            assert len(set(b["worker"].tolist())) == 1  # a batch comes from one worker
            seen.extend(b["i"].tolist())
    if num_workers <= 1:
        expected = list(range(11)) if not drop_last else list(range(10))
        assert seen == expected
    else:
        per = [[i for i in range(11) if i % num_workers == w] for w in range(num_workers)]
        if drop_last:
            per = [p[:len(p) - len(p) % 2] for p in per]
        assert sorted(seen) == sorted(i for p in per for i in p)
        if batch_size == 2 and not drop_last and num_workers == 2:
            # batches alternate between the workers while both have data, as PyTorch's
            assert seen[:4] == [0, 2, 1, 3]
    assert len(loader) == (11 if batch_size is None else 5 if drop_last else 6)


def test_iterable_dataset_with_persistent_workers_restarts_each_epoch():
    loader = DataLoader(H.Stream(7), batch_size=2, num_workers=2, persistent_workers=True)
    first = sorted(i for b in loader for i in b["i"].tolist())
    for k, _ in enumerate(loader):
        if k == 0:
            break
    again = sorted(i for b in loader for i in b["i"].tolist())
    assert first == again == list(range(7))
    del loader


def test_iterable_dataset_argument_errors():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(H.Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(H.Stream(3), sampler=[0, 1])
    with pytest.raises(ValueError, match="expected unspecified batch_sampler option"):
        DataLoader(H.Stream(3), batch_sampler=[[0]])
    chained = H.Stream(2, shard=False) + H.Stream(3, shard=False)
    assert [b["i"] for b in DataLoader(chained, batch_size=None)] == [0, 1, 0, 1, 2]
    assert len(chained) == 5


def test_batch_size_none_yields_single_samples():
    ds = H.Samples(5)
    got = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert [s["y"] for s in got] == list(range(5))


def test_custom_batch_sampler_and_out_of_order():
    ds = H.Samples(10)
    batches = [[9, 0], [3], [4, 5, 6], [1]]
    got = [b["y"].tolist() for b in DataLoader(ds, batch_sampler=batches, num_workers=3)]
    assert got == batches
    loose = [b["y"].tolist() for b in DataLoader(ds, batch_sampler=batches, num_workers=3,
                                                  in_order=False)]
    assert sorted(loose) == sorted(batches)


def test_worker_info_and_per_worker_seeds():
    ds = H.WhoAmI(12)
    assert get_worker_info() is None
    pydl.manual_seed(3)
    rows = [r for b in DataLoader(ds, batch_size=2, num_workers=3) for r in
            [dict(zip(b, vals)) for vals in zip(*(v.tolist() if hasattr(v, "tolist") else v
                                                   for v in b.values()))]]
    assert [r["i"] for r in rows] == list(range(12))
    # batches go round-robin: batch k to worker k % 3
    assert [r["id"] for r in rows] == [(i // 2) % 3 for i in range(12)]
    assert all(r["num_workers"] == 3 for r in rows)
    assert len({r["pid"] for r in rows}) == 3 and os.getpid() not in {r["pid"] for r in rows}
    seeds = {r["id"]: r["seed"] for r in rows}
    base = seeds[0]
    assert seeds == {0: base, 1: base + 1, 2: base + 2}
    # the base seed is the first draw of the loader's generator after manual_seed, as PyTorch
    pydl.manual_seed(3)
    assert base == int(pydl.random.generator().integers(0, 2 ** 63, dtype=np.int64))
    # each worker's first sample draws the first value of generators seeded as PyTorch's worker
    for wid in range(3):
        first = rows[2 * wid]
        pydl.manual_seed(base + wid)
        assert first["pydl"] == pytest.approx(pydl.rand(1).item())
        np.random.seed(pydl.data._worker.generate_numpy_seed(base, wid))
        assert first["numpy"] == np.random.rand()
        import random

        random.seed(base + wid)
        assert first["random"] == random.random()


def test_random_draws_in_workers_are_reproducible_and_differ_between_workers():
    ds = H.WhoAmI(8)

    def run():
        pydl.manual_seed(11)
        return [v for b in DataLoader(ds, batch_size=1, num_workers=2) for v in b["pydl"].tolist()]

    a, b = run(), run()
    assert a == b
    assert len(set(a)) == len(a)  # the two workers do not repeat each other's stream


def test_loader_generator_gives_base_seed():
    ds = H.WhoAmI(2)
    g = pydl.Generator().manual_seed(5)
    seed0 = next(iter(DataLoader(ds, batch_size=2, num_workers=1, generator=g)))["seed"][0]
    expected = pydl.Generator().manual_seed(5).rng.integers(0, 2 ** 63, dtype=np.int64)
    assert int(seed0) == int(expected)


def test_worker_init_fn_runs_in_each_worker_with_its_id():
    got = list(DataLoader(H.InitRecorder(), batch_size=1, num_workers=2,
                          worker_init_fn=H.record_init))
    by = [b["init_by"] for b in got]
    assert [[int(x) for x in pair] for pair in by] == [[0, 0], [1, 1], [0, 0], [1, 1]]


def test_worker_init_fn_error_names_worker():
    with pytest.raises(RuntimeError, match=r"(?s)DataLoader worker process 0 \(worker_init_fn\)"
                                           r".*init of worker 0 failed"):
        list(DataLoader(H.InitRecorder(), batch_size=1, num_workers=2,
                        worker_init_fn=H.failing_init))


def test_exception_in_worker_raises_with_worker_and_traceback():
    loader = DataLoader(H.RaisesAt(10, bad=7), batch_size=2, num_workers=2)
    it = iter(loader)
    got = [next(it)[0].item() for _ in range(3)]
    assert got == [0.0, 2.0, 4.0]
    with pytest.raises(ValueError) as info:
        next(it)
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process 1" in msg  # batch 3 -> worker 1
    assert "sample 7 is broken" in msg and "loader_workers_helpers.py" in msg
    assert "Traceback (most recent call last)" in msg
    assert multiprocessing.active_children() == []  # stopped at once, no hang
    with pytest.raises(StopIteration):
        next(it)


def test_key_error_message_stays_readable():
    with pytest.raises(KeyError) as info:
        list(DataLoader(H.RaisesAt(4, bad=0, exc=KeyError), batch_size=2, num_workers=1))
    assert "\\n" not in str(info.value) and "sample 0 is broken" in str(info.value)


@pytest.mark.parametrize("code,what", [(3, "exited unexpectedly with exit code 3"),
                                       (None, "was killed by signal SIGKILL")])
def test_dead_worker_raises_naming_it(code, what):
    loader = DataLoader(H.ExitsAt(12, bad=5, code=code), batch_size=2, num_workers=2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"DataLoader worker 0 \(pid \d+\) {what}"):
        list(loader)
    assert time.monotonic() - start < 10


def test_timeout_raises_without_waiting_for_the_worker():
    loader = DataLoader(H.Sleeps(4, 30.0), batch_size=1, num_workers=1, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
        list(loader)
    assert time.monotonic() - start < 5


def test_unpicklable_batch_raises_instead_of_hanging():
    loader = DataLoader(H.Samples(4), batch_size=2, num_workers=1,
                        collate_fn=H.collate_with_lambda, timeout=20)
    with pytest.raises(Exception, match="sending the batch to the main process"):
        list(loader)


def test_break_then_garbage_collection_stops_workers():
    loader = DataLoader(_tensor_ds(40), batch_size=2, num_workers=2)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    # the fixture checks the workers are gone once the iterator is collected


def test_persistent_workers_are_reused_and_survive_a_break():
    ds = H.WhoAmI(9)
    loader = DataLoader(ds, batch_size=2, num_workers=2, persistent_workers=True)
    first = [b for b in loader]
    pids = {p for b in first for p in b["pid"].tolist()}
    for k, b in enumerate(loader):  # abandoned epoch: its prefetched batches must not leak
        if k == 1:
            break
    again = [b for b in loader]
    assert [b["i"].tolist() for b in again] == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    assert {p for b in again for p in b["pid"].tolist()} == pids
    assert len(multiprocessing.active_children()) == 2
    it = loader._iterator
    del loader, it


def test_spawn_context_gives_the_same_batches():
    ds = H.Samples(9)
    ref = [b["y"].tolist() for b in DataLoader(ds, batch_size=2, shuffle=True,
                                               generator=pydl.Generator().manual_seed(1))]
    got = [b["y"].tolist() for b in DataLoader(ds, batch_size=2, shuffle=True, num_workers=2,
                                               multiprocessing_context="spawn",
                                               generator=pydl.Generator().manual_seed(1))]
    assert got == ref


def test_accepted_options_and_argument_errors():
    ds = _tensor_ds(4)
    loader = DataLoader(ds, batch_size=2, num_workers=1, pin_memory=True, prefetch_factor=4,
                        multiprocessing_context=multiprocessing.get_context("fork"))
    assert len(list(loader)) == 2 and loader.prefetch_factor == 4
    assert DataLoader(ds, num_workers=2).prefetch_factor == 2
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="valid start method"):
        DataLoader(ds, num_workers=1, multiprocessing_context="nope")
    with pytest.raises(TypeError, match="valid context object"):
        DataLoader(ds, num_workers=1, multiprocessing_context=3)
    with pytest.raises(ValueError, match="multi-process loading"):
        DataLoader(ds, multiprocessing_context="fork")
    with pytest.raises(ValueError, match="timeout option should be non-negative"):
        DataLoader(ds, num_workers=1, timeout=-1)
