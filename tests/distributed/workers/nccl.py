"""The nccl backend on real GPUs (one per rank): collectives on CUDA tensors against NumPy, a
CPU tensor through the same group (MPI), and a DDP step == one process on the whole batch."""
from _common import close, dist, init, np, pydl, tensor

from pydl import nn

rank, world = init(backend="nccl")
failures = []


def cuda(a):
    return pydl.from_numpy(np.ascontiguousarray(a)).to("cuda")


for dtype in ("float16", "float32", "float64", "int32", "int64", "uint8", "int8"):
    xs = [np.arange(12).reshape(3, 4).astype(dtype) + r for r in range(world)]
    for op, ref in (("SUM", lambda a: a.sum(0)), ("MAX", lambda a: a.max(0)),
                    ("MIN", lambda a: a.min(0))):
        t = cuda(xs[rank])
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        want = ref(np.stack(xs).astype(np.float64)).astype(dtype)
        if not np.array_equal(t.cpu().numpy(), want):
            failures.append(f"all_reduce {op} {dtype}")
    t = cuda(xs[rank])
    dist.broadcast(t, src=world - 1)
    if not np.array_equal(t.cpu().numpy(), xs[world - 1]):
        failures.append(f"broadcast {dtype}")
    outs = [cuda(np.zeros((3, 4), dtype)) for _ in range(world)]
    dist.all_gather(outs, cuda(xs[rank]))
    if any(not np.array_equal(o.cpu().numpy(), xs[r]) for r, o in enumerate(outs)):
        failures.append(f"all_gather {dtype}")
c = tensor(np.full(3, float(rank)))
dist.all_reduce(c)
if not np.array_equal(c._data, np.full(3, float(sum(range(world))))):
    failures.append("cpu tensor through the nccl group")

pydl.set_default_dtype(pydl.float64)
pydl.manual_seed(0)
ref = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
model.load_state_dict(ref.state_dict())
model.to("cuda")
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((4 * world, 5)), rng.integers(0, 3, 4 * world)
nn.functional.cross_entropy(ref(pydl.from_numpy(X)), pydl.from_numpy(Y)).backward()
ddp = nn.parallel.DistributedDataParallel(model)
sl = slice(4 * rank, 4 * rank + 4)
nn.functional.cross_entropy(ddp(cuda(X[sl])), cuda(Y[sl])).backward()
diff = max(float(np.abs(p.grad.numpy() - q.grad.cpu().numpy()).max())
           for p, q in zip(ref.parameters(), model.parameters()))
close({"rank": rank, "failures": failures, "grad_diff": diff})
