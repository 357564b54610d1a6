"""PyTorch's own checkpoint format (``.pt`` / ``.pth``), read and written without importing torch.

Since PyTorch 1.6 ``torch.save`` writes a zip archive (stored, not compressed)::

    archive/data.pkl              the object, pickled (protocol 2); tensors are persistent ids
    archive/data/<key>            one raw little-endian storage per key
    archive/byteorder             "little"
    archive/version               "3\\n"
    archive/.format_version, archive/.storage_alignment ("64"), archive/.data/serialization_id

A tensor in data.pkl is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, OrderedDict())`` where ``storage`` is the persistent id
``("storage", torch.FloatStorage, "<key>", "cpu", numel)``; tensors that share memory share
one storage.

Reading follows ``torch.load(weights_only=True)``: the pickle is interpreted by the small
unpickler below, which knows only the opcodes of plain data (numbers, strings, bytes, tuples,
lists, dicts, sets) and resolves only this allowlist of globals -- ``collections.OrderedDict``
and ``Counter``, torch's tensor and parameter rebuild functions, the storage classes,
``torch.device``, ``torch.Size`` and the dtypes, ``_codecs.encode`` (bytes),
``builtins.set/frozenset/complex``. Any other global, or an opcode that builds arbitrary
objects, raises ``UnpicklingError`` naming it; no code from the file ever runs. Storages are
bounds-checked against every tensor's offset, sizes and strides before a view is made.

Writing emits the same opcodes by hand (pydl cannot import ``torch._utils`` to let ``pickle``
find those globals), with records aligned to 64 bytes as torch aligns them, so that
``torch.load(path, weights_only=True)`` reads what ``pydl.save(obj, "x.pt")`` wrote.
"""
from __future__ import annotations

import codecs
import collections
import io
import os
import struct
import sys
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

from pydl.tensor import Tensor

# Storage class names in the pickle <-> NumPy dtypes pydl has.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_DTYPE_STORAGES = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items()}
# Storage types pydl has no dtype for: named in the error.
_UNSUPPORTED_STORAGES = {"BFloat16Storage": "bfloat16", "ComplexFloatStorage": "complex64",
                         "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8",
                         "QUInt8Storage": "quint8", "QInt32Storage": "qint32"}
_TORCH_DTYPES = {"float32": np.float32, "float": np.float32, "float64": np.float64,
                 "double": np.float64, "float16": np.float16, "half": np.float16,
                 "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32,
                 "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
                 "bool": np.bool_}
_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64",
                np.dtype(np.float16): "float16", np.dtype(np.int64): "int64",
                np.dtype(np.int32): "int32", np.dtype(np.int16): "int16",
                np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8",
                np.dtype(np.bool_): "bool"}
_ALIGN = 64


class UnpicklingError(ValueError):
    """data.pkl asks for something a weights-only load refuses (or is malformed)."""


def is_torch_zip(raw: bytes) -> bool:
    return raw[:4] == b"PK\x03\x04"


# -- reading ------------------------------------------------------------------------------------

class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Storage:
    """One storage of the archive: a flat NumPy array (its bytes copied out of the zip)."""

    def __init__(self, array: np.ndarray, location: str):
        self.array = array
        self.location = location


def _check_ints(values, what: str) -> Tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or \
            any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
        raise UnpicklingError(f"tensor {what} must be a tuple of non-negative ints, got "
                              f"{values!r}")
    return tuple(values)


def _rebuild_array(storage, offset, size, stride) -> np.ndarray:
    if not isinstance(storage, _Storage):
        raise UnpicklingError(f"a tensor's storage must be a persistent storage id, got "
                              f"{type(storage).__name__}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UnpicklingError(f"tensor storage offset must be a non-negative int, got "
                              f"{offset!r}")
    size, stride = _check_ints(size, "size"), _check_ints(stride, "stride")
    if len(size) != len(stride):
        raise UnpicklingError(f"tensor size {size} and stride {stride} differ in length")
    flat = storage.array
    if any(s == 0 for s in size):
        return np.empty(size, dtype=flat.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= flat.size:
        raise UnpicklingError(f"tensor of size {size}, stride {stride} at offset {offset} "
                              f"reaches element {last} of a storage of {flat.size} elements")
    itemsize = flat.dtype.itemsize
    return np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                           strides=tuple(st * itemsize for st in stride))


