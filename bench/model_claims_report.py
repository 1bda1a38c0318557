"""Short MNIST runs of models with a paper-specific claim, printing the numbers each paper is about.

    GANBENCH_DATA_DIR=../shared/data python bench/model_claims_report.py [--scale 1.0] [--only infogan,sgan]
                                                                         [--out runs/model-claims] [--threads 1]

Per model (small networks: each model's ``tiny`` test config, or ``SMALL`` below; a few
hundred steps, batch 64, seed 0; ``--scale`` multiplies every run's steps):

* InfoGAN: class purity of the categorical code c1 under the ``lenet-mnist`` classifier
  (best one-to-one code -> class mapping; chance 0.1, the paper: ~0.95 after full training)
  and Q's accuracy at recovering c1 from G(z, c).
* SGAN: test accuracy of D/C (N + 1 outputs, 100 labels) vs the same classifier trained on
  the 100 labelled images alone for as many updates.
* AAE: per-pixel reconstruction MSE (on [-1, 1]) before and after, distance of the codes
  to the N(0, I) prior, and the lenet-mnist FID of samples decoded from the prior (a grid
  is written to ``--out``).
* BiGAN, ALI, BiCGAN: reconstruction MSE of G(E(x)) (vs a shuffled x, the error of an
  encoder that ignores its input), linear-probe accuracy of E's features (logistic
  regression, 3000 train / 1000 test images) against a randomly initialised E; BiCGAN
  also the accuracy of its encoder's class output.
* BEGAN: M_global = L(x) + |gamma L(x) - L(G(z))| over training (mean of the first and
  last tenth of the logged steps) and the final k_t.
* MSGAN: same-class diversity of samples (mean pairwise distance of lenet-mnist features
  between samples of one class with different z) with the mode-seeking term (lambda 1) and
  without it (lambda 0), and the d_I / d_z ratio of the last batch. (LPIPS needs VGG
  weights that are not shipped; the lenet features stand in for them.)

Numbers from runs this short show the mechanisms working, not the papers' results.
"""
from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import torch

from ganbench.data import load_images
from ganbench.images import float_to_uint8, uint8_to_float
from ganbench.models.base import create_model, model_info
from ganbench.training import train

STEPS = {"infogan": 200, "sgan": 200, "aae": 400, "bigan": 300, "ali": 200, "bicgan": 300, "began": 200,
         "msgan": 150}
# small networks: each model's `tiny` test config, or these where a model declares none
SMALL = {"bicgan": {"hidden": 256},
         "ali": {"conv_channels": 16, "d_z_hidden": 128, "d_joint_hidden": 256}}
N_TRAIN, N_TEST = 3000, 1000


def small(name: str) -> dict:
    return SMALL.get(name) or model_info(name).tiny


def run(name: str, steps: int, overrides: dict | None = None, **kwargs):
    overrides = small(name) if overrides is None else overrides
    with torch.random.fork_rng():
        return train(name, "mnist", steps=steps, batch_size=64, seed=0, overrides=overrides, progress=False,
                     **kwargs)


def mnist(split: str, n: int, size: int = 28):
    return load_images("mnist", split, resolution=size, channels=1, limit=n)


def lenet_fid(extractor, images_uint8: torch.Tensor, real_uint8: torch.Tensor) -> float:
    from ganbench.metrics.fid import fid_from_features

    return fid_from_features(extractor(images_uint8)["pool"], extractor(real_uint8)["pool"])


def report_infogan(steps: int, lenet, out: Path) -> dict:
    from ganbench.models.infogan import categorical_code_purity

    result = run("infogan", steps)
    purity = categorical_code_purity(result.generator, lenet, per_code=100)
    return {"code_purity": purity["purity"], "q_cat_acc": result.losses.get("q_cat_acc"),
            "code_to_class": purity["mapping"]}


def report_sgan(steps: int, lenet, out: Path) -> dict:
    from ganbench.models.sgan import semi_supervised_report

    result = run("sgan", steps)
    x, y = mnist("test", N_TEST, result.model.config.image_size)
    return semi_supervised_report(result.model, uint8_to_float(x), y)


