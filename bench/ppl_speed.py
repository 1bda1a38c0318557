"""PPL throughput of ganbench against torch-fidelity, same generator, settings and weights.

    python bench/ppl_speed.py [--paths 128] [--batch-size 32] [--size 64] [--repeats 3]

Both sides compute torch-fidelity's PPL: z ~ N(0, I) from ``RandomState(2020)``, a lerp
step of ``epsilon`` from t = 0, uint8 images, LPIPS-VGG16 at 64 px, 1st/99th percentile
filtering. The VGG16 backbone is a seeded stand-in (no ImageNet weights offline), placed
in a temporary torch hub cache where torchvision, torch-fidelity and ganbench all find it;
the LPIPS linear weights are the lpips wheel's ``vgg.pth`` (the file torch-fidelity
re-uploads). The generator is a small DCGAN-like network with seeded weights.

"steady" times the path loop only (similarities built beforehand, the torch-fidelity one
injected into ``calculate_ppl``); "end-to-end" includes building the networks. Runs
alternate between the two libraries and the median is reported, since the CPU may be
shared; the CPU time of the process (all threads) is printed too, as it is steadier than
wall time on a busy machine. Goal: steady ratio >= 1.5.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
from torch import nn


class ToyGenerator(nn.Module):
    """z (N, z_dim) -> tanh images (N, 3, size, size); DCGAN-like, seeded."""

    def __init__(self, z_dim: int = 128, size: int = 64, width: int = 32, seed: int = 0):
        super().__init__()
        self.z_dim, self.c0 = z_dim, width * 4
        self.fc = nn.Linear(z_dim, self.c0 * 16)
        layers, c, s = [], self.c0, 4
        while s < size:
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(c, max(c // 2, 16), 3, padding=1), nn.LeakyReLU(0.2)]
            c, s = max(c // 2, 16), s * 2
        layers += [nn.Conv2d(c, 3, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / max(p[0].numel(), 1)) ** 0.5)

    def forward(self, z):
        return self.net(self.fc(z).view(-1, self.c0, 4, 4))


class Uint8Output(nn.Module):
    """torch-fidelity's PPL wants uint8 images from the generator."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, z):
        from ganbench.images import float_to_uint8

        return float_to_uint8(self.module(z))


