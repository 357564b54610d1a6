"""Random number generation. ``pydl.manual_seed(s)`` makes every draw in pydl reproducible:
initialisation, dropout, noise, data shuffling and augmentation all draw from the global
generator here (or from an explicit ``pydl.Generator`` passed to them)."""
from __future__ import annotations

from typing import Optional

import numpy as np

_global = np.random.default_rng()
_seed: Optional[int] = None


class Generator:
    """An independent random stream, like ``torch.Generator``: ``Generator().manual_seed(0)``."""

    def __init__(self, device: str = "cpu"):
        self._rng = np.random.default_rng()
        self._seed: Optional[int] = None

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> Optional[int]:
        return self._seed

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state


def manual_seed(seed: int) -> None:
    """Seed pydl's global generator (and thereby every random draw pydl makes)."""
    global _global, _seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _seed = int(seed)
    _global = np.random.default_rng(_seed)


seed = manual_seed


def initial_seed() -> Optional[int]:
    return _seed


def generator(gen: Optional[Generator] = None) -> np.random.Generator:
    """The NumPy generator to draw from: ``gen``'s when given, else the global one."""
    if gen is None:
        return _global
    if isinstance(gen, Generator):
        return gen.rng
    if isinstance(gen, np.random.Generator):
        return gen
    raise TypeError(f"expected a pydl.Generator, got {type(gen).__name__}")


def get_rng_state() -> dict:
    return _global.bit_generator.state


def set_rng_state(state: dict) -> None:
    _global.bit_generator.state = state
