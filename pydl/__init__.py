"""pydl: PyTorch's API over small, readable C++ and CUDA kernels."""
from pydl import _C
from pydl._config import __version__, get_num_threads, set_num_threads, show_config
from pydl import cuda
