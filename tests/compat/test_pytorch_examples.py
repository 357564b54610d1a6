"""pytorch/examples scripts run on pydl with only their import lines changed (issue #20).

tests/compat/examples/ holds mnist/main.py, vae/main.py and regression/main.py from
pytorch/examples (BSD 3-Clause, LICENSE.pytorch-examples) with ``import torch`` turned into
``import pydl as torch`` and torchvision into the stand-in of tests/compat/standin (MNIST-shaped
data made from pydl's bundled digits; nothing is downloaded). Each test runs one script as a
user would, in a fresh interpreter in a temporary folder, made small through the script's own
flags and the stand-in's data size, and checks what it printed and wrote.
"""
import os
import re
import subprocess
import sys
import zipfile

import pytest

import pydl

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "examples")
STANDIN = os.path.join(HERE, "standin")
# Each copy's import lines, upstream -> here, and the SHA-256 of the upstream file at 77f55b9.
IMPORTS = {
    "mnist_main.py": ("30a3359d1911d2d859dd090ce20be7ed132a33f508dc389f40366010b3e9ecc8", [
        ("import torch", "import pydl as torch"),
        ("import torch.nn as nn", "import pydl.nn as nn"),
        ("import torch.nn.functional as F", "import pydl.nn.functional as F"),
        ("import torch.optim as optim", "import pydl.optim as optim"),
        ("from torchvision import datasets, transforms",
         "from torchvision_standin import datasets, transforms"),
        ("from torch.optim.lr_scheduler import StepLR",
         "from pydl.optim.lr_scheduler import StepLR")]),
    "vae_main.py": ("366116e8252ac68ef1f180cce0b3c017f5a957595d863c8d4904210a80cdab6d", [
        ("import torch", "import pydl as torch"),
        ("import torch.utils.data", "import pydl.utils.data"),
        ("from torch import nn, optim", "from pydl import nn, optim"),
        ("from torch.nn import functional as F", "from pydl.nn import functional as F"),
        ("from torchvision import datasets, transforms",
         "from torchvision_standin import datasets, transforms"),
        ("from torchvision.utils import save_image",
         "from torchvision_standin.utils import save_image")]),
    "regression_main.py": ("87ba43405ca6df6ef1e24e6ee85bfb0cfff95df3bbaf5794d4662308184a90a0", [
        ("import torch", "import pydl as torch"),
        ("import torch.nn.functional as F", "import pydl.nn.functional as F")]),
}
PROVENANCE_LINES = 4  # the comment naming pytorch/examples, the commit and the license


def run_example(name, args, tmp_path, mnist_sizes=None, timeout=300):
    env = dict(os.environ)
    pydl_parent = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([STANDIN, pydl_parent])
    env.setdefault("PYDL_NUM_THREADS", "2")
    if mnist_sizes:
        env["TORCHVISION_STANDIN_MNIST"] = ",".join(map(str, mnist_sizes))
    (tmp_path / "results").mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{name} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out.stdout


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_scripts_are_pytorch_examples_with_only_imports_changed(name):
    """Undoing the import changes and the provenance comment gives back the upstream file,
    byte for byte."""
    import hashlib

    digest, changes = IMPORTS[name]
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        lines = f.read().split("\n")
    first = 1 if lines[0].startswith("#!") else 0
    assert "pytorch/examples" in lines[first] and "BSD" in lines[first + 1]
    del lines[first:first + PROVENANCE_LINES]
    undo = {new: old for old, new in changes}
    assert sum(ln in undo for ln in lines) == len(changes)
    upstream = "\n".join(undo.get(ln, ln) for ln in lines)
    assert hashlib.sha256(upstream.encode("utf-8")).hexdigest() == digest


def test_mnist_main(tmp_path):
    out = run_example("mnist_main.py", ["--epochs", "2", "--batch-size", "32",
                                        "--test-batch-size", "100", "--log-interval", "4",
                                        "--save-model"], tmp_path, mnist_sizes=(256, 200))
    tests = re.findall(r"Test set: Average loss: ([\d.]+), Accuracy: (\d+)/200", out)
    assert len(tests) == 2, out
    assert re.search(r"Train Epoch: 2 \[128/256 \(50%\)\]\tLoss: \d+\.\d{6}", out), out
    losses = [float(loss) for loss, _ in tests]
    assert losses[1] < losses[0] < 2.5  # learns (chance level is ln 10 = 2.30)
    ck = tmp_path / "mnist_cnn.pt"  # torch.save(model.state_dict(), "mnist_cnn.pt")
    assert zipfile.is_zipfile(ck)
    sd = pydl.load(ck)
    assert list(sd) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert tuple(sd["fc1.weight"].shape) == (128, 9216)


def test_vae_main(tmp_path):
    out = run_example("vae_main.py", ["--epochs", "2", "--log-interval", "2"], tmp_path,
                      mnist_sizes=(512, 256))
    assert "Using device: cpu" in out
    train = [float(x) for x in re.findall(r"====> Epoch: \d Average loss: ([\d.]+)", out)]
    test = [float(x) for x in re.findall(r"====> Test set loss: ([\d.]+)", out)]
    assert len(train) == len(test) == 2, out
    assert train[1] < train[0] and test[1] < test[0]
    for name in ("reconstruction_1.png", "sample_1.png", "reconstruction_2.png",
                 "sample_2.png"):
        data = (tmp_path / "results" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name


# regression/main.py updates weights with param.data.add_(...): it runs because Tensor.data is
# PyTorch's detached Tensor over the same memory (issue #20).
def test_regression_main(tmp_path):
    out = run_example("regression_main.py", [], tmp_path)
    m = re.search(r"Loss: ([\d.]+) after (\d+) batches", out)
    assert m and float(m.group(1)) < 1e-3, out
    learned = re.search(r"==> Learned function:\ty = (.*)", out).group(1)
    actual = re.search(r"==> Actual function:\ty = (.*)", out).group(1)
    coef = r"([+-]\d+\.\d{2})"
    assert len(re.findall(coef, learned)) == len(re.findall(coef, actual)) == 5
