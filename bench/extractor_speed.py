"""Feature-extractor throughput: ganbench's DINOv2 / CLIP / SwAV / sFID extractors vs their references.

    python bench/extractor_speed.py [--num 8] [--batch-size 4] [--size 64] [--repeats 1]
                                    [--device cpu|cuda] [--threads 1] [--extractors dinov2-vit-s14,clip-vit-b32]
                                    [--json out.json] [--out bench/results/extractor_speed.md]

Both sides get the same uint8 images (seeded smooth colour images with noise, --size
pixels square, as the extractor tests use) and the same seeded weights in the official
file layout (ganbench.testing_weights / ganbench.testing; official files are not here),
and each returns the feature the metrics use. The references, as tests/test_*.py compare:

* ``dinov2-vit-*``: dgm-eval's transform (torchvision Resize((224, 224), bicubic) on each
  PIL image, ToTensor, Normalize) and timm's ``vit_*_patch14_dinov2`` at 224 px, the
  official keys converted by timm's ``checkpoint_filter_fn``; its position embedding is
  DINOv2's own resampling (scale factor (16 + 0.1) / 37, what the hub model does on every
  forward; timm's by-size resampling is another embedding), the CLS token after the norm.
* ``clip-vit-*``: torch-fidelity's CLIP image tower (``FeatureExtractorCLIP``, which reads
  OpenAI's TorchScript file with ``torch.jit.load``) on OpenAI's/clean-fid's transform
  (b32, l14) or CMMD's square crop and PIL bicubic (l14-336). torch-fidelity's own
  forward resizes with TF1 bilinear instead, another definition of CLIP-FID's input.
* ``swav-resnet50``: torchvision's ResNet-50 loaded as ``torch.hub.load("facebookresearch/swav",
  "resnet50")`` does (prefix stripped, ``strict=False``), on StudioGAN's per-channel float
  PIL bilinear resize.
* ``inception-spatial`` (sFID): torch-fidelity's ``FeatureExtractorInceptionV3`` with a hook
  on ``Mixed_6d.branch1x1``, first 7 channels in NHWC order. It runs the whole network;
  ganbench asked for ``spatial`` alone stops after Mixed_6d, so ``inception-spatial+pool``
  (what an evaluation with FID and sFID asks for) is timed too.

Each side is warmed up on two images; then runs alternate between the two sides and the
median wall time is reported, since the machine may be shared. The defaults take a few
minutes on two CPU cores, most of it ViT-L/14 at 336 px (about 0.1 image/s on one core);
``dinov2-vit-l14`` is measured only when asked for. It prints images/s of each, the ratio ganbench / reference, and the
largest difference between their features relative to the reference's largest value.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

Extract = Callable[[torch.Tensor], torch.Tensor]  # uint8 (B, 3, H, W) -> float (B, D) on any device


@dataclass(frozen=True)
class Case:
    """One row: a ganbench extractor, the features asked of it, and its reference."""

    name: str  # row label
    extractor: str  # ganbench registry name
    features: tuple[str, ...]  # what ganbench is asked for
    compared: str  # the feature compared with the reference's
    family: str  # "dinov2", "clip", "swav" or "inception": which weights and reference


CASES = {c.name: c for c in [
    Case("dinov2-vit-s14", "dinov2-vit-s14", ("pool",), "pool", "dinov2"),
    Case("dinov2-vit-b14", "dinov2-vit-b14", ("pool",), "pool", "dinov2"),
    Case("dinov2-vit-l14", "dinov2-vit-l14", ("pool",), "pool", "dinov2"),
    Case("clip-vit-b32", "clip-vit-b32", ("pool",), "pool", "clip"),
    Case("clip-vit-l14", "clip-vit-l14", ("pool",), "pool", "clip"),
    Case("clip-vit-l14-336", "clip-vit-l14-336", ("pool",), "pool", "clip"),
    Case("swav-resnet50", "swav-resnet50", ("pool",), "pool", "swav"),
    Case("inception-spatial", "inception-v3-compat", ("spatial",), "spatial", "inception"),
    Case("inception-spatial+pool", "inception-v3-compat", ("spatial", "pool"), "spatial", "inception"),
]}
DEFAULT_CASES = ("dinov2-vit-s14", "dinov2-vit-b14", "clip-vit-b32", "clip-vit-l14", "clip-vit-l14-336",
                 "swav-resnet50", "inception-spatial", "inception-spatial+pool")
TIMM_DINOV2 = {"s14": "vit_small_patch14_dinov2", "b14": "vit_base_patch14_dinov2",
               "l14": "vit_large_patch14_dinov2"}
FIDELITY_CLIP = {"clip-vit-b32": "clip-vit-b-32", "clip-vit-l14": "clip-vit-l-14",
                 "clip-vit-l14-336": "clip-vit-l-14-336px"}


def bench_images(num: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (num, 3, size, size): smooth random colours plus noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num, 3, 4, 4, generator=g) * 255
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (smooth + torch.randn(num, 3, size, size, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


def pil_images(images: torch.Tensor) -> list:
    from PIL import Image

    return [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images.cpu()]


# -- seeded weights in the official layouts ----------------------------------------------------
def write_weights(case: Case, folder: Path) -> str:
    """The seeded stand-in for ``case``'s official file, written under ``folder``."""
    from ganbench import testing, testing_weights

    if case.family == "dinov2":
        from ganbench.metrics.dinov2 import ARCHS, WEIGHTS

        size = case.extractor.rsplit("-", 1)[1]
        return testing_weights.make_seeded_dinov2_weights(folder / WEIGHTS[size].filename, ARCHS[size])
    if case.family == "clip":
        from ganbench.metrics.clip import ARCHS

        arch = ARCHS[case.extractor]
        return testing_weights.make_seeded_clip_weights(folder / arch.filename, arch)
    if case.family == "swav":
        return testing_weights.make_seeded_swav_weights(folder / "swav_800ep_pretrain.pth.tar")
    return testing.make_seeded_inception_weights(folder / "inception-seeded.pth")