class _Loader:
    """Rebuild functions the allowlist maps torch's globals to."""

    def __init__(self, map_location):
        self.map_location = map_location
        self.callables = {
            "collections.OrderedDict": collections.OrderedDict,
            "collections.Counter": collections.Counter,
            "torch._utils._rebuild_tensor_v2": self.tensor_v2,
            "torch._utils._rebuild_tensor": self.tensor_v1,
            "torch._utils._rebuild_parameter": self.parameter,
            "torch._utils._rebuild_parameter_with_state": self.parameter,
            "torch.device": self.device,
            "torch.Size": tuple,
            "_codecs.encode": self.codecs_encode,
            "builtins.set": set,
            "builtins.frozenset": frozenset,
            "builtins.complex": complex,
        }

    def _place(self, t: Tensor, location: str) -> Tensor:
        target = self.map_location
        if isinstance(target, dict):
            target = target.get(location, location)
        elif target is None:
            target = location
        target = str(target)
        if target.startswith("cuda"):
            from pydl import cuda

            if not cuda.is_available():
                raise RuntimeError(
                    f"Attempting to deserialize object on a CUDA device ({location}) but "
                    f"pydl.cuda.is_available() is False. If you are running on a CPU-only "
                    f"machine, please use pydl.load with map_location='cpu' to map your "
                    f"storages to the CPU.")
            return t.to(target)
        if target != "cpu":
            raise RuntimeError(f"pydl.load: cannot place a tensor on {target!r} (the file "
                               f"says {location!r}); pydl has 'cpu' and 'cuda'")
        return t

    def tensor_v2(self, storage, offset, size, stride, requires_grad=False,
                  backward_hooks=None, metadata=None):
        if backward_hooks:
            raise UnpicklingError("tensors with backward hooks are not loaded (weights only)")
        t = Tensor(_rebuild_array(storage, offset, size, stride))
        t = self._place(t, storage.location)
        if requires_grad:
            t.requires_grad_(True)
        return t

    def tensor_v1(self, storage, offset, size, stride):
        return self.tensor_v2(storage, offset, size, stride)

    def parameter(self, data, requires_grad=True, backward_hooks=None, state=None):
        from pydl.nn.parameter import Parameter

        if not isinstance(data, Tensor):
            raise UnpicklingError(f"_rebuild_parameter expects a tensor, got "
                                  f"{type(data).__name__}")
        if backward_hooks:
            raise UnpicklingError("parameters with backward hooks are not loaded (weights "
                                  "only)")
        return Parameter(data.detach(), requires_grad=bool(requires_grad))

    @staticmethod
    def device(spec, index=None):
        from pydl.device import device

        if index is not None:
            spec = f"{spec}:{index}"
        try:
            return device(spec)
        except (TypeError, ValueError):
            raise UnpicklingError(f"pydl has no device {spec!r}") from None

    @staticmethod
    def codecs_encode(obj, encoding="latin1"):
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
            raise UnpicklingError("_codecs.encode is only accepted for bytes (str, 'latin1')")
        return codecs.encode(obj, encoding)

    def resolve(self, module: str, name: str):
        if module == "__builtin__":  # protocol 2 writes Python 2's name (pickle's fix_imports)
            module = "builtins"
        full = f"{module}.{name}"
        if full in self.callables:
            return self.callables[full]
        if module in ("torch", "torch.storage", "torch.cuda"):
            if name in _STORAGE_DTYPES or name in _UNSUPPORTED_STORAGES or \
                    name in ("UntypedStorage", "TypedStorage"):
                return _StorageType(name)
            if name in _TORCH_DTYPES:
                return np.dtype(_TORCH_DTYPES[name])
        raise UnpicklingError(
            f"Unsupported global: GLOBAL {full} was not an allowed global by default. pydl "
            f"loads weights only (torch.load(weights_only=True) semantics): tensors, "
            f"OrderedDict, dicts, lists, tuples and primitive types; it never runs code from a "
            f"checkpoint. Save a state_dict() instead of objects.")


