"""DistributedDataParallel against one process on the concatenated batch.

argv: dtype. Every rank also trains the single-process reference itself (on the whole global
batch) and reports the largest relative parameter difference after the steps, per scenario:
plain DDP with several buckets and a weight used twice; gradient accumulation with no_sync();
SyncBatchNorm (statistics over the global batch) against BatchNorm1d; find_unused_parameters."""
from _common import close, dist, init, np, pydl, sys, tensor

from pydl import nn

rank, world = init()
dtype = sys.argv[1]
pydl.set_default_dtype(getattr(pydl, dtype))
F = nn.functional
B = 5  # per-rank batch (odd: no power-of-two luck in the means)
STEPS = 4


class Net(nn.Module):
    """Linear -> tanh -> (norm) -> Linear, the first weight used twice (two gradient edges into
    one leaf), and an optional branch that forward never calls."""

    def __init__(self, norm=None, extra=False):
        super().__init__()
        self.fc1 = nn.Linear(6, 9)
        self.norm = norm
        self.fc2 = nn.Linear(9, 4)
        self.unused = nn.Linear(3, 3) if extra else None

    def forward(self, x):
        h = F.tanh(self.fc1(x)) + 0.1 * F.linear(x, self.fc1.weight)
        if self.norm is not None:
            h = self.norm(h)
        return self.fc2(h)


def make(norm_cls=None, extra=False, seed=0):
    pydl.manual_seed(seed)
    return Net(None if norm_cls is None else norm_cls(9), extra)


rng = np.random.default_rng(7)
X = rng.standard_normal((STEPS, 2, world * B, 6)).astype(dtype)
Y = rng.integers(0, 4, size=(STEPS, 2, world * B))
mine = slice(rank * B, (rank + 1) * B)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def compare(ref, model):
    diffs = [rel(p._data, q._data) for p, q in zip(ref.parameters(), model.parameters())]
    diffs += [rel(p._data, q._data) for p, q in zip(ref.buffers(), model.buffers())
              if p._data.dtype.kind == "f"]
    return max(diffs)


def train(model, micro, ddp=None):
    """STEPS optimizer steps, each over `micro` micro-batches (gradient accumulation)."""
    opt = pydl.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for s in range(STEPS):
        opt.zero_grad()
        for k in range(micro):
            x, y = X[s, k], Y[s, k]
            if ddp is None:
                F.cross_entropy(model(tensor(x)), tensor(y)).backward()
            else:
                ctx = ddp.no_sync() if k < micro - 1 else _null()
                with ctx:
                    F.cross_entropy(ddp(tensor(x[mine])), tensor(y[mine])).backward()
        opt.step()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


result = {"rank": rank, "world": world}
# 1. plain: a tiny bucket cap gives several buckets; ranks start from different weights (the
#    construction broadcast must make them equal).
ref = make()
train(ref, 1)
model = make(seed=0 if rank == 0 else 100 + rank)
ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4)
result["buckets"] = len(ddp._buckets)
train(model, 1, ddp)
result["plain"] = compare(ref, model)
# 2. no_sync: two micro-batches per step, the first without all-reduce
ref = make()
train(ref, 2)
model = make()
train(model, 2, nn.parallel.DistributedDataParallel(model))
result["no_sync"] = compare(ref, model)
# 3. SyncBatchNorm over the ranks == BatchNorm1d over the concatenated batch (running stats too)
ref = make(nn.BatchNorm1d)
train(ref, 1)
model = make(nn.SyncBatchNorm)
train(model, 1, nn.parallel.DistributedDataParallel(model))
result["sync_bn"] = compare(ref, model)
# 4. an unused branch: find_unused_parameters=True trains and leaves its grad None; without it,
#    the next forward names the parameter.
ref = make(extra=True)
train(ref, 1)
model = make(extra=True)
train(model, 1, nn.parallel.DistributedDataParallel(model, find_unused_parameters=True))
result["find_unused"] = compare(ref, model)
result["unused_grad_is_none"] = model.unused.weight.grad is None
model = make(extra=True)
ddp = nn.parallel.DistributedDataParallel(model)
try:
    train(model, 1, ddp)
    result["unused_error"] = None
except RuntimeError as e:
    result["unused_error"] = str(e)
close(result)
