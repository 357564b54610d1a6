"""pydl.save / pydl.load in PyTorch's .pt format (pydl/serialization_pt.py), without torch:
round trips, dtypes, views and shared storages, the zip layout, atomic writes, and hostile
files (the weights-only unpickler). tests/parity/test_serialization_torch.py checks the same
files against torch itself."""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import pydl
from pydl.serialization import CheckpointError

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]


def _tensor(dtype, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        return pydl.from_numpy(np.asarray(rng.random(shape) < 0.5))
    return pydl.from_numpy(np.asarray(rng.standard_normal(shape) * 50).astype(dtype))


def _same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, pydl.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy_view(), b.numpy_view())
        assert a.requires_grad == b.requires_grad
    elif isinstance(a, dict):
        assert list(a.items()).__len__() == len(b) and list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and type(a) is type(b)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 5), (2, 0, 4), (2, 3, 4)])
def test_round_trip_dtypes_and_shapes(tmp_path, dtype, shape):
    t = _tensor(dtype, shape)
    path = tmp_path / "t.pt"
    pydl.save({"t": t}, path)
    _same(pydl.load(path), {"t": t})


def test_round_trip_nested_state(tmp_path):
    model = pydl.nn.Sequential(pydl.nn.Linear(3, 4), pydl.nn.BatchNorm1d(4),
                               pydl.nn.Linear(4, 2))
    opt = pydl.optim.Adam(model.parameters(), lr=0.01)
    model(pydl.randn(5, 3)).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
           "numbers": {"big": 2 ** 100, "neg": -(2 ** 40), "nan": float("nan"), "s": "héllo",
                       "none": None, "t": True, 1.5: "float key", 7: "int key"},
           "tuple": (1, (2, "x"), [], ()), "bytes": b"\x00\xff", "set": {1, 2},
           "dtype": pydl.float64, "device": pydl.device("cpu"),
           "grad": pydl.ones(2, requires_grad=True),
           "od": collections.OrderedDict([("b", 1), ("a", 2)])}
    path = tmp_path / "ck.pth"
    pydl.save(obj, path)
    got = pydl.load(path)
    assert type(got["model"]) is collections.OrderedDict
    _same(got["model"], model.state_dict())
    _same(got["optimizer"], opt.state_dict())
    _same(got["numbers"], obj["numbers"])
    _same(got["tuple"], obj["tuple"])
    assert got["bytes"] == b"\x00\xff" and got["set"] == {1, 2}
    assert got["dtype"] == pydl.float64 and got["device"] == pydl.device("cpu")
    assert got["grad"].requires_grad and got["grad"].is_leaf
    assert list(got["od"]) == ["b", "a"] and type(got["od"]) is collections.OrderedDict
    # restoring continues training exactly
    model2 = pydl.nn.Sequential(pydl.nn.Linear(3, 4), pydl.nn.BatchNorm1d(4),
                                pydl.nn.Linear(4, 2))
    model2.load_state_dict(got["model"])
    opt2 = pydl.optim.Adam(model2.parameters(), lr=0.01)
    opt2.load_state_dict(got["optimizer"])
    x = pydl.randn(5, 3)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_parameters_stay_parameters(tmp_path):
    lin = pydl.nn.Linear(2, 3)
    frozen = pydl.nn.Parameter(pydl.ones(2), requires_grad=False)
    pydl.save({"w": lin.weight, "f": frozen}, tmp_path / "p.pt")
    got = pydl.load(tmp_path / "p.pt")
    assert isinstance(got["w"], pydl.nn.Parameter) and got["w"].requires_grad
    assert isinstance(got["f"], pydl.nn.Parameter) and not got["f"].requires_grad
    np.testing.assert_array_equal(got["w"].detach().numpy(), lin.weight.detach().numpy())


def test_views_keep_their_strides_and_share_storage(tmp_path):
    base = pydl.arange(24).reshape(4, 6).double()
    obj = {"base": base, "t": base.t(), "slice": base[1:3, ::2], "row": base[2],
           "other": pydl.ones(3)}
    path = tmp_path / "v.pt"
    pydl.save(obj, path)
    with zipfile.ZipFile(path) as zf:  # base, its views: one storage; other: its own
        assert sorted(n for n in zf.namelist() if "/data/" in n) == ["archive/data/0",
                                                                    "archive/data/1"]
    got = pydl.load(path)
    for k in obj:
        np.testing.assert_array_equal(got[k].numpy(), obj[k].numpy())
    assert got["t"].stride() == (1, 6) and got["slice"].stride() == (6, 2)
    for k in ("t", "slice", "row"):
        assert np.shares_memory(got[k].numpy_view(), got["base"].numpy_view())
    got["base"].numpy_view()[2, 0] = -1.0  # one storage: writes show through the views
    assert got["row"][0].item() == -1.0 and got["t"][0, 2].item() == -1.0
    assert not np.shares_memory(got["other"].numpy_view(), got["base"].numpy_view())