_REDUCIBLE = (collections.OrderedDict, collections.Counter, tuple, set, frozenset, complex)


class _Unpickler:
    """A weights-only pickle reader: the opcodes of plain data, globals from the allowlist,
    calls (REDUCE) only of allowlisted callables, BUILD only on OrderedDict."""

    def __init__(self, data: bytes, persistent_load, loader: _Loader):
        self.f = io.BytesIO(data)
        self.persistent_load = persistent_load
        self.loader = loader

    def _read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise UnpicklingError("data.pkl is truncated")
        return b

    def _line(self) -> str:
        line = self.f.readline()
        if not line.endswith(b"\n"):
            raise UnpicklingError("data.pkl is truncated")
        return line[:-1].decode("utf-8")

    def _call(self, fn, args):
        if not isinstance(args, tuple):
            raise UnpicklingError("REDUCE arguments must be a tuple")
        if not any(fn == c for c in self.loader.callables.values()):
            raise UnpicklingError(f"REDUCE of {fn!r} is not allowed (weights only)")
        try:
            return fn(*args)
        except UnpicklingError:
            raise
        except (TypeError, ValueError) as e:
            raise UnpicklingError(f"bad arguments to {getattr(fn, '__name__', fn)}: "
                                  f"{e}") from None

    def load(self):
        stack: List[Any] = []
        marks: List[int] = []
        memo: Dict[int, Any] = {}
        read = self._read

        def pop_mark():
            if not marks:
                raise UnpicklingError("MARK expected in data.pkl")
            k = marks.pop()
            items = stack[k:]
            del stack[k:]
            return items

        while True:
            op = read(1)
            if op == b"\x80":                      # PROTO
                if read(1)[0] > 5:
                    raise UnpicklingError("unsupported pickle protocol")
            elif op == b"\x95":                    # FRAME
                read(8)
            elif op == b".":                       # STOP
                if len(stack) != 1:
                    raise UnpicklingError("data.pkl ends with a malformed stack")
                return stack[0]
            elif op == b"(":                       # MARK
                marks.append(len(stack))
            elif op == b"N":
                stack.append(None)
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"K":                       # BININT1
                stack.append(read(1)[0])
            elif op == b"M":                       # BININT2
                stack.append(struct.unpack("<H", read(2))[0])
            elif op == b"J":                       # BININT
                stack.append(struct.unpack("<i", read(4))[0])
            elif op == b"\x8a":                    # LONG1
                n = read(1)[0]
                stack.append(int.from_bytes(read(n), "little", signed=True))
            elif op == b"\x8b":                    # LONG4
                (n,) = struct.unpack("<i", read(4))
                if n < 0 or n > 1 << 20:
                    raise UnpicklingError("LONG4 of implausible length")
                stack.append(int.from_bytes(read(n), "little", signed=True))
            elif op == b"G":                       # BINFLOAT
                stack.append(struct.unpack(">d", read(8))[0])
            elif op in (b"X", b"\x8c", b"\x8d"):   # BINUNICODE, SHORT_, 8
                fmt = {b"X": "<I", b"\x8c": "<B", b"\x8d": "<Q"}[op]
                (n,) = struct.unpack(fmt, read(struct.calcsize(fmt)))
                stack.append(str(read(n), "utf-8", "surrogatepass"))
            elif op in (b"B", b"C", b"\x8e"):      # BINBYTES, SHORT_, 8
                fmt = {b"B": "<I", b"C": "<B", b"\x8e": "<Q"}[op]
                (n,) = struct.unpack(fmt, read(struct.calcsize(fmt)))
                stack.append(read(n))
            elif op == b")":
                stack.append(())
            elif op == b"t":
                stack.append(tuple(pop_mark()))
            elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1/2/3
                n = op[0] - 0x84
                if len(stack) < n:
                    raise UnpicklingError("stack underflow in data.pkl")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == b"]":
                stack.append([])
            elif op == b"}":
                stack.append({})
            elif op == b"\x8f":                    # EMPTY_SET
                stack.append(set())
            elif op == b"l":                       # LIST
                stack.append(pop_mark())
            elif op == b"a":                       # APPEND
                v = stack.pop()
                self._target(stack, list).append(v)
            elif op == b"e":                       # APPENDS
                items = pop_mark()
                self._target(stack, list).extend(items)
            elif op == b"\x90":                    # ADDITEMS
                items = pop_mark()
                self._target(stack, set).update(items)
            elif op == b"\x91":                    # FROZENSET
                stack.append(frozenset(pop_mark()))
            elif op == b"s":                       # SETITEM
                v, k = stack.pop(), stack.pop()
                self._target(stack, dict)[k] = v
            elif op == b"u":                       # SETITEMS
                items = pop_mark()
                d = self._target(stack, dict)
                for i in range(0, len(items) - 1, 2):
                    d[items[i]] = items[i + 1]
            elif op == b"c":                       # GLOBAL
                module, name = self._line(), self._line()
                stack.append(self.loader.resolve(module, name))
            elif op == b"\x93":                    # STACK_GLOBAL
                name, module = stack.pop(), stack.pop()
                if not isinstance(module, str) or not isinstance(name, str):
                    raise UnpicklingError("STACK_GLOBAL needs two strings")
                stack.append(self.loader.resolve(module, name))
            elif op == b"R":                       # REDUCE
                args, fn = stack.pop(), stack.pop()
                stack.append(self._call(fn, args))
            elif op == b"\x81":                    # NEWOBJ: cls.__new__(cls, *args)
                args, cls = stack.pop(), stack.pop()
                if cls not in _REDUCIBLE:
                    raise UnpicklingError(f"NEWOBJ of {cls!r} is not allowed (weights only)")
                stack.append(cls(*args))
            elif op == b"b":                       # BUILD
                state = stack.pop()
                inst = stack[-1] if stack else None
                if isinstance(inst, collections.OrderedDict) and isinstance(state, dict) and \
                        all(isinstance(k, str) and k.isidentifier() and not k.startswith("__")
                            for k in state):
                    for k, v in state.items():   # e.g. a state dict's _metadata
                        setattr(inst, k, v)
                else:
                    raise UnpicklingError(f"BUILD of {type(inst).__name__} is not allowed "
                                          f"(weights only; an OrderedDict takes plain "
                                          f"attributes such as _metadata)")
            elif op == b"Q":                       # BINPERSID
                stack.append(self.persistent_load(stack.pop()))
            elif op in (b"q", b"r", b"\x94"):      # BINPUT, LONG_BINPUT, MEMOIZE
                if not stack:
                    raise UnpicklingError("memo of an empty stack")
                key = (read(1)[0] if op == b"q" else struct.unpack("<I", read(4))[0]
                       if op == b"r" else len(memo))
                memo[key] = stack[-1]
            elif op in (b"h", b"j"):               # BINGET, LONG_BINGET
                key = read(1)[0] if op == b"h" else struct.unpack("<I", read(4))[0]
                if key not in memo:
                    raise UnpicklingError(f"memo key {key} missing in data.pkl")
                stack.append(memo[key])
            elif op == b"0":                       # POP
                stack.pop()
            elif op == b"2":                       # DUP
                stack.append(stack[-1])
            elif op == b"1":                       # POP_MARK
                pop_mark()
            else:
                raise UnpicklingError(
                    f"Unsupported operand {op[0]} ({op!r}) in data.pkl: pydl loads weights only "
                    f"(plain data and tensors), never objects or code")

    @staticmethod
    def _target(stack, kind):
        if not stack or not isinstance(stack[-1], kind):
            got = type(stack[-1]).__name__ if stack else "missing"
            raise UnpicklingError(f"data.pkl adds items to a {got} object, expected "
                                  f"{kind.__name__}")
        return stack[-1]


