"""What makes StackGAN itself: conditioning augmentation's KL, the matching-aware D loss, the
synthetic sentence embeddings, the two phases as a function of the step (each phase trains only
its own stage, resume across the boundary is exact), and a short run that draws the class its
caption names at 32 px. (test_models.py's FID learning test does not cover text-to-image
models, so StackGAN's is here.)"""
from __future__ import annotations

import math

import pytest
import torch

from ganbench.errors import GanbenchError, InputError
from ganbench.generative import sample_latents
from ganbench.images import float_to_uint8
from ganbench.models import Batch, TrainContext, create_model, model_info


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def lenet_and_real(n: int = 1000):
    from ganbench.data import load_images
    from ganbench.metrics.lenet import lenet_mnist

    extractor = lenet_mnist()
    real, _ = load_images("mnist", "test", limit=n)
    return extractor, extractor(real)["pool"]


def fid(extractor, images_uint8, real_features) -> float:
    from ganbench.metrics.fid import fid_from_features

    return fid_from_features(extractor(images_uint8)["pool"], real_features)


def test_kl_and_matching_aware_loss():
    from ganbench.models.stackgan import kl_to_standard_normal, matching_aware_d_loss

    zeros = torch.zeros(3, 4)
    assert kl_to_standard_normal(zeros, zeros).item() == pytest.approx(0.0, abs=1e-7)
    mu, logvar = torch.full((2, 4), 2.0), torch.full((2, 4), math.log(0.5))
    expected = 0.5 * (4.0 + 0.5 - 1.0 - math.log(0.5))  # per dimension
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    half = torch.zeros(5)  # D undecided everywhere: ln 2 + (ln 2 + ln 2) / 2
    assert matching_aware_d_loss(half, half, half).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    big = torch.full((5,), 30.0)
    # perfect D: real high, fake and wrong low
    assert matching_aware_d_loss(big, -big, -big).item() == pytest.approx(0.0, abs=1e-6)
    # a D that accepts mismatched text pays half the price of a D fooled by G
    assert matching_aware_d_loss(big, -big, big).item() == pytest.approx(15.0, rel=1e-3)


