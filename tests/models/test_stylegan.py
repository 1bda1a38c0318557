"""What makes StyleGAN itself: style mixing, truncation in W, noise inputs and PPL in W space."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ganbench.models import Batch, TrainContext

from helpers import latents, tiny_mnist


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_stylegan_mapping_and_style_mixing():
    from ganbench.models.stylegan import mix_styles

    model = tiny_mnist("stylegan")
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
    always = tiny_mnist("stylegan", style_mixing_prob=1.0).training_styles(4, ctx)
    never = tiny_mnist("stylegan", style_mixing_prob=0.0).training_styles(4, ctx)
    assert not torch.equal(always[:, 0], always[:, -1]) and torch.equal(never[:, 0], never[:, -1])


def test_stylegan_grows_like_progan():
    from ganbench.models.progan import upsample2

    G = tiny_mnist("stylegan").generator.eval()
    w = G.mapping(latents(3, 32))
    with torch.no_grad():
        low = G.synthesize(w, "none", stage=1, alpha=1.0)
        assert low.shape == (3, 1, 14, 14)
        torch.testing.assert_close(G.synthesize(w, "none", stage=2, alpha=0.0), upsample2(low))
        G.set_growth(1, 1.0)
        assert G.generate(latents(3, 32)).shape == (3, 1, 28, 28)  # evaluation always sees full size
    model = tiny_mnist("stylegan", phase_steps=2)
    out = model.train_step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1), 3, TrainContext("cpu", seed=0))
    assert (out["stage"], out["alpha"]) == (1.0, 0.5) and int(model.generator.stage) == 1


def test_stylegan_truncation_in_w():
    model = tiny_mnist("stylegan")
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
    G = tiny_mnist("stylegan").generator.eval()
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
        torch.testing.assert_close(G.synthesis(w), G.synthesis(w))  # synthesis (PPL in W): fixed noise maps


def test_stylegan_sampling_draws_noise_per_sample_from_a_seeded_source():
    """The official metrics give every sample fresh noise (NVlabs/stylegan
    metrics/frechet_inception_distance.py: Gs_clone.get_output_for(latents, None,
    is_validation=True, randomize_noise=True)); here each sample's maps are seeded by its z
    and noise_seed, so seeded sampling reproduces."""
    G = tiny_mnist("stylegan").generator.eval()
    z = latents(6, 32, 5)
    with torch.no_grad():
        for layer in G.layers:
            layer.noise_strength.fill_(0.3)  # strengths start at 0: let the noise show
        images = G.generate(z)
        assert torch.equal(images, G.generate(z))  # same z, same seed: the same images
        torch.testing.assert_close(G.generate(z[2:4]), images[2:4])  # whatever the batch around them
        other_draw = G.generate(z, noise_seed=1)  # same z, another noise draw
        assert (other_draw - images).abs().mean() > 1e-3
        assert torch.equal(G.generate(z, noise_seed=1), other_draw)
        G.noise_seed = 1
        assert torch.equal(G.generate(z), other_draw)
        assert torch.equal(G.synthesis(G.mapping(z), "none"), G.synthesis(G.mapping(z), "none"))  # only noise varies
    maps = G.per_sample_noise(latents(64, 32, 6))
    assert [m.shape[-1] for m in maps] == [7, 7, 14, 14, 28, 28]
    assert maps[-1].shape == (64, 1, 28, 28) and not torch.equal(maps[-1][0], maps[-1][1])  # one draw per sample
    fine = maps[-1].flatten(1)
    assert abs(fine.mean().item()) < 0.02 and abs(fine.std().item() - 1) < 0.02  # N(0, 1): 50k values
    corr = torch.corrcoef(fine)[~torch.eye(64, dtype=torch.bool)]
    assert corr.abs().max() < 0.2  # independent across samples (|r| of 784-pixel maps ~ 0.036)


def test_stylegan_ppl_walks_w_space(monkeypatch):
    from ganbench.evaluation import evaluate
    from ganbench.metrics.ppl import compute_ppl

    G = tiny_mnist("stylegan").generator
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


def test_stylegan_recipe_is_the_official_g_smoothing_and_batch():
    """NVlabs/stylegan: G_smoothing_kimg = 10.0 (training_loop.py), so the EMA decay per step is
    0.5 ** (batch / 10_000); 8-GPU minibatch_dict {..., 32: 64, 64: 32} (train.py) at the
    final resolution."""
    from ganbench.models.base import model_info

    info = model_info("stylegan")
    cifar, celeba = info.recipe_for("cifar10"), info.recipe_for("celeba")
    assert (cifar.batch_size, celeba.batch_size, info.recipe_for("mnist").batch_size) == (64, 32, 64)
    assert cifar.ema is None and cifar.ema_halflife_kimg == celeba.ema_halflife_kimg == 10.0
    assert cifar.ema_decay(64) == pytest.approx(0.5 ** (64 / 10_000))  # = 0.995573...
    assert cifar.ema_decay(64) ** (10_000 / 64) == pytest.approx(0.5)  # half the weight after 10k images
    # 600k images per phase (lod_training_kimg = lod_transition_kimg = 600) at batch 64
    assert info.defaults_for("cifar10")["phase_steps"] * 64 == 600_000


def test_stylegan_ppl_in_z_shares_the_noise_between_the_two_ends_of_a_path():
    """Sampling draws noise per sample keyed by z, so ends a distance epsilon apart in z would
    get different noise and a 'path length' of noise / epsilon^2. Walking z through
    synthesis(mapping(z)) shares one map per layer: with strong noise, PPL in z stays what
    it is without noise, up to the noise's own (epsilon-independent) effect."""
    from ganbench.metrics.ppl import compute_ppl

    G = tiny_mnist("stylegan").generator
    opts = {"num_paths": 8, "epsilon": 1e-4, "similarity": "l2", "resize": None, "quantize": False,
            "discard_lower": None, "discard_upper": None, "space": "z"}
    quiet = compute_ppl(G, generator=torch.Generator().manual_seed(0), batch_size=8, **opts)["ppl"]
    with torch.no_grad():
        for module in G.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.fill_(1.0)
    noisy = compute_ppl(G, generator=torch.Generator().manual_seed(0), batch_size=8, **opts)["ppl"]
    assert 0 < noisy < 10 * quiet  # different noise at the two ends: ~1e8 x larger
