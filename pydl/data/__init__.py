"""``pydl.data``: datasets, samplers, ``DataLoader`` (as ``torch.utils.data``), image transforms
(``pydl.data.transforms``) and datasets (``pydl.data.datasets``: the bundled 8x8 digits, MNIST /
Fashion-MNIST / CIFAR-10 readers)."""
from pydl.data import datasets, transforms  # noqa: F401
from pydl.data.dataloader import DataLoader, default_collate  # noqa: F401
from pydl.data.dataset import (ConcatDataset, Dataset, KFold, Subset, TensorDataset,  # noqa: F401
                               random_split)
from pydl.data.sampler import (BatchSampler, RandomSampler, Sampler,  # noqa: F401
                               SequentialSampler, SubsetRandomSampler)