def test_synthetic_sentence_embeddings_and_captions():
    from ganbench.models.stackgan import caption_classes, class_sentence_embeddings, mismatched_labels

    table = class_sentence_embeddings(10, 1024, seed=0, shared=0.5)
    assert torch.equal(table, class_sentence_embeddings(10, 1024, seed=0, shared=0.5))
    assert not torch.allclose(table, class_sentence_embeddings(10, 1024, seed=1, shared=0.5))
    unit = torch.nn.functional.normalize(table, dim=1)
    cosine = (unit @ unit.T)[~torch.eye(10, dtype=torch.bool)]
    assert 0.4 < cosine.mean() < 0.6 and cosine.max() < 0.7  # related sentences, distinct classes
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(1000) % 10
    wrong = mismatched_labels(labels, 10, g)
    assert (wrong != labels).all() and set(wrong.tolist()) == set(range(10))
    counts = torch.bincount(caption_classes(torch.randn(20000, generator=g), 10), minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200  # uniform over the classes


def tiny_stackgan(**overrides):
    return create_model("stackgan", dataset="mnist", **{**model_info("stackgan").tiny, **overrides})


def test_stackgan_generator_contract():
    torch.manual_seed(0)
    model = tiny_stackgan()
    g = model.generator.eval()
    c = model.config
    assert g.latent.num_classes == 0 and g.latent.z_dim == c.z_dim + 2 * c.condition_dim + 1
    z, _ = sample_latents(g.latent, 6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        s0, x = g.generate_stages(z, torch.arange(6))
        assert s0.shape == (6, 1, 16, 16) and x.shape == (6, 1, 32, 32)
        assert torch.equal(g.generate(z, torch.arange(6)), x)
        other = g.generate(z, (torch.arange(6) + 1) % 10)
        assert not torch.allclose(other, x)  # the caption matters
        drawn = caption_classes_of(g, z)
        assert torch.equal(g.generate(z), g.generate(z, drawn))  # no labels: the class drawn from z
        assert torch.equal(g.generate(z, embeddings=g.sentences[drawn]), g.generate(z))
        with pytest.raises(InputError):
            g.generate(z, torch.full((6,), 10))
        with pytest.raises(InputError):
            g.generate(z, embeddings=torch.zeros(6, 3))
    with pytest.raises(GanbenchError, match="labelled"):
        model.train_step(Batch(torch.zeros(4, 1, 32, 32)), 0, TrainContext("cpu"))
    with pytest.raises(GanbenchError, match="labelled"):
        tiny_stackgan(num_classes=0)


def caption_classes_of(generator, z):
    from ganbench.models.stackgan import caption_classes

    return caption_classes(generator.split_latent(z)[3], generator.num_classes)


def test_stackgan_phases_train_only_their_stage():
    from ganbench.models.stackgan import phase_lr

    torch.manual_seed(0)
    model = tiny_stackgan(stage1_steps=2, lr_decay_steps=3)
    assert [model.stage(s) for s in range(4)] == [1, 1, 2, 2]
    assert [phase_lr(1.0, s, 3) for s in (0, 2, 3, 7)] == [1.0, 1.0, 0.5, 0.25]
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(8, 1, 32, 32, generator=g) * 2 - 1, torch.arange(8) % 10)
    ctx = TrainContext("cpu", seed=0)
    parts = {"stage1": model.generator.stage1, "d1": model.discriminator1,
             "stage2": model.generator.stage2, "d2": model.discriminator2}

    def snapshot():
        return {k: torch.cat([t.detach().flatten().clone() for t in m.state_dict().values() if t.is_floating_point()])
                for k, m in parts.items()}

    for step, moved in ((0, {"stage1", "d1"}), (2, {"stage2", "d2"})):
        before = snapshot()
        model.train()
        log = model.train_step(batch, step, ctx)
        after = snapshot()
        changed = {k for k in parts if not torch.equal(before[k], after[k])}
        assert changed == moved, f"step {step}: {changed}"  # Stage-I fixed, BatchNorm statistics included
        assert log["stage"] == model.stage(step) and all(math.isfinite(float(v)) for v in log.values())
    model.train_step(batch, 5, ctx)  # phase step 3: the first halving
    assert model.opt_g2.param_groups[0]["lr"] == pytest.approx(model.config.lr_g / 2)
    assert model.opt_g1.param_groups[0]["lr"] == pytest.approx(model.config.lr_g)  # untouched in Stage-II


def test_stackgan_resume_across_the_phase_boundary_is_exact(tmp_path):
    """The phase is a function of the step: 4 + 2 resumed steps equal 6 straight ones."""
    from ganbench.training import train

    overrides = {**model_info("stackgan").tiny, "stage1_steps": 3}
    kw = dict(batch_size=8, overrides=overrides, progress=False, sample_every=0)
    straight = train("stackgan", "digits", steps=6, out=str(tmp_path / "a"), **kw)
    train("stackgan", "digits", steps=4, out=str(tmp_path / "b"), **kw)
    resumed = train("stackgan", "digits", steps=6, out=str(tmp_path / "b"), resume=True, **kw)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_stackgan_learns_text_to_image(data_dir):
    """Stage-I then Stage-II on MNIST with synthetic captions: the 32 px Stage-II samples
    for a class's sentence embedding are recognised as that class (chance: 0.1) and FID
    clearly improves over the untrained generator."""
    from ganbench.metrics.lenet import classifier_accuracy
    from ganbench.training import train

    extractor, real = lenet_and_real()
    info = model_info("stackgan")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = create_model("stackgan", dataset="mnist", overrides=info.tiny).generator.eval()
    z, _ = sample_latents(untrained.latent, 1000, torch.Generator().manual_seed(123))
    labels = torch.arange(1000) % 10
    with torch.no_grad():
        before = fid(extractor, float_to_uint8(untrained.generate(z)), real)
    result = train("stackgan", "mnist", steps=info.test_steps, batch_size=32, overrides=info.tiny, progress=False)
    g = result.generator.eval()
    with torch.no_grad():
        after = fid(extractor, float_to_uint8(g.generate(z)), real)  # captions drawn from z
        stage1, stage2 = g.generate_stages(z, labels)
    accuracy = classifier_accuracy(float_to_uint8(stage2), labels, extractor)
    accuracy1 = classifier_accuracy(float_to_uint8(stage1), labels, extractor)
    fid1 = fid(extractor, float_to_uint8(stage1), real)
    print(f"stackgan: lenet-mnist FID {before:.1f} untrained -> {after:.1f} (Stage-I {fid1:.1f}) after "
          f"{info.test_steps} steps; accuracy on the captioned class {accuracy:.3f} (Stage-I {accuracy1:.3f})")
    assert before > 600
    assert after < 0.6 * before
    assert accuracy > 0.35
    assert after < fid1  # Stage-II improves on the Stage-I sketch it refines
