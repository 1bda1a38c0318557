"""ganbench and torch-fidelity give the same numbers on the same images and weights.

Both get the same real images (scikit-learn's bundled digits as uint8 tensors, so nothing
needs downloading) and the same seeded (non-official) Inception-v3 / VGG16 weights. The
tolerances (relative) are ten times or more the differences measured on these inputs:
FID 1.3e-6, IS mean 2e-7 (std 1.2e-4), KID mean 7e-6 (std 5e-5), precision and recall equal
up to torch-fidelity's float32 (4e-8). The two extractors agree to ~3e-5 of the feature scale
(float32 rounding, BN folded into the convolutions in ganbench), the metric maths to ~1e-9
(ganbench runs float64); the spread over few splits/subsets amplifies the stds' difference.
"""
from __future__ import annotations

import pytest
import torch
import torch_fidelity

from ganbench.crosscheck import Uint8Images  # torch-fidelity's input
from ganbench.evaluation import evaluate

TOLERANCE = {"fid": 2e-5, "isc": 1e-5, "isc_std": 2e-3, "kid": 1e-4, "kid_std": 1e-3, "pr": 1e-6}


@pytest.fixture(scope="module")
def digits_pair():
    """(fake, real): uint8 (50, 3, 8, 8) scikit-learn digits, bundled, so no download is needed."""
    from ganbench.data import load_images

    images, _ = load_images("digits", split="train")
    real = images[:50].expand(-1, 3, -1, -1).contiguous()
    # "generated" images: other digits, shifted and noised so the sets clearly differ
    gen = torch.Generator().manual_seed(0)
    other = images[1000:1050].expand(-1, 3, -1, -1).float()
    other = torch.roll(other, shifts=1, dims=3) + torch.randn(other.shape, generator=gen) * 15
    fake = other.clamp(0, 255).round().to(torch.uint8)
    return fake, real


def _close(ours, theirs, what):
    assert ours == pytest.approx(theirs, rel=TOLERANCE[what], abs=0), (what, ours, theirs)


def test_fid_isc_kid_pr_match_torch_fidelity(digits_pair, inception_weights):
    fake, real = digits_pair
    theirs = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), cuda=False, batch_size=25,
        isc=True, fid=True, kid=True, isc_splits=5, kid_subsets=10, kid_subset_size=25,
        feature_extractor_weights_path=str(inception_weights), cache=False, verbose=False, rng_seed=2020)
    theirs_pr = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), cuda=False, batch_size=25, prc=True,
        feature_extractor="inception-v3-compat", feature_layer_prc="2048",
        feature_extractor_weights_path=str(inception_weights), cache=False, verbose=False)
    ours = evaluate(fake, real, ["fid", "isc", "kid", "pr"], weights=inception_weights, batch_size=25,
                    device="cpu", progress=False, use_cache=False, options={
                        "isc": {"splits": 5, "rng": "torch-fidelity", "seed": 2020},
                        "kid": {"subsets": 10, "subset_size": 25, "rng": "torch-fidelity", "seed": 2020}})
    # the sets differ but overlap: a real comparison for every metric
    assert theirs["frechet_inception_distance"] > 1.0 and 0 < theirs_pr["precision"] < 1
    _close(ours.value("fid"), theirs["frechet_inception_distance"], "fid")
    _close(ours.value("isc"), theirs["inception_score_mean"], "isc")
    _close(ours.std("isc"), theirs["inception_score_std"], "isc_std")
    _close(ours.value("kid"), theirs["kernel_inception_distance_mean"], "kid")
    _close(ours.std("kid"), theirs["kernel_inception_distance_std"], "kid_std")
    _close(ours.value("precision"), theirs_pr["precision"], "pr")
    _close(ours.value("recall"), theirs_pr["recall"], "pr")
    # the provenance says these are not the official weights
    assert not ours.standard and ours.rows[0]["weights_sha256"]


def test_precision_recall_vgg16_matches_torch_fidelity(digits_pair, vgg16_weights):
    fake, real = digits_pair
    fake, real = fake[:20], real[:20]
    theirs = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), cuda=False, batch_size=20, prc=True,
        feature_extractor_weights_path=str(vgg16_weights), cache=False, verbose=False)
    ours = evaluate(fake, real, ["pr-vgg16"], extra_weights={"vgg16": vgg16_weights}, batch_size=20,
                    device="cpu", progress=False, use_cache=False)
    _close(ours.value("precision_vgg16"), theirs["precision"], "pr")
    _close(ours.value("recall_vgg16"), theirs["recall"], "pr")
    assert ours.rows[0]["extractor"] == "vgg16"
