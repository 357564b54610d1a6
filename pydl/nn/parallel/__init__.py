"""``pydl.nn.parallel``: ``DistributedDataParallel`` (as ``torch.nn.parallel``); the process
group and collectives are in ``pydl.distributed``."""
from pydl.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
