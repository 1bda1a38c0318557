"""Fixtures shared by the model tests: MNIST and the shipped LeNet, loaded once per module."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def lenet(data_dir):
    from ganbench.metrics.lenet import lenet_mnist

    return lenet_mnist()


@pytest.fixture(scope="module")
def mnist(data_dir):
    """(train images, train labels, test images, test labels): uint8, a few thousand."""
    from ganbench.data import load_images

    with pytest.MonkeyPatch.context() as mp:  # module scope: before the per-test environment
        mp.setenv("GANBENCH_DATA_DIR", str(data_dir))
        mp.setenv("GANBENCH_OFFLINE", "1")
        x_train, y_train = load_images("mnist", "train", limit=3000)
        x_test, y_test = load_images("mnist", "test", limit=1000)
    return x_train, y_train, x_test, y_test
