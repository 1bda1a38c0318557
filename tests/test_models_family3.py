"""What makes each model of family 3 itself: ProGAN's growth schedule, fade-in, equalized
learning rate and minibatch-stddev layer; StyleGAN's style mixing, truncation in W, noise
inputs and PPL in W space; BigGAN's orthogonal regulariser, shared embedding with skip-z
and truncated sampling. (That every model learns MNIST is tested in test_models.py.)"""
from __future__ import annotations

import json

import math

import pytest
import torch
import torch.nn.functional as F

from ganbench.models import Batch, TrainContext, create_model
from ganbench.models.base import model_info


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def tiny(name: str, seed: int = 0, **overrides):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model(name, dataset="mnist", overrides={**model_info(name).tiny, **overrides})


def latents(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------
# ProGAN
# ---------------------------------------------------------------------------------------
def test_progan_growth_schedule_is_a_function_of_the_step():
    from ganbench.models.progan import growth_schedule

    expected = {0: (0, 1.0), 9: (0, 1.0), 10: (1, 0.0), 15: (1, 0.5), 19: (1, 0.9), 20: (1, 1.0),
                29: (1, 1.0), 30: (2, 0.0), 35: (2, 0.5), 40: (2, 1.0), 10_000: (2, 1.0)}
    for step, (stage, alpha) in expected.items():
        s, a = growth_schedule(step, num_stages=3, phase_steps=10)
        assert s == stage and a == pytest.approx(alpha), step
    assert growth_schedule(0, 3, 0) == (2, 1.0)  # no growing: full resolution from the start


def test_progan_train_step_follows_the_schedule_and_grows():
    model = tiny("progan", phase_steps=2)  # 28 px: stages 7, 14, 28
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

    model = tiny("progan")
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


# ---------------------------------------------------------------------------------------
# StyleGAN
# ---------------------------------------------------------------------------------------
def test_stylegan_mapping_and_style_mixing():
    from ganbench.models.stylegan import mix_styles

    model = tiny("stylegan")
    G = model.generator.eval()
    assert G.has_mapping and G.num_ws == 6  # 7, 14, 28 px: two layers each
    w1, w2 = G.mapping(latents(2, 32, 1)), G.mapping(latents(2, 32, 2))
    assert w1.shape == (2, 6, 32) and torch.equal(w1[:, 0], w1[:, 5])  # one w per layer
    mixed = mix_styles(w1, w2, 2)
    assert torch.equal(mixed[:, :2], w1[:, :2]) and torch.equal(mixed[:, 2:], w2[:, 2:])
    with torch.no_grad():
        for layer in G.layers:  # make noise matter, then switch it off: styles alone
            layer.noise_strength.fill_(0.5)
        img1, img2, img_mixed = (G.synthesis(w, noise_mode="none") for w in (w1, w2, mixed))
        torch.testing.assert_close(G.synthesis(mix_styles(w1, w2, 6), noise_mode="none"), img1)
        assert (img_mixed - img1).abs().mean() > 1e-3 and (img_mixed - img2).abs().mean() > 1e-3
    # training draws mixed styles with probability style_mixing_prob
    ctx = TrainContext("cpu", seed=0)
    always = tiny("stylegan", style_mixing_prob=1.0).training_styles(4, ctx)
    never = tiny("stylegan", style_mixing_prob=0.0).training_styles(4, ctx)
    assert not torch.equal(always[:, 0], always[:, -1]) and torch.equal(never[:, 0], never[:, -1])


def test_stylegan_grows_like_progan():
    from ganbench.models.progan import upsample2

    G = tiny("stylegan").generator.eval()
    w = G.mapping(latents(3, 32))
    with torch.no_grad():
        low = G.synthesize(w, "none", stage=1, alpha=1.0)
        assert low.shape == (3, 1, 14, 14)
        torch.testing.assert_close(G.synthesize(w, "none", stage=2, alpha=0.0), upsample2(low))
        G.set_growth(1, 1.0)
        assert G.generate(latents(3, 32)).shape == (3, 1, 28, 28)  # evaluation always sees full size
    model = tiny("stylegan", phase_steps=2)
    out = model.train_step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1), 3, TrainContext("cpu", seed=0))
    assert (out["stage"], out["alpha"]) == (1.0, 0.5) and int(model.generator.stage) == 1


