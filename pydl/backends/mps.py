"""``pydl.backends.mps``: Apple's Metal backend, which pydl does not have (as in a PyTorch
build without MPS: ``is_available()`` and ``is_built()`` are False)."""


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
