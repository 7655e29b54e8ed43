"""A compact CIFAR-style ResNet (3x3 stem, stride 1, no max-pool) without torchvision.

:func:`resnet18_cifar` is the ResNet-18 of the "ghosts of softmax" Fig. 12 / Table 3 (the
released code takes torchvision's ``resnet18(num_classes=10)`` and replaces ``conv1`` by a 3x3
stride-1 convolution and the max-pool by the identity): BasicBlocks [2, 2, 2, 2] of widths
64-128-256-512, 11.17 M parameters.  :func:`tiny_resnet` is the same design at digits size
(one-channel 8x8 input) for the CPU twin of that experiment.

Initialisation (from an explicit ``torch.Generator``, never the global RNG) follows torchvision's
ResNet: convolutions ``N(0, 2 / fan_out)`` (Kaiming normal, fan-out, ReLU gain), BatchNorm scale 1
and shift 0, the final linear layer PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "ResNet", "resnet18_cifar", "tiny_resnet"]


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = _conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """3x3 stride-1 stem + BN + ReLU, stages of BasicBlocks (the first stage stride 1, the others
    stride 2), global average pool, linear head.

    Args:
        widths: channels of each stage.
        blocks: BasicBlocks per stage.
        in_channels: input channels (3 for CIFAR, 1 for digits).
        n_classes: number of logits.
        image_size: side of the square input image; a flat ``[B, image_size**2 * in_channels]``
            input is reshaped to ``[B, in_channels, image_size, image_size]``.
    """

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...], in_channels: int = 3,
                 n_classes: int = 10, image_size: int = 32):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths and blocks must be non-empty and of equal length, got {widths}, {blocks}")
        self.in_channels, self.image_size = in_channels, image_size
        self.stem = nn.Sequential(_conv3x3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(n):
                layers.append(BasicBlock(c, w, stride=2 if (i > 0 and j == 0) else 1))
                c = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            x = x.reshape(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


@torch.no_grad()
def _init(model: nn.Module, generator: torch.Generator) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.fill_(1.0)
            m.bias.zero_()
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            m.weight.copy_(torch.empty(m.weight.shape).uniform_(-bound, bound, generator=generator))
            m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=generator))
    return model


def resnet18_cifar(generator: torch.Generator, n_classes: int = 10, device=None) -> ResNet:
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool), initialised from ``generator``."""
    return _init(ResNet((64, 128, 256, 512), (2, 2, 2, 2), 3, n_classes, 32), generator).to(device)


def tiny_resnet(generator: torch.Generator, widths: tuple[int, ...] = (8, 16, 32),
                blocks: tuple[int, ...] = (1, 1, 1), n_classes: int = 10, device=None) -> ResNet:
    """The same design for one-channel 8x8 digits (default 19.8 k parameters)."""
    return _init(ResNet(widths, blocks, 1, n_classes, 8), generator).to(device)
