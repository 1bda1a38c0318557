"""VAE: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014. arXiv:1312.6114.

The non-adversarial baseline of the leaderboards: a variational auto-encoder trained by
maximising the evidence lower bound (ELBO) with the reparameterisation trick (the
paper's SGVB estimator with L = 1 sample per data point, Section 2.3 / 3).

The paper's MNIST model (Section 5, Appendix C):

* Encoder q(z|x): an MLP x -> 500 tanh units -> (mu, log sigma^2) of a diagonal Gaussian.
* Decoder p(x|z): an MLP z -> 500 tanh units -> 784 Bernoulli means (a sigmoid).
* Prior p(z) = N(0, I); latent size 20 (the paper sweeps 3..200).
* Training: minibatches of 100 (the recipe), Adagrad with a global step size from
  {0.01, 0.02, 0.1} (0.02 here), parameters initialised from N(0, 0.01), a small weight
  decay that corresponds to a N(0, I) prior on the parameters (off by default here).

Decoder likelihood (``decoder="bernoulli"``, the paper's for MNIST): ganbench images in
[-1, 1] are mapped to intensities p = (x + 1) / 2 in [0, 1] and scored with the binary
cross-entropy against the decoder's Bernoulli means, as is standard practice for
non-binarised MNIST. ``decoder="gaussian"`` (the paper's Frey-Face choice) uses a
Gaussian with a learned per-pixel-shared log-variance on [-1, 1] images. Either way the
ELBO is reported in nats per image.

``.generator`` decodes z ~ N(0, I) into images: the decoder's mean, mapped to [-1, 1]
(Bernoulli: 2 p - 1; Gaussian: the mean clamped to [-1, 1]). Hidden sizes, the latent size and the
optimiser are hyperparameters; ``hidden_layers`` > 1 gives deeper MLPs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.errors import GanbenchError
from ganbench.generative import GenerativeModel, LatentSpec
from ganbench.models.base import (Batch, GANModel, LogUniform, ModelConfig, TrainContext, TrainingRecipe,
                                  register_model)


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    image_size: int = 28  # output height = width
    z_dim: int = 20  # latent size (the paper sweeps 3, 5, 10, 20, 200)
    hidden: int = 500  # units per hidden layer of encoder and decoder
    hidden_layers: int = 1  # hidden layers in each MLP (the paper: 1)
    activation: str = "tanh"  # hidden nonlinearity: "tanh" (the paper's) or "relu"
    decoder: str = "bernoulli"  # "bernoulli" (the paper's MNIST likelihood) or "gaussian"
    optimizer: str = "adagrad"  # "adagrad" (the paper's) or "adam"
    lr: float = 0.02  # global step size (Adagrad) or Adam learning rate
    weight_decay: float = 0.0  # L2 on the parameters (the paper's N(0, I) parameter prior; tiny)
    init_std: float = 0.01  # weights N(0, init_std), biases 0 (the paper's)

    def __post_init__(self):
        for key, choices in (("activation", ("tanh", "relu")), ("decoder", ("bernoulli", "gaussian")),
                             ("optimizer", ("adagrad", "adam"))):
            if getattr(self, key) not in choices:
                raise GanbenchError(f"vae: {key} must be one of {', '.join(choices)}, got {getattr(self, key)!r}")
        if self.z_dim < 1 or self.hidden < 1 or self.hidden_layers < 1:
            raise GanbenchError("vae: z_dim, hidden and hidden_layers must be positive")
        if self.channels not in (1, 3):
            raise GanbenchError(f"vae: channels must be 1 or 3, got {self.channels}")


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers between ``sizes`` with ``activation`` after every layer but the last."""
    act = nn.Tanh if activation == "tanh" else nn.ReLU
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class Decoder(GenerativeModel):
    """p(x|z): z (N, z_dim) -> images (N, C, H, W) in [-1, 1] (the decoder's mean)."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        self.latent = LatentSpec(z_dim=c.z_dim, z_dist="normal", channels=c.channels, image_size=c.image_size)
        self.shape = (c.channels, c.image_size, c.image_size)
        self.bernoulli = c.decoder == "bernoulli"
        self.net = mlp([c.z_dim] + [c.hidden] * c.hidden_layers + [math.prod(self.shape)], c.activation)

    def params(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits or Gaussian means, (N, C, H, W)."""
        return self.net(z).view(len(z), *self.shape)

    def generate(self, z, labels=None):
        out = self.params(z)
        return torch.sigmoid(out) * 2 - 1 if self.bernoulli else out.clamp(-1.0, 1.0)