def test_negative_strides_and_odd_views_are_copied(tmp_path):
    a = np.arange(10, dtype=np.float32)
    obj = {"rev": pydl.from_numpy(a[::-1]), "bytes_view": pydl.from_numpy(a.view(np.int32)[2:5])}
    pydl.save(obj, tmp_path / "r.pt")
    got = pydl.load(tmp_path / "r.pt")
    np.testing.assert_array_equal(got["rev"].numpy(), a[::-1])
    np.testing.assert_array_equal(got["bytes_view"].numpy(), a.view(np.int32)[2:5])


def test_zip_layout_as_torch_writes_it(tmp_path):
    path = tmp_path / "layout.pt"
    pydl.save({"a": pydl.ones(3), "b": pydl.zeros(2, dtype=pydl.int64)}, path)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl"
        assert {"archive/byteorder", "archive/version", "archive/.format_version",
                "archive/.storage_alignment", "archive/data/0", "archive/data/1"} <= set(names)
        assert zf.read("archive/byteorder") == b"little" and zf.read("archive/version") == b"3\n"
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            (name_len, extra_len) = struct.unpack("<HH", raw[info.header_offset + 26:
                                                              info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            assert start % 64 == 0, info.filename  # records aligned as torch aligns them
        assert zf.read("archive/data/0") == np.ones(3, np.float32).tobytes()
        pkl = zf.read("archive/data.pkl")
    assert pkl[:2] == b"\x80\x02"  # protocol 2, as torch.save
    assert b"ctorch._utils\n_rebuild_tensor_v2\n" in pkl and b"ctorch\nFloatStorage\n" in pkl


def test_file_objects_and_name_picks_format(tmp_path):
    buf = io.BytesIO()
    pydl.save({"a": pydl.ones(2)}, buf)  # no name: safetensors, as before
    assert buf.getvalue()[:2] != b"PK"
    with open(tmp_path / "f.pt", "wb") as fh:
        pydl.save({"a": pydl.ones(2)}, fh)
    assert (tmp_path / "f.pt").read_bytes()[:4] == b"PK\x03\x04"
    with open(tmp_path / "f.pt", "rb") as fh:
        assert pydl.load(fh)["a"].tolist() == [1.0, 1.0]
    pydl.save({"a": pydl.ones(2)}, str(tmp_path / "UPPER.PTH"))
    assert (tmp_path / "UPPER.PTH").read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("name", ["m.pt", "m.safetensors"])
def test_saving_a_module_names_state_dict(tmp_path, name):
    model = pydl.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        pydl.save(model, tmp_path / name)
    with pytest.raises(TypeError, match=r"state_dict\(\)"):
        pydl.save({"model": model}, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_pt_refuses_unsupported_values_before_writing(tmp_path):
    path = tmp_path / "x.pt"
    pydl.save({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="NumPy array at a.b"):
        pydl.save({"a": {"b": np.zeros(2)}}, path)
    with pytest.raises(TypeError, match="type object at c"):
        pydl.save({"c": object()}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]


def test_interrupted_pt_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    pydl.save({"w": pydl.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("simulated power cut during fsync")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        pydl.save({"w": pydl.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_weights_only_false_and_map_location(tmp_path):
    path = tmp_path / "m.pt"
    pydl.save({"w": pydl.ones(2)}, path)
    with pytest.raises(ValueError, match="never unpickles"):
        pydl.load(path, weights_only=False)
    assert pydl.load(path, weights_only=True, map_location="cpu")["w"].device.type == "cpu"
    assert pydl.load(path, map_location={"cpu": "cpu"})["w"].device.type == "cpu"
    with pytest.raises(TypeError, match="map_location"):
        pydl.load(path, map_location=lambda storage, loc: storage)


# -- hostile and broken files -------------------------------------------------------------------

def _zip_with(pkl: bytes, records=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", b"little")
        for name, data in (records or {}).items():
            zf.writestr(f"archive/{name}", data)
    return buf.getvalue()


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tensor_pkl(size, stride, offset, numel, storage="FloatStorage", key="0"):
    def tup(xs):
        return b"(" + b"".join(b"K" + bytes([x]) for x in xs) + b"t"
    return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
            b"ctorch\n" + storage.encode() + b"\nX" + struct.pack("<I", len(key)) +
            key.encode() + b"X\x03\x00\x00\x00cpuK" + bytes([numel]) + b"tQK" +
            bytes([offset]) + tup(size) + tup(stride) +
            b"\x89ccollections\nOrderedDict\n)RtR.")


def test_well_formed_hand_made_tensor_loads(tmp_path):
    path = tmp_path / "ok.pt"
    path.write_bytes(_zip_with(_tensor_pkl((2, 2), (1, 2), 1, 5),
                               {"data/0": np.arange(5, dtype=np.float32).tobytes()}))
    np.testing.assert_array_equal(pydl.load(path).numpy(), [[1, 3], [2, 4]])


@pytest.mark.parametrize("make,match", [
    (lambda m: pickle.dumps(_Boom(m), protocol=2), "Unsupported global: GLOBAL posix.system"),
    (lambda m: pickle.dumps(_Boom(m), protocol=4), "Unsupported global: GLOBAL posix.system"),
    (lambda m: b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.", "builtins.eval"),
    (lambda m: b"\x80\x02c__builtin__\ngetattr\n.", "builtins.getattr"),
    (lambda m: b"\x80\x02ctorch._utils\n_load_from_bytes\n.", "_load_from_bytes"),
    (lambda m: b"\x80\x02ctorch\nload\n.", "torch.load"),
    (lambda m: b"(cos\nsystem\nX\x02\x00\x00\x00id\x85o.", "os.system"),
    (lambda m: b"(X\x02\x00\x00\x00idios\nsystem\n.", "Unsupported operand"),   # INST
    (lambda m: pickle.dumps(__import__("decimal").Decimal(1), protocol=2), "decimal.Decimal"),
    (lambda m: b"\x80\x02}}b.", "BUILD of dict"),
    (lambda m: b"\x80\x02ccollections\nOrderedDict\n)R}X\x08\x00\x00\x00__dict__K\x01sb.",
     "BUILD of OrderedDict"),
    (lambda m: b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
     "_codecs.encode"),
    (lambda m: b"\x80\x02\x82\x01.", "Unsupported operand"),                      # EXT1
    (lambda m: b"\x80\x02h\x05.", "memo key 5"),
    (lambda m: b"\x80\x02(K\x01", "truncated"),
    (lambda m: b"\x80\x02K\x01K\x02.", "malformed stack"),
    (lambda m: b"\x80\x02ctorch\nFloatStorage\n(K\x01tR.", "REDUCE"),
])
def test_hostile_pickles_are_refused_and_never_run(tmp_path, make, match):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(_zip_with(make(marker)))
    with pytest.raises(CheckpointError, match=match):
        pydl.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("size,stride,offset,numel,data_elems,match", [
    ((2, 3), (3, 1), 0, 6, 5, "has 20 bytes"),            # record shorter than numel
    ((2, 3), (3, 1), 1, 6, 6, "reaches element 6"),       # view past the storage's end
    ((4,), (2,), 0, 6, 6, "reaches element 6"),
    ((2, 2), (1,), 0, 4, 4, "differ in length"),
])
def test_tensors_outside_their_storage_are_refused(tmp_path, size, stride, offset, numel,
                                                    data_elems, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(_zip_with(_tensor_pkl(size, stride, offset, numel),
                               {"data/0": np.zeros(data_elems, np.float32).tobytes()}))
    with pytest.raises(CheckpointError, match=match):
        pydl.load(path)


def test_missing_storage_unknown_dtype_and_foreign_zips(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(_zip_with(_tensor_pkl((2,), (1,), 0, 2)))
    with pytest.raises(CheckpointError, match="storage '0' is missing"):
        pydl.load(path)
    path.write_bytes(_zip_with(_tensor_pkl((2,), (1,), 0, 2, storage="BFloat16Storage"),
                               {"data/0": b"\x00" * 4}))
    with pytest.raises(CheckpointError, match="bfloat16"):
        pydl.load(path)
    buf = io.BytesIO()
    np.savez(buf, a=np.ones(2))
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="without data.pkl"):
        pydl.load(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/constants.pkl", b"")
        zf.writestr("m/code/__torch__.py", b"")
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="TorchScript"):
        pydl.load(path)
    path.write_bytes(pickle.dumps({"legacy": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="legacy format"):
        pydl.load(path)
