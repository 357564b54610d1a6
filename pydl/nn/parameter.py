"""``pydl.nn.parameter.Parameter`` (the class lives in module.py beside Module)."""
from pydl.nn.module import Parameter  # noqa: F401
