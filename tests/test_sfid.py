"""sFID: Inception's spatial features against torch-fidelity's network, and the metric
against a direct numpy/scipy Fréchet distance.

The oracle for the features is torch-fidelity's ``FeatureExtractorInceptionV3`` on the
same seeded weights: a forward hook on its ``Mixed_6d.branch1x1`` (conv, BN, ReLU; the TF
graph's ``mixed_6/conv``) takes the ADM evaluator's slice ``[..., :7]`` in NHWC order.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

import ganbench.metrics.sfid  # noqa: F401  (registers sfid)
from ganbench.errors import InputError
from ganbench.registry import feature_extractors, metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (smooth + torch.randn(n, 3, size, size, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def inception(inception_weights):
    return feature_extractors.get("inception-v3-compat")(weights=str(inception_weights))


def _fidelity_spatial(weights, images: torch.Tensor) -> torch.Tensor:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    taken = []
    net.Mixed_6d.branch1x1.register_forward_hook(lambda module, inputs, output: taken.append(output))
    with torch.no_grad():
        net(images)
    nhwc = taken[0].permute(0, 2, 3, 1)[..., :7]  # evaluator.py: spatial[..., :7] of an NHWC tensor
    return nhwc.reshape(len(images), -1)


def test_spatial_features_are_mixed_6d_branch1x1_first_7_channels(inception, inception_weights):
    images = _images(2, 32, seed=5)
    ours = inception(images, ("spatial",))["spatial"]
    ref = _fidelity_spatial(inception_weights, images)
    assert ours.shape == (2, 17 * 17 * 7) == (2, 2023)
    assert ref.abs().max() > 0 and (ref > 0).float().mean() < 0.9  # a ReLU output, not constant
    err = ((ours.double() - ref.double()).abs().max() / ref.abs().max()).item()
    assert err < 1e-4, err


def test_spatial_alone_equals_spatial_with_the_rest(inception):
    images = _images(3, 28, seed=6)
    alone = inception(images, ("spatial",))
    together = inception(images)
    assert set(alone) == {"spatial"} and {"pool", "spatial"} <= set(together)
    assert torch.equal(alone["spatial"], together["spatial"])


def _fd_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The ADM evaluator's formula: |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_sfid_is_the_frechet_distance_of_the_spatial_features():
    g = torch.Generator().manual_seed(0)
    fake = torch.randn(300, 40, generator=g, dtype=torch.float64) * 2 + 0.5
    real = torch.randn(400, 40, generator=g, dtype=torch.float64) @ torch.randn(40, 40, generator=g,
                                                                                 dtype=torch.float64) * 0.3
    value = metrics.get("sfid").compute({"spatial": fake}, {"spatial": real})["sfid"]
    assert value == pytest.approx(_fd_reference(fake.numpy(), real.numpy()), rel=1e-9)
    assert metrics.get("sfid").compute({"spatial": fake}, {"spatial": fake})["sfid"] == pytest.approx(0, abs=1e-9)


def test_sfid_declares_its_extractor_and_feature():
    sfid = metrics.get("sfid")
    assert sfid.extractor == "inception-v3-compat" and sfid.features == ("spatial",)
    assert sfid.higher_is_better == {"sfid": False}
    assert "spatial" in feature_extractors.metadata("inception-v3-compat")["provides"]
    with pytest.raises(InputError, match="spatial"):
        sfid.compute({"pool": torch.zeros(3, 4)}, {"spatial": torch.zeros(3, 4)})
