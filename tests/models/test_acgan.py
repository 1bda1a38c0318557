"""What makes AC-GAN itself: class conditioning, with an auxiliary classifier in D, that draws
the requested class."""
from __future__ import annotations

import pytest
import torch

from ganbench.errors import GanbenchError
from ganbench.models import TrainContext, model_info

from helpers import random_batch, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_acgan_needs_labels():
    model = tiny_16px("acgan", num_classes=10)
    assert model.generator.latent.num_classes == 10
    s, c = model.discriminator(random_batch().images)
    assert s.shape == (8,) and c.shape == (8, 10)
    with pytest.raises(GanbenchError, match="labelled"):
        model.train_step(random_batch(), 0, TrainContext("cpu", seed=0))
    with pytest.raises(GanbenchError, match="class-conditional"):
        tiny_16px("acgan", num_classes=0)


def test_acgan_draws_the_requested_class_on_mnist(data_dir):
    """After a short run on MNIST, the shipped LeNet recognises the class each sample was
    conditioned on far more often than chance; with shuffled labels it does not."""
    from ganbench.generative import sample_latents
    from ganbench.images import float_to_uint8
    from ganbench.metrics.lenet import classifier_accuracy, lenet_mnist
    from ganbench.training import train

    info = model_info("acgan")  # the registered test settings: narrow nets, a faster lr
    result = train("acgan", "mnist", steps=info.test_steps, batch_size=64, seed=0, progress=False,
                   overrides=info.tiny)
    gen = result.generator.eval()
    z, labels = sample_latents(gen.latent, 1000, torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = float_to_uint8(torch.cat([gen(z[i:i + 250], labels[i:i + 250]) for i in range(0, 1000, 250)]))
    lenet = lenet_mnist()
    accuracy = classifier_accuracy(images, labels, lenet)
    shuffled = classifier_accuracy(images, labels[torch.randperm(1000, generator=torch.Generator().manual_seed(1))],
                                   lenet)
    assert accuracy > 0.4, accuracy  # chance: 0.1; this run reaches about 0.67
    assert shuffled < 0.2, shuffled  # what a generator ignoring its labels would score
