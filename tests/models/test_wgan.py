"""What makes WGAN itself: weight clipping after every critic step and the reference
schedule of critic steps. (That every model learns is tested in test_models.py.)"""
from __future__ import annotations

import pytest
import torch

from ganbench.models import TrainContext

from helpers import random_batch, tiny_16px


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest


class _RecordingContext(TrainContext):
    """Records the critic's largest |parameter| whenever a critic update starts."""

    def __init__(self, model):
        super().__init__("cpu", seed=0, real_batches=random_batch)
        self.model, self.before_critic_steps = model, []

    def backward_step(self, loss, optimizer, **kwargs):
        if optimizer is self.model.opt_d:
            self.before_critic_steps.append(max(p.abs().max().item() for p in self.model.critic.parameters()))
        super().backward_step(loss, optimizer, **kwargs)


def test_wgan_clips_critic_weights_after_every_critic_step():
    # a learning rate this large moves weights far beyond c in one RMSProp step
    model = tiny_16px("wgan", lr=0.05, clip=0.01, n_critic=5, n_critic_warmup=0)
    before = [p.detach().clone() for p in model.critic.parameters()]
    ctx = _RecordingContext(model)
    for step in range(2):
        model.train_step(random_batch(), step, ctx)
    assert len(ctx.before_critic_steps) == 2 * 5  # n_critic updates per generator step
    assert max(ctx.before_critic_steps) <= 0.01 + 1e-7  # clipped at init and after each update
    params = list(model.critic.parameters())
    assert max(p.abs().max().item() for p in params) <= 0.01 + 1e-7
    assert any(not torch.equal(a, b) for a, b in zip(before, params))  # the critic did learn
    # the clipping binds: many weights sit on the boundary
    on_edge = sum((p.abs() > 0.0099).sum().item() for p in params)
    assert on_edge > 0.5 * sum(p.numel() for p in params)


def test_wgan_reference_warmup_schedule():
    from ganbench.models.wgan import WGANConfig, critic_steps

    c = WGANConfig()
    assert [critic_steps(c, s) for s in (0, 24, 25, 26, 500, 501)] == [100, 100, 5, 5, 100, 5]
    assert critic_steps(WGANConfig(n_critic_warmup=0), 0) == 5


def test_wgan_warmup_step_draws_a_fresh_real_batch_for_each_of_its_critic_updates():
    from ganbench.models import Batch

    model = tiny_16px("wgan", n_critic_warmup=100, warmup_steps=1)
    g = torch.Generator().manual_seed(2)
    drawn = []

    def fresh_batch():
        drawn.append(Batch(torch.rand(8, 1, 16, 16, generator=g) * 2 - 1))
        return drawn[-1]

    real_inputs = []
    model.critic.register_forward_pre_hook(
        lambda _, args: real_inputs.append(args[0]) if any(args[0] is b.images for b in drawn) else None)
    ctx = TrainContext("cpu", seed=0, real_batches=fresh_batch)
    first = fresh_batch()
    model.train_step(first, 0, ctx)  # step 0: a warm-up step of 100 critic updates
    assert ctx.real_batches_drawn == 99  # the step's own batch, then 99 fresh ones
    assert len(real_inputs) == 100 and len({id(x) for x in real_inputs}) == 100  # none reused
