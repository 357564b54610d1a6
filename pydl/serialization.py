"""``pydl.save`` / ``pydl.load``: checkpoints in the safetensors format, and PyTorch's own
``.pt`` / ``.pth`` format (``pydl/serialization_pt.py``).

``pydl.save(obj, "x.pt")`` (or ``.pth``) writes torch.save's zip format, which
``torch.load(path, weights_only=True)`` reads; any other name gets safetensors (below).
``pydl.load`` tells the formats apart by their first bytes, and reads a torch.save file with
``torch.load(weights_only=True)`` semantics: tensors, OrderedDict, dicts, lists, tuples and
primitive types only, never code. Neither format can hold a whole ``Module``: saving one raises
an error that points to ``state_dict()``.

What can be saved: nested dicts, lists and tuples whose leaves are pydl Tensors, NumPy arrays,
ints, floats, bools, strings and None -- model, optimizer and scheduler state dicts, training
history, configuration. Dict keys may be strings, ints, floats, bools or None (optimizer state
is keyed by int).

The file is a standard safetensors file: every tensor is stored under a readable name (its path
in the object, joined with dots: ``model.conv1.weight``), and the structure around the tensors
(plus a CRC-32 of each tensor's bytes) is JSON in the header's ``__metadata__``. Loading parses
JSON and raw little-endian arrays only -- no pickle -- so opening a file never runs code from
it. A safetensors file written by another program (no pydl structure) loads as a flat dict of
name -> Tensor.

Writes are atomic: the bytes go to a temporary file in the target's folder, are flushed to disk
(``fsync``), and the temporary file is renamed over the target. A crash or exception during
``save`` leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from typing import Any, Dict, Optional

import numpy as np

from pydl.tensor import Tensor

_FORMAT = "pydl.checkpoint"
_FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A file that is not a readable pydl/safetensors checkpoint (corrupt, truncated, foreign)."""


# -- encoding -----------------------------------------------------------------------------------

class _Encoder:
    def __init__(self):
        self.arrays: Dict[str, np.ndarray] = {}

    def _name(self, path) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 1
        while name in self.arrays or name == "__metadata__":
            name, n = f"{base}#{n}", n + 1
        return name

    def _store(self, arr: np.ndarray, path) -> Dict[str, Any]:
        if arr.dtype.kind not in "biuf" or arr.dtype.byteorder == ">":
            raise TypeError(f"pydl.save: cannot store an array of dtype {arr.dtype} at "
                            f"{'.'.join(map(str, path)) or 'top level'}")
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            arr = arr.copy(order="C")
        name = self._name(path)
        self.arrays[name] = arr
        return {"name": name, "crc32": zlib.crc32(arr.data.cast("B") if arr.size else b"")}

    def encode(self, obj, path=()):
        from pydl.nn.module import Module

        if isinstance(obj, Module):
            from pydl.serialization_pt import module_error

            raise TypeError(module_error(obj))
        if isinstance(obj, Tensor):
            node = self._store(obj.numpy_view(), path)
            node["kind"] = "tensor"
            if obj.requires_grad:
                node["requires_grad"] = True
            return node
        if isinstance(obj, np.ndarray):
            node = self._store(obj, path)
            node["kind"] = "ndarray"
            return node
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            return float(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if isinstance(k, np.generic):
                    k = k.item()
                if k is not None and not isinstance(k, (str, int, float, bool)):
                    raise TypeError(f"pydl.save: dict keys must be str, int, float, bool or "
                                    f"None, got {type(k).__name__} at "
                                    f"{'.'.join(map(str, path)) or 'top level'}")
                items.append([k, self.encode(v, path + (k,))])
            return {"kind": "dict", "items": items}
        if isinstance(obj, (list, tuple)):
            values = [self.encode(v, path + (i,)) for i, v in enumerate(obj)]
            return {"kind": "tuple" if isinstance(obj, tuple) else "list", "items": values}
        raise TypeError(f"pydl.save: cannot save an object of type {type(obj).__name__} at "
                        f"{'.'.join(map(str, path)) or 'top level'} (supported: Tensor, ndarray, "
                        "int, float, bool, str, None, and dicts/lists/tuples of them)")


def _to_bytes(obj) -> bytes:
    import safetensors.numpy

    enc = _Encoder()
    tree = enc.encode(obj)
    metadata = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                "tree": json.dumps(tree, separators=(",", ":"))}
    return safetensors.numpy.save(enc.arrays, metadata=metadata)


