"""Every registered model: its declaration, one training step, and that a short run on
real MNIST clearly beats the untrained generator in the ``lenet-mnist`` feature space.
Parametrised over the registry, so models added later are covered automatically.
Also: the shipped LeNet extractors' accuracy on the real test sets, and the model CLI."""
from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.cli.models_cmd import field_comments
from ganbench.generative import ConditionalImageGenerator, GenerativeModel, check_generated, sample_latents
from ganbench.models.base import (TASKS, Batch, GANModel, ModelConfig, TrainContext, create_model, model_info,
                                  register_model)
from ganbench.registry import datasets, models

MODELS = models.names()
# learn from MNIST images (+ labels) and sample from a latent prior (BiGAN/ALI learn an encoder too)
SAMPLED_TASKS = ("unconditional", "class-conditional", "representation learning")
N_FID = 1000  # samples per side of the learning tests' FID


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_builtin_models_registered():
    assert {"gan", "cgan", "dcgan"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_declaration(name):
    info = model_info(name)
    assert info.task in TASKS and 1990 < info.year < 2100 and info.paper
    assert dataclasses.is_dataclass(info.config) and issubclass(info.config, ModelConfig)
    assert info.config.__dataclass_params__.frozen
    undocumented = {f.name for f in dataclasses.fields(info.config)} - set(field_comments(info.config))
    assert not undocumented, f"config fields without a comment: {undocumented}"
    for dataset in info.defaults:
        assert dataset in datasets, f"defaults for unknown dataset {dataset!r}"
    module = sys.modules[models.get(name).__module__]
    if info.arxiv:
        assert info.arxiv in (module.__doc__ or ""), "the model file's docstring must cite the paper"


def tiny_batch(model: GANModel, n: int = 4) -> Batch:
    c = model.config
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, c.channels, c.image_size, c.image_size, generator=g) * 2 - 1
    labels = torch.arange(n) % c.num_classes if c.num_classes else None
    extra = {}
    if isinstance(model.generator, ConditionalImageGenerator):  # translation / restoration: a source image
        size, channels = model.generator.latent.image_size, model.generator.latent.source_channels
        extra["source"] = torch.rand(n, channels, size, size, generator=g) * 2 - 1
    return Batch(images, labels, extra)


@pytest.mark.parametrize("name", MODELS)
def test_one_step_and_generator_contract(name):
    info = model_info(name)
    model = create_model(name, dataset="mnist" if "mnist" in info.defaults else None,
                         overrides={"channels": 1, "num_classes": 10, **info.tiny})
    assert isinstance(model.generator, GenerativeModel) and model.optimizers()
    batch = tiny_batch(model)
    losses = model.train_step(batch, 0, TrainContext("cpu", seed=0, real_batches=lambda: batch))
    assert losses and all(math.isfinite(float(v)) for v in losses.values())
    latent = model.generator.latent
    assert (latent.num_classes > 0) == (info.task == "class-conditional")
    z, labels = sample_latents(latent, 3, torch.Generator().manual_seed(0))
    model.generator.eval()
    with torch.no_grad():
        if isinstance(model.generator, ConditionalImageGenerator):
            out = model.generator.translate(tiny_batch(model, 3).extra["source"])
        else:
            out = model.generator.generate(z, labels)
        check_generated(out, latent, 3, what=name)


@pytest.fixture(scope="module")
def mnist_reference(data_dir):
    from ganbench.testing import mnist_lenet_reference

    return mnist_lenet_reference(N_FID)


# Models whose learning is not yet shown by a CI-sized run (measured, see each model's
# `tiny` comment). Listed, not hidden: they show up as xfail in every test report.
NOT_YET_LEARNING_IN_CI: dict[str, str] = {}  # name -> the measured reason
LEARNING = [pytest.param(n, marks=pytest.mark.xfail(reason=NOT_YET_LEARNING_IN_CI[n], run=False))
            if n in NOT_YET_LEARNING_IN_CI else n
            for n in MODELS if model_info(n).task in SAMPLED_TASKS]


