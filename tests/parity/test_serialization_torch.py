"""PyTorch's .pt format both ways (pydl/serialization_pt.py): files torch.save writes load in
pydl, files pydl.save writes load with torch.load(weights_only=True); pydl never imports torch
for either (checked in a fresh interpreter)."""
import collections
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl
from pydl.serialization import CheckpointError

torch = pytest.importorskip("torch")

DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]


def _np_array(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    return np.asarray(rng.standard_normal(shape) * 50).astype(dtype)


def _check(p, t):
    assert isinstance(p, pydl.Tensor) and isinstance(t, torch.Tensor)
    assert str(p.dtype) == str(t.dtype).replace("torch.", "")
    assert tuple(p.shape) == tuple(t.shape)
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    assert p.requires_grad == t.requires_grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 5), (2, 0, 4), (2, 3, 4)])
def test_torch_to_pydl_dtypes_and_shapes(tmp_path, dtype, shape):
    t = torch.from_numpy(_np_array(dtype, shape))
    torch.save({"t": t}, tmp_path / "t.pt")
    _check(pydl.load(tmp_path / "t.pt")["t"], t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 5), (2, 3, 4)])
def test_pydl_to_torch_dtypes_and_shapes(tmp_path, dtype, shape):
    p = pydl.from_numpy(_np_array(dtype, shape))
    pydl.save({"t": p}, tmp_path / "t.pt")
    _check(p, torch.load(tmp_path / "t.pt", weights_only=True)["t"])


def test_torch_views_and_shared_storage_load_as_shared_views(tmp_path):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    obj = {"base": base, "t": base.t(), "slice": base[1:3, ::2], "row": base[2],
           "expanded": torch.ones(3, 1).expand(3, 4), "narrow": base.view(-1)[5:9]}
    torch.save(obj, tmp_path / "v.pt")
    got = pydl.load(tmp_path / "v.pt")
    for k, t in obj.items():
        _check(got[k], t)
        assert got[k].stride() == t.stride(), k
    got["base"].numpy_view()[2, 0] = -7.0
    assert got["row"][0].item() == -7.0 and got["t"][0, 2].item() == -7.0


def test_pydl_views_and_shared_storage_reach_torch_shared(tmp_path):
    base = pydl.arange(24).reshape(4, 6).double()
    obj = {"base": base, "t": base.t(), "slice": base[1:3, ::2], "row": base[2],
           "rev": pydl.from_numpy(np.arange(5.0)[::-1])}
    pydl.save(obj, tmp_path / "v.pt")
    got = torch.load(tmp_path / "v.pt", weights_only=True)
    for k, p in obj.items():
        _check(p, got[k])
    assert got["t"].stride() == (1, 6) and got["slice"].stride() == (6, 2)
    assert got["t"].untyped_storage().data_ptr() == got["base"].untyped_storage().data_ptr()
    got["base"][2, 0] = -7.0
    assert got["row"][0].item() == -7.0


