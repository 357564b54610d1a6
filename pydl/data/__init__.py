"""``pydl.data``: datasets, samplers, ``DataLoader`` (as ``torch.utils.data``), image transforms
(``pydl.data.transforms``) and datasets (``pydl.data.datasets``: the bundled 8x8 digits, MNIST /
Fashion-MNIST / CIFAR-10 readers)."""
from pydl.data import datasets, transforms
from pydl.data.dataloader import DataLoader, default_collate
from pydl.data.dataset import ConcatDataset, Dataset, KFold, Subset, TensorDataset, random_split
from pydl.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                               SubsetRandomSampler)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "KFold", "RandomSampler",
           "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "datasets", "default_collate", "random_split", "transforms"]