@pytest.mark.parametrize("name", LEARNING)
def test_short_run_learns_mnist(name, mnist_reference):
    """A few hundred steps of the tiny model clearly beat its untrained lenet-FID (~890 for
    featureless images; real MNIST train vs test ~10 at 1000 samples). Trivial generators
    score ~854 (the mean image) and ~793 (pixels drawn from the marginals). The thresholds
    hold with a measured margin over seeds, thread counts and float paths:
    ``bench/learning_margins.py`` and its committed output in ``bench/results/``."""
    from ganbench.testing import LEARNING_ACCURACY_MIN, LEARNING_FID_RATIO, short_run_learning

    outcome = short_run_learning(name, mnist_reference, seed=0)
    print(f"{name}: lenet-mnist FID {outcome.fid_before:.1f} untrained -> {outcome.fid_after:.1f} "
          f"after {outcome.steps} steps; accuracy {outcome.accuracy}")
    assert outcome.fid_after < LEARNING_FID_RATIO * outcome.fid_before
    if outcome.accuracy is not None:
        assert outcome.accuracy > LEARNING_ACCURACY_MIN


@pytest.mark.parametrize("extractor_name,dataset,minimum", [
    ("lenet-mnist", "mnist", 0.99), ("lenet-fashion", "fashion-mnist", 0.90)])
def test_lenet_accuracy_from_shipped_weights(data_dir, extractor_name, dataset, minimum):
    import json

    from ganbench.data import load_images
    from ganbench.images import to_rgb_uint8
    from ganbench.metrics import lenet

    path = lenet.weights_path(extractor_name)
    assert path.is_file(), f"{path} is missing: the shipped weights are tracked in git"
    assert path.stat().st_size < 1_000_000
    extractor = getattr(lenet, extractor_name.replace("-", "_"))()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert extractor.weights_sha256 == meta["sha256"] and extractor.weights_standard
    images, labels = load_images(dataset, "test")
    accuracy = lenet.classifier_accuracy(to_rgb_uint8(images), labels, extractor)
    assert accuracy >= minimum
    assert abs(accuracy - meta["test_accuracy"]) < 1e-3  # the recorded number is reproducible
    features = extractor(to_rgb_uint8(images[:8]))
    assert features["pool"].shape == (8, 128) and features["logits"].shape == (8, 10)
    # resizing: a 56 px copy is read like the 28 px original
    big = torch.nn.functional.interpolate(images[:200].float(), scale_factor=2, mode="nearest").to(torch.uint8)
    agree = (extractor(big)["logits"].argmax(1) == extractor(images[:200])["logits"].argmax(1)).float().mean()
    assert agree > 0.95


def test_classifier_accuracy_checks_inputs():
    from ganbench.errors import InputError
    from ganbench.metrics.lenet import classifier_accuracy

    with pytest.raises(InputError):
        classifier_accuracy(torch.zeros(3, 3, 28, 28, dtype=torch.uint8), torch.zeros(2), None)


def test_models_cli():
    runner = CliRunner()
    result = runner.invoke(main, ["models"])
    assert result.exit_code == 0
    for name in MODELS:
        assert name in result.output
    assert "Conditional Generative Adversarial Nets" in result.output
    for name in MODELS:
        shown = runner.invoke(main, ["models", "show", name])
        assert shown.exit_code == 0 and model_info(name).task in shown.output
    shown = runner.invoke(main, ["models", "show", "dcgan", "--dataset", "cifar10"])
    assert "64" in shown.output and "lr_d" in shown.output and "Adam learning rate of D" in shown.output
    bad = runner.invoke(main, ["models", "show", "dcgann"])
    assert bad.exit_code == 2 and "Did you mean 'dcgan'?" in bad.output
    listed = runner.invoke(main, ["datasets"])
    assert listed.exit_code == 0 and "fashion-mnist" in listed.output and "folder:PATH" in listed.output


def test_user_model_is_marked_third_party():
    @dataclasses.dataclass(frozen=True)
    class TinyConfig(ModelConfig):
        z_dim: int = 4  # noise length

    @register_model("test-user-gan", config=TinyConfig, paper="A test", year=2024, task="unconditional")
    def build(config):  # pragma: no cover - never built
        raise AssertionError

    try:
        assert models.entry("test-user-gan").origin == "user"
        result = CliRunner().invoke(main, ["models"])
        assert "test-user-gan *" in result.output and "third-party" in result.output
    finally:
        models.unregister("test-user-gan")


def test_register_model_validates():
    from ganbench.errors import GanbenchError

    with pytest.raises(GanbenchError, match="task"):
        register_model("x", config=ModelConfig, paper="p", year=2020, task="painting")
    with pytest.raises(GanbenchError, match="Did you mean 'image_size'"):
        register_model("x", config=ModelConfig, paper="p", year=2020, task="unconditional",
                       defaults={"mnist": {"image_sise": 28}})
