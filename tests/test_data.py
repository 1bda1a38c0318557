"""Datasets: registration, splits, the evaluation and training views, seeded batches, clear errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from ganbench.data import load_images, parse_name, training_data
from ganbench.errors import GanbenchError, MissingFileError, UnknownNameError
from ganbench.registry import datasets


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_builtin_datasets_registered():
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "celeba", "folder", "npz"} <= set(datasets.names())
    for entry in datasets.entries():
        assert entry.metadata["description"]


def test_data_and_translation_do_not_import_each_other():
    """The registry imports both on first use; neither needs the other's import for it."""
    code = ("import sys, ganbench.data; assert 'ganbench.translation' not in sys.modules; "
            "assert 'ganbench.data.builtin' not in sys.modules; "
            "from ganbench.registry import datasets; "
            "assert {'mnist', 'folder', 'mnist-edges', 'mnist-degraded'} <= set(datasets.names())")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_digits_is_embedded_and_split():
    train, y_train = load_images("digits", "train")
    test, y_test = load_images("digits:test")
    assert train.dtype == torch.uint8 and train.shape[1:] == (1, 8, 8)
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.max() == 255 and y_train.max() == 9 and y_test is not None
    up, _ = load_images("digits", "test", resolution=28, channels=3)
    assert up.shape == (360, 3, 28, 28)


def test_mnist_uint8_and_labels(data_dir):
    images, labels = load_images("mnist:test")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.tolist()[:5] == [7, 2, 1, 0, 4]
    fashion, flabels = load_images("fashion-mnist", "test", limit=100, resolution=32)
    assert fashion.shape == (100, 1, 32, 32) and len(flabels) == 100


def test_train_view_is_float_in_range_and_seeded(data_dir):
    data = training_data("mnist", resolution=32, channels=1)
    x, y = data.get_batch(data.batch_indices(0, 16, seed=0))
    assert x.shape == (16, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    assert torch.equal(data.batch_indices(5, 16, 0), data.batch_indices(5, 16, 0))
    assert not torch.equal(data.batch_indices(5, 16, 0), data.batch_indices(5, 16, 1))
    # the stream started at step 3 yields exactly what the stream from 0 yields at step 3
    from_0 = data.batches(16, seed=2)
    for _ in range(3):
        next(from_0)
    assert torch.equal(next(from_0)[0], next(data.batches(16, seed=2, start_step=3))[0])


def test_epochs_are_permutations():
    data = training_data("digits", resolution=8)
    per_epoch = data.steps_per_epoch(100)
    seen = torch.cat([data.batch_indices(s, 100, 0) for s in range(per_epoch)])
    assert len(set(seen.tolist())) == len(seen) == per_epoch * 100
    assert not torch.equal(data.batch_indices(0, 100, 0), data.batch_indices(per_epoch, 100, 0))


def test_folder_dataset_with_classes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png")
    images, labels = load_images(f"folder:{tmp_path}", "test")
    assert images.shape == (6, 3, 16, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    same, _ = load_images("folder", str(tmp_path))  # how `name:split` parsers call it
    assert same.shape == (6, 3, 16, 16)
    data = training_data(f"folder:{tmp_path}", resolution=8)
    assert data.num_classes == 2 and data.get_batch(torch.tensor([0, 5]))[0].shape == (2, 3, 8, 8)


def test_npz_dataset(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (10, 12, 12), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(10) % 3, x_test=x[:4], y_test=np.arange(4) % 3)
    images, labels = load_images(f"npz:{tmp_path / 'd.npz'}", "test")
    assert images.shape == (4, 1, 12, 12) and labels.tolist() == [0, 1, 2, 0]
    np.savez(tmp_path / "e.npz", images=np.zeros((5, 8, 8, 3), np.uint8))
    assert load_images(f"npz:{tmp_path / 'e.npz'}")[0].shape == (5, 3, 8, 8)
    # one rule with -i/-r files: whole numbers in 0..255 stored as floats are images, fractions are not
    np.savez(tmp_path / "f.npz", images=np.full((5, 8, 8), 7.0, np.float32))
    assert load_images(f"npz:{tmp_path / 'f.npz'}")[0].unique().tolist() == [7]
    np.savez(tmp_path / "g.npz", images=np.full((5, 8, 8), 0.5, np.float32))
    with pytest.raises(GanbenchError, match="uint8"):
        load_images(f"npz:{tmp_path / 'g.npz'}")


def test_missing_data_names_files_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(MissingFileError) as info:
        load_images("mnist:test")
    message = str(info.value)
    assert "\n" not in message
    assert "t10k-images-idx3-ubyte" in message and "GANBENCH_DATA_DIR" in message and str(tmp_path) in message


def test_bad_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'mnist'"):
        load_images("mnsit")
    with pytest.raises(GanbenchError, match="unknown split 'val'"):
        parse_name("mnist:val")
    with pytest.raises(GanbenchError, match="needs a path"):
        parse_name("folder")
    with pytest.raises(MissingFileError):
        load_images("folder:/nonexistent/dir")
