"""Datasets for tests/data/test_dataloader_workers.py. They live in a module of their own, imported
by this name with its folder on sys.path, so that spawned workers can unpickle them."""
import os
import time

import numpy as np

import pydl
from pydl.data import Dataset, IterableDataset, get_worker_info


class Samples(Dataset):
    """Sample i is {"x": [i, i], "y": i}; no batch path, so workers fetch one by one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full((2,), i, dtype=np.float32), "y": int(i)}


class WhoAmI(Dataset):
    """Sample i tells which process and worker made it, and one draw of each generator."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        import random

        return {"i": int(i), "pid": os.getpid(), "id": -1 if info is None else info.id,
                "seed": -1 if info is None else info.seed,
                "num_workers": 0 if info is None else info.num_workers,
                "pydl": float(pydl.rand(1).item()), "numpy": float(np.random.rand()),
                "random": random.random()}


class RaisesAt(Dataset):
    def __init__(self, n, bad, exc=ValueError):
        self.n, self.bad, self.exc = n, bad, exc

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise self.exc(f"sample {i} is broken")
        return np.float32(i)


class ExitsAt(Dataset):
    """os._exit(code) at sample `bad` (code None: SIGKILL itself)."""

    def __init__(self, n, bad, code=3):
        self.n, self.bad, self.code = n, bad, code

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            if self.code is None:
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(self.code)
        return np.float32(i)


class Sleeps(Dataset):
    def __init__(self, n, seconds):
        self.n, self.seconds = n, seconds

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        time.sleep(self.seconds)
        return np.float32(i)




def collate_with_lambda(batch):
    return {"f": lambda: None, "n": len(batch)}


def record_init(worker_id):
    info = get_worker_info()
    info.dataset.init_by = (worker_id, info.id)


class InitRecorder(Dataset):
    init_by = None

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"i": i, "init_by": self.init_by}


def failing_init(worker_id):
    raise RuntimeError(f"init of worker {worker_id} failed")


class Kernels(Dataset):
    """Each sample runs pydl's threaded C++ kernels (GEMM, conv) inside the worker."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import pydl.nn.functional as F

        a = pydl.ones(256, 256)
        x = pydl.ones(1, 3, 32, 32)
        w = pydl.ones(8, 3, 3, 3)
        return {"mm": (a @ a)[0, 0].item(), "conv": F.conv2d(x, w)[0, 0, 5, 5].item()}


class Stream(IterableDataset):
    """0..n-1; with workers, each worker yields its share (i % num_workers == id) unless
    `shard` is False (then every worker yields everything, as PyTorch warns)."""

    def __init__(self, n, shard=True):
        self.n, self.shard = n, shard

    def __len__(self):
        return self.n

    def __iter__(self):
        info = get_worker_info()
        for i in range(self.n):
            if not self.shard or info is None or i % info.num_workers == info.id:
                yield {"i": i, "worker": -1 if info is None else info.id}
