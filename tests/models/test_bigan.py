"""What makes BiGAN and ALI (models/bigan.py) themselves: D sees (image, latent) pairs and the
encoder learns features a linear probe can read. The short run uses real MNIST."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import create_model

from helpers import random_batch, short_run


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_linear_probe_on_hand_made_features():
    from ganbench.models.bigan import linear_probe_accuracy

    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 4
    centres = torch.tensor([[4.0, 0], [0, 4.0], [-4.0, 0], [0, -4.0]])
    x = centres[y] + 0.5 * torch.randn(400, 2, generator=g)
    assert linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:]) > 0.98
    noise = torch.randn(400, 2, generator=g)  # features carrying no label information
    assert linear_probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.45


@pytest.mark.parametrize("name", ["bigan", "ali"])
def test_discriminator_sees_image_latent_pairs(name):
    model = create_model(name, image_size=16 if name == "bigan" else 32, hidden=16, conv_channels=4,
                         d_z_hidden=8, d_joint_hidden=8)
    d = model.discriminator.eval()
    x = random_batch(size=model.config.image_size).images
    z = torch.randn(8, model.config.z_dim)
    with torch.no_grad():
        assert not torch.allclose(d(x, z), d(x, -z))  # D depends on z ...
        assert not torch.allclose(d(x, z), d(-x, z))  # ... and on x
    assert model.encode(x).shape == (8, model.config.z_dim)
    assert model.reconstruct(x).shape == x.shape


def test_ali_encoder_is_stochastic_and_bigan_deterministic():
    ali = create_model("ali", image_size=32, conv_channels=4, d_z_hidden=8, d_joint_hidden=8)
    x = random_batch(size=32).images
    g = torch.Generator().manual_seed(0)
    a, _ = ali.encoder.sample(x, g)
    b, _ = ali.encoder.sample(x, g)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(ali.encode(x), ali.encoder.split(ali.encoder(x))[0])
    bigan = create_model("bigan", image_size=16, hidden=16).eval()
    torch.testing.assert_close(bigan.encoder.sample(x[:, :, :16, :16], g)[0], bigan.encode(x[:, :, :16, :16]))


def test_bigan_encoder_beats_a_random_encoder_on_a_linear_probe(mnist):
    """After a short run, E's features classify MNIST linearly better than those of a
    randomly initialised E (a broken/collapsed encoder falls far below), and G(E(x)) is
    closer to x than to other images."""
    from ganbench.models.bigan import probe, reconstruction_error

    x_train, y_train, x_test, y_test = mnist
    overrides = {"hidden": 256}
    trained = short_run("bigan", 600, **overrides).model
    with torch.random.fork_rng():
        torch.manual_seed(12345)
        random_e = create_model("bigan", dataset="mnist", **overrides)
    acc_trained = probe(trained, (x_train, y_train), (x_test, y_test))
    acc_random = probe(random_e, (x_train, y_train), (x_test, y_test))
    print(f"bigan linear probe: trained E {acc_trained:.3f}, random E {acc_random:.3f}")
    assert acc_trained > 0.6
    assert acc_trained > acc_random + 0.03
    rec = reconstruction_error(trained, x_test)
    print(f"bigan reconstruction MSE: {rec['mse']:.3f} (vs shuffled inputs {rec['mse_shuffled']:.3f})")
    assert rec["mse"] < 0.95 * rec["mse_shuffled"]