def test_stylegan_truncation_in_w():
    model = tiny("stylegan")
    G = model.generator.eval()
    G.w_avg.copy_(latents(1, 32, 7)[0])
    z = latents(5, 32)
    with torch.no_grad():
        full = G.generate(z)
        G.truncation_psi, G.truncation_cutoff = 0.0, None
        collapsed = G.generate(z)
        G.truncation_psi = 0.7
        partial = G.generate(z)
    torch.testing.assert_close(collapsed, collapsed[:1].expand_as(collapsed))  # psi 0: every w is w_avg
    torch.testing.assert_close(collapsed[0], G.synthesis(G.w_avg[None]).squeeze(0).detach())
    assert (partial - collapsed).abs().mean() < (full - collapsed).abs().mean()
    # the training step keeps the moving average of w
    model.generator.train()
    before = model.generator.w_avg.clone()
    model.train_step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1), 0, TrainContext("cpu", seed=0))
    assert not torch.equal(model.generator.w_avg, before)


def test_stylegan_noise_inputs_change_fine_detail_only():
    G = tiny("stylegan").generator.eval()
    w, w_other = G.mapping(latents(16, 32, 3)), G.mapping(latents(16, 32, 4))

    def coarse_share(diff):  # energy of the 7 x 7 average-pooled difference / total energy
        return (F.avg_pool2d(diff, 4).square().mean() / diff.square().mean()).item()

    with torch.no_grad():
        # strengths start at zero: at initialisation noise changes nothing
        torch.manual_seed(0)
        torch.testing.assert_close(G.synthesize(w, "random"), G.synthesize(w, "none"))
        for fine_only in (False, True):  # noise in every layer, then in the 28 x 28 layers only
            for i, layer in enumerate(G.layers):
                layer.noise_strength.fill_(0.3 if i >= 4 or not fine_only else 0.0)
            torch.manual_seed(1)
            a, b, other = G.synthesize(w, "random"), G.synthesize(w, "random"), G.synthesize(w_other, "random")
            noise_diff, style_diff = b - a, other - a
            assert noise_diff.abs().mean() > 1e-3  # noise does change pixels...
            assert noise_diff.square().mean() < 0.5 * style_diff.square().mean()  # ...less than a new w...
            # ...and at a finer scale (fine layers: almost nothing survives 4 x 4 average pooling)
            assert coarse_share(noise_diff) < (0.2 if fine_only else 0.75) * coarse_share(style_diff)
        torch.testing.assert_close(G.synthesis(w), G.synthesis(w))  # eval: fixed noise maps


def test_stylegan_ppl_walks_w_space(monkeypatch):
    from ganbench.evaluation import evaluate
    from ganbench.metrics.ppl import compute_ppl

    G = tiny("stylegan").generator
    calls = []
    original = G.synthesis
    monkeypatch.setattr(G, "synthesis", lambda w, *a, **k: calls.append(tuple(w.shape)) or original(w, *a, **k))
    opts = {"num_paths": 6, "epsilon": 1e-2, "similarity": "l2", "resize": None, "quantize": False,
            "discard_lower": None, "discard_upper": None}
    auto = compute_ppl(G, generator=torch.Generator().manual_seed(0), batch_size=6, **opts)
    assert calls == [(12, G.num_ws, 32)]  # lerp of w for every layer, images from synthesis
    in_w = compute_ppl(G, generator=torch.Generator().manual_seed(0), batch_size=6, space="w", **opts)
    in_z = compute_ppl(G, generator=torch.Generator().manual_seed(0), batch_size=6, space="z", **opts)
    assert auto["ppl"] == pytest.approx(in_w["ppl"], rel=1e-6) and auto["ppl"] > 0
    assert abs(in_z["ppl"] - in_w["ppl"]) > 1e-3 * in_w["ppl"]
    result = evaluate(G, metrics=["ppl"], options={"ppl": opts}, num_samples=6, batch_size=6, seed=0,
                      device="cpu", progress=False)
    assert result.values["ppl"] == pytest.approx(in_w["ppl"], rel=1e-6)
    assert json.loads(result.rows[0]["protocol"])["options"]["space"] == "w"  # what was used, not "auto"


