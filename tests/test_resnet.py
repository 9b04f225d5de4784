"""ResNet-18 variants: torchvision's parameter counts, names, shapes and the features path."""

import pytest
import torch

from flatbias import resnet


@pytest.mark.parametrize("stem, count", [("imagenet", 11_181_642), ("cifar", 11_173_962)])
def test_parameter_counts(stem, count):
    model = resnet.resnet18(num_classes=10, stem=stem)
    assert resnet.n_params(model) == count == resnet.PARAMS[stem]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # whatever the default dtype


def test_torchvision_layout_and_init():
    model = resnet.resnet18()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["conv1.weight"] == (64, 3, 7, 7)
    assert shapes["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert shapes["layer4.1.bn2.running_var"] == (512,)
    assert shapes["fc.weight"] == (10, 512)
    assert "layer1.0.downsample.0.weight" not in shapes
    assert len([k for k in shapes if k.endswith("num_batches_tracked")]) == 20
    assert torch.equal(model.layer3[1].bn1.weight, torch.ones(256))
    w = model.layer1[0].conv1.weight  # Kaiming normal, fan_out = 64 * 9: std sqrt(2 / 576)
    assert abs(float(w.detach().std()) / (2 / 576) ** 0.5 - 1) < 0.05


@pytest.mark.parametrize("stem, spatial", [("imagenet", 8), ("cifar", 32)])
def test_shapes_and_features(stem, spatial):
    torch.manual_seed(0)
    model = resnet.resnet18(stem=stem, width=8).eval()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float32)
    with torch.no_grad():
        stem_out = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        feats = model.features(x)
        logits = model(x)
    assert stem_out.shape == (3, 8, spatial, spatial)  # ImageNet stem: 32 -> 16 -> 8
    assert feats.shape == (3, 64) and model.feature_dim == 64 and logits.shape == (3, 10)
    torch.testing.assert_close(model.fc(feats), logits, rtol=0, atol=0)
    assert (feats >= 0).all()  # average of ReLU outputs


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown stem"):
        resnet.resnet18(stem="tiny")
    with pytest.raises(ValueError, match="expected images"):
        resnet.resnet18(width=2).features(torch.zeros(2, 32, 32, 3))
