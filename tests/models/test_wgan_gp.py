"""What makes WGAN-GP itself: a gradient penalty on a critic without batch norm. (The penalty
on critics of known gradient is tested in test_losses.py.)"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganbench.errors import GanbenchError

from helpers import random_batch, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


def test_wgan_gp_penalty_is_positive_for_a_network_critic_and_critic_has_no_batch_norm():
    from ganbench.models.losses import gradient_penalty

    for norm in ("none", "layer"):
        model = tiny_16px("wgan-gp", critic_norm=norm)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.critic.modules())
    real = random_batch().images
    eps = torch.rand(len(real))
    assert gradient_penalty(model.critic, real, -real, eps).item() > 1e-3
    with pytest.raises(GanbenchError, match="critic_norm"):
        tiny_16px("wgan-gp", critic_norm="batch")
