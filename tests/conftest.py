import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float64)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def tiny_cifar(n_per_class=2, seed=0):
    """A synthetic CIFAR-10-shaped data set (random images with a little class signal in the red channel)."""
    from flatbias import cifar

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class).astype(np.int64)
    x = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
    x[..., 0] = np.clip(x[..., 0].astype(int) // 2 + 12 * y[:, None, None], 0, 255)
    return cifar.Cifar10(x, y, x[::2].copy(), y[::2].copy(), layout="synthetic", source="test")


@pytest.fixture
def tiny_cifar_folder(tmp_path):
    """:func:`tiny_cifar` written as an image-folder data set (``train/<class>/*.png``, ``test/...``)."""
    from PIL import Image

    from flatbias import cifar

    root, data = tmp_path / "imgs", tiny_cifar()
    for split, xs, ys in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            f = root / split / cifar.CLASSES[y] / f"{i:04d}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(f)
    return root
