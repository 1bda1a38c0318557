"""What makes ProGAN itself: the growth schedule, fade-in, equalized learning rate and the
minibatch-stddev layer."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganbench.models import Batch, TrainContext
from ganbench.models.base import model_info

from helpers import latents, tiny_mnist


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_progan_growth_schedule_is_a_function_of_the_step():
    from ganbench.models.progan import growth_schedule

    expected = {0: (0, 1.0), 9: (0, 1.0), 10: (1, 0.0), 15: (1, 0.5), 19: (1, 0.9), 20: (1, 1.0),
                29: (1, 1.0), 30: (2, 0.0), 35: (2, 0.5), 40: (2, 1.0), 10_000: (2, 1.0)}
    for step, (stage, alpha) in expected.items():
        s, a = growth_schedule(step, num_stages=3, phase_steps=10)
        assert s == stage and a == pytest.approx(alpha), step
    assert growth_schedule(0, 3, 0) == (2, 1.0)  # no growing: full resolution from the start


def test_progan_train_step_follows_the_schedule_and_grows():
    model = tiny_mnist("progan", phase_steps=2)  # 28 px: stages 7, 14, 28
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(8, 1, 28, 28, generator=g) * 2 - 1)
    ctx = TrainContext("cpu", seed=0)
    seen = []
    for step in (0, 3, 5, 7, 9):
        out = model.train_step(batch, step, ctx)
        seen.append((int(model.generator.stage), float(model.generator.alpha), out["alpha"]))
        assert math.isfinite(float(out["loss_d"])) and math.isfinite(float(out["loss_g"]))
    assert seen == [(0, 1.0, 1.0), (1, 0.5, 0.5), (1, 1.0, 1.0), (2, 0.5, 0.5), (2, 1.0, 1.0)]
    model.generator.eval()
    with torch.no_grad():
        assert model.generator.generate(latents(3, 32)).shape == (3, 1, 28, 28)  # always full size


def test_progan_fade_in_starts_from_the_upsampled_lower_resolution():
    from ganbench.models.progan import real_at_stage, upsample2

    model = tiny_mnist("progan")
    G, D = model.generator, model.discriminator
    z = latents(4, 32)
    with torch.no_grad():
        for stage in (1, 2):
            low = G.synthesize(z, stage - 1, 1.0)
            torch.testing.assert_close(G.synthesize(z, stage, 0.0), upsample2(low))
            new = G.synthesize(z, stage, 1.0)
            assert not torch.allclose(new, upsample2(low), atol=1e-3)
            torch.testing.assert_close(G.synthesize(z, stage, 0.25), 0.75 * upsample2(low) + 0.25 * new)
            x = torch.randn(4, 1, G.resolutions[stage], G.resolutions[stage])
            torch.testing.assert_close(D(x, stage, 0.0), D(F.avg_pool2d(x, 2), stage - 1, 1.0))
            assert not torch.allclose(D(x, stage, 1.0), D(F.avg_pool2d(x, 2), stage - 1, 1.0))
    images = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(real_at_stage(images, 14, 0.0), upsample2(F.avg_pool2d(images, 4)))
    torch.testing.assert_close(real_at_stage(images, 14, 1.0), F.avg_pool2d(images, 2))


def test_progan_resumed_run_matches_uninterrupted(tmp_path):
    """The growth schedule is a function of the step, so a run resumed mid fade-in ends
    with the same weights, stage and alpha as an uninterrupted one."""
    from ganbench.training import train

    kw = dict(batch_size=8, overrides={**model_info("progan").tiny, "phase_steps": 2}, progress=False,
              sample_every=0, seed=3)
    whole = train("progan", "digits", steps=8, out=str(tmp_path / "whole"), **kw)
    train("progan", "digits", steps=3, out=str(tmp_path / "part"), **kw)  # stops inside the first fade-in
    resumed = train("progan", "digits", steps=8, out=str(tmp_path / "part"), resume=True, **kw)
    a, b = whole.model.generator.state_dict(), resumed.model.generator.state_dict()
    assert int(b["stage"]) == 2 and float(b["alpha"]) == 0.5  # last step index 7: fading in 28 x 28
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_equalized_learning_rate():
    from ganbench.models.progan import EqualizedConv2d, EqualizedLinear

    torch.manual_seed(0)
    layers = [EqualizedLinear(16, 256), EqualizedLinear(1024, 256), EqualizedConv2d(64, 64, 3)]
    for layer in layers:
        assert layer.weight.std().item() == pytest.approx(1.0, abs=0.05)  # stored as N(0, 1)
        fan_in = layer.weight[0].numel()
        assert layer.weight_scale == pytest.approx(math.sqrt(2 / fan_in))  # He's constant, at run time
    x = torch.randn(512, 1024)
    for layer in layers[:2]:  # unit-variance inputs give outputs of variance gain^2 = 2
        assert layer(x[:, :layer.weight.shape[1]]).std().item() == pytest.approx(math.sqrt(2), rel=0.1)
    # one Adam step changes every *effective* weight by the same fraction of its scale,
    # whatever the fan-in (plain layers would differ by sqrt(1024 / 16) = 8x)
    relative = []
    for layer in layers[:2]:
        opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
        before = (layer.weight * layer.weight_scale).detach().clone()
        layer(x[:, :layer.weight.shape[1]]).square().mean().backward()
        opt.step()
        change = (layer.weight * layer.weight_scale).detach() - before
        relative.append((change.abs().mean() / before.std()).item())
    assert relative[0] == pytest.approx(relative[1], rel=0.05)
    lr_mul = EqualizedLinear(8, 8, lr_mul=0.01)  # StyleGAN's mapping network
    assert lr_mul.weight.std().item() > 20 and lr_mul.weight_scale == pytest.approx(0.01 * math.sqrt(2 / 8))


def test_minibatch_stddev_adds_one_channel():
    from ganbench.models.progan import minibatch_stddev

    x = torch.randn(8, 5, 3, 3, generator=torch.Generator().manual_seed(0))
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (8, 6, 3, 3) and torch.equal(y[:, :5], x)
    groups = x.view(4, 2, 5, 3, 3)  # sample i is in group i % 2
    stat = groups.std(dim=0, unbiased=False).mean(dim=(1, 2, 3))
    for i in range(8):
        assert torch.allclose(y[i, 5], stat[i % 2].expand(3, 3), atol=1e-5)
    same = minibatch_stddev(x[:1].expand(4, -1, -1, -1).contiguous(), 4)  # no variety: ~0
    assert same[:, 5].abs().max() < 1e-3
    assert minibatch_stddev(x[:6], 4).shape == (6, 6, 3, 3)  # 6 samples: groups of 3


def test_progan_recipe_is_the_papers():
    """Appendix A.1 and tkarras/progressive_growing_of_gans config.py: minibatch 16 for every
    resolution up to 128 x 128 (minibatch_default = 16; the CIFAR-10 config keeps it) and an
    exponential running average of G's weights with decay 0.999 (G_smoothing = 0.999)."""
    info = model_info("progan")
    for dataset in ("celeba", "cifar10", "mnist"):
        recipe = info.recipe_for(dataset)
        assert (recipe.batch_size, recipe.ema, recipe.ema_start, recipe.ema_halflife_kimg) == (16, 0.999, 0, None)
    assert any("ramp-up" in what for what, _ in info.departures)
