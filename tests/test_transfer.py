"""Transfer learning: pydl.transfer (load what matches, freeze by prefix) and
`pydl train --init-from RUN --freeze PREFIX --classes ...`."""
import os

import numpy as np
import pytest

import pydl
from pydl import cli, nn
from pydl.transfer import freeze, load_matching, matching_names, trainable_parameters, unfreeze


def _net(classes):
    return pydl.models.LeNet5(1, classes, input_size=8)


def test_load_matching_loads_equal_shapes_and_reports_the_new_head():
    src, dst = _net(5), _net(10)
    fresh_head = dst.classifier[5].weight.detach().numpy().copy()
    report = load_matching(dst, src.state_dict())
    assert report.mismatched == [("classifier.5.weight", (5, 84), (10, 84)),
                                 ("classifier.5.bias", (5,), (10,))]
    assert report.missing == ["classifier.5.weight", "classifier.5.bias"]
    assert report.unexpected == []
    assert len(report.loaded) == 8
    for name in report.loaded:
        np.testing.assert_array_equal(dst.state_dict()[name].numpy(),
                                      src.state_dict()[name].numpy(), err_msg=name)
    np.testing.assert_array_equal(dst.classifier[5].weight.detach().numpy(), fresh_head)


def test_load_matching_exclude_and_unexpected_keys():
    src, dst = _net(5), _net(5)
    state = dict(src.state_dict())
    state["extra.weight"] = pydl.zeros(3)
    before = dst.classifier[5].bias.detach().numpy().copy()
    report = load_matching(dst, state, exclude=["classifier.5"])
    assert report.unexpected == ["extra.weight"]
    assert "classifier.5.bias" in report.missing and report.mismatched == []
    np.testing.assert_array_equal(dst.classifier[5].bias.detach().numpy(), before)
    # plain NumPy arrays load too
    report = load_matching(dst, {k: v.numpy() for k, v in src.state_dict().items()})
    assert len(report.loaded) == 10
    with pytest.raises(TypeError, match="state dict"):
        load_matching(dst, [1, 2])


def test_freeze_by_prefix_and_optimizer_over_trainable_parameters():
    model = _net(10)
    names = freeze(model, "features")
    assert names == ["features.0.weight", "features.0.bias", "features.2.weight",
                     "features.2.bias"]
    assert all(not p.requires_grad for n, p in model.named_parameters() if n in names)
    trainable = list(trainable_parameters(model))
    assert len(trainable) == 6 and all(p.requires_grad for p in trainable)
    # "features" must not match a sibling that merely starts with the same letters
    assert matching_names(["features.0.weight", "features2.weight", "features"],
                          "features") == ["features.0.weight", "features"]
    # training leaves the frozen weights as they were
    frozen_before = {n: p.detach().numpy().copy() for n, p in model.named_parameters()
                     if n in names}
    opt = pydl.optim.SGD(trainable, lr=0.1, weight_decay=0.1)
    x, y = pydl.randn(4, 1, 8, 8), pydl.tensor([0, 1, 2, 3])
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for n, p in model.named_parameters():
        if n in names:
            np.testing.assert_array_equal(p.detach().numpy(), frozen_before[n])
            assert p.grad is None  # no gradient is even computed for them
    assert unfreeze(model, ["features.0"]) == ["features.0.weight", "features.0.bias"]
    assert model.features[0].weight.requires_grad
    with pytest.raises(ValueError, match=r"'head'.*\['classifier', 'features'\]"):
        freeze(model, "head")


# -- the command ----------------------------------------------------------------------------------

FAST = ["--subset", "200", "--batch-size", "32", "--no-progress", "--val-fraction", "0"]


def _state(path):
    return {k: v.numpy() for k, v in pydl.load(path).items()}


def test_cli_init_from_freeze_and_classes(tmp_path, capsys):
    pre = str(tmp_path / "pre")
    assert cli.main(["train", "--out", pre, "--classes", "0-4", "--epochs", "2", *FAST]) == 0
    capsys.readouterr()
    fine = str(tmp_path / "fine")
    assert cli.main(["train", "--out", fine, "--classes", "5,6,7,8,9", "--init-from", pre,
                     "--reinit", "classifier.5", "--freeze", "features", "--epochs", "2",
                     *FAST]) == 0
    out = capsys.readouterr().out
    assert "newly initialised: classifier.5.weight, classifier.5.bias" in out
    assert "frozen: 4 tensors under features (2,572 of 44,001 parameters)" in out
    a, b = _state(os.path.join(pre, "model.safetensors")), _state(
        os.path.join(fine, "model.safetensors"))
    assert a["classifier.5.weight"].shape == (5, 84)  # five classes: relabelled 0..4
    for name in ("features.0.weight", "features.0.bias", "features.2.weight",
                 "features.2.bias"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)  # frozen
    for name in ("classifier.1.weight", "classifier.5.weight"):
        assert not np.array_equal(a[name], b[name]), name  # trained
    # the optimizer was given the trainable tensors only
    ckpt = pydl.load(os.path.join(fine, "checkpoint.safetensors"))
    assert len(ckpt["optimizer"]["param_groups"][0]["params"]) == 6
    assert ckpt["config"]["classes"] == [5, 6, 7, 8, 9]
    assert ckpt["config"]["freeze"] == ["features"]
    # resuming keeps the freeze (the optimizer state still fits) and the frozen weights
    assert cli.main(["train", "--resume", fine, "--epochs", "3", "--no-progress"]) == 0
    c = _state(os.path.join(fine, "model.safetensors"))
    np.testing.assert_array_equal(a["features.0.weight"], c["features.0.weight"])


def test_cli_init_from_a_head_of_another_size(tmp_path, capsys):
    pre = str(tmp_path / "pre")
    assert cli.main(["train", "--out", pre, "--classes", "0-4", "--epochs", "1", *FAST]) == 0
    fine = str(tmp_path / "fine")
    assert cli.main(["train", "--out", fine, "--init-from", pre, "--epochs", "1", *FAST]) == 0
    assert "newly initialised: classifier.5.weight, classifier.5.bias" in capsys.readouterr().out


def test_cli_transfer_errors(tmp_path):
    with pytest.raises(SystemExit, match="no weights at"):
        cli.main(["train", "--out", str(tmp_path / "x"), "--init-from", str(tmp_path / "none"),
                  *FAST])
    with pytest.raises(SystemExit, match="--freeze: .*'head'"):
        cli.main(["train", "--out", str(tmp_path / "x"), "--freeze", "head", "--epochs", "1",
                  *FAST])
    for bad in ("4-0", "x", "3", "1,1"):
        with pytest.raises(SystemExit, match="--classes"):
            cli.main(["train", "--out", str(tmp_path / "x"), "--classes", bad, *FAST])
    with pytest.raises(SystemExit, match=r"--classes \[11\] do not occur"):
        cli.main(["train", "--out", str(tmp_path / "x"), "--classes", "3,11", *FAST])
