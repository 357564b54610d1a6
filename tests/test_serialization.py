"""pydl.save / pydl.load: round trips, atomic writes, corrupt and foreign files."""
import io
import json
import os
import struct

import numpy as np
import pytest

import pydl
from pydl.serialization import CheckpointError


def _assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, pydl.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy_view(), b.numpy_view())
        assert a.requires_grad == b.requires_grad
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        assert [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def _rich_object(rng):
    base = rng.standard_normal((4, 6))
    return {
        "model": {"conv.weight": pydl.tensor(rng.standard_normal((2, 1, 3, 3)).astype(np.float32)),
                  "conv.bias": pydl.zeros(2), "bn.num_batches_tracked": pydl.tensor(7),
                  "empty": pydl.zeros(0, 3), "scalar": pydl.tensor(2.5)},
        "optimizer": {"state": {0: {"step": pydl.tensor(3.0), "exp_avg": pydl.ones(2, 2)},
                                1: {"momentum_buffer": None}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                        "amsgrad": False, "params": [0, 1], "name": None}]},
        "arrays": [np.arange(5, dtype=np.int32), base[:, ::2],  # a non-contiguous view
                   np.array([True, False]), np.zeros((2,), np.float16),
                   np.array(1.5), np.arange(3, dtype=np.uint8)],
        "numbers": {"int": -(2 ** 62), "float": 0.1, "inf": float("inf"), "nan": float("nan"),
                    "big": 2 ** 100, "str": "héllo", "none": None, "bool": True},
        1.5: "float key", None: "none key", True: "bool key",
        "grad": pydl.ones(2, requires_grad=True),
        "rng": pydl.random.get_rng_state(),
        "tuple": (1, (2, "x"), []),
    }


def test_round_trip_nested_structures(tmp_path):
    rng = np.random.default_rng(0)
    obj = _rich_object(rng)
    path = tmp_path / "ck.safetensors"
    pydl.save(obj, path)
    out = pydl.load(path)
    expected = dict(obj)
    expected["arrays"] = [np.ascontiguousarray(a) if a.ndim else a for a in obj["arrays"]]
    _assert_same(expected, out)
    # loaded arrays are writable and own their memory
    out["model"]["conv.bias"]._data[0] = 1.0
    assert out["arrays"][1].flags.writeable


def test_round_trip_top_level_tensor_and_file_objects():
    buf = io.BytesIO()
    t = pydl.randn(3, 5)
    pydl.save(t, buf)
    buf.seek(0)
    _assert_same(t, pydl.load(buf))
    buf = io.BytesIO()
    pydl.save([1, "a"], buf)
    buf.seek(0)
    assert pydl.load(buf) == [1, "a"]


def test_file_is_standard_safetensors_with_readable_names(tmp_path):
    import safetensors.numpy

    sd = {"layer.weight": pydl.randn(3, 2), "layer.bias": pydl.zeros(3)}
    path = str(tmp_path / "m.safetensors")
    pydl.save({"model": sd, "epoch": 4}, path)
    plain = safetensors.numpy.load_file(path)
    assert sorted(plain) == ["model.layer.bias", "model.layer.weight"]
    np.testing.assert_array_equal(plain["model.layer.weight"], sd["layer.weight"].numpy())


def test_foreign_safetensors_file_loads_flat(tmp_path):
    import safetensors.numpy

    path = str(tmp_path / "other.safetensors")
    safetensors.numpy.save_file({"a": np.ones((2, 2), np.float32), "b": np.arange(3)}, path)
    out = pydl.load(path)
    assert sorted(out) == ["a", "b"] and isinstance(out["a"], pydl.Tensor)
    np.testing.assert_array_equal(out["b"].numpy(), np.arange(3))


def test_model_state_dict_round_trip(tmp_path):
    from pydl import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(pydl.randn(3, 4))
            self.register_buffer("count", pydl.tensor(0))

    a, b = Tiny(), Tiny()
    path = tmp_path / "tiny.safetensors"
    pydl.save(a.state_dict(), path)
    b.load_state_dict(pydl.load(path))
    np.testing.assert_array_equal(a.w.detach().numpy(), b.w.detach().numpy())


