"""class-accuracy: the classifier's verdict on the class each sample was conditioned on,
from the logits of the one feature pass (lenet-mnist on real MNIST)."""
from __future__ import annotations

import pytest
import torch

from ganbench.errors import InputError
from ganbench.evaluation import evaluate
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.metrics.class_accuracy import class_accuracy


def test_class_accuracy_on_hand_made_logits():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
    assert class_accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="only 2 classes"):
        class_accuracy(logits, torch.tensor([0, 1, 2]))


class DigitBank(GenerativeModel):
    """A 'generator' drawing real MNIST digits: of the requested class, or (ignore_labels)
    of whatever class z picks."""

    def __init__(self, images, labels, ignore_labels=False):
        super().__init__()
        self.latent = LatentSpec(z_dim=4, num_classes=10, channels=1, image_size=28, output_range=(0.0, 255.0))
        self.by_class = [images[labels == k] for k in range(10)]
        self.ignore_labels = ignore_labels

    def generate(self, z, labels=None):
        pick = (z[:, 0].abs() * 1000).long()
        if self.ignore_labels:
            labels = pick % 10
        return torch.stack([self.by_class[int(y)][int(i) % len(self.by_class[int(y)])]
                            for y, i in zip(labels, pick)]).float()


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    from ganbench.data import load_images

    return load_images("mnist", "test", limit=2000)


def test_labelled_split_gives_the_classifiers_accuracy(mnist_test):
    from ganbench.images import to_rgb_uint8
    from ganbench.metrics.lenet import classifier_accuracy, lenet_mnist

    images, labels = mnist_test
    result = evaluate("mnist:test", metrics=["class-accuracy"], num_samples=500, extractor="lenet-mnist",
                      device="cpu", progress=False)
    direct = classifier_accuracy(to_rgb_uint8(images[:500]), labels[:500], lenet_mnist())
    assert result.value("class_accuracy") == pytest.approx(direct, abs=1e-12) and direct > 0.97


def test_conditional_generator_is_judged_on_the_requested_class(mnist_test):
    images, labels = mnist_test
    faithful = evaluate(DigitBank(images, labels), metrics=["class-accuracy", "isc"], num_samples=400,
                        extractor="lenet-mnist", device="cpu", progress=False, options={"isc": {"splits": 2}})
    ignoring = evaluate(DigitBank(images, labels, ignore_labels=True), metrics=["class-accuracy"],
                        num_samples=400, extractor="lenet-mnist", device="cpu", progress=False)
    assert faithful.value("class_accuracy") > 0.95
    assert ignoring.value("class_accuracy") < 0.3  # chance: 0.1


def test_unlabelled_input_is_refused(mnist_test):
    images, _ = mnist_test
    with pytest.raises(InputError, match="labelled inputs"):
        evaluate(images[:50], metrics=["class-accuracy"], extractor="lenet-mnist", device="cpu", progress=False)
