"""What a confidence interval costs: FID bootstrap refits against the feature pass.

The interval of an evaluation (:mod:`ganbench.metrics.bootstrap`) recomputes the metric
on B half-samples of the features already in memory. For FID each refit is two
covariances of N/2 rows and a D x D symmetric eigenproblem. This script times

* the feature pass of the Inception extractor (``inception-v3-compat``, seeded weights:
  the cost does not depend on the weights) over ``--pass-images`` images, scaled
  linearly to N (images per second are constant after the first batch),
* ``--refits`` FID replicates at N generated and N reference features of dimension D
  (random features: the cost does not depend on their values),

and prints the refits' time as a share of the pass. Goal from the issue: 1,000 refits in
under the feature pass's time on the CPU, at N = 10,000 and D = 2,048.

    python bench/bootstrap_speed.py                        # N 10,000, D 2,048, 20 refits timed
    python bench/bootstrap_speed.py --device cuda --refits 100
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def refit_seconds(n: int, dim: int, refits: int, device: str) -> float:
    """Seconds per FID replicate at n x dim features per side."""
    from ganbench.metrics import fid
    from ganbench.metrics.bootstrap import half_sample_indices

    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(dim, dim, generator=g) / dim ** 0.5
    x = (torch.randn(n, dim, generator=g) @ mixing).to(device)
    y = torch.randn(n, dim, generator=g).to(device)
    fx, fy = half_sample_indices(n, refits, g), half_sample_indices(n, refits, g)
    fid.replicates({"pool": x}, {"pool": y}, fx[:1], fy[:1])  # warm-up (allocations, kernels)
    _sync(device)
    start = time.perf_counter()
    fid.replicates({"pool": x}, {"pool": y}, fx, fy)
    _sync(device)
    return (time.perf_counter() - start) / refits


def pass_seconds_per_image(images: int, batch_size: int, device: str) -> float:
    """Seconds per image of the Inception feature pass (after one warm-up batch)."""
    from ganbench.metrics.inception import build
    from ganbench.testing import make_seeded_inception_weights

    with tempfile.TemporaryDirectory() as tmp:
        weights = make_seeded_inception_weights(Path(tmp) / "inception.pth")
        model = build(weights=weights, device=device)
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (batch_size, 3, 32, 32), generator=g, dtype=torch.uint8).to(device)
    with torch.inference_mode():
        model(batch)
        _sync(device)
        start = time.perf_counter()
        for _ in range(max(images // batch_size, 1)):
            model(batch)
        _sync(device)
    return (time.perf_counter() - start) / (max(images // batch_size, 1) * batch_size)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="samples per side")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--refits", type=int, default=20, help="refits timed (the cost is per refit)")
    p.add_argument("--pass-images", type=int, default=256, help="images timed in the feature pass")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    per_refit = refit_seconds(args.n, args.dim, args.refits, args.device)
    per_image = pass_seconds_per_image(args.pass_images, args.batch_size, args.device)
    feature_pass = per_image * args.n  # the generated side; a cached reference costs nothing more
    print(f"{args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  FID refit at N {args.n:,} x D {args.dim}: {per_refit:.3f} s "
          f"(mean of {args.refits}); 1,000 refits: {1000 * per_refit:.0f} s")
    print(f"  Inception feature pass: {per_image * 1000:.1f} ms/image -> {feature_pass:.0f} s for {args.n:,} images")
    print(f"  1,000 refits / feature pass: {1000 * per_refit / feature_pass:.2f}; the default "
          f"(100 refits): {100 * per_refit / feature_pass:.1%} of the pass")


if __name__ == "__main__":
    main()
