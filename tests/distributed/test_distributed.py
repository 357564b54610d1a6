"""pydl.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler across real
processes (``mpirun -n 2`` and ``-n 3``; see conftest.py), plus the single-process parts.

The subprocess timeouts only guard against a hang (a test that hangs fails instead of stalling
the suite); nothing here asserts on time."""
import math

import numpy as np
import pytest


def _ok(proc):
    assert proc.returncode == 0, f"mpirun exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


# -- collectives -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3])
def test_collectives_every_dtype_and_zero_size(mpirun, n):
    proc, outs = mpirun(n, "collectives.py")
    _ok(proc)
    for r, out in enumerate(outs):
        assert out["rank"] == r and out["world"] == n
        assert out["failures"] == []
        assert out["checks"] > 400
        errs = out["errors"]
        # a size, dtype or root that differs across ranks raises on every rank, naming them all
        assert "rank 0: all_reduce of float32 (3,)" in errs["size"]
        assert "rank 1: all_reduce of float32 (4,)" in errs["size"]
        assert "float64 (3,)" in errs["dtype"] and "float32 (3,)" in errs["dtype"]
        assert "root=0" in errs["root"] and "root=1" in errs["root"]
        assert "(1000,)" in errs["large size"] and "(1001,)" in errs["large size"]
        assert "(3,)" in errs["small vs large"] and "(1000,)" in errs["small vs large"]
        assert "rank 0: all_reduce" in errs["collective"]
        assert "rank 1: broadcast" in errs["collective"]
        assert "complex" in errs["complex max"]
        # the NCCL backend's launcher part: one unique id, made on rank 0, on every rank
        assert out["nccl"] == {"same_uid": True, "uid_len": 128, "ndev": n, "rank": r}
    _check_sampler_coverage(outs[0]["coverage"], n)


def _check_sampler_coverage(cases, world):
    """DistributedSampler under the launcher: the ranks cover the data set once per epoch."""
    for case in cases:
        n, per_rank = case["n"], case["per_rank"]
        assert len(per_rank) == world
        assert {len(p) for p in per_rank} == {case["len"]}, case    # equal share per rank
        flat = sorted(i for p in per_rank for i in p)
        if case["drop_last"]:
            assert len(flat) == world * (n // world) and len(set(flat)) == len(flat), case
        else:
            assert set(flat) == set(range(n)), case                  # everything, once...
            assert len(flat) == world * math.ceil(n / world), case   # ...plus the padding


# -- DistributedDataParallel -------------------------------------------------------------------

@pytest.mark.parametrize("n,dtype,tol", [(2, "float64", 1e-14), (2, "float32", 1e-6),
                                         (3, "float64", 1e-14)])
def test_ddp_matches_one_process_on_the_concatenated_batch(mpirun, n, dtype, tol):
    proc, outs = mpirun(n, "ddp.py", dtype)
    _ok(proc)
    for out in outs:
        assert out["buckets"] >= 2
        for scenario in ("plain", "no_sync", "sync_bn", "find_unused"):
            assert out[scenario] <= tol, (scenario, out[scenario])
        assert out["unused_grad_is_none"]
        assert "unused.weight, unused.bias" in out["unused_error"]
        assert "find_unused_parameters=True" in out["unused_error"]


# -- faults ---------------------------------------------------------------------------------------

def test_a_rank_that_raises_stops_the_others_with_its_error(mpirun):
    # The collective timeout is long (600 s): what ends rank 0's wait is rank 1's notice.
    proc, outs = mpirun(2, "faults.py", "raise", 600, timeout=120)
    assert proc.returncode != 0
    assert "ValueError: boom on rank 1" in proc.stderr
    assert "PeerFailedError" in proc.stderr
    assert "rank 1 failed: ValueError: boom on rank 1" in proc.stderr
    assert outs == [None, None]


def test_a_collective_a_peer_never_joins_times_out(mpirun):
    proc, outs = mpirun(2, "faults.py", "timeout", 2, timeout=120)
    assert proc.returncode != 0
    assert "DistributedError" in proc.stderr
    assert "all_reduce did not complete within 2 s" in proc.stderr


def test_a_killed_rank_ends_the_job(mpirun):
    # A rank killed outright cannot warn anyone: the launcher ends the job (the survivors'
    # collective timeout, tested above, covers launchers that do not).
    proc, outs = mpirun(2, "faults.py", "kill", 600, timeout=120)
    assert proc.returncode != 0
    assert outs == [None, None]


def test_ddp_refuses_parameters_that_differ_across_ranks(mpirun):
    proc, outs = mpirun(2, "faults.py", "shapes", 60)
    _ok(proc)
    for out in outs:
        assert "'0.weight' is float32 of shape (4, 4) on rank 1" in out["error"]
        assert "(3, 4) on rank 0" in out["error"]


# -- one process (a world of one, no launcher) ------------------------------------------------

def test_world_of_one_and_sync_batchnorm_gradcheck(python_worker):
    proc, out = python_worker("single.py")
    _ok(proc)
    assert out["world"] == 1 and out["rank"] == 0
    assert out["gradcheck"] is True
    assert out["forward_diff"] < 1e-13 and out["running_diff"] < 1e-13
    assert out["nccl_uid_same"] is True
    assert out["errors"]["twice"].startswith("trying to initialize")
    assert "backend" in out["errors"]["backend"]


def test_distributed_sampler_indices_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    from pydl.data import DistributedSampler

    for n in (0, 1, 2, 5, 7, 10, 13):
        for replicas in (1, 2, 3, 4):
            for drop_last in (False, True):
                for rank in range(replicas):
                    want = list(TorchSampler(range(n), replicas, rank, shuffle=False,
                                             drop_last=drop_last))
                    s = DistributedSampler(range(n), replicas, rank, shuffle=False,
                                           drop_last=drop_last)
                    assert list(s) == want, (n, replicas, rank, drop_last)
                    assert len(s) == len(want)
    del torch


def test_distributed_sampler_shuffles_by_seed_and_epoch():
    from pydl.data import DistributedSampler

    def epoch_indices(epoch, seed=0):
        out = []
        for rank in range(3):
            s = DistributedSampler(range(11), 3, rank, seed=seed)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    a, b = epoch_indices(0), epoch_indices(1)
    assert a == epoch_indices(0)                    # same seed and epoch: same order
    assert a != b and a != epoch_indices(0, seed=1)
    for parts in (a, b):
        flat = [i for p in parts for i in p]
        assert set(flat) == set(range(11)) and len(flat) == 12   # one padded index
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), 0, 0)


