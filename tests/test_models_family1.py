"""What makes each model of the first family itself: WGAN's weight clipping, WGAN-GP's
gradient penalty, SNGAN's spectral normalisation, RaGAN's relativistic losses and
AC-GAN's class conditioning. (That every model learns is tested in test_models.py.)"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.models import Batch, TrainContext, create_model, model_info


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def tiny(name: str, **overrides):
    """A small model for random 16 x 16 gray data, initialised from seed 0."""
    base = {"image_size": 16, "channels": 1, "g_channels": 4, "d_channels": 4, "z_dim": 8}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, **{**base, **overrides})


def random_batch(n: int = 8, size: int = 16, labels: bool = False) -> Batch:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    return Batch(x, torch.randint(0, 10, (n,), generator=g) if labels else None)


# --- WGAN ------------------------------------------------------------------------------
class _RecordingContext(TrainContext):
    """Records the critic's largest |parameter| whenever a critic update starts."""

    def __init__(self, model):
        super().__init__("cpu", seed=0)
        self.model, self.before_critic_steps = model, []

    def backward_step(self, loss, optimizer, **kwargs):
        if optimizer is self.model.opt_d:
            self.before_critic_steps.append(max(p.abs().max().item() for p in self.model.critic.parameters()))
        super().backward_step(loss, optimizer, **kwargs)


def test_wgan_clips_critic_weights_after_every_critic_step():
    # a learning rate this large moves weights far beyond c in one RMSProp step
    model = tiny("wgan", lr=0.05, clip=0.01, n_critic=5, n_critic_warmup=0)
    before = [p.detach().clone() for p in model.critic.parameters()]
    ctx = _RecordingContext(model)
    for step in range(2):
        model.train_step(random_batch(), step, ctx)
    assert len(ctx.before_critic_steps) == 2 * 5  # n_critic updates per generator step
    assert max(ctx.before_critic_steps) <= 0.01 + 1e-7  # clipped at init and after each update
    params = list(model.critic.parameters())
    assert max(p.abs().max().item() for p in params) <= 0.01 + 1e-7
    assert any(not torch.equal(a, b) for a, b in zip(before, params))  # the critic did learn
    # the clipping binds: many weights sit on the boundary
    on_edge = sum((p.abs() > 0.0099).sum().item() for p in params)
    assert on_edge > 0.5 * sum(p.numel() for p in params)


def test_wgan_reference_warmup_schedule():
    from ganbench.models.wgan import WGANConfig, critic_steps

    c = WGANConfig()
    assert [critic_steps(c, s) for s in (0, 24, 25, 26, 500, 501)] == [100, 100, 5, 5, 100, 5]
    assert critic_steps(WGANConfig(n_critic_warmup=0), 0) == 5


# --- WGAN-GP ---------------------------------------------------------------------------
class LinearCritic(nn.Module):
    def __init__(self, dim: int, norm: float):
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        with torch.no_grad():
            w = torch.randn(1, dim, generator=torch.Generator().manual_seed(0))
            self.linear.weight.copy_(w / w.norm() * norm)

    def forward(self, x):
        return self.linear(x.flatten(1)).flatten()


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_of_linear_critics(norm, expected):
    from ganbench.models.losses import gradient_penalty

    critic = LinearCritic(1 * 16 * 16, norm)
    real, fake = random_batch().images, -random_batch().images
    eps = torch.rand(len(real), generator=torch.Generator().manual_seed(2))
    gp = gradient_penalty(critic, real, fake, eps)
    # the gradient of a linear critic is its weight everywhere: penalty (|w| - 1)^2
    assert gp.item() == pytest.approx(expected, abs=1e-5)
    if expected:  # differentiable w.r.t. the critic, so its update reduces the penalty
        gp.backward()
        assert critic.linear.weight.grad.norm() > 0


def test_wgan_gp_penalty_is_positive_for_a_network_critic_and_critic_has_no_batch_norm():
    from ganbench.models.losses import gradient_penalty

    for norm in ("none", "layer"):
        model = tiny("wgan-gp", critic_norm=norm)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.critic.modules())
    real = random_batch().images
    eps = torch.rand(len(real))
    assert gradient_penalty(model.critic, real, -real, eps).item() > 1e-3
    with pytest.raises(GanbenchError, match="critic_norm"):
        tiny("wgan-gp", critic_norm="batch")


