"""What makes InfoGAN itself: the latent codes and the class purity of the categorical code."""
from __future__ import annotations

import pytest
import torch

from ganbench.models import create_model

from helpers import mnist_test


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def shipped_lenet_mnist():
    from ganbench.metrics.lenet import lenet_mnist

    return lenet_mnist()


INFOGAN_FAST = {"g_channels": 16, "d_channels": 16, "fc_dim": 128, "q_dim": 32}


def test_infogan_latent_carries_a_uniform_categorical_code():
    g = create_model("infogan", dataset="mnist").generator
    assert g.latent.z_dim == 62 + 2 + 1 and g.latent.z_dist == "uniform"
    z = torch.rand(20_000, g.latent.z_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise, cat, cont = g.split(z)
    counts = torch.bincount(cat, minlength=10).float() / len(z)
    assert (counts - 0.1).abs().max() < 0.01  # c1 ~ Cat(10) under the harness's U(-1, 1) latents
    assert torch.equal(g.split(g.pack(noise, cat, cont))[1], cat)
    with torch.no_grad():
        g.eval()
        assert torch.allclose(g(g.pack(noise[:4], cat[:4], cont[:4])), g.generate_codes(noise[:4], cat[:4], cont[:4]))


def test_code_purity_finds_the_best_code_to_class_mapping(data_dir):
    """A 'generator' that draws real test digits of class (3 c + 1) mod 10 for code c has
    purity ~ 1 with that mapping; one ignoring its code has purity ~ 1 / 10."""
    from ganbench.models.infogan import Generator, InfoGANConfig, categorical_code_purity

    lenet = shipped_lenet_mnist()
    x, y = mnist_test(2000)

    class Drawn(Generator):
        def __init__(self, use_code: bool):
            super().__init__(InfoGANConfig(**INFOGAN_FAST))
            self.use_code = use_code

        def generate_codes(self, noise, cat, cont):
            wanted = (3 * cat + 1) % 10 if self.use_code else torch.full_like(cat, 7)
            idx = [int(torch.nonzero(y == w)[int((noise[i, 0] + 1) * 50)]) for i, w in enumerate(wanted.tolist())]
            return x[idx]

    good = categorical_code_purity(Drawn(True), lenet, per_code=30)
    assert good["purity"] > 0.95 and good["mapping"] == {c: (3 * c + 1) % 10 for c in range(10)}
    assert categorical_code_purity(Drawn(False), lenet, per_code=30)["purity"] <= 0.11


def test_infogan_categorical_code_separates_digit_classes(data_dir):
    """After a short run on MNIST the categorical code alone picks the digit class far more
    often than chance (the untrained generator: ~0.1)."""
    from ganbench.models.infogan import categorical_code_purity
    from ganbench.training import train

    lenet = shipped_lenet_mnist()
    # purity with the authors' weights (lambda 1 for both codes), seeds 0, 1, 2: 0.53, 0.59, 0.57 at
    # batch 64; 0.41, 0.48, 0.47 at batch 32 (with lambda_cont 0.1 at batch 32: 0.65, 0.52, 0.85)
    result = train("infogan", "mnist", steps=250, batch_size=64, seed=0, progress=False, overrides=INFOGAN_FAST)
    report = categorical_code_purity(result.generator, lenet, per_code=50)
    assert report["purity"] > 0.4, report
    assert result.losses["q_cat_acc"] > 0.9  # Q recovers the code from G(z, c)


def test_infogan_weights_both_information_terms_by_one_and_trains_at_batch_128():
    """openai/InfoGAN launchers/run_mnist_exp.py: info_reg_coeff=1.0, which
    infogan/algos/infogan_trainer.py subtracts times the discrete and the continuous MI
    estimates alike; the continuous posterior is a Gaussian with fixed unit std
    (Uniform(1, fix_std=True)), so its term is 0.5 (c - mu)^2 per code. batch_size = 128."""
    import math

    from ganbench.models.base import model_info

    model = create_model("infogan", dataset="mnist", **INFOGAN_FAST)
    assert model.config.lambda_cat == model.config.lambda_cont == 1.0
    q_cat, cat = torch.zeros(2, 10), torch.tensor([3, 7])  # uniform Q: cross-entropy log 10
    cont, q_cont = torch.tensor([[0.5, -0.5], [1.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.5, 0.5]])
    total, nll_cat, nll_cont = model.info_loss(q_cat, q_cont, cat, cont)
    assert nll_cat.item() == pytest.approx(math.log(10))
    assert nll_cont.item() == pytest.approx(0.25)  # 0.5 * (0.25 + 0.25) for each sample
    assert total.item() == pytest.approx(math.log(10) + 0.25)
    recipe = model_info("infogan").recipe_for("mnist")
    assert (recipe.batch_size, recipe.ema) == (128, None)
