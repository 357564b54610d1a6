"""``pydl.data``: datasets, samplers, ``DataLoader`` (as ``torch.utils.data``), image transforms
(``pydl.data.transforms``) and datasets (``pydl.data.datasets``: the bundled 8x8 digits, MNIST /
Fashion-MNIST / CIFAR-10 readers). ``pydl.utils.data`` is this same package under PyTorch's
path."""
from pydl.data import datasets, transforms
from pydl.data.dataloader import (DataLoader, WorkerInfo, default_collate, default_convert,
                                   get_worker_info)
from pydl.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, KFold,
                               StackDataset, Subset, TensorDataset, random_split)
from pydl.data.distributed import DistributedSampler
from pydl.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                               SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
           "DistributedSampler",
           "IterableDataset", "KFold", "RandomSampler",
           "Sampler", "SequentialSampler", "StackDataset", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "datasets", "default_collate",
           "default_convert", "get_worker_info", "random_split", "transforms"]
