"""``pydl.distributed``: data-parallel training over several processes (``torch.distributed``'s
names), on MPI for CPU tensors and NCCL (through CuPy) for CUDA tensors.

Launch one process per rank with the MPI launcher; rank and world size come from it::

    mpirun -n 2 python train.py            # pip install 'pydl-nn[distributed]' provides mpirun

    import pydl.distributed as dist
    dist.init_process_group("mpi")         # "nccl" for CUDA tensors, one GPU per rank
    model = pydl.nn.parallel.DistributedDataParallel(model)
    sampler = pydl.data.DistributedSampler(dataset)

Collectives (``all_reduce``, ``broadcast``, ``all_gather``, ``reduce_scatter``, ``barrier`` and
their ``_into_tensor``/``_tensor``/``_object`` variants) work in place, take ``async_op=True``
for a ``Work`` handle, check that every rank called them alike, and raise ``DistributedError``
instead of hanging when a peer fails or the timeout passes. docs/distributed.md has the design,
the fault model and a cost model of gradient all-reduce over N nodes.
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
