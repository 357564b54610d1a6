"""The `pydl` command: train end to end on a few batches, resume exactly, info, bench."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl
from pydl import cli

FAST = ["--subset", "160", "--batch-size", "32", "--no-progress"]


def _train(tmp_path, name, *args):
    out = str(tmp_path / name)
    code = cli.main(["train", "--out", out, *FAST, *args])
    assert code == 0
    return out


def _tensors(path):
    return {k: v.numpy() for k, v in pydl.load(path).items()}


def test_train_end_to_end_writes_outputs(tmp_path, capsys):
    out = _train(tmp_path, "run", "--epochs", "2")
    text = capsys.readouterr().out
    assert "test accuracy:" in text and "lenet" in text
    for name in ("checkpoint.safetensors", "model.safetensors", "history.json", "results.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, "history.json")) as f:
        hist = json.load(f)
    assert hist["epoch"] == [0, 1]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert len(hist["history"][key]) == 2, key
    # cosine schedule over 2 epochs: lr 0.01 then 0.005
    assert hist["history"]["lr"] == pytest.approx([0.01, 0.005])
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert 0.0 <= results["test_accuracy"] <= 1.0 and results["epochs"] == 2
    # the saved model reproduces the printed test accuracy
    model = pydl.models.LeNet5(1, 10, input_size=8)
    model.load_state_dict(pydl.load(os.path.join(out, "model.safetensors")))
    ckpt = pydl.load(os.path.join(out, "checkpoint.safetensors"))
    assert ckpt["epochs_done"] == 2 and ckpt["config"]["epochs"] == 2
    from pydl.data import DataLoader, Subset
    from pydl.data.datasets import Digits
    from pydl.data.transforms import Normalize

    test = Digits(train=False)
    norm = Normalize(ckpt["normalize"]["mean"], ckpt["normalize"]["std"])
    test.data = norm(test.data)
    res = pydl.train.evaluate(model, DataLoader(Subset(test, range(160)), batch_size=64))
    assert res["accuracy"] == pytest.approx(results["test_accuracy"])
    if os.path.isfile(os.path.join(out, "curves.png")):
        with open(os.path.join(out, "curves.png"), "rb") as f:
            assert f.read(4) == b"\x89PNG"
    else:
        assert "matplotlib is not installed" in text


def test_train_learns_on_digits(tmp_path, capsys):
    """A few epochs on 400 digits already beat chance by far (10 classes: 10%)."""
    out = str(tmp_path / "learn")
    cli.main(["train", "--out", out, "--subset", "400", "--epochs", "4", "--no-progress"])
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["test_accuracy"] > 0.6


def test_resume_after_interruption_continues_exactly(tmp_path, capsys, monkeypatch):
    # dropout and early stopping: the RNG and callback states must be restored too
    args = ["--model", "mlp", "--dropout", "0.2", "--patience", "5", "--epochs", "3"]
    straight = _train(tmp_path, "straight", *args)

    save_epoch = cli._SaveEachEpoch.on_epoch_end

    def crash_after_first_epoch(self, epoch, logs, model):
        save_epoch(self, epoch, logs, model)
        raise KeyboardInterrupt  # the run dies right after the epoch-1 checkpoint

    monkeypatch.setattr(cli._SaveEachEpoch, "on_epoch_end", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, "split", *args)
    monkeypatch.undo()
    split = str(tmp_path / "split")
    assert pydl.load(os.path.join(split, "checkpoint.safetensors"))["epochs_done"] == 1
    assert cli.main(["train", "--resume", split, "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    a, b = _tensors(os.path.join(straight, "model.safetensors")), \
        _tensors(os.path.join(split, "model.safetensors"))
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with open(os.path.join(straight, "history.json")) as f:
        ha = json.load(f)["history"]
    with open(os.path.join(split, "history.json")) as f:
        hb = json.load(f)["history"]
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        assert ha[key] == hb[key], key
    # resuming a finished run trains nothing more; --epochs extends it
    assert cli.main(["train", "--resume", split, "--no-progress"]) == 0
    assert "already" in capsys.readouterr().out
    assert cli.main(["train", "--resume", split, "--epochs", "4", "--no-progress"]) == 0
    with open(os.path.join(split, "history.json")) as f:
        assert json.load(f)["epoch"] == [0, 1, 2, 3]


def test_resume_errors(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint"):
        cli.main(["train", "--resume", str(tmp_path / "missing")])
    out = _train(tmp_path, "r", "--epochs", "1")
    with pytest.raises(SystemExit, match="--lr"):
        cli.main(["train", "--resume", out, "--lr", "0.5"])
    with open(os.path.join(out, "checkpoint.safetensors"), "wb") as f:
        f.write(b"garbage" * 10)
    with pytest.raises(SystemExit, match="cannot resume"):
        cli.main(["train", "--resume", out])
    pydl.save({"some": "thing"}, os.path.join(out, "checkpoint.safetensors"))
    with pytest.raises(SystemExit, match="not a `pydl train` checkpoint"):
        cli.main(["train", "--resume", out])


def test_train_argument_errors(tmp_path):
    with pytest.raises(SystemExit, match="--lr must be positive"):
        cli.main(["train", "--lr", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="needs --data-dir"):
        cli.main(["train", "--data", "mnist", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        cli.main(["train", "--model", "resnet"])


def test_plot_skipped_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = _train(tmp_path, "noplot", "--epochs", "1")
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(out, "curves.png"))


def test_plot_written_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    out = _train(tmp_path, "plot", "--epochs", "2")
    with open(os.path.join(out, "curves.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_info_prints_config(capsys):
    assert cli.main(["info"]) == 0
    assert "simd path" in capsys.readouterr().out


def test_bench_without_suites_is_a_clear_error(monkeypatch, capsys):
    from pydl import bench

    def missing():
        raise bench.BenchmarksNotFound("pydl bench: this pydl has no benchmarks")

    monkeypatch.setattr(bench, "suites_package", missing)
    assert cli.main(["bench"]) == 1
    assert "has no benchmarks" in capsys.readouterr().err


def test_bench_dispatches_to_benchmarks():
    with pytest.raises(SystemExit):  # the benchmarks' own parser rejects the unknown suite
        cli.main(["bench", "no-such-suite"])


def test_bench_passes_its_arguments_through_untouched(monkeypatch):
    from pydl import bench

    seen = {}
    monkeypatch.setattr(bench, "main", lambda argv, prog: seen.update(argv=argv, prog=prog) or 0)
    argv = ["gemm", "--json", "out.json", "--quick", "--plot", "p.png", "conv"]
    assert cli.main(["bench"] + argv) == 0
    assert seen == {"argv": argv, "prog": "pydl bench"}


def test_bench_suites_come_from_the_pydl_under_test():
    # Installed: pydl/benchmarks inside the package (the wheel maps the top-level benchmarks/
    # there); in-place developer build: the checkout's benchmarks/ beside pydl/.
    from pydl import bench

    package = bench.suites_package()
    pydl_dir = os.path.dirname(os.path.abspath(pydl.__file__))
    if package.__name__ == "pydl.benchmarks":
        assert os.path.dirname(os.path.abspath(package.__file__)) == \
            os.path.join(pydl_dir, "benchmarks")
    else:
        assert package.__name__ == "benchmarks"
        assert os.path.dirname(os.path.dirname(os.path.abspath(package.__file__))) == \
            os.path.dirname(pydl_dir)
    runner = __import__(package.__name__ + ".__main__", fromlist=["available_suites"])
    assert {"gemm", "conv", "pool", "batchnorm", "optim", "cuda"} <= set(
        runner.available_suites())


def test_bench_module_runs_a_suite_outside_the_checkout(tmp_path):
    # python -m pydl.bench from outside any checkout, as a user of the wheel runs it; with
    # OPENBLAS_CORETYPE set, the harness must restart without it before NumPy loads.
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["OPENBLAS_CORETYPE"] = "Haswell"
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "pydl.bench", "elementwise", "--quick",
                          "--peers", "numpy", "--json", str(out)], capture_output=True,
                         text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].startswith("machine: ") and f"simd {pydl._C.simd_path()}" in lines[1]
    assert lines[2].startswith("limits:  peak ") and "GFLOP/s" in lines[2] and "GB/s" in lines[2]
    assert lines[3].startswith("openblas: core ") and "removed OPENBLAS_CORETYPE=Haswell" in lines[3]
    data = json.loads(out.read_text())
    assert data["meta"]["limits"]["peak_gflops"]["float32"] > 0
    assert data["meta"]["limits"]["dram_gbs"] > 0
    rows = [r for r in data["results"] if r.get("limit")]
    assert rows and all(r["limit"]["kind"] == "DRAM" for r in rows)
    assert all(r["limit"]["percent"]["pydl"] > 0 for r in rows)
    assert any("numpy" in r["speedups"] for r in data["results"])


def test_module_entry_point_runs(tmp_path):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    # Run outside the source checkout: `python -m` puts the working directory first on sys.path,
    # and a checkout's pydl/ has no compiled _C unless built in place.
    res = subprocess.run([sys.executable, "-m", "pydl.cli", "info"], capture_output=True,
                         text=True, env=env, timeout=120, cwd=tmp_path)
    assert res.returncode == 0 and "pydl" in res.stdout


def _write_mnist(folder, rng):
    import struct

    for prefix, n in (("train", 48), ("t10k", 16)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s)
                                                               for s in arr.shape)
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + arr.tobytes())


def _write_cifar(folder, rng):
    for name, n in [(f"data_batch_{i}.bin", 8) for i in range(1, 6)] + [("test_batch.bin", 8)]:
        records = rng.integers(0, 256, (n, 3073)).astype(np.uint8)
        records[:, 0] = rng.integers(0, 10, n)
        (folder / name).write_bytes(records.tobytes())


@pytest.mark.parametrize("model,data", [("mlp", "mnist"), ("vgg", "digits"),
                                        ("lenet", "cifar10"), ("vgg", "fashion-mnist")])
def test_train_other_models_and_data(tmp_path, capsys, model, data):
    rng = np.random.default_rng(0)
    args = ["--model", model, "--data", data, "--epochs", "1", "--batch-size", "16",
            "--no-progress", "--out", str(tmp_path / "run")]
    if data != "digits":
        folder = tmp_path / "files"
        folder.mkdir()
        (_write_cifar if data == "cifar10" else _write_mnist)(folder, rng)
        args += ["--data-dir", str(folder)]
    else:
        args += ["--subset", "64"]
    assert cli.main(["train", *args]) == 0
    assert "test accuracy" in capsys.readouterr().out
