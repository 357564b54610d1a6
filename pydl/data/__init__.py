"""``pydl.data``: datasets, samplers, ``DataLoader`` (as ``torch.utils.data``), image transforms
(``pydl.data.transforms``) and datasets (``pydl.data.datasets``: the bundled 8x8 digits, MNIST /
Fashion-MNIST / CIFAR-10 readers). ``pydl.utils.data`` is this same package under PyTorch's
path."""
from pydl.data import datasets, transforms
from pydl.data.dataloader import DataLoader, WorkerInfo, default_collate, get_worker_info
from pydl.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, KFold,
                               Subset, TensorDataset, random_split)
from pydl.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                               SubsetRandomSampler)

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
           "IterableDataset", "KFold", "RandomSampler",
           "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "WorkerInfo", "datasets", "default_collate", "get_worker_info", "random_split",
           "transforms"]
