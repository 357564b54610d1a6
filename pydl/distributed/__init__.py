"""``pydl.distributed``: data-parallel training over several processes (``torch.distributed``'s
names), on MPI for CPU tensors and NCCL (through CuPy) for CUDA tensors.

Launch one process per rank with the MPI launcher; rank and world size come from it::

    mpirun -n 2 python train.py            # pip install 'pydl-nn[distributed]' provides mpirun

    import pydl.distributed as dist
    dist.init_process_group("mpi")         # "nccl" for CUDA tensors, one GPU per rank
    model = pydl.nn.parallel.DistributedDataParallel(model)
    sampler = pydl.data.DistributedSampler(dataset)

``mpirun -n 2 pydl train --distributed`` does all of this for the reference models.

Collectives (``all_reduce``, ``broadcast``, ``all_gather``, ``reduce_scatter``, ``barrier`` and
their ``_into_tensor``/``_tensor``/``_object`` variants) work in place, take ``async_op=True``
for a ``Work`` handle, and check that every rank called them alike (same collective, dtype,
shape, root): a mismatch raises the same ``RuntimeError`` on every rank instead of hanging.

Faults. Every wait polls non-blocking MPI requests (or CUDA events) against the group's
``timeout`` and watches a private control channel. A rank that dies of an uncaught exception
tells the others before ``MPI_Abort`` ends the job, so a rank blocked in a collective raises
``PeerFailedError`` naming the failed rank and its exception; a rank that never joins a
collective makes the others raise ``DistributedError`` after the timeout; a rank killed outright
makes the launcher end the job. Nothing waits forever.

Cost model: a ResNet-50-sized gradient over N nodes
------------------------------------------------------
ResNet-50 has 25.6 M parameters: S = 102 MB of float32 gradient per step. Ring all-reduce (what
NCCL and MPI use for large messages) sends, and receives, 2(N-1)/N * S per node in 2(N-1) steps,
so T = 2(N-1)/N * S / B + 2(N-1) * a for link bandwidth B and per-message latency a (~25 us
over TCP; negligible here next to the bandwidth term, except for small buckets at large N):

    N     bytes sent per node   T at 10 Gb/s   T at 100 Gb/s
    2          102 MB              82 ms          8.2 ms
    4          153 MB             123 ms         12.3 ms
    8          179 MB             143 ms         14.3 ms
    64         201 MB             161 ms         16.1 ms
    N->inf     204 MB             164 ms         16.4 ms

The per-node traffic saturates at 2S: adding nodes does not make the all-reduce slower, only
the latency term grows (2(N-1) * a = 3 ms at N = 64).

When overlap hides it. DDP starts each 25 MB bucket's all-reduce while backward is still
computing earlier layers, so communication is hidden when T <= the backward time, except the
last bucket (the first layers' gradients, ready only at the end of backward), whose all-reduce
is always exposed: about T * 25/102. ResNet-50's backward is ~16 GFLOP per image (twice the
forward's ~8 GFLOP), so with 32 images per rank ~0.5 TFLOP per step:

* a CPU node at 0.5-1 TFLOP/s takes 0.5-1 s per backward: even 10 Gb/s (164 ms) hides fully;
* a GPU at an effective 10 TFLOP/s takes ~50 ms: 100 Gb/s hides, 10 Gb/s leaves ~110 ms
  exposed (a 3x slower step);
* a GPU at an effective 100 TFLOP/s takes ~5 ms: even 100 Gb/s leaves ~11 ms exposed. The
  remedies are the usual ones: larger per-rank batches (more compute per byte), float16/bfloat16
  gradients (half the bytes), gradient accumulation with ``no_sync()`` (one all-reduce per k
  micro-batches), or a faster interconnect (NVLink, 200-400 Gb/s InfiniBand).

On one shared-memory node (this repository's CI machine), benchmarks/distributed.py measures
the step times, the exposed communication and the all-reduce bandwidth curve.
"""
from pydl.distributed._core import (ReduceOp, Work, all_gather, all_gather_into_tensor,
                                    all_gather_object, all_reduce, barrier, broadcast,
                                    broadcast_object_list, destroy_process_group, get_backend,
                                    get_node_local_rank, get_rank, get_world_size,
                                    init_process_group, is_available, is_initialized,
                                    is_mpi_available, is_nccl_available, reduce_scatter,
                                    reduce_scatter_tensor)
from pydl.distributed._launcher import DistributedError, PeerFailedError

__all__ = ["DistributedError", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
           "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object_list",
           "destroy_process_group", "get_backend", "get_node_local_rank", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized",
           "is_mpi_available", "is_nccl_available", "PeerFailedError", "reduce_scatter",
           "reduce_scatter_tensor"]