def report_aae(steps: int, lenet, out: Path) -> dict:
    from ganbench.models.aae import aae_report
    from ganbench.training import make_grid_uint8, save_png

    x, _ = mnist("test", N_TEST)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the run's initial weights (train() seeds the same way)
        untrained = create_model("aae", dataset="mnist", overrides=small("aae"))
    before = aae_report(untrained, x)
    result = run("aae", steps)
    after = aae_report(result.model, x)
    g = result.model.generator.eval()
    with torch.no_grad():
        z = torch.randn(N_TEST, g.latent.z_dim, generator=torch.Generator().manual_seed(1))
        samples = float_to_uint8(g(z), g.latent.output_range)
    save_png(make_grid_uint8(samples[:64]), out / "aae_prior_samples.png")
    return {"recon_mse_before": before["recon_mse"], "recon_mse_after": after["recon_mse"],
            "prior_distance_before": before["prior_distance"], "prior_distance_after": after["prior_distance"],
            "prior_samples_lenet_fid": lenet_fid(lenet, samples, x),
            "samples": str(out / "aae_prior_samples.png")}


def report_encoder(name: str, steps: int, lenet, out: Path) -> dict:
    from ganbench.models.bigan import probe, reconstruction_error

    result = run(name, steps)
    size = result.model.config.image_size
    train_xy, test_xy = mnist("train", N_TRAIN, size), mnist("test", N_TEST, size)
    with torch.random.fork_rng():
        torch.manual_seed(12345)
        random_e = create_model(name, dataset="mnist", overrides=small(name))
    rec = reconstruction_error(result.model, test_xy[0])
    row = {"recon_mse": rec["mse"], "recon_mse_shuffled": rec["mse_shuffled"],
           "probe_acc": probe(result.model, train_xy, test_xy),
           "probe_acc_random_e": probe(random_e, train_xy, test_xy)}
    if name == "bicgan":
        from ganbench.models.bicgan import conditional_accuracy, encoder_class_accuracy

        row["encoder_class_acc"] = encoder_class_accuracy(result.model, *test_xy)
        row["conditional_acc_lenet"] = conditional_accuracy(result.generator, lenet, n=1000)
    return row


def report_began(steps: int, lenet, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = run("began", steps, out=str(Path(tmp) / "run"), log_every=5, sample_every=0, checkpoint_every=0)
        logs = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    m = [row["m_global"] for row in logs]
    tenth = max(1, len(m) // 10)
    return {"m_global_first_tenth": sum(m[:tenth]) / tenth, "m_global_last_tenth": sum(m[-tenth:]) / tenth,
            "m_global_min": min(m), "k_final": logs[-1]["k"], "logged_steps": len(m)}


def report_msgan(steps: int, lenet, out: Path) -> dict:
    from ganbench.models.msgan import generated_class_diversity

    row = {}
    for weight in (1.0, 0.0):
        result = run("msgan", steps, {**small("msgan"), "ms_weight": weight})
        tag = f"lambda{weight:g}"
        row[f"diversity_{tag}"] = generated_class_diversity(result.generator, lenet, per_class=50)
        row[f"dI_over_dz_{tag}"] = 1.0 / result.losses["loss_ms"]  # eps aside
    return row


REPORTS = {"infogan": report_infogan, "sgan": report_sgan, "aae": report_aae,
           "bigan": functools.partial(report_encoder, "bigan"),
           "ali": functools.partial(report_encoder, "ali"),
           "bicgan": functools.partial(report_encoder, "bicgan"),
           "began": report_began, "msgan": report_msgan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run's steps")
    parser.add_argument("--only", default=",".join(REPORTS), help="comma-separated models")
    parser.add_argument("--out", default="runs/model-claims", help="folder for sample grids")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from ganbench.metrics.lenet import lenet_mnist

    lenet = lenet_mnist()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(REPORTS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {', '.join(REPORTS)}")
    for name in names:
        steps = max(1, round(STEPS[name] * args.scale))
        t = time.perf_counter()
        row = REPORTS[name](steps, lenet, out)
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        print(f"{name} ({steps} steps, {time.perf_counter() - t:.0f} s): {shown}", flush=True)


if __name__ == "__main__":
    main()
