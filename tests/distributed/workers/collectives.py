"""Every collective against a NumPy reference computed here from all ranks' inputs (each rank can
make every rank's input: they are seeded by rank), for every dtype, zero-size and
non-contiguous tensors; plus the argument-mismatch errors and DistributedSampler coverage."""
from _common import close, dist, init, np, pydl, tensor

rank, world = init()
DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
# (40, 31): over 1 KiB in every dtype, so the large-message path runs too (small ones travel in
# one all-gather and are reduced locally, see _core._small_all_reduce)
SHAPES = [(0,), (1,), (7,), (2, 0, 3), (3, 5), (40, 31)]
failures, checks = [], 0


def data(r, dtype, shape, salt=0):
    g = np.random.default_rng([r, salt, len(shape)] + list(shape))
    if dtype == "bool":
        return g.random(shape) < 0.5
    if dtype.startswith("float"):
        return g.standard_normal(shape).astype(dtype)
    lo = 0 if dtype == "uint8" else -3
    return g.integers(lo, 4, size=shape).astype(dtype)


def check(name, got, want, dtype):
    global checks
    checks += 1
    tol = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-13}.get(dtype, 0)
    got = np.asarray(got)
    want = np.asarray(want)
    ok = got.shape == want.shape and got.dtype == np.dtype(dtype) and (
        np.array_equal(got, want) if tol == 0 else
        np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol))
    if not ok:
        failures.append(f"{name} {dtype}: got {got.dtype} {got.ravel()[:6].tolist()} "
                        f"want {want.dtype} {want.ravel()[:6].tolist()}")


def reference(op, xs, dtype):
    x = np.stack([a.astype(np.float64) if dtype != "bool" else a for a in xs])
    if dtype == "bool":
        r = {"SUM": x.any(0), "MAX": x.any(0), "MIN": x.all(0), "PRODUCT": x.all(0)}[op]
        return r
    if op == "SUM":
        r = x.sum(0)
    elif op == "AVG":
        s = x.sum(0)
        r = s / len(xs) if dtype.startswith("float") else np.trunc(s / len(xs))
    elif op == "MAX":
        r = x.max(0)
    elif op == "MIN":
        r = x.min(0)
    else:
        r = x.prod(0)
    return r.astype(dtype)


for dtype in DTYPES:
    for shape in SHAPES:
        xs = [data(r, dtype, shape) for r in range(world)]
        ops = ["SUM", "MAX", "MIN", "PRODUCT"] + ([] if dtype == "bool" else ["AVG"])
        for op in ops:
            t = tensor(xs[rank].copy())
            dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
            check(f"all_reduce {op} {shape}", t._data, reference(op, xs, dtype), dtype)
        # non-contiguous: a transposed view, reduced in place through its base
        if len(shape) == 2:
            base = xs[rank].copy()
            view = pydl.Tensor._wrap(base.T)
            work = dist.all_reduce(view, op=dist.ReduceOp.SUM, async_op=True)
            work.wait()
            check(f"all_reduce transposed {shape}", base, reference("SUM", xs, dtype), dtype)
            check("work.is_completed", np.array(work.is_completed()), np.array(True), "bool")
        # broadcast from the last rank
        t = tensor(xs[rank].copy())
        dist.broadcast(t, src=world - 1)
        check(f"broadcast {shape}", t._data, xs[world - 1], dtype)
        # all_gather into a list, and into one tensor
        outs = [tensor(np.zeros(shape, dtype)) for _ in range(world)]
        dist.all_gather(outs, tensor(xs[rank]))
        for r in range(world):
            check(f"all_gather[{r}] {shape}", outs[r]._data, xs[r], dtype)
        flat = tensor(np.zeros((world,) + shape, dtype))
        dist.all_gather_into_tensor(flat, tensor(xs[rank]), async_op=True).wait()
        check(f"all_gather_into_tensor {shape}", flat._data, np.stack(xs), dtype)
        # reduce_scatter: rank r gets the sum over ranks of their r-th input
        ins = [[data(src, dtype, shape, salt=1 + dst) for dst in range(world)]
               for src in range(world)]
        out = tensor(np.zeros(shape, dtype))
        op = "MAX" if dtype == "bool" else "SUM"
        dist.reduce_scatter(out, [tensor(a) for a in ins[rank]], op=getattr(dist.ReduceOp, op))
        check(f"reduce_scatter {shape}", out._data,
              reference(op, [ins[src][rank] for src in range(world)], dtype), dtype)
        out2 = tensor(np.zeros(shape, dtype))
        dist.reduce_scatter_tensor(out2, tensor(np.stack(ins[rank])),
                                   op=getattr(dist.ReduceOp, op))
        check(f"reduce_scatter_tensor {shape}", out2._data,
              reference(op, [ins[src][rank] for src in range(world)], dtype), dtype)

