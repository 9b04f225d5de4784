"""ResNet-18 written in the package (torchvision does not import with the CPU torch here).

- ``stem="imagenet"``: torchvision's ``resnet18(num_classes=10)`` exactly, the model paper 2 trained on
  CIFAR-10: 7x7 stride-2 conv + 3x3 stride-2 max-pool, so a 32x32 image is 8x8 after the stem
  (11,181,642 parameters).
- ``stem="cifar"``: the usual CIFAR variant, 3x3 stride-1 conv and no max-pool (11,173,962 parameters).

Layer names, initialisation (Kaiming-normal fan-out for convolutions, BN weight 1 / bias 0, PyTorch's
default ``Linear``) and the block structure follow torchvision, so its state dicts load unchanged.
:meth:`ResNet.features` returns the 512-d output of the global average pool (the penultimate features
whose rank paper 2 measures).
"""

from __future__ import annotations

import torch
from torch import nn

STEMS = ("imagenet", "cifar")
PARAMS = {"imagenet": 11_181_642, "cifar": 11_173_962}  # num_classes=10, width 64


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet-18 (``layers=(2, 2, 2, 2)``); ``width`` scales every channel count (64 = the standard model)."""

    def __init__(self, num_classes: int = 10, stem: str = "imagenet", width: int = 64,
                 layers: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; use one of {STEMS} ('imagenet' is the paper's torchvision model)")
        if width < 1 or num_classes < 1:
            raise ValueError(f"width and num_classes must be positive, got {width}, {num_classes}")
        self.stem = stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = _conv3x3(3, width)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        chans = [width * 2**i for i in range(len(layers))]
        cin, stages = width, []
        for i, (c, n) in enumerate(zip(chans, layers)):
            blocks = [BasicBlock(cin, c, 1 if i == 0 else 2)] + [BasicBlock(c, c) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_dim = cin
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features: global-average-pooled output of the last stage, ``(N, 512)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet18(num_classes: int = 10, stem: str = "imagenet", width: int = 64) -> ResNet:
    """ResNet-18 in float32 (whatever the default dtype): ``stem="imagenet"`` is the paper's model."""
    return ResNet(num_classes, stem, width).to(torch.float32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
