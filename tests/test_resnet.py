"""asdkit's own ResNet18."""
from __future__ import annotations

import pytest
import torch

from asdkit import ConfigError
from asdkit.models.resnet import ResNet18


def test_width_64_is_the_standard_resnet18_trunk():
    net = ResNet18(width=64)
    # torchvision's resnet18 has 11 689 512 parameters; less its 1000-class layer (513 000) and with a
    # one-channel instead of a three-channel 7x7 stem (9 408 -> 3 136 weights)
    assert sum(p.numel() for p in net.parameters()) == 11_689_512 - 513_000 - 9_408 + 3_136
    assert net.embedding_dim == 512


@pytest.mark.parametrize("width, shape", [(8, (3, 64, 126)), (16, (2, 1, 224, 126))])
def test_output_shape(width, shape):
    net = ResNet18(width=width).eval()
    with torch.no_grad():
        out = net(torch.randn(*shape))
    assert out.shape == (shape[0], 8 * width) and torch.isfinite(out).all()


def test_bad_input_and_width():
    with pytest.raises(ConfigError, match="expects"):
        ResNet18(width=4)(torch.zeros(2, 64))
    with pytest.raises(ConfigError, match="width"):
        ResNet18(width=0)