# -- the references ----------------------------------------------------------------------------
def dinov2_reference(case: Case, weights: str, device: str) -> Extract:
    import timm
    import torchvision.transforms as TF
    from timm.models.vision_transformer import checkpoint_filter_fn

    from ganbench.metrics.dinov2 import IMAGENET_MEAN, IMAGENET_STD, resample_pos_embed

    size = case.extractor.rsplit("-", 1)[1]
    model = timm.create_model(TIMM_DINOV2[size], pretrained=False, img_size=224, num_classes=0)
    official = torch.load(weights, map_location="cpu", weights_only=True)
    state = checkpoint_filter_fn(dict(official), model)
    state["pos_embed"] = resample_pos_embed(official["pos_embed"], 224 // 14)  # DINOv2's, see the docstring
    model.load_state_dict(state)
    model = model.eval().to(device)
    transform = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor(),
                            TF.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return lambda images: model(torch.stack([transform(im) for im in pil_images(images)]).to(device))


def cmmd_transform(size: int, mean, std):
    """CMMD's io_util._center_crop_and_resize then /255 and CLIP's normalisation, on a PIL image."""
    import torchvision.transforms as TF
    from PIL import Image

    def crop_resize(im):
        w, h = im.size
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        return im.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)

    return TF.Compose([crop_resize, TF.ToTensor(), TF.Normalize(mean, std)])


def clip_reference(case: Case, weights: str, device: str) -> Extract:
    import torchvision.transforms as TF
    from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

    from ganbench.metrics.clip import ARCHS, CLIP_MEAN, CLIP_STD

    arch = ARCHS[case.extractor]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI's files are TorchScript
        visual = FeatureExtractorCLIP(FIDELITY_CLIP[case.extractor], ["clip"],
                                      feature_extractor_weights_path=weights).model.visual.eval().to(device)
    if arch.crop == "cmmd":
        transform = cmmd_transform(arch.resolution, CLIP_MEAN, CLIP_STD)
    else:
        transform = TF.Compose([TF.Resize(arch.resolution, interpolation=TF.InterpolationMode.BICUBIC),
                                TF.CenterCrop(arch.resolution), TF.ToTensor(), TF.Normalize(CLIP_MEAN, CLIP_STD)])
    return lambda images: visual(torch.stack([transform(im) for im in pil_images(images)]).to(device))


def studiogan_swav_input(images: torch.Tensor) -> torch.Tensor:
    """StudioGAN's "friendly" SwAV input: each channel a float PIL image, bilinear to 224, ToTensor,
    then (x / 255 - mean) / std."""
    import torchvision
    from PIL import Image

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    resized = []
    for image in images.cpu().permute(0, 2, 3, 1).numpy():
        channels = [np.asarray(Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
                               .resize((224, 224), resample=Image.BILINEAR)) for c in range(3)]
        resized.append(torchvision.transforms.ToTensor()(np.stack(channels, axis=2)))
    return (torch.stack(resized) / 255.0 - mean) / std


def swav_reference(case: Case, weights: str, device: str) -> Extract:
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k.replace("module.", ""): v for k, v in state.items()}, strict=False)
    model.fc = torch.nn.Identity()
    model = model.eval().to(device)
    return lambda images: model(studiogan_swav_input(images).to(device))


def inception_reference(case: Case, weights: str, device: str) -> Extract:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)
    net = net.eval().to(device)
    taken = []
    net.Mixed_6d.branch1x1.register_forward_hook(lambda module, inputs, output: taken.append(output))

    def extract(images: torch.Tensor) -> torch.Tensor:
        taken.clear()
        net(images.to(device))
        return taken[0].permute(0, 2, 3, 1)[..., :7].reshape(len(images), -1)  # the ADM evaluator's slice

    return extract


REFERENCES = {"dinov2": dinov2_reference, "clip": clip_reference, "swav": swav_reference,
              "inception": inception_reference}


