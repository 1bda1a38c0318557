"""Losses and initialisations that several papers share, as pure functions.

A paper's own loss stays in its file (LSGAN's least squares, RaGAN's relativistic loss,
EBGAN's margin...); what lives here is what many models use unchanged: the original GAN
loss on logits (Goodfellow et al. 2014) in its non-saturating form, the hinge loss
(Lim & Ye 2017; SNGAN, projection discriminator, SAGAN, BigGAN), and the N(0, std)
initialisation of DCGAN and its descendants.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
