"""Every built-in model declares the paper's training recipe (batch size, generator EMA,
with its source) and its known departures from the paper; the numbers that matter
checked against the papers and the authors' code."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import Batch, TrainContext, create_model, list_models
from ganbench.models.base import TrainingRecipe, model_info

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest

BUILTIN = [name for name in list_models() if model_info(name).config.__module__.startswith("ganbench.")]


def test_the_builtin_models_are_found():
    assert {"gan", "dcgan", "wgan", "cyclegan", "pix2pix"} <= set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_model_declares_its_recipe_with_a_source(name):
    from ganbench.api import list_datasets

    info = model_info(name)
    assert "default" in info.recipes or set(info.defaults) <= set(info.recipes), \
        f"{name}: no 'default' recipe and none for each of its datasets {sorted(info.defaults)}"
    # "imagenet": a paper's ImageNet recipe, for a dataset plug-in of that name (none ships)
    assert set(info.recipes) <= {"default", "imagenet", *list_datasets()}, f"{name}: recipe for an unknown dataset"
    for dataset, recipe in info.recipes.items():
        assert isinstance(recipe, TrainingRecipe)
        assert recipe.source.strip(), f"{name}: the {dataset!r} recipe does not say where its numbers come from"


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_model_declares_its_departures_with_reasons(name):
    departures = model_info(name).departures
    assert isinstance(departures, tuple) and departures, f"{name}: no departures from the paper declared"
    for entry in departures:
        assert isinstance(entry, tuple) and len(entry) == 2
        what, why = entry
        assert what.strip() and why.strip(), f"{name}: departure {entry!r} needs both what and why"


# (model, dataset, batch size, generator EMA decay) -- each row's source in its comment
PAPER_RECIPES = [
    # goodfeli/adversarial mnist.yaml: SGD batch_size 100
    ("gan", "mnist", 100, None),
    # Mirza & Osindero Sec. 4.1: "stochastic gradient decent with mini-batches of size 100"
    ("cgan", "mnist", 100, None),
    # Radford et al. Sec. 4: "mini-batch stochastic gradient descent (SGD) with a mini-batch size of 128"
    ("dcgan", "mnist", 128, None),
    ("dcgan", "cifar10", 128, None),
    # Odena et al.: each AC-GAN trained for "50000 mini-batches of size 100"
    ("acgan", "mnist", 100, None),
    # Zhu et al. / the authors' docs/tips.md: "For all experiments in the paper, we set the batch size to be 1"
    ("cyclegan", "mnist-edges-unpaired", 1, None),
    # phillipi/pix2pix train.lua: batchSize = 1
    ("pix2pix", "mnist-edges", 1, None),
    # Arjovsky et al. Algorithm 1: m = 64; martinarjovsky/WassersteinGAN main.py --batchSize 64
    ("wgan", "mnist", 64, None),
    # mingyuliutw/CoGAN mnist.edge.cogan.data.ptt: 128 images per domain, ganbench splits one batch in two
    ("cogan", "mnist", 256, None),
    # jeffdonahue/bigan train_gan.py --batch_size 128; ALI's Appendix A tables: batch size 100
    ("bigan", "mnist", 128, None),
    ("ali", "cifar10", 100, None),
    # Kingma & Welling Sec. 5: "Minibatches of size M = 100"
    ("vae", "mnist", 100, None),
    # yangxy/GPEN train_simple.py: --batch 4, g_ema accumulated with decay 0.5 ** (32 / (10 * 1000))
    ("gpen", "mnist-degraded", 4, 0.5 ** (32 / 10_000)),
]


@pytest.mark.parametrize("name, dataset, batch_size, ema", PAPER_RECIPES)
def test_paper_recipes(name, dataset, batch_size, ema):
    recipe = model_info(name).recipe_for(dataset)
    assert recipe.batch_size == batch_size
    assert recipe.ema_decay(batch_size) == (None if ema is None else pytest.approx(ema))  # None: the raw G


def test_gpen_ema_halves_the_weight_of_an_update_after_312_steps():
    # the authors' decay is 0.5 ** (32 / 10k images) per step: half-life 10,000 / 32 = 312.5 steps
    decay = model_info("gpen").recipe_for("mnist-degraded").ema
    assert decay ** 312.5 == pytest.approx(0.5)


@pytest.mark.parametrize("name, dataset", [("pix2pix", "mnist-edges"), ("cyclegan", "mnist-edges-unpaired")])
def test_translation_models_train_at_their_recipe_batch_of_one(name, dataset):
    """Batch 1 is the papers' (BatchNorm then acts as instance normalisation): one step runs."""
    assert model_info(name).recipe_for(dataset).batch_size == 1
    torch.manual_seed(0)
    model = create_model(name, dataset=dataset, overrides=model_info(name).tiny)
    g = torch.Generator().manual_seed(1)
    target, source = (torch.rand(2, 1, 1, 32, 32, generator=g) * 2 - 1).unbind(0)
    before = [p.detach().clone() for p in model.generator.parameters()]
    logs = model.train_step(Batch(target, extra={"source": source}), 0, TrainContext("cpu", seed=0))
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
