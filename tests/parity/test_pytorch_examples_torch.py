"""The pytorch/examples scripts of tests/compat train on pydl as they do on PyTorch: the same
script (upstream text, torchvision swapped for the stand-in in both runs), the same data and
flags, once with ``import torch`` and once with ``import pydl as torch``. Initial weights come
from different generators, so the numbers are compared with tolerances, not bit for bit."""
import importlib.util
import os
import re

import pytest

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "compat_examples", os.path.join(HERE, "..", "compat", "test_pytorch_examples.py"))
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)


def _torch_copy(name, tmp_path):
    """The upstream script, but for torchvision -> the stand-in: import torch itself."""
    _, changes = compat.IMPORTS[name]
    with open(os.path.join(compat.EXAMPLES, name), encoding="utf-8") as f:
        text = f.read()
    for old, new in changes:
        if "torchvision" not in old:
            text = re.sub(rf"(?m)^{re.escape(new)}$", old, text)
    path = tmp_path / f"torch_{name}"
    path.write_text(text, encoding="utf-8")
    assert not any("pydl" in ln for ln in text.splitlines() if not ln.startswith("#"))
    return str(path)


def _run_both(name, args, tmp_path, sizes, monkeypatch):
    (tmp_path / "pydl").mkdir(exist_ok=True)
    (tmp_path / "torch").mkdir(exist_ok=True)
    mine = compat.run_example(name, args, tmp_path / "pydl", mnist_sizes=sizes)
    script = _torch_copy(name, tmp_path)
    with monkeypatch.context() as m:
        m.setenv("TORCHVISION_STANDIN_BACKEND", "torch")
        m.setenv("OMP_NUM_THREADS", "2")  # as PYDL_NUM_THREADS=2 for pydl's run
        theirs = compat.run_example(script, args, tmp_path / "torch", mnist_sizes=sizes)
    return mine, theirs


def test_vae_trains_as_with_torch(tmp_path, monkeypatch):
    mine, theirs = _run_both("vae_main.py", ["--epochs", "2", "--log-interval", "100"],
                             tmp_path, (512, 256), monkeypatch)

    def losses(out):
        return ([float(x) for x in re.findall(r"Average loss: ([\d.]+)", out)],
                [float(x) for x in re.findall(r"Test set loss: ([\d.]+)", out)])

    (train_p, test_p), (train_t, test_t) = losses(mine), losses(theirs)
    assert len(train_p) == len(train_t) == 2 and len(test_p) == len(test_t) == 2
    for a, b in zip(train_p + test_p, train_t + test_t):
        assert a == pytest.approx(b, rel=0.05), (mine, theirs)


def test_mnist_trains_as_with_torch(tmp_path, monkeypatch):
    """256 training images, 3 epochs: the test loss after training varies by about +-0.35
    between seeds (in either library), so the mean over three seeds is compared."""
    def results(out):
        return [float(loss) for loss in
                re.findall(r"Test set: Average loss: ([\d.]+), Accuracy: \d+/200", out)]

    final = {"pydl": [], "torch": []}
    for seed in (1, 2, 3):
        args = ["--epochs", "3", "--batch-size", "32", "--test-batch-size", "100",
                "--log-interval", "100", "--seed", str(seed)]
        mine, theirs = _run_both("mnist_main.py", args, tmp_path, (256, 200), monkeypatch)
        for lib, out in (("pydl", mine), ("torch", theirs)):
            losses = results(out)
            assert len(losses) == 3 and losses[2] < losses[0] < 2.4, (lib, out)  # learns
            final[lib].append(losses[2])
    mean = {lib: sum(v) / len(v) for lib, v in final.items()}
    assert abs(mean["pydl"] - mean["torch"]) < 0.35, final
