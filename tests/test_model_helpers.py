"""The helpers models share (models/base.py, models/losses.py): the ``frozen`` and
``eval_mode`` blocks, the gradient and R1 penalties, the hinge loss, the minibatch-stddev layer,
and the hyperparameter aliases of ``--set``."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.models.base import eval_mode, frozen


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))


# --- frozen / eval_mode -----------------------------------------------------------------
def test_frozen_stops_gradients_and_restores_each_parameters_own_flag():
    d, other = _net(), _net()
    d[2].bias.requires_grad_(False)  # frozen before: stays frozen after
    before = [p.requires_grad for p in d.parameters()]
    with frozen(d, other):
        assert not any(p.requires_grad for p in [*d.parameters(), *other.parameters()])
    assert [p.requires_grad for p in d.parameters()] == before
    assert all(p.requires_grad for p in other.parameters())


def test_frozen_gives_no_gradient_to_the_frozen_network():
    g, d = nn.Linear(2, 2), nn.Linear(2, 1)
    with frozen(d):
        d(g(torch.randn(4, 2))).sum().backward()
    assert g.weight.grad is not None and d.weight.grad is None


def test_frozen_and_eval_mode_restore_after_an_exception():
    d = _net()
    d[1].eval()  # a submodule's own mode: eval_mode restores like module.train(flag)
    with pytest.raises(RuntimeError), frozen(d), eval_mode(d):
        assert not d.training and not d[0].training
        raise RuntimeError
    assert all(p.requires_grad for p in d.parameters())
    assert d.training and all(m.training for m in d.modules())


def test_eval_mode_keeps_a_network_in_eval_mode():
    d = _net().eval()
    with eval_mode(d):
        assert not d.training
    assert not d.training


# --- the shared losses and layers -------------------------------------------------------
@pytest.mark.parametrize("target", [1.0, 750.0])
def test_gradient_penalty_of_a_linear_critic(target):
    from ganbench.models.losses import gradient_penalty

    critic = nn.Linear(12, 1, bias=False)
    nn.init.constant_(critic.weight, 0.5)  # ||grad|| = 0.5 * sqrt(12) everywhere
    real, fake = torch.randn(3, 12), torch.randn(3, 12)
    gp = gradient_penalty(critic, real, fake, torch.rand(3), target=target)
    assert gp.item() == pytest.approx(((0.5 * 12 ** 0.5 - target) / target) ** 2, rel=1e-5)


def test_r1_penalty_of_a_linear_discriminator():
    from ganbench.models.losses import r1_penalty

    d = nn.Linear(12, 1, bias=False)
    nn.init.constant_(d.weight, 0.5)  # grad_x D(x) = w: ||w||^2 = 3
    real = torch.randn(3, 12)
    d_real, r1 = r1_penalty(lambda x: d(x).flatten(), real)
    torch.testing.assert_close(d_real, d(real).flatten())
    assert r1.item() == pytest.approx(3.0) and not real.requires_grad


def test_hinge_losses():
    from ganbench.models.losses import hinge_d_loss, hinge_g_loss

    d_real, d_fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(d_real, d_fake).item() == pytest.approx(0.25 + 0.5)
    assert hinge_g_loss(d_fake).item() == pytest.approx(1.0)


@pytest.mark.parametrize("n, any_group, groups", [(8, True, 4), (6, True, 3), (5, True, 1), (3, True, 3),
                                                  (8, False, 4), (6, False, 1), (3, False, 3)])
def test_minibatch_stddev_group_rules(n, any_group, groups):
    from ganbench.models.progan import minibatch_stddev

    x = torch.randn(n, 5, 2, 2, generator=torch.Generator().manual_seed(0))
    stat = minibatch_stddev(x, 4, any_group=any_group)[:, -1, 0, 0]
    per_group = x.view(groups, -1, 5, 2, 2).var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
    torch.testing.assert_close(stat, per_group.repeat(groups))  # sample i in group i % (n / G)


# --- hyperparameter aliases (--set) -----------------------------------------------------
def test_lr_sets_both_learning_rates_unless_one_is_named():
    from ganbench.models.base import resolve_config

    both = resolve_config("dcgan", "mnist", {"lr": "1e-3"})
    assert (both.lr_g, both.lr_d) == (1e-3, 1e-3)
    one = resolve_config("dcgan", "mnist", {"lr": "1e-3", "lr_d": "5e-4"})
    assert (one.lr_g, one.lr_d) == (1e-3, 5e-4)


def test_n_dis_and_n_critic_are_one_setting():
    from ganbench.models import create_model
    from ganbench.models.base import resolve_config

    assert resolve_config("wgan-gp", None, {"n_dis": "3"}).n_critic == 3
    assert resolve_config("sngan", None, {"n_critic": "2"}).n_dis == 2
    assert create_model("sngan", g_channels=8, d_channels=8, n_critic=4).config.n_dis == 4


@pytest.mark.parametrize("model, alias, says", [("aae", "lr", "its learning rates are lr_recon"),
                                                ("dcgan", "n_dis", "no n_critic")])
def test_an_alias_a_model_cannot_take_is_a_one_line_error(model, alias, says):
    from ganbench.errors import GanbenchError
    from ganbench.models.base import resolve_config

    with pytest.raises(GanbenchError, match=f"{model} has no '{alias}'") as err:
        resolve_config(model, None, {alias: "1"})
    assert says in str(err.value) and "\n" not in str(err.value)


def test_models_show_lists_the_aliases():
    from click.testing import CliRunner

    from ganbench.cli import main

    out = CliRunner().invoke(main, ["models", "show", "sagan"]).output
    assert "aliases: lr=X sets lr_g and lr_d; n_critic=X sets n_dis" in out
    assert "aliases" not in CliRunner().invoke(main, ["models", "show", "gan"]).output
