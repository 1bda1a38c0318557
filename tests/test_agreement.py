"""ganbench and torch-fidelity give the same numbers on the same images and weights.

Both get the same real MNIST images (as uint8 tensors) and the same seeded (non-official)
Inception-v3 / VGG16 weights. Tolerance: 1e-3 relative for every metric. What we reach
is far tighter (about 1e-5 for FID and KID; IS, precision and recall are identical):
the two extractors agree to ~3e-5 of the feature scale (float32 rounding, BN folded into
the convolutions in ganbench), and the metric maths to ~1e-9 (ganbench runs float64).
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from ganbench.evaluation import evaluate

torch_fidelity = pytest.importorskip("torch_fidelity")


class Uint8Images(Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


@pytest.fixture(scope="module")
def mnist_pair(data_dir):
    from ganbench.data import load_images

    images, _ = load_images("mnist", split="test")
    real = images[:50].expand(-1, 3, -1, -1).contiguous()
    # "generated" images: other digits, shifted and noised so the sets clearly differ
    gen = torch.Generator().manual_seed(0)
    other = images[1000:1050].expand(-1, 3, -1, -1).float()
    other = torch.roll(other, shifts=2, dims=3) + torch.randn(other.shape, generator=gen) * 30
    fake = other.clamp(0, 255).round().to(torch.uint8)
    return fake, real


def _close(ours, theirs, rel=1e-3):
    assert ours == pytest.approx(theirs, rel=rel, abs=1e-6), (ours, theirs)


def test_fid_isc_kid_pr_match_torch_fidelity(mnist_pair, inception_weights):
    fake, real = mnist_pair
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
    assert theirs["frechet_inception_distance"] > 1.0  # the sets differ: a real comparison
    _close(ours.value("fid"), theirs["frechet_inception_distance"])
    _close(ours.value("isc"), theirs["inception_score_mean"])
    _close(ours.std("isc"), theirs["inception_score_std"])
    _close(ours.value("kid"), theirs["kernel_inception_distance_mean"])
    _close(ours.std("kid"), theirs["kernel_inception_distance_std"])
    _close(ours.value("precision"), theirs_pr["precision"], rel=1e-6)
    _close(ours.value("recall"), theirs_pr["recall"], rel=1e-6)
    # the provenance says these are not the official weights
    assert not ours.standard and ours.rows[0]["weights_sha256"]


def test_precision_recall_vgg16_matches_torch_fidelity(mnist_pair, vgg16_weights):
    fake, real = mnist_pair
    fake, real = fake[:20], real[:20]
    theirs = torch_fidelity.calculate_metrics(
        input1=Uint8Images(fake), input2=Uint8Images(real), cuda=False, batch_size=20, prc=True,
        feature_extractor_weights_path=str(vgg16_weights), cache=False, verbose=False)
    ours = evaluate(fake, real, ["pr-vgg16"], extra_weights={"vgg16": vgg16_weights}, batch_size=20,
                    device="cpu", progress=False, use_cache=False)
    _close(ours.value("precision_vgg16"), theirs["precision"], rel=1e-6)
    _close(ours.value("recall_vgg16"), theirs["recall"], rel=1e-6)
    assert ours.rows[0]["extractor"] == "vgg16"