def _percentile_compat() -> None:
    """torch-fidelity 0.4 calls ``np.percentile(interpolation=...)``, gone in NumPy 2.4."""
    original = np.percentile
    if "interpolation" in getattr(original, "__code__", type("c", (), {"co_varnames": ()})).co_varnames:
        return

    def percentile(a, q, *args, interpolation=None, **kwargs):
        if interpolation is not None:
            kwargs["method"] = interpolation
        return original(a, q, *args, **kwargs)

    np.percentile = percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epsilon", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    home = tempfile.mkdtemp(prefix="ppl-bench-")
    os.environ["TORCH_HOME"] = home
    os.environ["GANBENCH_OFFLINE"] = "1"
    hub = os.path.join(home, "hub", "checkpoints")
    os.makedirs(hub)
    try:
        import torch_fidelity
        import torch_fidelity.metric_ppl as tf_ppl
        from torch_fidelity.utils import create_sample_similarity

        from ganbench.generative import LatentSpec, ModuleGenerator
        from ganbench.metrics.lpips import lin_weights_path
        from ganbench.metrics.ppl import build_similarity, compute_ppl, path_distances, summarize
        from ganbench.testing import make_seeded_vgg16_weights
        from ganbench.weights import CATALOG

        make_seeded_vgg16_weights(os.path.join(hub, CATALOG["vgg16"].filename), seed=0)
        shutil.copy(lin_weights_path("vgg"), os.path.join(hub, "weights-vgg16-lpips.pth"))
        _percentile_compat()

        toy = ToyGenerator(size=args.size).eval()
        model = ModuleGenerator(toy, LatentSpec(toy.z_dim, image_size=args.size)).eval()
        wrapped = torch_fidelity.GenerativeModelModuleWrapper(Uint8Output(toy), toy.z_dim, "normal", 0)
        tf_kwargs = dict(input1=wrapped, input1_model_num_samples=args.paths, ppl=True, ppl_epsilon=args.epsilon,
                         batch_size=args.batch_size, cuda=False, verbose=False, rng_seed=2020)
        rng = np.random.RandomState(2020)  # torch-fidelity's latents
        z0 = torch.from_numpy(rng.randn(args.paths, toy.z_dim)).float()
        z1 = torch.from_numpy(rng.randn(args.paths, toy.z_dim)).float()
        t = torch.zeros(args.paths)

        tf_sim = create_sample_similarity("lpips-vgg16", cuda=False, sample_similarity_resize=64,
                                          sample_similarity_dtype="uint8", verbose=False)
        gb_sim = build_similarity("lpips-vgg16-tf")
        original_create = tf_ppl.create_sample_similarity

        def run_tf() -> dict:
            tf_ppl.create_sample_similarity = lambda *a, **k: tf_sim
            try:
                return torch_fidelity.calculate_metrics(**tf_kwargs)
            finally:
                tf_ppl.create_sample_similarity = original_create

        def run_gb() -> dict:
            d = path_distances(model, z0, z1, t, similarity=gb_sim, epsilon=args.epsilon, z_interp="lerp",
                               batch_size=args.batch_size)
            return {**summarize(d), "zero_fraction": float((d == 0).mean())}

        times: dict[str, list[float]] = {"tf": [], "gb": [], "tf_e2e": [], "gb_e2e": []}
        cpu: dict[str, list[float]] = {"tf": [], "gb": []}
        results = {}
        for _ in range(args.repeats):
            for key, fn in (("tf", run_tf), ("gb", run_gb)):
                start, start_cpu = time.perf_counter(), time.process_time()
                results[key] = fn()
                times[key].append(time.perf_counter() - start)
                cpu[key].append(time.process_time() - start_cpu)
        # End to end, once each: building the networks included.
        start = time.perf_counter()
        torch_fidelity.calculate_metrics(**tf_kwargs)
        times["tf_e2e"].append(time.perf_counter() - start)
        start = time.perf_counter()
        compute_ppl(model, generator=torch.Generator().manual_seed(0), num_paths=args.paths,
                    epsilon=args.epsilon, batch_size=args.batch_size)
        times["gb_e2e"].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    tf_mean, gb = results["tf"]["perceptual_path_length_mean"], results["gb"]
    print(f"{args.paths} paths, batch {args.batch_size}, {args.size}px generator, epsilon {args.epsilon:g}, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats (median)")
    print(f"PPL           torch-fidelity {tf_mean:.6g}   ganbench {gb['ppl']:.6g}   "
          f"(rel. diff {abs(gb['ppl'] - tf_mean) / abs(tf_mean):.1e}; {gb['zero_fraction']:.0%} zero distances)")
    tf_s, gb_s = statistics.median(times["tf"]), statistics.median(times["gb"])
    print(f"steady        torch-fidelity {args.paths / tf_s:8.2f} paths/s   ganbench {args.paths / gb_s:8.2f} paths/s"
          f"   ratio {tf_s / gb_s:.2f}x")
    tf_c, gb_c = statistics.median(cpu["tf"]), statistics.median(cpu["gb"])
    print(f"steady (CPU)  torch-fidelity {args.paths / tf_c:8.2f} paths/cpu-s  ganbench {args.paths / gb_c:8.2f} "
          f"paths/cpu-s  ratio {tf_c / gb_c:.2f}x")
    tf_e, gb_e = times["tf_e2e"][0], times["gb_e2e"][0]
    print(f"end-to-end    torch-fidelity {args.paths / tf_e:8.2f} paths/s   ganbench {args.paths / gb_e:8.2f} paths/s"
          f"   ratio {tf_e / gb_e:.2f}x")


if __name__ == "__main__":
    main()
