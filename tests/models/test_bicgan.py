"""What makes BiCGAN itself: D sees z and the class, and the encoder recovers the class. The
short run uses real MNIST and the shipped ``lenet-mnist`` classifier."""
from __future__ import annotations

import pytest

from ganbench.models import TrainContext, create_model

from helpers import random_batch, short_run


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_bicgan_discriminator_sees_z_and_class_and_efl_trains_the_encoder():
    model = create_model("bicgan", image_size=16, hidden=32, z_dim=8, lr=2e-3)
    assert model.discriminator.joint[0].in_features == 32 + 8 + 10  # x features + z + one-hot c
    batch = random_batch(n=32, labels=True)
    ctx = TrainContext("cpu", seed=0)
    first = model.train_step(batch, 0, ctx)
    for step in range(1, 30):
        out = model.train_step(batch, step, ctx)
    assert out["efl"] < 0.5 * first["efl"]  # E learns the labels of this batch
    assert first["gamma"].item() == pytest.approx((first["loss_adv"] / first["efl"]).item(), rel=1e-5)


def test_bicgan_encoder_recovers_the_class(mnist, lenet):
    from ganbench.models.bicgan import conditional_accuracy, encoder_class_accuracy
    from ganbench.models.bigan import reconstruction_error

    _, _, x_test, y_test = mnist
    run = short_run("bicgan", 400, hidden=256)
    enc_acc = encoder_class_accuracy(run.model, x_test, y_test)
    cond_acc = conditional_accuracy(run.generator, lenet, n=1000)
    rec = reconstruction_error(run.model, x_test)
    print(f"bicgan: encoder class accuracy {enc_acc:.3f}, conditional accuracy (lenet) {cond_acc:.3f}, "
          f"reconstruction MSE {rec['mse']:.3f} (shuffled {rec['mse_shuffled']:.3f})")
    assert enc_acc > 0.8  # chance: 0.1