def test_post_accumulate_grad_hook_fires_once_after_all_contributions():
    import pydl

    w = pydl.tensor(np.ones(3), requires_grad=True)
    b = pydl.tensor(np.ones(3), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(("w", p.grad.numpy().copy())))
    handle = b.register_post_accumulate_grad_hook(lambda p: seen.append(("b", 0)))
    (w * 2 + w * w + b).sum().backward()     # two edges into w: one call, after both
    assert [k for k, _ in seen].count("w") == 1
    np.testing.assert_array_equal(dict(seen)["w"], np.full(3, 4.0))
    handle.remove()
    seen.clear()
    (w * 3 + b).sum().backward()
    assert [k for k, _ in seen] == ["w"]
    np.testing.assert_array_equal(seen[0][1], np.full(3, 7.0))   # accumulated
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)
    # autograd.grad accumulates nothing: no call
    seen.clear()
    pydl.autograd.grad((w * 2).sum(), w)
    assert seen == []


def test_collectives_need_a_process_group():
    import pydl
    import pydl.distributed as dist

    if dist.is_initialized():  # pragma: no cover - nothing in the suite initialises one
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.all_reduce(pydl.zeros(2))
    with pytest.raises(ValueError, match="init_process_group"):
        pydl.nn.parallel.DistributedDataParallel(pydl.nn.Linear(2, 2))


# -- pydl train --distributed --------------------------------------------------------------------

def test_pydl_train_distributed(mpirun, tmp_path):
    proc, outs = mpirun(2, "cli_train.py", "--distributed", "--epochs", "2", "--subset", "300",
                        "--no-progress", "--val-fraction", "0.2", "--out", "run")
    _ok(proc)
    assert [o["rc"] for o in outs] == [0, 0]
    assert "2 ranks, 32 samples per rank per step (global batch 64)" in proc.stdout
    assert proc.stdout.count("test accuracy:") == 1          # rank 0 alone prints
    assert {"checkpoint.safetensors", "model.safetensors", "results.json"} <= set(
        outs[0]["files"])
    import json

    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["epochs"] == 2 and 0.0 <= res["test_accuracy"] <= 1.0
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist["history"]["train_loss"]) == 2