# --- SNGAN -----------------------------------------------------------------------------
def _layers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_sngan_discriminator_layers_have_unit_spectral_norm():
    model = tiny("sngan")
    layers = _layers(model.discriminator)
    assert len(layers) == 3 * 2 + 2  # three (3x3, 4x4) pairs, the last 3x3 conv, the linear layer
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)
    ctx = TrainContext("cpu", seed=0)
    for step in range(3):  # weights change; the power iteration keeps up
        model.train_step(random_batch(), step, ctx)
    model.discriminator.train()
    with torch.no_grad():
        for _ in range(40):  # one power iteration per training-mode forward pass
            model.discriminator(random_batch().images)
    model.discriminator.eval()
    for m in layers:
        w = m.weight.detach().flatten(1)  # conv kernels as out x (in * k * k), as in the paper
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)
    # plain (unnormalised) weights are far from norm 1: the normalisation is doing the work
    raw = [torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2).item()
           for m in layers]
    assert max(abs(r - 1) for r in raw) > 0.3


# --- RaGAN -----------------------------------------------------------------------------
def _sig(t: float) -> float:
    return 1 / (1 + math.exp(-t))


def _mean(xs) -> float:
    return sum(xs) / len(xs)


C_REAL, C_FAKE = [2.0, 0.5, -1.0], [1.0, -0.5, 0.25]


def _expected(variant: str) -> tuple[float, float]:
    """The paper's formulas, computed by hand in Python floats."""
    log = math.log
    if variant == "rsgan":
        ld = _mean([-log(_sig(r - f)) for r, f in zip(C_REAL, C_FAKE)])
        lg = _mean([-log(_sig(f - r)) for r, f in zip(C_REAL, C_FAKE)])
        return ld, lg
    mr, mf = _mean(C_REAL), _mean(C_FAKE)
    if variant == "rasgan":
        ld = _mean([-log(_sig(r - mf)) for r in C_REAL]) + _mean([-log(1 - _sig(f - mr)) for f in C_FAKE])
        lg = _mean([-log(_sig(f - mr)) for f in C_FAKE]) + _mean([-log(1 - _sig(r - mf)) for r in C_REAL])
        return ld, lg
    ld = _mean([(r - mf - 1) ** 2 for r in C_REAL]) + _mean([(f - mr + 1) ** 2 for f in C_FAKE])
    lg = _mean([(f - mr - 1) ** 2 for f in C_FAKE]) + _mean([(r - mf + 1) ** 2 for r in C_REAL])
    return ld, lg


@pytest.mark.parametrize("variant", ["rsgan", "rasgan", "ralsgan"])
def test_ragan_losses_on_hand_made_logits(variant):
    from ganbench.models.ragan import relativistic_losses

    loss_d, loss_g = relativistic_losses(torch.tensor(C_REAL, dtype=torch.float64),
                                         torch.tensor(C_FAKE, dtype=torch.float64), variant)
    exp_d, exp_g = _expected(variant)
    assert loss_d.item() == pytest.approx(exp_d, rel=1e-12)
    assert loss_g.item() == pytest.approx(exp_g, rel=1e-12)
    model = tiny("ragan", variant=variant)
    losses = model.train_step(random_batch(), 0, TrainContext("cpu", seed=0))
    assert all(math.isfinite(float(v)) for v in losses.values())


def test_ragan_rejects_unknown_variant():
    with pytest.raises(GanbenchError, match="rsgan, rasgan, ralsgan"):
        tiny("ragan", variant="wgan")


# --- AC-GAN ----------------------------------------------------------------------------
def test_acgan_needs_labels():
    model = tiny("acgan", num_classes=10)
    assert model.generator.latent.num_classes == 10
    s, c = model.discriminator(random_batch().images)
    assert s.shape == (8,) and c.shape == (8, 10)
    with pytest.raises(GanbenchError, match="labelled"):
        model.train_step(random_batch(), 0, TrainContext("cpu", seed=0))
    with pytest.raises(GanbenchError, match="class-conditional"):
        tiny("acgan", num_classes=0)


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

