"""Training throughput of several models at 32 px through the one training loop.

    python bench/train_models_speed.py [--models dcgan,wgan-gp,sngan,stylegan] [--steps 50]
                                       [--device cuda] [--json OUT.json]

Each model is trained with its paper recipe (batch, n_critic, optimiser; ``--batch-size``
overrides the batch) on 32 x 32 RGB images (a seeded random array written to an .npz:
the data's content does not change the speed), in float32 with TF32 off, writing nothing
(``out=None``). A short run first warms up (lazy imports, cuDNN autotuning), then the
median of ``--repeats`` runs of ``--steps`` generator steps is reported as steps/s and as
real images/s (the images the discriminator saw: n_critic x batch per step). The plain
PyTorch loop the harness is compared against is DCGAN's, in ``bench/train_speed.py``.

The models' configurations: SNGAN and WGAN-GP take their CIFAR-10 ResNets
(``arch=resnet``), StyleGAN its 32 px configuration, DCGAN the paper's network.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from ganbench.training import TrainOptions, train

OVERRIDES = {"sngan": {"arch": "resnet"}, "wgan-gp": {"arch": "resnet"}}


def rgb_npz(folder: Path, n: int = 2048, size: int = 32) -> str:
    """A dataset descriptor for ``n`` seeded random RGB images."""
    rng = np.random.default_rng(0)
    path = folder / "rgb32.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
             y_train=rng.integers(0, 10, n))
    return f"npz:{path}"


def one_run(model: str, dataset: str, steps: int, batch_size: int | None, device: str) -> tuple[float, float, int]:
    """(steps/s, real images/s, whole batch) of one run of ``steps`` steps."""
    result = train(TrainOptions(model=model, dataset=dataset, steps=steps, batch_size=batch_size, device=device,
                                overrides=OVERRIDES.get(model, {}), progress=False, log_every=10, ema=0.0))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / result.seconds, result.real_images / result.seconds, result.real_images // max(steps, 1)


def bench_model(model: str, dataset: str, args) -> dict:
    one_run(model, dataset, min(5, args.steps), args.batch_size, args.device)  # warm-up
    runs = [one_run(model, dataset, args.steps, args.batch_size, args.device) for _ in range(args.repeats)]
    return {"model": model, "overrides": OVERRIDES.get(model, {}), "steps": args.steps,
            "steps_per_s": statistics.median(r[0] for r in runs),
            "images_per_s": statistics.median(r[1] for r in runs), "real_images_per_step": runs[0][2]}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="dcgan,wgan-gp,sngan,stylegan")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's paper batch")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        dataset = rgb_npz(Path(tmp))
        figures = [bench_model(model, dataset, args) for model in args.models.split(",")]
    print(f"32 px RGB, float32 (TF32 off), {args.device}, {args.steps} steps x {args.repeats} runs (median)")
    print(f"{'model':10s} {'steps/s':>9s} {'images/s':>10s}  real images per step")
    for f in figures:
        print(f"{f['model']:10s} {f['steps_per_s']:9.2f} {f['images_per_s']:10.1f}  {f['real_images_per_step']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"bench": "train_models_speed", "device": args.device,
                                               "torch": torch.__version__, "models": figures}, indent=1))
    return figures


if __name__ == "__main__":
    main()