def _write_atomic(path: str, data: bytes) -> None:
    target = os.path.abspath(path)
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                               dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Make the rename itself durable (POSIX; Windows has no directory fds).
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def save(obj, f) -> None:
    """Save ``obj`` (a state dict or any nesting of dicts/lists/tuples of tensors, arrays,
    numbers, strings) to ``f``, a path or a writable binary file object.

    A name ending in ``.pt`` or ``.pth`` gets PyTorch's zip format (``torch.load(f,
    weights_only=True)`` reads it; NumPy arrays are refused there, as torch refuses them), any
    other name safetensors. Writing to a path is atomic: the previous file stays intact if
    saving fails. A ``Module`` raises ``TypeError``: save ``model.state_dict()``."""
    from pydl import serialization_pt
    from pydl.nn.module import Module

    if isinstance(obj, Module):
        raise TypeError(serialization_pt.module_error(obj))
    # everything that can fail on bad input fails before any write
    data = serialization_pt.dumps_torch_zip(obj) if serialization_pt.is_pt_name(f) else \
        _to_bytes(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    _write_atomic(os.fspath(f), data)


# -- decoding -----------------------------------------------------------------------------------

def _describe(raw: bytes) -> str:
    if raw[:2] == b"PK":
        return "it is a zip archive (a NumPy .npz file?)"
    if raw[:1] == b"\x80":
        return ("it looks like a bare pickle (torch.save's legacy format before PyTorch 1.6, "
                "or pickle.dump); pydl reads torch.save's zip format only: re-save it with a "
                "recent PyTorch")
    if raw[:4] == b"\x89PNG":
        return "it is a PNG image"
    return f"it starts with bytes {raw[:8].hex()}"


def _parse_header(raw: bytes, where: str) -> dict:
    if len(raw) < 8:
        raise CheckpointError(f"pydl.load: {where} is not a checkpoint: only {len(raw)} bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8 or n == 0:
        raise CheckpointError(f"pydl.load: {where} is not a safetensors checkpoint, or is "
                              f"truncated: header length {n} but the file has {len(raw)} bytes; "
                              f"{_describe(raw)}")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"pydl.load: {where} has a corrupt safetensors header ({e}); "
                              f"{_describe(raw)}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"pydl.load: {where} has a corrupt safetensors header (not a "
                              "JSON object)")
    return header


class _Decoder:
    def __init__(self, arrays: Dict[str, np.ndarray], where: str, device):
        self.arrays = arrays
        self.where = where
        self.device = device

    def _array(self, node: dict) -> np.ndarray:
        name = node.get("name")
        if name not in self.arrays:
            raise CheckpointError(f"pydl.load: {self.where} is corrupt: tensor {name!r} is "
                                  "missing")
        arr = self.arrays[name]
        crc = zlib.crc32(arr.data.cast("B") if arr.size else b"")
        if crc != node.get("crc32"):
            raise CheckpointError(f"pydl.load: {self.where} is corrupt: the bytes of tensor "
                                  f"{name!r} fail their CRC-32 check")
        return arr

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):  # never produced by the encoder at a node position
            raise CheckpointError(f"pydl.load: {self.where} has a corrupt structure")
        kind = node.get("kind")
        if kind == "tensor":
            t = Tensor(self._array(node))
            if self.device is not None:
                t = t.to(self.device)
            if node.get("requires_grad"):
                t.requires_grad_(True)
            return t
        if kind == "ndarray":
            return self._array(node)
        if kind == "dict":
            return {k: self.decode(v) for k, v in node["items"]}
        if kind == "list":
            return [self.decode(v) for v in node["items"]]
        if kind == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        raise CheckpointError(f"pydl.load: {self.where} has a corrupt structure (node kind "
                              f"{kind!r})")


def load(f, map_location: Optional[Any] = None, *, weights_only: Optional[bool] = None,
         mmap: Optional[bool] = None):
    """Load what ``pydl.save`` or ``torch.save`` wrote to ``f`` (a path or a readable binary
    file object).

    Tensors come back as pydl Tensors (on ``map_location`` when given, e.g. ``"cpu"``; a dict
    maps the file's locations, as torch's), NumPy arrays as arrays, tuples as tuples, dict keys
    with their types. A plain safetensors file from another program loads as a flat
    ``{name: Tensor}`` dict. A torch.save file loads as ``torch.load(f, weights_only=True)``
    would: an allowlist of globals (tensors, parameters, OrderedDict, devices, dtypes), nothing
    else -- ``weights_only=False`` is refused, pydl never unpickles code. A file that is
    neither format, is truncated, or whose bytes changed raises ``CheckpointError`` (a
    ``ValueError``). ``mmap`` is accepted and ignored (the file is read into memory).
    """
    import safetensors
    import safetensors.numpy

    from pydl import serialization_pt

    if weights_only is False:
        raise ValueError("pydl.load: weights_only=False is not supported: pydl never unpickles "
                         "code or arbitrary objects; it loads tensors, dicts, lists, tuples and "
                         "primitive types (torch.load(weights_only=True) semantics)")
    if map_location is not None and callable(map_location) and \
            not isinstance(map_location, (str, dict)):
        raise TypeError("pydl.load: map_location must be a device, a string or a dict; "
                        "functions are not supported")
    if hasattr(f, "read"):
        raw, where = f.read(), repr(getattr(f, "name", "<file object>"))
    else:
        where = os.fspath(f)
        with open(where, "rb") as fh:
            raw = fh.read()
    if serialization_pt.is_torch_zip(raw):
        return serialization_pt.load_torch_zip(raw, where, map_location)
    header = _parse_header(raw, where)
    try:
        arrays = safetensors.numpy.load(raw)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        raise CheckpointError(f"pydl.load: {where} is a corrupt or truncated safetensors "
                              f"file: {e}") from None
    # Copy out of the file's buffer: the arrays must be writable and own their memory.
    arrays = {k: np.array(v) for k, v in arrays.items()}
    meta = header.get("__metadata__") or {}
    if meta.get("format") != _FORMAT:
        out = {}
        for k, v in arrays.items():
            t = Tensor(v)
            out[k] = t.to(map_location) if map_location is not None else t
        return out
    if meta.get("format_version") != _FORMAT_VERSION:
        raise CheckpointError(f"pydl.load: {where} has checkpoint format version "
                              f"{meta.get('format_version')!r}; this pydl reads version "
                              f"{_FORMAT_VERSION}")
    try:
        tree = json.loads(meta["tree"])
        return _Decoder(arrays, where, map_location).decode(tree)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"pydl.load: {where} has a corrupt structure: {e!r}") from None
