"""``pydl.save`` / ``pydl.load``: checkpoints in the safetensors format, and PyTorch's own
``.pt`` / ``.pth`` format (``pydl/serialization_pt.py``).

``pydl.save(obj, "x.pt")`` (or ``.pth``) writes torch.save's zip format, which
``torch.load(path, weights_only=True)`` reads; any other name gets safetensors (below).
``pydl.load`` tells the formats apart by their first bytes, and reads a torch.save file with
``torch.load(weights_only=True)`` semantics: tensors, OrderedDict, dicts, lists, tuples and
primitive types only, never code. Neither format can hold a whole ``Module``: saving one raises
an error that points to ``state_dict()``.

What can be saved: nested dicts, lists and tuples (at most 100 levels deep) whose leaves are
pydl Tensors, NumPy arrays, ints, floats, bools, strings and None -- model, optimizer and
scheduler state dicts, training history, configuration. Dict keys may be strings, ints, floats,
bools or None (optimizer state is keyed by int).

Which files other tools can read, and which pydl reads
------------------------------------------------------
* Every file ``pydl.save`` writes to a name not ending in ``.pt``/``.pth`` is a standard
  safetensors file, in the layout the ``safetensors`` package writes (tensors ordered by
  alignment, header padded to 8 bytes; ``pydl/_safetensors_io.py`` says why pydl streams it
  itself rather than through ``safetensors.numpy.save_file``). Every tensor or array in the
  object is one safetensors tensor, named by its path in the object joined with dots
  (``model.conv1.weight``; ``optimizer.state.0.exp_avg``; a repeated name gets ``#1``), in its
  own dtype (BOOL, U8, I8, I16, U16, F16, I32, U32, F32, I64, U64, F64), little-endian, C order.
  ``safetensors.numpy.load_file``, ``safetensors.torch.load_file``, ``safe_open``, Hugging Face
  tools and any other safetensors reader load these tensors. ``pydl.save(model.state_dict(),
  "model.safetensors")`` therefore holds the tensors ``safetensors.torch.save_file(
  torch_model.state_dict(), ...)`` would: same names, shapes, dtypes and bytes (the order in
  the file may differ).
* The non-tensor structure (dict key types, lists/tuples, numbers, strings, ``requires_grad``)
  lives only in the header's ``__metadata__`` as JSON (keys ``format`` = ``"pydl.checkpoint"``,
  ``pydl.version`` = ``"2"``, ``pydl.tree``, ``pydl.digest``); other tools see it as opaque
  strings and only ``pydl.load`` rebuilds the object from it.
* ``pydl.load`` reads: files ``pydl.save`` wrote (format version 2, and version 1 from earlier
  pydl: those carry CRC-32s of the tensor bytes only, so their header is not protected); any
  other safetensors file (from ``safetensors.numpy``/``torch``/``flax``, Hugging Face, ...), which
  loads as a flat ``{name: Tensor}`` dict -- BF16, F8_E4M3 and F8_E5M2 tensors are widened to
  float32 exactly, with a warning, as pydl has no bfloat16/float8 dtype; F8_E8M0, F4, F6 and
  complex tensors are refused; and ``torch.save`` zip files (``serialization_pt``).

Integrity. A version 2 file carries ``pydl.digest``: a SHA-256 over a canonical form of the
whole header (metadata, every tensor's name, dtype and shape; key order and whitespace do not
matter) and over every tensor's bytes. ``pydl.load`` verifies it and raises
``CheckpointError`` on any difference, so a changed bit loads as exactly what was saved or not
at all (the digest detects damage; it is not a signature against someone who rewrites it).
Before any tensor byte is read the header is checked: its length (at most 100 MB, and within
the file), JSON nesting depth (at most 100 levels of containers in the object), duplicate
keys, dtypes and shapes, and the tensors' byte ranges,
which must tile the data section exactly -- overlapping or aliased ranges, gaps and trailing
bytes are refused, as is a structure that uses one tensor twice or leaves one out. (Memory the
saved object itself shared -- tied weights: two ``state_dict`` names over one Parameter -- is
stored once; its other places are references marked ``shared``, and load gives them tensors over
one array, as ``torch.load`` gives tensors over one storage.)

Memory. ``pydl.load(path)`` reads each tensor once, straight into its own array (peak about the
size of the tensors). ``pydl.load(path, mmap=True)`` (as ``torch.load(mmap=True)``) hashes the
file through a 4 MB buffer and returns tensors that are copy-on-write views of a memory map:
pages are read when touched and writes never reach the file. ``pydl.save`` writes straight from
the tensors' memory (no serialized copy; only non-contiguous or big-endian arrays are copied).

Writes are atomic: the bytes go to a temporary file in the target's folder (named
``.NAME.pydl-tmp-HOST-PID-RANDOM``, HOST a hash of the host name), are flushed to disk
(``fsync``), get the mode of the file they replace (new files: ``0o666 & ~umask``), and are
renamed over the target; a symlink is written through (its target is replaced, the link
stays). A crash or exception during ``save``
leaves the previous file intact; the next save to the same name removes temporaries left by
processes of this host that no longer run (``kill -9``, power loss).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
from typing import Any, Dict, List, Optional

import numpy as np

from pydl import _safetensors_io as _io
from pydl.tensor import Tensor

_FORMAT = "pydl.checkpoint"
_FORMAT_VERSION = "2"
_LEGACY_VERSION = "1"  # CRC-32 per tensor, no header checksum; still read
_K_VERSION, _K_TREE, _K_DIGEST = "pydl.version", "pydl.tree", "pydl.digest"
_MAX_NESTING = 100  # containers inside containers, in what save accepts and load reads
# A container costs at most 3 JSON levels in the tree ({"items": [[key, child]]}).
_MAX_TREE_DEPTH = 3 * _MAX_NESTING + 3


class CheckpointError(ValueError):
    """A file that is not a readable pydl/safetensors checkpoint (corrupt, truncated, foreign)."""


def _where(path) -> str:
    return ".".join(map(str, path)) or "top level"


# -- encoding -----------------------------------------------------------------------------------

class _Encoder:
    def __init__(self):
        self.arrays: Dict[str, np.ndarray] = {}
        # id(array) -> (array, name): an array met again (tied weights: two state_dict names
        # over one Parameter's memory) is stored once and referenced with "shared", as
        # torch.save keeps one storage for tensors that share it.
        self.stored: Dict[int, tuple] = {}

    def _name(self, path) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 1
        while name in self.arrays or name == "__metadata__":
            name, n = f"{base}#{n}", n + 1
        return name

    def _store(self, arr: np.ndarray, path) -> Dict[str, Any]:
        if arr.dtype.newbyteorder("<") not in _io.NAMES:
            raise TypeError(f"pydl.save: cannot store an array of dtype {arr.dtype} at "
                            f"{_where(path)}")
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            arr = arr.copy(order="C")
        name = self._name(path)
        self.arrays[name] = arr
        return {"name": name}

    def _store_once(self, arr: np.ndarray, path) -> Dict[str, Any]:
        seen = self.stored.get(id(arr))
        if seen is not None and seen[0] is arr:
            return {"name": seen[1], "shared": True}
        node = self._store(arr, path)
        self.stored[id(arr)] = (arr, node["name"])
        return node

    def encode(self, obj, path=()):
        from pydl.nn.module import Module

        if len(path) > _MAX_NESTING:
            raise ValueError(f"pydl.save: the object nests deeper than {_MAX_NESTING} levels "
                             f"(at {_where(path[:5])}...)")
        if isinstance(obj, Module):
            from pydl.serialization_pt import module_error

            raise TypeError(module_error(obj))
        if isinstance(obj, Tensor):
            node = self._store_once(obj.numpy_view(), path)
            node["kind"] = "tensor"
            if obj.requires_grad:
                node["requires_grad"] = True
            return node
        if isinstance(obj, np.ndarray):
            node = self._store_once(obj, path)
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
                                    f"None, got {type(k).__name__} at {_where(path)}")
                items.append([k, self.encode(v, path + (k,))])
            return {"kind": "dict", "items": items}
        if isinstance(obj, (list, tuple)):
            values = [self.encode(v, path + (i,)) for i, v in enumerate(obj)]
            return {"kind": "tuple" if isinstance(obj, tuple) else "list", "items": values}
        raise TypeError(f"pydl.save: cannot save an object of type {type(obj).__name__} at "
                        f"{_where(path)} (supported: Tensor, ndarray, int, float, bool, str, "
                        "None, and dicts/lists/tuples of them)")


def _digest(meta: Dict[str, str], specs: Dict[str, tuple], tensor_sha: Dict[str, bytes]) -> str:
    """``pydl.digest``: SHA-256 over the canonical header (``meta`` without the digest; each
    tensor's dtype and shape by name) and each tensor's own SHA-256, in name order. Byte ranges
    are left out: the reader checks that they tile the data exactly, and hashing by name makes
    any other arrangement of the same bytes fail."""
    canon = json.dumps({"metadata": meta, "tensors": {k: [d, list(s)] for k, (d, s) in
                                                      specs.items()}},
                       sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    h = hashlib.sha256(b"pydl.checkpoint/2\n")
    h.update(len(canon).to_bytes(8, "little"))
    h.update(canon)
    for name in sorted(tensor_sha):
        h.update(tensor_sha[name])
    return "sha256:" + h.hexdigest()


def _encode(obj):
    """``(arrays, metadata)`` for safetensors' writer, the digest included."""
    enc = _Encoder()
    tree = enc.encode(obj)
    meta = {"format": _FORMAT, _K_VERSION: _FORMAT_VERSION,
            _K_TREE: json.dumps(tree, separators=(",", ":"))}
    specs = {k: (_io.NAMES[a.dtype.newbyteorder("<")], a.shape) for k, a in enc.arrays.items()}
    sha = {k: hashlib.sha256(a.reshape(-1).view(np.uint8).data).digest()
           for k, a in enc.arrays.items()}
    meta[_K_DIGEST] = _digest(meta, specs, sha)
    return enc.arrays, meta


# -- atomic writes ------------------------------------------------------------------------------

_TMP_MARK = ".pydl-tmp-"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: keep its file
    try:  # a killed child its parent has not reaped yet still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _clean_stale(folder: str, name: str) -> None:
    """Remove temporaries of saves to ``name`` whose process (on this host) is gone."""
    prefix = f".{name}{_TMP_MARK}{_HOST}-"
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
        except OSError:  # gone already, or not ours to remove
            pass


def _write_atomic(path, write) -> None:
    """Call ``write(file)`` to write the new file's bytes, then put it in place of ``path``."""
    target = os.path.realpath(os.fspath(path))  # write through symlinks
    folder, name = os.path.split(target)
    _clean_stale(folder, name)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = os.path.join(folder, f".{name}{_TMP_MARK}{_HOST}-{os.getpid()}-"
                               f"{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
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
    saving fails; a symlink is written through and the replaced file's mode is kept. A
    ``Module`` raises ``TypeError``: save ``model.state_dict()``."""
    from pydl import serialization_pt
    from pydl.nn.module import Module

    if isinstance(obj, Module):
        raise TypeError(serialization_pt.module_error(obj))
    # everything that can fail on bad input fails before any write
    if serialization_pt.is_pt_name(f):
        data = serialization_pt.dumps_torch_zip(obj)

        def write(out):
            out.write(data)
    else:
        arrays, meta = _encode(obj)

        def write(out):  # streams from the arrays' memory, no serialized copy
            _io.write(out, arrays, meta)
    if hasattr(f, "write"):
        write(f)
        return
    _write_atomic(f, write)


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


def _tree_names(tree, where: str) -> List[str]:
    """The tensor names the structure uses, checking its shape on the way (iteratively: the
    depth is bounded already, but no recursion is needed to find out). References marked
    ``shared`` (memory the saved object shared) are not uses; each must name a used tensor."""
    names, shared, stack = [], set(), [tree]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, (bool, int, float, str)):
            continue
        if not isinstance(node, dict):
            raise CheckpointError(f"pydl.load: {where} has a corrupt structure")
        kind = node.get("kind")
        if kind in ("tensor", "ndarray"):
            if not isinstance(node.get("name"), str):
                raise CheckpointError(f"pydl.load: {where} has a corrupt structure (a tensor "
                                      "without a name)")
            if node.get("shared") is True:
                shared.add(node["name"])
            elif "shared" in node:
                raise CheckpointError(f"pydl.load: {where} has a corrupt structure (a tensor "
                                      "reference)")
            else:
                names.append(node["name"])
        elif kind in ("dict", "list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise CheckpointError(f"pydl.load: {where} has a corrupt structure")
            if kind == "dict":
                for pair in items:
                    if not (isinstance(pair, list) and len(pair) == 2 and (
                            pair[0] is None or isinstance(pair[0], (str, int, float, bool)))):
                        raise CheckpointError(f"pydl.load: {where} has a corrupt structure "
                                              "(a dict item)")
                    stack.append(pair[1])
            else:
                stack.extend(items)
        else:
            raise CheckpointError(f"pydl.load: {where} has a corrupt structure (node kind "
                                  f"{kind!r})")
    if not shared <= set(names):
        raise CheckpointError(f"pydl.load: {where} has a corrupt structure: a shared "
                              "reference names a tensor that is not stored "
                              f"({sorted(shared - set(names))[:3]})")
    return names


class _Decoder:
    def __init__(self, arrays: Dict[str, np.ndarray], where: str, device, legacy: bool):
        self.arrays = arrays
        self.where = where
        self.device = device
        self.legacy = legacy

    def _array(self, node: dict) -> np.ndarray:
        arr = self.arrays[node["name"]]
        if self.legacy:
            import zlib

            if zlib.crc32(arr.reshape(-1).view(np.uint8).data) != node.get("crc32"):
                raise CheckpointError(f"pydl.load: {self.where} is corrupt: the bytes of "
                                      f"tensor {node['name']!r} fail their CRC-32 check")
        return arr

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        kind = node["kind"]
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
        return tuple(self.decode(v) for v in node["items"])


def _size_left(fh) -> Optional[int]:
    """Bytes from the current position to the end, or None for a stream."""
    try:
        if not fh.seekable():
            return None
        pos = fh.tell()
        end = fh.seek(0, os.SEEK_END)
        fh.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def _read_upto(fh, n: int) -> bytes:
    """``n`` bytes of ``fh``, fewer only at its end (streams may return short reads)."""
    out = fh.read(n)
    while 0 < len(out) < n:
        more = fh.read(n - len(out))
        if not more:
            break
        out += more
    return out


def _load_safetensors(fh, first8: bytes, where: str, map_location, use_mmap: bool):
    size = _size_left(fh)
    if size is not None:
        size += len(first8)
    try:
        n = _io.header_length(first8, size)
        raw = _read_upto(fh, n)
        if len(raw) != n:
            raise _io.FormatError(f"truncated: the header ends after {len(raw)} of {n} bytes")
    except _io.FormatError as e:
        raise CheckpointError(f"pydl.load: {where} is not a safetensors checkpoint, or is "
                              f"truncated: {e}; {_describe(first8)}") from None
    try:
        meta, infos = _io.parse_header(raw, None if size is None else size - 8 - n)
    except _io.FormatError as e:
        raise CheckpointError(f"pydl.load: {where} has a corrupt or truncated safetensors "
                              f"header: {e}") from None
    # One bit must not turn a pydl file into a "foreign" one: any pydl key makes it pydl's.
    ours = meta.get("format") == _FORMAT or any(k.startswith("pydl.") for k in meta)
    legacy = ours and meta.get("format_version") == _LEGACY_VERSION and \
        not any(k.startswith("pydl.") for k in meta)
    tree = None
    if ours:
        if legacy:
            tree_text = meta.get("tree")
        else:
            version = meta.get(_K_VERSION)
            if meta.get("format") != _FORMAT or version != _FORMAT_VERSION:
                raise CheckpointError(f"pydl.load: {where} has checkpoint format "
                                      f"{meta.get('format')!r} version {version!r}; this pydl "
                                      f"reads {_FORMAT!r} version {_FORMAT_VERSION} (and 1)")
            tree_text = meta.get(_K_TREE)
            if not isinstance(meta.get(_K_DIGEST), str):
                raise CheckpointError(f"pydl.load: {where} is corrupt: its digest is missing")
        if not isinstance(tree_text, str):
            raise CheckpointError(f"pydl.load: {where} has a corrupt structure (no tree)")
        try:
            tree = _io.loads_bounded(tree_text.encode("utf-8"), _MAX_TREE_DEPTH, "structure",
                                     constants=True)
        except _io.FormatError as e:
            raise CheckpointError(f"pydl.load: {where} has a corrupt structure: {e}") from None
        names = _tree_names(tree, where)
        stored = {i.name for i in infos}
        if len(set(names)) != len(names) or set(names) != stored:
            import collections

            again = sorted(k for k, c in collections.Counter(names).items() if c > 1)[:3]
            raise CheckpointError(
                f"pydl.load: {where} has a corrupt structure: every stored tensor must be used "
                f"exactly once (used more than once: {again}, missing: "
                f"{sorted(set(names) - stored)[:3]}, unused: {sorted(stored - set(names))[:3]})")
    try:
        if use_mmap:
            sha = _io.hash_stream(fh, infos)
            arrays = _io.map_arrays(fh.fileno(), infos, 8 + n)
        else:
            arrays, sha = _io.read_arrays(fh, infos)
        if size is None and fh.read(1):
            raise _io.FormatError("bytes follow the last tensor")
    except _io.FormatError as e:
        raise CheckpointError(f"pydl.load: {where} is corrupt or truncated: {e}") from None
    if ours and not legacy:
        specs = {i.name: (i.dtype, i.shape) for i in infos}
        body = {k: v for k, v in meta.items() if k != _K_DIGEST}
        if not hmac.compare_digest(_digest(body, specs, sha), meta[_K_DIGEST]):
            raise CheckpointError(f"pydl.load: {where} is corrupt: its checksum "
                                  "(pydl.digest, SHA-256 of the header and the data) does not "
                                  "match")
    _io.upcast(arrays, infos, where)
    if not ours:
        out = {}
        for info in sorted(infos, key=lambda i: i.index):  # the header's order
            t = Tensor(arrays[info.name])
            out[info.name] = t.to(map_location) if map_location is not None else t
        return out
    return _Decoder(arrays, where, map_location, legacy).decode(tree)


def load(f, map_location: Optional[Any] = None, *, weights_only: Optional[bool] = None,
         mmap: Optional[bool] = None):
    """Load what ``pydl.save`` or ``torch.save`` wrote to ``f`` (a path or a readable binary
    file object).

    Tensors come back as pydl Tensors (on ``map_location`` when given, e.g. ``"cpu"``; a dict
    maps the file's locations, as torch's), NumPy arrays as arrays, tuples as tuples, dict keys
    with their types. A plain safetensors file from another program loads as a flat
    ``{name: Tensor}`` dict (BF16/F8 widened to float32, with a warning). A torch.save file
    loads as ``torch.load(f, weights_only=True)`` would: an allowlist of globals (tensors,
    parameters, OrderedDict, devices, dtypes), nothing else -- ``weights_only=False`` is
    refused, pydl never unpickles code. A file that is neither format, is truncated, or whose
    bytes changed raises ``CheckpointError`` (a ``ValueError``).

    ``mmap=True`` (safetensors files; a path only, as in torch) returns tensors that are
    copy-on-write views of a memory map of the file, read when touched; the checksum is still
    verified first, through a small buffer. Without it each tensor is read into its own memory.
    A torch.save file is read into memory either way.
    """
    from pydl import serialization_pt

    if weights_only is False:
        raise ValueError("pydl.load: weights_only=False is not supported: pydl never unpickles "
                         "code or arbitrary objects; it loads tensors, dicts, lists, tuples and "
                         "primitive types (torch.load(weights_only=True) semantics)")
    if map_location is not None and callable(map_location) and \
            not isinstance(map_location, (str, dict)):
        raise TypeError("pydl.load: map_location must be a device, a string or a dict; "
                        "functions are not supported")
    is_file = hasattr(f, "read")
    if mmap and is_file:
        raise ValueError("pydl.load: f must be a file path in order to use the mmap argument")
    where = repr(getattr(f, "name", "<file object>")) if is_file else os.fspath(f)
    fh = f if is_file else open(where, "rb", buffering=0)
    try:
        first8 = _read_upto(fh, 8)
        if serialization_pt.is_torch_zip(first8):
            return serialization_pt.load_torch_zip(first8 + fh.read(), where, map_location)
        return _load_safetensors(fh, first8, where, map_location, bool(mmap))
    finally:
        if not is_file:
            fh.close()
