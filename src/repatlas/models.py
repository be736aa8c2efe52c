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

    Downsampling blocks use stride 2 and a 1×1 projection shortcut. `shortcut_bn=False` is the
    Keras ResNet v1 that the paper's code uses (a biased 1×1 conv, no BN); `shortcut_bn=True` is
    He et al.'s option B as in torchvision (unbiased 1×1 conv + BN), which resets the scale of the
    residual stream at every stage (see `resnet`).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, *, shortcut_bn: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride == 1 and c_in == c_out:
            self.shortcut = nn.Identity()
        elif shortcut_bn:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False),
                                          nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=True)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


INIT_MODES = ("fan_in", "fan_out")
# Initial BN scale γ closing each residual branch, as a function of the number of blocks B.
RESIDUAL_BN_INITS = {
    "one": lambda blocks: 1.0,  # PyTorch's / Keras' default: the paper's code
    "inv_sqrt_blocks": lambda blocks: blocks**-0.5,  # the residual stream's variance at most doubles
    "zero": lambda blocks: 0.0,  # Goyal et al. 2017: every block starts as the identity
}


def resnet(depth: int, width: int, *, in_channels: int, n_classes: int,
           residual_bn_init: str = "inv_sqrt_blocks", shortcut_bn: bool = False,
           init_mode: str = "fan_in") -> nn.Sequential:
    """CIFAR ResNet v1: depth 6n+2, stage widths 16k/32k/64k for width multiplier k.

    Works for any input size and channel count (global average pooling before the classifier).
    Convolutions and the classifier get He-normal weights (`init_mode` "fan_in" as Keras'
    he_normal in the paper's code; "fan_out" as torchvision), biases zero.

    `residual_bn_init` sets the initial scale γ of the BN that ends every residual branch
    (RESIDUAL_BN_INITS). With γ = 1 ("one", the paper's Keras code) the post-activation sum
    x + branch(x) adds about one unit of variance per block: at initialisation on Fashion-MNIST
    the last block's mean square is 20 in ResNet-50 against 1.6 in ResNet-8, the logits' std
    3.7–5.3 and the initial loss 7.6–9.3 (ln 10 = 2.3). Measured over the first 60 steps at
    batch 128, lr 0.05, n = 1,000 (bench/recipe_bench.py, width 1, CPU float32; mean loss over
    steps 51–60, ResNet-8 / 26 / 50):
      one, no warmup (the recipe before):     0.90 / 0.71 / 2.27  (ResNet-50's gradient norm up to 64)
      one, 1 epoch warmup:                    0.92 /  –   / 1.12  (up to 31)
      zero (Goyal et al. 2017), warmup:       1.63 / 1.38 / 1.40
      inv_sqrt_blocks, warmup (the default):  1.06 / 0.92 / 0.94  (up to 5.7)
    "zero" makes every block the identity at first, but its branches stay dormant until γ grows,
    so every depth learns slowly; "inv_sqrt_blocks" (γ = 1/√B for B residual blocks; De & Smith
    2020 show that down-scaling the branches by ~1/√depth is what BN buys a deep ResNet) keeps
    ResNet-50's last block at mean square 1.5 (ResNet-8: 0.8) and its initial loss at 3.3, and
    is the only choice under which the deeper models fell at least as fast as ResNet-8.
    `shortcut_bn` adds BN to the 1×1 projection shortcut (see `BasicBlock`).
    """
    n = resnet_blocks_per_stage(depth)
    if width < 1:
        raise ValueError(f"ResNet width multiplier must be >= 1; got {width}")
    if init_mode not in INIT_MODES:
        raise ValueError(f"unknown init_mode {init_mode!r}; expected one of {', '.join(INIT_MODES)}")
    if residual_bn_init not in RESIDUAL_BN_INITS:
        raise ValueError(f"unknown residual_bn_init {residual_bn_init!r}; "
                         f"expected one of {', '.join(RESIDUAL_BN_INITS)}")
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
            layers[f"block{k}"] = BasicBlock(c_in, c_out, stride, shortcut_bn=shortcut_bn)
            c_in = c_out
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers["fc"] = nn.Linear(c_in, n_classes)
    model = nn.Sequential(layers)
    _he_normal(model, init_mode)
    gamma = RESIDUAL_BN_INITS[residual_bn_init](3 * n)
    for block in model.modules():
        if isinstance(block, BasicBlock):
            nn.init.constant_(block.bn2.weight, gamma)
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


def _he_normal(model: nn.Module, mode: str = "fan_in") -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_model(arch: str, depth: int, width: int, *, input_shape, n_classes: int, **options):
    """Build a model by name; `input_shape` is (C, H, W)."""
    c, h, w = input_shape
    if arch == "resnet":
        return resnet(depth, width, in_channels=c, n_classes=n_classes, **options)
    if arch == "mlp":
        return mlp(depth, width, in_features=c * h * w, n_classes=n_classes, **options)
    raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")


def representation_layers(model: nn.Sequential) -> list[str]:
    """Names of the top-level children whose outputs are representations (not input/logits)."""
    skip = {"flatten", "fc", "logits"}
    return [name for name, _ in model.named_children() if name not in skip]
