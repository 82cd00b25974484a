"""ResNet18 for one-channel spectrogram input (asdkit's own; no torchvision needed).

The architecture of He et al. (2016), ``BasicBlock`` x [2, 2, 2, 2]: a 7x7
stride-2 stem with max pooling, four stages of two residual blocks with
``width``, ``2 width``, ``4 width`` and ``8 width`` channels (stride 2 from the
second stage on), global average pooling. With ``width=64`` it is torchvision's
``resnet18`` trunk (11.2 M parameters) with a one-channel stem and no
classifier; smaller widths give the CPU presets' extractors (``width=16``:
0.7 M parameters).

Input ``(batch, 1, n_mels, n_frames)`` (a channel axis is added to 3-D input),
output ``(batch, 8 * width)`` embeddings.
"""
from __future__ import annotations

import torch
from torch import nn

from asdkit.errors import ConfigError
from asdkit.presets import check_integer

__all__ = ["BasicBlock", "ResNet18"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, n_in: int, n_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(nn.Conv2d(n_in, n_out, 1, stride=stride, bias=False), nn.BatchNorm2d(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet18 feature extractor ``f_FE`` for log-mel segments.

    Parameters
    ----------
    width : int, default 64
        Channels of the first stage (64 = the standard ResNet18).
    in_channels : int, default 1

    Attributes
    ----------
    embedding_dim : int
        ``8 * width``.

    Examples
    --------
    >>> net = ResNet18(width=8)
    >>> net(torch.zeros(2, 64, 126)).shape
    torch.Size([2, 64])
    """

    def __init__(self, width: int = 64, in_channels: int = 1):
        super().__init__()
        check_integer(width, "width", who="ResNet18")
        self.width = width
        self.embedding_dim = 8 * width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        stages, n_in = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            n_out = width * mult
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(n_in, n_out, stride), BasicBlock(n_out, n_out)))
            n_in = n_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.modules():                     # zero-init the last BN of each residual branch
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4:
            raise ConfigError(f"ResNet18 expects (batch, n_mels, n_frames) or (batch, 1, n_mels, n_frames), "
                              f"got shape {tuple(x.shape)}.")
        return self.pool(self.stages(self.stem(x))).flatten(1)
