import pytest
import torch

from repatlas import models


@pytest.mark.parametrize("depth,width", [(8, 1), (14, 2), (20, 1), (26, 3)])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 13, 11)])
def test_resnet_shapes(depth, width, shape):
    model = models.resnet(depth, width, in_channels=shape[0], n_classes=7)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    n = (depth - 2) // 6
    layers = models.representation_layers(model)
    assert layers == ["stem"] + [f"block{i}" for i in range(1, 3 * n + 1)] + ["pool"]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # 6n + 1 conv layers + the dense layer
    stage_widths = [getattr(model, f"block{k * n + 1}").conv1.out_channels for k in range(3)]
    assert stage_widths == [16 * width, 32 * width, 64 * width]
    assert model.pool(torch.zeros(1, 64 * width, 3, 3)).shape == (1, 64 * width)


@pytest.mark.parametrize("depth", [0, 7, 10, 12, 21])
def test_resnet_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        models.resnet(depth, 1, in_channels=1, n_classes=10)


def test_mlp_shapes_and_layers():
    model = models.build_model("mlp", 3, 17, input_shape=(1, 8, 8), n_classes=10, activation="tanh")
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert models.representation_layers(model) == ["layer1", "layer2", "layer3"]
    assert model.layer2[0].in_features == 17
    with pytest.raises(ValueError, match="unknown activation"):
        models.mlp(2, 4, in_features=3, n_classes=2, activation="swishy")
    with pytest.raises(ValueError, match="unknown arch"):
        models.build_model("vgg", 3, 1, input_shape=(1, 8, 8), n_classes=10)


# ----------------------------------------------------------------------------- the ResNet recipe


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, models.BasicBlock)]


def test_residual_bn_init_sets_the_last_bn_scale_of_every_branch():
    for init, expected in (("zero", 0.0), ("one", 1.0), ("inv_sqrt_blocks", 12**-0.5)):  # d26: 12 blocks
        model = models.resnet(26, 1, in_channels=1, n_classes=5, residual_bn_init=init)
        for block in _blocks(model):
            torch.testing.assert_close(block.bn2.weight, torch.full_like(block.bn2.weight, expected))
            torch.testing.assert_close(block.bn1.weight, torch.ones_like(block.bn1.weight))  # untouched
    with pytest.raises(ValueError, match="residual_bn_init"):
        models.resnet(8, 1, in_channels=1, n_classes=3, residual_bn_init="half")


def test_zero_residual_bn_init_makes_every_block_start_as_the_identity():
    torch.manual_seed(0)
    model = models.resnet(14, 2, in_channels=1, n_classes=5, residual_bn_init="zero").train()
    x = torch.relu(torch.randn(8, 32, 6, 6))  # a post-ReLU input of block1's width
    with torch.no_grad():
        torch.testing.assert_close(model.block1(x), x)  # relu(x + 0) = x
        # a downsampling block reduces to its projection shortcut
        torch.testing.assert_close(model.block3(x), torch.relu(model.block3.shortcut(x)))
    torch.manual_seed(0)
    legacy = models.resnet(14, 2, in_channels=1, n_classes=5, residual_bn_init="one").train()
    with torch.no_grad():
        assert not torch.allclose(legacy.block1(x), x, atol=1e-2)


def test_scaled_residual_bn_init_keeps_deep_activations_at_the_shallow_scale():
    """With γ = 1 the sum x + branch(x) grows the residual stream block by block (issue 16: the
    pooled features of ResNet-50 have ~18× the mean square of ResNet-8's on Fashion-MNIST); with
    γ = 1/√blocks (or 0) the growth stays a small factor (2.8× there)."""
    x = torch.randn(64, 1, 12, 12)

    def pooled_second_moment(depth, init):
        torch.manual_seed(0)
        model = models.resnet(depth, 1, in_channels=1, n_classes=10, residual_bn_init=init).train()
        with torch.no_grad():
            h = x
            for name, child in model.named_children():
                h = child(h)
                if name == "pool":
                    return float(h.square().mean())

    assert pooled_second_moment(50, "one") > 10 * pooled_second_moment(8, "one")
    for init in ("inv_sqrt_blocks", "zero"):
        assert pooled_second_moment(50, init) < 4 * pooled_second_moment(8, init)


def test_projection_shortcut_with_and_without_bn():
    torch.manual_seed(0)
    keras = models.resnet(8, 1, in_channels=1, n_classes=3)
    assert isinstance(keras.block2.shortcut, torch.nn.Conv2d) and keras.block2.shortcut.bias is not None
    torch.manual_seed(0)
    he = models.resnet(8, 1, in_channels=1, n_classes=3, shortcut_bn=True).train()
    conv, bn = he.block2.shortcut
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert isinstance(bn, torch.nn.BatchNorm2d) and isinstance(he.block1.shortcut, torch.nn.Identity)
    # in training mode the normalised shortcut has zero mean and unit variance per channel
    out = he.block2.shortcut(5.0 + 3.0 * torch.randn(32, 16, 8, 8))
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(32), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var((0, 2, 3), unbiased=False), torch.ones(32), atol=1e-3, rtol=0)
    assert he(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_he_init_modes():
    torch.manual_seed(0)
    fan_in = models.resnet(8, 4, in_channels=1, n_classes=3)
    torch.manual_seed(0)
    fan_out = models.resnet(8, 4, in_channels=1, n_classes=3, init_mode="fan_out")
    # block2.conv1: 64 → 128 channels, 3×3: fan_in = 64·9, fan_out = 128·9
    for model, fan in ((fan_in, 64 * 9), (fan_out, 128 * 9)):
        std = float(model.block2.conv1.weight.detach().std())
        assert std == pytest.approx((2 / fan) ** 0.5, rel=0.03)
    with pytest.raises(ValueError, match="init_mode"):
        models.resnet(8, 1, in_channels=1, n_classes=3, init_mode="xavier")


def test_build_model_passes_resnet_options():
    model = models.build_model("resnet", 8, 1, input_shape=(1, 8, 8), n_classes=3, shortcut_bn=True,
                               residual_bn_init="one", init_mode="fan_out")
    assert isinstance(model.block2.shortcut, torch.nn.Sequential)
    assert torch.equal(model.block1.bn2.weight, torch.ones(16))
