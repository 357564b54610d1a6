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
    out["model"]["conv.bias"].data[0] = 1.0
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
    with pytest.raises(CheckpointError, match="CRC-32"):
        pydl.load(path)


def test_corrupt_header_and_structure(tmp_path):
    path, raw = _good_file(tmp_path)
    (n,) = struct.unpack("<Q", raw[:8])
    header = bytearray(raw[8:8 + n])
    header[0:1] = b"["  # not a JSON object any more
    path.write_bytes(raw[:8] + bytes(header) + raw[8 + n:])
    with pytest.raises(CheckpointError, match="header"):
        pydl.load(path)
    meta = json.loads(raw[8:8 + n])
    meta["__metadata__"]["tree"] = '{"kind": "what"}'
    new_header = json.dumps(meta).encode()
    new_header += b" " * (-len(new_header) % 8)
    path.write_bytes(struct.pack("<Q", len(new_header)) + new_header + raw[8 + n:])
    with pytest.raises(CheckpointError, match="structure"):
        pydl.load(path)
    meta["__metadata__"]["format_version"] = "99"
    new_header = json.dumps(meta).encode()
    new_header += b" " * (-len(new_header) % 8)
    path.write_bytes(struct.pack("<Q", len(new_header)) + new_header + raw[8 + n:])
    with pytest.raises(CheckpointError, match="version"):
        pydl.load(path)


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