def ganbench_side(case: Case, weights: str, device: str) -> Extract:
    from ganbench.registry import feature_extractors

    model = feature_extractors.get(case.extractor)(weights=weights, device=device)
    return lambda images: model(images, case.features)[case.compared]


# -- timing ------------------------------------------------------------------------------------
def timed(extract: Extract, images: torch.Tensor, batch_size: int, device: str) -> tuple[float, torch.Tensor]:
    """Wall seconds to extract features of all ``images`` in batches, and the features (CPU float64)."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        outs = [extract(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return seconds, torch.cat([o.double().cpu() for o in outs])


def measure(case: Case, weights: str, images: torch.Tensor, args) -> dict:
    """Build both sides, warm each up on two images, then alternate ``args.repeats`` timed runs."""
    sides = {"ganbench": ganbench_side(case, weights, args.device),
             "reference": REFERENCES[case.family](case, weights, args.device)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    features: dict[str, torch.Tensor] = {}
    for extract in sides.values():  # warm-up: lazy initialisation, weight packing, autotuning
        timed(extract, images[:2], args.batch_size, args.device)
    for _ in range(args.repeats):
        for name, extract in sides.items():
            seconds, features[name] = timed(extract, images, args.batch_size, args.device)
            times[name].append(seconds)
    ours, ref = features["ganbench"], features["reference"]
    rate = {name: len(images) / statistics.median(t) for name, t in times.items()}
    return {"extractor": case.name, "ganbench_img_s": rate["ganbench"], "reference_img_s": rate["reference"],
            "ratio": rate["ganbench"] / rate["reference"], "feature_dim": ours.shape[1],
            "max_rel_diff": ((ours - ref).abs().max() / ref.abs().max()).item(),
            "ganbench_s": times["ganbench"], "reference_s": times["reference"]}


# -- report ------------------------------------------------------------------------------------
def table(rows: list[dict]) -> list[str]:
    lines = ["| extractor | ganbench img/s | reference img/s | ratio | max rel. feature diff |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['extractor']} | {r['ganbench_img_s']:.2f} | {r['reference_img_s']:.2f} | {r['ratio']:.2f}x | "
              f"{r['max_rel_diff']:.1e} |" for r in rows]
    return lines


def report(rows: list[dict], setting: dict) -> str:
    """Markdown: the command, date, machine and setting, then the table."""
    from learning_margins import cpu_description  # a sibling script in bench/

    return "\n".join([
        f"<!-- {setting['command']} -->",
        f"# Feature-extractor throughput, ganbench vs reference ({setting['date']})", "",
        f"CPU: {cpu_description()}; torch {torch.__version__}; Python {platform.python_version()}; "
        f"device {setting['device']}, {setting['threads']} thread(s).",
        f"Inputs: {setting['num']} seeded uint8 images of {setting['size']}x{setting['size']}, batch "
        f"{setting['batch_size']}, median of {setting['repeats']} alternating runs; seeded weights in the official "
        "layouts (see bench/extractor_speed.py for each reference).",
        "Ratio: ganbench img/s / reference img/s (above 1: ganbench is faster). Feature difference: "
        "max |ganbench - reference| / max |reference| over all images.", "", *table(rows), ""])


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=8, help="images per extractor")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=int, default=64, help="input side in pixels (each side resizes it)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--extractors", default=",".join(DEFAULT_CASES),
                   help=f"comma-separated, from: {', '.join(CASES)}")
    p.add_argument("--json", type=Path, default=None, help="also write the rows and setting as JSON here")
    p.add_argument("--out", type=Path, default=None, help="also append the markdown report to this file")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.extractors.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown extractor(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    args.cases = [CASES[n] for n in names]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images = bench_images(args.num, args.size)
    setting = {"command": "python " + " ".join(["bench/extractor_speed.py", *(sys.argv[1:] if argv is None else argv)]),
               "date": datetime.date.today().isoformat(), "device": args.device, "threads": torch.get_num_threads(),
               "num": args.num, "size": args.size, "batch_size": args.batch_size, "repeats": args.repeats}
    print(f"inputs: {args.num} seeded {args.size}x{args.size} images; device {args.device}, batch "
          f"{args.batch_size}, threads {setting['threads']}, median of {args.repeats}; seeded weights")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        written: dict[str, str] = {}
        for case in args.cases:
            key = case.extractor
            written[key] = written.get(key) or write_weights(case, Path(tmp))
            rows.append(measure(case, written[key], images, args))
            print(table(rows[-1:])[-1], flush=True)
            gc.collect()  # the large towers of one case are gone before the next is built
    print("\n".join(table(rows)))
    if args.json:
        args.json.write_text(json.dumps({"setting": setting, "rows": rows}, indent=1) + "\n")
    if args.out:
        with args.out.open("a") as f:
            f.write(("\n" if f.tell() else "") + report(rows, setting))


if __name__ == "__main__":
    main()
