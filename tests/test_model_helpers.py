"""The helpers models share (models/base.py, models/losses.py): the ``frozen`` and
``eval_mode`` blocks, the gradient penalty, the hinge loss, the minibatch-stddev layer,
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
