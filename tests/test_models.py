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
