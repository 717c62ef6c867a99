import numpy as np
import pytest
import torch

from compress import data, models
from compress.errors import DataError, ShapeMismatchError, UnknownNameError


def test_mnist5k_split_is_fixed_and_stratified():
    d = data.get("mnist5k")
    assert (len(d.y_train) + len(d.y_val), len(d.y_test)) == (4000, 1000)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert torch.bincount(d.y_test).tolist() == [100] * 10
    assert abs(float(d.x_train.mean())) < 1e-3 and abs(float(d.x_train.std()) - 1) < 1e-3


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnits'.*mnist5k"):
        data.get("mnits")


def test_torchvision_set_without_files_says_what_to_put_where(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py.*data_batch_1"):
        data.get("cifar10", data_root=str(tmp_path))
    with pytest.raises(DataError, match="--data-root"):
        data.get("mnist")


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nhw", "flat"])
def test_npz_datasets(tmp_path, layout):
    rng = np.random.default_rng(0)
    shapes = {"nchw": (3, 6, 6), "nhwc": (6, 6, 3), "nhw": (6, 6), "flat": (20,)}
    x = rng.normal(size=(60, *shapes[layout])).astype(np.float32)
    path = tmp_path / f"{layout}.npz"
    np.savez(path, x_train=x[:40], y_train=np.arange(40) % 4, x_test=x[40:], y_test=np.arange(20) % 4)
    d = data.get(f"npz:{path}")
    expected = {"nchw": (3, 6, 6), "nhwc": (3, 6, 6), "nhw": (1, 6, 6), "flat": (20,)}[layout]
    assert d.input_shape == expected and d.num_classes == 4
    assert len(d.y_train) + len(d.y_val) == 40 and len(d.y_test) == 20


def test_npz_with_missing_arrays_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 3)), y_train=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match="lacks arrays x_test, y_test"):
        data.get(f"npz:{path}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.get(f"npz:{tmp_path / 'junk.npz'}")


@pytest.mark.parametrize("name,shape", [
    ("lenet_300_100", (1, 28, 28)), ("conv2", (1, 28, 28)), ("conv4", (3, 32, 32)), ("conv6", (1, 28, 28)),
    ("conv8", (3, 32, 32)), ("vgg11", (1, 28, 28)), ("resnet20", (3, 32, 32)), ("tv:mobilenet_v3_small", (3, 64, 64)),
])
def test_registry_models_fit_their_input(name, shape):
    width = 0.25 if not name.startswith(("tv:", "resnet")) else 1.0
    model = models.build(models.ModelSpec(name, shape, 7, width), seed=0)
    models.check_input(model, shape, 7, name)
    assert models.prunable(model)


def test_initialization_is_seeded_and_leaves_global_rng_alone():
    spec = models.ModelSpec("lenet_300_100", (1, 8, 8), 10)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = models.build(spec, seed=1)
    assert torch.equal(torch.rand(1), before)
    b = models.build(spec, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_shape_mismatch_names_both_shapes():
    model = models.build(models.ModelSpec("lenet_300_100", (1, 28, 28), 10), seed=0)
    with pytest.raises(ShapeMismatchError, match=r"\(1, 8, 8\)"):
        models.check_input(model, (1, 8, 8), 10, "lenet_300_100")
    with pytest.raises(ShapeMismatchError, match="needs image input"):
        models.build(models.ModelSpec("conv4", (20,), 10))


def test_user_factory_model(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(
        "import torch\n"
        "def tiny(num_classes, input_shape):\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = models.build(models.ModelSpec("mynets:tiny", (1, 8, 8), 10), seed=0)
    assert list(models.prunable(model)) == ["1.weight"]
    with pytest.raises(UnknownNameError, match="unknown model"):
        models.build(models.ModelSpec("nonet", (1, 8, 8), 10))