def load_torch_zip(raw: bytes, where: str, map_location=None):
    """The object ``torch.save`` wrote into the zip archive ``raw``."""
    from pydl.serialization import CheckpointError

    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        names = zf.namelist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"pydl.load: {where} is a corrupt zip archive: {e}") from None
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
        [n for n in names if n == "data.pkl"]
    if not pkl:
        what = ("a TorchScript archive (torch.jit.save); pydl loads state dicts saved with "
                "torch.save" if any(n.endswith("/constants.pkl") for n in names) else
                "a zip archive without data.pkl (a NumPy .npz file?)")
        raise CheckpointError(f"pydl.load: {where} is not a torch.save checkpoint: it is {what}")
    prefix = pkl[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"pydl.load: {where} names an unknown byte order "
                                  f"{byteorder!r}")
    loader = _Loader(map_location)
    storages: Dict[str, _Storage] = {}

    def persistent_load(pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
            raise UnpicklingError(f"unsupported persistent id {pid!r} in data.pkl")
        _, stype, key, location, numel = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or \
                not isinstance(location, str) or not isinstance(numel, int):
            raise UnpicklingError(f"malformed storage id {pid!r} in data.pkl")
        if stype.name in _UNSUPPORTED_STORAGES:
            raise CheckpointError(f"pydl.load: {where} holds a {_UNSUPPORTED_STORAGES[stype.name]}"
                                  f" tensor, a dtype pydl does not have (convert it with "
                                  f"tensor.float() before torch.save)")
        dtype = np.dtype(_STORAGE_DTYPES.get(stype.name, np.uint8))
        if key not in storages:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise CheckpointError(f"pydl.load: {where} is corrupt: storage {key!r} is "
                                      f"missing")
            data = zf.read(name)
            if numel < 0 or len(data) < numel * dtype.itemsize:
                raise CheckpointError(f"pydl.load: {where} is corrupt: storage {key!r} has "
                                      f"{len(data)} bytes, {numel} x {dtype} expected")
            arr = np.frombuffer(data, dtype=dtype.newbyteorder("<" if byteorder == "little"
                                                               else ">"), count=numel)
            storages[key] = _Storage(arr.astype(dtype), location)  # native order, writable copy
        st = storages[key]
        if st.array.dtype != dtype:
            raise UnpicklingError(f"storage {key!r} is used with two dtypes")
        return st

    try:
        return _Unpickler(zf.read(pkl[0]), persistent_load, loader).load()
    except UnpicklingError as e:
        raise CheckpointError(f"pydl.load: {where}: weights-only load failed: {e}") from None
    except (IndexError, struct.error, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"pydl.load: {where} has a corrupt data.pkl "
                              f"({type(e).__name__}: {e})") from None


# -- writing ------------------------------------------------------------------------------------

class _Pickler:
    """Emits protocol-2 pickle opcodes for the weights-only subset of Python data."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.storages: List[np.ndarray] = []       # by key: flat arrays to write
        self._storage_keys: Dict[int, Tuple[int, np.ndarray]] = {}  # id(base) -> (key, base)

    def _global(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def _int(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        elif -2 ** 31 <= v < 2 ** 31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            n = (v.bit_length() + 8) // 8
            self.out += b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)

    def _str(self, s: str) -> None:
        b = s.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(b)) + b

    def _tuple(self, items, path) -> None:
        if len(items) == 0:
            self.out += b")"
            return
        if len(items) > 3:
            self.out += b"("
        for i, v in enumerate(items):
            self.dump(v, path + (i,))
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(items), b"t")

    def _ordered_dict(self) -> None:
        self._global("collections", "OrderedDict")
        self.out += b")R"

    def _storage_of(self, arr: np.ndarray):
        """(key, storage numel, offset, stride) of ``arr``: views of one contiguous NumPy
        array share a storage, as torch tensors sharing memory do; anything else is copied
        into a storage of its own."""
        base = arr
        while isinstance(base.base, np.ndarray):
            base = base.base
        itemsize = arr.dtype.itemsize
        if base is not arr and base.dtype == arr.dtype and base.flags.c_contiguous and \
                arr.size > 0:
            start = arr.__array_interface__["data"][0] - base.__array_interface__["data"][0]
            strides = arr.strides
            if start % itemsize == 0 and all(s >= 0 and s % itemsize == 0 for s in strides):
                offset = start // itemsize
                stride = tuple(s // itemsize for s in strides)
                last = offset + sum((n - 1) * s for n, s in zip(arr.shape, stride))
                if last < base.size:
                    key = self._key(base)
                    return key, base.size, offset, stride
        if arr.size > 0 and arr.flags.c_contiguous and arr.base is None:
            return self._key(arr), arr.size, 0, _contiguous_strides(arr.shape)
        flat = np.ascontiguousarray(arr).reshape(-1)
        key = len(self.storages)
        self.storages.append(flat)
        return key, flat.size, 0, _contiguous_strides(arr.shape)

    def _key(self, base: np.ndarray) -> int:
        got = self._storage_keys.get(id(base))
        if got is not None:
            return got[0]
        key = len(self.storages)
        self.storages.append(base.reshape(-1))
        self._storage_keys[id(base)] = (key, base)  # keep base alive: ids stay unique
        return key

    def _tensor(self, t: Tensor, path) -> None:
        from pydl.nn.parameter import Parameter

        arr = t.detach().cpu().numpy_view() if t.device.type != "cpu" else t.numpy_view()
        if arr.dtype not in _DTYPE_STORAGES:
            raise TypeError(f"pydl.save: cannot write a tensor of dtype {arr.dtype} at "
                            f"{_where(path)} in the PyTorch format")
        if isinstance(t, Parameter):
            self._global("torch._utils", "_rebuild_parameter")
            self.out += b"("
        key, numel, offset, stride = self._storage_of(arr)
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("
        self._str("storage")
        self._global("torch", _DTYPE_STORAGES[arr.dtype])
        self._str(str(key))
        self._str("cpu")
        self._int(numel)
        self.out += b"tQ"
        self._int(offset)
        self._tuple(tuple(int(s) for s in arr.shape), path)
        self._tuple(stride, path)
        requires_grad = bool(t.requires_grad) and not isinstance(t, Parameter)
        self.out += b"\x88" if requires_grad else b"\x89"
        self._ordered_dict()
        self.out += b"tR"
        if isinstance(t, Parameter):
            self.out += b"\x88" if t.requires_grad else b"\x89"
            self._ordered_dict()
            self.out += b"tR"

    def dump(self, obj, path=()) -> None:
        from pydl.device import device
        from pydl.nn.module import Module

        if isinstance(obj, Tensor):
            self._tensor(obj, path)
        elif obj is None:
            self.out += b"N"
        elif obj is True or obj is False or isinstance(obj, np.bool_):
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, (int, np.integer)):
            self._int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self.out += b"G" + struct.pack(">d", float(obj))
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, bytes):
            self._global("_codecs", "encode")  # as pickle protocol 2 writes bytes
            self._str(obj.decode("latin1"))
            self._str("latin1")
            self.out += b"\x86R"
        elif isinstance(obj, complex):
            self._global("builtins", "complex")
            self._tuple((obj.real, obj.imag), path)
            self.out += b"R"
        elif isinstance(obj, tuple):
            self._tuple(obj, path)
        elif isinstance(obj, list):
            self.out += b"]"
            if obj:
                self.out += b"("
                for i, v in enumerate(obj):
                    self.dump(v, path + (i,))
                self.out += b"e"
        elif isinstance(obj, (set, frozenset)):
            self._global("builtins", type(obj).__name__)
            self.out += b"]"
            if obj:
                self.out += b"("
                for v in obj:
                    self.dump(v, path)
                self.out += b"e"
            self.out += b"\x85R"
        elif isinstance(obj, dict):
            if isinstance(obj, collections.OrderedDict):
                self._ordered_dict()
            else:
                self.out += b"}"
            if obj:
                self.out += b"("
                for k, v in obj.items():
                    if isinstance(k, (Tensor, dict, list, set, Module)):
                        raise TypeError(f"pydl.save: dict key of type {type(k).__name__} at "
                                        f"{_where(path)} cannot be saved")
                    self.dump(k, path)
                    self.dump(v, path + (k,))
                self.out += b"u"
        elif isinstance(obj, device):
            self._global("torch", "device")
            self._str(str(obj))
            self.out += b"\x85R"
        elif isinstance(obj, np.dtype) and obj in _DTYPE_NAMES:
            self._global("torch", _DTYPE_NAMES[obj])
        elif isinstance(obj, Module):
            raise TypeError(module_error(obj))
        elif isinstance(obj, np.ndarray):
            raise TypeError(f"pydl.save: a NumPy array at {_where(path)} cannot be written to "
                            f"a .pt file (torch.load(weights_only=True) refuses arrays): "
                            f"wrap it with pydl.from_numpy(...)")
        else:
            raise TypeError(f"pydl.save: cannot save an object of type {type(obj).__name__} "
                            f"at {_where(path)} in the PyTorch format (weights only: tensors, "
                            f"dicts, lists, tuples, sets, numbers, strings, bytes, None)")


def _contiguous_strides(shape) -> Tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(int(n), 1)
    return tuple(reversed(strides))


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "top level"


def module_error(obj) -> str:
    return (f"pydl.save: cannot save a whole {type(obj).__name__} module: pydl never pickles "
            f"code or objects. Save its weights with pydl.save(model.state_dict(), path) and "
            f"restore them with model.load_state_dict(pydl.load(path)).")


def _aligned_record(zf: zipfile.ZipFile, buf: io.BytesIO, name: str, data: bytes) -> None:
    """Write one stored record whose data starts at a multiple of 64 bytes, padding the local
    header's extra field as torch's writer does (field id 'FB', filled with 'Z')."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o600 << 16
    header = 30 + len(name.encode("utf-8"))
    if len(data) > zipfile.ZIP64_LIMIT:
        header += 20  # zipfile appends a zip64 extra field to the local header
    start = buf.tell() + header
    pad = (-(start + 4)) % _ALIGN
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def dumps_torch_zip(obj, archive: str = "archive") -> bytes:
    """``obj`` in torch.save's zip format, as bytes."""
    p = _Pickler()
    p.dump(obj)
    p.out += b"."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        _aligned_record(zf, buf, f"{archive}/data.pkl", bytes(p.out))
        _aligned_record(zf, buf, f"{archive}/.format_version", b"1")
        _aligned_record(zf, buf, f"{archive}/.storage_alignment", b"64")
        _aligned_record(zf, buf, f"{archive}/byteorder", sys.byteorder.encode())
        for key, flat in enumerate(p.storages):
            _aligned_record(zf, buf, f"{archive}/data/{key}", flat.tobytes())
        _aligned_record(zf, buf, f"{archive}/version", b"3\n")
        sid = int.from_bytes(os.urandom(16), "little")
        _aligned_record(zf, buf, f"{archive}/.data/serialization_id", f"{sid:040d}".encode())
    return buf.getvalue()


def is_pt_name(f) -> bool:
    name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "")
    try:
        name = os.fspath(name)
    except TypeError:
        return False
    return isinstance(name, str) and name.lower().endswith((".pt", ".pth"))


__all__ = ["dumps_torch_zip", "is_pt_name", "is_torch_zip", "load_torch_zip", "module_error"]
