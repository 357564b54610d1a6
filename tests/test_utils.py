"""pydl.utils.summary: layer table with output shapes and parameter counts."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.nn import functional as F
from pydl.utils import summary


class Dense(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(pydl.randn(d_out, d_in))
        self.bias = nn.Parameter(pydl.zeros(d_out))

    def forward(self, x):
        return F.linear(x.reshape(x.shape[0], -1), self.weight, self.bias)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.MaxPool2d(2), nn.Conv2d(4, 5, 3))
        self.head = Dense(5 * 2 * 2, 7)

    def forward(self, x):
        return self.head(self.features(x))


def test_summary_shapes_counts_and_order(capsys):
    model = Net()
    model.head.bias.requires_grad_(False)
    model.train()
    info = summary(model, (3, 8, 8))
    printed = capsys.readouterr().out
    names = [layer.name for layer in info.layers]
    assert names == ["features", "features.0", "features.1", "features.2", "features.3", "head"]
    shapes = {layer.name: layer.output_shape for layer in info.layers}
    assert shapes["features.0"] == (2, 4, 8, 8) and shapes["features.2"] == (2, 4, 4, 4)
    assert shapes["features.3"] == (2, 5, 2, 2) and shapes["head"] == (2, 7)
    counts = {layer.name: layer.num_params for layer in info.layers}
    conv1, bn, conv2, head = 4 * 3 * 9 + 4, 2 * 4, 5 * 4 * 9 + 5, 7 * 20 + 7
    assert counts == {"features": 0, "features.0": conv1, "features.1": bn, "features.2": 0,
                      "features.3": conv2, "head": head}
    assert info.total_params == conv1 + bn + conv2 + head
    assert info.trainable_params == info.total_params - 7
    assert info.non_trainable_params == 7
    assert info.param_bytes == 4 * info.total_params
    assert model.training  # mode restored
    total = conv1 + bn + conv2 + head
    for text in ("Conv2d (features.0)", "[-1, 4, 8, 8]", f"Total params: {total:,}",
                 f"Trainable params: {total - 7:,}", "Non-trainable params: 7"):
        assert text in printed
    # BatchNorm ran in eval mode: its running statistics are untouched
    np.testing.assert_array_equal(model.features[1].running_mean.numpy(), np.zeros(4))


def test_summary_quiet_and_errors():
    info = summary(Net(), (3, 8, 8), print_fn=None)
    assert "Total params" in str(info) and "ModelSummary(Net" in repr(info)
    with pytest.raises(ValueError, match="input_shape"):
        summary(Net(), (3, -8, 8))


def test_summary_of_lenet5(capsys):
    info = summary(pydl.models.LeNet5(1, 10, input_size=28), (1, 28, 28))
    out = capsys.readouterr().out
    assert info.total_params == 61706  # the classic count, see tests/models
    shapes = {layer.name: layer.output_shape for layer in info.layers}
    assert shapes["features"] == (2, 16, 5, 5) and shapes["classifier.0"] == (2, 400)
    assert shapes["classifier"] == (2, 10)
    assert "Linear (classifier.1)" in out and "[-1, 400]" in out
