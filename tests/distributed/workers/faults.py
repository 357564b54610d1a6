"""Failure modes; argv: mode, collective timeout in seconds.

raise    rank 1 raises while rank 0 waits in all_reduce: rank 0 must stop with an error naming
         rank 1's exception (its excepthook told the peers before aborting the job).
timeout  rank 1 never calls the collective (it sleeps): rank 0's all_reduce raises
         DistributedError when the timeout passes.
kill     rank 1 dies of SIGKILL while rank 0 waits: the launcher ends the job, or (auto-cleanup
         disabled) rank 0's collective times out.
shapes   ranks build DDP over models whose parameter shapes differ: every rank raises at
         construction; the errors are recorded.
"""
import os
import signal
import time

from _common import close, dist, init, np, pydl, sys, tensor, write

from pydl import nn

mode, timeout = sys.argv[1], float(sys.argv[2])
rank, world = init(timeout_s=timeout)
t = tensor(np.ones(1000))
if mode == "raise":
    if rank == 1:
        time.sleep(0.5)
        raise ValueError("boom on rank 1")
    dist.all_reduce(t)
elif mode == "timeout":
    if rank == 1:
        time.sleep(timeout * 10)
    else:
        dist.all_reduce(t)
elif mode == "kill":
    if rank == 1:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(t)
elif mode == "shapes":
    model = nn.Sequential(nn.Linear(4, 3 + rank % 2), nn.ReLU())
    try:
        nn.parallel.DistributedDataParallel(model)
        err = None
    except RuntimeError as e:
        err = str(e)
    close({"rank": rank, "error": err})
    sys.exit(0)
write({"rank": rank, "finished": True})