dist.barrier()
objs = [None] * world
dist.all_gather_object(objs, {"rank": rank, "sq": rank * rank})
check("all_gather_object", np.array([o["sq"] for o in objs]),
      np.array([r * r for r in range(world)]), "int64")
lst = [rank, "x"] if rank == 0 else [None, None]
dist.broadcast_object_list(lst, src=0)
check("broadcast_object_list", np.array(lst[0]), np.array(0), "int64")

# Overflow is silent, as in MPI's own reductions (the ranks run with -W error), small or large.
for n in (4, 1000):
    big = tensor(np.full(n, 3e38, np.float32))
    dist.all_reduce(big)
    check(f"all_reduce overflow {n}", big._data, np.full(n, np.inf, np.float32), "float32")

# Arguments that differ across ranks raise the same error on every rank.
errors = {}
for name, arg in (("size", np.zeros(3 + rank, np.float32)),
                  ("dtype", np.zeros(3, np.float32 if rank == 0 else np.float64)),
                  ("large size", np.zeros(1000 + rank, np.float32)),
                  ("small vs large", np.zeros(3 if rank == 0 else 1000, np.float32))):
    try:
        dist.all_reduce(tensor(arg))
        errors[name] = None
    except RuntimeError as e:
        errors[name] = str(e)
try:  # different collectives at the same point
    if rank == 0:
        dist.all_reduce(tensor(np.zeros(2)))
    else:
        dist.broadcast(tensor(np.zeros(2)), src=0)
    errors["collective"] = None
except RuntimeError as e:
    errors["collective"] = str(e)
try:
    dist.broadcast(tensor(np.zeros(2)), src=rank)
    errors["root"] = None
except RuntimeError as e:
    errors["root"] = str(e)
try:
    dist.all_reduce(tensor(np.zeros(2, np.complex128)), op=dist.ReduceOp.MAX)
    errors["complex max"] = None
except TypeError as e:
    errors["complex max"] = str(e)

# DistributedSampler: the ranks together cover the data set once per epoch.
coverage = []
for n in (1, 7, 10, 11):
    for drop_last in (False, True):
        for shuffle in (False, True):
            for epoch in (0, 1):
                s = pydl.data.DistributedSampler(range(n), shuffle=shuffle, seed=3,
                                                  drop_last=drop_last)
                s.set_epoch(epoch)
                mine = list(s)
                every = [None] * world
                dist.all_gather_object(every, mine)
                coverage.append({"n": n, "drop_last": drop_last, "shuffle": shuffle,
                                 "epoch": epoch, "per_rank": every, "len": len(s)})

# The NCCL backend's launcher part (unique id from rank 0 over MPI), with a stand-in nccl module.
from _fake_nccl import FakeNccl  # noqa: E402

from pydl.distributed._core import _default_pg  # noqa: E402
from pydl.distributed._nccl import NCCLBackend  # noqa: E402

be = NCCLBackend(_default_pg().world, 60.0, nccl_module=FakeNccl)
uids = [None] * world
dist.all_gather_object(uids, be.comm.uid)
nccl = {"same_uid": all(u == uids[0] for u in uids), "uid_len": len(uids[0]),
        "ndev": be.comm.ndev, "rank": be.comm.rank}

close({"rank": rank, "nccl": nccl, "world": world, "failures": failures, "checks": checks, "errors": errors,
       "coverage": coverage})