def test_save_rejects_unsupported_values_before_writing(tmp_path):
    path = tmp_path / "x.safetensors"
    pydl.save({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="cannot save an object of type object at a.b"):
        pydl.save({"a": {"b": object()}}, path)
    with pytest.raises(TypeError, match="dict keys"):
        pydl.save({(1, 2): 3}, path)
    with pytest.raises(TypeError, match="dtype"):
        pydl.save({"c": np.array([1 + 2j])}, path)
    assert path.read_bytes() == before


def test_interrupted_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    pydl.save({"w": pydl.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("simulated power cut during fsync")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        pydl.save({"w": pydl.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]  # no temp left
    np.testing.assert_array_equal(pydl.load(path)["w"].numpy(), np.ones(3))


def test_interrupted_rename_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    pydl.save({"v": 1}, path)

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        pydl.save({"v": 2}, path)
    monkeypatch.undo()
    assert pydl.load(path) == {"v": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_saved_file_has_normal_permissions(tmp_path):
    path = tmp_path / "p.safetensors"
    pydl.save({"a": 1}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def _good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    pydl.save({"w": pydl.arange(100).float(), "meta": {"epoch": 3}}, path)
    return path, path.read_bytes()


def test_truncated_file_raises_clear_error(tmp_path):
    path, raw = _good_file(tmp_path)
    for cut in (3, 20, len(raw) - 10):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="truncated|corrupt|only"):
            pydl.load(path)


def test_flipped_data_byte_fails_checksum(tmp_path):
    path, raw = _good_file(tmp_path)
    corrupt = bytearray(raw)
    corrupt[-5] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    for mmap in (False, True):
        with pytest.raises(CheckpointError, match="checksum"):
            pydl.load(path, mmap=mmap)


def _split(raw):
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header, data, resign=True):
    """A file from a header dict and data bytes; ``resign`` recomputes pydl.digest, so that
    what is tested is the structural check behind the checksum (a forged file)."""
    import hashlib

    from pydl.serialization import _digest

    meta = header.get("__metadata__", {})
    if resign and "pydl.digest" in meta:
        specs, sha = {}, {}
        for k, v in header.items():
            if k != "__metadata__":
                specs[k] = (v["dtype"], v["shape"])
                b, e = v["data_offsets"]
                sha[k] = hashlib.sha256(data[b:e]).digest()
        meta["pydl.digest"] = _digest({k: v for k, v in meta.items() if k != "pydl.digest"},
                                      specs, sha)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def test_corrupt_header_and_structure(tmp_path):
    path, raw = _good_file(tmp_path)
    (n,) = struct.unpack("<Q", raw[:8])
    header = bytearray(raw[8:8 + n])
    header[0:1] = b"["  # not a JSON object any more
    path.write_bytes(raw[:8] + bytes(header) + raw[8 + n:])
    with pytest.raises(CheckpointError, match="header"):
        pydl.load(path)
    head, data = _split(raw)
    path.write_bytes(_join(head, data))  # re-signing an unchanged header changes nothing
    assert pydl.load(path)["meta"] == {"epoch": 3}
    edits = [
        (lambda h: h["__metadata__"].update({"pydl.tree": '{"kind": "what"}'}), "structure"),
        (lambda h: h["__metadata__"].update({"pydl.version": "99"}), "version"),
        (lambda h: h["__metadata__"].update({"pydl.tree": '{"kind": "dict", "items": [["a", '
                                             '{"kind": "tensor", "name": "w"}], ["b", '
                                             '{"kind": "tensor", "name": "w"}]]}'}),
         "exactly once"),
        (lambda h: h["__metadata__"].update({"pydl.tree": '{"kind": "dict", "items": []}'}),
         "exactly once"),
        (lambda h: h["__metadata__"].update({"pydl.tree": "[" * 400 + "]" * 400}), "nests"),
        (lambda h: h["__metadata__"].pop("pydl.digest"), "digest is missing"),
        (lambda h: h["w"].update({"dtype": "F8_E8M0"}), "F8_E8M0"),
        (lambda h: h["w"].update({"shape": [-1]}), "shape"),
        (lambda h: h["w"].update({"data_offsets": [0, 4]}), "span"),
    ]
    for edit, match in edits:
        head, data = _split(raw)
        edit(head)
        path.write_bytes(_join(head, data))
        with pytest.raises(CheckpointError, match=match):
            pydl.load(path)
    # without re-signing, any change to the header is caught by the checksum
    head, data = _split(raw)
    head["__metadata__"]["pydl.tree"] = head["__metadata__"]["pydl.tree"].replace("3", "4")
    path.write_bytes(_join(head, data, resign=False))
    with pytest.raises(CheckpointError, match="checksum"):
        pydl.load(path)


def _raw_file(entries, data, metadata=None):
    """A safetensors file from (name, dtype, shape, begin, end) entries, unchecked."""
    header = {"__metadata__": metadata} if metadata is not None else {}
    for name, dtype, shape, b, e in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    return _join(header, data, resign=False)


@pytest.mark.parametrize("entries,size,match", [
    ([("a", "F32", [2], 0, 8), ("b", "F32", [2], 4, 12)], 12, "overlaps"),
    ([("a", "F32", [2], 0, 8), ("b", "F32", [2], 0, 8)], 8, "overlaps"),
    ([("a", "F32", [2], 0, 8), ("b", "F32", [2], 12, 20)], 20, "gap"),
    ([("a", "F32", [2], 0, 8)], 16, "bytes no tensor accounts for"),
    ([("a", "F32", [2], 0, 8)], 4, "truncated"),
])
def test_byte_ranges_must_tile_the_data(tmp_path, entries, size, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(_raw_file(entries, bytes(size)))
    with pytest.raises(CheckpointError, match=match):
        pydl.load(path)


def test_zero_size_tensors_may_share_an_offset(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(_raw_file([("a", "F32", [0], 0, 0), ("b", "I64", [0, 2], 0, 0),
                                ("c", "F32", [1], 0, 4)], np.float32(2).tobytes()))
    out = pydl.load(path)
    assert out["a"].shape == (0,) and out["b"].shape == (0, 2) and out["c"].tolist() == [2.0]


def test_aliased_tensors_are_refused_before_any_data_is_read(tmp_path):
    """One 8 MiB tensor referenced 4000 times: refused from the header alone."""
    nbytes = 8 << 20
    entries = [(f"t{i}", "F32", [nbytes // 4], 0, nbytes) for i in range(4000)]
    path = tmp_path / "alias.safetensors"
    with open(path, "wb") as f:
        f.write(_raw_file(entries, b""))
        f.truncate(f.tell() + nbytes)

    class Counting(io.FileIO):
        read_bytes = 0

        def read(self, n=-1):
            out = super().read(n)
            Counting.read_bytes += len(out)
            return out

        def readinto(self, b):
            k = super().readinto(b)
            Counting.read_bytes += k
            return k

    header_size = path.stat().st_size - nbytes
    with Counting(str(path), "rb") as f, pytest.raises(CheckpointError, match="overlaps"):
        pydl.load(f)
    assert Counting.read_bytes == header_size


@pytest.mark.parametrize("n", [2 ** 63, 100_000_001, 10 ** 6])
def test_header_length_beyond_bound_or_file_is_refused(tmp_path, n):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", n) + b"{}" + b" " * 6)
    with pytest.raises(CheckpointError, match="header length"):
        pydl.load(path)


def test_sparse_4gib_junk_file_is_refused_from_its_first_bytes(tmp_path):
    path = tmp_path / "junk.bin"
    with open(path, "wb") as f:
        f.write(b"\x7f" * 8)
        f.truncate(4 << 30)  # sparse: no disk, and nothing beyond 8 bytes is read
    with pytest.raises(CheckpointError, match="not a safetensors"):
        pydl.load(path)


def test_deep_or_duplicated_header_json_is_refused(tmp_path):
    path = tmp_path / "deep.safetensors"
    deep = b'{"__metadata__": {"x": "y"}, "a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    deep += b" " * (-len(deep) % 8)
    path.write_bytes(struct.pack("<Q", len(deep)) + deep)
    with pytest.raises(CheckpointError, match="nests too deeply"):
        pydl.load(path)
    shallower = deep.replace(b"[" * 5000, b"[" * 50).replace(b"]" * 5000, b"]" * 50)
    path.write_bytes(struct.pack("<Q", len(shallower)) + shallower)
    with pytest.raises(CheckpointError, match="'a'.*needs dtype"):
        pydl.load(path)
    dup = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, ' \
          b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    path.write_bytes(struct.pack("<Q", len(dup)) + dup + bytes(4))
    with pytest.raises(CheckpointError, match="twice"):
        pydl.load(path)


def test_save_refuses_nesting_deeper_than_load_reads(tmp_path):
    obj = leaf = {}
    for _ in range(150):
        leaf["x"] = {}
        leaf = leaf["x"]
    with pytest.raises(ValueError, match="nests deeper than 100"):
        pydl.save(obj, tmp_path / "deep.safetensors")
    obj = leaf = []
    for _ in range(99):
        leaf.append([])
        leaf = leaf[0]
    pydl.save(obj, tmp_path / "ok.safetensors")
    assert pydl.load(tmp_path / "ok.safetensors") == obj


def test_legacy_format_1_files_still_load(tmp_path):
    """Files from earlier pydl (format 1: a CRC-32 per tensor, no header digest)."""
    import zlib

    import safetensors.numpy

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    tree = {"kind": "dict", "items": [
        ["w", {"name": "w", "crc32": zlib.crc32(w.tobytes()), "kind": "tensor"}],
        [3, {"kind": "tuple", "items": [1.5, None, "s"]}]]}
    meta = {"format": "pydl.checkpoint", "format_version": "1", "tree": json.dumps(tree)}
    path = str(tmp_path / "v1.safetensors")
    safetensors.numpy.save_file({"w": w}, path, metadata=meta)
    out = pydl.load(path)
    _assert_same({"w": pydl.tensor(w), 3: (1.5, None, "s")}, out)
    raw = bytearray((tmp_path / "v1.safetensors").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "v1.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="CRC-32"):
        pydl.load(path)


def test_mmap_load_maps_the_file_copy_on_write(tmp_path):
    path = tmp_path / "m.safetensors"
    w = np.arange(1000, dtype=np.float64)
    pydl.save({"w": pydl.tensor(w), "a": np.ones((3, 4), np.int16), "e": pydl.zeros(0)}, path)
    before = path.read_bytes()
    out = pydl.load(path, mmap=True)
    assert not out["w"]._data.flags.owndata and out["w"]._data.flags.writeable
    np.testing.assert_array_equal(out["w"].numpy(), w)
    np.testing.assert_array_equal(out["a"], np.ones((3, 4), np.int16))
    out["w"]._data[:] = -1  # private mapping: the file does not change
    assert path.read_bytes() == before
    _assert_same(pydl.load(path), pydl.load(path, mmap=False))
    with open(path, "rb") as f, pytest.raises(ValueError, match="file path.*mmap"):
        pydl.load(f, mmap=True)


def test_load_reads_from_unseekable_streams(tmp_path):
    obj = {"w": pydl.randn(5, 3), "n": 3}
    buf = io.BytesIO()
    pydl.save(obj, buf)

    class Stream(io.RawIOBase):
        def __init__(self, data):
            self.data, self.pos = data, 0

        def readable(self):
            return True

        def readinto(self, b):
            k = min(len(b), len(self.data) - self.pos, 7)  # short reads
            b[:k] = self.data[self.pos:self.pos + k]
            self.pos += k
            return k

    _assert_same(obj, pydl.load(Stream(buf.getvalue())))
    # a stream's header is not bounded by a file size: an absurd tensor fails cleanly
    huge = _raw_file([("x", "F64", [2 ** 60], 0, 2 ** 63)], b"")
    with pytest.raises(CheckpointError, match="allocated|truncated"):
        pydl.load(Stream(huge))
    with pytest.raises(CheckpointError, match="follow"):
        pydl.load(Stream(buf.getvalue() + b"x"))
    with pytest.raises(CheckpointError, match="truncated"):
        pydl.load(Stream(buf.getvalue()[:-1]))


def _bf16_bits(x):
    return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def test_bf16_tensors_load_as_float32_with_a_warning(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, np.inf, 0.0, -0.0, 1e-40], np.float32)
    bits = _bf16_bits(values)
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(_raw_file([("x", "BF16", [7], 0, 14), ("y", "F32", [1], 16, 20)]
                               [:1], bits.tobytes()))
    with pytest.warns(UserWarning, match="BF16.*float32"):
        out = pydl.load(path)
    assert out["x"].dtype == np.float32
    np.testing.assert_array_equal(out["x"].numpy(), (bits.astype(np.uint32) << 16)
                                  .view(np.float32))


@pytest.mark.parametrize("dtype_name,code", [("bfloat16", "BF16"),
                                             ("float8_e4m3fn", "F8_E4M3"),
                                             ("float8_e5m2", "F8_E5M2")])
def test_torch_low_precision_files_load(tmp_path, dtype_name, code):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    dtype = getattr(torch, dtype_name)
    if code == "BF16":
        src = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    else:
        src = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype)
    path = str(tmp_path / f"{code}.safetensors")
    safetensors.torch.save_file({"x": src.reshape(-1, 4).contiguous(),
                                 "f": torch.ones(2)}, path)
    with pytest.warns(UserWarning, match=code):
        out = pydl.load(path)
    expected = src.float().reshape(-1, 4).numpy()
    got = out["x"].numpy()
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])


def test_interop_with_safetensors_numpy_both_ways(tmp_path):
    import safetensors.numpy

    rng = np.random.default_rng(1)
    tensors = {"f64": rng.standard_normal((3, 5)), "f16": rng.standard_normal(7).astype(
        np.float16), "i8": np.arange(-4, 4, dtype=np.int8), "u8": np.arange(9, dtype=np.uint8),
        "b": np.array([True, False, True]), "i64": np.array(7), "empty": np.zeros((0, 2),
                                                                               np.float32)}
    path = str(tmp_path / "theirs.safetensors")
    safetensors.numpy.save_file(tensors, path)
    for mmap in (False, True):
        out = pydl.load(path, mmap=mmap)
        assert list(out) == list(safetensors.numpy.load_file(path))
        for k, v in tensors.items():
            assert out[k].dtype == v.dtype and out[k].shape == v.shape
            np.testing.assert_array_equal(out[k].numpy(), v)
    ours = str(tmp_path / "ours.safetensors")
    pydl.save({k: pydl.Tensor(v) for k, v in tensors.items()}, ours)
    back = safetensors.numpy.load_file(ours)
    assert sorted(back) == sorted(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)


def test_interop_with_safetensors_torch_both_ways(tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    from pydl import nn

    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3),
                             torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    path = str(tmp_path / "torch.safetensors")
    # Hugging Face's writers add {"format": "pt"}: still a foreign file, loaded flat
    safetensors.torch.save_file(tm.state_dict(), path, metadata={"format": "pt"})
    sd = pydl.load(path)
    pm = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(),
                       nn.Linear(3 * 4 * 4, 5))
    pm.load_state_dict(sd)
    for (k, a), (k2, b) in zip(tm.state_dict().items(), pm.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    ours = str(tmp_path / "pydl.safetensors")
    pydl.save(pm.state_dict(), ours)
    back = safetensors.torch.load_file(ours)
    tm2 = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3),
                              torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    tm2.load_state_dict(back)
    for (k, a), (_, b) in zip(tm.state_dict().items(), tm2.state_dict().items()):
        assert a.dtype == b.dtype and torch.equal(a, b), k


def test_big_endian_arrays_are_stored_little_endian(tmp_path):
    import safetensors.numpy

    path = tmp_path / "be.safetensors"
    pydl.save({"a": np.arange(5, dtype=">i4"), "t": pydl.Tensor(np.arange(3, dtype=">f8"))},
              path)
    out = pydl.load(path)
    assert out["a"].dtype == np.dtype("<i4") and out["a"].tolist() == [0, 1, 2, 3, 4]
    assert out["t"].dtype == np.float64 and out["t"].tolist() == [0.0, 1.0, 2.0]
    assert safetensors.numpy.load_file(str(path))["a"].tolist() == [0, 1, 2, 3, 4]


def test_pt_files_are_written_through_the_same_atomic_path(tmp_path):
    real = tmp_path / "w.pt"
    pydl.save({"w": pydl.ones(2)}, real)
    os.chmod(real, 0o640)
    link = tmp_path / "link.pt"
    link.symlink_to(real)
    pydl.save({"w": pydl.zeros(3)}, link)
    assert link.is_symlink() and (real.stat().st_mode & 0o777) == 0o640
    assert pydl.load(real)["w"].tolist() == [0.0, 0.0, 0.0]
    assert pydl.load(real, mmap=True)["w"].tolist() == [0.0, 0.0, 0.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.pt", "w.pt"]


def test_save_writes_through_symlinks_and_keeps_the_mode(tmp_path):
    real = tmp_path / "real" / "ck.safetensors"
    real.parent.mkdir()
    pydl.save({"v": 1}, real)
    os.chmod(real, 0o600)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(real)
    pydl.save({"v": 2}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert pydl.load(real) == {"v": 2}
    assert (real.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["ck.safetensors"]


def test_stale_temporaries_of_dead_savers_are_removed(tmp_path):
    import subprocess
    import sys

    from pydl.serialization import _HOST

    path = tmp_path / "ck.safetensors"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for suffix in ("0a0b0c0d", "1"):
        (tmp_path / f".ck.safetensors.pydl-tmp-{_HOST}-{dead.pid}-{suffix}").write_bytes(b"x")
    alive = tmp_path / f".ck.safetensors.pydl-tmp-{_HOST}-{os.getpid()}-2"  # a save under way
    alive.write_bytes(b"y")
    other_host = tmp_path / f".ck.safetensors.pydl-tmp-00000000-{dead.pid}-3"
    other_host.write_bytes(b"z")
    other_name = tmp_path / f".other.pydl-tmp-{_HOST}-{dead.pid}-4"
    other_name.write_bytes(b"w")
    pydl.save({"v": 1}, path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([path.name, alive.name, other_host.name, other_name.name])


@pytest.mark.parametrize("content,match", [
    (b"PK\x03\x04" + b"\x00" * 100, "zip archive"),
    (b"\x80\x04\x95" + b"\x00" * 100, "pickle"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "PNG"),
    (b"hello world, not a checkpoint", "not a safetensors"),
    (b"", "only 0 bytes"),
])
def test_foreign_files_raise_clear_error(tmp_path, content, match):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        pydl.load(path)
    assert issubclass(CheckpointError, ValueError)


def test_pickle_payload_is_never_executed(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo should-not-run > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError):
        pydl.load(path)
    assert not (tmp_path / "pwned").exists()


def test_map_location(tmp_path):
    path = tmp_path / "m.safetensors"
    pydl.save({"w": pydl.ones(2)}, path)
    out = pydl.load(path, map_location="cpu")
    assert out["w"].device.type == "cpu"


@pytest.mark.parametrize("make_opt,make_sched", [
    (lambda ps: pydl.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99)),
     lambda o: pydl.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)),
    (lambda ps: pydl.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
     lambda o: pydl.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    (lambda ps: pydl.optim.RMSprop(ps, lr=0.01, momentum=0.5),
     lambda o: pydl.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0)),
])
def test_optimizer_and_scheduler_resume_exactly(tmp_path, make_opt, make_sched):
    """Train 3 steps, checkpoint model + optimizer + scheduler through a file, continue 3 steps
    in fresh objects: the result equals 6 uninterrupted steps bit for bit."""
    from pydl import nn

    rng = np.random.default_rng(0)
    xs = [pydl.from_numpy(rng.standard_normal((4, 5)).astype(np.float32)) for _ in range(6)]

    def fresh():
        pydl.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 2))
        opt = make_opt(model.parameters())
        return model, opt, make_sched(opt)

    def train(model, opt, sched, batches):
        for x in batches:
            opt.zero_grad()
            loss = model(x).square().mean()
            loss.backward()
            opt.step()
            if isinstance(sched, pydl.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(1.0)  # never improves: the lr drops every step
            else:
                sched.step()

    model, opt, sched = fresh()
    train(model, opt, sched, xs)

    m1, o1, s1 = fresh()
    train(m1, o1, s1, xs[:3])
    path = tmp_path / "resume.safetensors"
    pydl.save({"model": m1.state_dict(), "optimizer": o1.state_dict(),
               "scheduler": s1.state_dict()}, path)
    ckpt = pydl.load(path)
    m2, o2, s2 = fresh()
    m2.load_state_dict(ckpt["model"])
    o2.load_state_dict(ckpt["optimizer"])
    s2.load_state_dict(ckpt["scheduler"])
    train(m2, o2, s2, xs[3:])
    for (name, a), (_, b) in zip(model.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert opt.param_groups[0]["lr"] == o2.param_groups[0]["lr"]
    for key, value in sched.state_dict().items():
        if not callable(value):
            assert s2.state_dict()[key] == value, key


def test_tied_weights_are_stored_once_and_load_sharing_memory(tmp_path):
    """A decoder tied to its encoder (nn.TiedLinear: one Parameter under two state_dict names)
    is saved once, as torch.save keeps one storage; load gives both names over one array."""
    from pydl import nn

    pydl.manual_seed(0)
    enc = nn.Linear(6, 3)
    model = nn.Sequential(enc, nn.Tanh(), nn.TiedLinear(enc))
    sd = model.state_dict()
    names = [k for k in sd if k.endswith("weight")]
    assert len(names) == 2
    path = tmp_path / "tied.safetensors"
    pydl.save({"model": sd, "copy": np.ones(3), "again": sd[names[0]]}, path)
    head, data = _split(path.read_bytes())
    stored = [k for k in head if k != "__metadata__"]
    weights = [k for k in stored if k.endswith("weight")]
    assert len(weights) == 1, stored  # one copy of the tied weight, not two (or three)
    assert len(data) == sum(int(np.prod(v["shape"])) * 4 for k, v in head.items()
                            if k != "__metadata__" and v["dtype"] == "F32") + 3 * 8
    out = pydl.load(path)
    a, b = (out["model"][k] for k in names)
    assert np.shares_memory(a.numpy(), b.numpy()) and np.shares_memory(a.numpy(),
                                                                       out["again"].numpy())
    np.testing.assert_array_equal(a.numpy(), enc.weight.detach().numpy())
    fresh = nn.Sequential(nn.Linear(6, 3), nn.Tanh(), None)
    fresh[2] = nn.TiedLinear(fresh[0])
    fresh.load_state_dict(out["model"])
    x = pydl.randn(4, 6)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_shared_references_are_checked(tmp_path):
    path = tmp_path / "t.safetensors"
    w = pydl.ones(2)
    pydl.save({"a": w, "b": w}, path)
    good_head, data = _split(path.read_bytes())
    tree = json.loads(good_head["__metadata__"]["pydl.tree"])
    assert [node for _, node in tree["items"]][1].get("shared") is True
    for edit, match in [
        (lambda t: t["items"][1][1].update({"name": "nothing"}), "not stored"),
        (lambda t: t["items"][1][1].update({"shared": 1}), "reference"),
        (lambda t: t["items"][1][1].pop("shared"), "exactly once"),
        (lambda t: t["items"][0][1].update({"shared": True}), "not stored"),  # no original
    ]:
        head = json.loads(json.dumps(good_head))
        t = json.loads(head["__metadata__"]["pydl.tree"])
        edit(t)
        head["__metadata__"]["pydl.tree"] = json.dumps(t)
        path.write_bytes(_join(head, data))
        with pytest.raises(CheckpointError, match=match):
            pydl.load(path)
