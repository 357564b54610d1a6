"""A world of one (plain python, no launcher): SyncBatchNorm's forward and running statistics
against BatchNorm1d, its gradient through gradcheck, the NCCL launcher part, argument errors."""
from _common import close, dist, init, np, pydl, tensor

from pydl import nn
from pydl.autograd import gradcheck

errors = {}
try:
    dist.init_process_group("gloo")
except ValueError as e:
    errors["backend"] = str(e)
rank, world = init()
try:
    dist.init_process_group("mpi")
except RuntimeError as e:
    errors["twice"] = str(e)
rng = np.random.default_rng(0)
x = pydl.tensor(rng.standard_normal((4, 3, 5)), requires_grad=True)
sbn, bn = nn.SyncBatchNorm(3, dtype=pydl.float64), nn.BatchNorm1d(3, dtype=pydl.float64)
for m in (sbn, bn):
    m.weight._data[:] = [1.5, -0.5, 2.0]
    m.bias._data[:] = [0.1, 0.2, 0.3]
forward_diff = float(np.abs(sbn(x)._data - bn(x)._data).max())
running_diff = max(float(np.abs(sbn.running_mean._data - bn.running_mean._data).max()),
                   float(np.abs(sbn.running_var._data - bn.running_var._data).max()))
gc = gradcheck(lambda inp, w, b: sbn(inp), (x, sbn.weight, sbn.bias))

from _fake_nccl import FakeNccl  # noqa: E402

from pydl.distributed._core import _default_pg  # noqa: E402
from pydl.distributed._nccl import NCCLBackend  # noqa: E402

be = NCCLBackend(_default_pg().world, 60.0, nccl_module=FakeNccl)
close({"rank": rank, "world": world, "gradcheck": bool(gc), "forward_diff": forward_diff,
       "running_diff": running_diff, "nccl_uid_same": len(be.comm.uid) == 128,
       "errors": errors})