# ---------------------------------------------------------------------------------------
# BigGAN
# ---------------------------------------------------------------------------------------
def test_orthogonal_regularization_on_hand_made_matrices():
    from ganbench.models.biggan import orthogonal_regularization

    w = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # W W^T = [[1, 1], [1, 2]]: off-diagonal 1, 1
    assert orthogonal_regularization(w).item() == pytest.approx(2.0)
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]])  # overlaps 2, 1, 3
    assert orthogonal_regularization(w).item() == pytest.approx(2 * (4 + 1 + 9))
    assert orthogonal_regularization(torch.diag(torch.tensor([2.0, 3.0, 0.5]))).item() == 0.0  # norms are free
    kernel = torch.zeros(2, 1, 2, 2)
    kernel[0, 0, 0, 0], kernel[1, 0, 0, 0], kernel[1, 0, 1, 1] = 1.0, 2.0, 1.0  # filters overlap by 2
    assert orthogonal_regularization(kernel).item() == pytest.approx(8.0)
    # the G step adds beta * R to the loss, over G's weights (not the shared embedding)
    model = tiny("biggan")
    weights = model.generator.regularized_weights()
    assert all(p.dim() >= 2 for p in weights)
    assert not any(p is model.generator.shared.weight for p in weights)
    out = model.train_step(Batch(torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 10), 0,
                           TrainContext("cpu", seed=0))
    assert out["ortho"].item() > 0


def test_biggan_shared_embedding_and_skip_z():
    model = tiny("biggan")  # 32 px: 3 up-blocks, z split in 4 chunks of 24 / 4 = 6
    G = model.generator.eval()
    z, y = latents(5, 24), torch.tensor([0, 1, 2, 3, 4])
    z0, conds = G.conditions(z, y)
    assert z0.shape == (5, 6) and [c.shape for c in conds] == [(5, 16 + 6)] * 3
    e = G.shared(y)
    for i, c in enumerate(conds):
        assert torch.equal(c[:, :16], e)  # one shared class embedding for every block
        assert torch.equal(c[:, 16:], z[:, 6 * (i + 1):6 * (i + 2)])  # each block its own chunk of z
    assert torch.equal(torch.cat([z0] + [c[:, 16:] for c in conds], 1), z)
    for block, c in zip(G.blocks, conds):
        assert block.bn1.gain.in_features == c.shape[1]
    # the last z chunk reaches only the last block: changing it changes the image
    z2 = z.clone()
    z2[:, 18:] = latents(5, 6, 9)
    with torch.no_grad():
        assert (G.generate(z, y) - G.generate(z2, y)).abs().mean() > 1e-4
        assert (G.generate(z, y) - G.generate(z, (y + 1) % 10)).abs().mean() > 1e-4
    assert sum(isinstance(m, torch.nn.Embedding) for m in G.modules()) == 1


def test_biggan_truncation_trick():
    from ganbench.models.biggan import truncated_normal

    z = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = 0.5
    zt = truncated_normal(z, t)
    assert zt.abs().max() <= t
    order = torch.argsort(z)
    assert (zt[order].diff() >= 0).all()  # monotone: the same latent ordering
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    var = 1 - 2 * t * phi / (math.erf(t / math.sqrt(2)))  # variance of N(0, 1) truncated to [-t, t]
    assert zt.mean().item() == pytest.approx(0.0, abs=3e-3)
    assert zt.var().item() == pytest.approx(var, rel=0.01)
    torch.testing.assert_close(truncated_normal(z[:100], 40.0), z[:100])  # a wide threshold changes nothing
    model = tiny("biggan", truncation=0.5)
    G = model.generator.eval()
    zz, y = latents(4, 24) * 3, torch.arange(4)
    with torch.no_grad():
        torch.testing.assert_close(G.generate(zz, y), G.synthesize(truncated_normal(zz, 0.5), y))
        assert not torch.allclose(G.generate(zz, y), G.synthesize(zz, y))


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
