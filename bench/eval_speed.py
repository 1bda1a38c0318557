"""Evaluation throughput: ganbench vs torch-fidelity, FID + IS + KID + precision/recall.

    python bench/eval_speed.py [--num 2000] [--device cpu|cuda] [--batch-size 64] [--repeats 3]
                               [--weights weights-inception-2015-12-05-6726825d.pth] [--json OUT.json]

Both sides get the same uint8 images (MNIST test digits as "real", other MNIST digits
shifted and noised as "fake"; scikit-learn's digits when MNIST is absent), the same
Inception-v3-compat weights (the official file when given or resolvable, else a seeded
stand-in written to a temporary folder) and the same metric settings (IS 10 splits, KID
100 subsets of 1000, precision/recall k=3 on the 2048-d pool features), with caches off.
Each side computes all four metrics on both image sets; runs alternate between the two
and the median wall time is reported, since the machine may be shared. It prints
images/s of each, the ratio ganbench / torch-fidelity, and the largest relative
difference between their numbers (which must stay below 1e-3). On CUDA it also prints the
fraction of the device's float32 peak that ganbench's Inception forward reached
(INCEPTION_GFLOPS per 299 x 299 image; the peak from PEAK_FP32_TFLOPS by device name, or
``--peak-tflops``). ``--json`` writes the figures to a file.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone

import torch

from ganbench.crosscheck import Uint8Images  # torch-fidelity's input

INCEPTION_GFLOPS = 11.5  # one Inception-v3 forward at 299 x 299 (2 x 5.7 G multiply-adds)
# dense float32 (non-tensor-core) peaks from the vendors' data sheets, by a name fragment
PEAK_FP32_TFLOPS = {"H200": 67.0, "H100 SXM": 67.0, "H100 PCIe": 51.0, "H100": 51.0, "A100": 19.5, "L40S": 91.6,
                    "A10G": 31.2, "V100": 15.7, "T4": 8.1}


def peak_tflops(device: str, given: float | None) -> float | None:
    """The device's float32 peak: ``given``, else by its CUDA name; None on the CPU or unknown."""
    if given is not None or not device.startswith("cuda"):
        return given
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for fragment, peak in PEAK_FP32_TFLOPS.items() if fragment in name), None)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def bench_images(num: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(fake, real) uint8 (N, 3, H, W) and a description."""
    from ganbench.data import load_images
    from ganbench.errors import GanbenchError

    try:
        images, _ = load_images("mnist", "test")
        source = "mnist:test"
    except GanbenchError:
        images, _ = load_images("digits", "train", resolution=28)
        source = "digits (MNIST not found; set GANBENCH_DATA_DIR)"
    half = len(images) // 2
    gen = torch.Generator().manual_seed(0)
    real = images[torch.arange(num) % half].expand(-1, 3, -1, -1).float()
    if num > half:  # not enough distinct images: the repeats get their own light noise
        real = real + torch.randn(real.shape, generator=gen) * 8 * (torch.arange(num) >= half).view(-1, 1, 1, 1)
        source += f" (tiled to {num} per side)"
    other = images[half + torch.arange(num) % half].expand(-1, 3, -1, -1).float()
    other = torch.roll(other, shifts=2, dims=3) + torch.randn(other.shape, generator=gen) * 30
    as_uint8 = lambda x: x.clamp(0, 255).round().to(torch.uint8)  # noqa: E731
    return as_uint8(other), as_uint8(real), f"{source}, {num} + {num} images"


def resolve_inception(path: str | None, tmp: str) -> tuple[str, bool]:
    from ganbench.errors import GanbenchError
    from ganbench.testing import make_seeded_inception_weights
    from ganbench.weights import CATALOG, resolve_weights

    try:
        resolved = resolve_weights(CATALOG["inception-v3-fid"], path)
        return str(resolved.path), resolved.standard
    except GanbenchError as exc:
        if path:
            raise
        print(f"official Inception weights unavailable ({str(exc).splitlines()[0][:90]}...);"
              f" using seeded stand-in weights")
        return make_seeded_inception_weights(os.path.join(tmp, "inception-seeded.pth")), False


def run_torch_fidelity(fake, real, weights, device, batch_size, subset_size) -> tuple[float, dict]:
    import torch_fidelity

    t0 = time.perf_counter()
    out = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), cuda=device.startswith("cuda"),
        batch_size=batch_size, isc=True, fid=True, kid=True, prc=True, isc_splits=10, kid_subsets=100,
        kid_subset_size=subset_size, feature_extractor="inception-v3-compat", feature_layer_prc="2048",
        feature_extractor_weights_path=weights, cache=False, verbose=False, rng_seed=2020)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, {
        "fid": out["frechet_inception_distance"], "isc": out["inception_score_mean"],
        "kid": out["kernel_inception_distance_mean"], "precision": out["precision"], "recall": out["recall"]}


def run_ganbench(fake, real, weights, device, batch_size, subset_size) -> tuple[float, dict]:
    from ganbench.evaluation import evaluate

    t0 = time.perf_counter()
    result = evaluate(fake, real, ["fid", "isc", "kid", "pr"], weights=weights, batch_size=batch_size,
                      device=device, progress=False, use_cache=False, options={
                          "isc": {"splits": 10, "rng": "torch-fidelity", "seed": 2020},
                          "kid": {"subsets": 100, "subset_size": subset_size, "rng": "torch-fidelity",
                                  "seed": 2020}})
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    values = result.values
    return time.perf_counter() - t0, {k: values[k] for k in ("fid", "isc", "kid", "precision", "recall")}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=2000, help="images per side")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--weights", default=None, help="Inception weights file (default: resolve, else seeded)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's float32 peak (default: by name)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    fake, real, what = bench_images(args.num)
    subset_size = min(1000, len(fake))
    with tempfile.TemporaryDirectory() as tmp:
        weights, official = resolve_inception(args.weights, tmp)
        print(f"inputs: {what}; device {args.device}, batch {args.batch_size}, threads "
              f"{torch.get_num_threads()}; weights {'official' if official else 'seeded stand-in'}")
        # warm-up (weights loading, lazy imports, cuDNN autotuning) on a few images
        run_ganbench(fake[:64], real[:64], weights, args.device, args.batch_size, 32)
        run_torch_fidelity(fake[:64], real[:64], weights, args.device, args.batch_size, 32)
        times = {"ganbench": [], "torch-fidelity": []}
        values = {}
        for _ in range(args.repeats):
            for name, fn in (("ganbench", run_ganbench), ("torch-fidelity", run_torch_fidelity)):
                seconds, values[name] = fn(fake, real, weights, args.device, args.batch_size, subset_size)
                times[name].append(seconds)
    images = 2 * len(fake)
    print(f"{'':16s} {'median s':>9s} {'images/s':>9s}   fid / isc / kid / precision / recall")
    for name in times:
        t = statistics.median(times[name])
        v = values[name]
        print(f"{name:16s} {t:9.2f} {images / t:9.1f}   {v['fid']:.6g} / {v['isc']:.6g} / {v['kid']:.6g} / "
              f"{v['precision']:.6g} / {v['recall']:.6g}")
    ratio = statistics.median(times["torch-fidelity"]) / statistics.median(times["ganbench"])
    diffs = {k: abs(values["ganbench"][k] - values["torch-fidelity"][k]) / max(abs(values["torch-fidelity"][k]), 1e-12)
             for k in values["ganbench"]}
    worst = max(diffs, key=diffs.get)
    print(f"speed ratio ganbench / torch-fidelity: {ratio:.2f}x (same metrics, same images, caches off)")
    print(f"largest relative difference: {diffs[worst]:.2e} ({worst})")
    rates = {name: images / statistics.median(times[name]) for name in times}
    peak = peak_tflops(args.device, args.peak_tflops)
    share = None if peak is None else rates["ganbench"] * INCEPTION_GFLOPS / (peak * 1e3)
    if share is not None:
        print(f"ganbench reached {100 * share:.1f}% of the float32 peak ({peak:g} TFLOP/s, "
              f"{INCEPTION_GFLOPS} GFLOP per image)")
    if args.json:
        write_json(args.json, {"bench": "eval_speed", "inputs": what, "device": args.device,
                               "device_name": device_name(args.device), "batch_size": args.batch_size,
                               "threads": torch.get_num_threads(), "weights_official": official,
                               "images_per_s": rates, "ratio": ratio, "peak_tflops": peak, "peak_share": share,
                               "values": values, "largest_relative_difference": diffs[worst]})
    if diffs[worst] > 1e-3:
        raise SystemExit(f"disagreement with torch-fidelity above 1e-3 on {worst}")


def write_json(path: str, figures: dict) -> None:
    figures = {**figures, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "torch": torch.__version__}
    with open(path, "w") as f:
        json.dump(figures, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
