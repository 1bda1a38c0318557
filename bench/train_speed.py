"""Training throughput: DCGAN on MNIST through ganbench's harness vs a plain loop.

    python bench/train_speed.py [--steps 100] [--batch-size 64] [--width 64] [--device cpu] [--repeats 3]

Both sides train the same networks (``create_model("dcgan", dataset="mnist")``: 32 px,
Adam 2e-4, the non-saturating loss) on the same MNIST batches. The plain loop is what
one would write by hand: index the in-memory images, D step, G step, nothing else. The
harness adds what a real run has (seeded batch lookup, the train_step's bookkeeping,
loss logging every 10 steps, progress bar off) but writes no files (``out=None``);
its time is the loop's own (``TrainResult.seconds``), as the plain loop's excludes setup.
Runs alternate between the two and the median steps/s is reported, since the CPU may be
shared. On CUDA both sides use the same AMP/channels_last setting as the harness.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ganbench.data import training_data
from ganbench.models.base import create_model
from ganbench.training import TrainOptions, train


def plain_loop(steps: int, batch_size: int, overrides: dict, device: str, amp: bool) -> float:
    torch.manual_seed(0)
    model = create_model("dcgan", dataset="mnist", overrides=overrides).to(device)
    G, D, opt_g, opt_d = model.generator.net, model.discriminator, model.opt_g, model.opt_d
    cuda = device.startswith("cuda") and amp
    if cuda:
        model.to(memory_format=torch.channels_last)
    images = training_data("mnist", resolution=model.config.image_size).get_batch(torch.arange(60000))[0]
    z_dim = model.config.z_dim
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else None
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(images), (batch_size,), generator=gen)
        real = images[idx].to(device, non_blocking=True)
        z = torch.randn(batch_size, z_dim, 1, 1, device=device)
        with autocast() if autocast else torch.enable_grad():
            fake = G(z)
            lr, lf = D(real), D(fake.detach())
            loss_d = (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
                      + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast() if autocast else torch.enable_grad():
            lg = D(fake)
            loss_g = F.binary_cross_entropy_with_logits(lg, torch.ones_like(lg))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return loss_d, loss_g

    for _ in range(3):  # warm-up
        step()
    _sync(device)
    t = time.perf_counter()
    for i in range(steps):
        loss_d, loss_g = step()
        if i % 10 == 9:
            float(loss_d.detach()), float(loss_g.detach())  # the harness logs every 10 steps too
    _sync(device)
    return steps / (time.perf_counter() - t)


def harness(steps: int, batch_size: int, overrides: dict, device: str, amp: bool) -> float:
    options = dict(model="dcgan", dataset="mnist", batch_size=batch_size, device=device, overrides=overrides,
                   amp=amp, progress=False, log_every=10)
    result = train(TrainOptions(steps=steps, **options))
    _sync(device)
    return steps / result.seconds


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=64, help="g_channels = d_channels (the paper's 64)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (training's default is float32)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"g_channels": args.width, "d_channels": args.width}
    amp = args.amp
    if not amp:  # the harness's float32 is strict (TF32 off); the plain loop computes the same
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(args.steps, args.batch_size, overrides, args.device, amp))
        ours.append(harness(args.steps, args.batch_size, overrides, args.device, amp))
    p_med, h_med = statistics.median(plain), statistics.median(ours)
    print(f"DCGAN 32 px, MNIST, batch {args.batch_size}, width {args.width}, {args.device}, "
          f"{torch.get_num_threads()} threads, {args.steps} steps x {args.repeats} runs (median)")
    print(f"  plain loop: {p_med:8.2f} it/s   (runs: {', '.join(f'{v:.2f}' for v in plain)})")
    print(f"  harness:    {h_med:8.2f} it/s   (runs: {', '.join(f'{v:.2f}' for v in ours)})")
    print(f"  harness overhead: {100 * (p_med / h_med - 1):+.1f}% time per step")


if __name__ == "__main__":
    main()
