"""Train the LeNet domain classifiers shipped in ``metrics/weights/``.

Writes ``<out>/lenet-<name>.safetensors`` and ``<out>/lenet-<name>.json`` (sha256 of
the weights, test accuracy, the exact command, versions). Data come through
``ganbench.data.load_images`` and are scaled with ``ganbench.images.uint8_to_float``,
the same path the extractor uses at evaluation time.

The recipe is not CAS's (``ganbench.metrics.cas.train_classifier``), though both use Adam with
a cosine decay: this one augments (random shifts, optional flips, drawn from the batch-order
generator) and drops each epoch's last partial batch, so the shipped weights keep their
meaning; only the accuracy count is shared.

Examples:
  python scripts/train_lenet.py --dataset mnist --epochs 4
  python scripts/train_lenet.py --dataset fashion-mnist --epochs 8
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ganbench
from ganbench.data import load_images
from ganbench.images import uint8_to_float
from ganbench.metrics.cas import accuracy
from ganbench.metrics.lenet import LeNet, WEIGHTS_DIR
from ganbench.weights import sha256_file

NAMES = {"mnist": "lenet-mnist", "fashion-mnist": "lenet-fashion"}


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (background = -1)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(NAMES), required=True)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--shift", type=int, default=2, help="random translation in pixels (augmentation)")
    p.add_argument("--flip", action="store_true", help="random horizontal flips (augmentation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    x_train, y_train = load_images(args.dataset, "train")
    x_test, y_test = load_images(args.dataset, "test")
    x_train, x_test = uint8_to_float(x_train), uint8_to_float(x_test)

    gen = torch.Generator().manual_seed(args.seed)
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        net = LeNet()
        steps_per_epoch = len(x_train) // args.batch_size
        total = steps_per_epoch * args.epochs
        opt = torch.optim.Adam(net.parameters(), lr=args.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
        t0 = time.time()
        for epoch in range(args.epochs):
            net.train()
            perm = torch.randperm(len(x_train), generator=gen)
            for k in range(steps_per_epoch):
                idx = perm[k * args.batch_size:(k + 1) * args.batch_size]
                x = random_shift(x_train[idx], args.shift, gen)
                if args.flip:
                    flip = torch.rand(len(x), generator=gen) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(3), x)
                loss = F.cross_entropy(net(x), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            acc = accuracy(net.eval(), x_test, y_test)
            print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f}, test accuracy {acc:.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)

    name = NAMES[args.dataset]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    test_acc = accuracy(net.eval(), x_test, y_test)
    meta = {
        "extractor": name,
        "file": path.name,
        "sha256": sha256_file(path),
        "dataset": args.dataset,
        "test_accuracy": round(test_acc, 4),
        "test_images": len(x_test),
        "parameters": sum(p.numel() for p in net.parameters()),
        "command": "python scripts/train_lenet.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "augmentation": {"shift": args.shift, "flip": args.flip},
        "ganbench_version": ganbench.__version__, "torch_version": torch.__version__,
        "platform": platform.platform(),
        "train_seconds": round(time.time() - t0),
    }
    (args.out / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