def test_torch_model_and_optimizer_state_into_pydl(tmp_path):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3),
                             torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    topt = torch.optim.Adam(tm.parameters(), lr=0.01)
    tm(torch.randn(2, 1, 6, 6)).sum().backward()
    topt.step()
    torch.save({"model": tm.state_dict(), "optimizer": topt.state_dict(), "epoch": 4},
               tmp_path / "ck.pth")
    ck = pydl.load(tmp_path / "ck.pth")
    assert ck["epoch"] == 4 and type(ck["model"]) is collections.OrderedDict
    assert list(ck["model"]) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        _check(ck["model"][k], v)
    pm = pydl.nn.Sequential(pydl.nn.Conv2d(1, 3, 3), pydl.nn.BatchNorm2d(3), pydl.nn.Flatten(),
                            pydl.nn.Linear(3 * 4 * 4, 2))
    pm.load_state_dict(ck["model"])
    pm.eval()
    tm.eval()
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(pm(pydl.from_numpy(x)).detach().numpy(),
                               tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    state = ck["optimizer"]["state"][0]
    _check(state["exp_avg"], topt.state_dict()["state"][0]["exp_avg"])
    assert ck["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_pydl_model_and_optimizer_state_into_torch(tmp_path):
    pydl.manual_seed(0)
    pm = pydl.nn.Sequential(pydl.nn.Linear(3, 4), pydl.nn.ReLU(), pydl.nn.Linear(4, 2))
    popt = pydl.optim.SGD(pm.parameters(), lr=0.1, momentum=0.9)
    pm(pydl.randn(5, 3)).sum().backward()
    popt.step()
    pydl.save({"model": pm.state_dict(), "optimizer": popt.state_dict()}, tmp_path / "ck.pt")
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    tm.load_state_dict(ck["model"])
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    topt.load_state_dict(ck["optimizer"])
    x = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    for m, o, lib in ((pm, popt, pydl), (tm, topt, torch)):
        o.zero_grad()
        m(lib.from_numpy(x)).sum().backward()
        o.step()
    for a, b in zip(pm.parameters(), tm.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6,
                                   atol=1e-7)


def test_nested_values_round_trip_through_torch(tmp_path):
    obj = {"a": [pydl.ones(2), (pydl.zeros(1, dtype=pydl.int64), "s")], "n": None,
           "f": 0.25, "i": -(2 ** 40), "b": True, "bytes": b"\x00\x01", "set": {3},
           "dtype": pydl.float16, "device": pydl.device("cpu"),
           5: {"deep": {"er": pydl.tensor(1.5)}},
           "grad": pydl.ones(2, requires_grad=True),
           "param": pydl.nn.Parameter(pydl.ones(1)), "od": collections.OrderedDict(z=1, a=2)}
    pydl.save(obj, tmp_path / "n.pt")
    t = torch.load(tmp_path / "n.pt", weights_only=True)
    assert t["n"] is None and t["f"] == 0.25 and t["i"] == -(2 ** 40) and t["b"] is True
    assert t["bytes"] == b"\x00\x01" and t["set"] == {3}
    assert t["dtype"] is torch.float16 and t["device"] == torch.device("cpu")
    assert t[5]["deep"]["er"].item() == 1.5 and t["a"][1][1] == "s"
    assert t["grad"].requires_grad and isinstance(t["param"], torch.nn.Parameter)
    assert type(t["od"]) is collections.OrderedDict and list(t["od"]) == ["z", "a"]
    torch.save(t, tmp_path / "back.pt")  # and back again
    back = pydl.load(tmp_path / "back.pt")
    assert back["dtype"] == pydl.float16 and back["device"] == pydl.device("cpu")
    assert isinstance(back["param"], pydl.nn.Parameter) and back["grad"].requires_grad
    assert back[5]["deep"]["er"].item() == 1.5 and back["bytes"] == b"\x00\x01"
    assert back["a"][1] == (back["a"][1][0], "s") and isinstance(back["a"][1], tuple)


def test_torch_mmap_load_reads_pydl_files(tmp_path):
    # mmap=True needs every storage aligned in the file, as torch.save aligns them
    pydl.save({"w": pydl.arange(100).float(), "b": pydl.ones(3, dtype=pydl.uint8)},
              tmp_path / "m.pt")
    t = torch.load(tmp_path / "m.pt", weights_only=True, mmap=True)
    assert t["w"].tolist() == list(map(float, range(100))) and t["b"].tolist() == [1, 1, 1]


def test_torch_objects_beyond_weights_are_refused_as_torch_refuses(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"a": np.ones(2)}, path)  # NumPy objects: globals outside the allowlist
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match="Unsupported global"):
        pydl.load(path)
    torch.save(torch.nn.Linear(2, 2), path)  # a whole module: code, not weights
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match="Unsupported global: GLOBAL torch.nn"):
        pydl.load(path)
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy format"):
        pydl.load(path)
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, path)
    with pytest.raises(CheckpointError, match="bfloat16"):
        pydl.load(path)


def test_pydl_reads_and_writes_pt_without_importing_torch(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "in.pt")
    code = (f"import sys, pydl; d = pydl.load({str(tmp_path / 'in.pt')!r}); "
            f"pydl.save(d, {str(tmp_path / 'out.pt')!r}); "
            f"assert 'torch' not in sys.modules, 'torch imported'; print(d['w'].tolist())")
    # The pydl under test, from outside the checkout (a source tree without a compiled _C in
    # the working directory would shadow an installed pydl).
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1.0, 1.0, 1.0]"
    assert torch.load(tmp_path / "out.pt", weights_only=True)["w"].tolist() == [1.0] * 3
