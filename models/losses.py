"""Losses and initialisations that several papers share, as pure functions.

A paper's own loss stays in its file (LSGAN's least squares, RaGAN's relativistic loss,
EBGAN's margin...); what lives here is what many models use unchanged: the original GAN
loss on logits (Goodfellow et al. 2014) in its non-saturating form, the hinge loss
(Lim & Ye 2017; SNGAN, projection discriminator, SAGAN, BigGAN), the WGAN-GP gradient
penalty (Gulrajani et al. 2017; WGAN-GP, ProGAN), the R1 penalty (Mescheder et al. 2018;
StyleGAN, GPEN), and the N(0, std) initialisation of DCGAN and its descendants.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.models.base import TrainContext


def gan_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D's loss -[log D(x) + log(1 - D(G(z)))], on logits (computed in float32)."""
    logits_real, logits_fake = logits_real.float(), logits_fake.float()
    return (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))


def gan_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """G's non-saturating loss -log D(G(z)), on logits."""
    logits_fake = logits_fake.float()
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - d_real.float()).mean() + F.relu(1.0 + d_fake.float()).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]."""
    return -d_fake.float().mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                     ctx: TrainContext | None = None, *, target: float = 1.0) -> torch.Tensor:
    """``E[((||grad D(x_hat)||_2 - target) / target)^2]`` at ``x_hat = eps * real + (1 - eps) * fake``
    (WGAN-GP for target 1; ProGAN's CIFAR-10 variant for target 750).

    ``eps`` (N,) in [0, 1]. Differentiable (``create_graph``) so the critic's update sees
    it. With float16 AMP the gradient is taken of the scaled output and unscaled (the
    PyTorch AMP recipe for gradient penalties).
    """
    eps = eps.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat).float().sum()
    scaler = ctx.scaler if ctx is not None and ctx.scaler.is_enabled() else None
    if scaler is not None:
        out = scaler.scale(out)
    (grad,) = torch.autograd.grad(out, x_hat, create_graph=True)
    grad = grad.float().flatten(1)
    if scaler is not None:
        grad = grad / scaler.get_scale()
    return ((grad.norm(2, dim=1) - target) / target).square().mean()


def r1_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
               ctx: TrainContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(D(real), E[||grad_x D(x)||^2]): the R1 penalty on real images (Mescheder et al.
    2018; StyleGAN, GPEN), differentiable for D's update. ``discriminator(x)`` returns
    logits (N,). With float16 AMP the gradient is taken of the scaled output and unscaled."""
    real = real.detach().requires_grad_(True)
    d_real = discriminator(real)
    out = d_real.float().sum()
    scaler = ctx.scaler if ctx is not None and ctx.scaler.is_enabled() else None
    if scaler is not None:  # float16 AMP: differentiate the scaled output, then unscale
        out = scaler.scale(out)
    (grad,) = torch.autograd.grad(out, real, create_graph=True)
    grad = grad.float()
    if scaler is not None:
        grad = grad / scaler.get_scale()
    return d_real, grad.square().flatten(1).sum(1).mean()


def init_normal_(module: nn.Module, std: float = 0.02, *, batchnorm: bool = True) -> nn.Module:
    """DCGAN's init: conv/linear weights N(0, std), biases 0, and (``batchnorm``) BatchNorm
    scale N(1, std) and shift 0; with ``batchnorm=False`` BatchNorm keeps PyTorch's (1, 0),
    as in the reference code of several later papers. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif batchnorm and isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