class Encoder(nn.Module):
    """q(z|x): images -> (mu, log sigma^2), each (N, z_dim)."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        self.net = mlp([c.channels * c.image_size ** 2] + [c.hidden] * c.hidden_layers + [2 * c.z_dim],
                       c.activation)

    def forward(self, x):
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, in nats (the paper's Appendix B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


class VAE(GANModel):
    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.generator = Decoder(config)
        # Gaussian decoder: one learned log-variance shared by all pixels
        self.log_sigma2 = nn.Parameter(torch.zeros(()), requires_grad=config.decoder == "gaussian")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, config.init_std)
                nn.init.zeros_(m.bias)
        params = [p for p in self.parameters() if p.requires_grad]
        if config.optimizer == "adagrad":
            self.opt = torch.optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)

    def neg_log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image in nats; ``x`` in [-1, 1]."""
        out = self.generator.params(z)
        if self.generator.bernoulli:
            target = (x + 1) / 2
            return F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1).sum(1)
        var = self.log_sigma2.exp()
        sq = (x - out).pow(2).flatten(1).sum(1)
        return 0.5 * (sq / var + x[0].numel() * (self.log_sigma2 + math.log(2 * math.pi)))

    def elbo_terms(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(negative ELBO, reconstruction NLL, KL), each per image (N,), for noise ``eps``."""
        mu, logvar = self.encoder(x)
        z = mu + eps * (0.5 * logvar).exp()  # the reparameterisation trick
        nll = self.neg_log_likelihood(x, z)
        kl = gaussian_kl(mu, logvar)
        return nll + kl, nll, kl

    def train_step(self, batch: Batch, step: int, ctx: TrainContext) -> dict[str, torch.Tensor]:
        x = batch.images
        eps, _ = ctx.latents(self.generator.latent, len(x))
        with ctx.autocast():
            neg_elbo, nll, kl = self.elbo_terms(x, eps)
            loss = neg_elbo.mean()
        ctx.backward_step(loss, self.opt)
        return {"loss": loss.detach(), "elbo": -loss.detach(), "recon_nll": nll.detach().mean(),
                "kl": kl.detach().mean()}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior means of ``x`` (float (N, C, H, W) in [-1, 1]) -> [-1, 1]."""
        mu, _ = self.encoder(x)
        return self.generator.generate(mu)


_MNIST = {"image_size": 28}


@register_model(
    "vae", config=VAEConfig, paper="Auto-Encoding Variational Bayes", authors="Kingma, Welling",
    arxiv="1312.6114", year=2013, task="unconditional",
    defaults={"mnist": _MNIST, "fashion-mnist": _MNIST, "digits": _MNIST,
              "cifar10": {"image_size": 32, "channels": 3, "decoder": "gaussian"},
              "celeba": {"image_size": 64, "channels": 3, "decoder": "gaussian"}},
    description="Non-adversarial baseline: MLP VAE (500 tanh units, 20-d z), Bernoulli decoder, ELBO",
    # searched draws train with Adam (Lucic et al. 2018: learning rate log-uniform on [1e-5, 1e-2])
    search_space={"optimizer": "adam", "lr": LogUniform(1e-5, 1e-2)},
    recipes={"default": TrainingRecipe(batch_size=100, source="Kingma & Welling Sec. 5: minibatches of size "
                                                              "M = 100, L = 1")},
    departures=[
        ("no weight decay by default (weight_decay=0)",
         "the paper's MAP term for a N(0, I) parameter prior is tiny at 60,000 images; set weight_decay to add it"),
        ("the Bernoulli decoder is scored against grey-level intensities in [0, 1], not binarised pixels",
         "common practice for grey-level MNIST"),
        ("colour data (CIFAR-10, CelebA) use a Gaussian decoder with one learned log-variance shared by all "
         "pixels",
         "a steadier variant of the paper's Gaussian MLP decoder, for datasets the paper did not use"),
    ],
    tiny={"optimizer": "adam", "lr": 2e-3, "init_std": 0.05}, test_steps=500)
def build(config: VAEConfig) -> VAE:
    return VAE(config)
