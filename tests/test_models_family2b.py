"""What makes each model of family 2b itself: BiGAN/ALI's encoder (linear probe,
reconstruction), BiCGAN's class inversion and conditioning, the projection
discriminator, SAGAN's self-attention, MSGAN's mode-seeking regulariser and diversity
measure, and LAPGAN's coarse-to-fine pyramid. (That every model learns is tested in
test_models.py.)

The short training runs here use real MNIST (skipped without it, failed under
GANBENCH_REQUIRE_DATA=1) and the shipped ``lenet-mnist`` classifier. Thresholds are far below what the runs reach
and far above what a broken model (e.g. one ignoring its condition or input) gets.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.errors import GanbenchError, InputError
from ganbench.models import Batch, TrainContext, create_model


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def random_batch(n: int = 8, size: int = 16, labels: bool = True) -> Batch:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    return Batch(x, torch.randint(0, 10, (n,), generator=g) if labels else None)


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


def short_run(name: str, steps: int, batch_size: int = 64, seed: int = 0, **overrides):
    from ganbench.training import train

    with torch.random.fork_rng():
        return train(name, "mnist", steps=steps, batch_size=batch_size, seed=seed, overrides=overrides,
                     progress=False, log_every=steps)


# --- SAGAN -----------------------------------------------------------------------------
def test_self_attention_starts_as_identity_and_attention_rows_sum_to_one():
    from ganbench.models.sagan import SelfAttention

    torch.manual_seed(0)
    attn = SelfAttention(16, ratio=8)
    x = torch.randn(3, 16, 5, 6)
    y, beta = attn(x, return_attention=True)
    assert attn.gamma.item() == 0.0
    assert torch.equal(y, x)  # gamma = 0: the block passes x through
    assert beta.shape == (3, 30, 30)
    assert (beta >= 0).all()
    torch.testing.assert_close(beta.sum(-1), torch.ones(3, 30))  # softmax over attended positions i
    assert beta.sum(1).sub(1).abs().max() > 0.05  # ... not over the queries j (columns)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    assert not torch.allclose(attn(x), x)


def test_sagan_has_attention_in_g_and_d_with_gamma_zero_and_spectral_norm_everywhere():
    from torch.nn.utils.parametrize import is_parametrized

    from ganbench.models.sagan import SelfAttention

    model = create_model("sagan", image_size=32, g_channels=16, d_channels=16, z_dim=8)
    for net in (model.generator, model.discriminator):
        blocks = [m for m in net.modules() if isinstance(m, SelfAttention)]
        assert len(blocks) == 1 and blocks[0].gamma.item() == 0.0
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(is_parametrized(m, "weight") for m in layers)
    # attention sits at the intermediate 16 x 16 resolution in both networks
    seen = []
    hook = lambda m, inputs, out: seen.append(inputs[0].shape[-1])  # noqa: E731
    for net in (model.generator, model.discriminator):
        net.attention.register_forward_hook(hook)
    z, y = torch.randn(2, 8), torch.tensor([1, 2])
    model.discriminator(model.generator(z, y), y)
    assert seen == [16, 16]
    assert (model.config.lr_g, model.config.lr_d, model.config.beta1, model.config.beta2) == (1e-4, 4e-4, 0.0, 0.9)


def test_sagan_gamma_moves_during_training():
    model = create_model("sagan", image_size=16, g_channels=8, d_channels=8, z_dim=8)
    ctx = TrainContext("cpu", seed=0)
    for step in range(3):
        out = model.train_step(random_batch(), step, ctx)
    assert out["gamma_g"].item() != 0.0 and out["gamma_d"].item() != 0.0


# --- projection discriminator ----------------------------------------------------------
def test_projection_discriminator_output_is_psi_plus_inner_product():
    model = create_model("cgan-pd", image_size=16, g_channels=8, d_channels=8, z_dim=8)
    d = model.discriminator.eval()
    x = random_batch().images
    y = torch.arange(8) % 10
    with torch.no_grad():
        phi = d.features(x)
        expected = d.psi(phi).flatten() + (d.embed.weight[y] * phi).sum(1)
        torch.testing.assert_close(d(x, y), expected)
        # the class enters only through the projection term
        assert not torch.allclose(d(x, y), d(x, (y + 1) % 10))
    assert all(hasattr(m, "parametrizations") for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert hasattr(d.embed, "parametrizations")


def test_conditional_batch_norm_is_class_specific():
    from ganbench.models.projection import ConditionalBatchNorm2d

    cbn = ConditionalBatchNorm2d(4, 3)
    with torch.no_grad():
        cbn.gamma.weight[1] = 2.0
        cbn.beta.weight[1] = 5.0
    x = torch.randn(6, 4, 3, 3)
    h = nn.BatchNorm2d(4, affine=False)(x)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = cbn(x, labels)
    torch.testing.assert_close(out[labels != 1], h[labels != 1])  # gamma 1, beta 0 at init
    torch.testing.assert_close(out[labels == 1], 2 * h[labels == 1] + 5)


def test_projection_needs_labels():
    with pytest.raises(GanbenchError, match="class-conditional"):
        create_model("cgan-pd", num_classes=0)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_resnet_models_build_at_mnist_and_64px_sizes(size):
    for name in ("cgan-pd", "sagan"):
        model = create_model(name, image_size=size, g_channels=4, d_channels=4, z_dim=4)
        z, y = torch.randn(2, 4), torch.tensor([0, 1])
        x = model.generator(z, y)
        assert x.shape == (2, 1, size, size)
        assert model.discriminator(x, y).shape == (2,)


# --- MSGAN -----------------------------------------------------------------------------
def test_same_class_diversity_on_hand_made_features():
    from ganbench.models.msgan import same_class_diversity

    # class 0: points at distance 3 (3-4-5 triangle: distances 3, 4, 5); class 1: 2 points 10 apart;
    # class 2 has one sample and is ignored
    feats = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 10.0], [7.0, 7.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    assert same_class_diversity(feats, labels) == pytest.approx(((3 + 4 + 5) / 3 + 10) / 2)
    # identical samples within a class (mode collapse) give 0
    assert same_class_diversity(torch.ones(4, 3), torch.tensor([0, 0, 1, 1])) == 0.0
    with pytest.raises(InputError):
        same_class_diversity(torch.zeros(3, 2), torch.tensor([0, 1, 2]))


def test_mode_seeking_loss_is_inverse_distance_ratio():
    from ganbench.models.msgan import mode_seeking_loss

    a, b = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    z1, z2 = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    # ratio = 0.5 / 2 = 0.25 -> loss = 1 / (0.25 + eps)
    assert mode_seeking_loss(a, b, z1, z2, eps=1e-5).item() == pytest.approx(1 / 0.25, rel=1e-4)
    # mode collapse (identical images for different z) is penalised hard
    assert mode_seeking_loss(a, a, z1, z2, eps=1e-5).item() == pytest.approx(1e5)


def test_msgan_draws_two_latents_per_label_and_weight_zero_is_plain_cgan():
    model = create_model("msgan", image_size=16, g_channels=4, d_channels=4, z_dim=8)
    seen = []
    model.generator.register_forward_hook(lambda m, inputs, out: seen.append(inputs[1].clone()))
    batch = random_batch()
    out = model.train_step(batch, 0, TrainContext("cpu", seed=0))
    assert torch.equal(seen[0], torch.cat([batch.labels, batch.labels]))
    assert out["loss_ms"].item() > 0
    assert out["loss_g"].item() == pytest.approx(out["loss_adv"].item() + out["loss_ms"].item(), rel=1e-5)
    plain = create_model("msgan", image_size=16, g_channels=4, d_channels=4, z_dim=8, ms_weight=0.0)
    out0 = plain.train_step(batch, 0, TrainContext("cpu", seed=0))
    assert out0["loss_ms"].item() > 0 and out0["loss_g"].item() == pytest.approx(out0["loss_adv"].item())


# --- LAPGAN ----------------------------------------------------------------------------
def test_lapgan_pyramid_sizes_and_coarse_to_fine_dependence():
    model = create_model("lapgan", image_size=32, g_channels=4, d_channels=4, g0_hidden=16, d0_hidden=16)
    G = model.generator.eval()
    assert G.sizes == [8, 16, 32]
    assert G.latent.z_dim == 100 + 16 * 16 + 32 * 32
    z = torch.rand(3, G.latent.z_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        levels = G.generate_pyramid(z)
        assert [x.shape[-1] for x in levels] == [8, 16, 32]
        torch.testing.assert_close(G(z), levels[-1])
        assert levels[-1].min() >= -1 and levels[-1].max() <= 1
        # new noise for the finest level only changes the finest image
        z2 = z.clone()
        z2[:, 100 + 256:] = torch.rand(3, 1024) * 2 - 1
        levels2 = G.generate_pyramid(z2)
        torch.testing.assert_close(levels2[0], levels[0])
        torch.testing.assert_close(levels2[1], levels[1])
        assert not torch.allclose(levels2[2], levels[2])
        # each finer level adds a residual to the up-sampled coarser image
        from ganbench.models.lapgan import up

        low = up(levels[0])
        residual = G.levels[0](G.split_latent(z)[1], low)
        torch.testing.assert_close(levels[1], (low + residual).clamp(-1, 1))
    assert create_model("lapgan", image_size=28).generator.sizes == [7, 14, 28]
    assert create_model("lapgan", image_size=64, g_channels=4, d_channels=4).generator.sizes == [8, 16, 32, 64]
    with pytest.raises(GanbenchError, match="coarse_size"):
        create_model("lapgan", image_size=24)


def test_lapgan_levels_train_on_the_real_pyramid():
    """Each G_k is conditioned on the real low-pass image u(d(I_k)) during training."""
    from ganbench.models.lapgan import down, up

    model = create_model("lapgan", image_size=16, coarse_size=4, g_channels=4, d_channels=4,
                         g0_hidden=8, d0_hidden=8)
    batch = random_batch(size=16, labels=False)
    seen = []
    for level in model.generator.levels:
        level.register_forward_hook(lambda m, inputs, out: seen.append(inputs[1].clone()))
    model.train_step(batch, 0, TrainContext("cpu", seed=0))
    x16 = batch.images
    x8 = down(x16)
    torch.testing.assert_close(seen[0], up(down(x8)))  # level 1 (8 px) conditioned on u(I_0)
    torch.testing.assert_close(seen[1], up(x8))  # level 2 (16 px) conditioned on u(I_1)


# --- BiGAN / ALI / BiCGAN --------------------------------------------------------------
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


def test_bicgan_discriminator_sees_z_and_class_and_efl_trains_the_encoder():
    model = create_model("bicgan", image_size=16, hidden=32, z_dim=8, lr=2e-3)
    assert model.discriminator.joint[0].in_features == 32 + 8 + 10  # x features + z + one-hot c
    batch = random_batch(n=32)
    ctx = TrainContext("cpu", seed=0)
    first = model.train_step(batch, 0, ctx)
    for step in range(1, 30):
        out = model.train_step(batch, step, ctx)
    assert out["efl"] < 0.5 * first["efl"]  # E learns the labels of this batch
    assert first["gamma"].item() == pytest.approx((first["loss_adv"] / first["efl"]).item(), rel=1e-5)


# --- short runs on real MNIST ----------------------------------------------------------
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


def test_projection_head_learns_which_class_an_image_shows(mnist):
    """Trained with its hinge loss on real images paired with their own label ("real") or
    another label ("fake"), D separates the two; psi(phi(x)) is the same for both
    pairings, so only the projection term <embed(y), phi(x)> can tell them apart.
    (That the whole cGAN draws the conditioned class is tested in test_models.py.)"""
    from ganbench.images import uint8_to_float
    from ganbench.models.losses import hinge_d_loss

    x_train, y_train, x_test, y_test = mnist
    torch.manual_seed(0)
    model = create_model("cgan-pd", image_size=28, g_channels=4, d_channels=16, z_dim=4, lr=2e-3)
    d, opt = model.discriminator, model.opt_d
    g = torch.Generator().manual_seed(0)

    def wrong(y):
        return (y + torch.randint(1, 10, y.shape, generator=g)) % 10

    for _ in range(150):
        pick = torch.randint(0, len(x_train), (64,), generator=g)
        x, y = uint8_to_float(x_train[pick]), y_train[pick]
        loss = hinge_d_loss(d(x, y), d(x, wrong(y)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    with torch.no_grad():
        x = uint8_to_float(x_test[:500])
        margin = d(x, y_test[:500]) - d(x, wrong(y_test[:500]))
    print(f"projection D prefers the true label on {(margin > 0).float().mean():.3f} of test images")
    assert (margin > 0).float().mean() > 0.6  # chance: 0.5 (0.73 after these 150 steps)


def test_msgan_is_more_diverse_than_the_same_generator_without_the_regulariser(lenet):
    from ganbench.models.msgan import generated_class_diversity

    small = {"image_size": 16, "g_channels": 16, "d_channels": 16}
    runs = {w: short_run("msgan", 150, batch_size=32, ms_weight=w, **small) for w in (1.0, 0.0)}
    div = {w: generated_class_diversity(r.generator, lenet, per_class=50) for w, r in runs.items()}
    ratio = {w: 1 / r.losses["loss_ms"] for w, r in runs.items()}  # d_I / d_z of the last batch (eps aside)
    print(f"msgan same-class diversity (lenet pool): lambda=1 {div[1.0]:.3f}, lambda=0 {div[0.0]:.3f}; "
          f"d_I/d_z: {ratio[1.0]:.3f} vs {ratio[0.0]:.3f}")
    assert ratio[1.0] > 2 * ratio[0.0]  # the regulariser does what it optimises
    assert div[1.0] > 1.5 * div[0.0]
