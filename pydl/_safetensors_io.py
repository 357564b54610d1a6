"""Reading the safetensors container with bounded memory, for ``pydl.load``.

The header is read and checked before any tensor byte is: its length against a bound and the
file size, its JSON for duplicate keys, nesting and types, and the tensors' byte ranges,
which must tile the data section exactly (sorted by offset, each starting where the previous one
ends, the last ending at the end of the file: no overlap, no alias, no gap that could hide
bytes, no trailing data) -- the rule the safetensors package applies itself. Then the data is
read once, in file order, each tensor straight into its own array (``mmap=False``: peak memory
is the tensors themselves) or hashed through a small reusable buffer and then mapped
copy-on-write (``mmap=True``: the tensors are views of one private mapping of the file, as with
``torch.load(mmap=True)``). Every tensor's SHA-256 is computed on the way, for the caller's
checksum.

Writing (``write``) streams the header and then each array's own memory to the file, in the
layout the safetensors package itself uses (tensors ordered by alignment, then name; header
padded with spaces to 8 bytes), so its readers load the result (tested both ways).

Why not the ``safetensors`` package for either side (measured, AMD EPYC Zen 3, 200 MB of
float32): ``safetensors.numpy.load_file``/``safe_open(framework="numpy")`` peak at 2x the
file (its mapping plus a copy per tensor), cannot hand out zero-copy arrays, raise
``TypeError`` on BF16 (NumPy has no bfloat16), and would make the checksum a second pass over
the data; ``safetensors.numpy.save_file`` streams only from version 0.8 (+0 MB), which needs
Python >= 3.10, while 0.7 and earlier -- all that Python 3.9 gets -- copy every tensor first
(+191 MB, 2x the data). It also writes its own ``.tmpXXXXXX`` file next to the target, which a
``kill -9`` would orphan under a name nobody can attribute.
"""
from __future__ import annotations

import hashlib
import json
import math
import mmap as _mmap
import re
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

# Bounds on what a header may ask for (checked before parsing or allocating anything).
MAX_HEADER_BYTES = 100_000_000  # the safetensors package's own limit
MAX_NDIM = 64
_CHUNK = 4 << 20  # read buffer for hashing ahead of a memory map
_WRITE_CHUNK = 64 << 20

# safetensors dtype names <-> NumPy, for the dtypes pydl tensors can hold as they are.
DTYPES = {"BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
          "U16": np.dtype(np.uint16), "I16": np.dtype(np.int16), "F16": np.dtype(np.float16),
          "U32": np.dtype(np.uint32), "I32": np.dtype(np.int32), "F32": np.dtype(np.float32),
          "U64": np.dtype(np.uint64), "I64": np.dtype(np.int64), "F64": np.dtype(np.float64)}
NAMES = {v: k for k, v in DTYPES.items()}


def _f8_table(exp_bits: int, man_bits: int, bias: int, fn: bool) -> np.ndarray:
    """float32 value of each of the 256 bytes of a float8 format (OCP FP8: E4M3 is the 'fn'
    variant -- no infinities, NaN only at S.1111.111; E5M2 follows IEEE rules)."""
    codes = np.arange(256, dtype=np.int64)
    sign = np.where(codes >> 7, -1.0, 1.0)
    e = (codes >> man_bits) & ((1 << exp_bits) - 1)
    m = codes & ((1 << man_bits) - 1)
    frac = m / float(1 << man_bits)
    value = np.where(e == 0, frac * 2.0 ** (1 - bias), (1.0 + frac) * 2.0 ** (e - bias))
    top = (1 << exp_bits) - 1
    if fn:
        value = np.where((e == top) & (m == (1 << man_bits) - 1), np.nan, value)
    else:
        value = np.where(e == top, np.where(m == 0, np.inf, np.nan), value)
    return (sign * value).astype(np.float32)


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


_F8_E4M3 = _f8_table(4, 3, 7, fn=True)
_F8_E5M2 = _f8_table(5, 2, 15, fn=False)
# Stored as raw integers, then widened exactly to float32 (pydl has no bfloat16/float8 dtype).
UPCAST = {"BF16": (np.dtype(np.uint16), _bf16_to_f32),
          "F8_E4M3": (np.dtype(np.uint8), lambda raw: _F8_E4M3[raw]),
          "F8_E5M2": (np.dtype(np.uint8), lambda raw: _F8_E5M2[raw])}


class FormatError(ValueError):
    """Raised here with a message; the caller re-raises it as CheckpointError with the file."""


