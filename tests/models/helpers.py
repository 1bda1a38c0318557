"""Plain helpers shared by the model tests: tiny models, seeded random batches and latents,
a few training steps on digits or MNIST."""
from __future__ import annotations

import torch

from ganbench.models import Batch, TrainContext, create_model
from ganbench.models.base import model_info


def tiny_16px(name: str, **overrides):
    """A small model for random 16 x 16 gray data, initialised from seed 0."""
    base = {"image_size": 16, "channels": 1, "g_channels": 4, "d_channels": 4, "z_dim": 8}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, **{**base, **overrides})


def random_batch(n: int = 8, size: int = 16, labels: bool = False) -> Batch:
    """``n`` seeded random gray images in [-1, 1), with random labels 0..9 when ``labels``."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    return Batch(x, torch.randint(0, 10, (n,), generator=g) if labels else None)


def repeating_context(batch: Batch, seed: int = 0) -> TrainContext:
    """A CPU TrainContext whose extra real batches (n_dis D updates) are ``batch`` again."""
    return TrainContext("cpu", seed=seed, real_batches=lambda: batch)


def tiny_mnist(name: str, seed: int = 0, **overrides):
    """The model with its registered test settings (``model_info(name).tiny``) for MNIST."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model(name, dataset="mnist", overrides={**model_info(name).tiny, **overrides})


def latents(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``n`` seeded N(0, I) latents of size ``dim``."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def digits_batches(size: int, batch: int = 32, seed: int = 0):
    """Seeded batches of scikit-learn's digits at ``size`` px (no download, labelled)."""
    from ganbench.data import training_data

    return training_data("digits", "train", resolution=size, channels=1).batches(batch, seed)


def run_steps(model, steps: int, size: int, batch: int = 32, seed: int = 0) -> list[dict]:
    """Trains ``model`` for ``steps`` steps on seeded digits batches; each step's log as floats."""
    batches, logs = digits_batches(size, batch, seed), []
    ctx = TrainContext("cpu", seed=seed + 1, real_batches=lambda: Batch(*next(batches)))
    for step in range(steps):
        logs.append({k: float(v) for k, v in model.train_step(ctx.next_real_batch(), step, ctx).items()})
    return logs


def mnist_batches(batch: int = 32, seed: int = 0):
    """Seeded batches of MNIST's training split."""
    from ganbench.data import training_data

    return training_data("mnist", "train").batches(batch, seed)


def mnist_test(n: int, size: int = 28):
    from ganbench.data import load_images
    from ganbench.images import uint8_to_float

    x, y = load_images("mnist", "test", resolution=size, channels=1, limit=n)
    return uint8_to_float(x), y


def short_run(name: str, steps: int, batch_size: int = 64, seed: int = 0, **overrides):
    """``train`` on MNIST for ``steps`` steps, leaving the global random state untouched."""
    from ganbench.training import train

    with torch.random.fork_rng():
        return train(name, "mnist", steps=steps, batch_size=batch_size, seed=seed, overrides=overrides,
                     progress=False, log_every=steps)
