"""What makes CoGAN itself: the second domain is made from the *other* half of each batch (no
pairs seen), the generators share their first layers and the discriminators their last ones,
and after a short run one z renders to a *corresponding* pair (digit and negative). (Its FID
learning test is in test_models.py.)"""
from __future__ import annotations

import pytest
import torch

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import sample_latents
from ganbench.models import create_model, model_info


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_edge_and_negative_domains():
    from ganbench.models.cogan import edge_image, split_unpaired, to_domain2

    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 3, 3] = 1.0
    ring = torch.zeros(7, 7)
    ring[2:5, 2:5] = 1.0
    ring[3, 3] = 0.0
    assert torch.equal(edge_image(x)[0, 0], ring)  # dilation minus the image
    assert torch.equal(to_domain2(x * 2 - 1, "edge"), ring[None, None] * 2 - 1)
    assert torch.equal(to_domain2(x * 2 - 1, "negative"), 1 - 2 * x)
    images = torch.arange(6.0).view(6, 1, 1, 1) / 10
    one, two = split_unpaired(images, "negative")
    assert torch.equal(one.flatten(), images[:3].flatten())
    assert torch.equal(two.flatten(), -images[3:].flatten())  # the other half: no pair shares a digit
    with pytest.raises(InputError):
        split_unpaired(images[:1], "edge")


def test_cogan_shares_generator_head_and_discriminator_tail():
    torch.manual_seed(0)
    model = create_model("cogan", dataset="mnist", **model_info("cogan").tiny)
    g, d = model.generator, model.discriminator
    assert len(g.shared) == 4 and all(len(h) == 1 for h in g.heads)  # only the output layer per domain
    assert all(len(s) == 1 for s in d.stems) and len(d.shared) == 3  # only the input layer per domain
    z = torch.rand(4, g.latent.z_dim) * 2 - 1
    for domain in (0, 1):
        g.zero_grad()
        d.zero_grad()
        d(g.generate_domain(z, domain), domain).sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.shared.parameters())
        assert all(p.grad is not None for p in g.heads[domain].parameters())
        assert all(p.grad is None for p in g.heads[1 - domain].parameters())
        assert all(p.grad is not None for p in d.shared.parameters())
        assert all(p.grad is None for p in d.stems[1 - domain].parameters())
    x1, x2 = g.generate_pair(z)
    assert torch.equal(x1, g.generate(z)) and x2.shape == x1.shape
    unshared = create_model("cogan", dataset="mnist", **{**model_info("cogan").tiny, "g_shared_layers": 0})
    assert len(unshared.generator.shared) == 0
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(unshared.generator) - count(g) == count(g.shared)
    for bad in ({"g_shared_layers": 5}, {"d_shared_layers": 4}, {"domain2": "sketch"}, {"image_size": 64}):
        with pytest.raises(GanbenchError):
            create_model("cogan", dataset="mnist", **bad)


def test_cogan_pairs_correspond_after_a_short_run(data_dir):
    """Trained on unpaired digits and negatives, the same z gives a digit and *its*
    negative: much closer to the negated digit than a mismatched pair is. Untrained,
    the two heads are unrelated."""
    from ganbench.models.cogan import pair_error, pixel_agreement
    from ganbench.training import train

    overrides = {**model_info("cogan").tiny, "domain2": "negative"}
    z, _ = sample_latents(create_model("cogan", dataset="mnist", **overrides).generator.latent, 500,
                          torch.Generator().manual_seed(5))

    def pairs(generator):
        generator.eval()
        with torch.no_grad():
            return generator.generate_pair(z)

    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = create_model("cogan", dataset="mnist", **overrides)
    matched0, mismatched0 = pair_error(*pairs(untrained.generator), "negative")
    agreement0 = pixel_agreement(*pairs(untrained.generator), "negative")
    result = train("cogan", "mnist", steps=250, batch_size=64, overrides=overrides, progress=False)
    x1, x2 = pairs(result.generator)
    matched, mismatched = pair_error(x1, x2, "negative")
    agreement = pixel_agreement(x1, x2, "negative")
    print(f"cogan negative pairs: |x2 + x1| {matched0:.3f} vs mismatched {mismatched0:.3f} untrained -> "
          f"{matched:.3f} vs {mismatched:.3f}; pixel agreement {agreement0:.3f} -> {agreement:.3f}")
    assert matched0 > 0.9 * mismatched0  # no correspondence before training
    assert matched < 0.6 * mismatched
    assert agreement > 0.85 and agreement > agreement0 + 0.2
    assert x1.std() > 0.3  # real digits, not a flat image that is its own negative


@pytest.mark.slow
def test_cogan_without_weight_sharing_pairs_do_not_correspond(data_dir):
    """The paper's ablation: two GANs that share nothing learn both marginals but no
    correspondence (measured: |x2 + x1| 0.316 vs 0.321 mismatched, against 0.121 vs 0.317
    with sharing, after the same 250 steps)."""
    from ganbench.models.cogan import pair_error
    from ganbench.training import train

    overrides = {**model_info("cogan").tiny, "domain2": "negative", "g_shared_layers": 0, "d_shared_layers": 0}
    result = train("cogan", "mnist", steps=250, batch_size=64, overrides=overrides, progress=False)
    g = result.generator.eval()
    with torch.no_grad():
        x1, x2 = g.generate_pair(sample_latents(g.latent, 500, torch.Generator().manual_seed(5))[0])
    matched, mismatched = pair_error(x1, x2, "negative")
    assert x1.std() > 0.3 and x2.std() > 0.3  # both domains learned
    assert matched > 0.8 * mismatched
