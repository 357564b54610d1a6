"""``pydl.nn``: modules, layers, losses, initialisation (as ``torch.nn``)."""
from pydl.nn import functional, init  # noqa: F401
from pydl.nn.containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from pydl.nn.module import Module, Parameter  # noqa: F401
from pydl.nn import utils  # noqa: F401,E402