class Info:
    __slots__ = ("name", "dtype", "shape", "begin", "end", "storage", "index")

    def __init__(self, name, dtype, shape, begin, end, index):
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end
        self.index = index  # position in the header
        self.storage = DTYPES[dtype] if dtype in DTYPES else UPCAST[dtype][0]


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(raw: bytes) -> int:
    """How deeply ``raw`` (JSON text) nests arrays and objects, without parsing it."""
    skeleton = _STRING.sub(b"", raw)
    if not skeleton:
        return 0
    b = np.frombuffer(skeleton, dtype=np.uint8)
    step = np.zeros(b.shape, np.int64)
    step[(b == ord("{")) | (b == ord("["))] = 1
    step[(b == ord("}")) | (b == ord("]"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"the key {k!r} appears twice")
        out[k] = v
    return out


def _no_constant(name):
    raise FormatError(f"{name} is not valid JSON")


def loads_bounded(raw: bytes, max_depth: int, what: str, constants: bool = False):
    """``json.loads`` that refuses nesting deeper than ``max_depth``, duplicate keys and (unless
    ``constants``) NaN/Infinity, with a FormatError instead of RecursionError/JSONDecodeError.
    The depth is measured before parsing, unless there are too few brackets to reach it."""
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        depth = json_depth(raw)
        if depth > max_depth:
            raise FormatError(f"the {what} nests {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=float if constants else _no_constant)
    except RecursionError:
        raise FormatError(f"the {what} nests too deeply to parse") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"the {what} is not valid JSON ({e})") from None


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def header_length(first8: bytes, file_size: Optional[int]) -> int:
    """The header length the first 8 bytes announce, checked against the bound and the size."""
    if len(first8) < 8:
        raise FormatError(f"only {len(first8)} bytes")
    n = int.from_bytes(first8, "little")
    if n == 0 or n > MAX_HEADER_BYTES or (file_size is not None and n > file_size - 8):
        size = "" if file_size is None else f" but the file has {file_size} bytes"
        raise FormatError(f"header length {n}{size} (a header is 1 to {MAX_HEADER_BYTES} "
                          "bytes)")
    return n


def parse_header(raw: bytes, data_len: Optional[int]) -> Tuple[dict, List[Info]]:
    """``(metadata, tensors in file order)`` from the header bytes; ``data_len`` is the size of
    the data section (None for a stream: then the caller checks that nothing follows)."""
    if raw[:1] != b"{":
        raise FormatError("the header does not start with '{'")
    # The header's grammar is flat ({name: {"shape": [...]}}) and every entry is checked
    # below, so its depth needs no scan; a pathological one stops at the recursion limit.
    header = loads_bounded(raw, 1 << 30, "header")
    if not isinstance(header, dict):
        raise FormatError("the header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ is not a map of strings to strings")
    infos: List[Info] = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise FormatError(f"tensor {name!r}: an entry needs dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str):
            raise FormatError(f"tensor {name!r}: dtype {dtype!r} is not a string")
        if dtype not in DTYPES and dtype not in UPCAST:
            raise FormatError(f"tensor {name!r} has dtype {dtype}, which pydl cannot load "
                              f"(it loads {', '.join(list(DTYPES) + list(UPCAST))})")
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or \
                not all(_is_int(s) and s >= 0 for s in shape):
            raise FormatError(f"tensor {name!r}: bad shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or \
                not all(_is_int(o) and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
            raise FormatError(f"tensor {name!r}: bad data_offsets {offsets!r}")
        info = Info(name, dtype, tuple(shape), offsets[0], offsets[1], len(infos))
        nbytes = math.prod(shape) * info.storage.itemsize
        if info.end - info.begin != nbytes:
            raise FormatError(f"tensor {name!r}: data_offsets {offsets} span "
                              f"{info.end - info.begin} bytes, but {dtype} {list(shape)} "
                              f"needs {nbytes}")
        infos.append(info)
    # The ranges must tile the data section: overlaps, aliases and gaps are all refused.
    infos.sort(key=lambda i: (i.begin, i.end))
    pos = 0
    for info in infos:
        if info.begin != pos:
            what = "overlaps the tensor before it" if info.begin < pos else \
                f"leaves a gap of {info.begin - pos} unindexed bytes before it"
            raise FormatError(f"tensor {info.name!r} (bytes {info.begin}..{info.end}) {what}")
        pos = info.end
    if data_len is not None and pos != data_len:
        raise FormatError(f"the tensors index {pos} bytes of data, but the file has {data_len} "
                          "after the header (truncated, or bytes no tensor accounts for)")
    return meta, infos


def _alignment_order(item):
    name, arr = item
    return (-arr.dtype.itemsize, name)


def write(f, arrays: Dict[str, np.ndarray], metadata: Dict[str, str]) -> None:
    """Write a safetensors file to the binary file object ``f`` straight from the arrays'
    memory (C-contiguous, little-endian, dtypes in NAMES)."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    order = sorted(arrays.items(), key=_alignment_order)  # every offset stays aligned
    pos = 0
    for name, arr in order:
        header[name] = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [pos, pos + arr.nbytes]}
        pos += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for _, arr in order:
        flat = arr.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, _WRITE_CHUNK):  # (one write() stops at 2 GiB)
            f.write(flat[start:start + _WRITE_CHUNK].data)


def _fill(f, view: memoryview) -> None:
    """Read exactly ``len(view)`` bytes of ``f`` into ``view``."""
    readinto = getattr(f, "readinto", None)
    pos, n = 0, len(view)
    while pos < n:
        if readinto is not None:
            k = readinto(view[pos:])
        else:
            chunk = f.read(n - pos)
            k = len(chunk)
            view[pos:pos + k] = chunk
        if not k:
            raise FormatError(f"the data ends after {pos} of a tensor's {n} bytes (truncated)")
        pos += k


def read_arrays(f, infos: List[Info]) -> Tuple[Dict[str, np.ndarray], Dict[str, bytes]]:
    """Each tensor read into its own array (``f`` at the start of the data section), with the
    SHA-256 of its bytes. Raw storage dtypes: BF16/F8 are still integers here."""
    arrays, digests = {}, {}
    for info in infos:
        try:
            # bytearray, not np.empty: NumPy asks for transparent huge pages on big arrays, and
            # where the kernel compacts memory for them on first touch (THP "madvise", as on
            # the AMD EPYC VM measured) reading 200 MB took 330-510 ms CPU instead of 155-190
            raw = np.frombuffer(bytearray(info.end - info.begin), np.uint8)
        except (MemoryError, ValueError, OverflowError):  # a stream's header is not bounded by a size
            raise FormatError(f"tensor {info.name!r} needs {info.end - info.begin} bytes, more "
                              "than can be allocated") from None
        _fill(f, raw.data)
        digests[info.name] = hashlib.sha256(raw.data).digest()
        arrays[info.name] = raw.view(info.storage).reshape(info.shape)
    return arrays, digests


def hash_stream(f, infos: List[Info]) -> Dict[str, bytes]:
    """The SHA-256 of each tensor's bytes, read through one small reusable buffer."""
    total = max((i.end - i.begin for i in infos), default=0)
    buf = memoryview(bytearray(min(_CHUNK, max(total, 1))))
    digests = {}
    for info in infos:
        h, left = hashlib.sha256(), info.end - info.begin
        while left:
            part = buf[:min(left, len(buf))]
            _fill(f, part)
            h.update(part)
            left -= len(part)
        digests[info.name] = h.digest()
    return digests


def map_arrays(fileno: int, infos: List[Info], data_start: int) -> Dict[str, np.ndarray]:
    """Arrays that are views of one private (copy-on-write) mapping of the file: pages are read
    when touched, writes never reach the file."""
    mm = _mmap.mmap(fileno, 0, access=_mmap.ACCESS_COPY)
    arrays = {}
    for info in infos:
        count = (info.end - info.begin) // info.storage.itemsize
        if count == 0:
            arr = np.empty(info.shape, info.storage)
        else:
            arr = np.frombuffer(mm, dtype=info.storage, count=count,
                                offset=data_start + info.begin).reshape(info.shape)
            if not arr.flags.aligned:  # another writer's layout: pydl's kernels want alignment
                arr = arr.copy()
        arrays[info.name] = arr
    return arrays


def upcast(arrays: Dict[str, np.ndarray], infos: List[Info], where: str) -> None:
    """Widen BF16/F8 tensors (stored as raw integers) to float32 in place in ``arrays``, with one
    warning that names them."""
    wide = [i for i in infos if i.dtype in UPCAST]
    if not wide:
        return
    for info in wide:
        arrays[info.name] = UPCAST[info.dtype][1](arrays[info.name])
    kinds = sorted({i.dtype for i in wide})
    names = ", ".join(repr(i.name) for i in wide[:5]) + (", ..." if len(wide) > 5 else "")
    warnings.warn(f"pydl.load: {where}: {len(wide)} tensor(s) stored as "
                  f"{'/'.join(kinds)} ({names}) load as float32: pydl has no bfloat16 or "
                  "float8 dtype (the conversion is exact)", UserWarning, stacklevel=3)
