"""Models in plain torch: the CIFAR ResNet v1 of Nguyen et al. and a plain MLP.

Both are `nn.Sequential`s whose top-level children are the layers a study looks at, so a
representation is named by its module name (`stem`, `block3`, `pool`; `layer2`) and can be
captured with a forward hook on that child. `representation_layers(model)` lists them in order.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from repatlas.config import resnet_blocks_per_stage  # torch-free, so config checks stay fast

ARCHS = ("resnet", "mlp")
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "selu": nn.SELU,
}


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU, conv3×3-BN, add shortcut, ReLU (ResNet v1).

    Downsampling blocks use stride 2 and a 1×1 projection shortcut without BN, as in the Keras
    ResNet v1 that the paper's code uses.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride, 0, bias=True)
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


def resnet(depth: int, width: int, *, in_channels: int, n_classes: int) -> nn.Sequential:
    """CIFAR ResNet v1: depth 6n+2, stage widths 16k/32k/64k for width multiplier k.

    Works for any input size and channel count (global average pooling before the classifier).
    """
    n = resnet_blocks_per_stage(depth)
    if width < 1:
        raise ValueError(f"ResNet width multiplier must be >= 1; got {width}")
    widths = [16 * width, 32 * width, 64 * width]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["stem"] = nn.Sequential(
        nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
    )
    c_in, k = widths[0], 0
    for stage, c_out in enumerate(widths):
        for b in range(n):
            k += 1
            stride = 2 if stage > 0 and b == 0 else 1
            layers[f"block{k}"] = BasicBlock(c_in, c_out, stride)
            c_in = c_out
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers["fc"] = nn.Linear(c_in, n_classes)
    model = nn.Sequential(layers)
    _he_normal(model)
    return model


def mlp(depth: int, width: int, *, in_features: int, n_classes: int, activation: str = "relu"):
    """MLP with `depth` hidden layers of `width` units (`layer1..layerD`) and a linear `logits`."""
    if depth < 1 or width < 1:
        raise ValueError(f"MLP depth and width must be >= 1; got depth={depth}, width={width}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["flatten"] = nn.Flatten()
    d_in = in_features
    for i in range(1, depth + 1):
        layers[f"layer{i}"] = nn.Sequential(nn.Linear(d_in, width), ACTIVATIONS[activation]())
        d_in = width
    layers["logits"] = nn.Linear(d_in, n_classes)
    return nn.Sequential(layers)


def _he_normal(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_model(arch: str, depth: int, width: int, *, input_shape, n_classes: int, **options):
    """Build a model by name; `input_shape` is (C, H, W)."""
    c, h, w = input_shape
    if arch == "resnet":
        return resnet(depth, width, in_channels=c, n_classes=n_classes)
    if arch == "mlp":
        return mlp(depth, width, in_features=c * h * w, n_classes=n_classes, **options)
    raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")


def representation_layers(model: nn.Sequential) -> list[str]:
    """Names of the top-level children whose outputs are representations (not input/logits)."""
    skip = {"flatten", "fc", "logits"}
    return [name for name, _ in model.named_children() if name not in skip]
